// Value: one database cell, independent of the database it came from.
//
// The types are SQLite's storage classes, which every connector can map to
// and from predictably: NULL, 64-bit integer, double, text (UTF-8), blob.
// Later connectors (PostgreSQL numeric, timestamps) carry exact values as text.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tandem {

enum class ValueType { kNull, kInteger, kReal, kText, kBlob };

class Value {
 public:
  Value() = default;
  static Value Null() { return Value(); }
  static Value Integer(int64_t v) { Value x; x.type_ = ValueType::kInteger; x.i_ = v; return x; }
  static Value Real(double v) { Value x; x.type_ = ValueType::kReal; x.d_ = v; return x; }
  static Value Text(std::string v) { Value x; x.type_ = ValueType::kText; x.s_ = std::move(v); return x; }
  static Value Blob(std::string bytes) { Value x; x.type_ = ValueType::kBlob; x.s_ = std::move(bytes); return x; }

  ValueType type() const { return type_; }
  bool is_null() const { return type_ == ValueType::kNull; }
  int64_t as_integer() const { return i_; }
  double as_real() const { return d_; }
  // Text or blob bytes.
  const std::string& as_bytes() const { return s_; }

  // Human-readable form for logs and status output (text is quoted; a NUL
  // and bytes that are not UTF-8 are escaped as \0 and \xHH).
  std::string ToDisplay() const;
  // The text a code table compares with: integer 1 -> "1", text as is.
  std::string ToCodeText() const;

  // Equality as SQLite compares: numbers by numeric value (1 == 1.0),
  // text and blob bytewise, NULL equals NULL (IS semantics), NaN equals NaN.
  // Column types refine this: see core/column_type.h.
  bool SameAs(const Value& other) const;
  bool operator==(const Value& other) const { return SameAs(other); }
  // Order as SQLite sorts: NULL < numbers (by value) < text < blob (bytewise).
  // Returns <0, 0 or >0.
  int Compare(const Value& other) const;

 private:
  ValueType type_ = ValueType::kNull;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
};

using Row = std::vector<Value>;

}  // namespace tandem
