#include "engine/source/commit_boundaries.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "connectors/postgres/pg_target.h"

namespace tandem {

CommitBoundaries::CommitBoundaries(std::string url, bool sample, int busy_timeout_ms, int poll_interval_ms,
                                   int64_t pin_spacing)
    : url_(std::move(url)),
      busy_timeout_ms_(busy_timeout_ms),
      poll_interval_ms_(std::max(1, poll_interval_ms)),
      pin_spacing_(std::max<int64_t>(1, pin_spacing)) {
  if (sample && !url_.empty()) sampler_ = std::thread([this] { Sample(); });
}

CommitBoundaries::~CommitBoundaries() {
  stop_.store(true);
  if (sampler_.joinable()) sampler_.join();
  for (auto& [seq, db] : pins_) db->EndRead();
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
  std::map<int64_t, std::unique_ptr<Connector>> released;
  {
    std::lock_guard<std::mutex> lock(mu_);
    boundaries_.erase(boundaries_.begin(), boundaries_.lower_bound(seq));
    auto end = pins_.upper_bound(seq);  // a pin at seq is of no use either
    released.insert(std::make_move_iterator(pins_.begin()), std::make_move_iterator(end));
    pins_.erase(pins_.begin(), end);
  }
  for (auto& [s, db] : released) db->EndRead();  // outside the lock: closing may take a moment
}

Result<int64_t> CommitBoundaries::PinNow() {
  ConnectorOptions opts;
  opts.busy_timeout_ms = busy_timeout_ms_;
  TANDEM_ASSIGN_OR_RETURN(auto db, OpenConnector(url_, opts));
  TANDEM_RETURN_IF_ERROR(db->BeginRead());
  auto seq = db->MaxChangeSeq();  // the first read fixes the snapshot: seq is its boundary
  if (!seq.ok()) {
    db->EndRead();
    return seq.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  boundaries_.insert(*seq);
  if (!pins_.count(*seq)) pins_[*seq] = std::move(db);
  return *seq;
}

std::optional<CommitBoundaries::Snapshot> CommitBoundaries::TakeSnapshot(int64_t after, int64_t upto,
                                                                         int64_t want_span, int64_t max_span) {
  std::optional<Snapshot> out;
  std::map<int64_t, std::unique_ptr<Connector>> released;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto first = pins_.upper_bound(after), best = pins_.end();
    for (auto it = first; it != pins_.end() && it->first < upto && it->first - after <= want_span; ++it) best = it;
    if (best == pins_.end() && first != pins_.end() && first->first < upto && first->first - after <= max_span)
      best = first;
    if (best == pins_.end()) return std::nullopt;
    out = Snapshot{best->first, std::move(best->second)};
    auto end = std::next(best);
    released.insert(std::make_move_iterator(pins_.begin()), std::make_move_iterator(end));
    pins_.erase(pins_.begin(), end);
  }
  for (auto& [s, db] : released)
    if (db) db->EndRead();
  return out;
}

size_t CommitBoundaries::pinned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pins_.size();
}

void CommitBoundaries::Sample() {
  ConnectorOptions opts;
  opts.busy_timeout_ms = busy_timeout_ms_;
  std::unique_ptr<Connector> db;
  int64_t last = -1, last_pin = -1;
  while (!stop_.load()) {
    if (!db) {
      auto opened = OpenConnector(url_, opts);
      if (!opened.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      db = std::move(opened).value();
    }
    // A connector that sleeps until a commit (CommitNotifyFd) is asked for
    // long waits; one that polls, for short ones.
    const int wait_ms = db->CommitNotifyFd() >= 0 ? std::max(poll_interval_ms_, 100) : poll_interval_ms_;
    auto seen = db->WaitForCommit(std::chrono::milliseconds(wait_ms));
    if (!seen.ok()) {
      spdlog::debug("commit boundaries on {}: {}", MaskConnectionTarget(url_), seen.status().message());
      db.reset();
      continue;
    }
    if (!*seen && last >= 0) continue;
    auto max_seq = db->MaxChangeSeq();  // autocommit read: a committed snapshot
    if (!max_seq.ok() || *max_seq == last) continue;
    last = *max_seq;
    Note(last);
    // Pin a snapshot every pin_spacing changes; the first boundary seen is
    // only a reference point (the engine starts there with its own snapshot).
    if (last_pin < 0) {
      last_pin = last;
    } else if (last - last_pin >= pin_spacing_ && pinned() < kMaxPins) {
      auto pinned_at = PinNow();
      if (pinned_at.ok()) {
        last_pin = *pinned_at;
      } else {
        spdlog::debug("commit boundaries on {}: cannot pin a snapshot: {}", MaskConnectionTarget(url_),
                      pinned_at.status().message());
      }
    }
    // One boundary every few milliseconds is plenty (batches hold thousands of
    // changes); sampling more often would only take CPU from the engine.
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * poll_interval_ms_));
  }
}

}  // namespace tandem
