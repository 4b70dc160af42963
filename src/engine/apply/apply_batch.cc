// ApplyBatch: per record, putting aside and retrying; the batch's caches of
// key-map entries and target rows; mapping source rows; what it reports.
// The record itself is applied in apply_record.cc, its conflicts recorded in
// record_conflicts.cc, its facts prefetched in prefetch.cc.
#include "engine/apply/apply_batch.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "mapping/exact_write.h"

namespace tandem {

namespace {

// Marks a Status as "this record waits for its parent" (kNotFound).
bool IsWaiting(const Status& st) { return st.code() == StatusCode::kNotFound; }

}  // namespace

std::string ApplyBatch::EntryCacheKey(const std::string& entity, Side side, const std::string& key) {
  return entity + (side == Side::kLegacy ? "\x1dL\x1d" : "\x1dM\x1d") + key;
}

ApplyBatch::ApplyBatch(const ApplyContext& ctx, Direction& dir, bool careful,
                       const std::unordered_set<std::string>* solo)
    : ctx_(ctx),
      d_(dir),
      careful_(careful),
      solo_(solo),
      defer_(!careful && dir.dst->Traits().failed_statement_aborts_transaction),
      writer_(*dir.dst, ctx.records, dir.source, ctx.mapping.entities, dir.sql, /*find_rejected=*/defer_),
      in_record_savepoint_(careful) {}

std::unordered_set<std::string> ApplyBatch::suspects() const {
  std::unordered_set<std::string> out;
  for (size_t tag : writer_.rejected())
    if (tag < tag_keys_.size()) out.insert(tag_keys_[tag]);
  return out;
}

Status ApplyBatch::MapSourceRow(int entity, const Row& srow, Row* out, const std::vector<size_t>& written) {
  TANDEM_RETURN_IF_ERROR(MapRow(ctx_.mapping.entities[entity], srow, out));
  for (size_t i : written)
    if (!problems_[i].empty()) return Status::Constraint(problems_[i]);
  return Status::Ok();
}

void ApplyBatch::Report(AppliedRecord applied, const Row& source_key, const Row& target_key) {
  ++written_;
  ++written_by_entity_[applied.entity];
  bool debug = spdlog::should_log(spdlog::level::debug);
  if (!ctx_.keep_applied && !debug) return;
  applied.source_key = DisplayKey(source_key);
  applied.target_key = DisplayKey(target_key);
  if (debug)
    spdlog::debug("{} {} {} {} -> {}", d_.name, applied.op, applied.entity, applied.source_key, applied.target_key);
  applied_.push_back(std::move(applied));
}

size_t ApplyBatch::Tag(const WorkItem& item) {
  tag_keys_.push_back(ParkedKey(ctx_.mapping.entities[item.entity].name, EncodeKey(item.key)));
  return tag_keys_.size() - 1;
}

// --- the batch's caches ---

Result<std::optional<RecordEntry>> ApplyBatch::FindEntry(const std::string& entity, Side side,
                                                         const std::string& key) {
  std::string ck = EntryCacheKey(entity, side, key);
  auto it = entries_.find(ck);
  if (it != entries_.end()) return it->second;
  TANDEM_RETURN_IF_ERROR(FlushPending());
  TANDEM_ASSIGN_OR_RETURN(auto e, ctx_.records.Find(entity, side, key));
  entries_[ck] = e;
  return e;
}

Status ApplyBatch::PutEntry(RecordEntry* entry) {
  std::string claim = entry->entity + '\x1d' + entry->lkey;
  if (entry->gone && claimed_lkeys_.count(claim)) return Status::Ok();  // another record owns this key now
  if (!entry->gone) claimed_lkeys_.insert(claim);
  if (deferring()) {
    writer_.Entry(*entry);
  } else {
    TANDEM_RETURN_IF_ERROR(FlushPending());
    TANDEM_RETURN_IF_ERROR(ctx_.records.Put(d_.target, entry));
  }
  CacheEntryKeys(*entry);
  return Status::Ok();
}

void ApplyBatch::CacheEntryKeys(const RecordEntry& entry_ref) {
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

Status ApplyBatch::FlushPending() {
  Status st = writer_.Flush();
  if (st.code() == StatusCode::kConstraint) needs_careful_ = true;
  return st;
}

Status ApplyBatch::FlushPendingWrites() {
  Status st = writer_.FlushRows();
  if (st.code() == StatusCode::kConstraint) needs_careful_ = true;
  return st;
}

Result<std::optional<Row>> ApplyBatch::TargetRow(int entity, const Row& tkey) {
  std::string ck = std::to_string(entity) + '\x1d' + EncodeKey(tkey);
  auto it = target_rows_.find(ck);
  if (it != target_rows_.end()) return it->second;
  TANDEM_RETURN_IF_ERROR(FlushPendingWrites());
  return d_.dst->QueryOne(d_.sql[entity].select_target, tkey);
}

// --- mapping source rows ---

Result<Value> ApplyBatch::ResolveLookup(const ColumnRule& rule, const Value& v) {
  if (v.is_null()) return Value::Null();
  const EntityMapping& parent = ctx_.mapping.entities[rule.lookup_entity_index];
  TANDEM_ASSIGN_OR_RETURN(auto entry, FindEntry(parent.name, d_.source, EncodeKey({v})));
  if (!entry || entry->gone)
    return Status::NotFound(fmt::format("waiting for {} {} to be synced (field '{}')", parent.name, v.ToDisplay(),
                                        rule.field));
  TANDEM_ASSIGN_OR_RETURN(Row key, DecodeKey(entry->key(d_.target)));
  if (key.size() != 1)
    return Status::Constraint(fmt::format("lookup '{}' needs a single-column key on entity '{}'", rule.field, parent.name));
  return key[0];
}

Status ApplyBatch::MapRow(const EntityMapping& em, const Row& srow, Row* out) {
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

// --- applying, putting aside, retrying ---

Status ApplyBatch::Park(const WorkItem& item, const Status& why) {
  const EntityMapping& em = ctx_.mapping.entities[item.entity];
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

Result<bool> ApplyBatch::Retry(const WorkItem& item) {
  const EntityMapping& em = ctx_.mapping.entities[item.entity];
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

Status ApplyBatch::ApplyOrPark(const WorkItem& item) {
  const EntityMapping& em = ctx_.mapping.entities[item.entity];
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

}  // namespace tandem
