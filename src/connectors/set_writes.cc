// The default set writes (Connector::UpdateMany / DeleteMany): portable SQL,
// one prepared statement per row for updates, IN-lists for deletes.
#include <fmt/format.h>

#include "connectors/connector.h"
#include "connectors/multi_row.h"

namespace tandem {

namespace {
std::string Joined(const Connector& db, const std::vector<std::string>& cols, const char* sep, const char* suffix) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? sep : "") + db.QuoteIdent(cols[i]) + suffix;
  return out;
}
}  // namespace

Status Connector::UpdateMany(const KeyedTable& t, const std::vector<std::string>& columns,
                             const std::vector<ColumnType>& /*types*/, const std::vector<Row>& rows,
                             std::deque<std::vector<Row>>* returned) {
  const size_t nk = t.key_columns.size();
  std::string sql = "UPDATE " + QuoteIdent(t.table) + " SET " + Joined(*this, columns, ", ", " = ?") + " WHERE " +
                    Joined(*this, t.key_columns, " AND ", " = ?");
  if (returned) sql += " RETURNING " + Joined(*this, t.key_columns, ", ", "") + ", " + Joined(*this, columns, ", ", "");
  Row params;
  for (const Row& r : rows) {
    params.assign(r.begin() + nk, r.end());
    params.insert(params.end(), r.begin(), r.begin() + nk);
    TANDEM_RETURN_IF_ERROR(returned ? QueryLater(sql, params, &returned->emplace_back()) : ExecLater(sql, params));
  }
  return Status::Ok();
}

Status Connector::DeleteMany(const KeyedTable& t, const std::vector<Row>& keys) {
  const size_t nk = t.key_columns.size();
  const std::string head = "DELETE FROM " + QuoteIdent(t.table) + " WHERE " +
                           (nk == 1 ? QuoteIdent(t.key_columns[0]) : "(" + Joined(*this, t.key_columns, ", ", "") + ")") +
                           " IN ";
  Row params;
  size_t at = 0;
  for (size_t n : MultiRowCounts(keys.size(), nk)) {
    params.clear();
    for (size_t i = at; i < at + n; ++i) params.insert(params.end(), keys[i].begin(), keys[i].end());
    at += n;
    std::string list = nk == 1 ? MultiRowValues(1, n) : "(" + MultiRowValues(n, nk) + ")";
    TANDEM_RETURN_IF_ERROR(ExecLater(head + list, params));
  }
  return Status::Ok();
}

}  // namespace tandem
