#include "engine/merge/merge.h"

#include <iterator>

#include <fmt/format.h>

#include "mapping/entity_mapping.h"

namespace tandem {

namespace {

// Indexed by ConflictKind.
constexpr const char* kConflictKindNames[] = {"update-update", "delete-update", "update-delete", "insert-insert",
                                              "read-only-edit"};

// Indexed by RecordAction.
constexpr const char* kRecordActionNames[] = {"nothing", "insert", "recreate", "merge", "delete",
                                              "forget",  "hold",   "revert",   "needs-target-owner"};
static_assert(std::size(kConflictKindNames) == static_cast<size_t>(ConflictKind::kReadOnlyEdit) + 1);
static_assert(std::size(kRecordActionNames) == static_cast<size_t>(RecordAction::kNeedsTargetOwner) + 1);

// The side a change on both sides goes to under `policy`.
// REQUIRES: policy is not kNewest, or settings.newest is set.
Side PolicyWinner(ConflictPolicy policy, const MergeSettings& settings) {
  switch (policy) {
    case ConflictPolicy::kLegacyWins: return Side::kLegacy;
    case ConflictPolicy::kModernWins: return Side::kModern;
    case ConflictPolicy::kNewest: return *settings.newest;
    case ConflictPolicy::kMerge:
    case ConflictPolicy::kManual: break;
  }
  return settings.primary;
}

// A delete on one side against an update on the other: the side whose
// action wins under `on_delete` (kManual: none; the caller holds the record).
Side DeleteConflictWinner(DeletePolicy on_delete, Side deleted_on, Side primary) {
  switch (on_delete) {
    case DeletePolicy::kKeepUpdate: return Other(deleted_on);
    case DeletePolicy::kDeleteWins: return deleted_on;
    case DeletePolicy::kPrimary:
    case DeletePolicy::kManual: break;
  }
  return primary;
}

// Marks the fields that hold the record (kManual, changed on both sides to
// different values); false if there are none.
bool MarkManualConflicts(std::span<const FieldFacts> fields, std::vector<FieldDecision>& out) {
  bool any = false;
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldFacts& f = fields[i];
    FieldDecision& d = out[i];
    d.conflict = f.policy == ConflictPolicy::kManual && d.source_changed && d.target_changed &&
                 !SameValue(*f.type, *f.source, *f.target);
    any |= d.conflict;
  }
  return any;
}

std::string ConflictText(std::string_view field, const PlannedConflict& c) {
  return fmt::format("conflict {} {} {}, {}", field, ConflictKindName(c.kind), c.policy,
                     c.winner ? std::string(SideName(*c.winner)) + " wins" : std::string("open"));
}

// "take a, b; keep c (modern changed); conflict ...", for a merge's fields.
std::string DescribeFields(std::span<const FieldFacts> fields, const FieldMerge& merge, Side source) {
  const Side target = Other(source);
  std::string take, keep, conflicts;
  for (size_t i = 0; i < fields.size() && i < merge.fields.size(); ++i) {
    const FieldDecision& d = merge.fields[i];
    if (d.conflict) {
      conflicts += "; " + ConflictText(fields[i].name, {ConflictKind::kUpdateUpdate, d.winner,
                                                        PolicyName(fields[i].policy)});
    }
    if (merge.verdict == MergeVerdict::kHold) continue;
    if (d.action == FieldAction::kTakeSource) {
      take += (take.empty() ? "" : ", ") + std::string(fields[i].name);
    } else if (d.action == FieldAction::kKeepTarget) {
      const std::string why = d.conflict         ? std::string(SideName(*d.winner)) + " wins"
                              : d.target_changed ? std::string(SideName(target)) + " changed"
                                                 : std::string("neither changed");
      keep += fmt::format("{}{} ({})", keep.empty() ? "" : ", ", fields[i].name, why);
    }
  }
  std::string out;
  if (!take.empty()) out += "; take " + take;
  if (!keep.empty()) out += "; keep " + keep;
  out += conflicts;
  return out.empty() ? out : ":" + out.substr(1);
}

}  // namespace

const char* ConflictKindName(ConflictKind kind) { return kConflictKindNames[static_cast<size_t>(kind)]; }

std::optional<ConflictKind> ConflictKindFromName(std::string_view name) {
  for (size_t i = 0; i < std::size(kConflictKindNames); ++i)
    if (name == kConflictKindNames[i]) return static_cast<ConflictKind>(i);
  return std::nullopt;
}

const char* RecordActionName(RecordAction action) { return kRecordActionNames[static_cast<size_t>(action)]; }

void MergeFields(std::span<const FieldFacts> fields, const MergeSettings& settings, FieldMerge* out) {
  out->verdict = MergeVerdict::kWrite;
  out->rejected = 0;
  out->fields.assign(fields.size(), FieldDecision{});
  // What changed on each side since the base.
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldFacts& f = fields[i];
    FieldDecision& d = out->fields[i];
    d.source_changed = !settings.detect_conflicts || f.source_changed;
    d.target_changed = settings.detect_conflicts && f.base && !SameValue(*f.type, *f.base, *f.target);
  }
  // A changed value that must not be written puts the change aside before
  // anything of the record is written.
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldFacts& f = fields[i];
    if (out->fields[i].source_changed && f.unwritable && !SameValue(*f.type, *f.source, *f.target)) {
      out->verdict = MergeVerdict::kReject;
      out->rejected = i;
      return;
    }
  }
  // Neither version is applied while a manual field is in conflict.
  if (MarkManualConflicts(fields, out->fields)) {
    out->verdict = MergeVerdict::kHold;
    return;
  }
  const FieldBase kept_base = settings.has_target_base ? FieldBase::kUnchanged : FieldBase::kTarget;
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldFacts& f = fields[i];
    FieldDecision& d = out->fields[i];
    if (SameValue(*f.type, *f.source, *f.target)) {
      d.action = FieldAction::kAgree;
      d.new_base = FieldBase::kTarget;
    } else if (d.source_changed && !d.target_changed) {
      d.action = FieldAction::kTakeSource;
    } else if (!d.source_changed) {
      d.action = FieldAction::kKeepTarget;  // the target's own change; it flows the other way
    } else {
      if (f.policy == ConflictPolicy::kNewest && !settings.newest) {
        out->verdict = MergeVerdict::kNeedsNewest;
        return;
      }
      d.conflict = true;
      d.winner = PolicyWinner(f.policy, settings);
      d.action = *d.winner == settings.source ? FieldAction::kTakeSource : FieldAction::kKeepTarget;
    }
    if (d.action == FieldAction::kTakeSource) d.new_base = FieldBase::kSource;
    else if (d.action == FieldAction::kKeepTarget) d.new_base = kept_base;
  }
}

