// ApplyBatch: applies records of one direction inside one target
// transaction.
//
// Per chunk of work items it reads, with a few IN-list statements, what
// deciding them needs (Prefetch); per record it gathers the facts, asks
// engine/merge for the plan (PlanRecord, MergeFields, PlanReadOnlyEdit) and
// carries it out: the row writes (held back and sent as set statements where
// a failed statement spoils the transaction: engine/apply/set_writer.h), the
// key-map entry with the new bases (engine/record_store.h), conflicts
// (_tandem_conflicts) and records put aside (_tandem_parked).
//
// Rejections. A record the target rejects, or that waits for its parent, is
// put aside and the batch goes on (ApplyOrPark). Where a rejection cannot be
// pinned on one record (a write failed part-way, a set statement failed),
// the batch asks to be re-run (needs_careful), with the records found
// rejected applied on their own (suspects), or every record on its own.
//
// What a batch counts (written, put_aside, conflicts, applied_alone) is for
// the direction's stats once, and only if, its transaction commits; records
// left unchanged are counted in ApplyContext::stats at once.
//
// Thread-safety: none; one per target transaction, on the engine's thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "connectors/connector.h"
#include "core/key_codec.h"
#include "engine/applied_record.h"
#include "engine/apply/set_writer.h"
#include "engine/direction.h"
#include "engine/merge/merge.h"
#include "engine/record_store.h"
#include "engine/source/work_items.h"
#include "mapping/entity_mapping.h"

namespace tandem {

// What a batch needs from the engine around it, besides its direction.
// REQUIRES: everything referenced outlives the batches made with it.
struct ApplyContext {
  const CompiledMapping& mapping;
  RecordStore& records;
  Connector& legacy;
  Connector& modern;
  Side primary;                // config: the side that wins by default
  bool detect_conflicts;       // config: sync.detect_conflicts
  std::array<DirectionStats, 2>& stats;  // per source side ([0] legacy): records_unchanged is counted at once
  bool keep_applied;           // someone reads applied() (an applied callback is set)
  // A conflict recorded a resolution to carry out (a read-only side's edit
  // reverted): the engine looks for operator requests on its next pass.
  std::function<void()> request_operator_check;
  Connector& db(Side s) const { return s == Side::kLegacy ? legacy : modern; }
};

class ApplyBatch {
 public:
  // `careful`: every record is applied on its own, in a savepoint, so a
  // rejection puts aside only that record. `solo`: the records (ParkedKey)
  // applied that way in a batch that otherwise writes sets (the ones an
  // earlier run of the batch found rejected: suspects()).
  // REQUIRES: dir.src is in the batch's read transaction and dir.dst in an
  // apply transaction whenever records are prefetched or applied.
  ApplyBatch(const ApplyContext& ctx, Direction& dir, bool careful,
             const std::unordered_set<std::string>* solo = nullptr);

  // Reads, with a few IN-list statements, everything applying `items` needs:
  // their current source rows (in the batch's read snapshot), their key-map
  // entries, the entries their foreign keys resolve through, and the target
  // rows. Replaces what the previous chunk prefetched.
  Status Prefetch(std::vector<WorkItem>& items);
  // Applies one record; parks it when the target rejects it or it waits for a
  // parent. Returns non-ok only for failures that abort the batch.
  Status ApplyOrPark(const WorkItem& item);
  // Applies a put-aside record again; true if applied (the caller removes its
  // parked row), false if it was put aside again (reason and attempts updated).
  Result<bool> Retry(const WorkItem& item);
  // Sends the writes held back (see defer_). A target rejection marks the
  // batch for a careful re-run, like a rejection while applying.
  Status FlushPending();
  // Sends the held-back row writes only (their entries stay held): before a
  // statement that reads or writes target tables.
  Status FlushPendingWrites();
  // The mapped target values of a source row of `entity` (one per rule).
  // Fails with the first problem (mapping/exact_write.h) of the rules in
  // `written`, which are about to be written.
  Status MapSourceRow(int entity, const Row& srow, Row* out, const std::vector<size_t>& written);

