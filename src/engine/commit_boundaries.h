// CommitBoundaries: where source transactions end in the change log.
//
// SQLite gives triggers no transaction id. But a reader outside a transaction
// sees only committed state, so every max(seq) it reads is a commit boundary:
// the log rows up to it belong to transactions that committed, and the next
// row belongs to a later transaction. A sampler thread reads max(seq) on its
// own connection shortly after each source commit (a read: it takes no lock
// the application needs, whatever the application's write pattern) and keeps
// the boundaries in memory. The engine ends a target transaction only at a
// sampled boundary, so it never splits a source transaction and its write
// transactions stay about `batch_size` changes long.
//
// Boundaries are not persisted: for changes written while Tandem was stopped
// only the end of that backlog is known, so it is applied as one transaction.
//
// Thread-safe. The destructor stops and joins the sampler.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace tandem {

class CommitBoundaries {
 public:
  // Starts a sampler on `url` unless url is empty (then only Note() adds).
  CommitBoundaries(std::string url, int busy_timeout_ms, int poll_interval_ms);
  ~CommitBoundaries();

  // Records that `seq` is a commit boundary.
  void Note(int64_t seq);
  // The smallest known boundary b with from <= b <= upto.
  std::optional<int64_t> NextAtOrAfter(int64_t from, int64_t upto) const;
  // Forgets boundaries below `seq` (already applied).
  void ForgetBelow(int64_t seq);

 private:
  void Sample();
  std::string url_;
  int busy_timeout_ms_;
  int poll_interval_ms_;
  mutable std::mutex mu_;
  std::set<int64_t> boundaries_;  // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  std::thread sampler_;
};

}  // namespace tandem
