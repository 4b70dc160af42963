#include "engine/conflict_queue.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/key_codec.h"

namespace tandem {

namespace {
std::string KeyText(const Value& encoded) {
  if (encoded.is_null()) return "";
  auto k = DecodeKey(encoded.as_bytes());
  return k.ok() ? DisplayKey(*k) : encoded.as_bytes();
}
std::string Text(const Value& v) { return v.is_null() ? "" : v.ToCodeText(); }
}  // namespace

Result<nlohmann::json> ListConflicts(SqlSession& legacy, SqlSession& modern, const ConflictFilter& filter) {
  nlohmann::json out = nlohmann::json::array();
  std::string sql =
      "SELECT id, at_ms, direction, entity, lkey, mkey, field, legacy_value, modern_value, winner, kind, policy, "
      "base_value, status, settled_at_ms, resolution FROM _tandem_conflicts WHERE (? OR status = 'open') AND (? = '' "
      "OR entity = ?) AND (NOT ? OR (lkey = ? AND mkey = ?)) ORDER BY id DESC LIMIT ?";
  for (Side stored : {Side::kLegacy, Side::kModern}) {
    SqlSession& db = stored == Side::kLegacy ? legacy : modern;
    std::vector<Row> rows;
    TANDEM_RETURN_IF_ERROR(db.Query(sql,
                                    {Value::Integer(filter.all ? 1 : 0), Value::Text(filter.entity),
                                     Value::Text(filter.entity), Value::Integer(filter.one_record ? 1 : 0),
                                     Value::Text(filter.lkey), Value::Text(filter.mkey), Value::Integer(filter.limit)},
                                    &rows));
    for (auto& r : rows) {
      nlohmann::json c = {{"id", fmt::format("{}:{}", SideName(stored), r[0].as_integer())},
                          {"at_ms", r[1].as_integer()},
                          {"direction", Text(r[2])},
                          {"entity", Text(r[3])},
                          {"legacy_key", KeyText(r[4])},
                          {"modern_key", KeyText(r[5])},
                          {"field", Text(r[6])},
                          {"legacy_value", Text(r[7])},
                          {"modern_value", Text(r[8])},
                          {"winner", Text(r[9])},
                          {"kind", Text(r[10])},
                          {"policy", Text(r[11])},
                          {"base_value", r[12].is_null() ? nlohmann::json() : nlohmann::json(Text(r[12]))},
                          {"status", Text(r[13])}};
      c["settled_at_ms"] = r[14].is_null() ? nlohmann::json() : nlohmann::json(r[14].as_integer());
      c["resolution"] = r[15].is_null() ? nlohmann::json() : nlohmann::json(Text(r[15]));
      out.push_back(std::move(c));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["at_ms"].get<int64_t>() > b["at_ms"].get<int64_t>();
  });
  return out;
}

std::string RenderConflictsText(const nlohmann::json& conflicts, bool all) {
  if (conflicts.empty()) return all ? "no conflicts recorded\n" : "no open conflicts (--all lists settled ones too)\n";
  std::string out = fmt::format("{:<12} {:<9} {:<10} {:<14} {:<14} {:<14} {:<16} {}\n", "id", "status", "entity",
                                "legacy key", "modern key", "field", "policy", "legacy / modern / base -> winner");
  for (auto& c : conflicts) {
    std::string base = c["base_value"].is_null() ? "-" : c["base_value"].get<std::string>();
    std::string winner = c["status"] == "open" ? "waiting for 'tandem conflicts resolve'"
                                               : c["winner"].get<std::string>() + " wins";
    out += fmt::format("{:<12} {:<9} {:<10} {:<14} {:<14} {:<14} {:<16} {} / {} / {} -> {} ({})\n",
                       c["id"].get<std::string>(), c["status"].get<std::string>(), c["entity"].get<std::string>(),
                       c["legacy_key"].get<std::string>(), c["modern_key"].get<std::string>(),
                       c["field"].get<std::string>(), c["policy"].get<std::string>(),
                       c["legacy_value"].get<std::string>(), c["modern_value"].get<std::string>(), base, winner,
                       c["kind"].get<std::string>());
  }
  return out;
}

Result<nlohmann::json> ShowConflict(const Config& config, SqlSession& legacy, SqlSession& modern, Side stored,
                                    int64_t id) {
  SqlSession& here = stored == Side::kLegacy ? legacy : modern;
  TANDEM_ASSIGN_OR_RETURN(auto row, here.QueryOne("SELECT entity, lkey, mkey FROM _tandem_conflicts WHERE id = ?",
                                                  {Value::Integer(id)}));
  if (!row) return Status::NotFound(fmt::format("no conflict {}:{}", SideName(stored), id));
  const std::string entity = (*row)[0].as_bytes();
  nlohmann::json out = {{"id", fmt::format("{}:{}", SideName(stored), id)},
                        {"entity", entity},
                        {"legacy_key", KeyText((*row)[1])},
                        {"modern_key", KeyText((*row)[2])}};
  // Every conflict of this record.
  ConflictFilter record{entity, /*all=*/true, /*limit=*/100000, /*one_record=*/true, (*row)[1].ToCodeText(),
                        (*row)[2].ToCodeText()};
  TANDEM_ASSIGN_OR_RETURN(out["conflicts"], ListConflicts(legacy, modern, record));
  // The record as it is now on each side.
  const EntityConfig* ec = config.FindEntity(entity);
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const char* name = s == Side::kLegacy ? "legacy_row" : "modern_row";
    out[name] = nullptr;
    const Value& encoded = (*row)[s == Side::kLegacy ? 1 : 2];
    if (!ec || encoded.is_null()) continue;
    auto key = DecodeKey(encoded.as_bytes());
    if (!key.ok() || key->size() != ec->side(s).key.size()) continue;
    SqlSession& db = s == Side::kLegacy ? legacy : modern;
    std::string sql = "SELECT * FROM " + db.QuoteIdent(ec->side(s).table) + " WHERE ";
    for (size_t i = 0; i < key->size(); ++i) sql += (i ? " AND " : "") + db.QuoteIdent(ec->side(s).key[i]) + " = ?";
    auto table = db.DescribeTable(ec->side(s).table);
    auto current = db.QueryOne(sql, *key);
    if (!table.ok() || !*table || !current.ok() || !*current) continue;
    nlohmann::json cols = nlohmann::json::object();
    for (size_t i = 0; i < (*table)->columns.size() && i < (*current)->size(); ++i)
      cols[(*table)->columns[i].name] = (**current)[i].ToDisplay();
    out[name] = cols;
  }
  return out;
}

