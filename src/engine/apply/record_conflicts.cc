// ApplyBatch: conflicts. Recording them in _tandem_conflicts (the target's),
// the insert-insert case a unique violation reveals, the newest side for the
// `newest` policy, and edits on the read-only side of a one-way entity.
#include <strings.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/apply/apply_batch.h"

namespace tandem {

void ApplyBatch::LogPlan(const WorkItem& item, const RecordPlan& plan, std::span<const FieldFacts> fields,
                         const FieldMerge* merge) const {
  if (!spdlog::should_log(spdlog::level::debug)) return;
  spdlog::debug("{} plan: {}", d_.name,
                DescribePlan(plan, ctx_.mapping.entities[item.entity].name, DisplayKey(item.key), d_.source, fields,
                             merge));
}

Status ApplyBatch::RecordConflict(const EntityMapping& em, const RecordEntry& entry, const Conflict& c) {
  const Value& lv = d_.source == Side::kLegacy ? c.source_value : c.target_value;
  const Value& mv = d_.source == Side::kLegacy ? c.target_value : c.source_value;
  const std::string& key = entry.lkey.empty() ? entry.mkey : entry.lkey;
  int64_t now = Clock::Default()->NowMillis();
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (!c.request.empty()) {
    if (ctx_.request_operator_check) ctx_.request_operator_check();  // carried out by the next pass
    spdlog::warn("conflict: {} {} {} on the read-only {} side; {}", em.name, key, c.field, SideName(d_.source),
                 c.policy);
  } else if (!c.winner) {
    // Open (manual): one row per record and field, however often and from
    // whichever direction it is seen.
    for (Side db : {Side::kLegacy, Side::kModern}) {
      TANDEM_ASSIGN_OR_RETURN(auto open, ctx_.db(db).QueryOne("SELECT id FROM _tandem_conflicts WHERE status = 'open' "
                                                            "AND entity = ? AND lkey = ? AND mkey = ? AND field = ?",
                                                            {Value::Text(em.name), Value::Text(entry.lkey),
                                                             Value::Text(entry.mkey), Value::Text(c.field)}));
      if (open) return Status::Ok();
    }
    spdlog::warn("conflict: {} {} field '{}' changed on both sides (legacy {}, modern {}); policy {}: waiting for "
                 "'tandem conflicts resolve'",
                 em.name, key, c.field, lv.ToDisplay(), mv.ToDisplay(), c.policy);
  } else {
    spdlog::info("conflict: {} {} field '{}' changed on both sides (legacy {}, modern {}); {} wins ({})", em.name, key,
                 c.field, lv.ToDisplay(), mv.ToDisplay(), SideName(*c.winner), c.policy);
  }
  ++conflicts_;  // counted in the direction's stats when the batch commits
  return d_.dst->Exec(
      "INSERT INTO _tandem_conflicts(at_ms, direction, entity, lkey, mkey, field, legacy_value, modern_value, winner, "
      "kind, policy, base_value, status, settled_at_ms, resolution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?)",
      {Value::Integer(now), Value::Text(d_.name), Value::Text(em.name), Value::Text(entry.lkey),
       Value::Text(entry.mkey), Value::Text(c.field), Value::Text(lv.ToDisplay()), Value::Text(mv.ToDisplay()),
       Value::Text(c.winner ? SideName(*c.winner) : ""), Value::Text(ConflictKindName(c.kind)), Value::Text(c.policy),
       c.base ? Value::Text(c.base->ToDisplay()) : Value::Null(),
       Value::Text(!c.request.empty() ? "resolving" : c.winner ? "settled" : "open"),
       c.winner && c.request.empty() ? Value::Integer(now) : Value::Null(),
       c.request.empty() ? Value::Null() : Value::Text(c.request)});
}

Status ApplyBatch::InsertInsertConflictOr(const EntityMapping& em, const WorkItem& item, bool with_key,
                                                 const Row& values, const Status& failed) {
  Connector& dst = *d_.dst;
  const DirectionMapping& dm = em.from(d_.source);
  std::vector<std::string> unique = dst.UniqueViolationColumns(failed);
  if (unique.empty()) return failed;
  std::vector<std::string> cols;
  if (with_key) cols = dm.target_key_columns;
  for (auto& r : dm.rules) cols.push_back(r.target_column);
  // The target row holding the same unique values.
  std::string sql = "SELECT " + JoinQuoted(dst, dm.target_key_columns, ", ") + " FROM " +
                    dst.QuoteIdent(dm.target_table) + " WHERE ";
  Row params;
  for (size_t u = 0; u < unique.size(); ++u) {
    auto it = std::find_if(cols.begin(), cols.end(),
                           [&](const std::string& c) { return strcasecmp(c.c_str(), unique[u].c_str()) == 0; });
    if (it == cols.end()) return failed;
    sql += (u ? " AND " : "") + dst.QuoteIdent(unique[u]) + " = ?";
    params.push_back(values[it - cols.begin()]);
  }
  TANDEM_ASSIGN_OR_RETURN(auto holder, dst.QueryOne(sql, params));
  if (!holder) return failed;
  const std::string theirs = EncodeKey(*holder);
  TANDEM_ASSIGN_OR_RETURN(auto owner, FindEntry(em.name, d_.target, theirs));
  if (owner && !owner->gone) return failed;  // a synced record holds it: a plain rejection
  RecordEntry pair;
  pair.entity = em.name;
  pair.lkey = d_.source == Side::kLegacy ? EncodeKey(item.key) : theirs;
  pair.mkey = d_.source == Side::kLegacy ? theirs : EncodeKey(item.key);
  std::string what = fmt::format("{} = {}", fmt::join(unique, ", "), DisplayKey(params));
  TANDEM_RETURN_IF_ERROR(RecordConflict(em, pair, {"(row)", Value::Text("inserted " + what),
                                                   Value::Text("inserted " + what), std::nullopt, std::nullopt,
                                                   ConflictKind::kInsertInsert, "manual"}));
  return Status::Conflict(fmt::format("inserted on both sides with the same {} (the {} row {}): settle it with "
                                      "'tandem conflicts resolve --take legacy|modern', which keeps one record",
                                      what, SideName(d_.target), DisplayKey(*holder)));
}

Result<Side> ApplyBatch::NewestSide(const EntityMapping& em, const WorkItem& item, const Row& tkey) {
  const Side S = d_.source, T = d_.target;
  const DirectionMapping& dm = em.from(S);
  Value ts_s, ts_t;
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  auto one = [](Connector& db, const std::string& sql, const Row& params) -> Result<Value> {
    TANDEM_ASSIGN_OR_RETURN(auto row, db.QueryOne(sql, params));
    return row ? (*row)[0] : Value::Null();
  };
  if (!em.newest_column(S).empty() && !em.newest_column(T).empty()) {
    // The rows' own timestamps (the source read in the batch's snapshot).
    auto select = [](Connector& db, const std::string& column, const std::string& table,
                     const std::vector<std::string>& key) {
      return "SELECT " + db.QuoteIdent(column) + " FROM " + db.QuoteIdent(table) + WhereKey(db, key);
    };
    std::vector<std::string> source_key(dm.source_columns.begin(), dm.source_columns.begin() + dm.source_key_count);
    TANDEM_ASSIGN_OR_RETURN(ts_s, one(*d_.src, select(*d_.src, em.newest_column(S), dm.source_table, source_key),
                                      item.key));
    TANDEM_ASSIGN_OR_RETURN(ts_t, one(*d_.dst, select(*d_.dst, em.newest_column(T), dm.target_table,
                                                      dm.target_key_columns),
                                      tkey));
  } else {
    // Capture times: the newest captured change of the row on each side
    // (a retried change carries no capture time of its own).
    auto newest_capture = [](Connector& db, const std::string& table, const Row& key) {
      return db.NewestCaptureMillis(table, key);
    };
    if (item.captured_at_ms > 0) {
      ts_s = Value::Integer(item.captured_at_ms);
    } else {
      TANDEM_ASSIGN_OR_RETURN(ts_s, newest_capture(*d_.src, dm.source_table, item.key));
    }
    TANDEM_ASSIGN_OR_RETURN(ts_t, newest_capture(*d_.dst, dm.target_table, tkey));
  }
  return NewerSide(ts_s, ts_t, S, ctx_.primary);
}

Status ApplyBatch::ReadOnlyEdit(const WorkItem& item) {
  const EntityMapping& em = ctx_.mapping.entities[item.entity];
  const DirectionMapping& dm = em.from(d_.source);
  const Side owner = d_.target;
  std::optional<RecordEntry> entry = item.entry_before;
  if (entry && entry->gone) entry.reset();
  RecordEntry pair;
  pair.entity = em.name;
  if (entry) pair = *entry;
  else if (d_.source == Side::kLegacy) pair.lkey = EncodeKey(item.key);
  else pair.mkey = EncodeKey(item.key);
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  ReadOnlyEditFacts facts;
  facts.known = entry.has_value();
  facts.source_exists = item.source_exists;
  std::string fields;
  if (facts.known && facts.source_exists) {
    // An update: the mapped columns that differ from the version both sides
    // last agreed on (its base on this side). Without a base, compare through
    // the mapping with the owner's row.
    TANDEM_ASSIGN_OR_RETURN(Row tkey, DecodeKey(entry->key(owner)));
    TANDEM_ASSIGN_OR_RETURN(auto trow, TargetRow(item.entity, tkey));
    facts.target_exists = trow.has_value();  // else the owner deleted it; that delete is on its way
    const auto& base = entry->base(d_.source);
    if (trow && base) {
      for (size_t i = dm.source_key_count; i < dm.source_columns.size(); ++i) {
        auto it = base->find(dm.source_columns[i]);
        if (it != base->end() && !SameValue(dm.source_types[i], it->second, (*item.source_row)[i]))
          fields += (fields.empty() ? "" : ", ") + dm.source_columns[i];
      }
    } else if (trow) {
      Row mapped;
      TANDEM_RETURN_IF_ERROR(MapRow(em, *item.source_row, &mapped));
      const size_t tk = dm.target_key_columns.size();
      for (size_t i = 0; i < dm.rules.size(); ++i)
        if (!SameValue(dm.rules[i].target_type, mapped[i], (*trow)[tk + i]))
          fields += (fields.empty() ? "" : ", ") + dm.rules[i].field;
    }
    facts.edited = !fields.empty();
  }
  const RecordPlan plan = PlanReadOnlyEdit(facts, em.read_only_edits, owner);
  LogPlan(item, plan);
  if (plan.action == RecordAction::kNothing) return Status::Ok();
  if (!facts.known || !facts.source_exists) {
    // A record created or deleted on the read-only side: put aside for a person.
    const char* what = item.source_exists ? "inserted" : "deleted";
    TANDEM_RETURN_IF_ERROR(RecordConflict(em, pair, RowConflict(*plan.conflict, Value::Text(what), Value::Null())));
    return Status::Conflict(fmt::format("{} is synced {} only: a record {} on the {} side is put aside", em.name,
                                        DirectionName(owner), item.source_exists ? "created" : "deleted",
                                        SideName(d_.source)));
  }
  Conflict edit = RowConflict(*plan.conflict, Value::Text("edited"), Value::Null());
  edit.field += " " + fields;
  if (plan.action == RecordAction::kRevert) {
    // Carried out by the next pass (ProcessResolutions): the owner's values
    // are written back over the edit.
    nlohmann::json request = {{"take", SideName(owner)}};
    edit.request = request.dump();
    return RecordConflict(em, pair, edit);
  }
  TANDEM_RETURN_IF_ERROR(RecordConflict(em, pair, edit));
  return Status::Conflict(fmt::format("{} is synced {} only: an edit of {} on the {} side is put aside", em.name,
                                      DirectionName(owner), fields, SideName(d_.source)));
}

}  // namespace tandem
