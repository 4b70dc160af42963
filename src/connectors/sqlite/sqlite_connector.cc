#include "connectors/sqlite/sqlite_connector.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <strings.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "core/key_codec.h"

namespace tandem {

int TableInfo::Find(const std::string& column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (strcasecmp(columns[i].name.c_str(), column.c_str()) == 0) return static_cast<int>(i);
  return -1;
}

Result<std::unique_ptr<SqliteConnector>> SqliteConnector::Open(const std::string& path,
                                                               const ConnectorOptions& options) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  TANDEM_ASSIGN_OR_RETURN(auto handle, SqliteHandle::Open(path, flags, options.busy_timeout_ms));
  auto conn = std::unique_ptr<SqliteConnector>(new SqliteConnector(std::move(handle)));
  conn->busy_timeout_ms_ = options.busy_timeout_ms;
  if (struct stat st; stat(path.c_str(), &st) == 0) {
    conn->have_file_id_ = true;
    conn->file_dev_ = static_cast<uint64_t>(st.st_dev);
    conn->file_ino_ = static_cast<uint64_t>(st.st_ino);
  }
  // Tandem's own session settings; journal_mode is set by install (it is persistent).
  TANDEM_RETURN_IF_ERROR(conn->handle_->ExecScript("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32000;"));
  // tandem_key_hash(entity, key) = KeyHash(), for upgrading key maps in SQL.
  int rc = sqlite3_create_function(
      conn->handle_->db(), "tandem_key_hash", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
      [](sqlite3_context* ctx, int, sqlite3_value** argv) {
        auto text = [](sqlite3_value* v) {
          const char* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
          return std::string_view(p ? p : "", static_cast<size_t>(sqlite3_value_bytes(v)));
        };
        sqlite3_result_int64(ctx, KeyHash(text(argv[0]), text(argv[1])));
      },
      nullptr, nullptr);
  if (rc != SQLITE_OK) return Status::Internal(fmt::format("cannot register tandem_key_hash on {}: {}", path, sqlite3_errstr(rc)));
  return conn;
}

std::string SqliteConnector::QuoteIdent(const std::string& name) const {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += "\"\"";
    else out += c;
  }
  return out + "\"";
}

Result<std::optional<TableInfo>> SqliteConnector::DescribeTable(const std::string& table) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(handle_->Run(
      "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid", {Value::Text(table)},
      &rows));
  if (rows.empty()) return std::optional<TableInfo>();
  TableInfo info;
  info.name = table;
  std::vector<std::pair<int64_t, std::string>> pk;
  for (auto& r : rows) {
    ColumnInfo c;
    c.name = r[0].as_bytes();
    c.declared_type = r[1].is_null() ? "" : r[1].as_bytes();
    c.type = SqliteColumnType(c.declared_type);
    c.not_null = r[2].as_integer() != 0;
    c.has_default = !r[3].is_null();
    if (r[4].as_integer() > 0) pk.emplace_back(r[4].as_integer(), c.name);
    info.columns.push_back(std::move(c));
  }
  std::sort(pk.begin(), pk.end());
  for (auto& [n, name] : pk) info.primary_key.push_back(name);
  if (pk.size() == 1) {
    const ColumnInfo& c = info.columns[info.Find(pk[0].second)];
    info.integer_rowid_key = strcasecmp(c.declared_type.c_str(), "INTEGER") == 0;
  }
  return std::optional<TableInfo>(std::move(info));
}

Status SqliteConnector::Exec(const std::string& sql, const Row& params, int64_t* rows_changed) {
  return handle_->Run(sql, params, nullptr, rows_changed);
}

Status SqliteConnector::Query(const std::string& sql, const Row& params, std::vector<Row>* out) {
  return handle_->Run(sql, params, out);
}

