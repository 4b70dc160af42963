// SetWriter: the row writes of a chunk's records, held back and sent as set
// statements.
//
// The engine decides each record of a chunk and hands its writes here instead
// of sending them one by one: new rows, updates of some columns, deletes, and
// key-map entries. FlushRows() sends the rows, grouped per table and
// operation into multi-row statements (multi-row INSERT, ApplyTarget::
// UpdateMany, ApplyTarget::DeleteMany), pipelined, and waits once for all of
// them; it then completes the entries of inserted and updated records with
// the values the target stored (RETURNING, where the target keeps values in
// its own form). Flush() sends the entries as well (RecordStore::PutMany).
//
// Order. Writes stay in runs of one entity and kind (rows written / rows
// deleted), in the order they were added, so parents are written before
// children and deleted after them as the engine orders its records. Inside a
// run, updates go first (one statement per set of columns), then inserts:
// records of one chunk are distinct rows, and a unique value an update frees
// can be taken by an insert. A run that depends on its own rows otherwise (a
// self-reference, two unique values swapped) fails, and the engine re-runs
// the batch record by record.
//
// Failures. A failed statement fails the flush (and, on PostgreSQL, the
// transaction): Status kConstraint for a rejection. With `find_rejected`, a
// flush runs inside a savepoint, and a rejected one is bisected (halves sent
// again, each in a savepoint of its own) down to the writes the target
// rejects on their own: rejected() lists their tags, so the engine can re-run
// the batch with only those records applied one by one. The flush still
// fails: what the bisection wrote is meant to be rolled back.
//
// Thread-safety: none; one per batch.
#pragma once

#include <deque>
#include <vector>

#include "connectors/apply_target.h"
#include "engine/direction_sql.h"
#include "engine/record_store.h"
#include "mapping/entity_mapping.h"

namespace tandem {

class SetWriter {
 public:
  // Writes go to `dst`, the `target` side, through `mapping`'s entities in
  // the direction from `source`, with `sql` (one per entity).
  // REQUIRES: all of them outlive the writer.
  SetWriter(ApplyTarget& dst, RecordStore& records, Side source, const std::vector<EntityMapping>& entities,
            std::vector<DirectionSql>& sql, bool find_rejected)
      : dst_(dst),
        db_(dst.session()),
        records_(records),
        source_(source),
        target_(Other(source)),
        entities_(entities),
        sql_(sql),
        find_rejected_(find_rejected) {}

  // A new row of `entity`: `values` are its target key columns, then one
  // value per rule. `next` is the record's key-map entry; its target base is
  // set from what the insert stored.
  // `tag` names the record for rejected().
  void Insert(size_t tag, int entity, Row values, RecordEntry next);
  // Sets the rules `rules` (indexes into the direction's rules) of the row
  // `target_key` to `values`; `next`'s target base gets what the update
  // stored for them (its other columns as given).
  void Update(size_t tag, int entity, Row target_key, std::vector<int> rules, Row values, RecordEntry next);
  // Deletes the row `target_key` of `entity`.
  void Delete(size_t tag, int entity, Row target_key);
  // A key-map entry, written with the rows.
  void Entry(RecordEntry entry) { entries_.push_back(std::move(entry)); }

  bool holds_rows() const { return !ops_.empty(); }
  // Sends the row writes held (their entries stay held) and waits for them.
  Status FlushRows();
  // FlushRows, then the entries (sent without waiting: RecordStore::PutMany).
  Status Flush();
  // Forgets everything held (the transaction is being rolled back).
  void Discard();
  // Tags of the writes a failed flush found rejected on their own (with
  // find_rejected), in the order they were added.
  const std::vector<size_t>& rejected() const { return rejected_; }

 private:
  enum class Kind { kInsert, kUpdate, kDelete };
  struct Op {
    Kind kind;
    int entity;
    size_t index;  // into inserts_, updates_ or deletes_
    size_t tag;
  };
  struct PendingInsert {
    Row values;  // target key columns, then one per rule
    RecordEntry next;
  };
  struct PendingUpdate {
    Row key_and_values;  // target key columns, then one per rule of `rules`
    std::vector<int> rules;
    RecordEntry next;
  };
  // A statement sent whose answer completes entries once collected.
  struct SentUpdates {
    int entity;
    std::vector<size_t> updates;  // into updates_
    size_t first_result, results;  // into the flush's result sets
  };
  struct SentInserts {
    int entity;
    size_t from, count;  // into inserts_ (one statement)
    size_t result;       // into the flush's result sets; SIZE_MAX: none
  };
  const DirectionMapping& Dm(int entity) const { return entities_[entity].from(source_); }
  // Sends ops_[from, to) and waits for them; with `complete`, completes
  // their entries (into entries_) when they all succeeded.
  Status SendOps(size_t from, size_t to, bool complete);
  // Finds the rejected writes of ops_[from, to), which failed together
  // inside a savepoint that was rolled back.
  Status Bisect(size_t from, size_t to);
  // Sends one run (ops_[from, to): one entity, rows written).
  Status SendWrites(size_t from, size_t to, std::deque<std::vector<Row>>* results, std::vector<SentUpdates>* updates,
                    std::vector<SentInserts>* inserts);
  Status SendUpdates(int entity, const std::vector<size_t>& group, std::deque<std::vector<Row>>* results,
                     std::vector<SentUpdates>* sent);
  Status SendInserts(int entity, const std::vector<size_t>& group, std::deque<std::vector<Row>>* results,
                     std::vector<SentInserts>* sent);
  Status SendDeletes(size_t from, size_t to);
  void CompleteUpdates(const SentUpdates& s, std::deque<std::vector<Row>>& results);
  void CompleteInserts(const SentInserts& s, std::deque<std::vector<Row>>& results);

  ApplyTarget& dst_;
  SqlSession& db_;  // dst_.session()
  RecordStore& records_;
  const Side source_, target_;
  const std::vector<EntityMapping>& entities_;
  std::vector<DirectionSql>& sql_;
  std::vector<Op> ops_;
  std::vector<PendingInsert> inserts_;
  std::vector<PendingUpdate> updates_;
  std::vector<Row> deletes_;
  std::vector<RecordEntry> entries_;
  const bool find_rejected_;
  std::vector<size_t> rejected_;
};

}  // namespace tandem
