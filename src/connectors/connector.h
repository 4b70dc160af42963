// Connector: everything Tandem needs from one database, behind one interface
// implemented for SQLite and PostgreSQL (MariaDB next).
//
// A Connector is one session to one database. It is used by one thread at a
// time (the sync engine is single-threaded by design: directions run one after
// the other so that each sees the other's committed state).
//
// The engine writes portable SQL for Tandem's own control tables (`?`
// placeholders, standard DML); the connector owns everything dialect-specific:
// identifier quoting, capture triggers, echo suppression, change detection.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/column_type.h"
#include "core/status.h"
#include "core/value.h"

namespace tandem {

struct ColumnInfo {
  std::string name;
  std::string declared_type;
  ColumnType type;  // what the declared type means for values (core/column_type.h)
  bool not_null = false;
  bool has_default = false;
};

struct TableInfo {
  std::string name;
  std::vector<ColumnInfo> columns;
  std::vector<std::string> primary_key;
  bool integer_rowid_key = false;  // the key is assigned by the database on insert
  // Index of `column` (case-insensitive), or -1.
  int Find(const std::string& column) const;
};

// A table whose changes are captured, and the id its change-log rows carry.
struct CaptureTable {
  int id = 0;
  std::string table;
  std::vector<std::string> key_columns;
  std::vector<std::string> key_types;  // declared types of key_columns (DescribeTable); empty when unknown
};

enum class ChangeOp { kInsert = 1, kUpdate = 2, kDelete = 3, kKeyChange = 4 };

// One row of the change log. Capture records what changed (table, key,
// operation), not row images: the engine reads the current row from the same
// read snapshot, so a batch applies the source state as of that snapshot.
struct CapturedChange {
  int64_t seq = 0;          // strictly increasing in commit order
  int table_id = 0;
  ChangeOp op = ChangeOp::kInsert;
  Row key;                  // key after the change
  Row old_key;              // kKeyChange only: key before the change
  int64_t captured_at_ms = 0;
};

// Maximum number of key columns a captured table may have.
constexpr int kMaxKeyColumns = 4;

class Connector {
 public:
  virtual ~Connector() = default;

  // "sqlite:/path/legacy.db", for messages (never includes a password).
  virtual std::string Describe() const = 0;
  // What database this is, the same text whatever path or URL reached it:
  // SQLite "sqlite-file:DEV:INO" (the file's identity, symlinks followed);
  // PostgreSQL "postgresql:SYSTEM_IDENTIFIER:DATABASE_OID" (the cluster's
  // pg_control_system() identifier and the database). Two connectors with
  // equal identities write the same data.
  virtual Result<std::string> Identity() = 0;
  virtual std::string QuoteIdent(const std::string& name) const = 0;

  // --- introspection ---
  // nullopt when the table does not exist.
  virtual Result<std::optional<TableInfo>> DescribeTable(const std::string& table) = 0;

  // --- plain statements (portable SQL with ? placeholders) ---
  virtual Status Exec(const std::string& sql, const Row& params = {}, int64_t* rows_changed = nullptr) = 0;
  // Exec for a write whose outcome nothing needs at once: the connector may
  // send it without waiting (PostgreSQL pipelines it) and report a failure
  // from the next call that waits for the database, commit included. Where a
  // failed statement spoils the transaction, so does this one.
  virtual Status ExecLater(const std::string& sql, const Row& params) { return Exec(sql, params); }
  // Query whose rows are needed a little later: `out` (which must stay
  // alive) is filled by the time Collect, or the next call that waits,
  // returns ok. Lets reads of two databases overlap.
  virtual Status QueryLater(const std::string& sql, const Row& params, std::vector<Row>* out) {
    return Query(sql, params, out);
  }
  // Waits for everything sent with ExecLater/QueryLater; the first failure.
  virtual Status Collect() { return Status::Ok(); }
  virtual Status Query(const std::string& sql, const Row& params, std::vector<Row>* out) = 0;
  // Several statements without parameters (schema scripts), in order;
  // stops at the first failure.
  virtual Status ExecScript(const std::string& sql) = 0;
  // First row or nullopt.
  virtual Result<std::optional<Row>> QueryOne(const std::string& sql, const Row& params) = 0;
  // Executes an INSERT and returns the key the database assigned to the new row.
  // The columns of a unique constraint that `failed` (a status returned by a
  // write) reports as violated; empty if it is not a unique violation.
  virtual std::vector<std::string> UniqueViolationColumns(const Status& failed) const = 0;
  virtual Result<Value> InsertReturningKey(const std::string& sql, const Row& params,
                                           const std::string& key_column) = 0;