  std::vector<AppliedRecord>& applied() { return applied_; }
  int64_t written() const { return written_; }
  const std::map<std::string, int64_t>& written_by_entity() const { return written_by_entity_; }
  // Records this batch put aside that are still put aside, and conflicts it
  // recorded: for the direction's stats once (and only if) it commits.
  int64_t put_aside() const { return static_cast<int64_t>(put_aside_.size()); }
  int64_t conflicts() const { return conflicts_; }
  int64_t applied_alone() const { return applied_alone_; }
  bool needs_careful() const { return needs_careful_; }
  // The records (ParkedKey) whose writes the target rejected in a failed
  // set (SetWriter::rejected): to be applied on their own in a re-run.
  std::unordered_set<std::string> suspects() const;

 private:
  // A field (or the whole row, "(row)") changed on both sides.
  struct Conflict {
    std::string field;
    Value source_value;
    Value target_value;
    std::optional<Value> base;   // in the target side's terms
    std::optional<Side> winner;  // nullopt: open, waiting for `tandem conflicts resolve`
    ConflictKind kind;
    const char* policy;
    std::string request = "";    // a resolution to carry out at once (status 'resolving')
  };
  // What applying one record works with, step by step (apply_record.cc).
  struct RecordWork;

  // --- one record (apply_record.cc) ---
  Status Apply(const WorkItem& item);
  // 3. The target row, if the record exists there. False: nothing to apply.
  Result<bool> FindTarget(RecordWork& r);
  // 4. The plan (engine/merge/merge.h) from what Tandem knows and found.
  Status Plan(RecordWork& r);
  // The record is gone at the source: the target row is deleted (or kept).
  Status ApplyGone(RecordWork& r);
  // The record was deleted on the target since the last sync. False: done.
  Result<bool> TargetDeleted(RecordWork& r);
  // A new target row. True: done (held back for the set writer, reported).
  Result<bool> Insert(RecordWork& r);
  // An insert sent now (not held back): the target key it got, the values
  // it stored.
  Status InsertNow(RecordWork& r, Row& params);
  // Three-way merge of an existing target row.
  Status Merge(RecordWork& r);
  // Records the conflicts of a merge; Status kConflict when the record is held.
  Status RecordFieldConflicts(RecordWork& r);
  // The merge's changed columns, written now or held back for the set writer.
  Status WriteUpdate(RecordWork& r, std::vector<std::string>& set_cols, Row& params);
  // A key change at the source: the target key moves along where keys are shared.
  Status MoveKey(RecordWork& r, std::string* tkey_enc);
  // The record's key-map entry with its new bases; the record reported.
  Status Finish(RecordWork& r, const std::string& tkey_enc);

  // --- conflicts (record_conflicts.cc) ---
  // The conflict of the whole record ("(row)") a plan records.
  static Conflict RowConflict(const PlannedConflict& c, Value source_value, Value target_value) {
    return {"(row)", std::move(source_value), std::move(target_value), std::nullopt, c.winner, c.kind, c.policy};
  }
  // Logs a record's plan at debug level (DescribePlan); costs nothing otherwise.
  void LogPlan(const WorkItem& item, const RecordPlan& plan, std::span<const FieldFacts> fields = {},
               const FieldMerge* merge = nullptr) const;
  // A change on the read-only side of a one-way entity: reverted (through a
  // resolution request) or put aside, per the entity's read_only_edits.
  Status ReadOnlyEdit(const WorkItem& item);
  Status RecordConflict(const EntityMapping& em, const RecordEntry& entry, const Conflict& c);
  // An insert the target rejected as a unique violation against a row that
  // no synced record owns: the same record inserted on both sides (e.g. the
  // same email). Recorded as an open insert-insert conflict (Status
  // kConflict); anything else returns `failed` unchanged.
  // `values` are the insert's parameters: the target key columns (if
  // `with_key`), then the rules' target columns.
  Status InsertInsertConflictOr(const EntityMapping& em, const WorkItem& item, bool with_key, const Row& values,
                                const Status& failed);
  // The side whose change is newer, by the entity's newest_by columns or else
  // capture time; ties go to the primary side.
  Result<Side> NewestSide(const EntityMapping& em, const WorkItem& item, const Row& tkey);

