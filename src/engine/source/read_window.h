// ReadWindow: the source side of one batch. A read transaction on the
// direction's source that ends after its position, in which the batch reads
// the change log and the current rows (one snapshot: the target ends in the
// source's state as of it).
//
// When the engine is more than a batch behind, the window is a snapshot
// pinned at a commit boundary (engine/source/commit_boundaries.h): the batch
// reads in that pinned connection (Direction::src points at it while the
// window lives) and applies up to its boundary. A pinned window stays open
// across re-runs of the batch; the direction's own read transaction is
// opened for each run and ended by End().
//
// Before anything is applied, Open checks that the change at the position is
// still the one applied (a source restored in place while the engine runs
// shows here).
//
// Thread-safety: none; one per drain, on the engine's thread.
#pragma once

#include <cstdint>
#include <optional>

#include "core/status.h"
#include "engine/direction.h"
#include "engine/source/commit_boundaries.h"

namespace tandem {

class ReadWindow {
 public:
  // REQUIRES: `dir` and `boundaries` (its source's) outlive the window.
  ReadWindow(Direction& dir, CommitBoundaries& boundaries) : dir_(dir), boundaries_(boundaries), own_(dir.src) {}
  // Points dir.src back at the direction's own source; ends a pinned read.
  ~ReadWindow();
  ReadWindow(const ReadWindow&) = delete;
  ReadWindow& operator=(const ReadWindow&) = delete;

  // Opens the window after dir.position (a pinned one is still open). A
  // window longer than `batch_size` changes ends at a pinned snapshot where
  // one is near enough. False, with nothing left open, when the source's
  // history mark at the position is not the stored one (dir.source_mark):
  // the caller checks the source's identity again.
  Result<bool> Open(int64_t batch_size);
  // Ends the read transaction, unless pinned (a pinned one ends with the window).
  void End();

  // The window's end: a commit boundary of the source's log.
  int64_t upto() const { return upto_; }
  bool pinned() const { return pinned_.has_value(); }
  // The direction's own source connection (not a pinned one): pins, purges.
  Connector& own() { return *own_; }

 private:
  Direction& dir_;
  CommitBoundaries& boundaries_;
  Connector* const own_;
  std::optional<CommitBoundaries::Snapshot> pinned_;
  int64_t upto_ = 0;
};

}  // namespace tandem
