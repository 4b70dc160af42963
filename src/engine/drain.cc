// SyncEngine::Drain: one batch of one direction. The source's read window
// (engine/source/read_window.h), one apply transaction on the target
// (engine/apply/apply_transaction.h) holding at most about batch_size
// changes and ending at a commit boundary, the changes read, folded and
// applied chunk by chunk (engine/apply/apply_batch.h), the position stored
// with the data (engine/positions.h), then housekeeping.
#include <algorithm>
#include <chrono>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "engine/apply/apply_batch.h"
#include "engine/apply/apply_transaction.h"
#include "engine/ops/operator_requests.h"
#include "engine/positions.h"
#include "engine/source/read_window.h"
#include "engine/source/work_items.h"
#include "engine/sync_engine.h"

namespace tandem {

namespace {
constexpr int kChunkChanges = 2000;  // changes read, prefetched and applied at a time
constexpr size_t kPinCheckChanges = 1000;  // records applied between two PinIfBehind calls
// The part of sync.max_txn_ms kept for the COMMIT (an fsync or two).
constexpr double kCommitShareOfTxnBound = 0.15;
// Chunk size bounds while a transaction bound is in force.
constexpr int64_t kMinBoundedChunk = 64;
constexpr int64_t kFirstBoundedChunk = 256;  // before the apply rate is known
// After a transaction cut short by the bounds, on a target that lets one
// writer in at a time, the engine waits up to this long (less as soon as
// another writer commits) before taking the write lock again. SQLite's busy
// handler retries a waiting writer at least every 100 ms.
constexpr int kStepAsideMs = 100;
}  // namespace

// How far a batch got in its target transaction.
struct SyncEngine::BatchProgress {
  int64_t pos = 0;             // applied up to this position
  int64_t read_upto = 0;       // read no further: the window's end, or a commit boundary before it
  int64_t consumed = 0;        // changes read
  int64_t source_at_ms = 0;    // capture time of the last change read
  bool ended_early = false;    // this target transaction ends at a commit boundary before the window's end
  bool time_bound_hit = false;  // this transaction ends early because it used its sync.max_txn_ms
  bool split = false;           // ... and inside a source transaction (or where its end is unknown)
  size_t since_pin_check = 0;   // records applied since the last PinIfBehind
};

Result<int64_t> SyncEngine::Drain(Direction& dir) {
  // More than a batch behind: the window is a pinned snapshot, and the batch
  // reads the source through dir.src, which points at the pinned connection
  // until the window is gone.
  ReadWindow window(dir, *boundaries_[dir.source == Side::kLegacy ? 0 : 1]);
  if (!dir.stopped.empty()) return int64_t{0};  // until the operator accepts the source (source_identity.h)
  if (dir.position_uncertain) TANDEM_RETURN_IF_ERROR(ReloadUncertainPosition(dir));
  // A batch whose set writes the target rejected runs again: first with the
  // records found rejected applied on their own (the rest still in sets),
  // then, if that fails too, every record on its own.
  std::unordered_set<std::string> suspects;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const bool careful = attempt == 2;
    if (attempt == 1 && suspects.empty()) continue;
    TANDEM_ASSIGN_OR_RETURN(bool opened, window.Open(config_.sync.batch_size));
    if (!opened) {
      TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(dir));
      if (!dir.stopped.empty()) return int64_t{0};
      return Status::Unavailable(fmt::format("{}: the source's history mark changed; checked again", dir.name));
    }
    if (Status rs = ReloadParkedIfChanged(dir, /*force=*/attempt > 0); !rs.ok()) {
      window.End();
      return rs;
    }
    if (window.upto() <= dir.position && !dir.has_waiting) {
      window.End();
      return int64_t{0};
    }
    ApplyTransaction txn(dir);
    if (Status st = txn.Begin(schema_tables_[dir.target == Side::kLegacy ? 0 : 1]); !st.ok()) {
      window.End();
      return st;
    }
    ApplyBatch batch(ApplyContextOf(), dir, careful, attempt == 1 ? &suspects : nullptr);
    BatchProgress progress;
    Status st = ApplyWindow(dir, window, txn, batch, &progress);
    if (st.ok()) st = txn.CheckBeforeWriting(schema_signature_[dir.target == Side::kLegacy ? 0 : 1]);
    if (st.ok() && dir.has_waiting) st = RetryWaiting(*mapping_, dir, batch);
    if (!st.ok()) {
      if (txn.schema_changed()) schema_check_owed_ = true;
      txn.Rollback();
      window.End();
      // The in-memory parked set may hold changes of the rolled-back batch.
      if (Status rs = ReloadParkedIfChanged(dir, /*force=*/true); !rs.ok()) return rs;
      if (!batch.needs_careful() || careful) return st;
      if (attempt == 0) suspects = batch.suspects();
      if (attempt == 0 && !suspects.empty()) {
        spdlog::info("{}: the target rejected {} record(s) of a set write; re-running the batch with those applied "
                     "one by one",
                     dir.name, suspects.size());
        attempt = 0;  // the loop's ++ makes it 1
      } else {
        spdlog::info("{}: a record was rejected mid-write; re-running the batch record by record", dir.name);
        attempt = 1;  // the loop's ++ makes it 2: careful
      }
      continue;
    }
    PositionRow committed;
    st = CommitBatch(dir, txn, batch, progress, &committed);
    if (!st.ok()) {
      txn.Rollback();
      window.End();
      (void)ReloadParkedIfChanged(dir, /*force=*/true);
      // A connection lost during COMMIT leaves its outcome unknown: the
      // position committed with the data says which, next time.
      dir.position_uncertain = true;
      return st;
    }
    window.End();
    AfterCommit(dir, window, txn, batch, progress, committed);
    return progress.consumed;
  }
  return int64_t{0};
}

