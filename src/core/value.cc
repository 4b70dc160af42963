#include "core/value.h"

#include <fmt/format.h>

#include <cmath>

namespace tandem {

std::string Value::ToDisplay() const {
  switch (type_) {
    case ValueType::kNull: return "NULL";
    case ValueType::kInteger: return std::to_string(i_);
    case ValueType::kReal: return fmt::format("{}", d_);
    case ValueType::kText: {
      // Quoted; a NUL and bytes that are not UTF-8 are escaped (\0, \xHH), so
      // a message naming the value can be stored in any text column.
      std::string out = "'";
      for (size_t i = 0; i < s_.size();) {
        const unsigned char c = static_cast<unsigned char>(s_[i]);
        const size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 4;
        bool valid = extra < 4 && i + extra < s_.size();
        for (size_t k = 1; valid && k <= extra; ++k) valid = (static_cast<unsigned char>(s_[i + k]) & 0xC0) == 0x80;
        if (c == 0) {
          out += "\\0";
          ++i;
        } else if (!valid) {
          out += fmt::format("\\x{:02x}", c);
          ++i;
        } else if (c == '\'') {
          out += "''";
          ++i;
        } else {
          out.append(s_, i, extra + 1);
          i += extra + 1;
        }
      }
      return out + "'";
    }
    case ValueType::kBlob: {
      std::string out = "x'";
      for (unsigned char c : s_) out += fmt::format("{:02x}", c);
      return out + "'";
    }
  }
  return "?";
}

std::string Value::ToCodeText() const {
  switch (type_) {
    case ValueType::kNull: return "";
    case ValueType::kInteger: return std::to_string(i_);
    case ValueType::kReal: return fmt::format("{}", d_);
    case ValueType::kText:
    case ValueType::kBlob: return s_;
  }
  return "";
}

bool Value::SameAs(const Value& o) const {
  auto numeric = [](ValueType t) { return t == ValueType::kInteger || t == ValueType::kReal; };
  if (numeric(type_) && numeric(o.type_)) {
    if (type_ == ValueType::kInteger && o.type_ == ValueType::kInteger) return i_ == o.i_;
    if (type_ == ValueType::kReal && o.type_ == ValueType::kReal)
      return d_ == o.d_ || (std::isnan(d_) && std::isnan(o.d_));  // NaN is one value, as a database stores it
    // An integer and a real: equal only when the real is exactly that integer
    // (2^53 + 1 is not the double 2^53).
    const int64_t i = type_ == ValueType::kInteger ? i_ : o.i_;
    const double d = type_ == ValueType::kReal ? d_ : o.d_;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::floor(d)) return false;
    return static_cast<int64_t>(d) == i;
  }
  if (type_ != o.type_) return false;
  if (type_ == ValueType::kNull) return true;
  return s_ == o.s_;
}

int Value::Compare(const Value& o) const {
  auto rank = [](ValueType t) {
    switch (t) {
      case ValueType::kNull: return 0;
      case ValueType::kInteger:
      case ValueType::kReal: return 1;
      case ValueType::kText: return 2;
      case ValueType::kBlob: return 3;
    }
    return 4;
  };
  int ra = rank(type_), rb = rank(o.type_);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 0) return 0;
  if (ra == 1) {
    if (type_ == ValueType::kInteger && o.type_ == ValueType::kInteger) return i_ < o.i_ ? -1 : i_ > o.i_ ? 1 : 0;
    double a = type_ == ValueType::kInteger ? static_cast<double>(i_) : d_;
    double b = o.type_ == ValueType::kInteger ? static_cast<double>(o.i_) : o.d_;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  int c = s_.compare(o.s_);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace tandem
