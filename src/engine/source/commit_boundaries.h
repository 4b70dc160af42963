// CommitBoundaries: where source transactions end in the change log, and
// source snapshots pinned at some of them.
//
// SQLite gives triggers no transaction id. But a reader outside a transaction
// sees only committed state, so every max(seq) it reads is a commit boundary:
// the log rows up to it belong to transactions that committed, and the next
// row belongs to a later transaction. A sampler thread reads max(seq) on its
// own connection shortly after each source commit (a read: it takes no lock
// the application needs, whatever the application's write pattern) and keeps
// the boundaries in memory.
//
// Capture is key-only and the engine reads current rows, so a target
// transaction that ends at a boundary b must also read the source as of b;
// otherwise a record changed both before and after b would carry the later
// transaction's state into the earlier target transaction. So the sampler
// also pins snapshots: every `pin_spacing` changes (at most kMaxPins at a
// time) it opens a connection and keeps a read transaction open at the
// boundary it read. When the engine is more than a batch behind, it applies
// up to a pinned boundary, reading in that snapshot.
//
// Boundaries and pins are not persisted: for changes written while Tandem was
// stopped only the end of that backlog is known, so it is applied as one
// transaction.
//
// Thread-safe. The destructor stops and joins the sampler.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "connectors/connector.h"

namespace tandem {

class CommitBoundaries {
 public:
  static constexpr size_t kMaxPins = 32;

  // A source connection inside a read transaction whose snapshot ends exactly
  // at commit boundary `seq` (its MaxChangeSeq() is seq).
  struct Snapshot {
    int64_t seq = 0;
    std::unique_ptr<Connector> db;
  };

  // `url` is the source database; the sampler runs only if `sample`.
  CommitBoundaries(std::string url, bool sample, int busy_timeout_ms, int poll_interval_ms, int64_t pin_spacing);
  ~CommitBoundaries();

  // Records that `seq` is a commit boundary.
  void Note(int64_t seq);
  // The smallest known boundary b with from <= b <= upto.
  std::optional<int64_t> NextAtOrAfter(int64_t from, int64_t upto) const;
  // Forgets boundaries and releases pins below `seq` (already applied).
  void ForgetBelow(int64_t seq);

  // Pins a snapshot of the source as it is now (the sampler does this; public
  // for tests). Returns its boundary.
  Result<int64_t> PinNow();
  // The snapshot to apply next when the engine is at `after` and the log
  // reaches `upto`: the newest pin b with after < b < upto and
  // b - after <= want_span, else the first pin after `after` if
  // b - after <= max_span. Pins at or below the one returned are released.
  // nullopt if there is none.
  std::optional<Snapshot> TakeSnapshot(int64_t after, int64_t upto, int64_t want_span, int64_t max_span);
  size_t pinned() const;

 private:
  void Sample();
  std::string url_;
  int busy_timeout_ms_;
  int poll_interval_ms_;
  int64_t pin_spacing_;
  mutable std::mutex mu_;
  std::set<int64_t> boundaries_;                             // GUARDED_BY(mu_)
  std::map<int64_t, std::unique_ptr<Connector>> pins_;       // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  std::thread sampler_;
};

}  // namespace tandem