Result<std::optional<Row>> SqliteConnector::QueryOne(const std::string& sql, const Row& params) {
  TANDEM_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, handle_->Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) SqliteHandle::BindValue(stmt, static_cast<int>(i + 1), params[i]);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    Row row;
    int n = sqlite3_column_count(stmt);
    row.reserve(n);
    for (int c = 0; c < n; ++c) row.push_back(SqliteHandle::ColumnValue(stmt, c));
    sqlite3_reset(stmt);
    return std::optional<Row>(std::move(row));
  }
  if (rc == SQLITE_DONE) {
    sqlite3_reset(stmt);
    return std::optional<Row>();
  }
  Status st = handle_->LastError(fmt::format("executing [{}]", sql.substr(0, 200)));
  sqlite3_reset(stmt);
  return st;
}

Result<Value> SqliteConnector::InsertReturningKey(const std::string& sql, const Row& params,
                                                  const std::string& /*key_column*/) {
  TANDEM_RETURN_IF_ERROR(handle_->Run(sql, params));
  return Value::Integer(sqlite3_last_insert_rowid(handle_->db()));
}

Status SqliteConnector::BeginRead() {
  TANDEM_RETURN_IF_ERROR(handle_->Run("BEGIN", {}));
  in_read_ = true;
  return Status::Ok();
}

void SqliteConnector::EndRead() {
  if (in_read_) handle_->Run("COMMIT", {});
  in_read_ = false;
}

Status SqliteConnector::BeginApply() {
  TANDEM_RETURN_IF_ERROR(handle_->Run("BEGIN IMMEDIATE", {}));
  Status st = handle_->Run("INSERT INTO _tandem_applying(x) VALUES (1)", {});
  if (!st.ok()) handle_->Run("ROLLBACK", {});
  return st;
}

Status SqliteConnector::CommitApply() {
  TANDEM_RETURN_IF_ERROR(handle_->Run("DELETE FROM _tandem_applying", {}));
  Status st = handle_->Run("COMMIT", {});
  if (!st.ok()) RollbackApply();
  return st;
}

void SqliteConnector::RollbackApply() {
  if (!sqlite3_get_autocommit(handle_->db())) handle_->Run("ROLLBACK", {});
}

Status SqliteConnector::BeginWrite() { return handle_->Run("BEGIN IMMEDIATE", {}); }
Status SqliteConnector::Commit() {
  Status st = handle_->Run("COMMIT", {});
  if (!st.ok()) RollbackApply();
  return st;
}
Status SqliteConnector::Savepoint(const std::string& name) { return handle_->Run("SAVEPOINT " + name, {}); }
Status SqliteConnector::ReleaseSavepoint(const std::string& name) { return handle_->Run("RELEASE " + name, {}); }
Status SqliteConnector::RollbackToSavepoint(const std::string& name) {
  TANDEM_RETURN_IF_ERROR(handle_->Run("ROLLBACK TO " + name, {}));
  return handle_->Run("RELEASE " + name, {});
}

// Stretches of time when a table's capture was missing (engine/capture_health.h).
constexpr const char* kGapsTableSql =
    "CREATE TABLE IF NOT EXISTS _tandem_gaps(id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, problem TEXT NOT NULL, "
    "noticed_at_ms INTEGER NOT NULL, repaired_at_ms INTEGER, cleared_at_ms INTEGER)";
namespace {
constexpr const char* kIdentityTableSql = "CREATE TABLE IF NOT EXISTS _tandem_identity(db_id TEXT NOT NULL)";
constexpr const char* kIdentityRowSql =
    "INSERT INTO _tandem_identity(db_id) SELECT lower(hex(randomblob(16))) WHERE NOT EXISTS (SELECT 1 FROM "
    "_tandem_identity)";
}  // namespace

