#include "engine/epoch_ticker.h"

#include <spdlog/spdlog.h>

namespace tandem {

EpochTicker::EpochTicker(std::string url, int busy_timeout_ms, int poll_interval_ms)
    : url_(std::move(url)), busy_timeout_ms_(busy_timeout_ms), poll_interval_ms_(std::max(1, poll_interval_ms)) {
  thread_ = std::thread([this] { Loop(); });
}

EpochTicker::~EpochTicker() { Stop(); }

void EpochTicker::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void EpochTicker::Loop() {
  ConnectorOptions opts;
  opts.busy_timeout_ms = busy_timeout_ms_;
  std::unique_ptr<Connector> db;
  int64_t bumped_at_seq = -1;
  while (!stop_.load()) {
    if (!db) {
      auto opened = OpenConnector(url_, opts);
      if (!opened.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      db = std::move(opened).value();
      (void)db->SetDurable(false);  // the bump carries no data; the next data commit syncs it anyway
    }
    auto seen = db->WaitForCommit(std::chrono::milliseconds(poll_interval_ms_));
    if (!seen.ok()) {
      spdlog::debug("epoch ticker on {}: {}", url_, seen.status().message());
      db.reset();
      continue;
    }
    if (!*seen && bumped_at_seq >= 0) continue;
    auto max_seq = db->MaxChangeSeq();
    if (!max_seq.ok() || *max_seq == bumped_at_seq) continue;  // Tandem's own writes add no log rows
    Status st = db->BumpEpoch();
    if (st.ok()) {
      bumped_at_seq = *max_seq;
      bumps_++;
    } else {
      spdlog::debug("epoch ticker on {}: {}", url_, st.message());
    }
  }
}

}  // namespace tandem
