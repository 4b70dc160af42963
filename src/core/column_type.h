// ColumnType: what a column's declared type means for the values Tandem
// compares, reads from it and writes into it, on one kind of database.
//
// Two values are "the same" for a column when the column cannot tell them
// apart: a PostgreSQL boolean read as 1 and a YAML `true`; numeric 1.5 and
// 1.50; a timestamp with and without an explicit +00; two NaNs; char(n) text
// with and without its padding. SameValue() is that equality; the engine uses
// it for code maps, merges, conflict and no-op detection.
//
// StoreValue() is the strict conversion on the way into a column: it returns
// the value to bind so that the column holds exactly what was meant (as
// SameValue compares), or an error saying why the column cannot hold it (a
// non-number into a number column, more decimals than numeric(p,s) keeps,
// text longer than varchar(n), a value SQLite's type affinity would change, a
// label an enum does not have). It never returns a stand-in (0, NULL, '').
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/value.h"

namespace tandem {

enum class Dialect { kSqlite, kPostgres };

// The kinds of values a column holds, whatever the database calls them.
enum class TypeClass {
  kAny,          // anything, kept as given (SQLite BLOB affinity / no declared type)
  kBoolean,      // PostgreSQL boolean; SQLite BOOL*, BOOLEAN (0/1)
  kInteger,      // integer types; `bits` gives the range
  kNumeric,      // exact decimal; `precision`/`scale` when declared
  kReal,         // binary floating point; `bits` 32 (float4) or 64
  kText,         // text; `length` for varchar(n)/char(n), `fixed_length` for char(n)
  kDate,         // YYYY-MM-DD
  kTimestamp,    // date and time without a time zone
  kTimestampTz,  // an instant (PostgreSQL timestamptz; compared in UTC)
  kTime,         // time of day
  kUuid,
  kBlob,         // bytes (PostgreSQL bytea)
  kJson,         // PostgreSQL json: text kept as written
  kJsonb,        // PostgreSQL jsonb: compared as JSON values
  kEnum,         // PostgreSQL enum: one of `labels`
  kOther,        // a type Tandem does not interpret (interval, inet, arrays...): text as the database prints it
};

// SQLite's type affinity (https://www.sqlite.org/datatype3.html, 3.1).
enum class Affinity { kText, kNumeric, kInteger, kReal, kBlob };

struct ColumnType {
  Dialect dialect = Dialect::kSqlite;
  TypeClass cls = TypeClass::kAny;
  std::string declared;  // as the database reports it ("varchar(20)", "DATETIME")
  Affinity affinity = Affinity::kBlob;  // SQLite only
  int bits = 64;         // kInteger: 16/32/64; kReal: 32/64
  int length = -1;       // kText: varchar(n)/char(n) n, -1 = unbounded (PostgreSQL only)
  bool fixed_length = false;  // char(n): padded with spaces, compared without them
  int precision = -1;    // kNumeric
  int scale = -1;        // kNumeric; -1 = any
  std::vector<std::string> labels;  // kEnum
  // PostgreSQL: the schema-qualified internal name of the column's type (a
  // domain's base type) without its modifiers ("pg_catalog.bpchar" for
  // char(5)), so that a cast to it keeps a value whole and the assignment to
  // the column still checks length and precision; "" elsewhere.
  std::string cast_name;

  // "numeric(12,2) (PostgreSQL)", "DATETIME (SQLite, numeric affinity)".
  std::string Describe() const;
  // True for classes whose values are numbers (integer, numeric, real).
  bool IsNumber() const { return cls == TypeClass::kInteger || cls == TypeClass::kNumeric || cls == TypeClass::kReal; }
  // True when the column keeps -0.0 apart from 0.0 (PostgreSQL float).
  bool KeepsNegativeZero() const { return cls == TypeClass::kReal && dialect == Dialect::kPostgres; }
};

// The type of a SQLite column from its declared type (affinity rules, plus
// BOOL/DATE/TIME/TIMESTAMP/DECIMAL names as hints of what the values mean).
ColumnType SqliteColumnType(const std::string& declared);
// The type of a PostgreSQL column from format_type() of its (base) type.
// `enum_labels` non-empty: the type is an enum with those labels.
ColumnType PostgresColumnType(const std::string& formatted, std::vector<std::string> enum_labels = {});

// The form values of `type` are compared in (see SameValue). Values the
// class cannot interpret (text in a SQLite INTEGER column) are returned as given.
Value CanonicalValue(const ColumnType& type, const Value& v);
// True when the column cannot tell `a` and `b` apart. NULL equals NULL;
// NaN equals NaN; -0.0 equals 0.0 unless the column keeps them apart -- or
// would change it: a SQLite column of number affinity stores -0.0 as 0, so
// there a -0.0 (from a PostgreSQL float) is not the 0 it holds.
bool SameValue(const ColumnType& type, const Value& a, const Value& b);
// The text a code map entry is looked up by, for a value of `type`
// (a PostgreSQL boolean true and a YAML `true` both give "1").
std::string CodeKey(const ColumnType& type, const Value& v);

// The value to bind so that a column of `type` holds `v` exactly; or
// InvalidArgument naming why it cannot (without the value or column: the
// caller adds where). NULL stays NULL (NOT NULL is the database's to enforce).
Result<Value> StoreValue(const ColumnType& type, const Value& v);

// Shortest text that reads back as the same double ("0.1", "1e-07", "NaN", "Infinity").
std::string RealText(double d);
// A decimal number's text in its shortest exact form ("1.50" -> "1.5",
// "1e-7" -> "0.0000001", "-0" -> "0"); empty when `text` is not a decimal number.
std::string CanonicalDecimal(const std::string& text);

}  // namespace tandem
