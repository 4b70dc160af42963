// RecordStore: per-record key map and last agreed ("base") version.
//
// Every record Tandem has synced has an entry (entity, legacy key, modern key,
// version, gone, legacy base, modern base). An entry is written into the
// database an apply writes to, in the same transaction as the rows it maps, so
// it is never ahead of or behind the data. Both databases therefore hold
// entries; the one with the highest version is the truth (versions come from
// one counter that only grows). A re-keyed or deleted record leaves a `gone`
// entry with a newer version, which hides older copies in the other database.
//
// Bases are stored per side as column-name/value lists, so a change of the
// mapping does not misread them: a column missing from a base simply has none.
//
// Thread-safety: none; the engine is single-threaded.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "connectors/connector.h"
#include "mapping/config.h"

namespace tandem {

// Column name -> value, for a handful of columns: a flat vector with linear
// lookup, which beats a hash map at this size and allocates far less.
class ColumnValues {
 public:
  using Entry = std::pair<std::string, Value>;
  using const_iterator = std::vector<Entry>::const_iterator;
  const_iterator find(const std::string& name) const {
    for (auto it = cols_.begin(); it != cols_.end(); ++it)
      if (it->first == name) return it;
    return cols_.end();
  }
  const_iterator begin() const { return cols_.begin(); }
  const_iterator end() const { return cols_.end(); }
  size_t size() const { return cols_.size(); }
  void reserve(size_t n) { cols_.reserve(n); }
  Value& operator[](const std::string& name) {
    for (auto& e : cols_)
      if (e.first == name) return e.second;
    cols_.emplace_back(name, Value());
    return cols_.back().second;
  }
  // Same columns with the same values, in any order.
  bool operator==(const ColumnValues& o) const {
    if (cols_.size() != o.cols_.size()) return false;
    for (auto& e : cols_) {
      auto it = o.find(e.first);
      if (it == o.end() || !it->second.SameAs(e.second)) return false;
    }
    return true;
  }

 private:
  std::vector<Entry> cols_;
};

struct RecordEntry {
  std::string entity;
  std::string lkey;  // EncodeKey of the legacy key
  std::string mkey;  // EncodeKey of the modern key
  int64_t version = 0;
  bool gone = false;
  std::optional<ColumnValues> lbase;  // legacy columns as last agreed
  std::optional<ColumnValues> mbase;  // modern columns as last agreed
  const std::string& key(Side s) const { return s == Side::kLegacy ? lkey : mkey; }
  std::optional<ColumnValues>& base(Side s) { return s == Side::kLegacy ? lbase : mbase; }
};

class RecordStore {
 public:
  RecordStore(Connector& legacy, Connector& modern) : legacy_(legacy), modern_(modern) {}

  // Reads the highest version in both databases. Call before Find/Put.
  Status Init();

  // The newest entry for `entity` whose `side` key is `key`, across both
  // databases; nullopt if none. A returned entry may be gone.
  Result<std::optional<RecordEntry>> Find(const std::string& entity, Side side, const std::string& key);

  // Find() for many keys at once (a few statements per database instead of
  // one per key). Keys without an entry are absent from the result.
  Status FindMany(const std::string& entity, Side side, const std::vector<std::string>& keys,
                  std::unordered_map<std::string, RecordEntry>* out);

  // Writes `entry` (with a new version) into `into`'s database.
  // REQUIRES: inside an apply transaction on that database.
  Status Put(Side into, RecordEntry* entry);
  // Put() for many entries, in order, with a few multi-row statements. When
  // two entries share a legacy key the later one is written (its version is
  // newer; it would overwrite the earlier one anyway).
  // Sent with Connector::ExecLater: a failure may surface at a later call.
  // REQUIRES: inside an apply transaction on that database.
  Status PutMany(Side into, std::vector<RecordEntry>* entries);

  // Housekeeping: removes up to `limit` gone entries stored in `side`'s
  // database, each after removing the older entries it hides in the other
  // database (so nothing stale can resurface). Short transactions; safe to
  // interrupt at any point. REQUIRES: no apply transaction open. Returns how
  // many were removed.
  Result<int> PurgeGoneEntries(Side side, int limit);

  static std::string EncodeBase(const ColumnValues& base);
  static std::optional<ColumnValues> DecodeBase(const Value& stored);

 private:
  Connector& Db(Side s) { return s == Side::kLegacy ? legacy_ : modern_; }
  Result<std::optional<RecordEntry>> FindIn(Side db, const std::string& entity, Side side, const std::string& key);
  // Newest entry per key found in both databases, by legacy or modern key.
  // `both_copies` (optional) gets the keys both databases returned a row for
  // under the same legacy key.
  Status FindManyRaw(const std::string& entity, Side side, const std::vector<std::string>& keys,
                     std::unordered_map<std::string, RecordEntry>* out,
                     std::unordered_set<std::string>* both_copies = nullptr);

  Connector& legacy_;
  Connector& modern_;
  int64_t version_ = 0;
};

}  // namespace tandem
