// SyncEngine: moves changes both ways between the legacy and the modern
// database, through the compiled mapping, exactly once.
//
// Model. Capture logs *which* records changed; a batch reads the source log
// and the current source rows inside one read snapshot and applies the mapped
// state to the target in ONE target transaction, together with the new source
// position, key-map entries and base versions (store-with-data: a crash at any
// point leaves either all of it or none of it). A batch ends only at a
// snapshot boundary, so a source transaction is never split; parents are
// applied before children and deleted after them.
//
// Concurrent edits. Each record keeps the last version both sides agreed on
// (its base). Applying a record does a three-way merge per target column:
// changed on the source only -> taken; on the target only -> kept (it will
// flow the other way); on both with different values -> a conflict settled by
// `primary` and recorded in _tandem_conflicts.
//
// Rejections. A record the target rejects (constraint, unmapped code, bad
// expression) is put aside in _tandem_parked with the reason; later changes
// to it wait behind it; everything else flows. A record whose parent is not
// synced yet waits (kind 'waiting') and is retried after every batch.
//
// Directions run one after the other on one thread, so each sees the other's
// committed work and base versions never race.
//
// Parts (src/README.md): the drain loop (drain.cc) reads a window of the
// source (engine/source/), applies it through an ApplyBatch in one
// ApplyTransaction (engine/apply/), deciding each record with engine/merge/,
// and stores the position with the data (positions.h); operator requests are
// carried out by engine/ops/. This class owns the parts and runs the loop.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "connectors/connector.h"
#include "engine/applied_record.h"
#include "engine/direction.h"
#include "engine/record_store.h"
#include "engine/source/commit_boundaries.h"
#include "mapping/config.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct SourceFinding;  // engine/source_identity.h
class EngineLock;
struct ApplyContext;    // engine/apply/apply_batch.h
class ApplyBatch;
class ApplyTransaction;  // engine/apply/apply_transaction.h
class ReadWindow;        // engine/source/read_window.h
class OperatorRequests;  // engine/ops/operator_requests.h
struct PositionRow;      // engine/positions.h
struct WorkItem;         // engine/source/work_items.h

class SyncEngine {
 public:
  // Opens both databases, compiles the mapping and loads positions.
  // Fails (with every config problem in the message) if the config does not
  // compile or capture is not installed.
  static Result<std::unique_ptr<SyncEngine>> Open(const Config& config);
  ~SyncEngine();

  // One pass: drains each enabled direction once (every change visible now).
  // Returns the number of source changes consumed.
  Result<int64_t> DrainOnce();
  // Drains until a pass finds nothing to do (`tandem run --once`). A
  // retryable failure is retried up to 5 times (~3 s) before it is returned.
  Status RunUntilIdle();
  // Runs until `stop` becomes true; waits for commits between passes.
  // Retryable failures (database busy or gone) are retried with backoff.
  Status Run(const std::atomic<bool>& stop);

  // Operator requests (engine/ops/operator_requests.h).
  // Retries a parked record now (id from _tandem_parked of the side it is
  // stored in). Returns Ok if applied; the new reason if still rejected.
  Status RetryParked(Side stored_in, int64_t id);
  // Re-applies every parked record of both directions; returns how many applied.
  Result<int> RetryAllParked();
  // Carries out `tandem conflicts resolve` requests (conflict rows with status
  // 'resolving'): writes the chosen or hand-merged values to both sides (one
  // transaction per side), marks the record's conflicts resolved, audits it,
  // and asks for its held changes to be retried. A request that cannot be
  // carried out goes back to 'open' with the reason. Returns how many were.
  Result<int> ProcessResolutions();

  // Records a known commit boundary of `source`'s change log (the sampler
  // does this itself; exposed for tests and tools).
  void NoteCommitBoundary(Side source, int64_t seq) { boundaries_[source == Side::kLegacy ? 0 : 1]->Note(seq); }
  // Pins a snapshot of `source` as it is now (the sampler does this every
  // batch_size changes; exposed for tests). Returns its commit boundary.
  Result<int64_t> PinSourceSnapshot(Side source) { return boundaries_[source == Side::kLegacy ? 0 : 1]->PinNow(); }

  void set_applied_callback(AppliedCallback cb) { applied_callback_ = std::move(cb); }
  const DirectionStats& stats(Side source) const { return stats_[source == Side::kLegacy ? 0 : 1]; }
  Connector& db(Side s) { return s == Side::kLegacy ? *legacy_ : *modern_; }
  const CompiledMapping& mapping() const { return *mapping_; }

 private:
  SyncEngine() = default;
  struct BatchProgress;  // drain.cc

  // --- opening (sync_engine.cc) ---
  Status Init(const Config& config);
  // Both connectors, and the engine locks of both databases.
  Status OpenDatabases();
  // Capture installed and current on both databases.
  Status CheckInstalled();
  // The mapping compiled against the tables as they are (failing entities
  // start paused), and the schema versions it was compiled against.
  Status CompileAtStart();
  // The direction from `source`: its bounds, statements, stored position,
  // put-aside records and commit boundaries.
  Status OpenDirection(Side source);