Side NewerSide(const Value& source_time, const Value& target_time, Side source, Side primary) {
  if (source_time.is_null() || target_time.is_null()) return primary;
  int c = source_time.Compare(target_time);
  if (c == 0) return primary;
  return c > 0 ? source : Other(source);
}

RecordPlan PlanRecord(const RecordFacts& f, DeletePolicy on_delete, Side source, Side primary) {
  const Side target = Other(source);
  const char* policy = PolicyName(on_delete);
  if (!f.source_exists) {
    if (!f.known && !(f.same_key && f.target_exists)) return {RecordAction::kNothing, std::nullopt};
    if (!f.target_exists) return {RecordAction::kForget, std::nullopt};
    // Deleted here, updated there.
    if (!f.detect_conflicts || !f.target_changed) return {RecordAction::kDelete, std::nullopt};
    if (on_delete == DeletePolicy::kManual)
      return {RecordAction::kHold, PlannedConflict{ConflictKind::kDeleteUpdate, std::nullopt, policy}};
    const Side winner = DeleteConflictWinner(on_delete, source, primary);
    return {winner == target ? RecordAction::kForget : RecordAction::kDelete,
            PlannedConflict{ConflictKind::kDeleteUpdate, winner, policy}};
  }
  if (f.known && f.has_source_base && f.target_deleted) {
    // Updated here, deleted there. Only a change of a mapped source column
    // makes it a conflict.
    if (!f.source_changed) return {RecordAction::kNothing, std::nullopt};
    if (on_delete == DeletePolicy::kManual)
      return {RecordAction::kHold, PlannedConflict{ConflictKind::kUpdateDelete, std::nullopt, policy}};
    const Side winner = DeleteConflictWinner(on_delete, target, primary);
    return {winner == source ? RecordAction::kRecreate : RecordAction::kNothing,
            PlannedConflict{ConflictKind::kUpdateDelete, winner, policy}};
  }
  if (!f.target_exists) return {RecordAction::kInsert, std::nullopt};
  if (!f.known && f.same_key && f.detect_conflicts) {
    // The key taken on the target: the same record inserted on both sides
    // when no synced record owns that row. Equal rows simply become one.
    if (!f.target_row_owned) return {RecordAction::kNeedsTargetOwner, std::nullopt};
    if (!f.rows_equal && !*f.target_row_owned)
      return {RecordAction::kHold,
              PlannedConflict{ConflictKind::kInsertInsert, std::nullopt, PolicyName(ConflictPolicy::kManual)}};
  }
  return {RecordAction::kMerge, std::nullopt};
}

RecordPlan PlanReadOnlyEdit(const ReadOnlyEditFacts& f, ReadOnlyEditPolicy policy, Side owner) {
  if (!f.known || !f.source_exists) {
    // Created or deleted on the read-only side: left to a person.
    return {RecordAction::kHold,
            PlannedConflict{ConflictKind::kReadOnlyEdit, std::nullopt, PolicyName(ReadOnlyEditPolicy::kPark)}};
  }
  if (!f.target_exists || !f.edited) return {RecordAction::kNothing, std::nullopt};
  if (policy == ReadOnlyEditPolicy::kRevert)
    return {RecordAction::kRevert, PlannedConflict{ConflictKind::kReadOnlyEdit, owner, PolicyName(policy)}};
  return {RecordAction::kHold, PlannedConflict{ConflictKind::kReadOnlyEdit, std::nullopt, PolicyName(policy)}};
}

std::string DescribePlan(const RecordPlan& plan, std::string_view entity, std::string_view key, Side source,
                         std::span<const FieldFacts> fields, const FieldMerge* merge) {
  std::string action = RecordActionName(plan.action);
  std::string details;
  if (plan.action == RecordAction::kMerge && merge) {
    bool writes = false;
    for (const FieldDecision& d : merge->fields) writes |= d.action == FieldAction::kTakeSource;
    switch (merge->verdict) {
      case MergeVerdict::kWrite: action = writes ? "update" : "unchanged"; break;
      case MergeVerdict::kReject: action = "reject"; break;
      case MergeVerdict::kHold: action = "hold"; break;
      case MergeVerdict::kNeedsNewest: action = "merge (needs the newest side)"; break;
    }
    if (merge->verdict == MergeVerdict::kReject && merge->rejected < fields.size())
      details = fmt::format(": {} cannot be written", fields[merge->rejected].name);
    else
      details = DescribeFields(fields, *merge, source);
  }
  if (plan.conflict) details += (details.empty() ? ": " : "; ") + ConflictText("(row)", *plan.conflict);
  return fmt::format("{} {} {}{}", action, entity, key, details);
}

}  // namespace tandem