  // --- prefetch (prefetch.cc) ---
  Status PrefetchEntries(const std::string& entity, Side side, std::vector<std::string> keys);
  // The source rows of one entity's items (with their key-map entries).
  Status PrefetchSourceRows(int entity, const std::vector<WorkItem*>& items);
  // The target rows of one entity's items whose target key is known already.
  Status PrefetchTargetRows(int entity, const std::vector<WorkItem*>& items);

  // --- the batch's caches, mapping and bookkeeping (apply_batch.cc) ---
  // The key of an entry in entries_: entity \x1d side \x1d key.
  static std::string EntryCacheKey(const std::string& entity, Side side, const std::string& key);
  Result<Value> ResolveLookup(const ColumnRule& rule, const Value& source_value);
  // Key-map entry through the batch cache (authoritative for prefetched keys).
  Result<std::optional<RecordEntry>> FindEntry(const std::string& entity, Side side, const std::string& key);
  Status PutEntry(RecordEntry* entry);
  // Keeps the batch caches as PutEntry does, for an entry written later.
  void CacheEntryKeys(const RecordEntry& entry);
  // Counts a written record; keeps its details only when someone will read them.
  void Report(AppliedRecord applied, const Row& source_key, const Row& target_key);
  Result<std::optional<Row>> TargetRow(int entity, const Row& tkey);
  void ForgetTargetRow(int entity, const Row& tkey) { target_rows_.erase(std::to_string(entity) + '\x1d' + EncodeKey(tkey)); }
  // Maps a source row of `em` in this batch's direction (one value per rule)
  // and checks that each value may be written exactly: problems_[i] is empty
  // or why rule i's value must not be written (mapping/exact_write.h).
  Status MapRow(const EntityMapping& em, const Row& srow, Row* out);
  // The first problem among all rules (a new record writes them all).
  Status AnyProblem() const {
    for (const std::string& p : problems_)
      if (!p.empty()) return Status::Constraint(p);
    return Status::Ok();
  }
  Status Park(const WorkItem& item, const Status& why);
  // The tag of `item`'s writes in writer_ (its ParkedKey, for suspects()).
  size_t Tag(const WorkItem& item);
  bool deferring() const { return defer_ && !in_record_savepoint_; }

  ApplyContext ctx_;
  Direction& d_;
  bool careful_;
  const std::unordered_set<std::string>* solo_;
  std::vector<std::string> tag_keys_;  // by writer_ tag
  // Where a failed statement spoils the transaction anyway (PostgreSQL) and
  // records have no savepoint of their own, records' inserts, updates,
  // deletes and key-map entries are held back and sent as set statements
  // (engine/apply/set_writer.h): a statement per few hundred records instead
  // of one or two per record. A rejection then re-runs the batch record by
  // record, as any rejection there does. Everything else the batch sends to
  // the target, or reads from it, flushes them first.
  const bool defer_;
  SetWriter writer_;
  bool needs_careful_ = false;
  bool in_record_savepoint_;  // the record being applied has a savepoint of its own
  std::vector<std::string> problems_;    // of the last MapRow, per rule
  std::vector<size_t> unmapped_codes_;   // MapRow's scratch
  std::vector<Row> stored_;   // values a write RETURNed (DirectionSql::returning)
  std::vector<AppliedRecord> applied_;
  int64_t written_ = 0;
  std::map<std::string, int64_t> written_by_entity_;
  std::unordered_set<std::string> put_aside_;  // ParkedKey of records newly put aside
  int64_t conflicts_ = 0;
  int64_t applied_alone_ = 0;
  Row expr_out_;
  std::vector<FieldFacts> field_facts_;  // per rule, for the record being merged (reused)
  FieldMerge merge_;                     // its merge (reused)
  // Per-chunk caches. A present key is authoritative (nullopt = known absent).
  std::unordered_map<std::string, std::optional<RecordEntry>> entries_;  // entity \x1d side \x1d key
  std::unordered_map<std::string, std::optional<Row>> target_rows_;      // entity index \x1d target key
  std::unordered_set<std::string> claimed_lkeys_;  // entity \x1d legacy key written live in this chunk
};

}  // namespace tandem
