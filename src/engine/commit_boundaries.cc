#include "engine/commit_boundaries.h"

#include <spdlog/spdlog.h>

#include "connectors/connector.h"

namespace tandem {

CommitBoundaries::CommitBoundaries(std::string url, int busy_timeout_ms, int poll_interval_ms)
    : url_(std::move(url)), busy_timeout_ms_(busy_timeout_ms), poll_interval_ms_(std::max(1, poll_interval_ms)) {
  if (!url_.empty()) sampler_ = std::thread([this] { Sample(); });
}

CommitBoundaries::~CommitBoundaries() {
  stop_.store(true);
  if (sampler_.joinable()) sampler_.join();
}

void CommitBoundaries::Note(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  boundaries_.insert(seq);
}

std::optional<int64_t> CommitBoundaries::NextAtOrAfter(int64_t from, int64_t upto) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = boundaries_.lower_bound(from);
  if (it == boundaries_.end() || *it > upto) return std::nullopt;
  return *it;
}

void CommitBoundaries::ForgetBelow(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  boundaries_.erase(boundaries_.begin(), boundaries_.lower_bound(seq));
}

void CommitBoundaries::Sample() {
  ConnectorOptions opts;
  opts.busy_timeout_ms = busy_timeout_ms_;
  std::unique_ptr<Connector> db;
  int64_t last = -1;
  while (!stop_.load()) {
    if (!db) {
      auto opened = OpenConnector(url_, opts);
      if (!opened.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      db = std::move(opened).value();
    }
    auto seen = db->WaitForCommit(std::chrono::milliseconds(poll_interval_ms_));
    if (!seen.ok()) {
      spdlog::debug("commit boundaries on {}: {}", url_, seen.status().message());
      db.reset();
      continue;
    }
    if (!*seen && last >= 0) continue;
    auto max_seq = db->MaxChangeSeq();  // autocommit read: a committed snapshot
    if (!max_seq.ok() || *max_seq == last) continue;
    last = *max_seq;
    Note(last);
    // One boundary every few milliseconds is plenty (batches hold thousands of
    // changes); sampling more often would only take CPU from the engine.
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * poll_interval_ms_));
  }
}

}  // namespace tandem