Status SyncEngine::ReloadUncertainPosition(Direction& dir) {
  TANDEM_ASSIGN_OR_RETURN(auto stored, ReadPosition(*dir.dst, dir.name));
  if (stored && stored->seq != dir.position) {
    spdlog::info("{}: the last batch was committed after all (position {})", dir.name, stored->seq);
    dir.position = stored->seq;
    dir.applied_total = stored->applied_total;
    dir.source_mark = stored->source_mark;
  }
  TANDEM_RETURN_IF_ERROR(dir.src->ResumeAt(dir.position, stored ? stored->cursor : ""));
  // Positions after the stored one may be numbered afresh (PostgreSQL
  // windows): boundaries noted for the failed batch no longer hold.
  boundaries_[dir.source == Side::kLegacy ? 0 : 1]->ForgetBelow(std::numeric_limits<int64_t>::max());
  dir.position_uncertain = false;
  return Status::Ok();
}

Status SyncEngine::ApplyWindow(Direction& dir, ReadWindow& window, ApplyTransaction& txn, ApplyBatch& batch,
                               BatchProgress* p) {
  Connector& src = *dir.src;
  const std::string& signature = schema_signature_[dir.target == Side::kLegacy ? 0 : 1];
  boundaries_[dir.source == Side::kLegacy ? 0 : 1]->Note(window.upto());  // this snapshot's end is a commit boundary too
  p->pos = dir.position;
  p->read_upto = window.upto();
  std::vector<CapturedChange> changes;
  std::vector<WorkItem> items;
  Status st = Status::Ok();
  while (p->pos < p->read_upto) {
    changes.clear();
    // Read and prefetch in chunks (ChunkLimit), so memory stays bounded
    // whatever batch_size (changes per target transaction) is.
    st = src.ReadChanges(p->pos, p->read_upto, static_cast<size_t>(ChunkLimit(dir, txn, p->consumed)), &changes);
    if (!st.ok() || changes.empty()) break;
    BuildWorkItems(dir.tables, changes, &items);
    st = batch.Prefetch(items);
    if (st.ok()) st = txn.CheckBeforeWriting(signature);
    if (st.ok()) st = ApplyChunk(window, batch, items, p);
    if (!st.ok()) break;
    p->pos = changes.back().seq;
    p->source_at_ms = changes.back().captured_at_ms;
    p->consumed += static_cast<int64_t>(changes.size());
    if (dir.max_txn_ms > 0 && txn.elapsed_ms() > 1)
      dir.changes_per_ms = static_cast<double>(p->consumed) / txn.elapsed_ms();
    if (EndsAfterChunk(dir, window, txn, p)) break;
  }
  if (st.ok() && !p->ended_early) p->pos = std::max(p->pos, p->read_upto);
  return st;
}