std::vector<std::string> SqliteConnector::ControlTablesSql() const {
  return {
      "PRAGMA journal_mode=WAL",
      // Which tables are captured, and the id their log rows carry.
      "CREATE TABLE IF NOT EXISTS _tandem_capture(table_id INTEGER PRIMARY KEY, table_name TEXT NOT NULL UNIQUE, "
      "key_columns TEXT NOT NULL)",
      // The change log: what changed, in commit order. k* = key after, o* = key before (key changes).
      "CREATE TABLE IF NOT EXISTS _tandem_log(seq INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, op INTEGER NOT "
      "NULL, k1, k2, k3, k4, o1, o2, o3, o4, at_ms INTEGER)",
      // Present (one row) only inside Tandem's own apply transactions.
      "CREATE TABLE IF NOT EXISTS _tandem_applying(x INTEGER)",
      // Per direction applied INTO this database: the source position, stored with the data.
      // source_id / source_mark: the source database's identity and its
      // HistoryMark at seq (engine/source_identity.h).
      "CREATE TABLE IF NOT EXISTS _tandem_position(direction TEXT PRIMARY KEY, seq INTEGER NOT NULL, applied_at_ms "
      "INTEGER, source_at_ms INTEGER, applied_total INTEGER NOT NULL DEFAULT 0, cursor TEXT, source_id TEXT, "
      "source_mark TEXT)",
      // Per direction and entity: when a record was last written, and how many in all.
      "CREATE TABLE IF NOT EXISTS _tandem_entity_stats(direction TEXT NOT NULL, entity TEXT NOT NULL, "
      "last_applied_at_ms INTEGER, applied_total INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(direction, entity))",
      // Key map + last agreed version, per record; the newest version across both databases wins.
      // Lookups by modern key go through mhash = KeyHash(entity, mkey): an
      // 8-byte index entry instead of a long (often random) key.
      "CREATE TABLE IF NOT EXISTS _tandem_records(entity TEXT NOT NULL, lkey TEXT NOT NULL, mkey TEXT NOT NULL, "
      "mhash INTEGER NOT NULL, version INTEGER NOT NULL, gone INTEGER NOT NULL DEFAULT 0, lbase TEXT, mbase TEXT, "
      "UNIQUE(entity, lkey))",
      "CREATE INDEX IF NOT EXISTS _tandem_records_by_mhash ON _tandem_records(mhash)",
      "CREATE INDEX IF NOT EXISTS _tandem_records_gone ON _tandem_records(version) WHERE gone = 1",
      // Changes put aside (rejected by this database, or waiting for a parent).
      "CREATE TABLE IF NOT EXISTS _tandem_parked(id INTEGER PRIMARY KEY, direction TEXT NOT NULL, entity TEXT NOT "
      "NULL, source_key TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, first_seq INTEGER, last_seq "
      "INTEGER, parked_at_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 1, retry_requested INTEGER NOT NULL DEFAULT 0, "
      "old_key TEXT, UNIQUE(direction, entity, source_key))",
      // Concurrent edits of the same field (or a delete against an update), the
      // policy that settled them, the base both sides last agreed on, and the
      // winner. status: 'settled' by a policy, 'open' (manual: waiting for a
      // person), 'resolved' (settled by `tandem conflicts resolve`).
      "CREATE TABLE IF NOT EXISTS _tandem_conflicts(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, direction TEXT "
      "NOT NULL, entity TEXT NOT NULL, lkey TEXT, mkey TEXT, field TEXT, legacy_value TEXT, modern_value TEXT, "
      "winner TEXT NOT NULL, kind TEXT NOT NULL, policy TEXT, base_value TEXT, status TEXT NOT NULL DEFAULT "
      "'settled', settled_at_ms INTEGER, resolution TEXT)",
      // The engine looks for 'resolving' requests on every pass.
      "CREATE INDEX IF NOT EXISTS _tandem_conflicts_status ON _tandem_conflicts(status)",
      // Operator actions (retry, discard) for the audit trail.
      "CREATE TABLE IF NOT EXISTS _tandem_audit(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, action TEXT NOT "
      "NULL, detail TEXT NOT NULL)",
      kGapsTableSql,
      // This database's identity: a random id made at the first install and
      // kept by every later one (a backup copy carries it; another database
      // has another). Positions stored in the other database name it.
      kIdentityTableSql,
      kIdentityRowSql,
  };
}

