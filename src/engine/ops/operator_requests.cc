#include "engine/ops/operator_requests.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/apply/prefetch.h"
#include "mapping/exact_write.h"

namespace tandem {

namespace {

// Sets `columns` of one row in its own echo-suppressed transaction.
Status UpdateRowAlone(Connector& d, const DirectionMapping& into,
                      const std::vector<std::pair<std::string, Value>>& columns, const Row& key) {
  std::vector<std::string> names;
  Row params;
  for (auto& [c, v] : columns) {
    names.push_back(c);
    params.push_back(v);
  }
  params.insert(params.end(), key.begin(), key.end());
  TANDEM_RETURN_IF_ERROR(d.BeginApply());
  int64_t changed = 0;
  Status st = d.Exec("UPDATE " + d.QuoteIdent(into.target_table) + " SET " + JoinQuoted(d, names, ", ", " = ?") +
                         WhereKey(d, into.target_key_columns),
                     params, &changed);
  if (st.ok() && changed != 1)
    st = Status::NotFound(fmt::format("the {} row {} is gone (deleted or re-keyed since the conflict); settle it "
                                      "there first",
                                      into.target_table, DisplayKey(key)));
  if (st.ok()) return d.CommitApply();
  d.RollbackApply();
  return st;
}

}  // namespace

struct OperatorRequests::Resolution {
  const std::string& entity;
  const std::string& lkey;  // the record's keys as its conflict rows hold them
  const std::string& mkey;
  const std::string& text;  // the request, as stored (JSON)
  int ei = 0;
  const EntityMapping* em = nullptr;
  nlohmann::json request{};
  std::optional<Side> take{};
  std::set<std::string> fields{};  // the record's fields in conflict
  bool twins = false;              // insert-insert: two records become one
  bool whole_row = false;          // read-only-edit: one side's version of every field
  bool row_deleted = false;        // delete-update / update-delete: one side's action, for the whole record
  Row lk{}, mk{};                  // the record's keys now
  std::map<std::string, Side> winner_of{};                            // field -> the side whose value it takes
  std::map<Side, std::vector<std::pair<std::string, Value>>> sets{};  // side -> (column, value) of --set
  const Row& key_of(Side s) const { return s == Side::kLegacy ? lk : mk; }
};

Direction& OperatorRequests::From(Side source) {
  for (auto& d : directions_)
    if (d->source == source) return *d;
  return *directions_[0];
}

Result<int> OperatorRequests::ProcessResolutions() {
  int done = 0;
  for (Side stored : {Side::kLegacy, Side::kModern}) {
    std::vector<Row> requests;
    TANDEM_RETURN_IF_ERROR(db(stored).Query("SELECT id, entity, lkey, mkey, resolution FROM _tandem_conflicts WHERE "
                                            "status = 'resolving' ORDER BY id",
                                            {}, &requests));
    for (const Row& req : requests) {
      // An earlier request of this loop may have settled (or failed) the same record.
      TANDEM_ASSIGN_OR_RETURN(auto still, db(stored).QueryOne("SELECT 1 FROM _tandem_conflicts WHERE id = ? AND status "
                                                              "= 'resolving'",
                                                              {req[0]}));
      if (!still) continue;
      Status st = ResolveRecord(req[1].as_bytes(), req[2].as_bytes(), req[3].as_bytes(), req[4].as_bytes());
      // A database busy or gone: keep the request (each step is idempotent) and let the caller back off.
      if (st.retryable()) return st;
      if (!st.ok()) {
        // Back to open in both databases, with the reason, so the operator sees why.
        spdlog::warn("conflict {}:{} not resolved: {}", SideName(stored), req[0].as_integer(), st.message());
        for (Side s : {Side::kLegacy, Side::kModern})
          TANDEM_RETURN_IF_ERROR(db(s).Exec("UPDATE _tandem_conflicts SET status = 'open', resolution = ? WHERE status "
                                            "= 'resolving' AND entity = ? AND lkey = ? AND mkey = ?",
                                            {Value::Text("not resolved: " + st.message()), req[1], req[2], req[3]}));
        continue;
      }
      ++done;
    }
  }
  return done;
}

Status OperatorRequests::ResolveRecord(const std::string& entity, const std::string& lkey, const std::string& mkey,
                                       const std::string& resolution_text) {
  Resolution r{.entity = entity, .lkey = lkey, .mkey = mkey, .text = resolution_text};
  TANDEM_RETURN_IF_ERROR(ReadRequest(r));
  TANDEM_ASSIGN_OR_RETURN(bool any_open, ReadConflicts(r));
  if (!any_open) return Status::Ok();  // settled already (a request per field of one record)
  TANDEM_RETURN_IF_ERROR(CheckKinds(r));
  TANDEM_RETURN_IF_ERROR(FindKeysNow(r));
  TANDEM_RETURN_IF_ERROR(ChooseWinners(r));
  TANDEM_RETURN_IF_ERROR(CheckBeforeWriting(r));
  // 0. Both databases say the record is being resolved, with this request,
  // before anything is written: a crash from here on leaves the request in
  // both, and the next pass carries it out again (each write below sets the
  // chosen values, so doing it twice gives the same rows).
  for (Side s : {Side::kLegacy, Side::kModern})
    TANDEM_RETURN_IF_ERROR(db(s).Exec("UPDATE _tandem_conflicts SET status = 'resolving', resolution = ? WHERE status "
                                      "IN ('open', 'resolving') AND entity = ? AND lkey = ? AND mkey = ?",
                                      {Value::Text(resolution_text), Value::Text(entity), Value::Text(lkey),
                                       Value::Text(mkey)}));
  // 1. Hand-merged values onto their side.
  for (auto& [side, cols] : r.sets)
    TANDEM_RETURN_IF_ERROR(UpdateRowAlone(db(side), r.em->from(Other(side)), cols, r.key_of(side)));
  // 2. Each winning side's values, mapped, onto the other side.
  TANDEM_RETURN_IF_ERROR(WriteWinningValues(r));
  if (r.row_deleted) TANDEM_RETURN_IF_ERROR(SettleDeletedRow(r));
  if (r.twins) TANDEM_RETURN_IF_ERROR(LinkTwins(r));
  // 3. Settled.
  return MarkResolved(r);
}

Status OperatorRequests::ReadRequest(Resolution& r) {
  auto ei_it = ctx_.mapping.index_by_name.find(r.entity);
  if (ei_it == ctx_.mapping.index_by_name.end())
    return Status::InvalidArgument(fmt::format("entity '{}' is no longer in the config", r.entity));
  r.ei = ei_it->second;
  r.em = &ctx_.mapping.entities[r.ei];
  r.request = nlohmann::json::parse(r.text, nullptr, false);
  if (r.request.is_discarded() || !r.request.is_object())
    return Status::InvalidArgument("unreadable resolution '" + r.text + "'");
  if (r.request.contains("take")) r.take = r.request["take"] == "legacy" ? Side::kLegacy : Side::kModern;
  return Status::Ok();
}

Result<bool> OperatorRequests::ReadConflicts(Resolution& r) {
  bool any_open = false;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    std::vector<Row> rows;
    TANDEM_RETURN_IF_ERROR(db(s).Query("SELECT field, kind FROM _tandem_conflicts WHERE status IN ('open', "
                                       "'resolving') AND entity = ? AND lkey = ? AND mkey = ?",
                                       {Value::Text(r.entity), Value::Text(r.lkey), Value::Text(r.mkey)}, &rows));
    any_open |= !rows.empty();
    for (auto& row : rows) {
      const std::optional<ConflictKind> kind = ConflictKindFromName(row[1].as_bytes());
      if (kind == ConflictKind::kInsertInsert) r.twins = true;
      else if (kind == ConflictKind::kReadOnlyEdit) r.whole_row = true;
      else if (kind == ConflictKind::kDeleteUpdate || kind == ConflictKind::kUpdateDelete) r.row_deleted = true;
      else r.fields.insert(row[0].as_bytes());
    }
  }
  return any_open;
}

