#include "engine/source/work_items.h"

#include <algorithm>
#include <string>

#include "core/key_codec.h"

namespace tandem {

void BuildWorkItems(const std::unordered_map<int, const CapturedTableSpec*>& tables,
                    const std::vector<CapturedChange>& changes, std::vector<WorkItem>* items) {
  items->clear();
  std::unordered_map<std::string, size_t> at;  // entity \x1d current key -> item
  for (const CapturedChange& c : changes) {
    auto it = tables.find(c.table_id);
    if (it == tables.end()) continue;  // a table no longer mapped
    const CapturedTableSpec& spec = *it->second;
    const size_t nkeys = spec.key_columns.size();
    Row key(c.key.begin(), c.key.begin() + nkeys);
    for (int entity : spec.entities) {
      const std::string prefix = std::to_string(entity) + '\x1d';
      const std::string id = prefix + EncodeKey(key);
      size_t idx;
      if (c.op == ChangeOp::kKeyChange) {
        Row old_key(c.old_key.begin(), c.old_key.begin() + nkeys);
        auto from = at.find(prefix + EncodeKey(old_key));
        if (from != at.end()) {
          idx = from->second;
          at.erase(from);
          WorkItem& w = (*items)[idx];
          if (w.old_key.empty()) w.old_key = old_key;
        } else {
          idx = items->size();
          WorkItem w;
          w.entity = entity;
          w.old_key = old_key;
          items->push_back(std::move(w));
        }
        WorkItem& w = (*items)[idx];
        w.key = key;
        if (w.old_key == key) w.old_key.clear();  // moved back where it started
        auto taken = at.find(id);
        if (taken != at.end() && taken->second != idx) (*items)[taken->second].superseded = true;
        at[id] = idx;
      } else {
        auto found = at.find(id);
        if (found == at.end()) {
          idx = items->size();
          WorkItem w;
          w.entity = entity;
          w.key = key;
          items->push_back(std::move(w));
          at[id] = idx;
        } else {
          idx = found->second;
        }
        if (c.op == ChangeOp::kDelete) (*items)[idx].deleted = true;
        if (c.op == ChangeOp::kInsert && (*items)[idx].deleted) {
          // Deleted, then inserted again under the same key: a different
          // record. The old one is deleted (with the deletes, children first)
          // and the new one synced as new (with the inserts, parents first).
          (*items)[idx].superseded = true;
          WorkItem fresh;
          fresh.entity = entity;
          fresh.key = key;
          fresh.is_new = true;
          idx = items->size();
          items->push_back(std::move(fresh));
          at[id] = idx;
        }
      }
      (*items)[idx].seq = c.seq;
      (*items)[idx].captured_at_ms = c.captured_at_ms;
    }
  }
}

void OrderForApply(std::vector<WorkItem>* items) {
  std::stable_sort(items->begin(), items->end(), [](const WorkItem& a, const WorkItem& b) {
    auto rank = [](const WorkItem& w) { return w.superseded ? 0 : w.source_exists ? 1 : 2; };
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return a.source_exists ? a.entity < b.entity : a.entity > b.entity;
  });
}

}  // namespace tandem