std::string RenderConflictText(const nlohmann::json& shown) {
  std::string out = fmt::format("conflict {}: {} legacy {} / modern {}\n\n", shown["id"].get<std::string>(),
                                shown["entity"].get<std::string>(), shown["legacy_key"].get<std::string>(),
                                shown["modern_key"].get<std::string>());
  out += fmt::format("  {:<12} {:<9} {:<14} {:<16} {:<20} {:<20} {:<20} {}\n", "id", "status", "kind", "field",
                     "legacy version", "modern version", "base", "policy -> outcome");
  for (auto& c : shown["conflicts"]) {
    std::string outcome = c["status"] == "open" ? "waiting" : c["winner"].get<std::string>();
    if (!c["resolution"].is_null()) outcome += " (" + c["resolution"].get<std::string>() + ")";
    out += fmt::format("  {:<12} {:<9} {:<14} {:<16} {:<20} {:<20} {:<20} {} -> {}\n", c["id"].get<std::string>(),
                       c["status"].get<std::string>(), c["kind"].get<std::string>(), c["field"].get<std::string>(),
                       c["legacy_value"].get<std::string>(), c["modern_value"].get<std::string>(),
                       c["base_value"].is_null() ? "-" : c["base_value"].get<std::string>(),
                       c["policy"].get<std::string>(), outcome);
  }
  out += "\n  (versions are in the terms of the side each conflict was applied to; the base is the value both\n"
         "   sides last agreed on)\n";
  for (const char* side : {"legacy", "modern"}) {
    const auto& r = shown[std::string(side) + "_row"];
    out += fmt::format("\n  {} row now:", side);
    if (r.is_null()) {
      out += " (none)\n";
      continue;
    }
    out += "\n";
    for (auto& [col, v] : r.items()) out += fmt::format("    {:<16} {}\n", col, v.get<std::string>());
  }
  return out;
}

}  // namespace tandem
