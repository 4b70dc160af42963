#include "engine/status_report.h"

#include <strings.h>

#include <map>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/capture_health.h"
#include "mapping/entity_mapping.h"
#include "engine/source_identity.h"
#include "engine/sync_engine.h"

namespace tandem {

namespace {

std::string KeyText(const std::string& encoded) {
  auto k = DecodeKey(encoded);
  return k.ok() ? DisplayKey(*k) : encoded;
}

Result<int64_t> TableId(SqlSession& db, const std::string& table) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db.Query("SELECT table_id, table_name FROM _tandem_capture", {}, &rows));
  for (auto& r : rows)
    if (strcasecmp(r[1].as_bytes().c_str(), table.c_str()) == 0) return r[0].as_integer();
  return int64_t{-1};
}

using nlohmann::json;

// Capture as install made it (a table rebuild drops its triggers), and the
// gaps it left: read live, whether or not an engine runs. `broken_entities`
// gets the entities of the tables whose capture is broken, with the reason.
Status ReportCapture(const Config& config, Connector& legacy, Connector& modern, json* report,
                     std::map<std::string, std::string>* broken_entities) {
  auto db = [&](Side s) -> Connector& { return s == Side::kLegacy ? legacy : modern; };
  json capture_problems = json::array(), capture_gaps = json::array();
  {
    auto expr_db = OpenExpressionDatabase();
    if (!expr_db.ok()) return expr_db.status();
    CompileOutcome compiled = CompileMapping(config, legacy, modern, **expr_db, nullptr, /*pause_failing=*/true);
    for (Side s : {Side::kLegacy, Side::kModern}) {
      if (compiled.mapping) {
        TANDEM_ASSIGN_OR_RETURN(auto issues, CheckCapture(*compiled.mapping, s, db(s)));
        for (const CaptureIssue& issue : issues) {
          capture_problems.push_back({{"side", SideName(s)}, {"table", issue.table}, {"problem", issue.problem}});
          for (const EntityConfig& e : config.entities)
            if (strcasecmp(e.side(s).table.c_str(), issue.table.c_str()) == 0)
              (*broken_entities)[e.name] = fmt::format("capture on the {} table '{}' is broken: {}; run 'tandem install'",
                                                       SideName(s), issue.table, issue.problem);
        }
      }
      TANDEM_ASSIGN_OR_RETURN(auto gaps, UnclearedCaptureGaps(db(s)));
      for (const CaptureGap& g : gaps)
        capture_gaps.push_back({{"id", fmt::format("{}:{}", SideName(s), g.id)},
                                {"table", g.table},
                                {"problem", g.problem},
                                {"noticed_at_ms", g.noticed_at_ms},
                                {"repaired_at_ms", g.repaired_at_ms ? json(g.repaired_at_ms) : json(nullptr)}});
    }
  }
  (*report)["capture_problems"] = capture_problems;
  (*report)["capture_gaps"] = capture_gaps;
  return Status::Ok();
}