std::vector<std::string> SqliteConnector::UniqueViolationColumns(const Status& failed) const {
  // SQLite: "UNIQUE constraint failed: customers.email, customers.region"
  // (also for a PRIMARY KEY on a WITHOUT ROWID or non-integer key).
  static const std::string kMarker = "UNIQUE constraint failed: ";
  std::vector<std::string> out;
  if (failed.code() != StatusCode::kConstraint) return out;
  auto at = failed.message().find(kMarker);
  if (at == std::string::npos) return out;
  std::string list = failed.message().substr(at + kMarker.size());
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(", ", pos);
    std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto dot = item.rfind('.');
    out.push_back(dot == std::string::npos ? item : item.substr(dot + 1));
    if (comma == std::string::npos) break;
    pos = comma + 2;
  }
  return out;
}

Result<std::vector<std::string>> SqliteConnector::UpgradeControlTablesSql() {
  std::vector<std::string> out;
  TANDEM_ASSIGN_OR_RETURN(auto records, DescribeTable("_tandem_records"));
  if (records && records->Find("mhash") < 0) {  // before the hashed modern-key index
    out.push_back("ALTER TABLE _tandem_records ADD COLUMN mhash INTEGER NOT NULL DEFAULT 0");
    out.push_back("UPDATE _tandem_records SET mhash = tandem_key_hash(entity, mkey)");
    out.push_back("DROP INDEX IF EXISTS _tandem_records_by_mkey");
  }
  TANDEM_ASSIGN_OR_RETURN(auto position, DescribeTable("_tandem_position"));
  if (position && position->Find("cursor") < 0)  // before positions carried a connector cursor
    out.push_back("ALTER TABLE _tandem_position ADD COLUMN cursor TEXT");
  if (position && position->Find("source_id") < 0) {  // before positions named the source and its history
    out.push_back("ALTER TABLE _tandem_position ADD COLUMN source_id TEXT");
    out.push_back("ALTER TABLE _tandem_position ADD COLUMN source_mark TEXT");
  }
  TANDEM_ASSIGN_OR_RETURN(auto identity, DescribeTable("_tandem_identity"));
  if (position && !identity) {  // before databases had an identity
    out.push_back(kIdentityTableSql);
    out.push_back(kIdentityRowSql);
  }
  TANDEM_ASSIGN_OR_RETURN(auto parked, DescribeTable("_tandem_parked"));
  if (parked && parked->Find("old_key") < 0)  // before held key changes kept their old key
    out.push_back("ALTER TABLE _tandem_parked ADD COLUMN old_key TEXT");
  TANDEM_ASSIGN_OR_RETURN(auto gaps, DescribeTable("_tandem_gaps"));
  TANDEM_ASSIGN_OR_RETURN(auto capture, DescribeTable("_tandem_capture"));
  if (capture && !gaps) out.push_back(kGapsTableSql);  // before capture gaps were recorded
  TANDEM_ASSIGN_OR_RETURN(auto conflicts, DescribeTable("_tandem_conflicts"));
  if (conflicts) {  // before conflict policies
    for (const char* column : {"policy TEXT", "base_value TEXT", "status TEXT NOT NULL DEFAULT 'settled'",
                               "settled_at_ms INTEGER", "resolution TEXT"}) {
      std::string name(column, std::string_view(column).find(' '));
      if (conflicts->Find(name) < 0) out.push_back(std::string("ALTER TABLE _tandem_conflicts ADD COLUMN ") + column);
    }
  }
  return out;
}

namespace {
std::string TriggerName(const CaptureTable& t, const char* kind) { return fmt::format("_tandem_{}_{}", t.id, kind); }
}  // namespace