Status OperatorRequests::CheckKinds(Resolution& r) {
  const EntityMapping& em = *r.em;
  if (r.whole_row && (r.lkey.empty() || r.mkey.empty()))
    return Status::InvalidArgument("a record created or deleted on the read-only side cannot be taken over: delete "
                                   "or re-create it there, then discard the put-aside change");
  if (r.whole_row && !r.take) return Status::InvalidArgument("an edit of a read-only side is settled with --take");
  if (r.whole_row)
    for (const DirectionMapping* d : {&em.to_modern, &em.to_legacy})
      for (auto& rule : d->rules) r.fields.insert(rule.field);
  if (r.twins) {
    if (!r.take || r.request.contains("set"))
      return Status::InvalidArgument("a record inserted on both sides is settled with --take legacy|modern (the "
                                     "other side's row takes that version and the two become one record)");
    for (const DirectionMapping* d : {&em.to_modern, &em.to_legacy})
      for (auto& rule : d->rules) r.fields.insert(rule.field);
  }
  return Status::Ok();
}

Status OperatorRequests::FindKeysNow(Resolution& r) {
  // The record's keys now: a key changed while the record was held moved its
  // put-aside change to the new key (which remembers the old one).
  TANDEM_ASSIGN_OR_RETURN(r.lk, DecodeKey(r.lkey));
  TANDEM_ASSIGN_OR_RETURN(r.mk, DecodeKey(r.mkey));
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const std::string& held = s == Side::kLegacy ? r.lkey : r.mkey;
    if (held.empty()) continue;
    TANDEM_ASSIGN_OR_RETURN(auto moved, db(Other(s)).QueryOne("SELECT source_key FROM _tandem_parked WHERE direction = ? "
                                                              "AND entity = ? AND old_key = ?",
                                                              {Value::Text(From(s).name), Value::Text(r.entity),
                                                               Value::Text(held)}));
    if (moved) {
      Row& now = s == Side::kLegacy ? r.lk : r.mk;
      TANDEM_ASSIGN_OR_RETURN(now, DecodeKey((*moved)[0].as_bytes()));
    }
  }
  return Status::Ok();
}

