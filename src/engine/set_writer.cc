#include "engine/set_writer.h"

#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "core/key_codec.h"

namespace tandem {

void SetWriter::Insert(size_t tag, int entity, Row values, RecordEntry next) {
  ops_.push_back({Kind::kInsert, entity, inserts_.size(), tag});
  inserts_.push_back({std::move(values), std::move(next)});
}

void SetWriter::Update(size_t tag, int entity, Row target_key, std::vector<int> rules, Row values,
                       RecordEntry next) {
  ops_.push_back({Kind::kUpdate, entity, updates_.size(), tag});
  target_key.insert(target_key.end(), values.begin(), values.end());
  updates_.push_back({std::move(target_key), std::move(rules), std::move(next)});
}

void SetWriter::Delete(size_t tag, int entity, Row target_key) {
  ops_.push_back({Kind::kDelete, entity, deletes_.size(), tag});
  deletes_.push_back(std::move(target_key));
}

void SetWriter::Discard() {
  ops_.clear();
  inserts_.clear();
  updates_.clear();
  deletes_.clear();
  entries_.clear();
}

Status SetWriter::Flush() {
  TANDEM_RETURN_IF_ERROR(FlushRows());
  if (entries_.empty()) return Status::Ok();
  Status st = records_.PutMany(target_, &entries_);
  entries_.clear();
  return st;
}

Status SetWriter::FlushRows() {
  if (ops_.empty()) return Status::Ok();
  Status st = Status::Ok();
  if (!find_rejected_) {
    st = SendOps(0, ops_.size(), /*complete=*/true);
  } else {
    st = db_.Savepoint("tandem_set");
    if (st.ok()) st = SendOps(0, ops_.size(), /*complete=*/true);
    if (st.ok()) {
      st = db_.ReleaseSavepoint("tandem_set");
    } else if (st.code() == StatusCode::kConstraint) {
      Status undone = db_.RollbackToSavepoint("tandem_set");
      if (undone.ok()) undone = Bisect(0, ops_.size());
      if (!undone.ok()) st = undone;
    }
  }
  ops_.clear();
  inserts_.clear();
  updates_.clear();
  deletes_.clear();
  return st;
}

Status SetWriter::Bisect(size_t from, size_t to) {
  if (to - from == 1) {
    rejected_.push_back(ops_[from].tag);
    return Status::Ok();
  }
  const size_t mid = from + (to - from) / 2;
  for (auto [a, b] : {std::pair{from, mid}, std::pair{mid, to}}) {
    TANDEM_RETURN_IF_ERROR(db_.Savepoint("tandem_bisect"));
    Status st = SendOps(a, b, /*complete=*/false);
    if (st.ok()) {
      TANDEM_RETURN_IF_ERROR(db_.ReleaseSavepoint("tandem_bisect"));
      continue;
    }
    if (st.code() != StatusCode::kConstraint) return st;
    TANDEM_RETURN_IF_ERROR(db_.RollbackToSavepoint("tandem_bisect"));
    TANDEM_RETURN_IF_ERROR(Bisect(a, b));
  }
  return Status::Ok();
}

Status SetWriter::SendOps(size_t from_op, size_t to_op, bool complete) {
  std::deque<std::vector<Row>> results;  // answers of the statements with RETURNING
  std::vector<SentUpdates> sent_updates;
  std::vector<SentInserts> sent_inserts;
  Status st = Status::Ok();
  for (size_t from = from_op; from < to_op && st.ok();) {
    const bool deletes = ops_[from].kind == Kind::kDelete;
    size_t to = from + 1;
    while (to < to_op && ops_[to].entity == ops_[from].entity && (ops_[to].kind == Kind::kDelete) == deletes) ++to;
    st = deletes ? SendDeletes(from, to) : SendWrites(from, to, &results, &sent_updates, &sent_inserts);
    from = to;
  }
  Status collected = db_.Collect();  // always: no answer may land in `results` after it is gone
  if (st.ok()) st = collected;
  if (st.ok() && complete) {
    for (const SentUpdates& s : sent_updates) CompleteUpdates(s, results);
    for (const SentInserts& s : sent_inserts) CompleteInserts(s, results);
  }
  return st;
}

Status SetWriter::SendWrites(size_t from, size_t to, std::deque<std::vector<Row>>* results,
                             std::vector<SentUpdates>* updates, std::vector<SentInserts>* inserts) {
  const int entity = ops_[from].entity;
  // Updates by the columns they set (in the order each set first appears);
  // a key updated twice starts a new statement (UpdateMany takes a key once).
  std::vector<std::vector<size_t>> groups;
  std::map<std::vector<int>, size_t> group_of;
  std::vector<std::unordered_set<std::string>> keys_of;
  std::vector<size_t> new_rows;
  const size_t nk = Dm(entity).target_key_columns.size();
  for (size_t i = from; i < to; ++i) {
    if (ops_[i].kind == Kind::kInsert) {
      new_rows.push_back(ops_[i].index);
      continue;
    }
    const PendingUpdate& u = updates_[ops_[i].index];
    std::string key = EncodeKey(Row(u.key_and_values.begin(), u.key_and_values.begin() + nk));
    auto it = group_of.find(u.rules);
    if (it == group_of.end() || keys_of[it->second].count(key)) {
      group_of[u.rules] = groups.size();
      groups.emplace_back();
      keys_of.emplace_back();
      it = group_of.find(u.rules);
    }
    groups[it->second].push_back(ops_[i].index);
    keys_of[it->second].insert(std::move(key));
  }
  for (const auto& g : groups) TANDEM_RETURN_IF_ERROR(SendUpdates(entity, g, results, updates));
  if (!new_rows.empty()) TANDEM_RETURN_IF_ERROR(SendInserts(entity, new_rows, results, inserts));
  return Status::Ok();
}

Status SetWriter::SendUpdates(int entity, const std::vector<size_t>& group, std::deque<std::vector<Row>>* results,
                              std::vector<SentUpdates>* sent) {
  const DirectionMapping& dm = Dm(entity);
  const std::vector<int>& rules = updates_[group[0]].rules;
  std::vector<std::string> columns;
  std::vector<ColumnType> types;
  for (int r : rules) {
    columns.push_back(dm.rules[r].target_column);
    types.push_back(dm.rules[r].target_type);
  }
  std::vector<Row> rows;
  rows.reserve(group.size());
  for (size_t u : group) rows.push_back(updates_[u].key_and_values);
  const bool returning = !sql_[entity].returning.empty();
  const size_t before = results->size();
  TANDEM_RETURN_IF_ERROR(dst_.UpdateMany({dm.target_table, dm.target_key_columns, dm.target_key_types}, columns, types,
                                         rows, returning ? results : nullptr));
  sent->push_back({entity, group, before, results->size() - before});
  return Status::Ok();
}

Status SetWriter::SendInserts(int entity, const std::vector<size_t>& group, std::deque<std::vector<Row>>* results,
                              std::vector<SentInserts>* sent) {
  const DirectionMapping& dm = Dm(entity);
  DirectionSql& sql = sql_[entity];
  const size_t width = dm.target_key_columns.size() + dm.rules.size();
  Row params;
  size_t at = 0;
  for (size_t n : MultiRowCounts(group.size(), width)) {
    std::string& text = sql.insert_many[n];
    if (text.empty()) text = sql.insert_with_key_head + MultiRowValues(n, width) + sql.returning;
    params.clear();
    params.reserve(n * width);
    for (size_t i = at; i < at + n; ++i) {
      const Row& v = inserts_[group[i]].values;
      params.insert(params.end(), v.begin(), v.end());
    }
    // Inserts of one run were added in order: group[at, at + n) is a range.
    SentInserts s{entity, group[at], n, SIZE_MAX};
    if (sql.returning.empty()) {
      TANDEM_RETURN_IF_ERROR(db_.ExecLater(text, params));
    } else {
      s.result = results->size();
      TANDEM_RETURN_IF_ERROR(db_.QueryLater(text, params, &results->emplace_back()));
    }
    sent->push_back(s);
    at += n;
  }
  return Status::Ok();
}

Status SetWriter::SendDeletes(size_t from, size_t to) {
  const DirectionMapping& dm = Dm(ops_[from].entity);
  std::vector<Row> keys;
  keys.reserve(to - from);
  for (size_t i = from; i < to; ++i) keys.push_back(deletes_[ops_[i].index]);
  return dst_.DeleteMany({dm.target_table, dm.target_key_columns, dm.target_key_types}, keys);
}

void SetWriter::CompleteUpdates(const SentUpdates& s, std::deque<std::vector<Row>>& results) {
  const DirectionMapping& dm = Dm(s.entity);
  const size_t nk = dm.target_key_columns.size();
  // What the target stored, by key (a row gone meanwhile returns nothing:
  // the values sent stand for it).
  std::unordered_map<std::string, const Row*> stored;
  for (size_t r = s.first_result; r < s.first_result + s.results; ++r)
    for (const Row& row : results[r]) stored[EncodeKey(Row(row.begin(), row.begin() + nk))] = &row;
  for (size_t u : s.updates) {
    PendingUpdate& p = updates_[u];
    const Row* row = nullptr;
    if (!stored.empty()) {
      auto it = stored.find(EncodeKey(Row(p.key_and_values.begin(), p.key_and_values.begin() + nk)));
      if (it != stored.end() && it->second->size() == nk + p.rules.size()) row = it->second;
    }
    auto& base = p.next.base(target_);
    if (!base) base.emplace();
    for (size_t c = 0; c < p.rules.size(); ++c)
      (*base)[dm.rules[p.rules[c]].target_column] = row ? (*row)[nk + c] : p.key_and_values[nk + c];
    entries_.push_back(std::move(p.next));
  }
}

void SetWriter::CompleteInserts(const SentInserts& s, std::deque<std::vector<Row>>& results) {
  const DirectionMapping& dm = Dm(s.entity);
  const size_t tk = dm.target_key_columns.size();
  // PostgreSQL returns an INSERT ... VALUES's rows in the order of its
  // VALUES. Fewer rows (a target trigger skipped some): the values sent
  // stand for what was stored.
  const std::vector<Row>* stored = s.result == SIZE_MAX ? nullptr : &results[s.result];
  const bool returned = stored && stored->size() == s.count;
  for (size_t i = 0; i < s.count; ++i) {
    PendingInsert& p = inserts_[s.from + i];
    const Row* row = returned && (*stored)[i].size() == dm.rules.size() ? &(*stored)[i] : nullptr;
    ColumnValues base_t;
    base_t.reserve(dm.rules.size());
    for (size_t r = 0; r < dm.rules.size(); ++r) base_t[dm.rules[r].target_column] = row ? (*row)[r] : p.values[tk + r];
    p.next.base(target_) = std::move(base_t);
    entries_.push_back(std::move(p.next));
  }
}

}  // namespace tandem
