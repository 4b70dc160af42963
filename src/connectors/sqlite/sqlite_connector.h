// SqliteConnector: the Connector for SQLite files.
//
// Capture: AFTER INSERT/UPDATE/DELETE triggers on each captured table append
// (table id, operation, key) to _tandem_log. The log's INTEGER PRIMARY KEY
// gives commit order for free: SQLite has one writer at a time, so the rows of
// one transaction are contiguous and transactions appear in commit order.
//
// Echo suppression: BeginApply() inserts a row into _tandem_applying inside
// Tandem's own write transaction and CommitApply() deletes it before COMMIT.
// The triggers fire only WHEN NOT EXISTS (SELECT 1 FROM _tandem_applying); no
// other connection ever sees the row, so applications are always captured.
//
// Change detection: PRAGMA data_version, which changes when any other
// connection commits; checking it costs a shared-memory read.
#pragma once

#include <memory>
#include <string>

#include "connectors/connector.h"
#include "connectors/sqlite/sqlite_handle.h"

namespace tandem {

class SqliteConnector : public Connector {
 public:
  ~SqliteConnector() override;
  // `path` is a filesystem path. With create_if_missing the file is created.
  static Result<std::unique_ptr<SqliteConnector>> Open(const std::string& path, const ConnectorOptions& options);

  // --- SqlSession ---
  std::string Describe() const override { return "sqlite:" + handle_->path(); }
  Result<std::string> Identity() override;
  std::string QuoteIdent(const std::string& name) const override;
  Result<std::optional<TableInfo>> DescribeTable(const std::string& table) override;
  Status Exec(const std::string& sql, const Row& params, int64_t* rows_changed) override;
  Status Query(const std::string& sql, const Row& params, std::vector<Row>* out) override;
  Status ExecScript(const std::string& sql) override { return handle_->ExecScript(sql); }
  Result<std::optional<Row>> QueryOne(const std::string& sql, const Row& params) override;
  Status BeginRead() override;
  void EndRead() override;
  Status BeginWrite() override;
  Status Commit() override;
  Status Savepoint(const std::string& name) override;
  Status ReleaseSavepoint(const std::string& name) override;
  Status RollbackToSavepoint(const std::string& name) override;
  Result<bool> WaitForCommit(std::chrono::milliseconds timeout) override;
  int CommitNotifyFd() override;
  Result<std::string> SchemaVersion(const std::vector<std::string>& tables) override;
  std::string Replaced() override;

  // --- ApplyTarget ---
  // One writer at a time; the default set writes (a statement per row is a
  // function call here).
  TargetTraits Traits() const override { return {.single_writer = true}; }
  Status BeginApply() override;
  Status CommitApply() override;
  void RollbackApply() override;
  Result<Value> InsertReturningKey(const std::string& sql, const Row& params, const std::string& key_column) override;
  std::vector<std::string> UniqueViolationColumns(const Status& failed) const override;

  // --- CaptureDdl ---
  std::vector<std::string> ControlTablesSql() const override;
  Result<std::vector<std::string>> UpgradeControlTablesSql() override;
  std::vector<std::string> CaptureSql(const CaptureTable& table) const override;
  std::vector<std::string> DropCaptureSql(const CaptureTable& table) const override;
  std::vector<std::string> DropControlTablesSql() const override;
  std::vector<std::string> DropRuntimeTablesSql() const override;
  Result<bool> IsInstalled() override;
  Result<std::string> CaptureProblem(const CaptureTable& table) override;

  // --- ChangeSource ---
  Result<int64_t> MaxChangeSeq() override;
  Status ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) override;
  Result<PendingInfo> PendingChanges(int64_t after, int table_id) override;
  Result<Value> NewestCaptureMillis(const std::string& table, const Row& key) override;
  Status PurgeChanges(int64_t before) override;
  Result<std::string> HistoryMark(int64_t seq) override;
  Result<HistoryCheck> CheckHistory(int64_t seq, const std::string& cursor, const std::string& mark) override;

  SqliteHandle& handle() { return *handle_; }

 private:
  explicit SqliteConnector(std::unique_ptr<SqliteHandle> handle) : handle_(std::move(handle)) {}
  // Reads what CommitNotifyFd() has pending, so it blocks again.
  void DrainNotify();
  Result<int64_t> DataVersion();

  std::unique_ptr<SqliteHandle> handle_;
  // The file this session opened (st_dev, st_ino), to notice another file
  // taking its path (Replaced).
  bool have_file_id_ = false;
  uint64_t file_dev_ = 0, file_ino_ = 0;
  int64_t last_data_version_ = -1;
  int busy_timeout_ms_ = 5000;
  bool in_read_ = false;
  int notify_fd_ = -1;  // inotify on the database's folder (CommitNotifyFd); -2: could not make one
};

}  // namespace tandem