// One entity of the direction `name` from `source` (whose stored position is `seq`).
Result<json> ReportEntity(const EntityConfig& e, Side source, const std::string& name, int64_t seq, Connector& src,
                          SqlSession& dst, int64_t now, std::map<std::string, std::string>& broken_entities) {
  bool enabled = e.direction == SyncDirection::kBoth ||
                 (source == Side::kLegacy ? e.direction == SyncDirection::kLegacyToModern
                                          : e.direction == SyncDirection::kModernToLegacy);
  json je;
  je["entity"] = e.name;
  je["enabled"] = enabled;
  TANDEM_ASSIGN_OR_RETURN(int64_t table_id, TableId(src, e.side(source).table));
  int64_t pending = 0, lag_ms = 0;
  if (table_id >= 0) {
    TANDEM_ASSIGN_OR_RETURN(auto p, src.PendingChanges(seq, static_cast<int>(table_id)));
    pending = p.count;
    if (pending && p.oldest_at_ms) lag_ms = std::max<int64_t>(0, now - p.oldest_at_ms);
  }
  je["pending"] = pending;
  je["lag_ms"] = lag_ms;
  TANDEM_ASSIGN_OR_RETURN(auto parked, dst.QueryOne("SELECT count(*), coalesce(sum(CASE WHEN kind = 'waiting' THEN 1 ELSE 0 END), 0) FROM "
                                                    "_tandem_parked WHERE direction = ? AND entity = ?",
                                                    {Value::Text(name), Value::Text(e.name)}));
  je["put_aside"] = (*parked)[0].as_integer() - (*parked)[1].as_integer();
  je["waiting"] = (*parked)[1].as_integer();
  // An entity the engine paused (its tables changed under the mapping)
  // holds its changes as waiting, with the reason.
  TANDEM_ASSIGN_OR_RETURN(auto paused, dst.QueryOne("SELECT reason FROM _tandem_parked WHERE direction = ? AND "
                                                    "entity = ? AND kind = 'waiting' AND reason LIKE 'entity "
                                                    "paused:%' ORDER BY id DESC LIMIT 1",
                                                    {Value::Text(name), Value::Text(e.name)}));
  if (paused) je["paused"] = (*paused)[0].as_bytes();
  else if (broken_entities.count(e.name)) je["paused"] = broken_entities[e.name];
  TANDEM_ASSIGN_OR_RETURN(auto conflicts, dst.QueryOne("SELECT count(*) FROM _tandem_conflicts WHERE direction = ? "
                                                       "AND entity = ?",
                                                       {Value::Text(name), Value::Text(e.name)}));
  je["conflicts"] = (*conflicts)[0].as_integer();
  TANDEM_ASSIGN_OR_RETURN(auto es, dst.QueryOne("SELECT last_applied_at_ms, applied_total FROM "
                                                "_tandem_entity_stats WHERE direction = ? AND entity = ?",
                                                {Value::Text(name), Value::Text(e.name)}));
  je["last_applied_at_ms"] = es && !(*es)[0].is_null() ? json((*es)[0].as_integer()) : json(nullptr);
  je["records_written"] = es ? (*es)[1].as_integer() : 0;
  return je;
}

// The direction from `source`: its position, whether it is stopped, its entities.
Result<json> ReportDirection(const Config& config, Side source, Connector& src, Connector& dst, int64_t now,
                             std::map<std::string, std::string>& broken_entities) {
  const std::string name = DirectionName(source);
  TANDEM_ASSIGN_OR_RETURN(auto pos, dst.QueryOne("SELECT seq, applied_at_ms, source_at_ms, applied_total, cursor "
                                                 "FROM _tandem_position WHERE direction = ?",
                                                 {Value::Text(name)}));
  int64_t seq = pos ? (*pos)[0].as_integer() : 0;
  TANDEM_RETURN_IF_ERROR(src.ResumeAt(seq, pos && !(*pos)[4].is_null() ? (*pos)[4].as_bytes() : ""));
  json d;
  d["direction"] = name;
  d["position"] = seq;
  d["applied_total"] = pos ? (*pos)[3].as_integer() : 0;
  d["last_applied_at_ms"] = pos && !(*pos)[1].is_null() ? json((*pos)[1].as_integer()) : json(nullptr);
  // Is the source the database, and the history, the position came from?
  // (Control tables of an older version: `tandem install` says so first.)
  if (auto stopped = StoppedDirectionMessage(config, src, dst, source); stopped.ok() && *stopped)
    d["stopped"] = **stopped;
  json entities = json::array();
  for (const EntityConfig& e : config.entities) {
    TANDEM_ASSIGN_OR_RETURN(json je, ReportEntity(e, source, name, seq, src, dst, now, broken_entities));
    entities.push_back(je);
  }
  d["entities"] = entities;
  return d;
}

