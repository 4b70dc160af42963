#include "engine/record_store.h"

#include "core/key_codec.h"

namespace tandem {

Status RecordStore::Init() {
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(auto row, Db(s).QueryOne("SELECT coalesce(max(version), 0) FROM _tandem_records", {}));
    version_ = std::max(version_, (*row)[0].as_integer());
  }
  return Status::Ok();
}

std::string RecordStore::EncodeBase(const ColumnValues& base) {
  Row flat;
  flat.reserve(base.size() * 2);
  for (auto& [name, value] : base) {
    flat.push_back(Value::Text(name));
    flat.push_back(value);
  }
  return EncodeValues(flat);
}

std::optional<ColumnValues> RecordStore::DecodeBase(const Value& stored) {
  if (stored.is_null()) return std::nullopt;
  auto flat = DecodeValues(stored.as_bytes());
  if (!flat.ok()) return std::nullopt;
  ColumnValues out;
  for (size_t i = 0; i + 1 < flat->size(); i += 2) out[(*flat)[i].as_bytes()] = (*flat)[i + 1];
  return out;
}

Result<std::optional<RecordEntry>> RecordStore::FindIn(Side db, const std::string& entity, Side side,
                                                       const std::string& key) {
  static const std::string by_lkey =
      "SELECT lkey, mkey, version, gone, lbase, mbase FROM _tandem_records WHERE entity = ? AND lkey = ?";
  static const std::string by_mkey =
      "SELECT lkey, mkey, version, gone, lbase, mbase FROM _tandem_records WHERE entity = ? AND mkey = ? ORDER BY "
      "version DESC LIMIT 1";
  TANDEM_ASSIGN_OR_RETURN(auto row, Db(db).QueryOne(side == Side::kLegacy ? by_lkey : by_mkey,
                                                    {Value::Text(entity), Value::Text(key)}));
  if (!row) return std::optional<RecordEntry>();
  RecordEntry e;
  e.entity = entity;
  e.lkey = (*row)[0].as_bytes();
  e.mkey = (*row)[1].as_bytes();
  e.version = (*row)[2].as_integer();
  e.gone = (*row)[3].as_integer() != 0;
  e.lbase = DecodeBase((*row)[4]);
  e.mbase = DecodeBase((*row)[5]);
  return std::optional<RecordEntry>(std::move(e));
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

Status RecordStore::Put(Side into, RecordEntry* e) {
  e->version = ++version_;
  Value lbase = e->lbase ? Value::Text(EncodeBase(*e->lbase)) : Value::Null();
  Value mbase = e->mbase ? Value::Text(EncodeBase(*e->mbase)) : Value::Null();
  return Db(into).Exec(
      "INSERT INTO _tandem_records(entity, lkey, mkey, version, gone, lbase, mbase) VALUES (?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(entity, lkey) DO UPDATE SET mkey = excluded.mkey, version = excluded.version, gone = "
      "excluded.gone, lbase = excluded.lbase, mbase = excluded.mbase",
      {Value::Text(e->entity), Value::Text(e->lkey), Value::Text(e->mkey), Value::Integer(e->version),
       Value::Integer(e->gone ? 1 : 0), lbase, mbase});
}

}  // namespace tandem
