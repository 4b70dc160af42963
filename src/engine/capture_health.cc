#include "engine/capture_health.h"

#include <strings.h>

#include <fmt/format.h>

namespace tandem {

Result<CaptureTable> CaptureTableFor(const CapturedTableSpec& spec, int id, SqlSession& db) {
  CaptureTable capture{id, spec.table, spec.key_columns, {}};
  TANDEM_ASSIGN_OR_RETURN(auto info, db.DescribeTable(spec.table));
  for (const std::string& k : spec.key_columns) {
    int at = info ? info->Find(k) : -1;
    if (at < 0) break;
    capture.key_types.push_back(info->columns[at].declared_type);
  }
  if (capture.key_types.size() != capture.key_columns.size()) capture.key_types.clear();
  return capture;
}

Result<std::vector<CaptureIssue>> CheckCapture(const CompiledMapping& mapping, Side side, CaptureDdl& ddl) {
  SqlSession& db = ddl.session();
  std::vector<CaptureIssue> out;
  std::vector<Row> registered;
  TANDEM_RETURN_IF_ERROR(db.Query("SELECT table_id, table_name FROM _tandem_capture", {}, &registered));
  for (const CapturedTableSpec& spec : mapping.captured_on(side)) {
    TANDEM_ASSIGN_OR_RETURN(auto info, db.DescribeTable(spec.table));
    if (!info) continue;  // a missing table pauses its entities already (the mapping does not compile)
    int id = 0;
    for (const Row& r : registered)
      if (strcasecmp(r[1].as_bytes().c_str(), spec.table.c_str()) == 0) id = static_cast<int>(r[0].as_integer());
    if (id == 0) {
      out.push_back({spec.table, fmt::format("table '{}' is not captured (install has not run since it was mapped)",
                                             spec.table)});
      continue;
    }
    TANDEM_ASSIGN_OR_RETURN(CaptureTable capture, CaptureTableFor(spec, id, db));
    TANDEM_ASSIGN_OR_RETURN(std::string problem, ddl.CaptureProblem(capture));
    if (!problem.empty()) out.push_back({spec.table, problem});
  }
  return out;
}

Result<bool> RecordCaptureGap(SqlSession& db, const std::string& table, const std::string& problem, int64_t now_ms) {
  TANDEM_ASSIGN_OR_RETURN(auto open, db.QueryOne("SELECT id FROM _tandem_gaps WHERE table_name = ? AND repaired_at_ms "
                                                 "IS NULL",
                                                 {Value::Text(table)}));
  if (open) return false;
  TANDEM_RETURN_IF_ERROR(db.Exec("INSERT INTO _tandem_gaps(table_name, problem, noticed_at_ms) VALUES (?, ?, ?)",
                                 {Value::Text(table), Value::Text(problem), Value::Integer(now_ms)}));
  return true;
}

std::string CloseCaptureGapsSql(SqlSession& db, const std::string& table, int64_t now_ms) {
  std::string literal = "'";
  for (char c : table) literal += c == '\'' ? std::string("''") : std::string(1, c);
  literal += "'";
  (void)db;
  return fmt::format("UPDATE _tandem_gaps SET repaired_at_ms = {} WHERE table_name = {} AND repaired_at_ms IS NULL",
                     now_ms, literal);
}

Result<std::vector<CaptureGap>> UnclearedCaptureGaps(SqlSession& db) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db.Query("SELECT id, table_name, problem, noticed_at_ms, repaired_at_ms FROM _tandem_gaps "
                                  "WHERE cleared_at_ms IS NULL ORDER BY id",
                                  {}, &rows));
  std::vector<CaptureGap> out;
  for (const Row& r : rows)
    out.push_back({r[0].as_integer(), r[1].as_bytes(), r[2].as_bytes(), r[3].as_integer(),
                   r[4].is_null() ? 0 : r[4].as_integer()});
  return out;
}

Result<int64_t> ClearCaptureGaps(Connector& db, int64_t id, int64_t now_ms) {
  TANDEM_RETURN_IF_ERROR(db.BeginWrite());
  int64_t n = 0;
  Status st = id < 0 ? db.Exec("UPDATE _tandem_gaps SET cleared_at_ms = ? WHERE cleared_at_ms IS NULL AND "
                               "repaired_at_ms IS NOT NULL",
                               {Value::Integer(now_ms)}, &n)
                     : db.Exec("UPDATE _tandem_gaps SET cleared_at_ms = ? WHERE id = ? AND cleared_at_ms IS NULL AND "
                               "repaired_at_ms IS NOT NULL",
                               {Value::Integer(now_ms), Value::Integer(id)}, &n);
  if (st.ok() && n > 0)
    st = db.Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'clear-gap', ?)",
                 {Value::Integer(now_ms), Value::Text(id < 0 ? std::string("all repaired gaps")
                                                             : fmt::format("gap {}", id))});
  if (!st.ok()) {
    db.RollbackApply();
    return st;
  }
  TANDEM_RETURN_IF_ERROR(db.Commit());
  return n;
}

std::string CaptureGapAdvice(const std::string& config_path) {
  return fmt::format("repair capture with 'tandem install -c {}'; changes made to the table while capture was missing "
                     "were not captured and are not synced: compare the entity's rows on both sides and repair them "
                     "(docs/operations.md), then clear the gap with 'tandem gaps --clear ID -c {}'",
                     config_path, config_path);
}

}  // namespace tandem
