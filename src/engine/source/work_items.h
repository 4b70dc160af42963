// WorkItems: the records a chunk of captured changes touches, one per
// (entity, record), folded from the change-log rows in log order
// (BuildWorkItems, a pure function), then completed by the apply batch's
// prefetch with what the batch found (engine/apply/apply_batch.h).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "connectors/change_source.h"
#include "engine/record_store.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct WorkItem {
  int entity = 0;
  Row key;      // source key
  Row old_key;  // source key before, for a key change
  int64_t seq = 0;
  int64_t captured_at_ms = 0;
  std::optional<Row> source_row;  // current source row (source_columns), read in the batch's snapshot
  bool source_exists = false;
  bool deleted = false;     // a delete of this key was seen in the chunk
  bool is_new = false;      // inserted after a delete of the same key: a new record, whatever the key map says
  bool superseded = false;  // deleted, or another record moved onto its key: this record is gone
  // The record's key-map entry as it was before this chunk was applied
  // (resolved by Prefetch, so entries written while applying cannot alias it).
  std::optional<RecordEntry> entry_before;
};

// One work item per (entity, record) from a chunk of log rows, in log order.
// `tables` maps the source's captured table ids to their specs (a change of
// a table not in it is skipped). A key change moves the record's item to its
// new key, so chains collapse (1->5->6 is one move 1->6; 1->100->1 is no move
// at all) and later changes under the new key join it. A delete followed by
// an insert of the same key marks a new record reusing the key. A record
// whose key is taken over by a moved record is gone.
void BuildWorkItems(const std::unordered_map<int, const CapturedTableSpec*>& tables,
                    const std::vector<CapturedChange>& changes, std::vector<WorkItem>* items);

// Orders prefetched items for applying: records whose key a new record took
// over (deleted, then inserted again) go first, so their delete cannot hit
// the new record's row; then parents before children for rows that exist;
// children before parents for deletes. Stable.
void OrderForApply(std::vector<WorkItem>* items);

}  // namespace tandem
