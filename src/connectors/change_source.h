// ChangeSource: a database's change log as the engine reads it: positions,
// windows of captured changes, and the history a position belongs to.
//
// Capture records what changed (table, key, operation), not row images: the
// engine reads the current rows on the same session, in the same read
// snapshot as the log, so a batch applies the source state as of that
// snapshot. A position is a change-log seq; the engine stores it (with its
// PositionCursor and HistoryMark) in the target, in the transaction that
// applied the changes up to it, and resumes there (ResumeAt).
//
// Used on one thread at a time, with its session (session()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "connectors/sql_session.h"
#include "core/status.h"
#include "core/value.h"

namespace tandem {

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

class ChangeSource {
 public:
  virtual ~ChangeSource() = default;

  // The session the log is read on: the rows a batch reads with it and the
  // log share its read transaction (SqlSession::BeginRead / EndRead).
  virtual SqlSession& session() = 0;

  // BeginRead for the engine's next batch, which starts after `position`. A
  // connector that pinned snapshots (PinIfBehind) reads in the oldest one
  // that ends after `position`, so MaxChangeSeq() returns its end, and lets
  // go of the ones at or before it.
  virtual Status BeginReadAfter(int64_t /*position*/) { return session().BeginRead(); }

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
};

}  // namespace tandem
