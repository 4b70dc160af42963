// PgConnector: the Connector for PostgreSQL (10 or later; tested on 15).
//
// Capture: per captured table, statement-level AFTER INSERT / UPDATE / DELETE
// triggers with transition tables append (table id, operation, key as text)
// to tandem._tandem_log with one INSERT ... SELECT per statement, however many
// rows it touched; a row-level trigger that fires only WHEN the key changed
// adds the old key. A BEFORE TRUNCATE trigger logs a delete for every row
// the table holds. Every log row carries its transaction id (xid8).
//
// Commit order. PostgreSQL commits transactions in another order than they
// took sequence values, so the log's id is not a position. Positions come
// from snapshots, as in PgQ: the reader takes a snapshot S and the changes of
// transactions that S sees as committed but the previous window's snapshot
// did not form the next window. Positions are dense: a window of n changes
// after position p covers p+1..p+n, in log-id order (for one row, log ids
// follow the order its writers held its lock, so one record's changes keep
// their order). A transaction still in flight is in no window until it
// commits, whatever ids it took; none is ever skipped.
//
// The engine stores the snapshot that ends the applied window with the
// position, in the target transaction (PositionCursor / ResumeAt): after a
// crash the next window starts exactly there. Windows made but not yet
// applied live in memory only, so reading positions writes nothing to the
// source database.
//
// The read transaction is REPEATABLE READ and its first statement fixes the
// snapshot that makes the window, so the rows the engine reads are exactly
// as of the window's end. While the engine is behind, snapshots pinned on
// other sessions (PinIfBehind) end later windows, and the read transaction
// imports one (BeginReadAfter), so batches stay near batch_size.
//
// Echo suppression: BeginApply() runs `SET LOCAL tandem.applying = 'on'`;
// the triggers return at once when they see it. Other sessions never do.
//
// Change detection: a probe of the log's newest id and the oldest running
// transaction, one round trip, thinned out while idle; see WaitForCommit.
//
// One class, its methods defined by role: pg_connector.cc (the SqlSession and
// ApplyTarget), pg_change_source.cc (windows, ticks, pins, positions,
// history), pg_capture_ddl.cc (control tables, capture triggers),
// pg_set_writes.cc (multi-row updates).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/connector.h"
#include "connectors/postgres/pg_session.h"

namespace tandem {

class PgConnector : public Connector {
 public:
  static Result<std::unique_ptr<PgConnector>> Open(const std::string& url, const ConnectorOptions& options);

  // --- SqlSession (pg_connector.cc) ---
  std::string Describe() const override { return session_->display(); }
  Result<std::string> Identity() override;
  std::string QuoteIdent(const std::string& name) const override;

  Result<std::optional<TableInfo>> DescribeTable(const std::string& table) override;

  Status Exec(const std::string& sql, const Row& params, int64_t* rows_changed) override;
  Status ExecLater(const std::string& sql, const Row& params) override;
  Status QueryLater(const std::string& sql, const Row& params, std::vector<Row>* out) override {
    return session_->Send(sql, params, out);
  }
  Status Collect() override { return session_->Collect(); }
  Status Query(const std::string& sql, const Row& params, std::vector<Row>* out) override;
  Status ExecScript(const std::string& sql) override { return session_->Script(sql); }
  Result<std::optional<Row>> QueryOne(const std::string& sql, const Row& params) override;
  Status BeginRead() override;
  void EndRead() override;
  Status BeginWrite() override;
  Status Commit() override;
  Status Savepoint(const std::string& name) override;
  Status ReleaseSavepoint(const std::string& name) override;
  Status RollbackToSavepoint(const std::string& name) override;
  std::string LockRowsForUpdate() const override { return " FOR UPDATE"; }
  Result<bool> WaitForCommit(std::chrono::milliseconds timeout) override;
  Result<std::string> SchemaVersion(const std::vector<std::string>& tables) override;
  std::string signature_oids_ = "{}";  // oids of the tables of the last SchemaVersion (a text[] of oids)
  Status SchemaVersionLater(const std::vector<std::string>& tables, const std::vector<std::string>& lock,
                            std::vector<Row>* out) override;
  bool Reconnected() override;

  // --- ApplyTarget (pg_connector.cc, pg_set_writes.cc) ---
  TargetTraits Traits() const override {
    return {.fences_apply = true, .failed_statement_aborts_transaction = true, .stores_values_in_own_form = true};
  }
  Status BeginApply() override;
  Status CommitApply() override;
  void RollbackApply() override;
  Result<Value> InsertReturningKey(const std::string& sql, const Row& params, const std::string& key_column) override;
  std::vector<std::string> UniqueViolationColumns(const Status& failed) const override;
  // Multi-row UPDATE ... FROM (VALUES ...) statements (pg_set_writes.cc).
  Status UpdateMany(const KeyedTable& t, const std::vector<std::string>& columns, const std::vector<ColumnType>& types,
                    const std::vector<Row>& rows, std::deque<std::vector<Row>>* returned) override;
  Status RefreshStatistics() override;
  // Pipelined: the lock is taken before the next statement starts (and that
  // statement's snapshot is taken after it), in the same round trip.
  Status FenceApply(const std::string& direction) override {
    return session_->Send("SELECT pg_advisory_xact_lock(hashtext(?))", {Value::Text("tandem apply " + direction)});
  }
  Status LockForOneEngine() override { return session_->HoldSessionLock(kEngineLockKey); }
  static constexpr int64_t kEngineLockKey = 0x74616e64656d;  // "tandem"

