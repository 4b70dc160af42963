#include "mapping/expression.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace tandem {

Result<std::unique_ptr<SqliteHandle>> OpenExpressionDatabase() {
  return SqliteHandle::Open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, 0);
}

namespace {
std::string Quote(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += "\"\"";
    else out += c;
  }
  return out + "\"";
}

std::string BuildSql(const std::vector<std::string>& inputs, const std::vector<std::string>& exprs) {
  std::string sql = "SELECT ";
  for (size_t i = 0; i < exprs.size(); ++i) sql += fmt::format("{}({})", i ? ", " : "", exprs[i]);
  sql += " FROM (SELECT ";
  for (size_t i = 0; i < inputs.size(); ++i) sql += fmt::format("{}?{} AS {}", i ? ", " : "", i + 1, Quote(inputs[i]));
  if (inputs.empty()) sql += "1";
  return sql + ")";
}
}  // namespace

Status ExpressionSet::CompileOne(SqliteHandle& db, const std::vector<std::string>& inputs, const std::string& expr) {
  if (expr.find(';') != std::string::npos)
    return Status::InvalidArgument("an expression may not contain ';'");
  std::string sql = BuildSql(inputs, {expr});
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db.db(), sql.c_str(), -1, &stmt, nullptr);
  std::string msg = sqlite3_errmsg(db.db());
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) return Status::InvalidArgument(msg);
  return Status::Ok();
}

Result<std::unique_ptr<ExpressionSet>> ExpressionSet::Compile(SqliteHandle& db, const std::vector<std::string>& inputs,
                                                              const std::vector<std::string>& exprs) {
  auto set = std::unique_ptr<ExpressionSet>(new ExpressionSet());
  set->db_ = &db;
  set->count_ = exprs.size();
  if (exprs.empty()) return set;
  for (size_t i = 0; i < exprs.size(); ++i) {
    Status st = CompileOne(db, inputs, exprs[i]);
    if (!st.ok()) return Status::InvalidArgument(fmt::format("expression #{} '{}': {}", i, exprs[i], st.message()));
  }
  std::string sql = BuildSql(inputs, exprs);
  int rc = sqlite3_prepare_v3(db.db(), sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &set->stmt_, nullptr);
  if (rc != SQLITE_OK) return Status::InvalidArgument(sqlite3_errmsg(db.db()));
  return set;
}

ExpressionSet::~ExpressionSet() { sqlite3_finalize(stmt_); }

Status ExpressionSet::Evaluate(const Row& inputs, Row* outputs) {
  outputs->clear();
  if (!stmt_) return Status::Ok();
  sqlite3_reset(stmt_);
  for (size_t i = 0; i < inputs.size(); ++i) SqliteHandle::BindValue(stmt_, static_cast<int>(i + 1), inputs[i]);
  int rc = sqlite3_step(stmt_);
  if (rc != SQLITE_ROW) {
    Status st = Status::Constraint(fmt::format("expression failed: {}", sqlite3_errmsg(db_->db())));
    sqlite3_reset(stmt_);
    return st;
  }
  outputs->reserve(count_);
  for (size_t i = 0; i < count_; ++i) outputs->push_back(SqliteHandle::ColumnValue(stmt_, static_cast<int>(i)));
  sqlite3_reset(stmt_);
  return Status::Ok();
}

std::vector<int> ReferencedColumns(const std::string& expr, const std::vector<std::string>& columns) {
  std::vector<int> out;
  auto add = [&](const std::string& name) {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (strcasecmp(columns[i].c_str(), name.c_str()) == 0) {
        int idx = static_cast<int>(i);
        if (std::find(out.begin(), out.end(), idx) == out.end()) out.push_back(idx);
      }
    }
  };
  size_t i = 0;
  while (i < expr.size()) {
    char c = expr[i];
    if (c == '\'') {  // string literal: skip, '' is an escaped quote
      ++i;
      while (i < expr.size()) {
        if (expr[i] == '\'' && i + 1 < expr.size() && expr[i + 1] == '\'') i += 2;
        else if (expr[i] == '\'') { ++i; break; }
        else ++i;
      }
    } else if (c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : c;
      size_t end = expr.find(close, i + 1);
      if (end == std::string::npos) end = expr.size();
      add(expr.substr(i + 1, end - i - 1));
      i = end + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = i;
      while (i < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[i])) || expr[i] == '_' || expr[i] == '$')) ++i;
      add(expr.substr(start, i - start));
    } else {
      ++i;
    }
  }
  return out;
}

}  // namespace tandem