int64_t SyncEngine::ChunkLimit(const Direction& dir, const ApplyTransaction& txn, int64_t consumed) const {
  // At most kChunkChanges. Under a transaction bound, a chunk is what fits in
  // the time left at the rate seen so far, so the bound is kept to within
  // one small chunk.
  int64_t limit = std::min(config_.sync.batch_size, kChunkChanges);
  if (dir.max_txn_ms > 0) {
    const double budget_ms = dir.max_txn_ms * (1.0 - kCommitShareOfTxnBound);
    const int64_t fits = dir.changes_per_ms > 0 ? static_cast<int64_t>((budget_ms - txn.elapsed_ms()) * dir.changes_per_ms)
                                                : kFirstBoundedChunk;
    limit = std::min(limit, std::max(kMinBoundedChunk, fits));
  }
  if (dir.max_txn_changes > 0) limit = std::min(limit, std::max<int64_t>(1, dir.max_txn_changes - consumed));
  return limit;
}

Status SyncEngine::ApplyChunk(ReadWindow& window, ApplyBatch& batch, std::vector<WorkItem>& items,
                              BatchProgress* p) {
  OrderForApply(&items);
  for (const WorkItem& w : items) {
    TANDEM_RETURN_IF_ERROR(batch.ApplyOrPark(w));
    // A long stretch: changes may be piling up behind it. A source that
    // needs it pins a snapshot about every batch_size changes, where the
    // next batches will end.
    if (++p->since_pin_check >= kPinCheckChanges) {
      window.own().PinIfBehind(config_.sync.batch_size);
      p->since_pin_check = 0;
    }
  }
  return batch.FlushPending();
}

bool SyncEngine::EndsAfterChunk(Direction& dir, ReadWindow& window, const ApplyTransaction& txn, BatchProgress* p) {
  CommitBoundaries& boundaries = *boundaries_[dir.source == Side::kLegacy ? 0 : 1];
  Connector& src = *dir.src;
  const int64_t upto = window.upto();
  const double budget_ms = dir.max_txn_ms * (1.0 - kCommitShareOfTxnBound);
  // The bounds: end this transaction here when the next smallest chunk
  // would not fit. At a known commit boundary that is a clean end;
  // elsewhere the source transaction is split (sync.split_transactions),
  // or else kept whole up to its end.
  const bool changes_bound = dir.max_txn_changes > 0 && p->consumed >= dir.max_txn_changes;
  const bool time_bound =
      dir.max_txn_ms > 0 && (budget_ms - txn.elapsed_ms()) * std::max(dir.changes_per_ms, 1e-3) < kMinBoundedChunk;
  if ((changes_bound || time_bound) && p->pos < p->read_upto) {
    auto boundary = boundaries.NextAtOrAfter(p->pos, upto);
    const bool at_boundary = boundary && *boundary == p->pos;
    if (at_boundary || (config_.sync.split_transactions &&
                        (src.SupportsBoundarySampling() || !src.PositionCursor(p->pos).empty()))) {
      p->split = !at_boundary;
      p->time_bound_hit = time_bound;
      p->ended_early = true;
      return true;
    }
    if (boundary) p->read_upto = std::min(p->read_upto, *boundary);
  }
  if (!window.pinned() && p->consumed >= config_.sync.batch_size && p->pos < p->read_upto) {
    // Keep target transactions short: end this one at the next known
    // commit boundary, which is never inside a source transaction.
    auto boundary = boundaries.NextAtOrAfter(p->pos, upto);
    if (boundary && *boundary == p->pos) {
      p->ended_early = true;
      return true;
    }
    if (boundary) p->read_upto = *boundary;
  }
  return false;
}