Status OperatorRequests::ChooseWinners(Resolution& r) {
  const EntityMapping& em = *r.em;
  if (r.request.contains("set")) {
    for (auto& [field, value] : r.request["set"].items()) {
      std::optional<Side> side;
      const ColumnRule* rule = nullptr;
      for (Side source : {Side::kModern, Side::kLegacy}) {
        // A field written on side X by the rules of the other direction is a
        // column of X; `fields:` names are modern columns, so modern first.
        for (auto& cr : em.from(Other(source)).rules)
          if (cr.field == field && !side) {
            side = source;
            rule = &cr;
          }
      }
      if (!side) return Status::InvalidArgument(fmt::format("entity '{}' has no field '{}'", r.entity, field));
      // Refused before anything is written when the column cannot hold it.
      auto stored = value.is_null() ? Result<Value>(Value::Null()) : StoreTypedValue(rule->target_type, value.get<std::string>());
      if (!stored.ok())
        return Status::InvalidArgument(fmt::format("--set {}: the {} column {} cannot hold {}: {}", field,
                                                   SideName(*side), rule->target_column, value.dump(),
                                                   stored.status().message()));
      r.sets[*side].emplace_back(rule->target_column, std::move(stored).value());
      r.winner_of[field] = *side;
    }
  }
  for (auto& f : r.fields) {
    if (r.winner_of.count(f)) continue;
    if (!r.take)
      return Status::InvalidArgument(fmt::format("field '{}' is in conflict too: give --take legacy|modern or --set "
                                                 "{}=VALUE",
                                                 f, f));
    r.winner_of[f] = *r.take;
  }
  return Status::Ok();
}

Status OperatorRequests::CheckBeforeWriting(Resolution& r) {
  if (r.row_deleted && (!r.take || r.request.contains("set")))
    return Status::InvalidArgument("a record deleted on one side and updated on the other is settled with --take "
                                   "legacy|modern");
  if (r.twins) {
    for (Side s : {Side::kLegacy, Side::kModern}) {
      TANDEM_ASSIGN_OR_RETURN(auto mapped, ctx_.records.Find(r.entity, s, s == Side::kLegacy ? r.lkey : r.mkey));
      if (mapped && !mapped->gone)
        return Status::InvalidArgument(fmt::format(
            "the {} row {} is already synced as another record (its twin reached the other side first, e.g. where no "
            "unique constraint stopped it); delete the duplicate there, then discard the put-aside change",
            SideName(s), DisplayKey(r.key_of(s))));
    }
  }
  return Status::Ok();
}

