// The defaults of ApplyTarget: the set writes (UpdateMany / DeleteMany) in
// portable SQL, one prepared statement per row for updates, IN-lists for
// deletes; and the reading of a foreign-key rejection.
#include "connectors/apply_target.h"

#include <fmt/format.h>

#include "connectors/multi_row.h"

namespace tandem {

namespace {
std::string Joined(const SqlSession& db, const std::vector<std::string>& cols, const char* sep, const char* suffix) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? sep : "") + db.QuoteIdent(cols[i]) + suffix;
  return out;
}
}  // namespace

bool ApplyTarget::IsForeignKeyViolation(const Status& failed) const {
  return failed.code() == StatusCode::kConstraint && failed.message().find("FOREIGN KEY") != std::string::npos;
}

Status ApplyTarget::UpdateMany(const KeyedTable& t, const std::vector<std::string>& columns,
                               const std::vector<ColumnType>& /*types*/, const std::vector<Row>& rows,
                               std::deque<std::vector<Row>>* returned) {
  SqlSession& db = session();
  const size_t nk = t.key_columns.size();
  std::string sql = "UPDATE " + db.QuoteIdent(t.table) + " SET " + Joined(db, columns, ", ", " = ?") + " WHERE " +
                    Joined(db, t.key_columns, " AND ", " = ?");
  if (returned) sql += " RETURNING " + Joined(db, t.key_columns, ", ", "") + ", " + Joined(db, columns, ", ", "");
  Row params;
  for (const Row& r : rows) {
    params.assign(r.begin() + nk, r.end());
    params.insert(params.end(), r.begin(), r.begin() + nk);
    TANDEM_RETURN_IF_ERROR(returned ? db.QueryLater(sql, params, &returned->emplace_back()) : db.ExecLater(sql, params));
  }
  return Status::Ok();
}

Status ApplyTarget::DeleteMany(const KeyedTable& t, const std::vector<Row>& keys) {
  SqlSession& db = session();
  const size_t nk = t.key_columns.size();
  const std::string head = "DELETE FROM " + db.QuoteIdent(t.table) + " WHERE " +
                           (nk == 1 ? db.QuoteIdent(t.key_columns[0]) : "(" + Joined(db, t.key_columns, ", ", "") + ")") +
                           " IN ";
  Row params;
  size_t at = 0;
  for (size_t n : MultiRowCounts(keys.size(), nk)) {
    params.clear();
    for (size_t i = at; i < at + n; ++i) params.insert(params.end(), keys[i].begin(), keys[i].end());
    at += n;
    std::string list = nk == 1 ? MultiRowValues(1, n) : "(" + MultiRowValues(n, nk) + ")";
    TANDEM_RETURN_IF_ERROR(db.ExecLater(head + list, params));
  }
  return Status::Ok();
}

}  // namespace tandem
