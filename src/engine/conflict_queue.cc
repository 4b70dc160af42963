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

Result<nlohmann::json> ListConflicts(Connector& legacy, Connector& modern, const ConflictFilter& filter) {
  nlohmann::json out = nlohmann::json::array();
  std::string sql =
      "SELECT id, at_ms, direction, entity, lkey, mkey, field, legacy_value, modern_value, winner, kind, policy, "
      "base_value, status, settled_at_ms, resolution FROM _tandem_conflicts WHERE (? OR status = 'open') AND (? = '' "
      "OR entity = ?) ORDER BY id DESC LIMIT ?";
  for (Side stored : {Side::kLegacy, Side::kModern}) {
    Connector& db = stored == Side::kLegacy ? legacy : modern;
    std::vector<Row> rows;
    TANDEM_RETURN_IF_ERROR(db.Query(sql,
                                    {Value::Integer(filter.all ? 1 : 0), Value::Text(filter.entity),
                                     Value::Text(filter.entity), Value::Integer(filter.limit)},
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

}  // namespace tandem
