#include "engine/record_store.h"

#include <deque>
#include <unordered_set>

#include "core/key_codec.h"
#include "connectors/multi_row.h"

namespace tandem {

Status RecordStore::Init() {
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(auto row, Db(s).QueryOne("SELECT coalesce(max(version), 0) FROM _tandem_records", {}));
    version_ = std::max(version_, (*row)[0].as_integer());
  }
  return Status::Ok();
}

std::string RecordStore::EncodeBase(const ColumnValues& base) {
  // The same format as EncodeValues of [name1, value1, name2, value2, ...].
  std::string out;
  out.reserve(base.size() * 24);
  bool first = true;
  for (auto& [name, value] : base) {
    if (!first) out.push_back(kKeySeparator);
    first = false;
    AppendEncodedValue(Value::Text(name), &out);
    out.push_back(kKeySeparator);
    AppendEncodedValue(value, &out);
  }
  return out;
}

std::optional<ColumnValues> RecordStore::DecodeBase(const Value& stored) {
  if (stored.is_null()) return std::nullopt;
  auto flat = DecodeValues(stored.as_bytes());
  if (!flat.ok()) return std::nullopt;
  ColumnValues out;
  out.reserve(flat->size() / 2);
  for (size_t i = 0; i + 1 < flat->size(); i += 2) out[(*flat)[i].as_bytes()] = std::move((*flat)[i + 1]);
  return out;
}

namespace {

RecordEntry EntryFromRow(const std::string& entity, const Row& r) {
  RecordEntry e;
  e.entity = entity;
  e.lkey = r[0].as_bytes();
  e.mkey = r[1].as_bytes();
  e.version = r[2].as_integer();
  e.gone = r[3].as_integer() != 0;
  e.lbase = RecordStore::DecodeBase(r[4]);
  e.mbase = RecordStore::DecodeBase(r[5]);
  return e;
}
}  // namespace

Status RecordStore::FindManyRaw(const std::string& entity, Side side, const std::vector<std::string>& keys,
                                std::unordered_map<std::string, RecordEntry>* out,
                                std::unordered_set<std::string>* both_copies) {
  // By legacy key: the unique (entity, lkey) index. By modern key: the mhash
  // index; rows of colliding hashes are dropped below.
  static const auto kSql = [] {
    std::array<InListSql, 2> by_side;  // by legacy key, by modern key
    for (size_t shape = 0; shape < kInListLengths.size(); ++shape) {
      for (int s = 0; s < 2; ++s) {
        std::string sql = "SELECT lkey, mkey, version, gone, lbase, mbase FROM _tandem_records WHERE ";
        sql += s == 0 ? "entity = ? AND lkey IN (" : "mhash IN (";
        for (size_t i = 0; i < kInListLengths[shape]; ++i) sql += i ? ", ?" : "?";
        sql += ")";
        // `entity || ''`: not an indexed term, so SQLite (without planner
        // statistics) searches the mhash index instead of scanning every
        // entry of the entity through the (entity, lkey) index: that scan
        // made each chunk's lookup cost grow with the key map.
        if (s == 1) sql += " AND entity || '' = ?";
        by_side[s][shape] = std::move(sql);
      }
    }
    return by_side;
  }();
  // Every statement to both databases is sent before any answer is read, so
  // the two databases work at the same time.
  std::deque<std::vector<Row>> results[2];  // per database, per statement (stable addresses)
  struct CollectBoth {  // no statement may be left writing into `results`
    RecordStore& store;
    ~CollectBoth() {
      (void)store.legacy_.Collect();
      (void)store.modern_.Collect();
    }
  } collect_both{*this};
  Row params;
  for (size_t start = 0; start < keys.size();) {
    const size_t shape = InListShape(keys.size() - start), n = kInListLengths[shape];
    const std::string& sql = kSql[side == Side::kLegacy ? 0 : 1][shape];
    params.clear();
    if (side == Side::kLegacy) params.push_back(Value::Text(entity));
    for (size_t i = 0; i < n; ++i) {
      const std::string& k = keys[std::min(start + i, keys.size() - 1)];
      params.push_back(side == Side::kLegacy ? Value::Text(k) : Value::Integer(KeyHash(entity, k)));
    }
    start += n;
    if (side == Side::kModern) params.push_back(Value::Text(entity));
    for (int db = 0; db < 2; ++db)
      TANDEM_RETURN_IF_ERROR(Db(db == 0 ? Side::kLegacy : Side::kModern).QueryLater(sql, params, &results[db].emplace_back()));
  }
  Status legacy_done = legacy_.Collect(), modern_done = modern_.Collect();
  TANDEM_RETURN_IF_ERROR(legacy_done);
  TANDEM_RETURN_IF_ERROR(modern_done);
  // The newest row per key first; only those are decoded (bases are the
  // costly part, and most records have a copy in each database).
  struct Found {
    const Row* newest = nullptr;
    const Row* in_db[2] = {nullptr, nullptr};
  };
  std::unordered_map<std::string_view, Found> found;
  found.reserve(keys.size());
  for (const std::string& k : keys) found.emplace(k, Found{});
  for (int db = 0; db < 2; ++db) {
    for (auto& rows : results[db]) {
      for (auto& r : rows) {
        auto it = found.find(r[side == Side::kLegacy ? 0 : 1].as_bytes());
        if (it == found.end()) continue;  // a hash collision
        it->second.in_db[db] = &r;
        if (it->second.newest && r[2].as_integer() <= (*it->second.newest)[2].as_integer()) continue;
        it->second.newest = &r;
      }
    }
  }
  for (const auto& [k, f] : found) {
    if (!f.newest) continue;
    // Both databases' rows for this legacy key are known: each holds at most
    // one entry per (entity, lkey), so the newest of them is the newest there is.
    if (both_copies && f.in_db[0] && f.in_db[1] && (*f.in_db[0])[0].as_bytes() == (*f.in_db[1])[0].as_bytes())
      both_copies->insert(std::string(k));
    auto it = out->find(std::string(k));
    if (it != out->end() && (*f.newest)[2].as_integer() <= it->second.version) continue;
    (*out)[std::string(k)] = EntryFromRow(entity, *f.newest);
  }
  return Status::Ok();
}

