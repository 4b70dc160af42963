#include "engine/sync_engine.h"

#include "engine/engine_lock.h"

#include "mapping/exact_write.h"

#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>
#include <cerrno>
#include <chrono>
#include <deque>
#include <cstring>
#include <thread>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/capture_health.h"
#include "connectors/multi_row.h"
#include "engine/direction_sql.h"
#include "engine/merge/merge.h"
#include "engine/set_writer.h"
#include "engine/source_identity.h"

namespace tandem {

namespace {

// Marks a Status as "this record waits for its parent" (kNotFound).
bool IsWaiting(const Status& st) { return st.code() == StatusCode::kNotFound; }

}  // namespace


namespace {
constexpr int kChunkChanges = 2000;  // changes read, prefetched and applied at a time
constexpr size_t kPinCheckChanges = 1000;  // records applied between two PinIfBehind calls
// A pinned snapshot further than this many batches ahead is not used: the
// target transaction would hold the write lock too long.
constexpr int64_t kMaxPinnedSpanBatches = 4;
// The part of sync.max_txn_ms kept for the COMMIT (an fsync or two).
constexpr double kCommitShareOfTxnBound = 0.15;
// Chunk size bounds while a transaction bound is in force.
constexpr int64_t kMinBoundedChunk = 64;
constexpr int64_t kFirstBoundedChunk = 256;  // before the apply rate is known
// After a transaction cut short by the bounds, on a target that lets one
// writer in at a time, the engine waits up to this long (less as soon as
// another writer commits) before taking the write lock again. SQLite's busy
// handler retries a waiting writer at least every 100 ms.
constexpr int kStepAsideMs = 100;
}  // namespace

struct SyncEngine::Direction {
  Side source = Side::kLegacy;
  Side target = Side::kModern;
  Connector* src = nullptr;
  Connector* dst = nullptr;
  std::string name;
  int64_t position = 0;
  bool position_uncertain = false;  // a COMMIT failed: reread the position from the target
  int64_t applied_total = 0;
  std::unordered_map<int, const CapturedTableSpec*> tables;  // source table id -> spec
  std::unordered_set<std::string> parked;                    // entity \x1d source key
  bool has_waiting = false;
  int64_t last_purge_ms = 0;
  int64_t purged_before = 0;
  int64_t written_since_statistics = 0;
  std::vector<DirectionSql> sql;  // per entity index
  // Target tables of the entities this direction applies and that are not
  // paused (a paused entity's table may be gone): locked by apply transactions.
  std::vector<std::string> written_tables;
  // Bounds on one target transaction (sync.max_txn_ms / max_txn_changes,
  // resolved for this target; 0 = none), and the apply rate last seen, to
  // size chunks so a transaction ends before its time is up.
  int max_txn_ms = 0;
  int64_t max_txn_changes = 0;
  double changes_per_ms = 0;
  // The target lets one writer in at a time (SQLite): after a transaction
  // cut short by the bounds, the engine steps aside so waiting writers get in.
  bool target_single_writer = false;
  // Source identity (engine/source_identity.h): the source's id and the
  // HistoryMark stored with the position; `stopped` says why nothing is
  // applied from the source ("" while it syncs).
  std::string source_id;
  std::string source_mark;
  std::string stopped;
};

struct SyncEngine::WorkItem {
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

static std::string ParkedKey(const std::string& entity, const std::string& key) { return entity + '\x1d' + key; }

// Applies records of one direction inside one target transaction.
class SyncEngine::Batch {
 public:
  // `careful`: every record is applied on its own, in a savepoint, so a
  // rejection puts aside only that record. `solo`: the records (ParkedKey)
  // applied that way in a batch that otherwise writes sets (the ones an
  // earlier run of the batch found rejected: suspects()).
  Batch(SyncEngine& engine, Direction& dir, bool careful, const std::unordered_set<std::string>* solo = nullptr)
      : e_(engine),
        d_(dir),
        careful_(careful),
        solo_(solo),
        defer_(!careful && dir.dst->Traits().failed_statement_aborts_transaction),
        writer_(*dir.dst, *engine.records_, dir.source, engine.mapping_->entities, dir.sql, /*find_rejected=*/defer_),
        in_record_savepoint_(careful) {}

  // Reads, with a few IN-list statements, everything applying `items` needs:
  // their current source rows (in the batch's read snapshot), their key-map
  // entries, the entries their foreign keys resolve through, and the target
  // rows. Replaces what the previous chunk prefetched.
  Status Prefetch(std::vector<WorkItem>& items);
  // Applies one record; parks it when the target rejects it or it waits for a
  // parent. Returns non-ok only for failures that abort the batch.
  Status ApplyOrPark(const WorkItem& item);
  // Applies a put-aside record again; true if applied (the caller removes its
  // parked row), false if it was put aside again (reason and attempts updated).
  Result<bool> Retry(const WorkItem& item);
  std::vector<AppliedRecord>& applied() { return applied_; }
  int64_t written() const { return written_; }
  const std::map<std::string, int64_t>& written_by_entity() const { return written_by_entity_; }
  // Records this batch put aside that are still put aside, and conflicts it
  // recorded: for the direction's stats once (and only if) it commits.
  int64_t put_aside() const { return static_cast<int64_t>(put_aside_.size()); }
  int64_t conflicts() const { return conflicts_; }
  int64_t applied_alone() const { return applied_alone_; }
  bool needs_careful() const { return needs_careful_; }
  // The records (ParkedKey) whose writes the target rejected in a failed
  // set (SetWriter::rejected): to be applied on their own in a re-run.
  std::unordered_set<std::string> suspects() const {
    std::unordered_set<std::string> out;
    for (size_t tag : writer_.rejected())
      if (tag < tag_keys_.size()) out.insert(tag_keys_[tag]);
    return out;
  }
  // Sends the writes held back (see defer_). A target rejection marks the
  // batch for a careful re-run, like a rejection while applying.
  Status FlushPending();
  // Sends the held-back row writes only (their entries stay held): before a
  // statement that reads or writes target tables.
  Status FlushPendingWrites();
  // The mapped target values of a source row of `entity` (one per rule).
  // Fails with the first problem (mapping/exact_write.h) of the rules in
  // `written`, which are about to be written.
  Status MapSourceRow(int entity, const Row& srow, Row* out, const std::vector<size_t>& written) {
    TANDEM_RETURN_IF_ERROR(MapRow(e_.mapping_->entities[entity], srow, out));
    for (size_t i : written)
      if (!problems_[i].empty()) return Status::Constraint(problems_[i]);
    return Status::Ok();
  }

 private:
  Status Apply(const WorkItem& item);
  std::vector<std::string> problems_;    // of the last MapRow, per rule
  std::vector<size_t> unmapped_codes_;   // MapRow's scratch
  Result<Value> ResolveLookup(const ColumnRule& rule, const Value& source_value);
  // Key-map entry through the batch cache (authoritative for prefetched keys).
  Result<std::optional<RecordEntry>> FindEntry(const std::string& entity, Side side, const std::string& key);
  Status PutEntry(RecordEntry* entry);
  // Counts a written record; keeps its details only when someone will read them.
  void Report(AppliedRecord applied, const Row& source_key, const Row& target_key) {
    ++written_;
    ++written_by_entity_[applied.entity];
    bool debug = spdlog::should_log(spdlog::level::debug);
    if (!e_.applied_callback_ && !debug) return;
    applied.source_key = DisplayKey(source_key);
    applied.target_key = DisplayKey(target_key);
    if (debug)
      spdlog::debug("{} {} {} {} -> {}", d_.name, applied.op, applied.entity, applied.source_key, applied.target_key);
    applied_.push_back(std::move(applied));
  }
  Result<std::optional<Row>> TargetRow(int entity, const Row& tkey);
  void ForgetTargetRow(int entity, const Row& tkey) { target_rows_.erase(std::to_string(entity) + '\x1d' + EncodeKey(tkey)); }
  Status PrefetchEntries(const std::string& entity, Side side, std::vector<std::string> keys);
  // Maps a source row of `em` in this batch's direction (one value per rule)
  // and checks that each value may be written exactly: problems_[i] is empty
  // or why rule i's value must not be written (mapping/exact_write.h).
  Status MapRow(const EntityMapping& em, const Row& srow, Row* out);
  // The first problem among all rules (a new record writes them all).
  Status AnyProblem() const {
    for (const std::string& p : problems_)
      if (!p.empty()) return Status::Constraint(p);
    return Status::Ok();
  }
  Status Park(const WorkItem& item, const Status& why);
  // A field (or the whole row, "(row)") changed on both sides.
  struct Conflict {
    std::string field;
    Value source_value;
    Value target_value;
    std::optional<Value> base;   // in the target side's terms
    std::optional<Side> winner;  // nullopt: open, waiting for `tandem conflicts resolve`
    ConflictKind kind;
    const char* policy;
    std::string request = "";    // a resolution to carry out at once (status 'resolving')
  };
  // The conflict of the whole record ("(row)") a plan records.
  static Conflict RowConflict(const PlannedConflict& c, Value source_value, Value target_value) {
    return {"(row)", std::move(source_value), std::move(target_value), std::nullopt, c.winner, c.kind, c.policy};
  }
  // Logs a record's plan at debug level (DescribePlan); costs nothing otherwise.
  void LogPlan(const WorkItem& item, const RecordPlan& plan, std::span<const FieldFacts> fields = {},
               const FieldMerge* merge = nullptr) const {
    if (!spdlog::should_log(spdlog::level::debug)) return;
    spdlog::debug("{} plan: {}", d_.name,
                  DescribePlan(plan, e_.mapping_->entities[item.entity].name, DisplayKey(item.key), d_.source, fields,
                               merge));
  }
  // A change on the read-only side of a one-way entity: reverted (through a
  // resolution request) or put aside, per the entity's read_only_edits.
  Status ReadOnlyEdit(const WorkItem& item);
  Status RecordConflict(const EntityMapping& em, const RecordEntry& entry, const Conflict& c);
  // An insert the target rejected as a unique violation against a row that
  // no synced record owns: the same record inserted on both sides (e.g. the
  // same email). Recorded as an open insert-insert conflict (Status
  // kConflict); anything else returns `failed` unchanged.
  // `values` are the insert's parameters: the target key columns (if
  // `with_key`), then the rules' target columns.
  Status InsertInsertConflictOr(const EntityMapping& em, const WorkItem& item, bool with_key, const Row& values,
                                const Status& failed);
  // The side whose change is newer, by the entity's newest_by columns or else
  // capture time; ties go to the primary side.
  Result<Side> NewestSide(const EntityMapping& em, const WorkItem& item, const Row& tkey);

  // The tag of `item`'s writes in writer_ (its ParkedKey, for suspects()).
  size_t Tag(const WorkItem& item) {
    tag_keys_.push_back(ParkedKey(e_.mapping_->entities[item.entity].name, EncodeKey(item.key)));
    return tag_keys_.size() - 1;
  }