std::vector<std::string> SqliteConnector::CaptureSql(const CaptureTable& t) const {
  std::vector<std::string> out = DropCaptureSql(t);
  const std::string tbl = QuoteIdent(t.table);
  // Capture time (ms), appended to every log row.
  const std::string now = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
  const std::string not_applying = "NOT EXISTS (SELECT 1 FROM _tandem_applying)";
  std::string kcols, newk, oldk, ocols, same_key;
  for (size_t i = 0; i < t.key_columns.size(); ++i) {
    std::string q = QuoteIdent(t.key_columns[i]);
    kcols += fmt::format(", k{}", i + 1);
    ocols += fmt::format(", o{}", i + 1);
    newk += ", NEW." + q;
    oldk += ", OLD." + q;
    if (i) same_key += " AND ";
    same_key += fmt::format("OLD.{0} IS NEW.{0}", q);
  }
  auto literal = [](const std::string& text) {  // a SQL string literal
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  };
  std::string keys_csv;
  for (size_t i = 0; i < t.key_columns.size(); ++i) keys_csv += (i ? "," : "") + t.key_columns[i];
  out.push_back(fmt::format(
      "INSERT INTO _tandem_capture(table_id, table_name, key_columns) VALUES ({}, {}, {}) ON CONFLICT(table_id) "
      "DO UPDATE SET table_name = excluded.table_name, key_columns = excluded.key_columns",
      t.id, literal(t.table), literal(keys_csv)));
  out.push_back(fmt::format(
      "CREATE TRIGGER {} AFTER INSERT ON {} WHEN {} BEGIN INSERT INTO _tandem_log(table_id, op{}, at_ms) VALUES ({}, "
      "1{}, {}); END",
      TriggerName(t, "ins"), tbl, not_applying, kcols, t.id, newk, now));
  out.push_back(fmt::format(
      "CREATE TRIGGER {} AFTER UPDATE ON {} WHEN ({}) AND {} BEGIN INSERT INTO _tandem_log(table_id, op{}, at_ms) "
      "VALUES ({}, 2{}, {}); END",
      TriggerName(t, "upd"), tbl, same_key, not_applying, kcols, t.id, newk, now));
  out.push_back(fmt::format(
      "CREATE TRIGGER {} AFTER UPDATE ON {} WHEN NOT ({}) AND {} BEGIN INSERT INTO _tandem_log(table_id, op{}{}, "
      "at_ms) VALUES ({}, 4{}{}, {}); END",
      TriggerName(t, "key"), tbl, same_key, not_applying, kcols, ocols, t.id, newk, oldk, now));
  out.push_back(fmt::format(
      "CREATE TRIGGER {} AFTER DELETE ON {} WHEN {} BEGIN INSERT INTO _tandem_log(table_id, op{}, at_ms) VALUES ({}, "
      "3{}, {}); END",
      TriggerName(t, "del"), tbl, not_applying, kcols, t.id, oldk, now));
  return out;
}

std::vector<std::string> SqliteConnector::DropCaptureSql(const CaptureTable& t) const {
  std::vector<std::string> out;
  for (const char* kind : {"ins", "upd", "key", "del"})
    out.push_back(fmt::format("DROP TRIGGER IF EXISTS {}", TriggerName(t, kind)));
  return out;
}

std::vector<std::string> SqliteConnector::DropRuntimeTablesSql() const {
  return {"DROP TABLE IF EXISTS _tandem_log",      "DROP TABLE IF EXISTS _tandem_applying",
          "DROP TABLE IF EXISTS _tandem_epoch",  // from early versions
          "DROP TABLE IF EXISTS _tandem_entity_stats",
          "DROP TABLE IF EXISTS _tandem_position", "DROP TABLE IF EXISTS _tandem_parked",
          "DROP TABLE IF EXISTS _tandem_conflicts", "DROP TABLE IF EXISTS _tandem_capture"};
}

std::vector<std::string> SqliteConnector::DropControlTablesSql() const {
  std::vector<std::string> out = DropRuntimeTablesSql();
  for (const char* kept : kKeptByUninstall) out.push_back(fmt::format("DROP TABLE IF EXISTS {}", kept));
  return out;
}

Result<std::string> SqliteConnector::Identity() {
  struct stat st;
  if (stat(handle_->path().c_str(), &st) != 0)
    return Status::Unavailable(fmt::format("cannot stat {}: {}", handle_->path(), strerror(errno)));
  return fmt::format("sqlite-file:{}:{}", static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

Result<bool> SqliteConnector::IsInstalled() {
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                             "('_tandem_log', '_tandem_applying', '_tandem_position', "
                                             "'_tandem_records', '_tandem_capture')",
                                             {}));
  return row && (*row)[0].as_integer() == 5;
}