  // --- transactions ---
  // A read transaction: every read until EndRead sees one snapshot.
  virtual Status BeginRead() = 0;
  virtual void EndRead() = 0;
  // BeginRead for the engine's next batch, which starts after `position`. A
  // connector that pinned snapshots (PinIfBehind) reads in the oldest one
  // that ends after `position`, so MaxChangeSeq() returns its end, and lets
  // go of the ones at or before it.
  virtual Status BeginReadAfter(int64_t /*position*/) { return BeginRead(); }
  // A write transaction whose changes the capture triggers ignore (echo
  // suppression). Takes the write lock at once (waits up to the busy timeout).
  virtual Status BeginApply() = 0;
  virtual Status CommitApply() = 0;
  virtual void RollbackApply() = 0;
  // A plain write transaction that IS captured (used by tests and the demo).
  virtual Status BeginWrite() = 0;
  virtual Status Commit() = 0;
  virtual Status Savepoint(const std::string& name) = 0;
  virtual Status ReleaseSavepoint(const std::string& name) = 0;
  virtual Status RollbackToSavepoint(const std::string& name) = 0;
  // True when a write transaction of a process that died may still commit
  // afterwards (a server finishes a COMMIT it received): the engine then
  // calls FenceApply at the start of each apply transaction.
  virtual bool FencesApply() const { return false; }
  // Inside an apply transaction: waits until no other transaction applying
  // `direction` is in progress, and keeps others out until this one ends.
  // The wait may happen at the next statement, which then runs after it.
  virtual Status FenceApply(const std::string& /*direction*/) { return Status::Ok(); }
  // A clause that locks the rows a SELECT reads until the transaction ends
  // (" FOR UPDATE"), where the database lets other writers in during a write
  // transaction; "" where a write transaction excludes them (SQLite).
  virtual std::string LockRowsForUpdate() const { return ""; }
  // Makes this session the only one running a sync engine on this database
  // (a lock held as long as the session, taken again on reconnect); Busy when
  // another process holds it.
  virtual Status LockForOneEngine() { return Status::Ok(); }
  // Refreshes the planner's statistics of Tandem's own tables after they grew
  // (PostgreSQL: ANALYZE, so lookups keep their index plans); a no-op where
  // the planner needs none.
  virtual Status RefreshStatistics() { return Status::Ok(); }
  // True when a written value may be stored in another form than it was
  // given (PostgreSQL: text into timestamptz, jsonb, numeric); the engine
  // then reads back what it wrote (RETURNING) to keep as the agreed version.
  virtual bool StoresValuesInItsOwnForm() const { return false; }
  // True when a failed statement leaves the transaction unusable until a
  // rollback (PostgreSQL); false when only the statement is undone (SQLite).
  virtual bool FailedStatementAbortsTransaction() const { return false; }

  // --- set writes (the apply path: engine/set_writer.h) ---
  // Many rows of one table, addressed by key, in a few statements. Sent like
  // QueryLater: the statements may be pipelined, and their failures (and
  // `returned` rows) arrive by the next Collect or call that waits. The
  // default sends one prepared statement per row (right for SQLite, where a
  // statement is a function call); a server connector sends multi-row ones.
  struct KeyedTable {
    const std::string& table;
    const std::vector<std::string>& key_columns;
    const std::vector<ColumnType>& key_types;  // parallel to key_columns
  };
  // For each of `rows` (its key values, then one value per column of
  // `columns`): sets those columns of the row with that key. With `returned`:
  // appends result sets holding, per updated row, its key and `columns` as
  // stored (any order; a row that no longer exists is missing).
  // REQUIRES: no key twice in `rows`; inside a write transaction.
  virtual Status UpdateMany(const KeyedTable& t, const std::vector<std::string>& columns,
                            const std::vector<ColumnType>& types, const std::vector<Row>& rows,
                            std::deque<std::vector<Row>>* returned);
  // Deletes the rows of `keys` (keys of rows that do not exist are ignored).
  virtual Status DeleteMany(const KeyedTable& t, const std::vector<Row>& keys);

