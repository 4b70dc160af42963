// Expressions: SQLite SQL expressions over one source row, evaluated by
// Tandem itself in a private in-memory SQLite database, so an expression means
// the same whatever databases are being synced.
//
// An ExpressionSet compiles N expressions over a fixed list of input column
// names into one prepared statement
//   SELECT e1, ..., eN FROM (SELECT ?1 AS "c1", ?2 AS "c2", ...)
// which SQLite flattens, so evaluating a row is one bind + one step.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/sqlite/sqlite_handle.h"
#include "core/status.h"
#include "core/value.h"

namespace tandem {

// The private in-memory database expressions run in (one per thread).
Result<std::unique_ptr<SqliteHandle>> OpenExpressionDatabase();

class ExpressionSet {
 public:
  // Compiles `expressions` over `input_columns`. On a bad expression returns
  // InvalidArgument naming the expression's index as "expression #i: <sqlite message>";
  // use CompileOne to pinpoint which one.
  static Result<std::unique_ptr<ExpressionSet>> Compile(SqliteHandle& db, const std::vector<std::string>& input_columns,
                                                        const std::vector<std::string>& expressions);
  // Checks a single expression; Ok or InvalidArgument with SQLite's message.
  static Status CompileOne(SqliteHandle& db, const std::vector<std::string>& input_columns,
                           const std::string& expression);
  ~ExpressionSet();

  size_t size() const { return count_; }
  // Evaluates every expression on `inputs` (same order as input_columns).
  // REQUIRES: inputs.size() == input_columns.size().
  Status Evaluate(const Row& inputs, Row* outputs);

 private:
  ExpressionSet() = default;
  sqlite3_stmt* stmt_ = nullptr;
  SqliteHandle* db_ = nullptr;
  size_t count_ = 0;
};

// Names in `expression` that match one of `columns` (case-insensitive),
// ignoring string literals. Used to know which source columns a computed
// column depends on.
std::vector<int> ReferencedColumns(const std::string& expression, const std::vector<std::string>& columns);

}  // namespace tandem
