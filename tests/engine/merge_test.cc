// The merge decisions (engine/merge/merge.h), case by case. Each row is one
// case of docs/conflicts.md (or of the engine's behaviour where the doc says
// nothing); the integration tests check the same rules through full syncs.
#include "engine/merge/merge.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace tandem {
namespace {

constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;
constexpr std::optional<Side> kNone = std::nullopt;

constexpr ConflictPolicy kLegacyWins = ConflictPolicy::kLegacyWins;
constexpr ConflictPolicy kModernWins = ConflictPolicy::kModernWins;
constexpr ConflictPolicy kNewest = ConflictPolicy::kNewest;
constexpr ConflictPolicy kPrimary = ConflictPolicy::kMerge;  // merge without fallback: the primary side wins
constexpr ConflictPolicy kManual = ConflictPolicy::kManual;

constexpr FieldAction kAgree = FieldAction::kAgree;
constexpr FieldAction kTake = FieldAction::kTakeSource;
constexpr FieldAction kKeep = FieldAction::kKeepTarget;

constexpr FieldBase kBaseStays = FieldBase::kUnchanged;
constexpr FieldBase kBaseTarget = FieldBase::kTarget;
constexpr FieldBase kBaseSource = FieldBase::kSource;

const char* Name(std::optional<Side> s) { return s ? SideName(*s) : "none"; }

// One field of one record, merged alone.
struct OneField {
  const char* base;  // nullptr: no base yet
  const char* src;
  const char* tgt;
  bool src_chg;
};

FieldMerge MergeOne(const OneField& f, ConflictPolicy policy, Side source, Side primary, std::optional<Side> newest,
                    bool detect, bool has_target_base) {
  const ColumnType type;
  const Value base = f.base ? Value::Text(f.base) : Value::Null();
  const Value src = Value::Text(f.src), tgt = Value::Text(f.tgt);
  FieldFacts facts;
  facts.name = "f";
  facts.source = &src;
  facts.target = &tgt;
  facts.base = f.base ? &base : nullptr;
  facts.type = &type;
  facts.source_changed = f.src_chg;
  facts.policy = policy;
  MergeSettings settings;
  settings.source = source;
  settings.primary = primary;
  settings.detect_conflicts = detect;
  settings.has_target_base = has_target_base;
  settings.newest = newest;
  FieldMerge out;
  MergeFields(std::span<const FieldFacts>(&facts, 1), settings, &out);
  return out;
}

// The policies a field may have, with what `primary` and the newest side
// are for the case.
struct PolicySetting {
  const char* name;
  ConflictPolicy policy;
  Side primary;
  std::optional<Side> newest;
};
const PolicySetting kPolicies[] = {
    {"legacy-wins", kLegacyWins, M, kNone},
    {"modern-wins", kModernWins, L, kNone},
    {"newest, legacy newer", kNewest, M, L},
    {"newest, modern newer", kNewest, L, M},
    {"primary legacy", kPrimary, L, kNone},
    {"primary modern", kPrimary, M, kNone},
    {"manual", kManual, L, kNone},
};

// Which side changed the field, when at most one did (or both to the same
// value): the policy does not matter.
struct OneSidedCase {
  const char* name;
  OneField field;
  FieldAction action;
  FieldBase base_after;
};
// clang-format off
const OneSidedCase kOneSidedCases[] = {
  // name                        base     src  tgt  src_chg   -> action  base after
  {"neither changed",            {"a",     "a", "a", false},     kAgree, kBaseTarget},
  {"source only",                {"a",     "b", "a", true},      kTake,  kBaseSource},
  {"target only",                {"a",     "a", "c", false},     kKeep,  kBaseStays},
  {"both, same value",           {"a",     "b", "b", true},      kAgree, kBaseTarget},
  {"no base yet, values differ", {nullptr, "b", "c", true},      kTake,  kBaseSource},
  {"no base yet, same value",    {nullptr, "b", "b", true},      kAgree, kBaseTarget},
};
// clang-format on

TEST(MergeFieldsTest, AChangeOnOneSideOnlyIsKeptWhateverThePolicy) {
  for (const OneSidedCase& c : kOneSidedCases)
    for (const PolicySetting& p : kPolicies)
      for (Side source : {L, M}) {
        SCOPED_TRACE(std::string(c.name) + ", " + p.name + ", from " + SideName(source));
        FieldMerge m = MergeOne(c.field, p.policy, source, p.primary, p.newest, true, c.field.base != nullptr);
        ASSERT_EQ(m.verdict, MergeVerdict::kWrite);
        EXPECT_EQ(m.fields[0].action, c.action);
        EXPECT_EQ(m.fields[0].new_base, c.base_after);
        EXPECT_FALSE(m.fields[0].conflict);
        EXPECT_EQ(m.fields[0].winner, kNone);
      }
}

// Both sides changed the field to different values (base a, source b,
// target c): a conflict, settled by the policy.
struct BothChangedCase {
  const char* name;
  ConflictPolicy policy;
  Side source;
  Side primary;
  std::optional<Side> newest;
  MergeVerdict verdict;
  FieldAction action;
  std::optional<Side> winner;
};
constexpr MergeVerdict kWrite = MergeVerdict::kWrite;
constexpr MergeVerdict kHold = MergeVerdict::kHold;
// clang-format off
const BothChangedCase kBothChangedCases[] = {
  // name                                    policy       source primary newest -> verdict action winner
  {"legacy-wins, from legacy",               kLegacyWins, L,     M,      kNone,    kWrite, kTake,  L},
  {"legacy-wins, from modern",               kLegacyWins, M,     M,      kNone,    kWrite, kKeep,  L},
  {"modern-wins, from legacy",               kModernWins, L,     L,      kNone,    kWrite, kKeep,  M},
  {"modern-wins, from modern",               kModernWins, M,     L,      kNone,    kWrite, kTake,  M},
  {"newest legacy, from legacy",             kNewest,     L,     M,      L,        kWrite, kTake,  L},
  {"newest legacy, from modern",             kNewest,     M,     M,      L,        kWrite, kKeep,  L},
  {"newest modern, from legacy",             kNewest,     L,     L,      M,        kWrite, kKeep,  M},
  {"newest modern, from modern",             kNewest,     M,     L,      M,        kWrite, kTake,  M},
  {"primary legacy, from legacy",            kPrimary,    L,     L,      kNone,    kWrite, kTake,  L},
  {"primary legacy, from modern",            kPrimary,    M,     L,      kNone,    kWrite, kKeep,  L},
  {"primary modern, from legacy",            kPrimary,    L,     M,      kNone,    kWrite, kKeep,  M},
  {"primary modern, from modern",            kPrimary,    M,     M,      kNone,    kWrite, kTake,  M},
  {"manual, from legacy",                    kManual,     L,     L,      kNone,    kHold,  kAgree, kNone},
  {"manual, from modern",                    kManual,     M,     M,      kNone,    kHold,  kAgree, kNone},
};
// clang-format on

TEST(MergeFieldsTest, AChangeOnBothSidesIsAConflictSettledByThePolicy) {
  for (const BothChangedCase& c : kBothChangedCases) {
    SCOPED_TRACE(c.name);
    FieldMerge m = MergeOne({"a", "b", "c", true}, c.policy, c.source, c.primary, c.newest, true, true);
    ASSERT_EQ(m.verdict, c.verdict);
    const FieldDecision& d = m.fields[0];
    EXPECT_TRUE(d.conflict);
    EXPECT_EQ(d.winner, c.winner) << Name(d.winner);
    if (c.verdict == kHold) continue;  // nothing else is decided
    EXPECT_EQ(d.action, c.action);
    // The losing target keeps its base, so its change does not look agreed on.
    EXPECT_EQ(d.new_base, c.action == kTake ? kBaseSource : kBaseStays);
  }
}

// With detection off the source overwrites: nothing is a conflict, not even
// under manual, and a target's own change is overwritten too.
// clang-format off
const OneSidedCase kDetectionOffCases[] = {
  // name                        base     src  tgt  src_chg   -> action  base after
  {"neither changed",            {"a",     "a", "a", false},     kAgree, kBaseTarget},
  {"source only",                {"a",     "b", "a", true},      kTake,  kBaseSource},
  {"target only",                {"a",     "a", "c", false},     kTake,  kBaseSource},
  {"both, same value",           {"a",     "b", "b", true},      kAgree, kBaseTarget},
  {"both, different values",     {"a",     "b", "c", true},      kTake,  kBaseSource},
  {"no base yet",                {nullptr, "b", "c", true},      kTake,  kBaseSource},
};
// clang-format on

TEST(MergeFieldsTest, WithDetectionOffTheSourceOverwrites) {
  for (const OneSidedCase& c : kDetectionOffCases)
    for (const PolicySetting& p : kPolicies)
      for (Side source : {L, M}) {
        SCOPED_TRACE(std::string(c.name) + ", " + p.name + ", from " + SideName(source));
        FieldMerge m = MergeOne(c.field, p.policy, source, p.primary, kNone, false, c.field.base != nullptr);
        ASSERT_EQ(m.verdict, MergeVerdict::kWrite);
        EXPECT_EQ(m.fields[0].action, c.action);
        EXPECT_EQ(m.fields[0].new_base, c.base_after);
        EXPECT_FALSE(m.fields[0].conflict);
        EXPECT_FALSE(m.fields[0].target_changed);
      }
}

TEST(MergeFieldsTest, NewestIsAskedForOnlyWhenAFieldChangedOnBothSides) {
  EXPECT_EQ(MergeOne({"a", "b", "c", true}, kNewest, L, L, kNone, true, true).verdict, MergeVerdict::kNeedsNewest);
  for (const OneSidedCase& c : kOneSidedCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(MergeOne(c.field, kNewest, L, L, kNone, true, c.field.base != nullptr).verdict, kWrite);
  }
  EXPECT_EQ(MergeOne({"a", "b", "c", true}, kNewest, L, L, kNone, false, true).verdict, kWrite);
}

// A record whose target base lacks a column (a field mapped after the last
// sync): the target's value does not count as changed, and a kept value
// leaves the column without a base.
TEST(MergeFieldsTest, AColumnMissingFromTheBaseIsNotATargetChange) {
  FieldMerge m = MergeOne({nullptr, "b", "c", true}, kManual, L, L, kNone, true, /*has_target_base=*/true);
  ASSERT_EQ(m.verdict, kWrite);
  EXPECT_EQ(m.fields[0].action, kTake);
  m = MergeOne({nullptr, "b", "c", false}, kLegacyWins, L, L, kNone, true, /*has_target_base=*/true);
  EXPECT_EQ(m.fields[0].action, kKeep);
  EXPECT_EQ(m.fields[0].new_base, kBaseStays);
  m = MergeOne({nullptr, "b", "c", false}, kLegacyWins, L, L, kNone, true, /*has_target_base=*/false);
  EXPECT_EQ(m.fields[0].new_base, kBaseTarget);
}

// Several fields of one record.
class RecordFields {
 public:
  RecordFields() = default;
  RecordFields(const RecordFields&) = delete;  // the facts point into it
  RecordFields& operator=(const RecordFields&) = delete;