  // --- capture ---
  // DDL creating Tandem's control tables (idempotent).
  virtual std::vector<std::string> ControlTablesSql() const = 0;
  // DDL bringing control tables made by an older Tandem up to date, to run
  // before ControlTablesSql(); empty when they are current or absent.
  virtual Result<std::vector<std::string>> UpgradeControlTablesSql() = 0;
  // DDL (re)creating capture for `table` (idempotent: drops and recreates its triggers).
  virtual std::vector<std::string> CaptureSql(const CaptureTable& table) const = 0;
  // DDL removing capture for `table`.
  virtual std::vector<std::string> DropCaptureSql(const CaptureTable& table) const = 0;
  // DDL dropping all control tables (`tandem uninstall --purge`).
  virtual std::vector<std::string> DropControlTablesSql() const = 0;
  // DDL dropping the control tables that hold capture state (change log,
  // capture list, positions, statistics, put-aside changes, conflicts), and
  // keeping the key map with its versions and bases (_tandem_records) and the
  // audit trail (_tandem_audit): what `tandem uninstall` runs, so that a
  // reinstall still knows which rows are one record. Positions go with the
  // log they point into: a reinstalled log starts afresh from position 0.
  virtual std::vector<std::string> DropRuntimeTablesSql() const = 0;
  // Tables DropRuntimeTablesSql keeps, as this database names them.
  static constexpr const char* kKeptByUninstall[] = {"_tandem_records", "_tandem_audit", "_tandem_gaps",
                                                     "_tandem_identity"};
  // True when the control tables exist.
  virtual Result<bool> IsInstalled() = 0;
  // Whether capture of `table` is in place as CaptureSql(table) makes it:
  // "" when it is, else what is wrong, naming the trigger ("trigger X is
  // missing" after a table rebuild dropped it, "... is disabled", "... is not
  // the one install makes" when stale).
  virtual Result<std::string> CaptureProblem(const CaptureTable& table) = 0;

  // Highest change-log seq visible now (0 if none). Inside BeginRead: the snapshot's.
  // Outside a transaction it is a commit boundary: every log row up to it
  // belongs to a transaction that committed, and no later row does.
  virtual Result<int64_t> MaxChangeSeq() = 0;
  // Text a connector needs besides the number to resume reading after `seq`
  // (PostgreSQL: the snapshot that ends the window at seq). The engine stores
  // it with the position, in the same target transaction. REQUIRES: seq is 0
  // or a value MaxChangeSeq() returned on this connector.
  virtual std::string PositionCursor(int64_t /*seq*/) const { return ""; }
  // Where reading resumes: a stored position and its cursor ("" for none).
  virtual Status ResumeAt(int64_t /*seq*/, const std::string& /*cursor*/) { return Status::Ok(); }
  // Changes with after < seq <= upto, in seq order, at most `limit`.
  virtual Status ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) = 0;
  // Deletes change-log rows with seq < before (keeps the row at `before` so
  // sequence numbers are never reused). Short transaction.
  virtual Status PurgeChanges(int64_t before) = 0;

  // Changes of `table_id` captured after position `after`, not yet applied:
  // how many, and the oldest one's capture time (ms; 0 when none).
  struct PendingInfo {
    int64_t count = 0;
    int64_t oldest_at_ms = 0;
  };
  virtual Result<PendingInfo> PendingChanges(int64_t after, int table_id) = 0;
  // Capture time (ms) of the newest change still in the log for `key` of
  // `table`; NULL when there is none.
  virtual Result<Value> NewestCaptureMillis(const std::string& table, const Row& key) = 0;
  // Called by the engine while it applies a long stretch of changes. A
  // connector whose commit boundaries no other session can sample
  // (PostgreSQL) pins a snapshot, on a session of its own, once about
  // `spacing` changes were captured after the newest window it made: later
  // batches then end there (BeginReadAfter) instead of taking in everything
  // that arrived meanwhile. Best effort: a failure only means no pin.
  virtual void PinIfBehind(int64_t /*spacing*/) {}
  // True when another session may read MaxChangeSeq() to learn commit
  // boundaries (CommitBoundaries' sampler). False where reading a position
  // creates it (PostgreSQL's ticks), so only the engine may.
  virtual bool SupportsBoundarySampling() const { return true; }