  // --- CaptureDdl (pg_capture_ddl.cc) ---
  std::vector<std::string> ControlTablesSql() const override;
  Result<std::vector<std::string>> UpgradeControlTablesSql() override;
  std::vector<std::string> CaptureSql(const CaptureTable& table) const override;
  std::vector<std::string> DropCaptureSql(const CaptureTable& table) const override;
  std::vector<std::string> DropControlTablesSql() const override;
  std::vector<std::string> DropRuntimeTablesSql() const override;
  Result<bool> IsInstalled() override;
  Result<std::string> CaptureProblem(const CaptureTable& table) override;

  // --- ChangeSource (pg_change_source.cc) ---
  Status BeginReadAfter(int64_t position) override;
  std::string PositionCursor(int64_t seq) const override;
  Status ResumeAt(int64_t seq, const std::string& cursor) override;
  Result<int64_t> MaxChangeSeq() override;
  Status ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) override;
  Status PurgeChanges(int64_t before) override;
  Result<PendingInfo> PendingChanges(int64_t after, int table_id) override;
  Result<Value> NewestCaptureMillis(const std::string& table, const Row& key) override;
  bool SupportsBoundarySampling() const override { return false; }
  void PinIfBehind(int64_t spacing) override;
  size_t pinned() const { return pins_.size(); }
  // The mark is the server's system identifier, the database's oid and the
  // timeline: a restore into another cluster, a database recreated (dropped
  // and restored from a dump) or a point-in-time restore or failover (a new
  // timeline) changes it. CheckHistory also compares the transaction
  // counter with the stored snapshot's: a server restored from a copy of its
  // files is behind it until new transactions carry it past.
  Result<std::string> HistoryMark(int64_t seq) override;
  Result<HistoryCheck> CheckHistory(int64_t seq, const std::string& cursor, const std::string& mark) override;

 private:
  PgConnector(std::unique_ptr<PgSession> session, std::string url, int lock_timeout_ms)
      : session_(std::move(session)), url_(std::move(url)), lock_timeout_ms_(lock_timeout_ms) {}
  // UpdateMany's statement for `rows` rows, built once per shape.
  const std::string& UpdateManySql(const KeyedTable& t, const std::vector<std::string>& columns,
                                   const std::vector<ColumnType>& types, size_t rows, bool returning);
  std::unordered_map<std::string, std::string> update_many_sql_;
  // Ends the pins at or before `seq` (all when seq is the largest int64).
  void ReleasePins(int64_t seq);
  Status End(const char* sql);
  // Type oids of a captured table's key columns (log keys are text).
  Result<const std::vector<unsigned>*> KeyTypes(int table_id);
  struct Tick {
    int64_t seq = 0;
    std::string snap;
  };
  // The tick ending at or before `seq` (the window start) and the one after it.
  Result<std::pair<Tick, std::optional<Tick>>> WindowAround(int64_t seq);

  std::unique_ptr<PgSession> session_;
  std::string url_;
  int lock_timeout_ms_ = 0;
  bool in_read_ = false;
  // Pinned snapshots: a read-only REPEATABLE READ transaction on a session
  // of its own, kept open at a window end (a tick) so a later read
  // transaction can take the same snapshot (SET TRANSACTION SNAPSHOT).
  // Oldest first. Their ends are ticks in known_ticks_.
  static constexpr size_t kMaxPins = 8;
  static constexpr size_t kMaxSpareSessions = 2;  // kept open for the next pins once theirs are let go
  struct Pin {
    int64_t seq = 0;
    std::string exported;  // pg_export_snapshot()
    std::unique_ptr<PgSession> session;
    std::chrono::steady_clock::time_point taken_at;
  };
  static constexpr std::chrono::seconds kPinMaxAge{60};
  // Ends a pin's transaction; its session is kept as a spare if there is room.
  void EndPin(std::unique_ptr<PgSession> session);
  std::vector<Pin> pins_;
  std::vector<std::unique_ptr<PgSession>> spare_sessions_;
  int64_t read_pin_ = -1;          // the pin the current read transaction reads in, if any
  int64_t newest_tick_max_id_ = 0;  // the largest log id the newest tick's snapshot sees
  std::map<int, std::vector<unsigned>> key_types_;
  std::map<int64_t, std::string> known_ticks_;  // window end position -> its snapshot (text)
  // Where the last ReadChanges stopped, to go on without re-scanning.
  struct Cursor {
    int64_t seq = -1;  // last position returned
    int64_t id = 0;    // its log id
    int64_t window_end = -1;
  } cursor_;
  // The first rows of the newest window, read with its end by MaxChangeSeq
  // in the read transaction; ReadChanges serves them without a query.
  static constexpr int64_t kWindowHeadRows = 2000;
  struct WindowHead {
    int64_t window_end = -1;
    std::vector<Row> rows;
    std::vector<Row> snapshot;  // MaxChangeSeq's answer: the window's end snapshot
  } head_;
  std::string incarnation_;          // HistoryMark, for the connection it was read on
  int64_t incarnation_connects_ = 0;  // that connection (PgSession::connects)
  int64_t connects_seen_ = 1;         // the connection Reconnected last reported
  std::string probe_;  // last WaitForCommit probe
  int64_t idle_probes_ = 0;  // probes in a row that saw nothing new
  std::chrono::steady_clock::time_point last_probe_{};
};

}  // namespace tandem
