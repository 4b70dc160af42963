#include "engine/apply/prefetch.h"

#include <algorithm>

#include "core/key_codec.h"
#include "engine/apply/apply_batch.h"

namespace tandem {

Status SendSelectByKeys(SqlSession& db, const InListSql& sql, const std::vector<Row>& keys,
                        std::deque<std::vector<Row>>* results) {
  Row params;
  for (size_t start = 0; start < keys.size();) {
    const size_t shape = InListShape(keys.size() - start), n = kInListLengths[shape];
    params.clear();
    for (size_t i = 0; i < n; ++i) {
      const Row& k = keys[std::min(start + i, keys.size() - 1)];
      params.insert(params.end(), k.begin(), k.end());
    }
    start += n;
    TANDEM_RETURN_IF_ERROR(db.QueryLater(sql[shape], params, &results->emplace_back()));
  }
  return Status::Ok();
}

void KeyRows(std::deque<std::vector<Row>>* results, size_t key_count, std::unordered_map<std::string, Row>* out) {
  for (auto& rows : *results) {
    for (auto& r : rows) {
      Row key(r.begin(), r.begin() + key_count);
      (*out)[EncodeKey(key)] = std::move(r);
    }
  }
}

Status SelectByKeys(SqlSession& db, const InListSql& sql, size_t key_count, const std::vector<Row>& keys,
                    std::unordered_map<std::string, Row>* out) {
  std::deque<std::vector<Row>> results;
  Status sent = SendSelectByKeys(db, sql, keys, &results);
  Status collected = db.Collect();  // always: no answer may land in `results` after it is gone
  TANDEM_RETURN_IF_ERROR(sent);
  TANDEM_RETURN_IF_ERROR(collected);
  KeyRows(&results, key_count, out);
  return Status::Ok();
}

Status ApplyBatch::PrefetchEntries(const std::string& entity, Side side, std::vector<std::string> keys) {
  std::vector<std::string> missing;
  for (auto& k : keys)
    if (!entries_.count(EntryCacheKey(entity, side, k))) missing.push_back(k);
  if (missing.empty()) return Status::Ok();
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  std::unordered_map<std::string, RecordEntry> found;
  TANDEM_RETURN_IF_ERROR(ctx_.records.FindMany(entity, side, missing, &found));
  for (auto& k : missing) {
    auto it = found.find(k);
    if (it == found.end()) entries_[EntryCacheKey(entity, side, k)] = std::nullopt;
    else entries_[EntryCacheKey(entity, side, k)] = std::move(it->second);
  }
  return Status::Ok();
}

Status ApplyBatch::Prefetch(std::vector<WorkItem>& items) {
  TANDEM_RETURN_IF_ERROR(FlushPending());
  entries_.clear();
  target_rows_.clear();
  claimed_lkeys_.clear();
  const auto& entities = ctx_.mapping.entities;
  std::vector<std::vector<WorkItem*>> by_entity(entities.size());
  for (WorkItem& w : items) by_entity[w.entity].push_back(&w);
  for (size_t ei = 0; ei < entities.size(); ++ei) {
    // A paused entity's tables may not match its mapping: nothing is read.
    if (by_entity[ei].empty() || !entities[ei].paused.empty()) continue;
    TANDEM_RETURN_IF_ERROR(PrefetchSourceRows(static_cast<int>(ei), by_entity[ei]));
    TANDEM_RETURN_IF_ERROR(PrefetchTargetRows(static_cast<int>(ei), by_entity[ei]));
  }
  return Status::Ok();
}

Status ApplyBatch::PrefetchSourceRows(int ei, const std::vector<WorkItem*>& items) {
  const auto& entities = ctx_.mapping.entities;
  const EntityMapping& em = entities[ei];
  const DirectionMapping& dm = em.from(d_.source);
  // Source rows, in the read snapshot.
  std::vector<Row> keys;
  std::vector<std::string> encoded;
  for (WorkItem* w : items) {
    keys.push_back(w->key);
    encoded.push_back(EncodeKey(w->key));
    if (!w->old_key.empty()) encoded.push_back(EncodeKey(w->old_key));
  }
  // The source rows are read while the key map is (both databases at once).
  std::deque<std::vector<Row>> source_results;
  {
    Status sent = SendSelectByKeys(*d_.src, d_.sql[ei].select_source_many, keys, &source_results);
    // This entity's key-map entries, and those its foreign keys resolve through.
    if (sent.ok()) sent = PrefetchEntries(em.name, d_.source, std::move(encoded));
    Status collected = d_.src->Collect();  // always: no answer may land in source_results after it is gone
    TANDEM_RETURN_IF_ERROR(sent);
    TANDEM_RETURN_IF_ERROR(collected);
  }
  std::unordered_map<std::string, Row> rows;
  KeyRows(&source_results, dm.source_key_count, &rows);
  for (WorkItem* w : items) {
    auto it = rows.find(EncodeKey(w->key));
    w->source_row.reset();
    if (it != rows.end() && !w->superseded) w->source_row = it->second;
    w->source_exists = w->source_row.has_value();
    // A split entity exists in its parent's row while any of its own columns is set.
    if (w->source_exists && dm.source_row_shared) {
      bool any = false;
      for (size_t i = dm.source_key_count; i < w->source_row->size() && !any; ++i) any = !(*w->source_row)[i].is_null();
      w->source_exists = any;
    }
  }
  for (WorkItem* w : items) {
    auto& e = entries_[EntryCacheKey(em.name, d_.source, EncodeKey(w->old_key.empty() ? w->key : w->old_key))];
    if (!w->is_new) w->entry_before = e;
  }
  auto prefetch_lookup = [&](const ColumnRule& r) -> Status {
    std::vector<std::string> fk;
    for (WorkItem* w : items)
      if (w->source_row && !(*w->source_row)[r.source_index].is_null())
        fk.push_back(EncodeKey({(*w->source_row)[r.source_index]}));
    return PrefetchEntries(entities[r.lookup_entity_index].name, d_.source, std::move(fk));
  };
  for (const ColumnRule& r : dm.rules)
    if (r.kind == RuleKind::kLookup) TANDEM_RETURN_IF_ERROR(prefetch_lookup(r));
  if (dm.target_row_shared) TANDEM_RETURN_IF_ERROR(prefetch_lookup(dm.shared_row_key));
  return Status::Ok();
}

Status ApplyBatch::PrefetchTargetRows(int ei, const std::vector<WorkItem*>& items) {
  const EntityMapping& em = ctx_.mapping.entities[ei];
  const DirectionMapping& dm = em.from(d_.source);
  // Target rows whose key is known already (a mapped record, or equal keys).
  std::vector<Row> tkeys;
  for (WorkItem* w : items) {
    auto& entry = entries_[EntryCacheKey(em.name, d_.source, EncodeKey(w->old_key.empty() ? w->key : w->old_key))];
    if (entry && !entry->gone) {
      auto k = DecodeKey(entry->key(d_.target));
      if (k.ok()) tkeys.push_back(std::move(k).value());
    } else if (dm.target_new_keys == NewKeys::kSame && !dm.target_row_shared) {
      tkeys.push_back(w->key);
    }
  }
  if (tkeys.empty()) return Status::Ok();
  std::unordered_map<std::string, Row> rows;
  TANDEM_RETURN_IF_ERROR(
      SelectByKeys(*d_.dst, d_.sql[ei].select_target_many, dm.target_key_columns.size(), tkeys, &rows));
  for (auto& k : tkeys) {
    std::string enc = EncodeKey(k);
    auto it = rows.find(enc);
    target_rows_[std::to_string(ei) + '\x1d' + enc] =
        it == rows.end() ? std::optional<Row>() : std::optional<Row>(it->second);
  }
  return Status::Ok();
}

}  // namespace tandem