  // --- identity and history (engine/source_identity.h) ---
  // A text naming the change at position `seq` of this database's history,
  // as it is now: the engine stores it with the position (in the target
  // transaction) and later asks CheckHistory whether the database still has
  // that history. SQLite: the log row at seq (PurgeChanges keeps it);
  // PostgreSQL: the server, database and timeline. "" for position 0.
  // REQUIRES: seq is 0 or a position this session read up to; inside the
  // read transaction that read it, or outside any.
  virtual Result<std::string> HistoryMark(int64_t /*seq*/) { return std::string(); }
  // Whether this database still has the history `mark` (a HistoryMark of
  // position `seq`, stored with `cursor`) came from.
  struct HistoryCheck {
    enum class Verdict {
      kSame,          // the change at the position is still there: go on
      kSourceDiffers,  // restored from a backup, recreated, failed over: not the history applied
      kTargetBehind,   // the log was applied and purged past the position: the target is older
    };
    Verdict verdict = Verdict::kSame;
    std::string what;  // what differs, for the operator (positions, log ends)
  };
  virtual Result<HistoryCheck> CheckHistory(int64_t /*seq*/, const std::string& /*cursor*/,
                                            const std::string& /*mark*/) {
    return HistoryCheck{};
  }
  // "" while this session still reaches the database its URL names; else
  // what happened (SQLite: the file was deleted, or another file took its
  // path, while this session kept the old one open). Cheap: every pass.
  virtual std::string Replaced() { return ""; }
  // True once after this session reconnected (it may have reached another
  // server or database since the last check): the engine checks identity and
  // history again. Cheap.
  virtual bool Reconnected() { return false; }

  // Blocks up to `timeout` until another session commits to this database.
  // Returns true if a commit was seen (always true on the first call, which
  // cannot know what happened before it). Cheap to call often.
  virtual Result<bool> WaitForCommit(std::chrono::milliseconds timeout) = 0;
  // A file descriptor that becomes readable when another session may have
  // committed (SQLite: inotify on the database's folder), so an idle engine
  // can block in poll() instead of calling WaitForCommit every millisecond;
  // -1 when there is none. WaitForCommit drains it. Owned by the connector.
  virtual int CommitNotifyFd() { return -1; }

  // A text that changes whenever the definition of one of `tables` changes
  // (a column renamed, dropped, added or retyped; the table dropped or
  // recreated). Cheap enough to call every pass (SQLite: PRAGMA
  // schema_version, which covers the whole database; PostgreSQL: a digest of
  // the tables' catalog rows). Compare only results of the same `tables`.
  virtual Result<std::string> SchemaVersion(const std::vector<std::string>& tables) = 0;
  // A cheap signature of the columns of `tables` (those SchemaVersion was
  // last called with) as this transaction sees them, in (*out)[0][0] once
  // Collect (or the next call that waits) returns ok: it changes when a
  // column is added, dropped, renamed or retyped, or a table is dropped.
  // Where other sessions may change a table's definition during the
  // transaction (PostgreSQL), the tables in `lock` (those written; they must
  // exist) are locked against that first (ROW EXCLUSIVE: writers go on,
  // ALTER TABLE waits). With `lock` empty it may run outside a transaction.
  virtual Status SchemaVersionLater(const std::vector<std::string>& tables, const std::vector<std::string>& /*lock*/,
                                    std::vector<Row>* out) {
    auto v = SchemaVersion(tables);
    if (!v.ok()) return v.status();
    *out = {Row{Value::Text(*v)}};
    return Status::Ok();
  }

};

struct ConnectorOptions {
  int busy_timeout_ms = 5000;
  bool create_if_missing = false;
};
// Opens a connector for a resolved database URL: "sqlite:/abs/path.db", a
// postgresql:// URI or PostgreSQL keyword/value conninfo. Its errors show the
// target with the password masked (connectors/postgres/pg_target.h).
Result<std::unique_ptr<Connector>> OpenConnector(const std::string& url, const ConnectorOptions& options);

}  // namespace tandem
