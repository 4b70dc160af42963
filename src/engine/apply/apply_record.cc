// ApplyBatch::Apply: one record, step by step. What Tandem knows of it (its
// key-map entry), its source row mapped, the target row, the plan asked of
// engine/merge, and the writes that carry the plan out.
#include <fmt/format.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/apply/apply_batch.h"

namespace tandem {

namespace {

// The facts PlanRecord reads about a record of `dm`, from what Apply found:
// its source row (`source_row` when `source_exists`), its entry's bases, the
// target row and the source row mapped (when the source exists). The
// comparisons with the bases are made only where PlanRecord reads them.
RecordFacts RecordFactsOf(const DirectionMapping& dm, bool source_exists, const std::optional<Row>& source_row,
                          bool known, const ColumnValues* base_s, const ColumnValues* base_t,
                          const std::optional<Row>& trow, bool target_exists, const Row& mapped, bool detect) {
  const size_t tk = dm.target_key_columns.size();
  RecordFacts f;
  f.source_exists = source_exists;
  f.known = known;
  f.has_source_base = base_s != nullptr;
  f.target_exists = target_exists;
  f.target_deleted = !target_exists && trow.has_value() == dm.target_row_shared;
  f.same_key = dm.target_new_keys == NewKeys::kSame && !dm.target_row_shared;
  f.detect_conflicts = detect;
  if (!source_exists && target_exists && base_t) {
    // A mapped target column no longer equals its base.
    for (size_t i = 0; i < dm.rules.size() && !f.target_changed; ++i) {
      auto it = base_t->find(dm.rules[i].target_column);
      f.target_changed = it != base_t->end() && !SameValue(dm.rules[i].target_type, it->second, (*trow)[tk + i]);
    }
  } else if (source_exists && known && base_s && f.target_deleted) {
    // A source column differs from its base, or has none.
    for (size_t i = 0; i < dm.source_columns.size() && !f.source_changed; ++i) {
      auto it = base_s->find(dm.source_columns[i]);
      f.source_changed = it == base_s->end() || !SameValue(dm.source_types[i], it->second, (*source_row)[i]);
    }
  } else if (source_exists && !known && target_exists && f.same_key) {
    f.rows_equal = true;
    for (size_t i = 0; i < dm.rules.size() && f.rows_equal; ++i)
      f.rows_equal = SameValue(dm.rules[i].target_type, mapped[i], (*trow)[tk + i]);
  }
  return f;
}

// The facts MergeFields reads about each rule of `dm` for a record on both
// sides; they point into the arguments, which must outlive *out.
void FieldFactsOf(const DirectionMapping& dm, const ColumnValues* base_s, const ColumnValues* base_t,
                  const Row& source_row, const Row& mapped, const Row& trow, const std::vector<std::string>& problems,
                  std::vector<FieldFacts>* out) {
  const size_t tk = dm.target_key_columns.size();
  out->resize(dm.rules.size());
  for (size_t i = 0; i < dm.rules.size(); ++i) {
    const ColumnRule& r = dm.rules[i];
    FieldFacts& f = (*out)[i];
    f.name = r.field;
    f.source = &mapped[i];
    f.target = &trow[tk + i];
    f.base = nullptr;
    if (base_t) {
      auto it = base_t->find(r.target_column);
      if (it != base_t->end()) f.base = &it->second;
    }
    f.type = &r.target_type;
    f.source_changed = !base_s;  // without a base, every field is the source's news
    for (size_t k = 0; base_s && k < r.deps.size() && !f.source_changed; ++k) {
      const int dep = r.deps[k];
      auto it = base_s->find(dm.source_columns[dep]);
      f.source_changed = it == base_s->end() || !SameValue(dm.source_types[dep], it->second, source_row[dep]);
    }
    f.unwritable = !problems[i].empty();
    f.policy = r.policy;
  }
}

}  // namespace

struct ApplyBatch::RecordWork {
  const WorkItem& item;
  const EntityMapping& em;
  const DirectionMapping& dm;
  const DirectionSql& sql;
  const Side S, T;
  const std::string src_key;
  const bool key_changed;
  const size_t tk;  // target key columns
  AppliedRecord applied;
  std::optional<RecordEntry> entry{};  // 1. what Tandem knows of this record (none when gone)
  Row mapped{};                        // 2. the source row mapped (when it exists)
  Row tkey{};                          // 3. the target key, once known
  bool tkey_known = false;
  std::optional<Row> trow{};           //    the target row read by that key
  bool target_exists = false;
  RecordEntry next{};                  // what this record's entry becomes
  const ColumnValues* base_s = nullptr;
  const ColumnValues* base_t = nullptr;
  RecordPlan plan{};                   // 4. the plan
  ColumnValues new_base_t{};           // the target base the entry gets
  // An update held back for the set writer (sent with its entry): the rules
  // it sets and their values.
  std::vector<int> update_rules{};
  Row update_values{};
};

Status ApplyBatch::Apply(const WorkItem& item) {
  const EntityMapping& em = ctx_.mapping.entities[item.entity];
  const DirectionMapping& dm = em.from(d_.source);
  if (!dm.enabled) return ReadOnlyEdit(item);
  RecordWork r{.item = item,
               .em = em,
               .dm = dm,
               .sql = d_.sql[item.entity],
               .S = d_.source,
               .T = d_.target,
               .src_key = EncodeKey(item.key),
               .key_changed = !item.old_key.empty(),
               .tk = dm.target_key_columns.size(),
               .applied = AppliedRecord{d_.source, em.name, "", "", "", item.captured_at_ms}};
  stored_.clear();

  // 1. What Tandem knows of this record.
  r.entry = item.entry_before;
  if (r.entry && r.entry->gone) r.entry.reset();

  // 2. Mapped source values (may wait for a parent, or be rejected).
  if (item.source_exists) TANDEM_RETURN_IF_ERROR(MapRow(em, *item.source_row, &r.mapped));

  // 3. The target row, if the record exists there.
  TANDEM_ASSIGN_OR_RETURN(bool go_on, FindTarget(r));
  if (!go_on) return Status::Ok();
  r.next.entity = em.name;  // bases are set below
  if (r.entry) {
    r.next.lkey = r.entry->lkey;
    r.next.mkey = r.entry->mkey;
  }
  r.base_s = r.entry && r.entry->base(r.S) ? &*r.entry->base(r.S) : nullptr;
  r.base_t = r.entry && r.entry->base(r.T) ? &*r.entry->base(r.T) : nullptr;

  // 4. The plan (engine/merge/merge.h) from what Tandem knows and found.
  TANDEM_RETURN_IF_ERROR(Plan(r));

  // 5. The writes.
  if (!item.source_exists) return ApplyGone(r);
  r.new_base_t = r.base_t ? *r.base_t : ColumnValues{};
  if (!r.target_exists && r.entry && r.base_s && (r.trow.has_value() == dm.target_row_shared)) {
    TANDEM_ASSIGN_OR_RETURN(go_on, TargetDeleted(r));
    if (!go_on) return Status::Ok();
  }
  if (!r.target_exists) {
    TANDEM_ASSIGN_OR_RETURN(bool done, Insert(r));
    if (done) return Status::Ok();
  } else {
    TANDEM_RETURN_IF_ERROR(Merge(r));
  }
  std::string tkey_enc = EncodeKey(r.tkey);
  TANDEM_RETURN_IF_ERROR(MoveKey(r, &tkey_enc));
  return Finish(r, tkey_enc);
}

Result<bool> ApplyBatch::FindTarget(RecordWork& r) {
  const WorkItem& item = r.item;
  const DirectionMapping& dm = r.dm;
  if (r.entry) {
    TANDEM_ASSIGN_OR_RETURN(r.tkey, DecodeKey(r.entry->key(r.T)));
    r.tkey_known = true;
  } else if (dm.target_row_shared) {
    if (!item.source_exists) return false;
    int idx = dm.shared_row_key.source_index;
    TANDEM_ASSIGN_OR_RETURN(Value parent_key, ResolveLookup(dm.shared_row_key, (*item.source_row)[idx]));
    r.tkey = {parent_key};
    r.tkey_known = true;
  } else if (dm.target_new_keys == NewKeys::kSame) {
    r.tkey = item.key;
    r.tkey_known = true;
  }
  if (r.tkey_known) {
    TANDEM_ASSIGN_OR_RETURN(r.trow, TargetRow(item.entity, r.tkey));
    ForgetTargetRow(item.entity, r.tkey);  // this record may write it now
  }
  r.target_exists = r.trow && (!dm.target_row_shared || AnyNonNull(*r.trow, r.tk));
  if (dm.target_row_shared && item.source_exists) {
    // A split record lives in its parent's row: one per row, and it cannot move.
    TANDEM_ASSIGN_OR_RETURN(Value parent_key, ResolveLookup(dm.shared_row_key,
                                                            (*item.source_row)[dm.shared_row_key.source_index]));
    if (r.entry && !Row{parent_key}.empty() && !(Row{parent_key} == r.tkey))
      return Status::Constraint(fmt::format("{} moved to another {} ({} -> {}); moving a split record is not "
                                            "supported: delete it and insert it again",
                                            r.em.name, dm.shared_row_key.lookup_entity, DisplayKey(r.tkey),
                                            parent_key.ToDisplay()));
    if (!r.entry && r.target_exists) {
      TANDEM_ASSIGN_OR_RETURN(auto owner, FindEntry(r.em.name, r.T, EncodeKey(r.tkey)));
      if (owner && !owner->gone && owner->key(r.S) != r.src_key)
        return Status::Constraint(fmt::format("the {} row {} already holds {} {}; it has room for one",
                                              SideName(r.T), DisplayKey(r.tkey), r.em.name, owner->key(r.S)));
    }
  }
  return true;
}

Status ApplyBatch::Plan(RecordWork& r) {
  const EntityMapping& em = r.em;
  RecordFacts facts = RecordFactsOf(r.dm, r.item.source_exists, r.item.source_row, r.entry.has_value(), r.base_s,
                                    r.base_t, r.trow, r.target_exists, r.mapped, ctx_.detect_conflicts);
  r.plan = PlanRecord(facts, em.on_delete, r.S, ctx_.primary);
  if (r.plan.action == RecordAction::kNeedsTargetOwner) {
    TANDEM_ASSIGN_OR_RETURN(auto owner, FindEntry(em.name, r.T, EncodeKey(r.tkey)));
    facts.target_row_owned = owner && !owner->gone;
    r.plan = PlanRecord(facts, em.on_delete, r.S, ctx_.primary);
  }
  if (r.plan.action != RecordAction::kMerge) LogPlan(r.item, r.plan);
  if (r.plan.conflict && r.plan.conflict->kind == ConflictKind::kInsertInsert) {
    // Keys shared (new_keys: same) and the key taken on the target by a row no
    // synced record owns, with other values: the same record inserted on both sides.
    RecordEntry pair;
    pair.entity = em.name;
    pair.lkey = r.S == Side::kLegacy ? r.src_key : EncodeKey(r.tkey);
    pair.mkey = r.S == Side::kLegacy ? EncodeKey(r.tkey) : r.src_key;
    const std::string what = "key " + DisplayKey(r.tkey);
    TANDEM_RETURN_IF_ERROR(RecordConflict(
        em, pair, RowConflict(*r.plan.conflict, Value::Text("inserted " + what), Value::Text("inserted " + what))));
    return Status::Conflict(fmt::format("inserted on both sides with the same {}: settle it with 'tandem conflicts "
                                        "resolve --take legacy|modern', which keeps one version",
                                        what));
  }
  return Status::Ok();
}

Status ApplyBatch::ApplyGone(RecordWork& r) {
  const RecordPlan& plan = r.plan;
  const DirectionMapping& dm = r.dm;
  Connector& dst = *d_.dst;
  if (plan.action == RecordAction::kNothing) return Status::Ok();
  if (r.target_exists) {
    // Delete here vs update there: settled by on_delete (default: the primary
    // side's action). When the update wins (kForget), the other direction
    // re-creates the record at the source.
    if (plan.conflict)
      TANDEM_RETURN_IF_ERROR(RecordConflict(r.em, r.next, RowConflict(*plan.conflict, Value::Text("deleted"),
                                                                      Value::Text("updated"))));
    if (plan.action == RecordAction::kHold)
      return Status::Conflict("deleted here while updated on the other side (on_delete: manual): settle it with "
                              "'tandem conflicts resolve'");
    if (plan.action == RecordAction::kDelete) {
      if (deferring() && !dm.target_row_shared) {
        writer_.Delete(Tag(r.item), r.item.entity, r.tkey);
      } else {
        TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
        TANDEM_RETURN_IF_ERROR(dm.target_row_shared ? ClearSharedColumns(dst, dm, r.tkey)
                                                    : dst.Exec(r.sql.delete_target, r.tkey));
      }
      r.applied.op = "delete";
    }
  }
  if (r.entry || r.tkey_known) {
    if (!r.entry) {
      r.next.lkey = r.S == Side::kLegacy ? r.src_key : EncodeKey(r.tkey);
      r.next.mkey = r.S == Side::kLegacy ? EncodeKey(r.tkey) : r.src_key;
    }
    r.next.gone = true;
    r.next.lbase.reset();
    r.next.mbase.reset();
    TANDEM_RETURN_IF_ERROR(PutEntry(&r.next));
  }
  if (!r.applied.op.empty()) Report(std::move(r.applied), r.item.key, r.tkey);
  return Status::Ok();
}

Result<bool> ApplyBatch::TargetDeleted(RecordWork& r) {
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  // Deleted on the target since the last sync (that delete is on its way
  // back; a split record's delete clears its columns of the shared row).
  // A change of a mapped source column against it is settled by on_delete.
  if (r.plan.conflict)
    TANDEM_RETURN_IF_ERROR(RecordConflict(r.em, r.next, RowConflict(*r.plan.conflict, Value::Text("updated"),
                                                                    Value::Text("deleted"))));
  if (r.plan.action == RecordAction::kHold)
    return Status::Conflict("updated here while deleted on the other side (on_delete: manual): settle it with "
                            "'tandem conflicts resolve'");
  // Unchanged, or the target's delete wins and flows back.
  if (r.plan.action != RecordAction::kRecreate) return false;
  r.entry.reset();  // the source's update wins: re-create the record
  r.base_s = nullptr;
  r.base_t = nullptr;
  if (!r.dm.target_row_shared) {  // a split record goes back into its parent's row
    r.tkey_known = r.dm.target_new_keys == NewKeys::kSame;
    if (r.tkey_known) r.tkey = r.item.key;
  }
  return true;
}

Result<bool> ApplyBatch::Insert(RecordWork& r) {
  const WorkItem& item = r.item;
  const DirectionMapping& dm = r.dm;
  Connector& dst = *d_.dst;
  TANDEM_RETURN_IF_ERROR(AnyProblem());  // a new record writes every field
  if (!r.tkey_known && dm.target_new_keys == NewKeys::kUuid && !dm.target_row_shared) {
    r.tkey.clear();
    for (size_t i = 0; i < r.tk; ++i) r.tkey.push_back(Value::Text(NewUuid()));
    r.tkey_known = true;
  }
  if (deferring() && r.tkey_known && !r.entry && !r.key_changed && !dm.target_row_shared) {
    // A new record: its insert and entry go later, with others (FlushPending).
    Row values;
    values.reserve(r.tk + r.mapped.size());
    values = r.tkey;
    values.insert(values.end(), r.mapped.begin(), r.mapped.end());
    const std::string tkey_enc = EncodeKey(r.tkey);
    r.next.lkey = r.S == Side::kLegacy ? r.src_key : tkey_enc;
    r.next.mkey = r.S == Side::kLegacy ? tkey_enc : r.src_key;
    r.next.gone = false;
    ColumnValues& base = r.next.base(r.S).emplace();
    base.reserve(dm.source_columns.size());
    for (size_t i = 0; i < dm.source_columns.size(); ++i) base[dm.source_columns[i]] = (*item.source_row)[i];
    claimed_lkeys_.insert(r.em.name + '\x1d' + r.next.lkey);
    CacheEntryKeys(r.next);
    writer_.Insert(Tag(item), item.entity, std::move(values), std::move(r.next));
    r.applied.op = "insert";
    Report(std::move(r.applied), item.key, r.tkey);
    return true;
  }
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (dm.target_row_shared) {
    if (!r.trow)
      return Status::NotFound(fmt::format("waiting for the {} row {} that {} shares", SideName(r.T),
                                          DisplayKey(r.tkey), r.em.name));
    std::vector<std::string> cols;
    for (size_t i = 0; i < dm.rules.size(); ++i) cols.push_back(dm.rules[i].target_column);
    Row params = r.mapped;
    params.insert(params.end(), r.tkey.begin(), r.tkey.end());
    TANDEM_RETURN_IF_ERROR(dst.Query("UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                                         JoinQuoted(dst, cols, ", ", " = ?") +
                                         WhereKey(dst, dm.target_key_columns) + r.sql.returning,
                                     params, &stored_));
  } else {
    Row params;
    TANDEM_RETURN_IF_ERROR(InsertNow(r, params));
  }
  const bool returned = !r.sql.returning.empty() && !stored_.empty() && stored_[0].size() == dm.rules.size();
  for (size_t i = 0; i < dm.rules.size(); ++i)
    r.new_base_t[dm.rules[i].target_column] = returned ? stored_[0][i] : r.mapped[i];
  r.applied.op = "insert";
  return false;
}

Status ApplyBatch::InsertNow(RecordWork& r, Row& params) {
  const DirectionMapping& dm = r.dm;
  const DirectionSql& sql = r.sql;
  Connector& dst = *d_.dst;
  params.reserve(r.tk + r.mapped.size());
  if (r.tkey_known) params = r.tkey;
  params.insert(params.end(), r.mapped.begin(), r.mapped.end());
  // Where a failed statement spoils the transaction (PostgreSQL), finding
  // out why an insert failed needs a savepoint around it; only records
  // already in a savepoint of their own get one (a batch without them is
  // re-run record by record after a failure anyway).
  const bool aborts = dst.Traits().failed_statement_aborts_transaction;
  const bool guard = aborts && in_record_savepoint_;
  if (guard) TANDEM_RETURN_IF_ERROR(dst.Savepoint("tandem_insert"));
  Status ins = Status::Ok();
  if (r.tkey_known) {
    ins = sql.returning.empty() ? dst.Exec(sql.insert_with_key, params)
                                : dst.Query(sql.insert_with_key + sql.returning, params, &stored_);
  } else if (sql.returning.empty()) {
    auto assigned = dst.InsertReturningKey(sql.insert_without_key, params, dm.target_key_columns[0]);
    if (assigned.ok()) r.tkey = {*assigned};
    else ins = assigned.status();
  } else {
    // The assigned key first, then the stored values.
    ins = dst.Query(sql.insert_without_key + " RETURNING " + dst.QuoteIdent(dm.target_key_columns[0]) + ", " +
                        sql.returning.substr(sizeof(" RETURNING ") - 1),
                    params, &stored_);
    if (ins.ok() && !stored_.empty()) {
      r.tkey = {stored_[0][0]};
      stored_[0].erase(stored_[0].begin());
    }
  }
  if (!ins.ok()) {
    if (guard) TANDEM_RETURN_IF_ERROR(dst.RollbackToSavepoint("tandem_insert"));
    else if (aborts) return ins;
    return InsertInsertConflictOr(r.em, r.item, /*with_key=*/r.tkey_known, params, ins);
  }
  if (guard) TANDEM_RETURN_IF_ERROR(dst.ReleaseSavepoint("tandem_insert"));
  return Status::Ok();
}

Status ApplyBatch::Merge(RecordWork& r) {
  // Three-way merge, column by column: what changed on each side since
  // the base, then each field changed on both sides settled by its policy
  // (MergeFields). The newest side is looked up only when a field needs it.
  const DirectionMapping& dm = r.dm;
  std::vector<std::string> set_cols;
  Row params;
  FieldFactsOf(dm, r.base_s, r.base_t, *r.item.source_row, r.mapped, *r.trow, problems_, &field_facts_);
  MergeSettings settings{.source = r.S, .primary = ctx_.primary, .detect_conflicts = ctx_.detect_conflicts,
                         .has_target_base = r.base_t != nullptr, .newest = std::nullopt};
  MergeFields(field_facts_, settings, &merge_);
  if (merge_.verdict == MergeVerdict::kNeedsNewest) {
    TANDEM_ASSIGN_OR_RETURN(settings.newest, NewestSide(r.em, r.item, r.tkey));
    MergeFields(field_facts_, settings, &merge_);
  }
  LogPlan(r.item, r.plan, field_facts_, &merge_);
  // A changed value that must not be written puts the change aside
  // before anything of this record is written.
  if (merge_.verdict == MergeVerdict::kReject) return Status::Constraint(problems_[merge_.rejected]);
  TANDEM_RETURN_IF_ERROR(RecordFieldConflicts(r));
  for (size_t i = 0; i < dm.rules.size(); ++i) {
    const ColumnRule& rule = dm.rules[i];
    const FieldDecision& d = merge_.fields[i];
    if (d.action == FieldAction::kTakeSource) {
      set_cols.push_back(rule.target_column);
      r.update_rules.push_back(static_cast<int>(i));
      params.push_back(r.mapped[i]);
    }
    if (d.new_base == FieldBase::kSource) r.new_base_t[rule.target_column] = r.mapped[i];
    else if (d.new_base == FieldBase::kTarget) r.new_base_t[rule.target_column] = (*r.trow)[r.tk + i];
  }
  return WriteUpdate(r, set_cols, params);
}

Status ApplyBatch::RecordFieldConflicts(RecordWork& r) {
  const DirectionMapping& dm = r.dm;
  std::string manual_fields;
  for (size_t i = 0; i < dm.rules.size(); ++i) {
    const FieldDecision& d = merge_.fields[i];
    if (!d.conflict) continue;
    const FieldFacts& f = field_facts_[i];
    TANDEM_RETURN_IF_ERROR(RecordConflict(r.em, r.next, {dm.rules[i].field, *f.source, *f.target,
                                                         f.base ? std::optional<Value>(*f.base) : std::nullopt,
                                                         d.winner, ConflictKind::kUpdateUpdate,
                                                         PolicyName(dm.rules[i].policy)}));
    if (!d.winner) manual_fields += (manual_fields.empty() ? "" : ", ") + dm.rules[i].field;
  }
  if (merge_.verdict == MergeVerdict::kHold) {
    // Neither version is applied: the record waits in the conflict queue.
    return Status::Conflict(fmt::format("{} changed on both sides (policy manual): settle it with 'tandem conflicts "
                                        "resolve'",
                                        manual_fields));
  }
  return Status::Ok();
}

Status ApplyBatch::WriteUpdate(RecordWork& r, std::vector<std::string>& set_cols, Row& params) {
  const DirectionMapping& dm = r.dm;
  Connector& dst = *d_.dst;
  if (!set_cols.empty() && deferring() && !r.key_changed) {
    r.update_values = std::move(params);  // sent by writer_ with the entry (Finish)
    r.applied.op = "update";
  } else if (!set_cols.empty()) {
    r.update_rules.clear();
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
    params.insert(params.end(), r.tkey.begin(), r.tkey.end());
    std::string update = "UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                         JoinQuoted(dst, set_cols, ", ", " = ?") + WhereKey(dst, dm.target_key_columns);
    if (r.sql.returning.empty()) {
      TANDEM_RETURN_IF_ERROR(dst.Exec(update, params));
    } else {
      // The written columns as stored become their base.
      TANDEM_RETURN_IF_ERROR(dst.Query(update + " RETURNING " + JoinQuoted(dst, set_cols, ", "), params, &stored_));
      if (!stored_.empty() && stored_[0].size() == set_cols.size())
        for (size_t c = 0; c < set_cols.size(); ++c) r.new_base_t[set_cols[c]] = stored_[0][c];
    }
    r.applied.op = "update";
  }
  return Status::Ok();
}

Status ApplyBatch::MoveKey(RecordWork& r, std::string* tkey_enc) {
  // Key change at the source: move the target key too when keys are shared,
  // and leave a gone entry for the old legacy key.
  if (!r.key_changed || !r.entry) return Status::Ok();
  const WorkItem& item = r.item;
  const DirectionMapping& dm = r.dm;
  Connector& dst = *d_.dst;
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (dm.target_new_keys == NewKeys::kSame && !dm.target_row_shared && item.key != item.old_key) {
    Row params = item.key;
    params.insert(params.end(), r.tkey.begin(), r.tkey.end());
    TANDEM_RETURN_IF_ERROR(dst.Exec("UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                                        JoinQuoted(dst, dm.target_key_columns, ", ", " = ?") +
                                        WhereKey(dst, dm.target_key_columns),
                                    params));
    r.tkey = item.key;
    *tkey_enc = r.src_key;
    r.applied.op = "update";
  }
  std::string old_lkey = r.S == Side::kLegacy ? EncodeKey(item.old_key) : r.entry->lkey;
  std::string new_lkey = r.S == Side::kLegacy ? r.src_key : *tkey_enc;
  if (old_lkey != new_lkey && !claimed_lkeys_.count(r.em.name + '\x1d' + old_lkey)) {
    RecordEntry tomb = *r.entry;
    tomb.gone = true;
    tomb.lbase.reset();
    tomb.mbase.reset();
    TANDEM_RETURN_IF_ERROR(PutEntry(&tomb));
  }
  return Status::Ok();
}

Status ApplyBatch::Finish(RecordWork& r, const std::string& tkey_enc) {
  const WorkItem& item = r.item;
  const DirectionMapping& dm = r.dm;
  RecordEntry& next = r.next;
  next.lkey = r.S == Side::kLegacy ? r.src_key : tkey_enc;
  next.mkey = r.S == Side::kLegacy ? tkey_enc : r.src_key;
  next.gone = false;
  // Merge the new bases over the old ones (other columns keep their base).
  ColumnValues merged_s = r.base_s ? *r.base_s : ColumnValues{};
  for (size_t i = 0; i < dm.source_columns.size(); ++i) merged_s[dm.source_columns[i]] = (*item.source_row)[i];
  bool unchanged = r.entry && !r.key_changed && r.applied.op.empty() && r.base_s && r.base_t &&
                   *r.base_s == merged_s && *r.base_t == r.new_base_t;
  if (!unchanged) {
    next.base(r.S) = std::move(merged_s);
    next.base(r.T) = std::move(r.new_base_t);
    if (!r.update_rules.empty()) {
      // The held-back update carries the entry: its target base gets what
      // the update stores. The caches and claims are kept as PutEntry does.
      claimed_lkeys_.insert(r.em.name + '\x1d' + next.lkey);
      CacheEntryKeys(next);
      writer_.Update(Tag(item), item.entity, r.tkey, std::move(r.update_rules), std::move(r.update_values),
                     std::move(next));
    } else {
      TANDEM_RETURN_IF_ERROR(PutEntry(&next));
    }
  }
  if (r.applied.op.empty()) {
    ctx_.stats[r.S == Side::kLegacy ? 0 : 1].records_unchanged++;
    return Status::Ok();
  }
  Report(std::move(r.applied), item.key, r.tkey);
  return Status::Ok();
}

}  // namespace tandem
