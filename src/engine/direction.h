// Direction: one direction of sync (legacy -> modern, or back) as the
// engine's parts share it: its source and target, its place in the source's
// change log, the records it holds put aside, the statements of its
// entities, and the bounds on its target transactions.
//
// Owned by SyncEngine, one per source side; the drain loop, the apply batch
// (engine/apply/apply_batch.h) and the operator requests (engine/ops/) work
// on it, one at a time, on the engine's thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "connectors/connector.h"
#include "engine/apply/direction_sql.h"
#include "mapping/config.h"
#include "mapping/entity_mapping.h"

namespace tandem {

// Direction names used in control tables and output.
inline const char* DirectionName(Side source) {
  return source == Side::kLegacy ? "legacy-to-modern" : "modern-to-legacy";
}

// Per-direction counters, for logs, status and tests. Each counts what
// committed batches did: a batch rolled back (and re-run) counts once, as
// re-run; a record that waited for its parent and was applied in the same
// batch is not counted as put aside.
struct DirectionStats {
  int64_t batches = 0;
  int64_t changes_read = 0;
  int64_t records_applied = 0;  // inserts + updates + deletes written
  int64_t records_unchanged = 0;
  int64_t parked = 0;     // records newly put aside (rejected, conflict or waiting) and still put aside
  int64_t conflicts = 0;  // conflicts recorded in _tandem_conflicts
  // Records applied one at a time in a savepoint, because the target rejected
  // a write of theirs or of their batch (a set write's rejection re-runs only
  // the rejected records that way, see engine/apply/set_writer.h).
  int64_t records_applied_alone = 0;
};

// A record's key in Direction::parked: entity \x1d encoded source key.
inline std::string ParkedKey(const std::string& entity, const std::string& key) { return entity + '\x1d' + key; }

struct Direction {
  Side source = Side::kLegacy;
  Side target = Side::kModern;
  Connector* src = nullptr;  // the source; a pinned snapshot's connection while a drain reads in it
  Connector* dst = nullptr;
  std::string name;
  int64_t position = 0;
  bool position_uncertain = false;  // a COMMIT failed: reread the position from the target
  int64_t applied_total = 0;
  std::unordered_map<int, const CapturedTableSpec*> tables;  // source table id -> spec
  std::unordered_set<std::string> parked;                    // ParkedKey of the records put aside
  bool has_waiting = false;
  int64_t last_purge_ms = 0;
  int64_t purged_before = 0;
  int64_t written_since_statistics = 0;
  std::vector<DirectionSql> sql;  // per entity index
  // Target tables of the entities this direction applies and that are not
  // paused (a paused entity's table may be gone): locked by apply transactions.
  std::vector<std::string> written_tables;
  // Bounds on one target transaction (sync.max_txn_ms / max_txn_changes,
  // resolved for this target; 0 = none), and the apply rate last seen, to
  // size chunks so a transaction ends before its time is up.
  int max_txn_ms = 0;
  int64_t max_txn_changes = 0;
  double changes_per_ms = 0;
  // The target lets one writer in at a time (TargetTraits::single_writer):
  // after a transaction cut short by the bounds, the engine steps aside so
  // waiting writers get in.
  bool target_single_writer = false;
  // Source identity (engine/source_identity.h): the source's id and the
  // HistoryMark stored with the position; `stopped` says why nothing is
  // applied from the source ("" while it syncs).
  std::string source_id;
  std::string source_mark;
  std::string stopped;
};

}  // namespace tandem
