#include "connectors/sqlite/sqlite_handle.h"

#include <mutex>

#include <fmt/format.h>

namespace tandem {

namespace {
// Process-wide SQLite settings, applied once before the first connection:
// no global memory statistics (they take a mutex on every allocation), and
// multi-thread mode (each connection is used by one thread at a time).
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_initialize();
  });
}
}  // namespace

Result<std::unique_ptr<SqliteHandle>> SqliteHandle::Open(const std::string& path, int flags,
                                                         int busy_timeout_ms) {
  ConfigureSqliteOnce();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Unavailable(fmt::format("cannot open SQLite database '{}': {}", path, msg));
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  // An unknown double-quoted identifier is an error, never a string literal
  // (a renamed column must not be written as its own name).
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
  return std::unique_ptr<SqliteHandle>(new SqliteHandle(db, path));
}

SqliteHandle::~SqliteHandle() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status SqliteHandle::FromCode(int rc, const std::string& msg) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return Status::Constraint(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL:
      return Status::Unavailable(msg);
    default:
      return Status::Internal(msg);
  }
}

Status SqliteHandle::LastError(const std::string& what) const {
  return FromCode(sqlite3_extended_errcode(db_), fmt::format("{} ({}): {}", what, path_, sqlite3_errmsg(db_)));
}

Status SqliteHandle::ExecScript(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return FromCode(rc, fmt::format("{}: {} [SQL: {}]", path_, msg, sql.substr(0, 200)));
  }
  return Status::Ok();
}

Result<sqlite3_stmt*> SqliteHandle::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return LastError(fmt::format("preparing [{}]", sql.substr(0, 300)));
  cache_.emplace(sql, stmt);
  return stmt;
}

int SqliteHandle::BindValue(sqlite3_stmt* stmt, int index, const Value& v) {
  switch (v.type()) {
    case ValueType::kNull: return sqlite3_bind_null(stmt, index);
    case ValueType::kInteger: return sqlite3_bind_int64(stmt, index, v.as_integer());
    case ValueType::kReal: return sqlite3_bind_double(stmt, index, v.as_real());
    case ValueType::kText:
      return sqlite3_bind_text(stmt, index, v.as_bytes().data(), static_cast<int>(v.as_bytes().size()),
                               SQLITE_STATIC);
    case ValueType::kBlob:
      return sqlite3_bind_blob(stmt, index, v.as_bytes().data(), static_cast<int>(v.as_bytes().size()),
                               SQLITE_STATIC);
  }
  return SQLITE_MISUSE;
}

Value SqliteHandle::ColumnValue(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER: return Value::Integer(sqlite3_column_int64(stmt, col));
    case SQLITE_FLOAT: return Value::Real(sqlite3_column_double(stmt, col));
    case SQLITE_TEXT: {
      const char* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      return Value::Text(std::string(p, sqlite3_column_bytes(stmt, col)));
    }
    case SQLITE_BLOB: {
      const char* p = static_cast<const char*>(sqlite3_column_blob(stmt, col));
      return Value::Blob(std::string(p ? p : "", sqlite3_column_bytes(stmt, col)));
    }
    default: return Value::Null();
  }
}

Status SqliteHandle::Run(const std::string& sql, const Row& params, std::vector<Row>* out,
                         int64_t* rows_changed) {
  TANDEM_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) {
    if (BindValue(stmt, static_cast<int>(i + 1), params[i]) != SQLITE_OK)
      return LastError(fmt::format("binding parameter {} of [{}]", i + 1, sql.substr(0, 200)));
  }
  int ncols = sqlite3_column_count(stmt);
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      if (out) {
        Row row;
        row.reserve(ncols);
        for (int c = 0; c < ncols; ++c) row.push_back(ColumnValue(stmt, c));
        out->push_back(std::move(row));
      }
      continue;
    }
    if (rc == SQLITE_DONE) break;
    Status st = LastError(fmt::format("executing [{}]", sql.substr(0, 200)));
    sqlite3_reset(stmt);
    return st;
  }
  if (rows_changed) *rows_changed = sqlite3_changes64(db_);
  sqlite3_reset(stmt);
  return Status::Ok();
}

}  // namespace tandem