  // --- one batch of a direction (drain.cc) ---
  Result<int64_t> Drain(Direction& dir);
  // After a COMMIT whose outcome is unknown: the position the target holds.
  Status ReloadUncertainPosition(Direction& dir);
  // Reads the window chunk by chunk and applies it, until it ends or the
  // transaction's bounds end it early (at a commit boundary, or split).
  Status ApplyWindow(Direction& dir, ReadWindow& window, ApplyTransaction& txn, ApplyBatch& batch,
                     BatchProgress* progress);
  // How many changes the next chunk reads.
  int64_t ChunkLimit(const Direction& dir, const ApplyTransaction& txn, int64_t consumed) const;
  // Applies one chunk's work items (ordered for applying), then the writes held back.
  Status ApplyChunk(ReadWindow& window, ApplyBatch& batch, std::vector<WorkItem>& items, BatchProgress* progress);
  // True when the transaction ends after this chunk (its bounds, or
  // batch_size at a commit boundary); may bring read_upto closer.
  bool EndsAfterChunk(Direction& dir, ReadWindow& window, const ApplyTransaction& txn, BatchProgress* progress);
  // Stores the position and the statistics with the data, and commits.
  Status CommitBatch(Direction& dir, ApplyTransaction& txn, ApplyBatch& batch, const BatchProgress& progress,
                     PositionRow* committed);
  // After a commit: the direction's state, stats, statistics, purges.
  void AfterCommit(Direction& dir, ReadWindow& window, const ApplyTransaction& txn, ApplyBatch& batch,
                   const BatchProgress& progress, const PositionRow& committed);
  // Purges what is applied from the source's log, now and then.
  void PurgeApplied(Direction& dir, ChangeSource& own_source, int64_t pos);

  // --- the parts' context, the loop (sync_engine.cc) ---
  ApplyContext ApplyContextOf();
  OperatorRequests Ops();
  Status ReloadParkedIfChanged(Direction& dir, bool force = false);
  // Waits while idle (the `idle_waits`-th wait since the last change): until a
  // database signals a commit, or for a nap of about `poll_interval`.
  void IdleWait(std::chrono::milliseconds poll_interval, int idle_waits);

  // --- schema changes (sync_engine.cc) ---
  Status BindMapping(Direction& dir);
  // Looks for changed definitions of the mapped tables on both databases;
  // after a change the mapping is compiled anew: an entity whose mapping no
  // longer holds is paused (its changes are put aside, waiting), the others
  // go on with the new mapping, and a paused entity that holds again resumes.
  // True when a definition changed (and the mapping was compiled anew).
  Result<bool> WatchSchema(int64_t now_ms);
  // Pauses the entities of every table whose capture is broken (engine/
  // capture_health.h), recording a gap for each; after every compile.
  Status PauseForBrokenCapture();
  // The cheap signature (SqlSession::SchemaVersionLater) of side `s`'s mapped tables now.
  Result<std::string> SchemaSignature(Side s);

  // --- source identity (sync_engine.cc) ---
  // Source identity (engine/source_identity.h): checks that `dir`'s source
  // is the database, with the history, its stored position came from, and
  // stops the direction (or both, for another database) when it is not.
  Status CheckSourceIdentity(Direction& dir);
  // Stops `dir` (or, with stops_both, every direction) with the operator's message.
  void StopDirection(Direction& dir, const SourceFinding& finding);
  // Looks, cheaply, for a database file replaced or deleted under the open
  // sessions and for sessions that reconnected (checked again). Every pass.
  Status WatchSourceIdentity();
  // Ok while no direction is stopped; else the stopped directions' messages.
  Status StoppedStatus() const;

  Config config_;
  std::unique_ptr<SqliteHandle> expr_db_;
  std::unique_ptr<Connector> legacy_;
  std::unique_ptr<Connector> modern_;
  std::unique_ptr<CompiledMapping> mapping_;
  std::unique_ptr<RecordStore> records_;
  std::vector<std::unique_ptr<Direction>> directions_;
  std::array<DirectionStats, 2> stats_;
  AppliedCallback applied_callback_;
  std::unique_ptr<EngineLock> engine_lock_;  // one engine per pair (engine_lock.h)
  std::unique_ptr<EngineLock> modern_lock_;  // the modern database is one pair's too
  // Operators' requests (conflict resolutions, retries and discards of
  // put-aside changes) are looked for at most this often, not every pass.
  static constexpr int64_t kOperatorCheckIntervalMs = 200;
  int64_t next_operator_check_ms_ = 0;
  bool operator_checks_due_ = true;
  bool operator_check_owed_ = false;  // a pass skipped the checks: one is done when due, even if idle
  std::unique_ptr<CommitBoundaries> boundaries_[2];  // where source transactions end, per source side
  std::vector<std::string> schema_tables_[2];  // the mapped tables per side ([0] legacy)
  std::string schema_version_[2];              // their SchemaVersion() as the mapping was compiled
  std::string schema_signature_[2];            // and their cheap signature, for apply transactions
  int64_t schema_checked_ms_[2] = {0, 0};
  bool schema_check_owed_ = false;  // a failed batch: look at the schemas on the next pass
  static constexpr int64_t kSchemaCheckIntervalMs = 100;
  // While idle, the database files are looked at this often (Replaced).
  static constexpr int64_t kReplacedCheckIntervalMs = 100;
  std::string pair_stopped_;  // why both directions are stopped (another database, a replaced file); sticky
};

}  // namespace tandem