  // Adds a field: base (nullptr: none), source, target values.
  RecordFields& Add(const char* name, const char* base, const char* src, const char* tgt, bool src_chg,
                    ConflictPolicy policy, bool unwritable = false) {
    FieldFacts f;
    f.name = name;
    values_.push_back(base ? Value::Text(base) : Value::Null());
    f.base = base ? &values_.back() : nullptr;
    values_.push_back(Value::Text(src));
    f.source = &values_.back();
    values_.push_back(Value::Text(tgt));
    f.target = &values_.back();
    f.type = &type_;
    f.source_changed = src_chg;
    f.unwritable = unwritable;
    f.policy = policy;
    facts_.push_back(f);
    return *this;
  }
  FieldMerge Merge(Side source, std::optional<Side> newest = kNone, bool detect = true) const {
    MergeSettings s;
    s.source = source;
    s.primary = L;
    s.detect_conflicts = detect;
    s.has_target_base = true;
    s.newest = newest;
    FieldMerge out;
    MergeFields(facts_, s, &out);
    return out;
  }
  const std::vector<FieldFacts>& facts() const { return facts_; }

 private:
  ColumnType type_;
  std::deque<Value> values_;  // push_back keeps the facts' pointers valid
  std::vector<FieldFacts> facts_;
};

// docs/conflicts.md, merge: legacy sets balance and email, modern sets
// status and email; with a modern-wins fallback modern's email wins and each
// one-sided change flows.
TEST(MergeFieldsTest, TheDocsMergeExample) {
  RecordFields r;
  r.Add("email", "j@x", "legacy@x", "modern@x", true, kModernWins)
      .Add("status", "active", "active", "inactive", false, kModernWins)
      .Add("balance", "1.00", "1.11", "1.00", true, kModernWins);
  FieldMerge m = r.Merge(L);
  ASSERT_EQ(m.verdict, kWrite);
  EXPECT_EQ(m.fields[0].action, kKeep);
  EXPECT_TRUE(m.fields[0].conflict);
  EXPECT_EQ(m.fields[0].winner, M);
  EXPECT_EQ(m.fields[1].action, kKeep);
  EXPECT_FALSE(m.fields[1].conflict);
  EXPECT_EQ(m.fields[2].action, kTake);
  EXPECT_FALSE(m.fields[2].conflict);
}

TEST(MergeFieldsTest, AManualFieldInConflictHoldsTheWholeRecord) {
  RecordFields r;
  r.Add("email", "a", "b", "c", true, kManual)
      .Add("status", "a", "b", "c", true, kLegacyWins)
      .Add("balance", "1", "2", "1", true, kLegacyWins);
  FieldMerge m = r.Merge(L);
  ASSERT_EQ(m.verdict, kHold);
  EXPECT_TRUE(m.fields[0].conflict);
  EXPECT_EQ(m.fields[0].winner, kNone);
  EXPECT_FALSE(m.fields[1].conflict) << "only the manual fields are recorded while the record is held";
  EXPECT_FALSE(m.fields[2].conflict);
}

TEST(MergeFieldsTest, AHeldRecordDoesNotNeedTheNewestSide) {
  RecordFields r;
  r.Add("email", "a", "b", "c", true, kNewest).Add("status", "a", "b", "c", true, kManual);
  EXPECT_EQ(r.Merge(L).verdict, kHold);
}

TEST(MergeFieldsTest, AValueThatMustNotBeWrittenRejectsTheChangeFirst) {
  RecordFields r;
  r.Add("email", "a", "b", "c", true, kManual)
      .Add("status", "a", "b", "a", true, kLegacyWins, /*unwritable=*/true)
      .Add("code", "a", "b", "a", true, kLegacyWins, /*unwritable=*/true);
  FieldMerge m = r.Merge(L);
  EXPECT_EQ(m.verdict, MergeVerdict::kReject);
  EXPECT_EQ(m.rejected, 1u);
}

TEST(MergeFieldsTest, AnUnwritableValueIsHarmlessWhenNotWritten) {
  RecordFields r;
  r.Add("same", "a", "b", "b", true, kLegacyWins, true)        // the target holds it already
      .Add("unchanged", "a", "a", "c", false, kLegacyWins, true);  // the source did not change it
  EXPECT_EQ(r.Merge(L).verdict, kWrite);
  RecordFields off;
  off.Add("unchanged", "a", "a", "c", false, kLegacyWins, true);
  EXPECT_EQ(off.Merge(L, kNone, /*detect=*/false).verdict, MergeVerdict::kReject) << "detection off writes it";
}

// ---------------------------------------------------------------------------

struct NewerCase {
  const char* name;
  Value source_time;
  Value target_time;
  Side source;
  Side primary;
  Side expected;
};

TEST(NewerSideTest, TheLaterTimestampWinsAndTiesGoToPrimary) {
  const NewerCase cases[] = {
      // name, source's time, target's time, source, primary -> the newer side
      {"numbers, source later", Value::Integer(20), Value::Integer(3), L, M, L},
      {"numbers as numbers", Value::Integer(3), Value::Integer(20), L, L, M},
      {"integer against real", Value::Real(2.5), Value::Integer(2), M, L, M},
      {"ISO text as text", Value::Text("2026-01-02T00:00"), Value::Text("2026-01-01T23:59"), M, L, M},
      {"tie", Value::Integer(5), Value::Integer(5), L, M, M},
      {"no source time", Value::Null(), Value::Integer(5), L, L, L},
      {"no target time", Value::Integer(5), Value::Null(), L, M, M},
  };
  for (const NewerCase& c : cases)
    EXPECT_EQ(NewerSide(c.source_time, c.target_time, c.source, c.primary), c.expected) << c.name;
}

// ---------------------------------------------------------------------------
// Whole records.

// What Tandem knows of a record, per situation.
RecordFacts Facts(bool source_exists, bool known, bool target_exists) {
  RecordFacts f;
  f.source_exists = source_exists;
  f.known = known;
  f.has_source_base = known;
  f.target_exists = target_exists;
  f.same_key = true;
  return f;
}
RecordFacts DeletedHereUpdatedThere() {
  RecordFacts f = Facts(false, true, true);
  f.target_changed = true;
  return f;
}
RecordFacts DeletedHereUnchangedThere() { return Facts(false, true, true); }
RecordFacts DeletedOnBothSides() { return Facts(false, true, false); }
RecordFacts DeletedHereNeverSynced() { return Facts(false, false, false); }
RecordFacts DeletedHereSameKeyRowThere() { return Facts(false, false, true); }
RecordFacts DeletedHereOtherKeysRowThere() {
  RecordFacts f = Facts(false, false, true);
  f.same_key = false;
  return f;
}
RecordFacts UpdatedHereDeletedThere() {
  RecordFacts f = Facts(true, true, false);
  f.target_deleted = true;
  f.source_changed = true;
  return f;
}
RecordFacts UnchangedHereDeletedThere() {
  RecordFacts f = UpdatedHereDeletedThere();
  f.source_changed = false;
  return f;
}
RecordFacts LinkedWithoutBaseDeletedThere() {
  RecordFacts f = UpdatedHereDeletedThere();
  f.has_source_base = false;
  return f;
}
RecordFacts SplitRecordWaitingForItsRow() {  // known, the shared row not there
  RecordFacts f = Facts(true, true, false);
  f.same_key = false;
  return f;
}
RecordFacts InsertedHere() { return Facts(true, false, false); }
RecordFacts InsertedHereSameKeyTakenThere(bool equal, std::optional<bool> owned) {
  RecordFacts f = Facts(true, false, true);
  f.rows_equal = equal;
  f.target_row_owned = owned;
  return f;
}
RecordFacts SplitRecordIntoItsRow() {  // unknown, a shared row that holds it
  RecordFacts f = Facts(true, false, true);
  f.same_key = false;
  return f;
}
RecordFacts OnBothSides() { return Facts(true, true, true); }

constexpr DeletePolicy kOnDeletePrimary = DeletePolicy::kPrimary;
constexpr DeletePolicy kKeepUpdate = DeletePolicy::kKeepUpdate;
constexpr DeletePolicy kDeleteWins = DeletePolicy::kDeleteWins;
constexpr DeletePolicy kOnDeleteManual = DeletePolicy::kManual;
constexpr RecordAction kNothing = RecordAction::kNothing;
constexpr RecordAction kInsert = RecordAction::kInsert;
constexpr RecordAction kRecreate = RecordAction::kRecreate;
constexpr RecordAction kMerge = RecordAction::kMerge;
constexpr RecordAction kDelete = RecordAction::kDelete;
constexpr RecordAction kForget = RecordAction::kForget;
constexpr RecordAction kHoldRecord = RecordAction::kHold;
constexpr RecordAction kNeedsOwner = RecordAction::kNeedsTargetOwner;
constexpr std::optional<ConflictKind> kNoConflict = std::nullopt;
constexpr std::optional<bool> kAsk = std::nullopt;  // the owner of the target row, not looked up yet
constexpr ConflictKind kDeleteUpdate = ConflictKind::kDeleteUpdate;
constexpr ConflictKind kUpdateDelete = ConflictKind::kUpdateDelete;
constexpr ConflictKind kInsertInsert = ConflictKind::kInsertInsert;

struct RecordCase {
  const char* name;
  RecordFacts facts;
  bool detect;
  DeletePolicy on_delete;
  Side source;
  Side primary;
  RecordAction action;
  std::optional<ConflictKind> conflict;
  std::optional<Side> winner;  // of the conflict
  const char* policy;          // of the conflict
};

// clang-format off
const RecordCase kRecordCases[] = {
  // name                                                facts                            detect on_delete         src pri -> action     conflict       winner policy
  // A delete at the source against an update on the target.
  {"del/upd, primary legacy, from legacy",               DeletedHereUpdatedThere(),       true,  kOnDeletePrimary, L,  L,  kDelete,     kDeleteUpdate, L,     "primary"},
  {"del/upd, primary modern, from legacy",               DeletedHereUpdatedThere(),       true,  kOnDeletePrimary, L,  M,  kForget,     kDeleteUpdate, M,     "primary"},
  {"del/upd, primary modern, from modern",               DeletedHereUpdatedThere(),       true,  kOnDeletePrimary, M,  M,  kDelete,     kDeleteUpdate, M,     "primary"},
  {"del/upd, primary legacy, from modern",               DeletedHereUpdatedThere(),       true,  kOnDeletePrimary, M,  L,  kForget,     kDeleteUpdate, L,     "primary"},
  {"del/upd, keep-update, from legacy",                  DeletedHereUpdatedThere(),       true,  kKeepUpdate,      L,  L,  kForget,     kDeleteUpdate, M,     "keep-update"},
  {"del/upd, keep-update, from modern",                  DeletedHereUpdatedThere(),       true,  kKeepUpdate,      M,  M,  kForget,     kDeleteUpdate, L,     "keep-update"},
  {"del/upd, delete-wins, from legacy",                  DeletedHereUpdatedThere(),       true,  kDeleteWins,      L,  M,  kDelete,     kDeleteUpdate, L,     "delete-wins"},
  {"del/upd, delete-wins, from modern",                  DeletedHereUpdatedThere(),       true,  kDeleteWins,      M,  L,  kDelete,     kDeleteUpdate, M,     "delete-wins"},
  {"del/upd, manual",                                    DeletedHereUpdatedThere(),       true,  kOnDeleteManual,  L,  L,  kHoldRecord, kDeleteUpdate, kNone, "manual"},
  {"del/upd, detection off, primary modern",             DeletedHereUpdatedThere(),       false, kOnDeletePrimary, L,  M,  kDelete,     kNoConflict,   kNone, nullptr},
  {"del/upd, detection off, keep-update",                DeletedHereUpdatedThere(),       false, kKeepUpdate,      L,  L,  kDelete,     kNoConflict,   kNone, nullptr},
  {"del/upd, detection off, manual",                     DeletedHereUpdatedThere(),       false, kOnDeleteManual,  L,  L,  kDelete,     kNoConflict,   kNone, nullptr},
  // A delete at the source and nothing against it.
  {"delete, target unchanged, primary modern",           DeletedHereUnchangedThere(),     true,  kOnDeletePrimary, L,  M,  kDelete,     kNoConflict,   kNone, nullptr},
  {"delete, target unchanged, keep-update",              DeletedHereUnchangedThere(),     true,  kKeepUpdate,      L,  L,  kDelete,     kNoConflict,   kNone, nullptr},
  {"delete, target unchanged, manual",                   DeletedHereUnchangedThere(),     true,  kOnDeleteManual,  M,  L,  kDelete,     kNoConflict,   kNone, nullptr},
  {"delete, target deleted too",                         DeletedOnBothSides(),            true,  kOnDeleteManual,  L,  L,  kForget,     kNoConflict,   kNone, nullptr},
  {"delete of a record never synced",                    DeletedHereNeverSynced(),        true,  kOnDeletePrimary, L,  L,  kNothing,    kNoConflict,   kNone, nullptr},
  {"delete, never synced, a row under the same key",     DeletedHereSameKeyRowThere(),    true,  kOnDeletePrimary, L,  M,  kDelete,     kNoConflict,   kNone, nullptr},
  {"delete, never synced, keys not shared",              DeletedHereOtherKeysRowThere(),  true,  kOnDeletePrimary, L,  L,  kNothing,    kNoConflict,   kNone, nullptr},
  // An update at the source against a delete on the target.
  {"upd/del, primary legacy, from legacy",               UpdatedHereDeletedThere(),       true,  kOnDeletePrimary, L,  L,  kRecreate,   kUpdateDelete, L,     "primary"},
  {"upd/del, primary modern, from legacy",               UpdatedHereDeletedThere(),       true,  kOnDeletePrimary, L,  M,  kNothing,    kUpdateDelete, M,     "primary"},
  {"upd/del, primary modern, from modern",               UpdatedHereDeletedThere(),       true,  kOnDeletePrimary, M,  M,  kRecreate,   kUpdateDelete, M,     "primary"},
  {"upd/del, primary legacy, from modern",               UpdatedHereDeletedThere(),       true,  kOnDeletePrimary, M,  L,  kNothing,    kUpdateDelete, L,     "primary"},
  {"upd/del, keep-update, from legacy",                  UpdatedHereDeletedThere(),       true,  kKeepUpdate,      L,  M,  kRecreate,   kUpdateDelete, L,     "keep-update"},
  {"upd/del, keep-update, from modern",                  UpdatedHereDeletedThere(),       true,  kKeepUpdate,      M,  L,  kRecreate,   kUpdateDelete, M,     "keep-update"},
  {"upd/del, delete-wins, from legacy",                  UpdatedHereDeletedThere(),       true,  kDeleteWins,      L,  L,  kNothing,    kUpdateDelete, M,     "delete-wins"},
  {"upd/del, delete-wins, from modern",                  UpdatedHereDeletedThere(),       true,  kDeleteWins,      M,  M,  kNothing,    kUpdateDelete, L,     "delete-wins"},
  {"upd/del, manual",                                    UpdatedHereDeletedThere(),       true,  kOnDeleteManual,  M,  L,  kHoldRecord, kUpdateDelete, kNone, "manual"},
  // The code settles it by on_delete with detection off too (the doc's
  // "the source simply overwrites" does not cover it).
  {"upd/del, detection off, primary modern",             UpdatedHereDeletedThere(),       false, kOnDeletePrimary, L,  M,  kNothing,    kUpdateDelete, M,     "primary"},
  {"upd/del, detection off, manual",                     UpdatedHereDeletedThere(),       false, kOnDeleteManual,  L,  L,  kHoldRecord, kUpdateDelete, kNone, "manual"},
  {"source unchanged, target deleted, keep-update",      UnchangedHereDeletedThere(),     true,  kKeepUpdate,      L,  L,  kNothing,    kNoConflict,   kNone, nullptr},
  {"source unchanged, target deleted, manual",           UnchangedHereDeletedThere(),     true,  kOnDeleteManual,  L,  L,  kNothing,    kNoConflict,   kNone, nullptr},
  {"linked without a base, target deleted",              LinkedWithoutBaseDeletedThere(), true,  kOnDeleteManual,  L,  M,  kInsert,     kNoConflict,   kNone, nullptr},
  {"split record, its shared row not there yet",         SplitRecordWaitingForItsRow(),   true,  kOnDeleteManual,  M,  L,  kInsert,     kNoConflict,   kNone, nullptr},
  // An insert at the source.
  {"insert, nothing there",                              InsertedHere(),                  true,  kOnDeletePrimary, L,  M,  kInsert,     kNoConflict,   kNone, nullptr},
  {"insert-insert, owner not looked up yet",             InsertedHereSameKeyTakenThere(false, kAsk),  true, kOnDeletePrimary, L, L, kNeedsOwner, kNoConflict, kNone, nullptr},
  {"insert-insert, equal rows, owner not looked up yet", InsertedHereSameKeyTakenThere(true, kAsk),   true, kOnDeletePrimary, L, L, kNeedsOwner, kNoConflict, kNone, nullptr},
  {"insert-insert, different rows",                      InsertedHereSameKeyTakenThere(false, false),  true, kOnDeletePrimary, L, L, kHoldRecord, kInsertInsert, kNone, "manual"},
  {"insert-insert, different rows, from modern",         InsertedHereSameKeyTakenThere(false, false),  true, kKeepUpdate,      M, L, kHoldRecord, kInsertInsert, kNone, "manual"},
  {"insert-insert, equal rows become one record",        InsertedHereSameKeyTakenThere(true, false),   true, kOnDeletePrimary, L, L, kMerge,      kNoConflict,   kNone, nullptr},
  {"same key, the row another record's",                 InsertedHereSameKeyTakenThere(false, true),   true, kOnDeletePrimary, L, L, kMerge,      kNoConflict,   kNone, nullptr},
  {"insert-insert, detection off: overwritten",          InsertedHereSameKeyTakenThere(false, kAsk),  false, kOnDeletePrimary, L, L, kMerge,     kNoConflict,   kNone, nullptr},
  {"split record into the row that holds it",            SplitRecordIntoItsRow(),         true,  kOnDeletePrimary, L,  L,  kMerge,      kNoConflict,   kNone, nullptr},
  // On both sides.
  {"update on both sides",                               OnBothSides(),                   true,  kOnDeleteManual,  L,  L,  kMerge,      kNoConflict,   kNone, nullptr},
  {"update on both sides, detection off",                OnBothSides(),                   false, kOnDeletePrimary, M,  L,  kMerge,      kNoConflict,   kNone, nullptr},
};
// clang-format on

TEST(PlanRecordTest, EachSituationUnderEachDeletePolicy) {
  for (const RecordCase& c : kRecordCases) {
    SCOPED_TRACE(c.name);
    RecordFacts facts = c.facts;
    facts.detect_conflicts = c.detect;
    RecordPlan plan = PlanRecord(facts, c.on_delete, c.source, c.primary);
    EXPECT_EQ(plan.action, c.action) << RecordActionName(plan.action);
    ASSERT_EQ(plan.conflict.has_value(), c.conflict.has_value());
    if (!plan.conflict) continue;
    EXPECT_EQ(plan.conflict->kind, *c.conflict) << ConflictKindName(plan.conflict->kind);
    EXPECT_EQ(plan.conflict->winner, c.winner) << Name(plan.conflict->winner);
    EXPECT_STREQ(plan.conflict->policy, c.policy);
  }
}

struct ReadOnlyCase {
  const char* name;
  bool known, source_exists, target_exists, edited;
  ReadOnlyEditPolicy policy;
  Side owner;
  RecordAction action;
  std::optional<Side> winner;
  const char* conflict_policy;  // nullptr: no conflict
};
constexpr ReadOnlyEditPolicy kRevert = ReadOnlyEditPolicy::kRevert;
constexpr ReadOnlyEditPolicy kPark = ReadOnlyEditPolicy::kPark;

// clang-format off
const ReadOnlyCase kReadOnlyCases[] = {
  // name                                known  src    owner  edited policy   owner -> action               winner conflict policy
  {"row created there, revert",          false, true,  false, false, kRevert, M,   kHoldRecord,          kNone, "park"},
  {"row created there, park",            false, true,  false, false, kPark,   L,   kHoldRecord,          kNone, "park"},
  {"row deleted there, revert",          true,  false, true,  false, kRevert, M,   kHoldRecord,          kNone, "park"},
  {"never synced row deleted there",     false, false, false, false, kRevert, L,   kHoldRecord,          kNone, "park"},
  {"edit, revert, legacy owns",          true,  true,  true,  true,  kRevert, L,   RecordAction::kRevert, L,    "revert"},
  {"edit, revert, modern owns",          true,  true,  true,  true,  kRevert, M,   RecordAction::kRevert, M,    "revert"},
  {"edit, park",                         true,  true,  true,  true,  kPark,   L,   kHoldRecord,          kNone, "park"},
  {"nothing mapped changed",             true,  true,  true,  false, kPark,   L,   kNothing,             kNone, nullptr},
  {"the owner deleted the row",          true,  true,  false, false, kRevert, L,   kNothing,             kNone, nullptr},
};
// clang-format on

TEST(PlanReadOnlyEditTest, EditsAreRevertedOrParkedRowsCreatedOrDeletedParked) {
  for (const ReadOnlyCase& c : kReadOnlyCases) {
    SCOPED_TRACE(c.name);
    ReadOnlyEditFacts facts;
    facts.known = c.known;
    facts.source_exists = c.source_exists;
    facts.target_exists = c.target_exists;
    facts.edited = c.edited;
    RecordPlan plan = PlanReadOnlyEdit(facts, c.policy, c.owner);
    EXPECT_EQ(plan.action, c.action) << RecordActionName(plan.action);
    ASSERT_EQ(plan.conflict.has_value(), c.conflict_policy != nullptr);
    if (!plan.conflict) continue;
    EXPECT_EQ(plan.conflict->kind, ConflictKind::kReadOnlyEdit);
    EXPECT_EQ(plan.conflict->winner, c.winner);
    EXPECT_STREQ(plan.conflict->policy, c.conflict_policy);
  }
}

// ---------------------------------------------------------------------------

TEST(ConflictKindTest, NamesAreTheStoredOnesAndReadBack) {
  const std::pair<ConflictKind, const char*> kinds[] = {{ConflictKind::kUpdateUpdate, "update-update"},
                                                        {ConflictKind::kDeleteUpdate, "delete-update"},
                                                        {ConflictKind::kUpdateDelete, "update-delete"},
                                                        {ConflictKind::kInsertInsert, "insert-insert"},
                                                        {ConflictKind::kReadOnlyEdit, "read-only-edit"}};
  for (auto [kind, name] : kinds) {
    EXPECT_STREQ(ConflictKindName(kind), name);
    EXPECT_EQ(ConflictKindFromName(name), kind);
  }
  EXPECT_EQ(ConflictKindFromName("update"), std::nullopt);
}

TEST(DescribePlanTest, AMergeSaysWhatIsTakenKeptAndInConflict) {
  RecordFields r;
  r.Add("name", "a", "b", "a", true, kLegacyWins)
      .Add("email", "a", "b", "a", true, kLegacyWins)
      .Add("balance", "1", "1", "2", false, kLegacyWins)
      .Add("status", "a", "b", "c", true, kModernWins)
      .Add("code", "x", "y", "y", true, kLegacyWins);
  FieldMerge m = r.Merge(L);
  EXPECT_EQ(DescribePlan({RecordAction::kMerge, std::nullopt}, "customers", "42", L, r.facts(), &m),
            "update customers 42: take name, email; keep balance (modern changed), status (modern wins); conflict "
            "status update-update modern-wins, modern wins");
  RecordFields same;
  same.Add("name", "a", "a", "a", false, kLegacyWins);
  m = same.Merge(M);
  EXPECT_EQ(DescribePlan({RecordAction::kMerge, std::nullopt}, "customers", "42", M, same.facts(), &m),
            "unchanged customers 42");
}

TEST(DescribePlanTest, HeldAndRejectedMerges) {
  RecordFields r;
  r.Add("email", "a", "b", "c", true, kManual).Add("name", "a", "b", "a", true, kLegacyWins, true);
  FieldMerge m = r.Merge(M);
  EXPECT_EQ(DescribePlan({RecordAction::kMerge, std::nullopt}, "customers", "7", M, r.facts(), &m),
            "reject customers 7: name cannot be written");
  RecordFields held;
  held.Add("email", "a", "b", "c", true, kManual);
  m = held.Merge(M);
  EXPECT_EQ(DescribePlan({RecordAction::kMerge, std::nullopt}, "customers", "7", M, held.facts(), &m),
            "hold customers 7: conflict email update-update manual, open");
}

TEST(DescribePlanTest, ARecordPlanNamesItsConflict) {
  RecordPlan plan = PlanRecord(DeletedHereUpdatedThere(), kKeepUpdate, L, L);
  EXPECT_EQ(DescribePlan(plan, "orders", "'A-1'", L), "forget orders 'A-1': conflict (row) delete-update keep-update, "
                                                      "modern wins");
  EXPECT_EQ(DescribePlan(PlanRecord(InsertedHere(), kKeepUpdate, L, L), "orders", "9", L), "insert orders 9");
}

}  // namespace
}  // namespace tandem
