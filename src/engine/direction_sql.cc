#include "engine/direction_sql.h"

namespace tandem {

std::string JoinQuoted(const SqlSession& db, const std::vector<std::string>& cols, const std::string& sep,
                       const std::string& suffix) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? sep : "") + db.QuoteIdent(cols[i]) + suffix;
  return out;
}

std::string WhereKey(const SqlSession& db, const std::vector<std::string>& key_cols) {
  return " WHERE " + JoinQuoted(db, key_cols, " AND ", " = ?");
}

// SELECT `columns` FROM `table` WHERE key IN (...) `suffix`, for each IN-list length.
InListSql SelectByKeysSql(const SqlSession& db, const std::string& table, const std::vector<std::string>& columns,
                          const std::vector<std::string>& key_columns, const std::string& suffix) {
  InListSql out;
  for (size_t shape = 0; shape < kInListLengths.size(); ++shape) {
    const size_t n = kInListLengths[shape];
    std::string sql = "SELECT " + JoinQuoted(db, columns, ", ") + " FROM " + db.QuoteIdent(table) + " WHERE ";
    if (key_columns.size() == 1) {
      sql += db.QuoteIdent(key_columns[0]) + " IN (";
      for (size_t i = 0; i < n; ++i) sql += i ? ", ?" : "?";
      sql += ")";
    } else {
      std::string one = "(" + JoinQuoted(db, key_columns, " AND ", " = ?") + ")";
      for (size_t i = 0; i < n; ++i) sql += (i ? " OR " : "") + one;
    }
    out[shape] = sql + suffix;
  }
  return out;
}

DirectionSql BuildDirectionSql(const SqlSession& s, ApplyTarget& target, const DirectionMapping& dm) {
  const SqlSession& t = target.session();
  DirectionSql sql;
  std::vector<std::string> skeys(dm.source_columns.begin(), dm.source_columns.begin() + dm.source_key_count);
  sql.select_source_many = SelectByKeysSql(s, dm.source_table, dm.source_columns, skeys);
  std::vector<std::string> tcols = dm.target_key_columns;
  for (auto& r : dm.rules) tcols.push_back(r.target_column);
  sql.select_target = "SELECT " + JoinQuoted(t, tcols, ", ") + " FROM " + t.QuoteIdent(dm.target_table) +
                      WhereKey(t, dm.target_key_columns);
  sql.select_target_many = SelectByKeysSql(t, dm.target_table, tcols, dm.target_key_columns, t.LockRowsForUpdate());
  // Target rows are read to be merged and written in this transaction:
  // where other writers are not kept out by the database (PostgreSQL),
  // lock them, so an application's edit lands before the read (and is
  // merged) or after the write (and is captured), never in between.
  sql.select_target += t.LockRowsForUpdate();
  auto insert_sql = [&](const std::vector<std::string>& cols) {
    std::string placeholders;
    for (size_t i = 0; i < cols.size(); ++i) placeholders += i ? ", ?" : "?";
    return "INSERT INTO " + t.QuoteIdent(dm.target_table) + " (" + JoinQuoted(t, cols, ", ") + ") VALUES (" +
           placeholders + ")";
  };
  sql.insert_with_key = insert_sql(tcols);
  sql.insert_with_key_head = "INSERT INTO " + t.QuoteIdent(dm.target_table) + " (" + JoinQuoted(t, tcols, ", ") +
                             ") VALUES ";
  sql.insert_without_key = insert_sql(std::vector<std::string>(tcols.begin() + dm.target_key_columns.size(), tcols.end()));
  sql.delete_target = "DELETE FROM " + t.QuoteIdent(dm.target_table) + WhereKey(t, dm.target_key_columns);
  if (target.Traits().stores_values_in_own_form && !dm.rules.empty()) {
    sql.returning = " RETURNING " + JoinQuoted(t, std::vector<std::string>(tcols.begin() + dm.target_key_columns.size(),
                                                                          tcols.end()),
                                               ", ");
  }
  return sql;
}

}  // namespace tandem