Status OperatorRequests::WriteWinningValues(Resolution& r) {
  const EntityMapping& em = *r.em;
  for (Side w : {Side::kLegacy, Side::kModern}) {
    const DirectionMapping& dm = em.from(w);
    std::vector<size_t> rules;
    for (size_t i = 0; i < dm.rules.size(); ++i) {
      // The rule of the field itself, or one computed from it (a field that
      // only the other direction has, e.g. first_name -> CNAME).
      bool wins = false;
      auto it = r.winner_of.find(dm.rules[i].field);
      if (it != r.winner_of.end()) wins = it->second == w;
      for (int dep : dm.rules[i].deps) {
        auto d = r.winner_of.find(dm.source_columns[dep]);
        if (d != r.winner_of.end() && d->second == w) wins = true;
      }
      if (wins) rules.push_back(i);
    }
    if (rules.empty()) continue;
    Direction& dir = From(w);
    std::unordered_map<std::string, Row> found;
    TANDEM_RETURN_IF_ERROR(SelectByKeys(*dir.src, dir.sql[r.ei].select_source_many, dm.source_key_count,
                                        {r.key_of(w)}, &found));
    if (found.empty())
      return Status::NotFound(fmt::format("the {} row {} is gone; it cannot win", SideName(w),
                                          DisplayKey(r.key_of(w))));
    ApplyBatch batch(ctx_, dir, false);
    Row mapped;
    TANDEM_RETURN_IF_ERROR(batch.MapSourceRow(r.ei, found.begin()->second, &mapped, rules));
    std::vector<std::pair<std::string, Value>> cols;
    for (size_t i : rules) cols.emplace_back(dm.rules[i].target_column, mapped[i]);
    TANDEM_RETURN_IF_ERROR(UpdateRowAlone(*dir.dst, dm, cols, r.key_of(Other(w))));
  }
  return Status::Ok();
}

Status OperatorRequests::SettleDeletedRow(Resolution& r) {
  // Deleted on one side, updated on the other: the winner's action for the
  // whole record. An update that wins: the key map forgets the pair, so the
  // held update re-creates the record. A delete that wins: the other row goes.
  const EntityMapping& em = *r.em;
  bool exists[2];
  for (Side s : {Side::kLegacy, Side::kModern}) {
    Direction& into = From(Other(s));  // its target side is s
    TANDEM_ASSIGN_OR_RETURN(auto row, into.dst->QueryOne(into.sql[r.ei].select_target, r.key_of(s)));
    const DirectionMapping& dm = em.from(Other(s));
    exists[s == Side::kLegacy ? 0 : 1] =
        row.has_value() && (!dm.target_row_shared || AnyNonNull(*row, dm.target_key_columns.size()));
  }
  const Side w = *r.take, o = Other(*r.take);
  const bool w_exists = exists[w == Side::kLegacy ? 0 : 1], o_exists = exists[o == Side::kLegacy ? 0 : 1];
  if (w_exists == o_exists) return Status::Ok();
  Connector& d = db(o);
  RecordEntry gone;
  gone.entity = r.entity;
  gone.lkey = r.lkey;
  gone.mkey = r.mkey;
  gone.gone = true;
  TANDEM_RETURN_IF_ERROR(d.BeginApply());
  Status st = Status::Ok();
  if (!w_exists) {  // the delete wins: delete the other side's row too (a split record: clear its columns)
    const DirectionMapping& into_o = em.from(w);
    if (into_o.target_row_shared) {
      st = ClearSharedColumns(d, into_o, r.key_of(o));
    } else {
      st = d.Exec(From(w).sql[r.ei].delete_target, r.key_of(o));
    }
  }
  if (st.ok()) st = ctx_.records.Put(o, &gone);
  if (st.ok()) st = d.CommitApply();
  else d.RollbackApply();
  return st;
}

Status OperatorRequests::LinkTwins(Resolution& r) {
  // Twins: link the two rows as one record (bases come with the retries,
  // which find both rows equal).
  Connector& d = db(Other(*r.take));
  RecordEntry link;
  link.entity = r.entity;
  link.lkey = r.lkey;
  link.mkey = r.mkey;
  TANDEM_RETURN_IF_ERROR(d.BeginApply());
  Status st = ctx_.records.Put(Other(*r.take), &link);
  if (st.ok()) st = d.CommitApply();
  else d.RollbackApply();
  return st;
}

