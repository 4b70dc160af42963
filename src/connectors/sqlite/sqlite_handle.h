// SqliteHandle: RAII ownership of a sqlite3 connection with a cache of
// prepared statements (keyed by SQL text) and Status-returning helpers.
// Not thread-safe: one thread at a time.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/value.h"

namespace tandem {

class SqliteHandle {
 public:
  // Opens `path`. `flags` as sqlite3_open_v2.
  static Result<std::unique_ptr<SqliteHandle>> Open(const std::string& path, int flags, int busy_timeout_ms);
  ~SqliteHandle();
  SqliteHandle(const SqliteHandle&) = delete;
  SqliteHandle& operator=(const SqliteHandle&) = delete;

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs one or more statements without parameters.
  Status ExecScript(const std::string& sql);
  // Runs a cached statement with parameters; rows (if any) are appended to `out`.
  Status Run(const std::string& sql, const Row& params, std::vector<Row>* out = nullptr,
             int64_t* rows_changed = nullptr);
  // Returns a reset, cached statement with parameters bound (for hot loops).
  Result<sqlite3_stmt*> Prepare(const std::string& sql);

  // Status for the connection's last error, naming `what`.
  Status LastError(const std::string& what) const;
  static Status FromCode(int rc, const std::string& msg);

  static Value ColumnValue(sqlite3_stmt* stmt, int col);
  static int BindValue(sqlite3_stmt* stmt, int index, const Value& v);

 private:
  SqliteHandle(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace tandem