  SyncEngine& e_;
  Direction& d_;
  bool careful_;
  const std::unordered_set<std::string>* solo_;
  std::vector<std::string> tag_keys_;  // by writer_ tag
  // Where a failed statement spoils the transaction anyway (PostgreSQL) and
  // records have no savepoint of their own, records' inserts, updates,
  // deletes and key-map entries are held back and sent as set statements
  // (engine/set_writer.h): a statement per few hundred records instead of
  // one or two per record. A rejection then re-runs the batch record by
  // record, as any rejection there does. Everything else the batch sends to
  // the target, or reads from it, flushes them first.
  const bool defer_;
  SetWriter writer_;
  bool deferring() const { return defer_ && !in_record_savepoint_; }
  // Keeps the batch caches as PutEntry does, for an entry written later.
  void CacheEntryKeys(const RecordEntry& entry);
  bool needs_careful_ = false;
  bool in_record_savepoint_;  // the record being applied has a savepoint of its own
  std::vector<Row> stored_;   // values a write RETURNed (DirectionSql::returning)
  std::vector<AppliedRecord> applied_;
  int64_t written_ = 0;
  std::map<std::string, int64_t> written_by_entity_;
  std::unordered_set<std::string> put_aside_;  // ParkedKey of records newly put aside
  int64_t conflicts_ = 0;
  int64_t applied_alone_ = 0;
  Row expr_out_;
  std::vector<FieldFacts> field_facts_;  // per rule, for the record being merged (reused)
  FieldMerge merge_;                     // its merge (reused)
  // Per-chunk caches. A present key is authoritative (nullopt = known absent).
  std::unordered_map<std::string, std::optional<RecordEntry>> entries_;  // entity \x1d side \x1d key
  std::unordered_map<std::string, std::optional<Row>> target_rows_;      // entity index \x1d target key
  std::unordered_set<std::string> claimed_lkeys_;  // entity \x1d legacy key written live in this chunk
};

namespace {

std::string EntryCacheKey(const std::string& entity, Side side, const std::string& key) {
  return entity + (side == Side::kLegacy ? "\x1dL\x1d" : "\x1dM\x1d") + key;
}


// Sends SelectByKeysSql over `keys` (Connector::QueryLater): the answers
// land in `results` once `db` collects them.
Status SendSelectByKeys(Connector& db, const InListSql& sql, const std::vector<Row>& keys,
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

// The rows SendSelectByKeys received, keyed by EncodeKey of their first
// key_count columns.
void KeyRows(std::deque<std::vector<Row>>* results, size_t key_count, std::unordered_map<std::string, Row>* out) {
  for (auto& rows : *results) {
    for (auto& r : rows) {
      Row key(r.begin(), r.begin() + key_count);
      (*out)[EncodeKey(key)] = std::move(r);
    }
  }
}

// Runs SelectByKeysSql over `keys`; rows are keyed by EncodeKey of their first
// key_count columns.
Status SelectByKeys(Connector& db, const InListSql& sql, size_t key_count, const std::vector<Row>& keys,
                    std::unordered_map<std::string, Row>* out) {
  std::deque<std::vector<Row>> results;
  Status sent = SendSelectByKeys(db, sql, keys, &results);
  Status collected = db.Collect();  // always: no answer may land in `results` after it is gone
  TANDEM_RETURN_IF_ERROR(sent);
  TANDEM_RETURN_IF_ERROR(collected);
  KeyRows(&results, key_count, out);
  return Status::Ok();
}
}  // namespace

Status SyncEngine::Batch::PrefetchEntries(const std::string& entity, Side side, std::vector<std::string> keys) {
  std::vector<std::string> missing;
  for (auto& k : keys)
    if (!entries_.count(EntryCacheKey(entity, side, k))) missing.push_back(k);
  if (missing.empty()) return Status::Ok();
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  std::unordered_map<std::string, RecordEntry> found;
  TANDEM_RETURN_IF_ERROR(e_.records_->FindMany(entity, side, missing, &found));
  for (auto& k : missing) {
    auto it = found.find(k);
    if (it == found.end()) entries_[EntryCacheKey(entity, side, k)] = std::nullopt;
    else entries_[EntryCacheKey(entity, side, k)] = std::move(it->second);
  }
  return Status::Ok();
}

Result<std::optional<RecordEntry>> SyncEngine::Batch::FindEntry(const std::string& entity, Side side,
                                                                const std::string& key) {
  std::string ck = EntryCacheKey(entity, side, key);
  auto it = entries_.find(ck);
  if (it != entries_.end()) return it->second;
  TANDEM_RETURN_IF_ERROR(FlushPending());
  TANDEM_ASSIGN_OR_RETURN(auto e, e_.records_->Find(entity, side, key));
  entries_[ck] = e;
  return e;
}

Status SyncEngine::Batch::PutEntry(RecordEntry* entry) {
  std::string claim = entry->entity + '\x1d' + entry->lkey;
  if (entry->gone && claimed_lkeys_.count(claim)) return Status::Ok();  // another record owns this key now
  if (!entry->gone) claimed_lkeys_.insert(claim);
  if (deferring()) {
    writer_.Entry(*entry);
  } else {
    TANDEM_RETURN_IF_ERROR(FlushPending());
    TANDEM_RETURN_IF_ERROR(e_.records_->Put(d_.target, entry));
  }
  CacheEntryKeys(*entry);
  return Status::Ok();
}

void SyncEngine::Batch::CacheEntryKeys(const RecordEntry& entry_ref) {
  const RecordEntry* entry = &entry_ref;
  // Later records of this chunk only need the keys (lookups of this record
  // as a parent); each record itself is applied once per chunk.
  RecordEntry keys_only;
  keys_only.entity = entry->entity;
  keys_only.lkey = entry->lkey;
  keys_only.mkey = entry->mkey;
  keys_only.version = entry->version;
  keys_only.gone = entry->gone;
  entries_[EntryCacheKey(entry->entity, Side::kLegacy, entry->lkey)] = keys_only;
  entries_[EntryCacheKey(entry->entity, Side::kModern, entry->mkey)] = std::move(keys_only);
}

Status SyncEngine::Batch::FlushPending() {
  Status st = writer_.Flush();
  if (st.code() == StatusCode::kConstraint) needs_careful_ = true;
  return st;
}

Status SyncEngine::Batch::FlushPendingWrites() {
  Status st = writer_.FlushRows();
  if (st.code() == StatusCode::kConstraint) needs_careful_ = true;
  return st;
}

Result<std::optional<Row>> SyncEngine::Batch::TargetRow(int entity, const Row& tkey) {
  std::string ck = std::to_string(entity) + '\x1d' + EncodeKey(tkey);
  auto it = target_rows_.find(ck);
  if (it != target_rows_.end()) return it->second;
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  return d_.dst->QueryOne(d_.sql[entity].select_target, tkey);
}

Status SyncEngine::Batch::Prefetch(std::vector<WorkItem>& items) {
  TANDEM_RETURN_IF_ERROR(FlushPending());
  entries_.clear();
  target_rows_.clear();
  claimed_lkeys_.clear();
  const auto& entities = e_.mapping_->entities;
  std::vector<std::vector<WorkItem*>> by_entity(entities.size());
  for (WorkItem& w : items) by_entity[w.entity].push_back(&w);
  for (size_t ei = 0; ei < entities.size(); ++ei) {
    // A paused entity's tables may not match its mapping: nothing is read.
    if (by_entity[ei].empty() || !entities[ei].paused.empty()) continue;
    const EntityMapping& em = entities[ei];
    const DirectionMapping& dm = em.from(d_.source);
    // Source rows, in the read snapshot.
    std::vector<Row> keys;
    std::vector<std::string> encoded;
    for (WorkItem* w : by_entity[ei]) {
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
    for (WorkItem* w : by_entity[ei]) {
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
    for (WorkItem* w : by_entity[ei]) {
      auto& e = entries_[EntryCacheKey(em.name, d_.source, EncodeKey(w->old_key.empty() ? w->key : w->old_key))];
      if (!w->is_new) w->entry_before = e;
    }
    auto prefetch_lookup = [&](const ColumnRule& r) -> Status {
      std::vector<std::string> fk;
      for (WorkItem* w : by_entity[ei])
        if (w->source_row && !(*w->source_row)[r.source_index].is_null())
          fk.push_back(EncodeKey({(*w->source_row)[r.source_index]}));
      return PrefetchEntries(entities[r.lookup_entity_index].name, d_.source, std::move(fk));
    };
    for (const ColumnRule& r : dm.rules)
      if (r.kind == RuleKind::kLookup) TANDEM_RETURN_IF_ERROR(prefetch_lookup(r));
    if (dm.target_row_shared) TANDEM_RETURN_IF_ERROR(prefetch_lookup(dm.shared_row_key));
    // Target rows whose key is known already (a mapped record, or equal keys).
    std::vector<Row> tkeys;
    for (WorkItem* w : by_entity[ei]) {
      auto& entry = entries_[EntryCacheKey(em.name, d_.source, EncodeKey(w->old_key.empty() ? w->key : w->old_key))];
      if (entry && !entry->gone) {
        auto k = DecodeKey(entry->key(d_.target));
        if (k.ok()) tkeys.push_back(std::move(k).value());
      } else if (dm.target_new_keys == NewKeys::kSame && !dm.target_row_shared) {
        tkeys.push_back(w->key);
      }
    }
    if (tkeys.empty()) continue;
    rows.clear();
    TANDEM_RETURN_IF_ERROR(
        SelectByKeys(*d_.dst, d_.sql[ei].select_target_many, dm.target_key_columns.size(), tkeys, &rows));
    for (auto& k : tkeys) {
      std::string enc = EncodeKey(k);
      auto it = rows.find(enc);
      target_rows_[std::to_string(ei) + '\x1d' + enc] =
          it == rows.end() ? std::optional<Row>() : std::optional<Row>(it->second);
    }
  }
  return Status::Ok();
}

Result<Value> SyncEngine::Batch::ResolveLookup(const ColumnRule& rule, const Value& v) {
  if (v.is_null()) return Value::Null();
  const EntityMapping& parent = e_.mapping_->entities[rule.lookup_entity_index];
  TANDEM_ASSIGN_OR_RETURN(auto entry, FindEntry(parent.name, d_.source, EncodeKey({v})));
  if (!entry || entry->gone)
    return Status::NotFound(fmt::format("waiting for {} {} to be synced (field '{}')", parent.name, v.ToDisplay(),
                                        rule.field));
  TANDEM_ASSIGN_OR_RETURN(Row key, DecodeKey(entry->key(d_.target)));
  if (key.size() != 1)
    return Status::Constraint(fmt::format("lookup '{}' needs a single-column key on entity '{}'", rule.field, parent.name));
  return key[0];
}

Status SyncEngine::Batch::MapRow(const EntityMapping& em, const Row& srow, Row* out) {
  const DirectionMapping& dm = em.from(d_.source);
  out->clear();
  out->reserve(dm.rules.size());
  unmapped_codes_.clear();
  if (dm.expressions && dm.expressions->size()) TANDEM_RETURN_IF_ERROR(dm.expressions->Evaluate(srow, &expr_out_));
  for (const ColumnRule& r : dm.rules) {
    switch (r.kind) {
      case RuleKind::kCopy: out->push_back(srow[r.source_index]); break;
      case RuleKind::kExpression: out->push_back(expr_out_[r.expr_index]); break;
      case RuleKind::kCode: {
        const Value& v = srow[r.source_index];
        if (v.is_null()) {
          out->push_back(v);
          break;
        }
        auto it = r.codes->find(CodeKey(dm.source_types[r.source_index], v));
        if (it == r.codes->end()) {
          unmapped_codes_.push_back(out->size());
          out->push_back(v);  // compared, never written: problems_ says why
          break;
        }
        out->push_back(it->second);
        break;
      }
      case RuleKind::kLookup: {
        TANDEM_ASSIGN_OR_RETURN(Value v, ResolveLookup(r, srow[r.source_index]));
        out->push_back(std::move(v));
        break;
      }
    }
  }
  TANDEM_RETURN_IF_ERROR(CheckExactWrite(dm, em.from(d_.target), srow, out, &problems_));
  for (size_t i : unmapped_codes_) {
    const ColumnRule& r = dm.rules[i];
    problems_[i] = fmt::format("field '{}': {} {} value {} has no mapping in its code table", r.field,
                               SideName(d_.source), dm.source_columns[r.source_index],
                               srow[r.source_index].ToDisplay());
  }
  return Status::Ok();
}

Status SyncEngine::Batch::RecordConflict(const EntityMapping& em, const RecordEntry& entry, const Conflict& c) {
  const Value& lv = d_.source == Side::kLegacy ? c.source_value : c.target_value;
  const Value& mv = d_.source == Side::kLegacy ? c.target_value : c.source_value;
  const std::string& key = entry.lkey.empty() ? entry.mkey : entry.lkey;
  int64_t now = Clock::Default()->NowMillis();
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (!c.request.empty()) {
    e_.next_operator_check_ms_ = 0;  // carried out by the next pass
    spdlog::warn("conflict: {} {} {} on the read-only {} side; {}", em.name, key, c.field, SideName(d_.source),
                 c.policy);
  } else if (!c.winner) {
    // Open (manual): one row per record and field, however often and from
    // whichever direction it is seen.
    for (Side db : {Side::kLegacy, Side::kModern}) {
      TANDEM_ASSIGN_OR_RETURN(auto open, e_.db(db).QueryOne("SELECT id FROM _tandem_conflicts WHERE status = 'open' "
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

Status SyncEngine::Batch::InsertInsertConflictOr(const EntityMapping& em, const WorkItem& item, bool with_key,
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

Result<Side> SyncEngine::Batch::NewestSide(const EntityMapping& em, const WorkItem& item, const Row& tkey) {
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
  return NewerSide(ts_s, ts_t, S, e_.config_.primary);
}

Status SyncEngine::Batch::Park(const WorkItem& item, const Status& why) {
  const EntityMapping& em = e_.mapping_->entities[item.entity];
  std::string key = EncodeKey(item.key);
  bool waiting = IsWaiting(why);
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (waiting) {
    spdlog::debug("{} {} {} waits: {}", d_.name, em.name, DisplayKey(item.key), why.message());
    d_.has_waiting = true;
  } else {
    spdlog::warn("{}: put aside {} {}: {}", d_.name, em.name, DisplayKey(item.key), why.message());
  }
  if (d_.parked.insert(ParkedKey(em.name, key)).second) put_aside_.insert(ParkedKey(em.name, key));
  return d_.dst->Exec(
      "INSERT INTO _tandem_parked(direction, entity, source_key, kind, reason, first_seq, last_seq, parked_at_ms, "
      "old_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(direction, entity, source_key) DO UPDATE SET kind = "
      "excluded.kind, reason = excluded.reason, last_seq = CASE WHEN _tandem_parked.last_seq > excluded.last_seq THEN _tandem_parked.last_seq ELSE "
      "excluded.last_seq END, attempts = _tandem_parked.attempts + 1, old_key = coalesce(_tandem_parked.old_key, "
      "excluded.old_key)",
      {Value::Text(d_.name), Value::Text(em.name), Value::Text(key), Value::Text(waiting                                    ? "waiting"
                   : why.code() == StatusCode::kConflict ? "conflict"
                                                         : "rejected"),
       Value::Text(why.message()), Value::Integer(item.seq), Value::Integer(item.seq),
       Value::Integer(Clock::Default()->NowMillis()),
       // A held key change keeps the key the record had, so a retry still finds it.
       item.old_key.empty() ? Value::Null() : Value::Text(EncodeKey(item.old_key))});
}

Result<bool> SyncEngine::Batch::Retry(const WorkItem& item) {
  const EntityMapping& em = e_.mapping_->entities[item.entity];
  const std::string pk = ParkedKey(em.name, EncodeKey(item.key));
  TANDEM_RETURN_IF_ERROR(FlushPending());
  TANDEM_RETURN_IF_ERROR(d_.dst->Savepoint("tandem_retry"));
  in_record_savepoint_ = true;
  Status st = Apply(item);
  in_record_savepoint_ = careful_;
  if (st.ok()) {
    d_.parked.erase(pk);
    put_aside_.erase(pk);
    TANDEM_RETURN_IF_ERROR(d_.dst->ReleaseSavepoint("tandem_retry"));
    return true;
  }
  if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kInternal) return st;
  TANDEM_RETURN_IF_ERROR(st.code() == StatusCode::kConflict ? d_.dst->ReleaseSavepoint("tandem_retry")
                                                             : d_.dst->RollbackToSavepoint("tandem_retry"));
  TANDEM_RETURN_IF_ERROR(Park(item, d_.dst->IsForeignKeyViolation(st) ? Status::NotFound(st.message()) : st));
  TANDEM_RETURN_IF_ERROR(d_.dst->Exec(
      "UPDATE _tandem_parked SET retry_requested = 0, parked_at_ms = ? WHERE direction = ? AND entity = ? AND "
      "source_key = ?",
      {Value::Integer(Clock::Default()->NowMillis()), Value::Text(d_.name), Value::Text(em.name),
       Value::Text(EncodeKey(item.key))}));
  return false;
}

Status SyncEngine::Batch::ApplyOrPark(const WorkItem& item) {
  const EntityMapping& em = e_.mapping_->entities[item.entity];
  std::string pk = ParkedKey(em.name, EncodeKey(item.key));
  if ((!item.old_key.empty() && d_.parked.count(ParkedKey(em.name, EncodeKey(item.old_key)))) || d_.parked.count(pk))
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  if (!item.old_key.empty() && d_.parked.count(ParkedKey(em.name, EncodeKey(item.old_key)))) {
    // The record's key changed while an earlier change of it is put aside: the
    // put-aside row moves to the new key and keeps the key the record had, so
    // the record stays held (a conflict stays a conflict) and a retry or a
    // resolution finds it under its current key.
    const std::string old_enc = EncodeKey(item.old_key), pk_key = EncodeKey(item.key);
    if (!d_.parked.count(pk)) {
      TANDEM_RETURN_IF_ERROR(d_.dst->Exec(
          "UPDATE _tandem_parked SET source_key = ?, old_key = nullif(coalesce(old_key, ?), ?), last_seq = "
          "CASE WHEN last_seq > ? THEN last_seq ELSE ? END WHERE direction = ? AND entity = ? AND source_key = ?",
          {Value::Text(pk_key), Value::Text(old_enc), Value::Text(pk_key), Value::Integer(item.seq), Value::Integer(item.seq),
           Value::Text(d_.name), Value::Text(em.name), Value::Text(old_enc)}));
      d_.parked.erase(ParkedKey(em.name, old_enc));
      d_.parked.insert(pk);
      return Status::Ok();
    }
    return Park(item, Status::Constraint("its key changed while an earlier change of it is put aside (old key " +
                                         DisplayKey(item.old_key) + ")"));
  }
  if (!em.paused.empty() && !d_.parked.count(pk))
    return Park(item, Status::NotFound("entity paused: " + em.paused));
  if (d_.parked.count(pk)) {
    // Later changes to a parked record wait behind it.
    return d_.dst->Exec("UPDATE _tandem_parked SET last_seq = CASE WHEN last_seq > ? THEN last_seq ELSE ? END WHERE "
                        "direction = ? AND entity = ? AND source_key = ?",
                        {Value::Integer(item.seq), Value::Integer(item.seq), Value::Text(d_.name), Value::Text(em.name),
                         Value::Text(EncodeKey(item.key))});
  }
  const bool solo = careful_ || (solo_ && solo_->count(pk));
  if (solo && !careful_) {
    // Written on its own, after the writes held for the records before it.
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
    in_record_savepoint_ = true;
  }
  if (solo) {
    TANDEM_RETURN_IF_ERROR(d_.dst->Savepoint("tandem_record"));
    ++applied_alone_;
  }
  Status st = Apply(item);
  in_record_savepoint_ = careful_;
  if (st.ok()) {
    if (solo) return d_.dst->ReleaseSavepoint("tandem_record");
    return st;
  }
  if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kInternal) return st;
  if (solo) {
    // A conflict wrote only its conflict-queue row: keep that.
    TANDEM_RETURN_IF_ERROR(st.code() == StatusCode::kConflict ? d_.dst->ReleaseSavepoint("tandem_record")
                                                               : d_.dst->RollbackToSavepoint("tandem_record"));
    if (d_.dst->IsForeignKeyViolation(st)) return Park(item, Status::NotFound(st.message()));
  } else if (st.code() == StatusCode::kConstraint && !st.message().starts_with("field '")) {
    // The target rejected a write part-way through this record: redo the batch
    // with a savepoint per record so that only this record is put aside.
    needs_careful_ = true;
    return st;
  }
  return Park(item, st);
}

namespace {
// Deletes a split record: sets its columns of the shared row to NULL.
Status ClearSharedColumns(Connector& db, const DirectionMapping& dm, const Row& key) {
  std::vector<std::string> cols;
  for (auto& r : dm.rules) cols.push_back(r.target_column);
  Row params(cols.size(), Value::Null());
  params.insert(params.end(), key.begin(), key.end());
  return db.Exec("UPDATE " + db.QuoteIdent(dm.target_table) + " SET " + JoinQuoted(db, cols, ", ", " = ?") +
                     WhereKey(db, dm.target_key_columns),
                 params);
}

bool AnyNonNull(const Row& row, size_t from) {
  for (size_t i = from; i < row.size(); ++i)
    if (!row[i].is_null()) return true;
  return false;
}

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

Status SyncEngine::Batch::ReadOnlyEdit(const WorkItem& item) {
  const EntityMapping& em = e_.mapping_->entities[item.entity];
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

Status SyncEngine::Batch::Apply(const WorkItem& item) {
  const EntityMapping& em = e_.mapping_->entities[item.entity];
  const DirectionMapping& dm = em.from(d_.source);
  if (!dm.enabled) return ReadOnlyEdit(item);
  const DirectionSql& sql = d_.sql[item.entity];
  const Side S = d_.source, T = d_.target;
  Connector& dst = *d_.dst;
  const std::string src_key = EncodeKey(item.key);
  const bool key_changed = !item.old_key.empty();
  stored_.clear();

  // 1. What Tandem knows of this record.
  std::optional<RecordEntry> entry = item.entry_before;
  if (entry && entry->gone) entry.reset();

  // 2. Mapped source values (may wait for a parent, or be rejected).
  Row mapped;
  if (item.source_exists) TANDEM_RETURN_IF_ERROR(MapRow(em, *item.source_row, &mapped));

  // 3. The target row, if the record exists there.
  Row tkey;
  bool tkey_known = false;
  if (entry) {
    TANDEM_ASSIGN_OR_RETURN(tkey, DecodeKey(entry->key(T)));
    tkey_known = true;
  } else if (dm.target_row_shared) {
    if (!item.source_exists) return Status::Ok();
    int idx = dm.shared_row_key.source_index;
    TANDEM_ASSIGN_OR_RETURN(Value parent_key, ResolveLookup(dm.shared_row_key, (*item.source_row)[idx]));
    tkey = {parent_key};
    tkey_known = true;
  } else if (dm.target_new_keys == NewKeys::kSame) {
    tkey = item.key;
    tkey_known = true;
  }
  std::optional<Row> trow;
  if (tkey_known) {
    TANDEM_ASSIGN_OR_RETURN(trow, TargetRow(item.entity, tkey));
    ForgetTargetRow(item.entity, tkey);  // this record may write it now
  }
  const size_t tk = dm.target_key_columns.size();
  bool target_exists = trow && (!dm.target_row_shared || AnyNonNull(*trow, tk));
  if (dm.target_row_shared && item.source_exists) {
    // A split record lives in its parent's row: one per row, and it cannot move.
    TANDEM_ASSIGN_OR_RETURN(Value parent_key, ResolveLookup(dm.shared_row_key,
                                                            (*item.source_row)[dm.shared_row_key.source_index]));
    if (entry && !Row{parent_key}.empty() && !(Row{parent_key} == tkey))
      return Status::Constraint(fmt::format("{} moved to another {} ({} -> {}); moving a split record is not "
                                            "supported: delete it and insert it again",
                                            em.name, dm.shared_row_key.lookup_entity, DisplayKey(tkey),
                                            parent_key.ToDisplay()));
    if (!entry && target_exists) {
      TANDEM_ASSIGN_OR_RETURN(auto owner, FindEntry(em.name, T, EncodeKey(tkey)));
      if (owner && !owner->gone && owner->key(S) != src_key)
        return Status::Constraint(fmt::format("the {} row {} already holds {} {}; it has room for one",
                                              SideName(T), DisplayKey(tkey), em.name, owner->key(S)));
    }
  }

  RecordEntry next;  // what this record's entry becomes (bases are set below)
  next.entity = em.name;
  if (entry) {
    next.lkey = entry->lkey;
    next.mkey = entry->mkey;
  }
  const ColumnValues* base_s = entry && entry->base(S) ? &*entry->base(S) : nullptr;
  const ColumnValues* base_t = entry && entry->base(T) ? &*entry->base(T) : nullptr;
  const Side primary = e_.config_.primary;
  AppliedRecord applied{S, em.name, "", "", "", item.captured_at_ms};

  // 4. The plan (engine/merge/merge.h) from what Tandem knows and found.
  RecordFacts facts = RecordFactsOf(dm, item.source_exists, item.source_row, entry.has_value(), base_s, base_t, trow,
                                    target_exists, mapped, e_.config_.sync.detect_conflicts);
  RecordPlan plan = PlanRecord(facts, em.on_delete, S, primary);
  if (plan.action == RecordAction::kNeedsTargetOwner) {
    TANDEM_ASSIGN_OR_RETURN(auto owner, FindEntry(em.name, T, EncodeKey(tkey)));
    facts.target_row_owned = owner && !owner->gone;
    plan = PlanRecord(facts, em.on_delete, S, primary);
  }
  if (plan.action != RecordAction::kMerge) LogPlan(item, plan);
  if (plan.conflict && plan.conflict->kind == ConflictKind::kInsertInsert) {
    // Keys shared (new_keys: same) and the key taken on the target by a row no
    // synced record owns, with other values: the same record inserted on both sides.
    RecordEntry pair;
    pair.entity = em.name;
    pair.lkey = S == Side::kLegacy ? src_key : EncodeKey(tkey);
    pair.mkey = S == Side::kLegacy ? EncodeKey(tkey) : src_key;
    const std::string what = "key " + DisplayKey(tkey);
    TANDEM_RETURN_IF_ERROR(RecordConflict(
        em, pair, RowConflict(*plan.conflict, Value::Text("inserted " + what), Value::Text("inserted " + what))));
    return Status::Conflict(fmt::format("inserted on both sides with the same {}: settle it with 'tandem conflicts "
                                        "resolve --take legacy|modern', which keeps one version",
                                        what));
  }

  // --- the record is gone at the source ---
  if (!item.source_exists) {
    if (plan.action == RecordAction::kNothing) return Status::Ok();
    if (target_exists) {
      // Delete here vs update there: settled by on_delete (default: the primary
      // side's action). When the update wins (kForget), the other direction
      // re-creates the record at the source.
      if (plan.conflict)
        TANDEM_RETURN_IF_ERROR(RecordConflict(em, next, RowConflict(*plan.conflict, Value::Text("deleted"),
                                                                    Value::Text("updated"))));
      if (plan.action == RecordAction::kHold)
        return Status::Conflict("deleted here while updated on the other side (on_delete: manual): settle it with "
                                "'tandem conflicts resolve'");
      if (plan.action == RecordAction::kDelete) {
        if (deferring() && !dm.target_row_shared) {
          writer_.Delete(Tag(item), item.entity, tkey);
        } else {
          TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
          TANDEM_RETURN_IF_ERROR(dm.target_row_shared ? ClearSharedColumns(dst, dm, tkey)
                                                      : dst.Exec(sql.delete_target, tkey));
        }
        applied.op = "delete";
      }
    }
    if (entry || tkey_known) {
      if (!entry) {
        next.lkey = S == Side::kLegacy ? src_key : EncodeKey(tkey);
        next.mkey = S == Side::kLegacy ? EncodeKey(tkey) : src_key;
      }
      next.gone = true;
      next.lbase.reset();
      next.mbase.reset();
      TANDEM_RETURN_IF_ERROR(PutEntry(&next));
    }
    if (!applied.op.empty()) Report(std::move(applied), item.key, tkey);
    return Status::Ok();
  }

  // --- the record exists at the source ---
  ColumnValues new_base_t = base_t ? *base_t : ColumnValues{};
  // An update held back for the set writer (sent with its entry): the rules
  // it sets and their values.
  std::vector<int> update_rules;
  Row update_values;

  if (!target_exists && entry && base_s && (trow.has_value() == dm.target_row_shared)) {
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
    // Deleted on the target since the last sync (that delete is on its way
    // back; a split record's delete clears its columns of the shared row).
    // A change of a mapped source column against it is settled by on_delete.
    if (plan.conflict)
      TANDEM_RETURN_IF_ERROR(RecordConflict(em, next, RowConflict(*plan.conflict, Value::Text("updated"),
                                                                  Value::Text("deleted"))));
    if (plan.action == RecordAction::kHold)
      return Status::Conflict("updated here while deleted on the other side (on_delete: manual): settle it with "
                              "'tandem conflicts resolve'");
    // Unchanged, or the target's delete wins and flows back.
    if (plan.action != RecordAction::kRecreate) return Status::Ok();
    entry.reset();  // the source's update wins: re-create the record
    base_s = nullptr;
    base_t = nullptr;
    if (!dm.target_row_shared) {  // a split record goes back into its parent's row
      tkey_known = dm.target_new_keys == NewKeys::kSame;
      if (tkey_known) tkey = item.key;
    }
  }
  if (!target_exists) {
    TANDEM_RETURN_IF_ERROR(AnyProblem());  // a new record writes every field
    std::vector<std::string> cols;
    Row params;
    if (!tkey_known && dm.target_new_keys == NewKeys::kUuid && !dm.target_row_shared) {
      tkey.clear();
      for (size_t i = 0; i < tk; ++i) tkey.push_back(Value::Text(NewUuid()));
      tkey_known = true;
    }
    if (deferring() && tkey_known && !entry && !key_changed && !dm.target_row_shared) {
      // A new record: its insert and entry go later, with others (FlushPending).
      Row values;
      values.reserve(tk + mapped.size());
      values = tkey;
      values.insert(values.end(), mapped.begin(), mapped.end());
      const std::string tkey_enc = EncodeKey(tkey);
      next.lkey = S == Side::kLegacy ? src_key : tkey_enc;
      next.mkey = S == Side::kLegacy ? tkey_enc : src_key;
      next.gone = false;
      ColumnValues& base = next.base(S).emplace();
      base.reserve(dm.source_columns.size());
      for (size_t i = 0; i < dm.source_columns.size(); ++i) base[dm.source_columns[i]] = (*item.source_row)[i];
      claimed_lkeys_.insert(em.name + '\x1d' + next.lkey);
      CacheEntryKeys(next);
      writer_.Insert(Tag(item), item.entity, std::move(values), std::move(next));
      applied.op = "insert";
      Report(std::move(applied), item.key, tkey);
      return Status::Ok();
    }
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
    if (dm.target_row_shared) {
      if (!trow)
        return Status::NotFound(fmt::format("waiting for the {} row {} that {} shares", SideName(T),
                                            DisplayKey(tkey), em.name));
      for (size_t i = 0; i < dm.rules.size(); ++i) cols.push_back(dm.rules[i].target_column);
      params = mapped;
      params.insert(params.end(), tkey.begin(), tkey.end());
      TANDEM_RETURN_IF_ERROR(dst.Query("UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                                           JoinQuoted(dst, cols, ", ", " = ?") +
                                           WhereKey(dst, dm.target_key_columns) + sql.returning,
                                       params, &stored_));
    } else {
      params.reserve(tk + mapped.size());
      if (tkey_known) params = tkey;
      params.insert(params.end(), mapped.begin(), mapped.end());
      // Where a failed statement spoils the transaction (PostgreSQL), finding
      // out why an insert failed needs a savepoint around it; only records
      // already in a savepoint of their own get one (a batch without them is
      // re-run record by record after a failure anyway).
      const bool aborts = dst.Traits().failed_statement_aborts_transaction;
      const bool guard = aborts && in_record_savepoint_;
      if (guard) TANDEM_RETURN_IF_ERROR(dst.Savepoint("tandem_insert"));
      Status ins = Status::Ok();
      if (tkey_known) {
        ins = sql.returning.empty() ? dst.Exec(sql.insert_with_key, params)
                                    : dst.Query(sql.insert_with_key + sql.returning, params, &stored_);
      } else if (sql.returning.empty()) {
        auto assigned = dst.InsertReturningKey(sql.insert_without_key, params, dm.target_key_columns[0]);
        if (assigned.ok()) tkey = {*assigned};
        else ins = assigned.status();
      } else {
        // The assigned key first, then the stored values.
        ins = dst.Query(sql.insert_without_key + " RETURNING " + dst.QuoteIdent(dm.target_key_columns[0]) + ", " +
                            sql.returning.substr(sizeof(" RETURNING ") - 1),
                        params, &stored_);
        if (ins.ok() && !stored_.empty()) {
          tkey = {stored_[0][0]};
          stored_[0].erase(stored_[0].begin());
        }
      }
      if (!ins.ok()) {
        if (guard) TANDEM_RETURN_IF_ERROR(dst.RollbackToSavepoint("tandem_insert"));
        else if (aborts) return ins;
        return InsertInsertConflictOr(em, item, /*with_key=*/tkey_known, params, ins);
      }
      if (guard) TANDEM_RETURN_IF_ERROR(dst.ReleaseSavepoint("tandem_insert"));
    }
    const bool returned = !sql.returning.empty() && !stored_.empty() && stored_[0].size() == dm.rules.size();
    for (size_t i = 0; i < dm.rules.size(); ++i)
      new_base_t[dm.rules[i].target_column] = returned ? stored_[0][i] : mapped[i];
    applied.op = "insert";
  } else {
    // Three-way merge, column by column: what changed on each side since
    // the base, then each field changed on both sides settled by its policy
    // (MergeFields). The newest side is looked up only when a field needs it.
    std::vector<std::string> set_cols;
    Row params;
    FieldFactsOf(dm, base_s, base_t, *item.source_row, mapped, *trow, problems_, &field_facts_);
    MergeSettings settings{.source = S, .primary = primary, .detect_conflicts = e_.config_.sync.detect_conflicts,
                           .has_target_base = base_t != nullptr, .newest = std::nullopt};
    MergeFields(field_facts_, settings, &merge_);
    if (merge_.verdict == MergeVerdict::kNeedsNewest) {
      TANDEM_ASSIGN_OR_RETURN(settings.newest, NewestSide(em, item, tkey));
      MergeFields(field_facts_, settings, &merge_);
    }
    LogPlan(item, plan, field_facts_, &merge_);
    // A changed value that must not be written puts the change aside
    // before anything of this record is written.
    if (merge_.verdict == MergeVerdict::kReject) return Status::Constraint(problems_[merge_.rejected]);
    std::string manual_fields;
    for (size_t i = 0; i < dm.rules.size(); ++i) {
      const FieldDecision& d = merge_.fields[i];
      if (!d.conflict) continue;
      const FieldFacts& f = field_facts_[i];
      TANDEM_RETURN_IF_ERROR(RecordConflict(em, next, {dm.rules[i].field, *f.source, *f.target,
                                                       f.base ? std::optional<Value>(*f.base) : std::nullopt, d.winner,
                                                       ConflictKind::kUpdateUpdate, PolicyName(dm.rules[i].policy)}));
      if (!d.winner) manual_fields += (manual_fields.empty() ? "" : ", ") + dm.rules[i].field;
    }
    if (merge_.verdict == MergeVerdict::kHold) {
      // Neither version is applied: the record waits in the conflict queue.
      return Status::Conflict(fmt::format("{} changed on both sides (policy manual): settle it with 'tandem conflicts "
                                          "resolve'",
                                          manual_fields));
    }
    for (size_t i = 0; i < dm.rules.size(); ++i) {
      const ColumnRule& r = dm.rules[i];
      const FieldDecision& d = merge_.fields[i];
      if (d.action == FieldAction::kTakeSource) {
        set_cols.push_back(r.target_column);
        update_rules.push_back(static_cast<int>(i));
        params.push_back(mapped[i]);
      }
      if (d.new_base == FieldBase::kSource) new_base_t[r.target_column] = mapped[i];
      else if (d.new_base == FieldBase::kTarget) new_base_t[r.target_column] = (*trow)[tk + i];
    }
    if (!set_cols.empty() && deferring() && !key_changed) {
      update_values = std::move(params);  // sent by writer_ with the entry, below
      applied.op = "update";
    } else if (!set_cols.empty()) {
      update_rules.clear();
      TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
      params.insert(params.end(), tkey.begin(), tkey.end());
      std::string update = "UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                           JoinQuoted(dst, set_cols, ", ", " = ?") + WhereKey(dst, dm.target_key_columns);
      if (sql.returning.empty()) {
        TANDEM_RETURN_IF_ERROR(dst.Exec(update, params));
      } else {
        // The written columns as stored become their base.
        TANDEM_RETURN_IF_ERROR(dst.Query(update + " RETURNING " + JoinQuoted(dst, set_cols, ", "), params, &stored_));
        if (!stored_.empty() && stored_[0].size() == set_cols.size())
          for (size_t c = 0; c < set_cols.size(); ++c) new_base_t[set_cols[c]] = stored_[0][c];
      }
      applied.op = "update";
    }
  }

  // Key change at the source: move the target key too when keys are shared,
  // and leave a gone entry for the old legacy key.
  std::string tkey_enc = EncodeKey(tkey);
  if (key_changed && entry) {
    TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
    if (dm.target_new_keys == NewKeys::kSame && !dm.target_row_shared && item.key != item.old_key) {
      Row params = item.key;
      params.insert(params.end(), tkey.begin(), tkey.end());
      TANDEM_RETURN_IF_ERROR(dst.Exec("UPDATE " + dst.QuoteIdent(dm.target_table) + " SET " +
                                          JoinQuoted(dst, dm.target_key_columns, ", ", " = ?") +
                                          WhereKey(dst, dm.target_key_columns),
                                      params));
      tkey = item.key;
      tkey_enc = src_key;
      applied.op = "update";
    }
    std::string old_lkey = S == Side::kLegacy ? EncodeKey(item.old_key) : entry->lkey;
    std::string new_lkey = S == Side::kLegacy ? src_key : tkey_enc;
    if (old_lkey != new_lkey && !claimed_lkeys_.count(em.name + '\x1d' + old_lkey)) {
      RecordEntry tomb = *entry;
      tomb.gone = true;
      tomb.lbase.reset();
      tomb.mbase.reset();
      TANDEM_RETURN_IF_ERROR(PutEntry(&tomb));
    }
  }
  next.lkey = S == Side::kLegacy ? src_key : tkey_enc;
  next.mkey = S == Side::kLegacy ? tkey_enc : src_key;
  next.gone = false;
  // Merge the new bases over the old ones (other columns keep their base).
  ColumnValues merged_s = base_s ? *base_s : ColumnValues{};
  for (size_t i = 0; i < dm.source_columns.size(); ++i) merged_s[dm.source_columns[i]] = (*item.source_row)[i];
  bool unchanged = entry && !key_changed && applied.op.empty() && base_s && base_t && *base_s == merged_s &&
                   *base_t == new_base_t;
  if (!unchanged) {
    next.base(S) = std::move(merged_s);
    next.base(T) = std::move(new_base_t);
    if (!update_rules.empty()) {
      // The held-back update carries the entry: its target base gets what
      // the update stores. The caches and claims are kept as PutEntry does.
      claimed_lkeys_.insert(em.name + '\x1d' + next.lkey);
      CacheEntryKeys(next);
      writer_.Update(Tag(item), item.entity, tkey, std::move(update_rules), std::move(update_values),
                     std::move(next));
    } else {
      TANDEM_RETURN_IF_ERROR(PutEntry(&next));
    }
  }
  if (applied.op.empty()) {
    e_.stats_[S == Side::kLegacy ? 0 : 1].records_unchanged++;
    return Status::Ok();
  }
  Report(std::move(applied), item.key, tkey);
  return Status::Ok();
}

// ---------------------------------------------------------------------------

SyncEngine::~SyncEngine() = default;

Result<std::unique_ptr<SyncEngine>> SyncEngine::Open(const Config& config) {
  auto engine = std::unique_ptr<SyncEngine>(new SyncEngine());
  TANDEM_RETURN_IF_ERROR(engine->Init(config));
  return engine;
}

Status SyncEngine::Init(const Config& config) {
  config_ = config;
  ConnectorOptions opts;
  opts.busy_timeout_ms = config_.sync.busy_timeout_ms;
  TANDEM_ASSIGN_OR_RETURN(legacy_, OpenConnector(config_.legacy.resolved, opts));
  TANDEM_ASSIGN_OR_RETURN(modern_, OpenConnector(config_.modern.resolved, opts));
  // One engine per pair of databases: versions and positions assume a single
  // writer of Tandem state. Keyed by the legacy database's identity (engine_lock.h).
  auto lock = EngineLock::Acquire(config_.legacy.resolved, *legacy_);
  if (!lock.ok() && lock.status().code() == StatusCode::kBusy)
    return Status::Busy(lock.status().message() + "; stop it first, or use 'tandem retry' which asks the running process");
  TANDEM_RETURN_IF_ERROR(lock.status());
  engine_lock_ = std::move(lock).value();
  // The modern database's too: it may be another pair's (one modern database
  // given two legacy ones, or a config with the sides swapped).
  auto modern_lock = EngineLock::Acquire(config_.modern.resolved, *modern_);
  if (!modern_lock.ok() && modern_lock.status().code() == StatusCode::kBusy)
    return Status::Busy(modern_lock.status().message() + " (the modern database is synced by another engine, maybe "
                        "of another pair); stop it first");
  TANDEM_RETURN_IF_ERROR(modern_lock.status());
  modern_lock_ = std::move(modern_lock).value();
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(bool installed, db(s).IsInstalled());
    if (!installed)
      return Status::InvalidArgument(fmt::format("capture is not installed on the {} database ({}): run 'tandem "
                                                 "install -c {}' first",
                                                 SideName(s), db(s).Describe(), config_.path));
    TANDEM_ASSIGN_OR_RETURN(auto upgrade, db(s).UpgradeControlTablesSql());
    if (!upgrade.empty())
      return Status::InvalidArgument(fmt::format("Tandem's control tables on the {} database ({}) were made by an older "
                                                 "version: run 'tandem install -c {}' to upgrade them (key maps and "
                                                 "pending changes are kept)",
                                                 SideName(s), db(s).Describe(), config_.path));
  }
  TANDEM_ASSIGN_OR_RETURN(expr_db_, OpenExpressionDatabase());
  // An entity whose tables do not match the mapping (changed while no
  // engine ran) starts paused; the others sync.
  CompileOutcome compiled = CompileMapping(config_, *legacy_, *modern_, *expr_db_, nullptr, /*pause_failing=*/true);
  if (!compiled.mapping) {
    std::string msg = "the configuration has problems:";
    for (auto& p : compiled.problems) msg += "\n  " + p.ToString();
    // A database that could not be read for a passing reason: retry, not a config error.
    return compiled.retryable ? Status::Unavailable(msg) : Status::InvalidArgument(msg);
  }
  mapping_ = std::move(compiled.mapping);
  TANDEM_RETURN_IF_ERROR(PauseForBrokenCapture());
  for (const EntityMapping& em : mapping_->entities)
    if (!em.paused.empty())
      spdlog::error("entity '{}' is paused: {}; its changes are put aside (waiting) until it is fixed; the other "
                    "entities sync",
                    em.name, em.paused);
  for (const EntityConfig& e : config_.entities) {
    schema_tables_[0].push_back(e.legacy.table);
    schema_tables_[1].push_back(e.modern.table);
  }
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const int i = s == Side::kLegacy ? 0 : 1;
    TANDEM_ASSIGN_OR_RETURN(schema_version_[i], db(s).SchemaVersion(schema_tables_[i]));
    TANDEM_ASSIGN_OR_RETURN(schema_signature_[i], SchemaSignature(s));
  }
  records_ = std::make_unique<RecordStore>(*legacy_, *modern_);
  TANDEM_RETURN_IF_ERROR(records_->Init());

  for (Side source : {Side::kLegacy, Side::kModern}) {
    auto dir = std::make_unique<Direction>();
    dir->source = source;
    dir->target = Other(source);
    dir->src = &db(source);
    dir->dst = &db(dir->target);
    dir->name = DirectionName(source);
    dir->target_single_writer = dir->dst->Traits().single_writer;
    dir->max_txn_ms = config_.sync.max_txn_ms >= 0 ? config_.sync.max_txn_ms : dir->target_single_writer ? 500 : 0;
    dir->max_txn_changes = config_.sync.max_txn_changes;
    TANDEM_RETURN_IF_ERROR(BindMapping(*dir));
    TANDEM_ASSIGN_OR_RETURN(auto pos, dir->dst->QueryOne("SELECT seq, applied_total, cursor FROM _tandem_position "
                                                         "WHERE direction = ?",
                                                         {Value::Text(dir->name)}));
    if (pos) {
      dir->position = (*pos)[0].as_integer();
      dir->applied_total = (*pos)[1].as_integer();
    }
    TANDEM_RETURN_IF_ERROR(dir->src->ResumeAt(dir->position, pos && !(*pos)[2].is_null() ? (*pos)[2].as_bytes() : ""));
    TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(*dir));
    std::vector<Row> rows;
    TANDEM_RETURN_IF_ERROR(dir->dst->Query("SELECT entity, source_key, kind FROM _tandem_parked WHERE direction = ?",
                                           {Value::Text(dir->name)}, &rows));
    for (auto& r : rows) {
      if (r[2].as_bytes() == "waiting") dir->has_waiting = true;
      dir->parked.insert(ParkedKey(r[0].as_bytes(), r[1].as_bytes()));
    }
    spdlog::info("{}: resuming after change {}", dir->name, dir->position);
    boundaries_[source == Side::kLegacy ? 0 : 1] = std::make_unique<CommitBoundaries>(
        config_.system(source).resolved,
        config_.sync.sample_commit_boundaries && db(source).SupportsBoundarySampling(), config_.sync.busy_timeout_ms,
        config_.sync.poll_interval_ms, config_.sync.batch_size);
    directions_.push_back(std::move(dir));
  }
  return Status::Ok();
}

Result<std::string> SyncEngine::SchemaSignature(Side s) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db(s).SchemaVersionLater(schema_tables_[s == Side::kLegacy ? 0 : 1], {}, &rows));
  TANDEM_RETURN_IF_ERROR(db(s).Collect());
  return rows.empty() ? std::string() : rows[0][0].ToCodeText();
}

Result<bool> SyncEngine::WatchSchema(int64_t now_ms) {
  bool changed = false;
  std::string seen[2];
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const int i = s == Side::kLegacy ? 0 : 1;
    seen[i] = schema_version_[i];
    // SQLite's version is a read of the file header; a server's is a
    // catalog query, made at most every kSchemaCheckIntervalMs.
    const bool server = config_.system(s).resolved.rfind("sqlite:", 0) != 0;
    if (server && now_ms < schema_checked_ms_[i] + kSchemaCheckIntervalMs && !schema_check_owed_) continue;
    schema_checked_ms_[i] = now_ms;
    TANDEM_ASSIGN_OR_RETURN(seen[i], db(s).SchemaVersion(schema_tables_[i]));
    changed |= seen[i] != schema_version_[i];
  }
  schema_check_owed_ = false;
  if (!changed) return false;
  // A first compile without the running mapping: a database that cannot be
  // read now (a lost connection) must not pause anything.
  CompileOutcome fresh = CompileMapping(config_, *legacy_, *modern_, *expr_db_);
  if (!fresh.mapping && fresh.retryable)
    return Status::Unavailable("a table definition changed and the databases cannot be read to check the mapping "
                               "again: " + (fresh.problems.empty() ? std::string() : fresh.problems[0].ToString()));
  std::set<std::string> was_paused;
  for (const EntityMapping& em : mapping_->entities)
    if (!em.paused.empty()) was_paused.insert(em.name);
  CompileOutcome next = fresh.mapping ? std::move(fresh)
                                      : CompileMapping(config_, *legacy_, *modern_, *expr_db_, mapping_.get());
  if (!next.mapping) {
    // Not an entity's problem (cannot happen with the config unchanged): stop, loudly.
    std::string msg = "the mapping no longer holds after a table definition changed:";
    for (auto& p : next.problems) msg += "\n  " + p.ToString();
    return Status::InvalidArgument(msg);
  }
  schema_version_[0] = seen[0];
  schema_version_[1] = seen[1];
  // The signatures apply transactions compare with, as the mapping was compiled.
  TANDEM_ASSIGN_OR_RETURN(schema_signature_[0], SchemaSignature(Side::kLegacy));
  TANDEM_ASSIGN_OR_RETURN(schema_signature_[1], SchemaSignature(Side::kModern));
  mapping_ = std::move(next.mapping);
  TANDEM_RETURN_IF_ERROR(PauseForBrokenCapture());
  bool resumed = false;
  for (const EntityMapping& em : mapping_->entities) {
    if (!em.paused.empty()) {
      spdlog::error("entity '{}' is paused after a schema change: {}; its changes are put aside (waiting) until it "
                    "is fixed",
                    em.name, em.paused);
    } else if (was_paused.count(em.name)) {
      spdlog::info("entity '{}' resumes: its mapping holds again; its changes put aside meanwhile are applied",
                   em.name);
      resumed = true;
    }
  }
  if (was_paused.empty() && std::none_of(mapping_->entities.begin(), mapping_->entities.end(),
                                         [](const EntityMapping& em) { return !em.paused.empty(); }))
    spdlog::info("a table definition changed; the mapping was checked again and still holds");
  for (auto& dir : directions_) {
    TANDEM_RETURN_IF_ERROR(BindMapping(*dir));
    if (resumed) dir->has_waiting = true;
  }
  return true;
}

Status SyncEngine::PauseForBrokenCapture() {
  const int64_t now = Clock::Default()->NowMillis();
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(auto issues, CheckCapture(*mapping_, s, db(s)));
    for (const CaptureIssue& issue : issues) {
      const std::string what = fmt::format("capture on the {} table '{}' is broken: {}", SideName(s), issue.table,
                                           issue.problem);
      TANDEM_ASSIGN_OR_RETURN(bool recorded, RecordCaptureGap(db(s), issue.table, issue.problem, now));
      if (recorded) spdlog::error("{}; {}", what, CaptureGapAdvice(config_.path));
      for (EntityMapping& em : mapping_->entities) {
        const EntityConfig* e = config_.FindEntity(em.name);
        if (em.paused.empty() && e && strcasecmp(e->side(s).table.c_str(), issue.table.c_str()) == 0)
          em.paused = fmt::format("{}; run 'tandem install -c {}' to repair it (a gap to reconcile is recorded)", what,
                                  config_.path);
      }
    }
  }
  return Status::Ok();
}

// Binds `dir` to mapping_: captured table ids to their specs, and the SQL
// of each entity (Init, and again after the mapping is compiled anew).
Status SyncEngine::BindMapping(Direction& dir) {
  const Side source = dir.source;
  // Table ids as installed.
  std::vector<Row> rows;
  dir.tables.clear();
  dir.sql.clear();
  dir.written_tables.clear();
  for (const EntityMapping& em : mapping_->entities) {
    const DirectionMapping& dm = em.from(dir.source);
    if (!em.paused.empty() || !dm.enabled) continue;
    if (std::find(dir.written_tables.begin(), dir.written_tables.end(), dm.target_table) == dir.written_tables.end())
      dir.written_tables.push_back(dm.target_table);
  }
  TANDEM_RETURN_IF_ERROR(dir.src->Query("SELECT table_id, table_name FROM _tandem_capture", {}, &rows));
  for (const CapturedTableSpec& spec : mapping_->captured_on(source)) {
    bool found = false;
    for (auto& r : rows) {
      if (strcasecmp(r[1].as_bytes().c_str(), spec.table.c_str()) == 0) {
        dir.tables[static_cast<int>(r[0].as_integer())] = &spec;
        found = true;
      }
    }
    if (!found)
      return Status::InvalidArgument(fmt::format("table '{}' on the {} database is not captured yet: run 'tandem "
                                                 "install -c {}' after changing the config",
                                                 spec.table, SideName(source), config_.path));
  }
  for (const EntityMapping& em : mapping_->entities)
    dir.sql.push_back(BuildDirectionSql(*dir.src, *dir.dst, em.from(source)));
  return Status::Ok();
}

Status SyncEngine::ReloadParkedIfChanged(Direction& dir, bool force) {
  // An operator may retry or discard put-aside changes from another process.
  if (!force && !operator_checks_due_) return Status::Ok();
  TANDEM_ASSIGN_OR_RETURN(auto n, dir.dst->QueryOne("SELECT count(*), coalesce(sum(CASE WHEN kind = 'waiting' OR "
                                                    "retry_requested <> 0 THEN 1 ELSE 0 END), 0), coalesce(sum(CASE "
                                                    "WHEN retry_requested <> 0 THEN 1 ELSE 0 END), 0) FROM "
                                                    "_tandem_parked WHERE direction = ?",
                                                    {Value::Text(dir.name)}));
  if (!force && static_cast<size_t>((*n)[0].as_integer()) == dir.parked.size() && (*n)[2].as_integer() == 0)
    return Status::Ok();
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(
      dir.dst->Query("SELECT entity, source_key FROM _tandem_parked WHERE direction = ?", {Value::Text(dir.name)}, &rows));
  dir.parked.clear();
  for (auto& r : rows) dir.parked.insert(ParkedKey(r[0].as_bytes(), r[1].as_bytes()));
  dir.has_waiting = (*n)[1].as_integer() > 0;
  return Status::Ok();
}

Status SyncEngine::RetryWaiting(Direction& dir, Batch& batch) {
  // Bounded per batch so that many orphans cannot make write transactions long;
  // the least recently tried go first.
  constexpr int kMaxRetriesPerBatch = 256;
  std::vector<Row> rows;
  // A paused entity's changes wait for it to resume, not for a retry.
  std::string not_paused;
  Row params{Value::Text(dir.name)};
  for (const EntityMapping& em : mapping_->entities) {
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
    auto it = mapping_->index_by_name.find(r[1].as_bytes());
    if (it != mapping_->index_by_name.end()) ordered.emplace_back(it->second, &r);
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

// One work item per (entity, record) from a chunk of log rows, in log order.
// A key change moves the record's item to its new key, so chains collapse
// (1->5->6 is one move 1->6; 1->100->1 is no move at all) and later changes
// under the new key join it. A delete followed by an insert of the same key
// marks a new record reusing the key. A record whose key is taken over by a
// moved record is gone.
void SyncEngine::BuildWorkItems(const Direction& dir, const std::vector<CapturedChange>& changes,
                                std::vector<WorkItem>* items) {
  items->clear();
  std::unordered_map<std::string, size_t> at;  // entity \x1d current key -> item
  for (const CapturedChange& c : changes) {
    auto it = dir.tables.find(c.table_id);
    if (it == dir.tables.end()) continue;  // a table no longer mapped
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

Result<int64_t> SyncEngine::Drain(Direction& dir) {
  CommitBoundaries& boundaries = *boundaries_[dir.source == Side::kLegacy ? 0 : 1];
  // More than a batch behind: apply up to a pinned snapshot's boundary, read
  // in that snapshot (see commit_boundaries.h). The batch reads the source
  // through dir.src, so it points at the pinned connection until we return.
  std::optional<CommitBoundaries::Snapshot> pinned;
  Connector* own_src = dir.src;
  struct RestoreSource {
    Direction& dir;
    Connector* own;
    std::optional<CommitBoundaries::Snapshot>& pinned;
    ~RestoreSource() {
      dir.src = own;
      if (pinned) pinned->db->EndRead();
    }
  } restore{dir, own_src, pinned};
  if (!dir.stopped.empty()) return int64_t{0};  // until the operator accepts the source (source_identity.h)
  if (dir.position_uncertain) {
    TANDEM_ASSIGN_OR_RETURN(auto stored, dir.dst->QueryOne("SELECT seq, applied_total, cursor, source_mark FROM "
                                                           "_tandem_position WHERE direction = ?",
                                                           {Value::Text(dir.name)}));
    if (stored && (*stored)[0].as_integer() != dir.position) {
      spdlog::info("{}: the last batch was committed after all (position {})", dir.name, (*stored)[0].as_integer());
      dir.position = (*stored)[0].as_integer();
      dir.applied_total = (*stored)[1].as_integer();
      dir.source_mark = (*stored)[3].is_null() ? "" : (*stored)[3].as_bytes();
    }
    TANDEM_RETURN_IF_ERROR(dir.src->ResumeAt(
        dir.position, stored && !(*stored)[2].is_null() ? (*stored)[2].as_bytes() : ""));
    // Positions after the stored one may be numbered afresh (PostgreSQL
    // windows): boundaries noted for the failed batch no longer hold.
    boundaries_[dir.source == Side::kLegacy ? 0 : 1]->ForgetBelow(std::numeric_limits<int64_t>::max());
    dir.position_uncertain = false;
  }
  // A batch whose set writes the target rejected runs again: first with the
  // records found rejected applied on their own (the rest still in sets),
  // then, if that fails too, every record on its own.
  std::unordered_set<std::string> suspects;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const bool careful = attempt == 2;
    if (attempt == 1 && suspects.empty()) continue;
    Connector& dst = *dir.dst;
    int64_t upto = 0;
    if (pinned) {
      upto = pinned->seq;  // still inside its read transaction (a careful re-run)
    } else {
      TANDEM_RETURN_IF_ERROR(own_src->BeginReadAfter(dir.position));
      auto upto_r = own_src->MaxChangeSeq();
      if (!upto_r.ok()) {
        own_src->EndRead();
        return upto_r.status();
      }
      upto = *upto_r;
      // Before anything is applied: the change at the position is still the
      // one applied (a source restored in place while running shows here).
      if (upto != dir.position && !dir.source_mark.empty()) {
        auto now_mark = own_src->HistoryMark(dir.position);
        if (!now_mark.ok() || *now_mark != dir.source_mark) {
          own_src->EndRead();
          if (!now_mark.ok()) return now_mark.status();
          TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(dir));
          if (!dir.stopped.empty()) return int64_t{0};
          return Status::Unavailable(fmt::format("{}: the source's history mark changed; checked again", dir.name));
        }
      }
      if (upto - dir.position > config_.sync.batch_size) {
        pinned = boundaries.TakeSnapshot(dir.position, upto, config_.sync.batch_size,
                                         kMaxPinnedSpanBatches * config_.sync.batch_size);
        if (pinned) {
          own_src->EndRead();
          dir.src = pinned->db.get();
          upto = pinned->seq;
        }
      }
    }
    Connector& src = *dir.src;
    // A pinned snapshot's read transaction lasts until this drain returns.
    auto end_read = [&] {
      if (!pinned) src.EndRead();
    };
    if (Status rs = ReloadParkedIfChanged(dir, /*force=*/attempt > 0); !rs.ok()) {
      end_read();
      return rs;
    }
    if (upto <= dir.position && !dir.has_waiting) {
      end_read();
      return int64_t{0};
    }
    Status st = dst.BeginApply();
    if (!st.ok()) {
      end_read();
      return st;
    }
    // The write lock is held from here: sync.max_txn_ms counts from now.
    const auto txn_started = std::chrono::steady_clock::now();
    auto txn_ms = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - txn_started).count();
    };
    const double budget_ms = dir.max_txn_ms * (1.0 - kCommitShareOfTxnBound);
    // Fencing: a process killed while its COMMIT was on the way may still be
    // committing on a server (PostgreSQL keeps going without its client).
    // Wait for any such transaction of this direction, then check that the
    // position is still ours; if not, reload it and start over.
    // The stored position is read in the pipeline: it arrives with the
    // first chunk's prefetch, and is checked before anything is written.
    std::vector<Row> fenced_position;
    bool fence_checked = !dst.Traits().fences_apply;
    if (!fence_checked) {
      st = dst.FenceApply(dir.name);
      if (st.ok())
        st = dst.QueryLater("SELECT seq FROM _tandem_position WHERE direction = ?", {Value::Text(dir.name)},
                            &fenced_position);
      if (!st.ok()) {
        dst.RollbackApply();
        end_read();
        return st;
      }
    }
    // The target tables' definitions, as this transaction writes them (locked
    // against ALTER TABLE until it ends): checked with the fence, before
    // anything is written, so a column retyped a moment ago is never written
    // with the old type's values.
    std::vector<Row> target_schema;
    const int ti = dir.target == Side::kLegacy ? 0 : 1;
    st = dst.SchemaVersionLater(schema_tables_[ti], dir.written_tables, &target_schema);
    if (!st.ok()) {
      dst.RollbackApply();
      end_read();
      return st;
    }
    fence_checked = false;
    auto check_fence = [&]() -> Status {
      if (fence_checked) return Status::Ok();
      TANDEM_RETURN_IF_ERROR(dst.Collect());
      fence_checked = true;
      if (target_schema.empty() || target_schema[0][0].ToCodeText() != schema_signature_[ti]) {
        schema_check_owed_ = true;
        return Status::Unavailable(fmt::format("{}: a mapped table's definition changed on the {} database; the "
                                               "mapping is checked again before anything is written",
                                               dir.name, SideName(dir.target)));
      }
      if (!dst.Traits().fences_apply) return Status::Ok();
      if ((fenced_position.empty() ? 0 : fenced_position[0][0].as_integer()) == dir.position) return Status::Ok();
      dir.position_uncertain = true;
      return Status::Unavailable(fmt::format("{}: the position moved (a previous process's last batch committed "
                                             "after it stopped); reloading it",
                                             dir.name));
    };
    Batch batch(*this, dir, careful, attempt == 1 ? &suspects : nullptr);
    int64_t pos = dir.position, consumed = 0, source_at_ms = 0;
    bool ended_early = false;  // this target transaction ends at a commit boundary before the snapshot end
    std::vector<CapturedChange> changes;
    std::vector<WorkItem> items;
    auto fail = [&](const Status& s) {
      dst.RollbackApply();
      end_read();
      return s;
    };
    boundaries.Note(upto);  // this snapshot's end is a commit boundary too
    int64_t read_upto = upto;
    size_t since_pin_check = 0;  // records applied since the last PinIfBehind
    bool time_bound_hit = false;  // this transaction ends early because it used its sync.max_txn_ms
    bool split = false;           // ... and inside a source transaction (or where its end is unknown)
    while (pos < read_upto && st.ok()) {
      changes.clear();
      // Read and prefetch in chunks of at most kChunkChanges, so memory stays
      // bounded whatever batch_size (changes per target transaction) is.
      // Under a transaction bound, a chunk is what fits in the time left at
      // the rate seen so far, so the bound is kept to within one small chunk.
      int64_t limit = std::min(config_.sync.batch_size, kChunkChanges);
      if (dir.max_txn_ms > 0) {
        const int64_t fits = dir.changes_per_ms > 0
                                 ? static_cast<int64_t>((budget_ms - txn_ms()) * dir.changes_per_ms)
                                 : kFirstBoundedChunk;
        limit = std::min(limit, std::max(kMinBoundedChunk, fits));
      }
      if (dir.max_txn_changes > 0) limit = std::min(limit, std::max<int64_t>(1, dir.max_txn_changes - consumed));
      st = src.ReadChanges(pos, read_upto, static_cast<size_t>(limit), &changes);
      if (!st.ok() || changes.empty()) break;
      BuildWorkItems(dir, changes, &items);
      st = batch.Prefetch(items);
      if (st.ok()) st = check_fence();
      if (!st.ok()) break;
      // Records whose key a new record took over (deleted, then inserted
      // again) go first, so their delete cannot hit the new record's row;
      // then parents before children for rows that exist; children before
      // parents for deletes.
      std::stable_sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) {
        auto rank = [](const WorkItem& w) { return w.superseded ? 0 : w.source_exists ? 1 : 2; };
        if (rank(a) != rank(b)) return rank(a) < rank(b);
        return a.source_exists ? a.entity < b.entity : a.entity > b.entity;
      });
      for (const WorkItem& w : items) {
        st = batch.ApplyOrPark(w);
        if (!st.ok()) break;
        // A long stretch: changes may be piling up behind it. A source that
        // needs it pins a snapshot about every batch_size changes, where the
        // next batches will end.
        if (++since_pin_check >= kPinCheckChanges) {
          own_src->PinIfBehind(config_.sync.batch_size);
          since_pin_check = 0;
        }
      }
      if (st.ok()) st = batch.FlushPending();
      if (!st.ok()) break;
      pos = changes.back().seq;
      source_at_ms = changes.back().captured_at_ms;
      consumed += static_cast<int64_t>(changes.size());
      if (dir.max_txn_ms > 0 && txn_ms() > 1) dir.changes_per_ms = static_cast<double>(consumed) / txn_ms();
      // The bounds: end this transaction here when the next smallest chunk
      // would not fit. At a known commit boundary that is a clean end;
      // elsewhere the source transaction is split (sync.split_transactions),
      // or else kept whole up to its end.
      const bool changes_bound = dir.max_txn_changes > 0 && consumed >= dir.max_txn_changes;
      const bool time_bound =
          dir.max_txn_ms > 0 && (budget_ms - txn_ms()) * std::max(dir.changes_per_ms, 1e-3) < kMinBoundedChunk;
      if ((changes_bound || time_bound) && pos < read_upto) {
        auto boundary = boundaries.NextAtOrAfter(pos, upto);
        const bool at_boundary = boundary && *boundary == pos;
        if (at_boundary || (config_.sync.split_transactions &&
                            (src.SupportsBoundarySampling() || !src.PositionCursor(pos).empty()))) {
          split = !at_boundary;
          time_bound_hit = time_bound;
          ended_early = true;
          break;
        }
        if (boundary) read_upto = std::min(read_upto, *boundary);
      }
      if (!pinned && consumed >= config_.sync.batch_size && pos < read_upto) {
        // Keep target transactions short: end this one at the next known
        // commit boundary, which is never inside a source transaction.
        auto boundary = boundaries.NextAtOrAfter(pos, upto);
        if (boundary && *boundary == pos) {
          ended_early = true;
          break;
        }
        if (boundary) read_upto = *boundary;
      }
    }
    if (st.ok() && !ended_early) pos = std::max(pos, read_upto);
    ended_early = pos < upto;
    if (st.ok()) st = check_fence();
    if (st.ok() && dir.has_waiting) st = RetryWaiting(dir, batch);
    if (!st.ok()) {
      fail(st);
      // The in-memory parked set may hold changes of the rolled-back batch.
      if (Status rs = ReloadParkedIfChanged(dir, /*force=*/true); !rs.ok()) return rs;
      if (batch.needs_careful() && !careful) {
        if (attempt == 0) suspects = batch.suspects();
        if (attempt == 0 && !suspects.empty()) {
          spdlog::info("{}: the target rejected {} record(s) of a set write; re-running the batch with those applied "
                       "one by one",
                       dir.name, suspects.size());
          attempt = 0;  // the loop's ++ makes it 1
        } else {
          spdlog::info("{}: a record was rejected mid-write; re-running the batch record by record", dir.name);
          attempt = 1;  // the loop's ++ makes it 2: careful
        }
        continue;
      }
      return st;
    }
    int64_t applied_total = dir.applied_total + consumed;
    std::string cursor = src.PositionCursor(pos);
    std::string mark;  // the source's history at the new position, stored with it (source_identity.h)
    if (st.ok()) {
      auto m = src.HistoryMark(pos);
      if (m.ok()) mark = std::move(*m);
      else st = m.status();
    }
    if (cursor.empty() && !src.SupportsBoundarySampling() && pos != 0)  // a PostgreSQL position needs its snapshot
      st = Status::Internal(fmt::format("{}: position {} is not the end of a change window; not committing it",
                                        dir.name, pos));
    // The position and statistics travel with the commit (ExecLater).
    if (st.ok()) st = dst.ExecLater(
        "INSERT INTO _tandem_position(direction, seq, applied_at_ms, source_at_ms, applied_total, cursor, source_id, "
        "source_mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(direction) DO UPDATE SET seq = excluded.seq, "
        "applied_at_ms = excluded.applied_at_ms, source_at_ms = excluded.source_at_ms, applied_total = "
        "excluded.applied_total, cursor = excluded.cursor, source_id = excluded.source_id, source_mark = "
        "excluded.source_mark",
        {Value::Text(dir.name), Value::Integer(pos), Value::Integer(Clock::Default()->NowMillis()),
         Value::Integer(source_at_ms), Value::Integer(applied_total),
         cursor.empty() ? Value::Null() : Value::Text(cursor), Value::Text(dir.source_id), Value::Text(mark)});
    for (auto& [entity, n] : batch.written_by_entity()) {
      if (!st.ok()) break;
      st = dst.ExecLater(
          "INSERT INTO _tandem_entity_stats(direction, entity, last_applied_at_ms, applied_total) VALUES (?, ?, ?, ?) "
          "ON CONFLICT(direction, entity) DO UPDATE SET last_applied_at_ms = excluded.last_applied_at_ms, "
          "applied_total = _tandem_entity_stats.applied_total + excluded.applied_total",
          {Value::Text(dir.name), Value::Text(entity), Value::Integer(Clock::Default()->NowMillis()), Value::Integer(n)});
    }
    if (st.ok()) st = dst.CommitApply();
    if (!st.ok()) {
      fail(st);
      (void)ReloadParkedIfChanged(dir, /*force=*/true);
      // A connection lost during COMMIT leaves its outcome unknown: the
      // position committed with the data says which, next time.
      dir.position_uncertain = true;
      return st;
    }
    end_read();
    if (split)
      spdlog::info("{}: split a source transaction at change {}: {} changes in {:.0f} ms reached the target "
                   "transaction bound (sync.max_txn_ms {}, max_txn_changes {}); the rest follows in the next one",
                   dir.name, pos, consumed, txn_ms(), dir.max_txn_ms, dir.max_txn_changes);
    // Step aside: a writer waiting for the lock this transaction held gets in
    // before the next one takes it (as soon as it commits, or kStepAsideMs).
    if (time_bound_hit && dir.target_single_writer) {
      (void)dst.WaitForCommit(std::chrono::milliseconds(0));
      (void)dst.WaitForCommit(std::chrono::milliseconds(kStepAsideMs));
    }
    dir.position = pos;
    dir.applied_total = applied_total;
    dir.source_mark = mark;
    // Fresh planner statistics once the key map has grown by a fifth (from
    // at least 1,000 rows written), so its lookups keep their index plans.
    dir.written_since_statistics += batch.written();
    if (dir.written_since_statistics >= std::max<int64_t>(1000, applied_total / 5)) {
      if (Status rs = dst.RefreshStatistics(); !rs.ok())
        spdlog::debug("{}: refreshing statistics postponed: {}", dir.name, rs.message());
      dir.written_since_statistics = 0;
    }
    boundaries.ForgetBelow(pos);
    DirectionStats& stats = stats_[dir.source == Side::kLegacy ? 0 : 1];
    stats.batches++;
    stats.changes_read += consumed;
    stats.records_applied += batch.written();
    stats.parked += batch.put_aside();
    stats.conflicts += batch.conflicts();
    stats.records_applied_alone += batch.applied_alone();
    if (!batch.applied().empty() && applied_callback_) applied_callback_(batch.applied());
    if (consumed > 0)
      spdlog::debug("{}: applied {} changes up to {} ({} records written)", dir.name, consumed, pos,
                    batch.written());
    // Purge what is applied from the source log, now and then, in short transactions.
    int64_t now = Clock::Default()->NowMillis();
    if (pos > dir.purged_before && now - dir.last_purge_ms >= config_.sync.purge_interval_ms) {
      Status ps = own_src->PurgeChanges(pos);
      if (ps.ok()) dir.purged_before = pos;
      else if (ps.code() == StatusCode::kUnavailable)
        spdlog::debug("{}: {} log busy, purge postponed", dir.name, SideName(dir.source));
      else
        spdlog::warn("{}: purging applied changes from the {} log failed (will retry): {}", dir.name,
                     SideName(dir.source), ps.message());
      dir.last_purge_ms = now;
      // Gone key-map entries written into this direction's target, once what they hide is removed.
      auto purged = records_->PurgeGoneEntries(dir.target, 500);
      if (!purged.ok())
        spdlog::debug("{}: purging gone key-map entries postponed: {}", dir.name, purged.status().message());
    }
    return consumed;
  }
  return int64_t{0};
}

Result<int64_t> SyncEngine::DrainOnce() {
  int64_t total = 0;
  // Conflicts an operator settled (`tandem conflicts resolve`), before the
  // changes they held are retried.
  const int64_t now = Clock::Default()->NowMillis();
  operator_checks_due_ = now >= next_operator_check_ms_;
  operator_check_owed_ = !operator_checks_due_;
  int resolved = 0;
  if (operator_checks_due_) {
    next_operator_check_ms_ = now + kOperatorCheckIntervalMs;
    TANDEM_ASSIGN_OR_RETURN(resolved, ProcessResolutions());
  }
  if (resolved > 0) {
    for (auto& dir : directions_) TANDEM_RETURN_IF_ERROR(ReloadParkedIfChanged(*dir, /*force=*/true));
  }
  TANDEM_RETURN_IF_ERROR(WatchSourceIdentity());
  TANDEM_RETURN_IF_ERROR(WatchSchema(now).status());
  for (auto& dir : directions_) {
    bool enabled = false;
    for (auto& em : mapping_->entities) enabled |= em.from(dir->source).enabled || em.from(dir->source).read_only;
    if (!enabled) continue;
    auto n = Drain(*dir);
    if (!n.ok()) {
      // A table that changed under the mapping since this pass looked shows
      // as a failure first: look now, and have the pass made again.
      schema_check_owed_ = true;
      auto drifted = WatchSchema(Clock::Default()->NowMillis());
      if (drifted.ok() && *drifted)
        return Status::Unavailable(fmt::format("{}: a mapped table's definition changed during the pass ({}); the "
                                               "mapping was checked again",
                                               dir->name, n.status().message()));
      return n.status().WithContext(fmt::format("{} (from the {} database {} to the {} database {})", dir->name,
                                                SideName(dir->source), dir->src->Describe(), SideName(dir->target),
                                                dir->dst->Describe()));
    }
    total += *n;
  }
  return total;
}

Status SyncEngine::RunUntilIdle() {
  next_operator_check_ms_ = 0;  // what operators asked for so far is seen
  schema_check_owed_ = true;     // and the tables as they are now
  // A passing problem (a deadlock, a position that moved, a busy database)
  // is retried a few times before it is reported.
  int retries = 0;
  while (true) {
    auto n = DrainOnce();
    if (!n.ok()) {
      if (!n.status().retryable() || ++retries > 5) return n.status();
      spdlog::info("{}; retrying", n.status().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(50 << retries));
      continue;
    }
    if (*n == 0) return StoppedStatus();
  }
}

void SyncEngine::IdleWait(std::chrono::milliseconds poll_interval, int idle_waits) {
  // Where both databases tell of commits through a descriptor (SQLite), the
  // engine sleeps in poll() until one does: an idle engine costs nothing and
  // wakes at once. Otherwise it naps `poll_interval`, longer after a quiet spell (as
  // the PostgreSQL probes thin out, connectors/postgres: every 5 ms after
  // ~0.1 s, 20 ms after ~2 s, 100 ms after ~12 s), so an idle engine does not
  // wake 1,000 times a second for probes that are not due.
  std::chrono::milliseconds nap = poll_interval;
  if (idle_waits > 1000) nap = std::max(nap, std::chrono::milliseconds(100));
  else if (idle_waits > 500) nap = std::max(nap, std::chrono::milliseconds(20));
  else if (idle_waits > 100) nap = std::max(nap, std::chrono::milliseconds(5));
  const int fds[2] = {legacy_->CommitNotifyFd(), modern_->CommitNotifyFd()};
  if (fds[0] < 0 || fds[1] < 0) {
    std::this_thread::sleep_for(nap);
    return;
  }
  // Bounded, for what needs no commit: stop requests, replaced files, the
  // operator checks a pass skipped.
  struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
  (void)::poll(p, 2, static_cast<int>(kReplacedCheckIntervalMs));
}

Status SyncEngine::Run(const std::atomic<bool>& stop) {
  int backoff_ms = 0;
  const auto poll = std::chrono::milliseconds(std::max(0, config_.sync.poll_interval_ms));
  int64_t next_replaced_check_ms = 0;
  while (!stop.load()) {
    auto n = DrainOnce();
    if (!n.ok()) {
      if (!n.status().retryable()) return n.status();
      backoff_ms = std::min(backoff_ms ? backoff_ms * 2 : 50, 5000);
      spdlog::warn("{}; retrying in {} ms", n.status().message(), backoff_ms);
      for (int waited = 0; waited < backoff_ms && !stop.load(); waited += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (backoff_ms) spdlog::info("recovered; syncing again");
    backoff_ms = 0;
    if (*n > 0) continue;  // more may have arrived while applying
    // Idle: wait for a commit on either side, or until checks a pass
    // skipped are due.
    for (int idle_waits = 0; !stop.load(); ++idle_waits) {
      if (operator_check_owed_ && Clock::Default()->NowMillis() >= next_operator_check_ms_) break;
      auto a = legacy_->WaitForCommit(std::chrono::milliseconds(0));
      auto b = modern_->WaitForCommit(std::chrono::milliseconds(0));
      if (!a.ok() || !b.ok() || *a || *b) break;
      // A database file replaced while idle is noticed without a commit.
      if (const int64_t t = Clock::Default()->NowMillis(); t >= next_replaced_check_ms) {
        next_replaced_check_ms = t + kReplacedCheckIntervalMs;
        if (!legacy_->Replaced().empty() || !modern_->Replaced().empty()) break;
      }
      IdleWait(poll, idle_waits);
    }
  }
  return StoppedStatus();
}

Result<int> SyncEngine::ProcessResolutions() {
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

Status SyncEngine::ResolveRecord(const std::string& entity, const std::string& lkey, const std::string& mkey,
                                 const std::string& resolution_text) {
  auto ei_it = mapping_->index_by_name.find(entity);
  if (ei_it == mapping_->index_by_name.end())
    return Status::InvalidArgument(fmt::format("entity '{}' is no longer in the config", entity));
  const int ei = ei_it->second;
  const EntityMapping& em = mapping_->entities[ei];
  nlohmann::json resolution = nlohmann::json::parse(resolution_text, nullptr, false);
  if (resolution.is_discarded() || !resolution.is_object())
    return Status::InvalidArgument("unreadable resolution '" + resolution_text + "'");
  std::optional<Side> take;
  if (resolution.contains("take")) take = resolution["take"] == "legacy" ? Side::kLegacy : Side::kModern;
  // The record's fields in conflict (open or being resolved), from both databases.
  std::set<std::string> fields;
  bool twins = false;      // insert-insert: two records become one
  bool whole_row = false;  // read-only-edit: one side's version of every field
  bool row_deleted = false;  // delete-update / update-delete: one side's action, for the whole record
  bool any_open = false;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    std::vector<Row> rows;
    TANDEM_RETURN_IF_ERROR(db(s).Query("SELECT field, kind FROM _tandem_conflicts WHERE status IN ('open', "
                                       "'resolving') AND entity = ? AND lkey = ? AND mkey = ?",
                                       {Value::Text(entity), Value::Text(lkey), Value::Text(mkey)}, &rows));
    any_open |= !rows.empty();
    for (auto& r : rows) {
      const std::optional<ConflictKind> kind = ConflictKindFromName(r[1].as_bytes());
      if (kind == ConflictKind::kInsertInsert) twins = true;
      else if (kind == ConflictKind::kReadOnlyEdit) whole_row = true;
      else if (kind == ConflictKind::kDeleteUpdate || kind == ConflictKind::kUpdateDelete) row_deleted = true;
      else fields.insert(r[0].as_bytes());
    }
  }
  if (!any_open) return Status::Ok();  // settled already (a request per field of one record)
  if (whole_row && (lkey.empty() || mkey.empty()))
    return Status::InvalidArgument("a record created or deleted on the read-only side cannot be taken over: delete "
                                   "or re-create it there, then discard the put-aside change");
  if (whole_row && !take) return Status::InvalidArgument("an edit of a read-only side is settled with --take");
  if (whole_row)
    for (const DirectionMapping* d : {&em.to_modern, &em.to_legacy})
      for (auto& r : d->rules) fields.insert(r.field);
  if (twins) {
    if (!take || resolution.contains("set"))
      return Status::InvalidArgument("a record inserted on both sides is settled with --take legacy|modern (the "
                                     "other side's row takes that version and the two become one record)");
    for (const DirectionMapping* d : {&em.to_modern, &em.to_legacy})
      for (auto& r : d->rules) fields.insert(r.field);
  }
  auto dir_from = [&](Side source) -> Direction& {
    for (auto& d : directions_)
      if (d->source == source) return *d;
    return *directions_[0];
  };
  // The record's keys now: a key changed while the record was held moved its
  // put-aside change to the new key (which remembers the old one).
  TANDEM_ASSIGN_OR_RETURN(Row lk, DecodeKey(lkey));
  TANDEM_ASSIGN_OR_RETURN(Row mk, DecodeKey(mkey));
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const std::string& held = s == Side::kLegacy ? lkey : mkey;
    if (held.empty()) continue;
    TANDEM_ASSIGN_OR_RETURN(auto moved, db(Other(s)).QueryOne("SELECT source_key FROM _tandem_parked WHERE direction = ? "
                                                              "AND entity = ? AND old_key = ?",
                                                              {Value::Text(dir_from(s).name), Value::Text(entity),
                                                               Value::Text(held)}));
    if (moved) {
      Row& now = s == Side::kLegacy ? lk : mk;
      TANDEM_ASSIGN_OR_RETURN(now, DecodeKey((*moved)[0].as_bytes()));
    }
  }
  auto key_of = [&](Side s) -> const Row& { return s == Side::kLegacy ? lk : mk; };
  // Which side's value each field takes: the side a --set wrote it on, else --take.
  std::map<std::string, Side> winner_of;
  std::map<Side, std::vector<std::pair<std::string, Value>>> sets;  // side -> (column, value)
  if (resolution.contains("set")) {
    for (auto& [field, value] : resolution["set"].items()) {
      std::optional<Side> side;
      const ColumnRule* rule = nullptr;
      for (Side source : {Side::kModern, Side::kLegacy}) {
        // A field written on side X by the rules of the other direction is a
        // column of X; `fields:` names are modern columns, so modern first.
        for (auto& r : em.from(Other(source)).rules)
          if (r.field == field && !side) {
            side = source;
            rule = &r;
          }
      }
      if (!side) return Status::InvalidArgument(fmt::format("entity '{}' has no field '{}'", entity, field));
      // Refused before anything is written when the column cannot hold it.
      auto stored = value.is_null() ? Result<Value>(Value::Null()) : StoreTypedValue(rule->target_type, value.get<std::string>());
      if (!stored.ok())
        return Status::InvalidArgument(fmt::format("--set {}: the {} column {} cannot hold {}: {}", field,
                                                   SideName(*side), rule->target_column, value.dump(),
                                                   stored.status().message()));
      sets[*side].emplace_back(rule->target_column, std::move(stored).value());
      winner_of[field] = *side;
    }
  }
  for (auto& f : fields) {
    if (winner_of.count(f)) continue;
    if (!take)
      return Status::InvalidArgument(fmt::format("field '{}' is in conflict too: give --take legacy|modern or --set "
                                                 "{}=VALUE",
                                                 f, f));
    winner_of[f] = *take;
  }
  // Sets `columns` of one row in its own echo-suppressed transaction.
  auto update_row = [](Connector& d, const DirectionMapping& into, const std::vector<std::pair<std::string, Value>>& columns,
                       const Row& key) {
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
  };
  if (row_deleted && (!take || resolution.contains("set")))
    return Status::InvalidArgument("a record deleted on one side and updated on the other is settled with --take "
                                   "legacy|modern");
  if (twins) {
    for (Side s : {Side::kLegacy, Side::kModern}) {
      TANDEM_ASSIGN_OR_RETURN(auto mapped, records_->Find(entity, s, s == Side::kLegacy ? lkey : mkey));
      if (mapped && !mapped->gone)
        return Status::InvalidArgument(fmt::format(
            "the {} row {} is already synced as another record (its twin reached the other side first, e.g. where no "
            "unique constraint stopped it); delete the duplicate there, then discard the put-aside change",
            SideName(s), DisplayKey(key_of(s))));
    }
  }
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
  for (auto& [side, cols] : sets) TANDEM_RETURN_IF_ERROR(update_row(db(side), em.from(Other(side)), cols, key_of(side)));
  // 2. Each winning side's values, mapped, onto the other side.
  for (Side w : {Side::kLegacy, Side::kModern}) {
    const DirectionMapping& dm = em.from(w);
    std::vector<size_t> rules;
    for (size_t i = 0; i < dm.rules.size(); ++i) {
      // The rule of the field itself, or one computed from it (a field that
      // only the other direction has, e.g. first_name -> CNAME).
      bool wins = false;
      auto it = winner_of.find(dm.rules[i].field);
      if (it != winner_of.end()) wins = it->second == w;
      for (int dep : dm.rules[i].deps) {
        auto d = winner_of.find(dm.source_columns[dep]);
        if (d != winner_of.end() && d->second == w) wins = true;
      }
      if (wins) rules.push_back(i);
    }
    if (rules.empty()) continue;
    Direction& dir = dir_from(w);
    std::unordered_map<std::string, Row> found;
    TANDEM_RETURN_IF_ERROR(SelectByKeys(*dir.src, dir.sql[ei].select_source_many, dm.source_key_count,
                                        {key_of(w)}, &found));
    if (found.empty())
      return Status::NotFound(fmt::format("the {} row {} is gone; it cannot win", SideName(w),
                                          DisplayKey(key_of(w))));
    Batch batch(*this, dir, false);
    Row mapped;
    TANDEM_RETURN_IF_ERROR(batch.MapSourceRow(ei, found.begin()->second, &mapped, rules));
    std::vector<std::pair<std::string, Value>> cols;
    for (size_t i : rules) cols.emplace_back(dm.rules[i].target_column, mapped[i]);
    TANDEM_RETURN_IF_ERROR(update_row(*dir.dst, dm, cols, key_of(Other(w))));
  }
  // Deleted on one side, updated on the other: the winner's action for the
  // whole record. An update that wins: the key map forgets the pair, so the
  // held update re-creates the record. A delete that wins: the other row goes.
  if (row_deleted) {
    bool exists[2];
    for (Side s : {Side::kLegacy, Side::kModern}) {
      Direction& into = dir_from(Other(s));  // its target side is s
      TANDEM_ASSIGN_OR_RETURN(auto row, into.dst->QueryOne(into.sql[ei].select_target, key_of(s)));
      const DirectionMapping& dm = em.from(Other(s));
      exists[s == Side::kLegacy ? 0 : 1] =
          row.has_value() && (!dm.target_row_shared || AnyNonNull(*row, dm.target_key_columns.size()));
    }
    const Side w = *take, o = Other(*take);
    const bool w_exists = exists[w == Side::kLegacy ? 0 : 1], o_exists = exists[o == Side::kLegacy ? 0 : 1];
    if (w_exists != o_exists) {
      Connector& d = db(o);
      RecordEntry gone;
      gone.entity = entity;
      gone.lkey = lkey;
      gone.mkey = mkey;
      gone.gone = true;
      TANDEM_RETURN_IF_ERROR(d.BeginApply());
      Status st = Status::Ok();
      if (!w_exists) {  // the delete wins: delete the other side's row too (a split record: clear its columns)
        const DirectionMapping& into_o = em.from(w);
        if (into_o.target_row_shared) {
          st = ClearSharedColumns(d, into_o, key_of(o));
        } else {
          st = d.Exec(dir_from(w).sql[ei].delete_target, key_of(o));
        }
      }
      if (st.ok()) st = records_->Put(o, &gone);
      if (st.ok()) st = d.CommitApply();
      else d.RollbackApply();
      TANDEM_RETURN_IF_ERROR(st);
    }
  }
  // Twins: link the two rows as one record (bases come with the retries below,
  // which find both rows equal).
  if (twins) {
    Connector& d = db(Other(*take));
    RecordEntry link;
    link.entity = entity;
    link.lkey = lkey;
    link.mkey = mkey;
    TANDEM_RETURN_IF_ERROR(d.BeginApply());
    Status st = records_->Put(Other(*take), &link);
    if (st.ok()) st = d.CommitApply();
    else d.RollbackApply();
    TANDEM_RETURN_IF_ERROR(st);
  }
  // 3. Settled: the conflict rows, the audit trail, and the held changes are retried.
  std::string winners;
  for (auto& [f, side] : winner_of)
    winners += fmt::format("{}{}={}{}", winners.empty() ? "" : ", ", f, SideName(side),
                           sets.count(side) && resolution.contains("set") && resolution["set"].contains(f) ? " (set)"
                                                                                                            : "");
  int64_t now = Clock::Default()->NowMillis();
  for (Side s : {Side::kLegacy, Side::kModern}) {
    Connector& d = db(s);
    TANDEM_RETURN_IF_ERROR(d.BeginApply());
    Status st = d.Exec("UPDATE _tandem_conflicts SET status = 'resolved', settled_at_ms = ?, resolution = ?, winner = "
                       "? WHERE status IN ('open', 'resolving') AND entity = ? AND lkey = ? AND mkey = ?",
                       {Value::Integer(now), Value::Text(winners),
                        Value::Text(take ? SideName(*take) : "hand-merged"), Value::Text(entity), Value::Text(lkey),
                        Value::Text(mkey)});
    if (st.ok())
      st = d.Exec("UPDATE _tandem_parked SET retry_requested = 1 WHERE kind = 'conflict' AND entity = ? AND "
                  "(source_key = ? OR old_key = ?)",
                  {Value::Text(entity), Value::Text(s == Side::kModern ? lkey : mkey),
                   Value::Text(s == Side::kModern ? lkey : mkey)});
    if (st.ok() && s == Side::kModern)
      st = d.Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'resolve', ?)",
                  {Value::Integer(now), Value::Text(fmt::format("{} legacy {} / modern {}: {}", entity,
                                                                DisplayKey(lk), DisplayKey(mk), winners))});
    if (st.ok()) st = d.CommitApply();
    else d.RollbackApply();
    TANDEM_RETURN_IF_ERROR(st);
  }
  spdlog::info("conflict resolved: {} legacy {} / modern {}: {}", entity, DisplayKey(lk), DisplayKey(mk), winners);
  return Status::Ok();
}

Status SyncEngine::RetryParked(Side stored_in, int64_t id) {
  Direction* dir = nullptr;
  for (auto& d : directions_)
    if (d->target == stored_in) dir = d.get();
  TANDEM_ASSIGN_OR_RETURN(auto row, dir->dst->QueryOne("SELECT entity, source_key, last_seq, old_key FROM _tandem_parked WHERE "
                                                       "id = ? AND direction = ?",
                                                       {Value::Integer(id), Value::Text(dir->name)}));
  if (!row) return Status::NotFound(fmt::format("no put-aside change {} on the {} side", id, SideName(stored_in)));
  auto it = mapping_->index_by_name.find((*row)[0].as_bytes());
  if (it == mapping_->index_by_name.end())
    return Status::InvalidArgument(fmt::format("entity '{}' is no longer in the config", (*row)[0].as_bytes()));
  TANDEM_RETURN_IF_ERROR(dir->src->BeginRead());
  Status st = dir->dst->BeginApply();
  if (!st.ok()) {
    dir->src->EndRead();
    return st;
  }
  Batch batch(*this, *dir, /*careful=*/true);
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

Result<int> SyncEngine::RetryAllParked() {
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

// --- source identity (engine/source_identity.h) ---

Status SyncEngine::CheckSourceIdentity(Direction& dir) {
  TANDEM_ASSIGN_OR_RETURN(dir.source_id, ReadDatabaseId(*dir.src));
  TANDEM_ASSIGN_OR_RETURN(StoredPosition stored, LoadStoredPosition(*dir.dst, dir.name));
  // The mark the next comparison is made against: the stored one, as long
  // as the position in memory is the stored one.
  if (stored.seq == dir.position) dir.source_mark = stored.source_mark;
  TANDEM_ASSIGN_OR_RETURN(SourceFinding finding, CheckSource(*dir.src, dir.source, dir.source_id, stored));
  if (finding.ok()) return Status::Ok();
  StopDirection(dir, finding);
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  return Status::Ok();
}

void SyncEngine::StopDirection(Direction& dir, const SourceFinding& finding) {
  std::string message = StoppedMessage(config_, dir.source, *dir.src, finding);
  if (dir.stopped == message) return;
  spdlog::error("{}", message);
  dir.stopped = message;
  if (finding.stops_both()) {
    pair_stopped_ = message;
    for (auto& d : directions_)
      if (d.get() != &dir) d->stopped = message;
  }
}

Status SyncEngine::WatchSourceIdentity() {
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  bool recheck = false;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    std::string replaced = db(s).Replaced();
    if (!replaced.empty()) {
      SourceFinding finding;
      finding.kind = SourceFinding::Kind::kReplaced;
      finding.culprit = s;
      finding.what = replaced;
      for (auto& dir : directions_)
        if (dir->source == s) StopDirection(*dir, finding);
      return Status::InvalidArgument(pair_stopped_);
    }
    recheck |= db(s).Reconnected();
  }
  // A session that reconnected may reach another server or database now.
  if (recheck)
    for (auto& dir : directions_) TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(*dir));
  return Status::Ok();
}

Status SyncEngine::StoppedStatus() const {
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  std::string all;
  for (auto& dir : directions_)
    if (!dir->stopped.empty()) all += (all.empty() ? "" : "\n") + dir->stopped;
  return all.empty() ? Status::Ok() : Status::InvalidArgument(all);
}

}  // namespace tandem