// The put-aside changes and the latest conflicts stored in `db`.
Status ReportPutAsideAndConflicts(Side stored, SqlSession& db, json* parked, json* conflicts) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db.Query("SELECT id, direction, entity, source_key, kind, reason, parked_at_ms, "
                                  "attempts FROM _tandem_parked ORDER BY id",
                                  {}, &rows));
  for (auto& r : rows) {
    parked->push_back({{"id", fmt::format("{}:{}", SideName(stored), r[0].as_integer())},
                       {"direction", r[1].as_bytes()},
                       {"entity", r[2].as_bytes()},
                       {"key", KeyText(r[3].as_bytes())},
                       {"kind", r[4].as_bytes()},
                       {"reason", r[5].as_bytes()},
                       {"parked_at_ms", r[6].as_integer()},
                       {"attempts", r[7].as_integer()}});
  }
  rows.clear();
  TANDEM_RETURN_IF_ERROR(db.Query("SELECT id, at_ms, direction, entity, lkey, mkey, field, legacy_value, "
                                  "modern_value, winner, kind FROM _tandem_conflicts ORDER BY id DESC LIMIT 50",
                                  {}, &rows));
  for (auto& r : rows) {
    conflicts->push_back({{"id", fmt::format("{}:{}", SideName(stored), r[0].as_integer())},
                          {"at_ms", r[1].as_integer()},
                          {"direction", r[2].as_bytes()},
                          {"entity", r[3].as_bytes()},
                          {"legacy_key", KeyText(r[4].as_bytes())},
                          {"modern_key", KeyText(r[5].as_bytes())},
                          {"field", r[6].as_bytes()},
                          {"legacy_value", r[7].as_bytes()},
                          {"modern_value", r[8].as_bytes()},
                          {"winner", r[9].as_bytes()},
                          {"kind", r[10].as_bytes()}});
  }
  return Status::Ok();
}

}  // namespace

Result<nlohmann::json> BuildStatusReport(const Config& config, Connector& legacy, Connector& modern) {
  auto db = [&](Side s) -> Connector& { return s == Side::kLegacy ? legacy : modern; };
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(bool installed, db(s).IsInstalled());
    if (!installed)
      return Status::InvalidArgument(fmt::format("capture is not installed on the {} database ({}): run 'tandem install'",
                                                 SideName(s), db(s).Describe()));
  }
  const int64_t now = Clock::Default()->NowMillis();
  json report;
  report["generated_at_ms"] = now;
  std::map<std::string, std::string> broken_entities;  // entity -> reason
  TANDEM_RETURN_IF_ERROR(ReportCapture(config, legacy, modern, &report, &broken_entities));
  json directions = json::array();
  for (Side source : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(json d, ReportDirection(config, source, db(source), db(Other(source)), now,
                                                    broken_entities));
    directions.push_back(d);
  }
  report["directions"] = directions;
  json parked = json::array();
  json conflicts = json::array();
  for (Side stored : {Side::kLegacy, Side::kModern})
    TANDEM_RETURN_IF_ERROR(ReportPutAsideAndConflicts(stored, db(stored), &parked, &conflicts));
  report["put_aside"] = parked;
  report["conflicts"] = conflicts;
  return report;
}