Result<std::string> SqliteConnector::CaptureProblem(const CaptureTable& t) {
  TANDEM_ASSIGN_OR_RETURN(auto registered,
                          QueryOne("SELECT table_name FROM _tandem_capture WHERE table_id = ?", {Value::Integer(t.id)}));
  if (!registered || strcasecmp((*registered)[0].as_bytes().c_str(), t.table.c_str()) != 0)
    return fmt::format("table '{}' is not registered for capture (id {})", t.table, t.id);
  // SQLite keeps a trigger's CREATE statement as it was written (and drops
  // the trigger with its table): compare it with what install makes now.
  static const std::string kCreate = "CREATE TRIGGER ";
  for (const std::string& sql : CaptureSql(t)) {
    if (sql.rfind(kCreate, 0) != 0) continue;
    const std::string name = sql.substr(kCreate.size(), sql.find(' ', kCreate.size()) - kCreate.size());
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT sql, tbl_name FROM sqlite_master WHERE type = 'trigger' AND "
                                               "name = ?",
                                               {Value::Text(name)}));
    if (!row)
      return fmt::format("capture trigger {} on '{}' is missing (a table rebuild drops a table's triggers)", name,
                         t.table);
    if (strcasecmp((*row)[1].as_bytes().c_str(), t.table.c_str()) != 0 || (*row)[0].as_bytes() != sql)
      return fmt::format("capture trigger {} on '{}' is not the one 'tandem install' makes now (stale or changed)",
                         name, t.table);
  }
  return std::string();
}

Result<int64_t> SqliteConnector::MaxChangeSeq() {
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT coalesce(max(seq), 0) FROM _tandem_log", {}));
  return (*row)[0].as_integer();
}

Status SqliteConnector::ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) {
  TANDEM_ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                          handle_->Prepare("SELECT seq, table_id, op, k1, k2, k3, k4, o1, o2, o3, o4, at_ms FROM "
                                           "_tandem_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"));
  sqlite3_bind_int64(stmt, 1, after);
  sqlite3_bind_int64(stmt, 2, upto);
  sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(limit));
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    CapturedChange c;
    c.seq = sqlite3_column_int64(stmt, 0);
    c.table_id = sqlite3_column_int(stmt, 1);
    c.op = static_cast<ChangeOp>(sqlite3_column_int(stmt, 2));
    c.key.reserve(kMaxKeyColumns);
    for (int i = 0; i < kMaxKeyColumns; ++i) c.key.push_back(SqliteHandle::ColumnValue(stmt, 3 + i));
    if (c.op == ChangeOp::kKeyChange)
      for (int i = 0; i < kMaxKeyColumns; ++i) c.old_key.push_back(SqliteHandle::ColumnValue(stmt, 7 + i));
    c.captured_at_ms = sqlite3_column_int64(stmt, 11);
    out->push_back(std::move(c));
  }
  Status st = rc == SQLITE_DONE ? Status::Ok() : handle_->LastError("reading _tandem_log");
  sqlite3_reset(stmt);
  return st;
}

Result<Connector::PendingInfo> SqliteConnector::PendingChanges(int64_t after, int table_id) {
  TANDEM_ASSIGN_OR_RETURN(auto p, QueryOne("SELECT count(*), coalesce(min(at_ms), 0) FROM _tandem_log WHERE seq > ? "
                                           "AND table_id = ?",
                                           {Value::Integer(after), Value::Integer(table_id)}));
  return PendingInfo{(*p)[0].as_integer(), (*p)[1].as_integer()};
}

Result<Value> SqliteConnector::NewestCaptureMillis(const std::string& table, const Row& key) {
  std::string sql = "SELECT max(l.at_ms) FROM _tandem_log l JOIN _tandem_capture c ON c.table_id = l.table_id "
                    "WHERE c.table_name = ? COLLATE NOCASE";
  Row params{Value::Text(table)};
  for (size_t i = 0; i < key.size(); ++i) {
    sql += fmt::format(" AND l.k{} IS ?", i + 1);
    params.push_back(key[i]);
  }
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(sql, params));
  return row ? (*row)[0] : Value::Null();
}