Status RecordStore::FindMany(const std::string& entity, Side side, const std::vector<std::string>& keys,
                             std::unordered_map<std::string, RecordEntry>* out) {
  if (keys.empty()) return Status::Ok();
  if (side == Side::kLegacy) return FindManyRaw(entity, side, keys, out);
  // By modern key: confirm each hit against the newest entry for its legacy key
  // (an older copy may map a modern key whose record was re-keyed since).
  // A hit whose legacy key both databases returned under this modern key is
  // confirmed already (the common case once a record has synced both ways).
  std::unordered_map<std::string, RecordEntry> by_mkey, by_lkey;
  std::unordered_set<std::string> confirmed;
  TANDEM_RETURN_IF_ERROR(FindManyRaw(entity, Side::kModern, keys, &by_mkey, &confirmed));
  std::vector<std::string> lkeys;
  for (auto& [k, e] : by_mkey)
    if (!confirmed.count(k)) lkeys.push_back(e.lkey);
  if (!lkeys.empty()) TANDEM_RETURN_IF_ERROR(FindManyRaw(entity, Side::kLegacy, lkeys, &by_lkey));
  for (auto& [mkey, e] : by_mkey) {
    if (confirmed.count(mkey)) {
      (*out)[mkey] = std::move(e);
      continue;
    }
    auto it = by_lkey.find(e.lkey);
    if (it != by_lkey.end() && it->second.mkey == mkey) (*out)[mkey] = it->second;
  }
  return Status::Ok();
}

Result<std::optional<RecordEntry>> RecordStore::FindIn(Side db, const std::string& entity, Side side,
                                                       const std::string& key) {
  static const std::string by_lkey =
      "SELECT lkey, mkey, version, gone, lbase, mbase FROM _tandem_records WHERE entity = ? AND lkey = ?";
  static const std::string by_mkey =
      "SELECT lkey, mkey, version, gone, lbase, mbase FROM _tandem_records WHERE mhash = ? AND entity = ? AND mkey = ? "
      "ORDER BY version DESC LIMIT 1";
  auto row_r = side == Side::kLegacy
                   ? Db(db).QueryOne(by_lkey, {Value::Text(entity), Value::Text(key)})
                   : Db(db).QueryOne(by_mkey, {Value::Integer(KeyHash(entity, key)), Value::Text(entity), Value::Text(key)});
  TANDEM_ASSIGN_OR_RETURN(auto row, std::move(row_r));
  if (!row) return std::optional<RecordEntry>();
  return std::optional<RecordEntry>(EntryFromRow(entity, *row));
}

Result<std::optional<RecordEntry>> RecordStore::Find(const std::string& entity, Side side, const std::string& key) {
  TANDEM_ASSIGN_OR_RETURN(auto a, FindIn(Side::kLegacy, entity, side, key));
  TANDEM_ASSIGN_OR_RETURN(auto b, FindIn(Side::kModern, entity, side, key));
  std::optional<RecordEntry> best = a;
  if (b && (!best || b->version > best->version)) best = b;
  if (!best || side == Side::kLegacy) return best;
  // By modern key: an older copy may map a modern key whose record has since
  // been re-keyed; the newest entry for its legacy key is authoritative.
  TANDEM_ASSIGN_OR_RETURN(auto by_lkey, Find(entity, Side::kLegacy, best->lkey));
  if (!by_lkey || by_lkey->mkey != key) return std::optional<RecordEntry>();
  return by_lkey;
}

