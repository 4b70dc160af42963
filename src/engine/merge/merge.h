// Merge decisions: what to do with one record whose change arrived from the
// source side, given what the source, the target and the key map hold.
//
// Everything here is a pure function of its arguments: no database, no I/O,
// no engine state. The engine gathers the facts (from the rows and key-map
// entries it prefetched), asks here, and carries out the answer
// (ApplyBatch::Apply in engine/apply/apply_record.cc). A decision that needs
// a fact that costs a query (the newest side, the owner of a target row) says
// so instead of deciding; the engine looks the fact up and asks again. docs/conflicts.md
// is the prose spec; tests/engine/merge_test.cc the table of cases.
//
// Thread-safety: none needed; nothing here has state.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/column_type.h"
#include "core/value.h"
#include "mapping/config.h"

namespace tandem {

// The kinds of conflict, as stored in _tandem_conflicts.kind.
enum class ConflictKind {
  kUpdateUpdate,  // a field changed on both sides to different values
  kDeleteUpdate,  // deleted at the source, updated on the target
  kUpdateDelete,  // updated at the source, deleted on the target
  kInsertInsert,  // the same record inserted on both sides
  kReadOnlyEdit,  // a change on the read-only side of a one-way entity
};
// "update-update", "delete-update", "update-delete", "insert-insert", "read-only-edit".
const char* ConflictKindName(ConflictKind kind);
// The kind `name` names; nullopt for any other text.
std::optional<ConflictKind> ConflictKindFromName(std::string_view name);

// A conflict a decision records. `policy` is the name of what settled it
// (mapping/entity_mapping.h PolicyName), a static string.
struct PlannedConflict {
  ConflictKind kind = ConflictKind::kUpdateUpdate;
  std::optional<Side> winner;  // nullopt: open, for a person to settle
  const char* policy = "";
};

// ---------------------------------------------------------------------------
// One record's fields, when it exists on both sides: a three-way merge.

// What is known of one field (one target column) of the record.
struct FieldFacts {
  std::string_view name;             // the field, for DescribePlan
  const Value* source = nullptr;     // the source's value, mapped to the target's terms
  const Value* target = nullptr;     // the target row's value
  const Value* base = nullptr;       // the column's target base; null: none (never synced, or not in the base)
  const ColumnType* type = nullptr;  // the target column's: source, target and base are compared in it (SameValue)
  // A source column the field reads differs from the source base (true
  // when the record has no source base).
  bool source_changed = false;
  // The source value must not be written (mapping/exact_write.h).
  bool unwritable = false;
  // Settles a change on both sides. kMerge (never left by CompileMapping):
  // the primary side wins.
  ConflictPolicy policy = ConflictPolicy::kMerge;
};

struct MergeSettings {
  Side source = Side::kLegacy;   // the side the change comes from
  Side primary = Side::kLegacy;  // config `primary`
  bool detect_conflicts = true;  // false: every field counts as changed at the source only
  bool has_target_base = false;  // the record has a target base (see FieldBase::kUnchanged)
  // The side whose change is newer (NewerSide), once looked up; needed only
  // when MergeFields says kNeedsNewest.
  std::optional<Side> newest;
};

enum class FieldAction {
  kAgree,       // source and target hold the same value: nothing to write
  kTakeSource,  // write the source's value
  kKeepTarget,  // leave the target's value: its own change (flows the other way), or it won
};
// What the field's target base becomes once the record is applied.
enum class FieldBase {
  kUnchanged,  // stays: a target change it does not contain still flows to the source
  kTarget,     // the target's value (agreed on, or the record had no target base)
  kSource,     // the value written (as the target stored it, where it says)
};

struct FieldDecision {
  FieldAction action = FieldAction::kAgree;
  FieldBase new_base = FieldBase::kUnchanged;
  bool source_changed = false;  // as the merge counted them: with detection off,
  bool target_changed = false;  // the source changed and the target did not
  bool conflict = false;        // changed on both sides to different values: record it (kUpdateUpdate)
  std::optional<Side> winner;   // the conflict's winner; nullopt with `conflict`: open (manual)
};

enum class MergeVerdict {
  kWrite,        // carry out `fields`: record their conflicts (settled), write the kTakeSource ones
  kReject,       // field `rejected` changed to a value that must not be written: write nothing, put the change aside
  kHold,         // a manual field changed on both sides: record the `conflict` fields (open), write nothing, hold
  kNeedsNewest,  // a field changed on both sides goes to the newer change: set MergeSettings::newest, merge again
};

struct FieldMerge {
  MergeVerdict verdict = MergeVerdict::kWrite;
  size_t rejected = 0;                // kReject: the first such field
  std::vector<FieldDecision> fields;  // one per field. kHold: only `conflict` is decided (the manual fields)
};

// Merges the fields of a record that exists on both sides. Per field:
// - target changed = it has a base and the target's value differs from it;
// - with detection off the source counts as changed and the target not;
// - a field changed at the source to a value that differs from the target's
//   and must not be written rejects the whole change (first such field);
// - else a kManual field changed on both sides to different values holds
//   the record (every such field is a conflict, open);
// - else, per field: the same value on both sides agrees; a change on the
//   source only is taken; no change at the source keeps the target's value;
//   a change on both sides is a conflict settled by the field's policy
//   (legacy-wins, modern-wins, newest, else the primary side).
// Kept values whose record has no target base make the target's value the
// base; with a base, the base stays.
// REQUIRES: each fact's source, target and type are non-null.
// Reuses out->fields' storage.
void MergeFields(std::span<const FieldFacts> fields, const MergeSettings& settings, FieldMerge* out);

// The side whose change is newer, from the two sides' timestamps (the rows'
// newest_by columns, or capture times): numbers compare as numbers, text as
// text; a tie or a missing (NULL) timestamp goes to `primary`.
Side NewerSide(const Value& source_time, const Value& target_time, Side source, Side primary);

// ---------------------------------------------------------------------------
// One record as a whole: insert, merge, delete, or a conflict of the record.

// What is known of the record. The engine computes the comparisons with the
// bases only where a decision reads them (see each).
struct RecordFacts {
  bool source_exists = false;    // the source row exists (else it was deleted at the source)
  bool known = false;            // the key map links it to the target (a live entry)
  bool has_source_base = false;  // the entry holds a source base
  bool target_exists = false;    // the target holds the record (a split record: some column of it is set)
  // The target row the known record lived in was deleted since the last
  // sync (a split record: its columns were cleared; the shared row is there).
  bool target_deleted = false;
  bool same_key = false;          // the target key is the source key (new_keys: same, a row of its own)
  bool detect_conflicts = true;   // config sync.detect_conflicts
  bool source_changed = false;    // read when the target was deleted: a mapped source column differs from its base
  bool target_changed = false;    // read when deleted at the source: a mapped target column differs from its base
  bool rows_equal = false;        // read for an unknown record whose key the target holds: all mapped values equal
  // Whether a live key-map entry of another record owns the target row;
  // asked for by kNeedsTargetOwner.
  std::optional<bool> target_row_owned;
};

enum class RecordAction {
  kNothing,   // write nothing, the entry stays as it is
  kInsert,    // new on the target: insert it (a split record: set its columns of the shared row)
  kRecreate,  // deleted on the target, updated at the source, the update wins: forget the entry, insert it anew
  kMerge,     // on both sides: merge its fields (MergeFields)
  kDelete,    // deleted at the source: delete the target row (a split record: clear its columns), entry gone
  kForget,    // deleted at the source; the target row is gone already, or its update wins: entry gone
  kHold,      // a conflict for a person: record it (open), write nothing, hold the record
  kRevert,    // an edit of a read-only side: record it, and the owner's values are written back over it
  kNeedsTargetOwner,  // set RecordFacts::target_row_owned and plan again
};
// "nothing", "insert", "recreate", "merge", "delete", "forget", "hold", "revert", "needs-target-owner".
const char* RecordActionName(RecordAction action);

// A record's plan: what to do, and a conflict of the whole record to record
// first (kind delete-update, update-delete, insert-insert or read-only-edit).
struct RecordPlan {
  RecordAction action = RecordAction::kNothing;
  std::optional<PlannedConflict> conflict;
};

// Plans a record of an entity that syncs from `source`:
// - deleted at the source: nothing if neither the key map nor a same-key
//   target row knows it; forget it if the target row is gone; else delete
//   it, unless the target changed it since the base (with detection on):
//   a delete-update conflict settled by `on_delete` (keep-update: the
//   target's update wins, the record is forgotten; delete-wins: deleted;
//   manual: held; unset: the primary side's action);
// - updated at the source while the target deleted it (a known record with a
//   source base): nothing unless a mapped source column changed since the
//   base; then an update-delete conflict settled by `on_delete` the same way
//   (the update wins: recreate; the delete wins: nothing). Detection off
//   does not change this;
// - an unknown record whose key the target holds (same_key), with detection
//   on: once the owner is known, an unowned row with different values is an
//   insert-insert conflict (always manual: held); otherwise merged;
// - else insert when the target does not hold it, merge when it does.
RecordPlan PlanRecord(const RecordFacts& facts, DeletePolicy on_delete, Side source, Side primary);

// What is known of a change on the read-only side of a one-way entity.
struct ReadOnlyEditFacts {
  bool known = false;          // the key map links it to the owner's row
  bool source_exists = false;  // the row exists on the read-only side
  // Read only when known and source_exists:
  bool target_exists = false;  // the owner's row exists (else its delete is on its way)
  bool edited = false;         // read when target_exists: a mapped column differs from the agreed version
};

// Plans a change on the read-only side (`owner` owns the entity): a row
// created or deleted there is held (a read-only-edit conflict, policy park);
// an edit is reverted (kRevert, the owner wins) or held, per `policy`;
// anything else (no edit, the owner's row gone) is nothing.
RecordPlan PlanReadOnlyEdit(const ReadOnlyEditFacts& facts, ReadOnlyEditPolicy policy, Side owner);

// A one-line account of a record's plan, for the debug log. With the merge of
// its fields (action kMerge), e.g. "update customers 42: take name, email;
// keep balance (modern changed); conflict status update-update legacy-wins,
// legacy wins". `source` is the side the change comes from.
std::string DescribePlan(const RecordPlan& plan, std::string_view entity, std::string_view key, Side source,
                         std::span<const FieldFacts> fields = {}, const FieldMerge* merge = nullptr);

}  // namespace tandem