std::string RenderStatusText(const nlohmann::json& report) {
  std::string out;
  int64_t now = report["generated_at_ms"];
  for (auto& d : report["directions"]) {
    std::string last = "never";
    if (!d["last_applied_at_ms"].is_null())
      last = fmt::format("{:.1f} s ago", (now - d["last_applied_at_ms"].get<int64_t>()) / 1000.0);
    out += fmt::format("{}  (position {}, {} changes applied in all, last batch {})\n", d["direction"].get<std::string>(),
                       d["position"].get<int64_t>(), d["applied_total"].get<int64_t>(), last);
    if (d.contains("stopped")) out += fmt::format("  STOPPED: {}\n", d["stopped"].get<std::string>());
    out += fmt::format("  {:<16} {:>8} {:>10} {:>10} {:>8} {:>10} {:>10}  {}\n", "entity", "pending", "lag",
                       "put-aside", "waiting", "conflicts", "written", "last applied");
    for (auto& e : d["entities"]) {
      if (!e["enabled"].get<bool>()) {
        out += fmt::format("  {:<16} {:>8}\n", e["entity"].get<std::string>(), "off");
        continue;
      }
      std::string when = "never";
      if (!e["last_applied_at_ms"].is_null())
        when = fmt::format("{:.1f} s ago", (now - e["last_applied_at_ms"].get<int64_t>()) / 1000.0);
      out += fmt::format("  {:<16} {:>8} {:>8}ms {:>10} {:>8} {:>10} {:>10}  {}\n", e["entity"].get<std::string>(),
                         e["pending"].get<int64_t>(), e["lag_ms"].get<int64_t>(), e["put_aside"].get<int64_t>(),
                         e["waiting"].get<int64_t>(), e["conflicts"].get<int64_t>(),
                         e["records_written"].get<int64_t>(), when);
      if (e.contains("paused")) out += fmt::format("    PAUSED: {}\n", e["paused"].get<std::string>());
    }
  }
  for (auto& p : report["capture_problems"])
    out += fmt::format("\nCAPTURE BROKEN on the {} table '{}': {}\n  its changes are not captured: run 'tandem "
                       "install' to repair capture, then reconcile the table (see 'tandem gaps')\n",
                       p["side"].get<std::string>(), p["table"].get<std::string>(), p["problem"].get<std::string>());
  if (!report["capture_gaps"].empty()) {
    out += "\ncapture gaps: changes made while capture was missing were not synced (compare and repair, then "
           "'tandem gaps --clear ID'):\n";
    for (auto& g : report["capture_gaps"])
      out += fmt::format("  {:<10} {} {}{}\n", g["id"].get<std::string>(), g["table"].get<std::string>(),
                         g["problem"].get<std::string>(), g["repaired_at_ms"].is_null() ? " (NOT REPAIRED)" : "");
  }
  if (!report["put_aside"].empty()) {
    out += "\nput-aside changes (retry: tandem retry ID | discard: tandem discard ID):\n";
    for (auto& p : report["put_aside"])
      out += fmt::format("  {:<10} {} {} {} [{}] {}\n", p["id"].get<std::string>(), p["direction"].get<std::string>(),
                         p["entity"].get<std::string>(), p["key"].get<std::string>(), p["kind"].get<std::string>(),
                         p["reason"].get<std::string>());
  }
  if (!report["conflicts"].empty()) {
    out += "\nconflicts (same field changed on both sides):\n";
    for (auto& c : report["conflicts"])
      out += fmt::format("  {:<10} {} legacy {} / modern {} field '{}': legacy {} vs modern {} -> {} wins\n",
                         c["id"].get<std::string>(), c["entity"].get<std::string>(), c["legacy_key"].get<std::string>(),
                         c["modern_key"].get<std::string>(), c["field"].get<std::string>(),
                         c["legacy_value"].get<std::string>(), c["modern_value"].get<std::string>(),
                         c["winner"].get<std::string>());
  }
  return out;
}

Result<int64_t> RequestRetry(SqlSession& db, int64_t id) {
  int64_t n = 0;
  TANDEM_RETURN_IF_ERROR(db.Exec(id < 0 ? "UPDATE _tandem_parked SET retry_requested = 1"
                                        : "UPDATE _tandem_parked SET retry_requested = 1 WHERE id = ?",
                                 id < 0 ? Row{} : Row{Value::Integer(id)}, &n));
  return n;
}

Status DiscardParked(ApplyTarget& target, int64_t id) {
  SqlSession& db = target.session();
  TANDEM_ASSIGN_OR_RETURN(auto row, db.QueryOne("SELECT direction, entity, source_key, reason FROM _tandem_parked WHERE "
                                                "id = ?",
                                                {Value::Integer(id)}));
  if (!row) return Status::NotFound(fmt::format("no put-aside change with id {} in {}", id, db.Describe()));
  TANDEM_RETURN_IF_ERROR(target.BeginApply());
  Status st = db.Exec("DELETE FROM _tandem_parked WHERE id = ?", {Value::Integer(id)});
  if (st.ok())
    st = db.Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'discard', ?)",
                 {Value::Integer(Clock::Default()->NowMillis()),
                  Value::Text(fmt::format("{} {} {} (was: {})", (*row)[0].as_bytes(), (*row)[1].as_bytes(),
                                          KeyText((*row)[2].as_bytes()), (*row)[3].as_bytes()))});
  if (st.ok()) return target.CommitApply();
  target.RollbackApply();
  return st;
}

}  // namespace tandem