Status OperatorRequests::MarkResolved(Resolution& r) {
  // The conflict rows, the audit trail, and the held changes are retried.
  std::string winners;
  for (auto& [f, side] : r.winner_of)
    winners += fmt::format("{}{}={}{}", winners.empty() ? "" : ", ", f, SideName(side),
                           r.sets.count(side) && r.request.contains("set") && r.request["set"].contains(f) ? " (set)"
                                                                                                            : "");
  int64_t now = Clock::Default()->NowMillis();
  for (Side s : {Side::kLegacy, Side::kModern}) {
    Connector& d = db(s);
    TANDEM_RETURN_IF_ERROR(d.BeginApply());
    Status st = d.Exec("UPDATE _tandem_conflicts SET status = 'resolved', settled_at_ms = ?, resolution = ?, winner = "
                       "? WHERE status IN ('open', 'resolving') AND entity = ? AND lkey = ? AND mkey = ?",
                       {Value::Integer(now), Value::Text(winners),
                        Value::Text(r.take ? SideName(*r.take) : "hand-merged"), Value::Text(r.entity),
                        Value::Text(r.lkey), Value::Text(r.mkey)});
    if (st.ok())
      st = d.Exec("UPDATE _tandem_parked SET retry_requested = 1 WHERE kind = 'conflict' AND entity = ? AND "
                  "(source_key = ? OR old_key = ?)",
                  {Value::Text(r.entity), Value::Text(s == Side::kModern ? r.lkey : r.mkey),
                   Value::Text(s == Side::kModern ? r.lkey : r.mkey)});
    if (st.ok() && s == Side::kModern)
      st = d.Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'resolve', ?)",
                  {Value::Integer(now), Value::Text(fmt::format("{} legacy {} / modern {}: {}", r.entity,
                                                                DisplayKey(r.lk), DisplayKey(r.mk), winners))});
    if (st.ok()) st = d.CommitApply();
    else d.RollbackApply();
    TANDEM_RETURN_IF_ERROR(st);
  }
  spdlog::info("conflict resolved: {} legacy {} / modern {}: {}", r.entity, DisplayKey(r.lk), DisplayKey(r.mk),
               winners);
  return Status::Ok();
}

Status OperatorRequests::RetryParked(Side stored_in, int64_t id) {
  Direction* dir = nullptr;
  for (auto& d : directions_)
    if (d->target == stored_in) dir = d.get();
  TANDEM_ASSIGN_OR_RETURN(auto row, dir->dst->QueryOne("SELECT entity, source_key, last_seq, old_key FROM _tandem_parked WHERE "
                                                       "id = ? AND direction = ?",
                                                       {Value::Integer(id), Value::Text(dir->name)}));
  if (!row) return Status::NotFound(fmt::format("no put-aside change {} on the {} side", id, SideName(stored_in)));
  auto it = ctx_.mapping.index_by_name.find((*row)[0].as_bytes());
  if (it == ctx_.mapping.index_by_name.end())
    return Status::InvalidArgument(fmt::format("entity '{}' is no longer in the config", (*row)[0].as_bytes()));
  TANDEM_RETURN_IF_ERROR(dir->src->BeginRead());
  Status st = dir->dst->BeginApply();
  if (!st.ok()) {
    dir->src->EndRead();
    return st;
  }
  ApplyBatch batch(ctx_, *dir, /*careful=*/true);
  WorkItem item;
  item.entity = it->second;
  auto key = DecodeKey((*row)[1].as_bytes());
  if (!key.ok()) {
    dir->dst->RollbackApply();
    dir->src->EndRead();
    return key.status();
  }
  item.key = *key;
  item.seq = (*row)[2].as_integer();
  if (!(*row)[3].is_null()) {
    auto old_key = DecodeKey((*row)[3].as_bytes());
    if (old_key.ok()) item.old_key = std::move(old_key).value();
  }
  std::vector<WorkItem> one{item};
  st = batch.Prefetch(one);
  if (st.ok()) st = dir->dst->Exec("DELETE FROM _tandem_parked WHERE id = ?", {Value::Integer(id)});
  dir->parked.erase(ParkedKey((*row)[0].as_bytes(), (*row)[1].as_bytes()));
  if (st.ok()) st = batch.ApplyOrPark(one[0]);
  bool still_parked = dir->parked.count(ParkedKey((*row)[0].as_bytes(), (*row)[1].as_bytes())) > 0;
  if (st.ok())
    st = dir->dst->Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'retry', ?)",
                        {Value::Integer(Clock::Default()->NowMillis()),
                         Value::Text(fmt::format("{} {} {}: {}", dir->name, (*row)[0].as_bytes(),
                                                 DisplayKey(item.key), still_parked ? "still put aside" : "applied"))});
  if (st.ok()) st = dir->dst->CommitApply();
  if (!st.ok()) dir->dst->RollbackApply();
  dir->src->EndRead();
  TANDEM_RETURN_IF_ERROR(st);
  if (still_parked) {
    TANDEM_ASSIGN_OR_RETURN(auto again, dir->dst->QueryOne("SELECT reason FROM _tandem_parked WHERE direction = ? AND "
                                                           "entity = ? AND source_key = ?",
                                                           {Value::Text(dir->name), (*row)[0], (*row)[1]}));
    return Status::Constraint(again ? (*again)[0].as_bytes() : "still put aside");
  }
  return Status::Ok();
}

