// SqlSession: one session to one database, speaking SQL. The role every
// other connector role (change_source.h, apply_target.h, capture_ddl.h)
// stands on, and all that reading tables needs (the mapping compiler, the
// status report, the conflict queue).
//
// A session is used by one thread at a time (the sync engine is
// single-threaded by design: directions run one after the other so that each
// sees the other's committed state).
//
// The engine writes portable SQL for Tandem's own control tables (`?`
// placeholders, standard DML); what is dialect-specific (identifier quoting,
// row locks, how a schema's version is read) is asked of the session.
#pragma once

#include <chrono>
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

class SqlSession {
 public:
  virtual ~SqlSession() = default;

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

  // --- transactions ---
  // A read transaction: every read until EndRead sees one snapshot.
  virtual Status BeginRead() = 0;
  virtual void EndRead() = 0;
  // A plain write transaction that IS captured (used by tests, the demo and
  // the installer). Tandem's own writes use ApplyTarget::BeginApply.
  virtual Status BeginWrite() = 0;
  virtual Status Commit() = 0;
  virtual Status Savepoint(const std::string& name) = 0;
  virtual Status ReleaseSavepoint(const std::string& name) = 0;
  virtual Status RollbackToSavepoint(const std::string& name) = 0;
  // A clause that locks the rows a SELECT reads until the transaction ends
  // (" FOR UPDATE"), where the database lets other writers in during a write
  // transaction; "" where a write transaction excludes them (SQLite).
  virtual std::string LockRowsForUpdate() const { return ""; }

  // --- what other sessions do to the database ---
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

  // "" while this session still reaches the database its URL names; else
  // what happened (SQLite: the file was deleted, or another file took its
  // path, while this session kept the old one open). Cheap: every pass.
  virtual std::string Replaced() { return ""; }
  // True once after this session reconnected (it may have reached another
  // server or database since the last check): the engine checks identity and
  // history again. Cheap.
  virtual bool Reconnected() { return false; }
};

}  // namespace tandem
