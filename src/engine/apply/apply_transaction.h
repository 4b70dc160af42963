// ApplyTransaction: one apply transaction on a direction's target, from
// BeginApply to CommitApply, with what makes it safe to write in:
//   - the fence (TargetTraits::fences_apply): a process killed while its
//     COMMIT was on the way may still be committing on a server (PostgreSQL
//     keeps going without its client). The transaction waits for any such
//     transaction of its direction, then checks that the stored position is
//     still the one in memory; if not, the caller reloads it and starts over;
//   - the target tables' definitions as this transaction writes them (locked
//     against ALTER TABLE until it ends): a column retyped a moment ago is
//     never written with the old type's values.
// Both are sent at Begin, pipelined, and waited for once, with the first
// chunk's prefetch, before anything is written (CheckBeforeWriting).
//
// Thread-safety: none; on the engine's thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "engine/direction.h"

namespace tandem {

class ApplyTransaction {
 public:
  explicit ApplyTransaction(Direction& dir) : dir_(dir), dst_(*dir.dst) {}

  // BeginApply; then, sent without waiting, the fence with the stored
  // position (where the target fences) and the signature of `tables` (the
  // target side's mapped tables), the written ones locked. On a failure the
  // transaction is not left open.
  Status Begin(const std::vector<std::string>& tables);
  // Waits, the first time only, for what Begin sent: Unavailable when the
  // tables' signature is not `signature` (the one the mapping was compiled
  // against; schema_changed() is then true), or when the stored position is
  // not dir.position (dir.position_uncertain is then set).
  Status CheckBeforeWriting(const std::string& signature);
  bool schema_changed() const { return schema_changed_; }
  // Milliseconds since the write lock was taken (sync.max_txn_ms counts from then).
  double elapsed_ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  }
  Status Commit() { return dst_.CommitApply(); }
  void Rollback() { dst_.RollbackApply(); }

 private:
  Direction& dir_;
  Connector& dst_;
  std::chrono::steady_clock::time_point started_;
  std::vector<Row> fenced_position_;  // the stored position, read behind the fence
  std::vector<Row> target_schema_;    // the tables' signature
  bool checked_ = false;
  bool schema_changed_ = false;
};

}  // namespace tandem