Status SqliteConnector::PurgeChanges(int64_t before) {
  // Chunks keep each write transaction short: the application shares the
  // writer lock. Purging is housekeeping: if the lock is busy, give up at once
  // (it is retried later) rather than stall the sync loop in the busy handler.
  constexpr int64_t kChunk = 5000;
  struct ShortBusyTimeout {
    sqlite3* db;
    int restore;
    ~ShortBusyTimeout() { sqlite3_busy_timeout(db, restore); }
  } guard{handle_->db(), busy_timeout_ms_};
  sqlite3_busy_timeout(handle_->db(), 2);
  while (true) {
    TANDEM_RETURN_IF_ERROR(handle_->Run("BEGIN IMMEDIATE", {}));
    int64_t changed = 0;
    Status st = handle_->Run(
        "DELETE FROM _tandem_log WHERE seq < ?1 AND seq < (SELECT coalesce(min(seq), 0) FROM _tandem_log) + ?2",
        {Value::Integer(before), Value::Integer(kChunk)}, nullptr, &changed);
    if (!st.ok()) {
      handle_->Run("ROLLBACK", {});
      return st;
    }
    if (Status cs = handle_->Run("COMMIT", {}); !cs.ok()) {
      RollbackApply();
      return cs;
    }
    if (changed < kChunk) return Status::Ok();
  }
}

Result<int64_t> SqliteConnector::DataVersion() {
  TANDEM_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, handle_->Prepare("PRAGMA data_version"));
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    Status st = handle_->LastError("PRAGMA data_version");
    sqlite3_reset(stmt);
    return st;
  }
  int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_reset(stmt);
  return v;
}

Result<std::string> SqliteConnector::SchemaVersion(const std::vector<std::string>& /*tables*/) {
  // Bumped by SQLite on every schema change, by any connection.
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("PRAGMA schema_version", {}));
  return row ? (*row)[0].ToCodeText() : std::string();
}

SqliteConnector::~SqliteConnector() {
  if (notify_fd_ >= 0) close(notify_fd_);
}

int SqliteConnector::CommitNotifyFd() {
  if (notify_fd_ != -1) return notify_fd_ >= 0 ? notify_fd_ : -1;
  notify_fd_ = -2;
  // The folder, not the files: the -wal file comes and goes, and a commit
  // writes either it or the database file. Anything else written there only
  // costs a data_version check.
  std::string dir = handle_->path();
  const size_t slash = dir.find_last_of('/');
  dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return -1;
  if (inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    close(fd);
    return -1;
  }
  notify_fd_ = fd;
  return fd;
}

void SqliteConnector::DrainNotify() {
  if (notify_fd_ < 0) return;
  alignas(struct inotify_event) char buf[4096];
  while (read(notify_fd_, buf, sizeof buf) > 0) {
  }
}

Result<bool> SqliteConnector::WaitForCommit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const int fd = CommitNotifyFd();
  while (true) {
    DrainNotify();  // before the check: a commit after it leaves the descriptor readable
    TANDEM_ASSIGN_OR_RETURN(int64_t v, DataVersion());
    if (v != last_data_version_) {
      // The first check reports a change too: a commit may have landed since
      // the caller last looked, and a spurious wake-up costs one empty pass.
      last_data_version_ = v;
      return true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (fd >= 0) {
      // Asleep until the folder is written to (a commit writes the database
      // or its -wal file): no CPU while nothing happens.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      struct pollfd p = {fd, POLLIN, 0};
      (void)poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    } else {
      // A sub-millisecond nap: data_version is a shared-memory read, so a
      // tight cadence costs little and keeps detection latency under 1 ms.
      std::this_thread::sleep_for(std::chrono::microseconds(250));
    }
  }
}

// --- identity and history ---

