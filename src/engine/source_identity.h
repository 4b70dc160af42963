// Source identity: before anything is applied from a source, Tandem makes
// sure the source is the database, with the same history, that the stored
// position came from.
//
// Each database has a random id, made by its first `tandem install` and kept
// by every later one (_tandem_identity; a backup copy carries it, another
// database has another). With each direction's position the target stores,
// in the same transaction: the source's id (source_id) and the source's
// HistoryMark at the position (source_mark; ChangeSource::HistoryMark: SQLite
// the log row at the position, which PurgeChanges keeps; PostgreSQL the
// server, database and timeline). Before a direction applies anything, the
// engine compares them with the source as it is now:
//   - another id: a different database behind the same URL;
//   - the same id, another history (ChangeSource::CheckHistory): restored from a
//     backup, to a point before the position or written past it since, or
//     recreated; or the log was purged past the position, which means the
//     TARGET is older than what was applied to it;
//   - while running, a SQLite file deleted or replaced under the open
//     session (SqlSession::Replaced).
// A direction found so is stopped: nothing is applied from it until the
// operator runs `tandem accept-restored SIDE` (AcceptSource), which re-bases
// the stored position on the source's log end, audited.
//
// Thread-safety: none (the engine's thread, or a CLI command).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connectors/connector.h"
#include "mapping/config.h"

namespace tandem {

// A direction's stored position, as the target holds it.
struct StoredPosition {
  bool exists = false;  // the target has a position row for the direction
  int64_t seq = 0;
  std::string cursor;
  std::optional<std::string> source_id;  // NULL: stored by an older version or never applied
  std::string source_mark;
};

// Why a direction may not apply from its source.
struct SourceFinding {
  enum class Kind {
    kNone,
    kDifferentDatabase,  // another database behind the URL (another id)
    kRestored,           // the source's history is not the one applied (restored, recreated)
    kTargetBehind,       // the target lost applied changes (restored), the source log is purged past them
    kReplaced,           // the SQLite file was deleted or replaced while the engine had it open
  };
  Kind kind = Kind::kNone;
  Side culprit = Side::kLegacy;  // the database that is not what the position says
  std::string what;              // what happened: databases, positions, log ends
  bool ok() const { return kind == Kind::kNone; }
  // True when the whole pair must stop (the session no longer reaches the
  // database, or it is another one), not just this direction.
  bool stops_both() const { return kind == Kind::kDifferentDatabase || kind == Kind::kReplaced; }
};

// The id in `db`'s _tandem_identity; "" when it has none.
Result<std::string> ReadDatabaseId(SqlSession& db);
// `direction`'s stored position in `target`.
Result<StoredPosition> LoadStoredPosition(SqlSession& target, const std::string& direction);

// Checks `source` (of direction `source_side` -> other side) against what the
// target stored. `source_id` is ReadDatabaseId(source). REQUIRES: `source` is
// outside a transaction, or in a read transaction.
Result<SourceFinding> CheckSource(ChangeSource& source, Side source_side, const std::string& source_id,
                                  const StoredPosition& stored);

// The operator message for a stopped direction: what happened, which
// database, and what to do (tandem accept-restored, reconcile).
std::string StoppedMessage(const Config& config, Side source_side, const SqlSession& source,
                           const SourceFinding& finding);

// `tandem accept-restored SIDE`: for the direction from `source_side`, stores
// a position at the end of the source's log as it is now (the changes in it
// are taken as already in the target), with the source's id and mark, and
// records the old and new position in the target's _tandem_audit. REQUIRES:
// no engine running (the caller holds no transaction).
Status AcceptSource(ChangeSource& source, ApplyTarget& target, Side source_side, const std::string& reason);

// Checks the direction from `source_side` as the engine would on start:
// nullopt when it may sync, else the operator message (for `tandem status`
// and `tandem check`). Outside transactions.
Result<std::optional<std::string>> StoppedDirectionMessage(const Config& config, ChangeSource& source, SqlSession& target,
                                                           Side source_side);

// `tandem accept-restored SIDE`: re-bases (AcceptSource) each direction that
// is stopped because of the `side` database (restored, or its target
// behind), and for another database behind `side`'s URL every direction.
// Returns what was done, a line per direction; empty when nothing was stopped.
Result<std::vector<std::string>> AcceptRestored(const Config& config, Connector& legacy, Connector& modern, Side side);

}  // namespace tandem
