// OperatorRequests: carries out what an operator asked for.
//
// Requests come from this process (the engine's API: RetryParked, ...) or
// from another one, through the control tables: `tandem conflicts resolve`
// leaves a conflict row with status 'resolving' and the resolution, `tandem
// retry` sets retry_requested on a put-aside change (engine/ops/status_report.h).
// The engine looks for them every pass (at most every 200 ms) and carries
// them out here, on its own thread, between batches:
//   - resolutions: the chosen or hand-merged values written to both sides
//     (one transaction per side, each step idempotent, so a crash part-way
//     is carried out again), the record's conflicts marked resolved and
//     audited, and its held changes asked to be retried;
//   - retries of put-aside changes, one record in its own transaction;
//   - after every batch, inside it, the changes that wait for their parent
//     (RetryWaiting).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/apply/apply_batch.h"
#include "engine/direction.h"

namespace tandem {

class OperatorRequests {
 public:
  // Made for one call by the engine. REQUIRES: `ctx`'s parts and
  // `directions` outlive it, and no apply transaction is open.
  OperatorRequests(const ApplyContext& ctx, std::vector<std::unique_ptr<Direction>>& directions)
      : ctx_(ctx), directions_(directions) {}

  // Carries out `tandem conflicts resolve` requests (conflict rows with status
  // 'resolving'): writes the chosen or hand-merged values to both sides (one
  // transaction per side), marks the record's conflicts resolved, audits it,
  // and asks for its held changes to be retried. A request that cannot be
  // carried out goes back to 'open' with the reason. Returns how many were.
  Result<int> ProcessResolutions();
  // Retries a parked record now (id from _tandem_parked of the side it is
  // stored in). Returns Ok if applied; the new reason if still rejected.
  Status RetryParked(Side stored_in, int64_t id);
  // Re-applies every parked record of both directions; returns how many applied.
  Result<int> RetryAllParked();

 private:
  // One record's resolution request as it is carried out (operator_requests.cc).
  struct Resolution;
  Status ResolveRecord(const std::string& entity, const std::string& lkey, const std::string& mkey,
                       const std::string& resolution);
  // The request's entity and what it asks (--take, --set).
  Status ReadRequest(Resolution& r);
  // The record's fields in conflict (open or being resolved), from both
  // databases, and the kinds of its conflicts. False when none is left.
  Result<bool> ReadConflicts(Resolution& r);
  // Refuses what the conflicts' kinds cannot be settled with.
  Status CheckKinds(Resolution& r);
  // The record's keys now (a key changed while it was held moved its change).
  Status FindKeysNow(Resolution& r);
  // Which side's value each field takes: the side a --set wrote it on, else --take.
  Status ChooseWinners(Resolution& r);
  // The last refusals, before anything is written.
  Status CheckBeforeWriting(Resolution& r);
  // Each winning side's values, mapped, onto the other side.
  Status WriteWinningValues(Resolution& r);
  // Deleted on one side, updated on the other: the winner's action.
  Status SettleDeletedRow(Resolution& r);
  // Inserted on both sides: the two rows linked as one record.
  Status LinkTwins(Resolution& r);
  // Settled: the conflict rows, the audit trail, and the held changes retried.
  Status MarkResolved(Resolution& r);

  Connector& db(Side s) { return ctx_.db(s); }
  // The direction from `source`.
  Direction& From(Side source);

  ApplyContext ctx_;
  std::vector<std::unique_ptr<Direction>>& directions_;
};

// Applies again, inside `batch`, the changes of `dir` that wait for their
// parent (kind 'waiting') or that an operator asked to retry, a bounded
// number per batch, least recently tried first; removes the put-aside rows of
// those applied. Called after every batch that may have some.
Status RetryWaiting(const CompiledMapping& mapping, Direction& dir, ApplyBatch& batch);

}  // namespace tandem
