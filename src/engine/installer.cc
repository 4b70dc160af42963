#include "engine/installer.h"

#include <strings.h>

#include <fmt/format.h>

#include "core/clock.h"
#include "engine/capture_health.h"

namespace tandem {

namespace {

struct InstalledTable {
  int id;
  std::string name;
};

Result<std::vector<InstalledTable>> InstalledTables(CaptureDdl& db) {
  std::vector<InstalledTable> out;
  TANDEM_ASSIGN_OR_RETURN(bool installed, db.IsInstalled());
  if (!installed) return out;
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db.session().Query("SELECT table_id, table_name FROM _tandem_capture ORDER BY table_id", {}, &rows));
  for (auto& r : rows) out.push_back({static_cast<int>(r[0].as_integer()), r[1].as_bytes()});
  return out;
}

std::string SqlLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Result<InstallPlan> PlanInstall(const CompiledMapping& mapping, CaptureDdl& legacy, CaptureDdl& modern) {
  InstallPlan plan;
  const int64_t now = Clock::Default()->NowMillis();
  for (Side side : {Side::kLegacy, Side::kModern}) {
    CaptureDdl& db = side == Side::kLegacy ? legacy : modern;
    auto& out = plan.statements[side == Side::kLegacy ? 0 : 1];
    TANDEM_ASSIGN_OR_RETURN(out, db.UpgradeControlTablesSql());
    for (auto& sql : db.ControlTablesSql()) out.push_back(sql);
    TANDEM_ASSIGN_OR_RETURN(auto installed, InstalledTables(db));
    int next_id = 1;
    for (auto& t : installed) next_id = std::max(next_id, t.id + 1);
    const auto& specs = mapping.captured_on(side);
    for (auto& t : installed) {
      bool still = false;
      for (auto& s : specs) still |= strcasecmp(s.table.c_str(), t.name.c_str()) == 0;
      if (!still) {
        for (auto& sql : db.DropCaptureSql(CaptureTable{t.id, t.name, {}, {}})) out.push_back(sql);
        out.push_back(fmt::format("DELETE FROM _tandem_capture WHERE table_id = {}", t.id));
      }
    }
    for (auto& s : specs) {
      int id = 0;
      for (auto& t : installed)
        if (strcasecmp(s.table.c_str(), t.name.c_str()) == 0) id = t.id;
      const bool was_captured = id != 0;
      if (!id) id = next_id++;
      TANDEM_ASSIGN_OR_RETURN(CaptureTable capture, CaptureTableFor(s, id, db.session()));
      if (was_captured) {
        // Capture that went missing (a table rebuild) is repaired by the
        // statements below; what was written meanwhile was never captured.
        TANDEM_ASSIGN_OR_RETURN(auto info, db.session().DescribeTable(s.table));
        TANDEM_ASSIGN_OR_RETURN(std::string problem, info ? db.CaptureProblem(capture) : Result<std::string>(""));
        if (!problem.empty()) {
          plan.warnings.push_back(fmt::format(
              "capture on the {} table '{}' was broken ({}): it is repaired now, but changes made to the table while "
              "it was missing were not captured and are not synced; a gap is recorded ('tandem gaps'): compare the "
              "entity's rows on both sides and repair them (docs/operations.md), then clear it",
              SideName(side), s.table, problem));
          out.push_back(fmt::format("INSERT INTO _tandem_gaps(table_name, problem, noticed_at_ms) SELECT {0}, {1}, {2} "
                                    "WHERE NOT EXISTS (SELECT 1 FROM _tandem_gaps WHERE table_name = {0} AND "
                                    "repaired_at_ms IS NULL)",
                                    SqlLiteral(s.table), SqlLiteral(problem), now));
        }
        out.push_back(CloseCaptureGapsSql(db.session(), s.table, now));
      }
      for (auto& sql : db.CaptureSql(capture)) out.push_back(sql);
    }
  }
  return plan;
}

Result<InstallPlan> PlanUninstall(CaptureDdl& legacy, CaptureDdl& modern, bool purge) {
  InstallPlan plan;
  for (Side side : {Side::kLegacy, Side::kModern}) {
    CaptureDdl& db = side == Side::kLegacy ? legacy : modern;
    auto& out = plan.statements[side == Side::kLegacy ? 0 : 1];
    TANDEM_ASSIGN_OR_RETURN(auto installed, InstalledTables(db));
    for (auto& t : installed)
      for (auto& sql : db.DropCaptureSql(CaptureTable{t.id, t.name, {}, {}})) out.push_back(sql);
    for (auto& sql : purge ? db.DropControlTablesSql() : db.DropRuntimeTablesSql()) out.push_back(sql);
  }
  return plan;
}

Result<std::vector<UnlinkedEntity>> FindUnlinkedEntities(const CompiledMapping& mapping, SqlSession& legacy,
                                                         SqlSession& modern) {
  bool has_key_map[2];
  for (Side side : {Side::kLegacy, Side::kModern}) {
    SqlSession& db = side == Side::kLegacy ? legacy : modern;
    TANDEM_ASSIGN_OR_RETURN(auto table, db.DescribeTable("_tandem_records"));
    has_key_map[side == Side::kLegacy ? 0 : 1] = table.has_value();
  }
  auto has_rows = [](SqlSession& db, const std::string& table) -> Result<bool> {
    TANDEM_ASSIGN_OR_RETURN(auto row, db.QueryOne("SELECT 1 FROM " + db.QuoteIdent(table) + " LIMIT 1", {}));
    return row.has_value();
  };
  std::vector<UnlinkedEntity> out;
  for (const EntityMapping& em : mapping.entities) {
    const std::string& ltable = em.to_modern.source_table;
    const std::string& mtable = em.to_legacy.source_table;
    TANDEM_ASSIGN_OR_RETURN(bool legacy_rows, has_rows(legacy, ltable));
    if (!legacy_rows) continue;
    TANDEM_ASSIGN_OR_RETURN(bool modern_rows, has_rows(modern, mtable));
    if (!modern_rows) continue;
    bool linked = false;
    for (Side side : {Side::kLegacy, Side::kModern}) {
      if (linked || !has_key_map[side == Side::kLegacy ? 0 : 1]) continue;
      SqlSession& db = side == Side::kLegacy ? legacy : modern;
      TANDEM_ASSIGN_OR_RETURN(auto entry, db.QueryOne("SELECT 1 FROM _tandem_records WHERE entity = ? LIMIT 1",
                                                      {Value::Text(em.name)}));
      linked = entry.has_value();
    }
    if (!linked) out.push_back({em.name, ltable, mtable});
  }
  return out;
}

Status ExecutePlan(const InstallPlan& plan, Connector& legacy, Connector& modern) {
  for (Side side : {Side::kLegacy, Side::kModern}) {
    Connector& db = side == Side::kLegacy ? legacy : modern;
    const auto& stmts = plan.statements[side == Side::kLegacy ? 0 : 1];
    // journal_mode cannot change inside a transaction: run PRAGMAs first.
    for (auto& sql : stmts)
      if (sql.rfind("PRAGMA", 0) == 0) TANDEM_RETURN_IF_ERROR(db.Exec(sql, {}, nullptr).WithContext(db.Describe()));
    TANDEM_RETURN_IF_ERROR(db.BeginWrite().WithContext(db.Describe()));
    for (auto& sql : stmts) {
      if (sql.rfind("PRAGMA", 0) == 0) continue;
      Status st = db.Exec(sql, {}, nullptr);
      if (!st.ok()) {
        db.RollbackApply();
        return st.WithContext(fmt::format("{} database {}", SideName(side), db.Describe()));
      }
    }
    TANDEM_RETURN_IF_ERROR(db.Commit().WithContext(db.Describe()));
  }
  return Status::Ok();
}

}  // namespace tandem