Result<int> OperatorRequests::RetryAllParked() {
  int applied = 0;
  for (auto& d : directions_) {
    std::vector<Row> ids;
    TANDEM_RETURN_IF_ERROR(d->dst->Query("SELECT id FROM _tandem_parked WHERE direction = ? ORDER BY id",
                                         {Value::Text(d->name)}, &ids));
    for (auto& r : ids) {
      Status st = RetryParked(d->target, r[0].as_integer());
      if (st.ok()) ++applied;
      else if (st.code() != StatusCode::kConstraint && st.code() != StatusCode::kNotFound) return st;
    }
  }
  return applied;
}

Status RetryWaiting(const CompiledMapping& mapping, Direction& dir, ApplyBatch& batch) {
  // Bounded per batch so that many orphans cannot make write transactions long;
  // the least recently tried go first.
  constexpr int kMaxRetriesPerBatch = 256;
  std::vector<Row> rows;
  // A paused entity's changes wait for it to resume, not for a retry.
  std::string not_paused;
  Row params{Value::Text(dir.name)};
  for (const EntityMapping& em : mapping.entities) {
    if (em.paused.empty()) continue;
    not_paused += " AND entity <> ?";
    params.push_back(Value::Text(em.name));
  }
  params.push_back(Value::Integer(kMaxRetriesPerBatch));
  TANDEM_RETURN_IF_ERROR(dir.dst->Query(
      "SELECT id, entity, source_key, last_seq, old_key FROM _tandem_parked WHERE direction = ? AND (kind = 'waiting' OR "
      "retry_requested <> 0)" + not_paused + " ORDER BY retry_requested DESC, parked_at_ms, id LIMIT ?",
      params, &rows));
  dir.has_waiting = rows.size() == static_cast<size_t>(kMaxRetriesPerBatch);  // more remain: keep going
  std::vector<std::pair<int, Row*>> ordered;  // parents first
  for (auto& r : rows) {
    auto it = mapping.index_by_name.find(r[1].as_bytes());
    if (it != mapping.index_by_name.end()) ordered.emplace_back(it->second, &r);
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<WorkItem> items;
  std::vector<int64_t> ids;
  for (auto& [entity, row] : ordered) {
    auto key = DecodeKey((*row)[2].as_bytes());
    if (!key.ok()) continue;
    WorkItem item;
    item.entity = entity;
    item.key = std::move(key).value();
    item.seq = (*row)[3].as_integer();
    if (!(*row)[4].is_null()) {
      auto old_key = DecodeKey((*row)[4].as_bytes());
      if (old_key.ok()) item.old_key = std::move(old_key).value();
    }
    items.push_back(std::move(item));
    ids.push_back((*row)[0].as_integer());
  }
  TANDEM_RETURN_IF_ERROR(batch.Prefetch(items));
  for (size_t i = 0; i < items.size(); ++i) {
    TANDEM_ASSIGN_OR_RETURN(bool applied, batch.Retry(items[i]));
    if (applied) TANDEM_RETURN_IF_ERROR(dir.dst->Exec("DELETE FROM _tandem_parked WHERE id = ?", {Value::Integer(ids[i])}));
  }
  return Status::Ok();
}

}  // namespace tandem