Status SyncEngine::CommitBatch(Direction& dir, ApplyTransaction& txn, ApplyBatch& batch, const BatchProgress& p,
                               PositionRow* committed) {
  Connector& src = *dir.src;
  committed->seq = p.pos;
  committed->applied_total = dir.applied_total + p.consumed;
  committed->cursor = src.PositionCursor(p.pos);
  // The source's history at the new position, stored with it (source_identity.h).
  Status st = Status::Ok();
  auto mark = src.HistoryMark(p.pos);
  if (mark.ok()) committed->source_mark = std::move(*mark);
  else st = mark.status();
  if (committed->cursor.empty() && !src.SupportsBoundarySampling() && p.pos != 0)  // a PostgreSQL position needs its snapshot
    st = Status::Internal(fmt::format("{}: position {} is not the end of a change window; not committing it",
                                      dir.name, p.pos));
  TANDEM_RETURN_IF_ERROR(st);
  // The position and statistics travel with the commit (ExecLater).
  TANDEM_RETURN_IF_ERROR(StorePositionLater(*dir.dst, dir.name, *committed, p.source_at_ms, dir.source_id));
  TANDEM_RETURN_IF_ERROR(AddEntityStatsLater(*dir.dst, dir.name, batch.written_by_entity()));
  return txn.Commit();
}

void SyncEngine::AfterCommit(Direction& dir, ReadWindow& window, const ApplyTransaction& txn, ApplyBatch& batch,
                             const BatchProgress& p, const PositionRow& committed) {
  if (p.split)
    spdlog::info("{}: split a source transaction at change {}: {} changes in {:.0f} ms reached the target "
                 "transaction bound (sync.max_txn_ms {}, max_txn_changes {}); the rest follows in the next one",
                 dir.name, p.pos, p.consumed, txn.elapsed_ms(), dir.max_txn_ms, dir.max_txn_changes);
  // Step aside: a writer waiting for the lock this transaction held gets in
  // before the next one takes it (as soon as it commits, or kStepAsideMs).
  if (p.time_bound_hit && dir.target_single_writer) {
    (void)dir.dst->WaitForCommit(std::chrono::milliseconds(0));
    (void)dir.dst->WaitForCommit(std::chrono::milliseconds(kStepAsideMs));
  }
  dir.position = p.pos;
  dir.applied_total = committed.applied_total;
  dir.source_mark = committed.source_mark;
  // Fresh planner statistics once the key map has grown by a fifth (from
  // at least 1,000 rows written), so its lookups keep their index plans.
  dir.written_since_statistics += batch.written();
  if (dir.written_since_statistics >= std::max<int64_t>(1000, committed.applied_total / 5)) {
    if (Status rs = dir.dst->RefreshStatistics(); !rs.ok())
      spdlog::debug("{}: refreshing statistics postponed: {}", dir.name, rs.message());
    dir.written_since_statistics = 0;
  }
  boundaries_[dir.source == Side::kLegacy ? 0 : 1]->ForgetBelow(p.pos);
  DirectionStats& stats = stats_[dir.source == Side::kLegacy ? 0 : 1];
  stats.batches++;
  stats.changes_read += p.consumed;
  stats.records_applied += batch.written();
  stats.parked += batch.put_aside();
  stats.conflicts += batch.conflicts();
  stats.records_applied_alone += batch.applied_alone();
  if (!batch.applied().empty() && applied_callback_) applied_callback_(batch.applied());
  if (p.consumed > 0)
    spdlog::debug("{}: applied {} changes up to {} ({} records written)", dir.name, p.consumed, p.pos,
                  batch.written());
  PurgeApplied(dir, window.own(), p.pos);
}

void SyncEngine::PurgeApplied(Direction& dir, ChangeSource& own_source, int64_t pos) {
  // Purge what is applied from the source log, now and then, in short transactions.
  int64_t now = Clock::Default()->NowMillis();
  if (pos <= dir.purged_before || now - dir.last_purge_ms < config_.sync.purge_interval_ms) return;
  Status ps = own_source.PurgeChanges(pos);
  if (ps.ok()) dir.purged_before = pos;
  else if (ps.code() == StatusCode::kUnavailable)
    spdlog::debug("{}: {} log busy, purge postponed", dir.name, SideName(dir.source));
  else
    spdlog::warn("{}: purging applied changes from the {} log failed (will retry): {}", dir.name,
                 SideName(dir.source), ps.message());
  dir.last_purge_ms = now;
  // Gone key-map entries written into this direction's target, once what they hide is removed.
  auto purged = records_->PurgeGoneEntries(dir.target, 500);
  if (!purged.ok())
    spdlog::debug("{}: purging gone key-map entries postponed: {}", dir.name, purged.status().message());
}

}  // namespace tandem
