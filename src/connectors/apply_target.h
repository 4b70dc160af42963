// ApplyTarget: a database the engine applies changes to, in transactions its
// capture ignores, and what it must know of how that database writes.
//
// The differences between databases that change how the engine writes are
// data (TargetTraits), answered once per connector; the statements that
// depend on the dialect (set writes, an insert returning its key) and the
// reading of a rejection (which constraint) are methods.
//
// Used on one thread at a time, with its session (session()).
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "connectors/sql_session.h"
#include "core/column_type.h"
#include "core/status.h"
#include "core/value.h"

namespace tandem {

// How a target database behaves where it matters to the engine.
struct TargetTraits {
  // True when a write transaction of a process that died may still commit
  // afterwards (a server finishes a COMMIT it received): the engine then
  // calls FenceApply at the start of each apply transaction.
  bool fences_apply = false;
  // True when a failed statement leaves the transaction unusable until a
  // rollback (PostgreSQL); false when only the statement is undone (SQLite).
  bool failed_statement_aborts_transaction = false;
  // True when a written value may be stored in another form than it was
  // given (PostgreSQL: text into timestamptz, jsonb, numeric); the engine
  // then reads back what it wrote (RETURNING) to keep as the agreed version.
  bool stores_values_in_own_form = false;
  // True when the database lets one writer in at a time (SQLite): apply
  // transactions are bounded in time by default (sync.max_txn_ms), and after
  // one cut short by the bounds the engine steps aside so that waiting
  // writers get in.
  bool single_writer = false;
};

class ApplyTarget {
 public:
  virtual ~ApplyTarget() = default;

  // The session the writes go through (the apply transaction is its).
  virtual SqlSession& session() = 0;
  virtual TargetTraits Traits() const { return TargetTraits{}; }

  // --- transactions ---
  // A write transaction whose changes the capture triggers ignore (echo
  // suppression). Takes the write lock at once (waits up to the busy timeout).
  virtual Status BeginApply() = 0;
  virtual Status CommitApply() = 0;
  virtual void RollbackApply() = 0;
  // Inside an apply transaction: waits until no other transaction applying
  // `direction` is in progress, and keeps others out until this one ends.
  // The wait may happen at the next statement, which then runs after it.
  // Called where Traits().fences_apply.
  virtual Status FenceApply(const std::string& /*direction*/) { return Status::Ok(); }
  // Makes this session the only one running a sync engine on this database
  // (a lock held as long as the session, taken again on reconnect); Busy when
  // another process holds it.
  virtual Status LockForOneEngine() { return Status::Ok(); }
  // Refreshes the planner's statistics of Tandem's own tables after they grew
  // (PostgreSQL: ANALYZE, so lookups keep their index plans); a no-op where
  // the planner needs none.
  virtual Status RefreshStatistics() { return Status::Ok(); }

  // --- rejections ---
  // The columns of a unique constraint that `failed` (a status returned by a
  // write) reports as violated; empty if it is not a unique violation.
  virtual std::vector<std::string> UniqueViolationColumns(const Status& failed) const = 0;
  // True when `failed` (a status returned by a write) is a foreign-key
  // violation: usually ordering (a parent deleted before its children, which
  // arrive later in the same batch), so the record waits instead of being
  // rejected. The default reads the "FOREIGN KEY" both SQLite and PgSession
  // put in the message.
  virtual bool IsForeignKeyViolation(const Status& failed) const;

  // --- writes whose statement depends on the dialect ---
  // Executes an INSERT and returns the key the database assigned to the new row.
  virtual Result<Value> InsertReturningKey(const std::string& sql, const Row& params,
                                           const std::string& key_column) = 0;

  // --- set writes (the apply path: engine/apply/set_writer.h) ---
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
};

}  // namespace tandem