namespace {
constexpr const char* kLogRowAt =
    "SELECT table_id, op, k1, k2, k3, k4, o1, o2, o3, o4, at_ms FROM _tandem_log WHERE seq = ?";

// "insert of CUSTMAST key 4, captured 2024-05-01 10:00:00.123 UTC" for a mark.
std::string DescribeLogMark(const std::string& mark) {
  auto row = DecodeKey(mark);
  if (!row.ok() || row->size() != 11) return "an unreadable log row";
  const Row& r = *row;
  static const char* kOps[] = {"?", "insert", "update", "delete", "key change"};
  const int64_t op = r[1].is_null() ? 0 : r[1].as_integer();
  Row key;
  for (int k = 2; k < 6; ++k)
    if (!r[k].is_null()) key.push_back(r[k]);
  std::string when = "at an unknown time";
  if (!r[10].is_null()) {
    const int64_t ms = r[10].as_integer();
    time_t secs = static_cast<time_t>(ms / 1000);
    struct tm tm_utc;
    gmtime_r(&secs, &tm_utc);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_utc);
    when = fmt::format("captured {}.{:03d} UTC", buf, static_cast<int>(ms % 1000));
  }
  return fmt::format("{} of table #{} key {} {}", op >= 1 && op <= 4 ? kOps[op] : kOps[0],
                     r[0].is_null() ? 0 : r[0].as_integer(), DisplayKey(key), when);
}
}  // namespace

Result<std::string> SqliteConnector::HistoryMark(int64_t seq) {
  if (seq <= 0) return std::string();
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(handle_->Run(kLogRowAt, {Value::Integer(seq)}, &rows));
  return rows.empty() ? std::string() : EncodeKey(rows[0]);
}

Result<Connector::HistoryCheck> SqliteConnector::CheckHistory(int64_t seq, const std::string& /*cursor*/,
                                                              const std::string& mark) {
  using Verdict = HistoryCheck::Verdict;
  if (seq <= 0 || mark.empty()) return HistoryCheck{};  // nothing applied yet, or stored by an older version
  TANDEM_ASSIGN_OR_RETURN(std::string now, HistoryMark(seq));
  if (now == mark) return HistoryCheck{};
  if (!now.empty())
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("change {} of its log is not the change applied from it (applied: {}; its log "
                                    "now has: {}): it was restored from a backup and written to since",
                                    seq, DescribeLogMark(mark), DescribeLogMark(now))};
  TANDEM_ASSIGN_OR_RETURN(auto ends, QueryOne("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM _tandem_log",
                                              {}));
  const int64_t first = (*ends)[0].as_integer(), last = (*ends)[1].as_integer();
  if (last < seq)
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("its change log ends at change {}, before position {} that was applied from it "
                                    "({}): it was restored from an earlier backup (or its log was emptied)",
                                    last, seq, DescribeLogMark(mark))};
  if (first > seq)
    return HistoryCheck{Verdict::kTargetBehind,
                        fmt::format("its change log was applied and purged up to change {}, past position {} that the "
                                    "other database holds: the other database is older than what was applied to it "
                                    "(restored from a backup?)",
                                    first, seq)};
  return HistoryCheck{Verdict::kSourceDiffers,
                      fmt::format("change {} ({}) is missing from its log, which holds changes {} to {}: this is not "
                                  "the log the position came from",
                                  seq, DescribeLogMark(mark), first, last)};
}

std::string SqliteConnector::Replaced() {
  if (!have_file_id_) return "";
  struct stat st;
  if (stat(handle_->path().c_str(), &st) != 0) {
    if (errno == ENOENT)
      return fmt::format("the database file {} was deleted or moved away while Tandem had it open", handle_->path());
    return "";  // cannot tell (permissions, a passing error): the next pass looks again
  }
  if (static_cast<uint64_t>(st.st_dev) != file_dev_ || static_cast<uint64_t>(st.st_ino) != file_ino_)
    return fmt::format("another file took the path {} (renamed over it or copied into place) while Tandem had the "
                       "old file open",
                       handle_->path());
  return "";
}

}  // namespace tandem