namespace {
constexpr const char* kPutColumns = "INSERT INTO _tandem_records(entity, lkey, mkey, mhash, version, gone, lbase, mbase) VALUES ";
constexpr const char* kPutUpsert =
    " ON CONFLICT(entity, lkey) DO UPDATE SET mkey = excluded.mkey, mhash = excluded.mhash, version = "
    "excluded.version, gone = excluded.gone, lbase = excluded.lbase, mbase = excluded.mbase";
constexpr size_t kPutParams = 8;

void AppendPutParams(const RecordEntry& e, Row* params) {
  params->push_back(Value::Text(e.entity));
  params->push_back(Value::Text(e.lkey));
  params->push_back(Value::Text(e.mkey));
  params->push_back(Value::Integer(KeyHash(e.entity, e.mkey)));
  params->push_back(Value::Integer(e.version));
  params->push_back(Value::Integer(e.gone ? 1 : 0));
  params->push_back(e.lbase ? Value::Text(RecordStore::EncodeBase(*e.lbase)) : Value::Null());
  params->push_back(e.mbase ? Value::Text(RecordStore::EncodeBase(*e.mbase)) : Value::Null());
}

// The upsert of `rows` entries (a MultiRowCounts count), built once per count.
const std::string& PutSql(size_t rows) {
  static std::unordered_map<size_t, std::string> by_rows;
  std::string& sql = by_rows[rows];
  if (sql.empty()) sql = std::string(kPutColumns) + MultiRowValues(rows, kPutParams) + kPutUpsert;
  return sql;
}
}  // namespace

Status RecordStore::Put(Side into, RecordEntry* e) {
  e->version = ++version_;
  Row params;
  params.reserve(kPutParams);
  AppendPutParams(*e, &params);
  return Db(into).Exec(PutSql(1), params);
}

Status RecordStore::PutMany(Side into, std::vector<RecordEntry>* entries) {
  for (RecordEntry& e : *entries) e.version = ++version_;
  // One row per (entity, lkey): a multi-row upsert may not touch a row twice.
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < entries->size(); ++i) last[(*entries)[i].entity + '\x1d' + (*entries)[i].lkey] = i;
  std::vector<const RecordEntry*> rows;
  rows.reserve(last.size());
  for (size_t i = 0; i < entries->size(); ++i)
    if (last[(*entries)[i].entity + '\x1d' + (*entries)[i].lkey] == i) rows.push_back(&(*entries)[i]);
  Row params;
  size_t at = 0;
  for (size_t n : MultiRowCounts(rows.size())) {
    params.clear();
    params.reserve(n * kPutParams);
    for (size_t i = 0; i < n; ++i) AppendPutParams(*rows[at + i], &params);
    at += n;
    TANDEM_RETURN_IF_ERROR(Db(into).ExecLater(PutSql(n), params));
  }
  return Status::Ok();
}

}  // namespace tandem

namespace tandem {

Result<int> RecordStore::PurgeGoneEntries(Side side, int limit) {
  Connector& here = Db(side);
  Connector& there = Db(Other(side));
  std::vector<Row> gone;
  TANDEM_RETURN_IF_ERROR(here.Query(
      "SELECT entity, lkey, mkey, version FROM _tandem_records WHERE gone = 1 ORDER BY version LIMIT ?",
      {Value::Integer(limit)}, &gone));
  if (gone.empty()) return 0;
  // First the older copies the gone entries hide, then the gone entries.
  auto in_write = [](Connector& db, const std::vector<Row>& rows, const std::string& sql,
                     auto params_of) -> Status {
    TANDEM_RETURN_IF_ERROR(db.BeginApply());
    for (const Row& r : rows) {
      Status st = db.Exec(sql, params_of(r));
      if (!st.ok()) {
        db.RollbackApply();
        return st;
      }
    }
    return db.CommitApply();
  };
  TANDEM_RETURN_IF_ERROR(in_write(
      there, gone,
      "DELETE FROM _tandem_records WHERE ((entity = ? AND lkey = ?) OR (mhash = ? AND entity || '' = ? AND mkey = ?)) "
      "AND "
      "version < ?",
      [](const Row& r) {
        return Row{r[0], r[1], Value::Integer(KeyHash(r[0].as_bytes(), r[2].as_bytes())), r[0], r[2], r[3]};
      }));
  TANDEM_RETURN_IF_ERROR(in_write(
      here, gone, "DELETE FROM _tandem_records WHERE entity = ? AND lkey = ? AND gone = 1 AND version = ?",
      [](const Row& r) { return Row{r[0], r[1], r[3]}; }));
  return static_cast<int>(gone.size());
}

}  // namespace tandem
