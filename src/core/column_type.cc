#include "core/column_type.h"

#include <strings.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tandem {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool Contains(const std::string& haystack_lower, const char* needle) {
  return haystack_lower.find(needle) != std::string::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The numbers in "(12, 2)" after a type name; empty when there are none.
std::vector<int> TypeModifiers(const std::string& declared) {
  std::vector<int> out;
  size_t open = declared.find('(');
  if (open == std::string::npos) return out;
  size_t i = open + 1;
  while (i < declared.size() && declared[i] != ')') {
    while (i < declared.size() && (declared[i] == ' ' || declared[i] == ',')) ++i;
    int v = 0;
    auto [end, ec] = std::from_chars(declared.data() + i, declared.data() + declared.size(), v);
    if (ec != std::errc()) break;
    out.push_back(v);
    i = static_cast<size_t>(end - declared.data());
  }
  return out;
}

// --- numbers ---

// `text` (spaces around allowed) as an int64, if it is an integer literal.
std::optional<int64_t> ParseInteger(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// Special float words PostgreSQL and Tandem accept.
std::optional<double> SpecialReal(std::string_view text) {
  std::string t = Lower(std::string(Trim(text)));
  if (t == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (t == "infinity" || t == "inf" || t == "+infinity" || t == "+inf") return std::numeric_limits<double>::infinity();
  if (t == "-infinity" || t == "-inf") return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

std::optional<double> ParseReal(std::string_view text) {
  if (auto s = SpecialReal(text)) return s;
  if (CanonicalDecimal(std::string(text)).empty()) return std::nullopt;
  std::string t(Trim(text));
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return d;
}

// The number a value holds as a canonical decimal, or "" (NaN/Infinity as words).
std::string DecimalOf(const Value& v) {
  switch (v.type()) {
    case ValueType::kInteger: return std::to_string(v.as_integer());
    case ValueType::kReal: {
      double d = v.as_real();
      if (!std::isfinite(d)) return RealText(d);
      return CanonicalDecimal(RealText(d));
    }
    case ValueType::kText: {
      std::string c = CanonicalDecimal(v.as_bytes());
      if (!c.empty()) return c;
      if (auto s = SpecialReal(v.as_bytes())) return RealText(*s);
      return "";
    }
    default: return "";
  }
}

// Digits before and after the point of a canonical decimal.
void DecimalDigits(const std::string& canonical, int* integer_digits, int* fraction_digits) {
  std::string_view s = canonical;
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  size_t dot = s.find('.');
  std::string_view ip = s.substr(0, dot);
  *integer_digits = ip == "0" ? 0 : static_cast<int>(ip.size());
  *fraction_digits = dot == std::string_view::npos ? 0 : static_cast<int>(s.size() - dot - 1);
}

// A double exactly equal to the decimal, if there is one.
std::optional<double> ExactDouble(const std::string& canonical) {
  double d = std::strtod(canonical.c_str(), nullptr);
  if (!std::isfinite(d) || CanonicalDecimal(RealText(d)) != canonical) return std::nullopt;
  return d;
}

// True when a double holds the integer exactly (|i| <= 2^53).
bool IntegerFitsDouble(int64_t i) { return i <= (int64_t{1} << 53) && i >= -(int64_t{1} << 53); }

// True when a float4 gives back `d`: the float nearest to it, as PostgreSQL
// prints it (shortest form), reads back as `d`. 0.1 is held (the float 0.1f
// prints as 0.1); the double 0.10000000149011612, 0.1f's exact value, is not:
// it would come back as 0.1.
bool Float4Holds(double d) {
  return std::strtod(fmt::format("{}", static_cast<float>(d)).c_str(), nullptr) == d;
}

// Numbers compared exactly (Value::SameAs compares an integer with a real as
// doubles: 2^53 + 1 would equal 2^53); anything else as SameAs does.
bool SameExactly(const Value& a, const Value& b) {
  if (a.type() == ValueType::kInteger && b.type() == ValueType::kReal) return SameExactly(b, a);
  if (a.type() == ValueType::kReal && b.type() == ValueType::kInteger) {
    const double d = a.as_real();
    return d == std::floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
           static_cast<int64_t>(d) == b.as_integer();
  }
  return a.SameAs(b);
}

std::optional<int64_t> ExactInteger(const Value& v) {
  switch (v.type()) {
    case ValueType::kInteger: return v.as_integer();
    case ValueType::kReal: {
      double d = v.as_real();
      if (!std::isfinite(d) || d != std::floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return std::nullopt;
      return static_cast<int64_t>(d);
    }
    case ValueType::kText: {
      if (auto i = ParseInteger(v.as_bytes())) return i;
      std::string c = CanonicalDecimal(v.as_bytes());
      if (c.empty() || c.find('.') != std::string::npos) return std::nullopt;
      return ParseInteger(c);
    }
    default: return std::nullopt;
  }
}

std::optional<double> RealOf(const Value& v) {
  switch (v.type()) {
    case ValueType::kInteger: return static_cast<double>(v.as_integer());
    case ValueType::kReal: return v.as_real();
    case ValueType::kText: return ParseReal(v.as_bytes());
    default: return std::nullopt;
  }
}

// --- booleans ---

std::optional<int64_t> BooleanOf(const Value& v) {
  switch (v.type()) {
    case ValueType::kInteger:
      if (v.as_integer() == 0 || v.as_integer() == 1) return v.as_integer();
      return std::nullopt;
    case ValueType::kReal:
      if (v.as_real() == 0.0 || v.as_real() == 1.0) return static_cast<int64_t>(v.as_real());
      return std::nullopt;
    case ValueType::kText: {
      std::string t = Lower(std::string(Trim(v.as_bytes())));
      if (t == "t" || t == "true" || t == "y" || t == "yes" || t == "on" || t == "1") return 1;
      if (t == "f" || t == "false" || t == "n" || t == "no" || t == "off" || t == "0") return 0;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

// --- dates and times ---

bool IsLeap(int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }
int DaysIn(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}
// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

struct DateTime {
  int64_t year = 0;  // astronomical (1 BC = 0)
  int month = 0, day = 0;
  bool has_time = false;
  int hour = 0, minute = 0, second = 0;
  std::string fraction;  // digits after the point, trailing zeros removed
  bool has_zone = false;
  int offset_seconds = 0;  // east of UTC
};

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool Digits(int min, int max, int64_t* out) {
    size_t n = 0;
    int64_t v = 0;
    while (pos_ + n < s_.size() && n < static_cast<size_t>(max) && std::isdigit(static_cast<unsigned char>(s_[pos_ + n]))) {
      v = v * 10 + (s_[pos_ + n] - '0');
      ++n;
    }
    if (n < static_cast<size_t>(min)) return false;
    pos_ += n;
    *out = v;
    return true;
  }
  bool Char(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool AtEnd() const { return pos_ == s_.size(); }
  std::string_view Rest() const { return s_.substr(pos_); }
  size_t pos_ = 0;

 private:
  std::string_view s_;
};

// HH:MM[:SS[.frac]] at the scanner.
bool ScanTime(Scanner& sc, DateTime* dt) {
  int64_t h, mi, s = 0;
  if (!sc.Digits(2, 2, &h) || !sc.Char(':') || !sc.Digits(2, 2, &mi)) return false;
  if (sc.Char(':')) {
    if (!sc.Digits(2, 2, &s)) return false;
    int64_t ignored;
    if (sc.Char('.') && !sc.Digits(1, 30, &ignored)) return false;
  }
  if (h > 24 || mi > 59 || s > 60 || (h == 24 && (mi || s))) return false;
  dt->has_time = true;
  dt->hour = static_cast<int>(h);
  dt->minute = static_cast<int>(mi);
  dt->second = static_cast<int>(s);
  return true;
}

// [Z | +HH[:MM[:SS]] | +HHMM] at the scanner.
bool ScanZone(Scanner& sc, DateTime* dt) {
  if (sc.AtEnd()) return true;
  if (sc.Char('Z') || sc.Char('z')) {
    dt->has_zone = true;
    return sc.AtEnd();
  }
  int sign = sc.Char('+') ? 1 : sc.Char('-') ? -1 : 0;
  if (!sign) return false;
  int64_t h, m = 0, s = 0;
  if (!sc.Digits(2, 2, &h)) return false;
  if (sc.Char(':')) {
    if (!sc.Digits(2, 2, &m)) return false;
    if (sc.Char(':') && !sc.Digits(2, 2, &s)) return false;
  } else {
    int64_t hhmm;
    if (sc.Digits(2, 2, &hhmm)) m = hhmm;
  }
  if (h > 15 || m > 59 || s > 59) return false;
  dt->has_zone = true;
  dt->offset_seconds = sign * static_cast<int>(h * 3600 + m * 60 + s);
  return sc.AtEnd();
}

// Fraction digits of "...SS.ffff" in `text` (the first '.' after the time).
std::string FractionOf(std::string_view time_part) {
  size_t dot = time_part.find('.');
  if (dot == std::string_view::npos) return "";
  size_t end = dot + 1;
  while (end < time_part.size() && std::isdigit(static_cast<unsigned char>(time_part[end]))) ++end;
  std::string f(time_part.substr(dot + 1, end - dot - 1));
  while (!f.empty() && f.back() == '0') f.pop_back();
  return f;
}

// YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][zone][ BC]
std::optional<DateTime> ParseDateTime(std::string_view text) {
  text = Trim(text);
  bool bc = false;
  if (text.size() > 3 && strncasecmp(text.data() + text.size() - 3, " BC", 3) == 0) {
    bc = true;
    text.remove_suffix(3);
  }
  Scanner sc(text);
  DateTime dt;
  int64_t y, m, d;
  if (!sc.Digits(4, 6, &y) || !sc.Char('-') || !sc.Digits(2, 2, &m) || !sc.Char('-') || !sc.Digits(2, 2, &d))
    return std::nullopt;
  if (m < 1 || m > 12 || y == 0) return std::nullopt;
  dt.year = bc ? 1 - y : y;
  dt.month = static_cast<int>(m);
  if (d < 1 || d > DaysIn(dt.year, dt.month)) return std::nullopt;
  dt.day = static_cast<int>(d);
  if (sc.Char(' ') || sc.Char('T') || sc.Char('t')) {
    size_t time_start = sc.pos_;
    if (!ScanTime(sc, &dt)) return std::nullopt;
    dt.fraction = FractionOf(text.substr(time_start, sc.pos_ - time_start));
    // Past 24:00:00; a 60th second with a fraction PostgreSQL refuses in a timestamp.
    if ((dt.hour == 24 || dt.second == 60) && !dt.fraction.empty()) return std::nullopt;
    while (sc.Char(' ')) {
    }
    if (!ScanZone(sc, &dt)) return std::nullopt;
  }
  if (!sc.AtEnd()) return std::nullopt;
  return dt;
}

std::optional<DateTime> ParseTimeOfDay(std::string_view text) {
  text = Trim(text);
  Scanner sc(text);
  DateTime dt;
  if (!ScanTime(sc, &dt)) return std::nullopt;
  dt.fraction = FractionOf(text.substr(0, sc.pos_));
  if (dt.hour == 24 && !dt.fraction.empty()) return std::nullopt;  // past 24:00:00
  if (!sc.AtEnd()) return std::nullopt;
  return dt;
}

// Moves `dt` to UTC (drops its zone), and carries 24:00:00 and a 60th
// second into the next day or minute, as PostgreSQL stores a timestamp.
void ToUtc(DateTime* dt) {
  if (!dt->has_zone && dt->hour < 24 && dt->second < 60) return;
  int64_t secs = DaysFromCivil(dt->year, dt->month, dt->day) * 86400 + dt->hour * 3600 + dt->minute * 60 +
                 dt->second - dt->offset_seconds;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  CivilFromDays(days, &dt->year, &dt->month, &dt->day);
  dt->hour = static_cast<int>(rem / 3600);
  dt->minute = static_cast<int>(rem % 3600 / 60);
  dt->second = static_cast<int>(rem % 60);
  dt->has_zone = false;
  dt->offset_seconds = 0;
}

// A 60th second carried into the next minute (a time of day may be 24:00:00).
void CarryLeapSecond(DateTime* dt) {
  if (dt->second < 60) return;
  dt->second = 0;
  if (++dt->minute < 60) return;
  dt->minute = 0;
  ++dt->hour;
}

std::string DateText(const DateTime& dt) {
  if (dt.year <= 0) return fmt::format("{:04}-{:02}-{:02} BC", 1 - dt.year, dt.month, dt.day);
  return fmt::format("{:04}-{:02}-{:02}", dt.year, dt.month, dt.day);
}
// Appends `v` (>= 0) with at least `width` digits, zero-padded: what
// fmt's "{:0N}" prints, without its format parsing (this is on the apply
// path, several times per timestamp value).
void AppendPadded(std::string* out, int64_t v, int width) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n < width) digits[n++] = '0';
  while (n > 0) out->push_back(digits[--n]);
}
void AppendTimeText(const DateTime& dt, std::string* out) {
  AppendPadded(out, dt.hour, 2);
  out->push_back(':');
  AppendPadded(out, dt.minute, 2);
  out->push_back(':');
  AppendPadded(out, dt.second, 2);
  if (!dt.fraction.empty()) {
    out->push_back('.');
    *out += dt.fraction;
  }
}
std::string TimeText(const DateTime& dt) {
  std::string t;
  t.reserve(16);
  AppendTimeText(dt, &t);
  return t;
}
std::string TimestampText(DateTime dt, bool with_zone) {
  ToUtc(&dt);
  std::string out;
  out.reserve(32);
  AppendPadded(&out, dt.year <= 0 ? 1 - static_cast<int64_t>(dt.year) : dt.year, 4);
  out.push_back('-');
  AppendPadded(&out, dt.month, 2);
  out.push_back('-');
  AppendPadded(&out, dt.day, 2);
  out.push_back(' ');
  AppendTimeText(dt, &out);
  if (with_zone) out += "+00";
  if (dt.year <= 0) out += " BC";
  return out;
}

// --- uuid ---

std::optional<std::string> CanonicalUuid(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '{' && text.back() == '}') text = text.substr(1, text.size() - 2);
  std::string hex;
  for (char c : text) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 32) return std::nullopt;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

// --- json ---

// JSON as jsonb compares it: objects by their keys (the last of duplicate
// keys wins), numbers by their decimal value, exactly ('1.0' = '1', but
// 12345678901234567890123 != 12345678901234567890124, and 1e400 is a number:
// no double in between), strings by their characters.
struct JsonNode {
  std::string scalar;  // canonical text of a scalar
  bool is_array = false, is_object = false;
  std::vector<JsonNode> items;
  std::map<std::string, JsonNode> members;
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}
  // The whole text as one JSON value (RFC 8259).
  bool Read(JsonNode* root) {
    if (!Value(root, 0)) return false;
    Space();
    return i_ == s_.size();
  }
  bool has_nul = false;  // a string holds U+0000 (jsonb refuses it)

  static std::string Quoted(const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  static std::string Text(const JsonNode& n) {
    if (n.is_array) {
      std::string out = "[";
      for (size_t i = 0; i < n.items.size(); ++i) out += (i ? "," : "") + Text(n.items[i]);
      return out + "]";
    }
    if (n.is_object) {
      std::string out = "{";
      for (auto& [k, v] : n.members) out += (out.size() > 1 ? "," : "") + Quoted(k) + ":" + Text(v);
      return out + "}";
    }
    return n.scalar;
  }

 private:
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool Next(char c) {
    Space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Value(JsonNode* n, int depth) {
    if (depth > 1000) return false;
    Space();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      n->is_object = true;
      if (Next('}')) return true;
      do {
        Space();
        std::string key;
        if (!String(&key) || !Next(':')) return false;
        n->members.erase(key);  // the last of duplicate keys wins
        if (!Value(&n->members[key], depth + 1)) return false;
      } while (Next(','));
      return Next('}');
    }
    if (c == '[') {
      ++i_;
      n->is_array = true;
      if (Next(']')) return true;
      do {
        if (!Value(&n->items.emplace_back(), depth + 1)) return false;
      } while (Next(','));
      return Next(']');
    }
    if (c == '"') {
      std::string str;
      if (!String(&str)) return false;
      n->scalar = Quoted(str);
      return true;
    }
    for (const char* word : {"true", "false", "null"}) {
      if (s_.substr(i_, std::strlen(word)) == word) {
        i_ += std::strlen(word);
        n->scalar = word;
        return true;
      }
    }
    return Number(n);
  }
  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool Number(JsonNode* n) {
    const size_t start = i_;
    auto digits = [&] {
      size_t from = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      return i_ > from;
    };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    n->scalar = CanonicalDecimal(std::string(s_.substr(start, i_ - start)));
    return !n->scalar.empty();
  }
  // A string token, unescaped (its escapes and UTF-8 checked by nlohmann).
  bool String(std::string* out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    size_t j = i_ + 1;
    while (j < s_.size() && s_[j] != '"') j += s_[j] == '\\' ? 2 : 1;
    if (j >= s_.size()) return false;
    auto token = nlohmann::json::parse(s_.substr(i_, j - i_ + 1), nullptr, /*allow_exceptions=*/false);
    if (!token.is_string()) return false;
    *out = token.get<std::string>();
    has_nul |= out->find('\0') != std::string::npos;
    i_ = j + 1;
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

std::optional<std::string> CanonicalJson(const std::string& text, bool* has_nul = nullptr) {
  JsonReader reader(text);
  JsonNode root;
  if (!reader.Read(&root)) return std::nullopt;
  if (has_nul) *has_nul = reader.has_nul;
  return JsonReader::Text(root);
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + extra >= s.size() + (extra == 0)) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

std::string RightTrimSpaces(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Text of a value for a text column: numbers printed exactly.
std::optional<std::string> TextOf(const Value& v) {
  switch (v.type()) {
    case ValueType::kInteger: return std::to_string(v.as_integer());
    case ValueType::kReal: return RealText(v.as_real());
    case ValueType::kText: return v.as_bytes();
    default: return std::nullopt;
  }
}

Status Cannot(std::string why) { return Status::InvalidArgument(std::move(why)); }

}  // namespace

std::string RealText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return fmt::format("{}", d);
}

std::string CanonicalDecimal(const std::string& input) {
  std::string_view s = Trim(input);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  std::string digits;
  int64_t point = 0;  // digits before the decimal point
  bool any = false, seen_point = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
      if (!seen_point) ++point;
      any = true;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!any) return "";
  if (i < s.size()) {
    if (s[i] != 'e' && s[i] != 'E') return "";
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i >= s.size()) return "";
    int64_t e = 0;
    for (; i < s.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return "";
      e = e * 10 + (s[i] - '0');
      if (e > 100000) return "";
    }
    point += eneg ? -e : e;
  }
  size_t lead = 0;
  while (lead < digits.size() && digits[lead] == '0') ++lead;
  digits.erase(0, lead);
  point -= static_cast<int64_t>(lead);
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  if (digits.empty()) return "0";
  if (point > 100000 || point < -100000) return "";
  std::string out = negative ? "-" : "";
  const int64_t n = static_cast<int64_t>(digits.size());
  if (point <= 0) {
    out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (point >= n) {
    out += digits + std::string(static_cast<size_t>(point - n), '0');
  } else {
    out += digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
  }
  return out;
}

std::string ColumnType::Describe() const {
  if (dialect == Dialect::kPostgres) return declared + " (PostgreSQL)";
  static constexpr const char* kAffinity[] = {"text", "numeric", "integer", "real", "blob"};
  return fmt::format("{} (SQLite, {} affinity)", declared.empty() ? "no declared type" : declared,
                     kAffinity[static_cast<int>(affinity)]);
}

ColumnType SqliteColumnType(const std::string& declared) {
  ColumnType t;
  t.dialect = Dialect::kSqlite;
  t.declared = declared;
  const std::string d = Lower(declared);
  // Affinity, in the order SQLite decides it.
  if (Contains(d, "int")) t.affinity = Affinity::kInteger;
  else if (Contains(d, "char") || Contains(d, "clob") || Contains(d, "text")) t.affinity = Affinity::kText;
  else if (Contains(d, "blob") || d.empty()) t.affinity = Affinity::kBlob;
  else if (Contains(d, "real") || Contains(d, "floa") || Contains(d, "doub")) t.affinity = Affinity::kReal;
  else t.affinity = Affinity::kNumeric;
  switch (t.affinity) {
    case Affinity::kInteger: t.cls = TypeClass::kInteger; break;
    case Affinity::kText: t.cls = TypeClass::kText; break;
    case Affinity::kBlob: t.cls = d.empty() ? TypeClass::kAny : TypeClass::kBlob; break;
    case Affinity::kReal: t.cls = TypeClass::kReal; break;
    case Affinity::kNumeric:
      if (Contains(d, "json")) t.cls = TypeClass::kJson;  // JSON text (numeric affinity: StoreValue guards it)
      else if (Contains(d, "bool")) t.cls = TypeClass::kBoolean;
      else if (Contains(d, "datetime") || Contains(d, "timestamp")) t.cls = TypeClass::kTimestamp;
      else if (Contains(d, "date")) t.cls = TypeClass::kDate;
      else if (Contains(d, "time")) t.cls = TypeClass::kTime;
      else t.cls = TypeClass::kNumeric;
      break;
  }
  // SQLite keeps anything in a BLOB column: compare as given.
  if (t.cls == TypeClass::kBlob) t.cls = TypeClass::kAny;
  return t;
}

ColumnType PostgresColumnType(const std::string& formatted, std::vector<std::string> enum_labels) {
  ColumnType t;
  t.dialect = Dialect::kPostgres;
  t.declared = formatted;
  t.affinity = Affinity::kBlob;
  const std::string d = Lower(formatted);
  auto is = [&](const char* name) { return d == name || d.rfind(std::string(name) + "(", 0) == 0; };
  std::vector<int> mods = TypeModifiers(d);
  if (!enum_labels.empty()) {
    t.cls = TypeClass::kEnum;
    t.labels = std::move(enum_labels);
  } else if (d.size() > 2 && d.compare(d.size() - 2, 2, "[]") == 0) {
    t.cls = TypeClass::kOther;
  } else if (d == "boolean") {
    t.cls = TypeClass::kBoolean;
  } else if (d == "smallint") {
    t.cls = TypeClass::kInteger;
    t.bits = 16;
  } else if (d == "integer") {
    t.cls = TypeClass::kInteger;
    t.bits = 32;
  } else if (d == "bigint" || d == "oid") {
    t.cls = TypeClass::kInteger;
    t.bits = 64;
  } else if (is("numeric")) {
    t.cls = TypeClass::kNumeric;
    if (!mods.empty()) t.precision = mods[0];
    t.scale = mods.size() > 1 ? mods[1] : (mods.empty() ? -1 : 0);
  } else if (d == "real") {
    t.cls = TypeClass::kReal;
    t.bits = 32;
  } else if (d == "double precision") {
    t.cls = TypeClass::kReal;
  } else if (d == "text" || d == "name" || d == "citext") {
    t.cls = TypeClass::kText;
  } else if (is("character varying")) {
    t.cls = TypeClass::kText;
    if (!mods.empty()) t.length = mods[0];
  } else if (is("character") || d == "bpchar") {
    t.cls = TypeClass::kText;
    t.fixed_length = true;
    t.length = mods.empty() ? 1 : mods[0];
    if (d == "bpchar") t.length = -1;
  } else if (d == "date") {
    t.cls = TypeClass::kDate;
  } else if (d.rfind("timestamp", 0) == 0 && Contains(d, "with time zone") && !Contains(d, "without")) {
    t.cls = TypeClass::kTimestampTz;
  } else if (d.rfind("timestamp", 0) == 0) {
    t.cls = TypeClass::kTimestamp;
  } else if (d.rfind("time", 0) == 0 && (!Contains(d, "with time zone") || Contains(d, "without"))) {
    t.cls = TypeClass::kTime;
  } else if (d == "uuid") {
    t.cls = TypeClass::kUuid;
  } else if (d == "bytea") {
    t.cls = TypeClass::kBlob;
  } else if (d == "json") {
    t.cls = TypeClass::kJson;
  } else if (d == "jsonb") {
    t.cls = TypeClass::kJsonb;
  } else {
    t.cls = TypeClass::kOther;
  }
  return t;
}

Value CanonicalValue(const ColumnType& t, const Value& v) {
  if (v.is_null()) return v;
  switch (t.cls) {
    case TypeClass::kAny:
      return v;
    case TypeClass::kOther:
    case TypeClass::kJson:
    case TypeClass::kEnum:
      // A number is stored as its text (StoreValue): 1 and '1' are one value.
      if (v.type() == ValueType::kInteger || v.type() == ValueType::kReal) return Value::Text(*TextOf(v));
      return v;
    case TypeClass::kBoolean:
      if (auto b = BooleanOf(v)) return Value::Integer(*b);
      return v;
    case TypeClass::kInteger:
      if (auto i = ExactInteger(v)) return Value::Integer(*i);
      if (v.type() == ValueType::kReal || v.type() == ValueType::kText) {
        // Not an integer: compare as a decimal (1.5 in a SQLite INTEGER column).
        std::string dec = DecimalOf(v);
        if (!dec.empty()) return Value::Text(dec);
      }
      return v;
    case TypeClass::kNumeric: {
      if (auto i = ExactInteger(v)) return Value::Integer(*i);
      std::string dec = DecimalOf(v);
      if (!dec.empty()) return Value::Text(dec);
      return v;
    }
    case TypeClass::kReal: {
      // A value the column would round (StoreValue refuses it) stays as
      // given: it is the same as nothing the column holds.
      if (v.type() == ValueType::kInteger && !IntegerFitsDouble(v.as_integer())) return v;
      if (v.type() == ValueType::kText) {
        std::string dec = CanonicalDecimal(v.as_bytes());
        if (!dec.empty() && !ExactDouble(dec)) return v;
      }
      auto d = RealOf(v);
      if (!d) return v;
      double x = *d;
      // No rounding to float for real (float4): it gives each float back as
      // one double (Float4Holds), so doubles are compared as they are.
      if (x == 0.0 && !t.KeepsNegativeZero()) x = 0.0;
      return Value::Real(x);
    }
    case TypeClass::kText: {
      auto s = TextOf(v);
      if (!s) return v;
      return Value::Text(t.fixed_length ? RightTrimSpaces(*s) : *s);
    }
    case TypeClass::kDate: {
      if (v.type() != ValueType::kText) return v;
      auto dt = ParseDateTime(v.as_bytes());
      if (!dt || dt->has_zone) return v;
      if (dt->has_time && (dt->hour || dt->minute || dt->second || !dt->fraction.empty())) return v;
      return Value::Text(DateText(*dt));
    }
    case TypeClass::kTimestamp:
    case TypeClass::kTimestampTz: {
      if (v.type() != ValueType::kText) return v;
      auto dt = ParseDateTime(v.as_bytes());
      if (!dt) return v;
      return Value::Text(TimestampText(*dt, t.cls == TypeClass::kTimestampTz));
    }
    case TypeClass::kTime: {
      if (v.type() != ValueType::kText) return v;
      auto dt = ParseTimeOfDay(v.as_bytes());
      if (!dt) return v;
      CarryLeapSecond(&*dt);
      return Value::Text(TimeText(*dt));
    }
    case TypeClass::kUuid: {
      if (v.type() != ValueType::kText) return v;
      if (auto u = CanonicalUuid(v.as_bytes())) return Value::Text(*u);
      return v;
    }
    case TypeClass::kBlob:
      if (v.type() == ValueType::kText) return Value::Blob(v.as_bytes());
      return v;
    case TypeClass::kJsonb: {
      auto text = v.type() == ValueType::kBlob ? std::nullopt : TextOf(v);
      if (!text) return v;
      if (auto j = CanonicalJson(*text)) return Value::Text(*j);
      return v;
    }
  }
  return v;
}

namespace {
bool IsNegativeZero(const Value& v) {
  return v.type() == ValueType::kReal && v.as_real() == 0.0 && std::signbit(v.as_real());
}
}  // namespace

bool SameValue(const ColumnType& t, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return a.is_null() && b.is_null();
  // A SQLite number column turns -0.0 into 0 (StoreValue refuses it): the 0
  // it holds is not the -0.0 another database may mean.
  if (t.dialect == Dialect::kSqlite && t.affinity != Affinity::kText && t.affinity != Affinity::kBlob &&
      IsNegativeZero(a) != IsNegativeZero(b))
    return false;
  // Two numbers in an integer or decimal column (the common case on the
  // apply path): equal when exactly the same number, without canonical text.
  const auto is_number = [](const Value& v) { return v.type() == ValueType::kInteger || v.type() == ValueType::kReal; };
  if ((t.cls == TypeClass::kInteger || t.cls == TypeClass::kNumeric) && is_number(a) && is_number(b)) {
    if (a.type() == ValueType::kReal && b.type() == ValueType::kReal && std::isnan(a.as_real()))
      return std::isnan(b.as_real());
    return a.SameAs(b);  // exact; -0.0 vs 0 was settled above for SQLite, and numeric has no -0
  }
  const bool both_text = a.type() == ValueType::kText && b.type() == ValueType::kText;
  if (a.type() == b.type() && a.type() != ValueType::kReal && a.SameAs(b)) return true;
  // Text that differs bytewise is different text (the common case, kept cheap).
  if (both_text && (t.cls == TypeClass::kText && !t.fixed_length)) return false;
  if (both_text && (t.cls == TypeClass::kAny || t.cls == TypeClass::kOther || t.cls == TypeClass::kJson ||
                    t.cls == TypeClass::kEnum))
    return false;
  Value ca = CanonicalValue(t, a), cb = CanonicalValue(t, b);
  if (ca.type() == ValueType::kReal && cb.type() == ValueType::kReal) {
    double x = ca.as_real(), y = cb.as_real();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    if (t.KeepsNegativeZero() && x == 0.0 && y == 0.0) return std::signbit(x) == std::signbit(y);
    return x == y;
  }
  return SameExactly(ca, cb);
}

std::string CodeKey(const ColumnType& t, const Value& v) {
  Value c = CanonicalValue(t, v);
  if (c.type() == ValueType::kReal) {
    // 1.0 and 1 are one code.
    double d = c.as_real();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return std::to_string(static_cast<int64_t>(d));
    return RealText(d);
  }
  if (c.type() == ValueType::kText && t.IsNumber()) {
    std::string dec = CanonicalDecimal(c.as_bytes());
    if (!dec.empty()) return dec;
  }
  return c.ToCodeText();
}

namespace {

// What SQLite's type affinity does to `v` on the way in, if that keeps it
// exactly; an error where it would change it.
Result<Value> StoreSqlite(const ColumnType& t, const Value& v) {
  if (v.type() == ValueType::kReal && std::isnan(v.as_real()) && t.affinity != Affinity::kText)
    return Cannot("SQLite cannot store NaN (it would become NULL)");
  if (v.type() == ValueType::kReal && v.as_real() == 0.0 && std::signbit(v.as_real()) &&
      t.affinity != Affinity::kText && t.affinity != Affinity::kBlob)
    return Cannot("SQLite stores -0.0 as 0 in a column with numeric, integer or real affinity (it loses the sign)");
  switch (t.affinity) {
    case Affinity::kBlob:
      return v;
    case Affinity::kText:
      // SQLite would print a real with 15 digits: print it exactly instead.
      if (v.type() == ValueType::kReal) return Value::Text(RealText(v.as_real()));
      if (v.type() == ValueType::kInteger) return Value::Text(std::to_string(v.as_integer()));
      return v;
    case Affinity::kInteger:
    case Affinity::kNumeric:
    case Affinity::kReal: {
      const bool real = t.affinity == Affinity::kReal;
      if (v.type() == ValueType::kInteger) {
        if (real && (v.as_integer() > (int64_t{1} << 53) || v.as_integer() < -(int64_t{1} << 53)))
          return Cannot("SQLite REAL columns keep 53 bits; the integer would be rounded");
        return v;
      }
      if (v.type() == ValueType::kReal) return v;
      if (v.type() != ValueType::kText) return v;
      // Text that reads as a number is converted by the column's affinity.
      std::string dec = CanonicalDecimal(v.as_bytes());
      if (dec.empty()) {
        // Not a number: kept as text. A timestamp with a zone is written in UTC without it.
        if (t.cls == TypeClass::kTimestamp) {
          auto dt = ParseDateTime(v.as_bytes());
          if (dt && dt->has_zone) return Value::Text(TimestampText(*dt, false));
        }
        return v;
      }
      std::optional<Value> number;
      if (!real && dec.find('.') == std::string::npos) {
        if (auto i = ParseInteger(dec)) number = Value::Integer(*i);
      }
      if (!number)
        if (auto d = ExactDouble(dec)) number = Value::Real(*d);
      // JSON text is text: SQLite's affinity must not rewrite it ('1.0' -> 1).
      if (number && t.cls == TypeClass::kJson && *TextOf(*number) != v.as_bytes())
        return Cannot(fmt::format("SQLite's {} affinity would store this JSON text as the number {}",
                                  t.affinity == Affinity::kInteger ? "INTEGER" : "NUMERIC", TextOf(*number)->c_str()));
      if (number) return *number;
      return Cannot(fmt::format("SQLite would store it as the approximate number {} ({} affinity keeps about 15 "
                                "digits); use a TEXT column for exact decimals",
                                RealText(std::strtod(dec.c_str(), nullptr)),
                                real ? "REAL" : (t.affinity == Affinity::kInteger ? "INTEGER" : "NUMERIC")));
    }
  }
  return v;
}

Result<Value> StorePostgres(const ColumnType& t, const Value& v) {
  if (v.type() == ValueType::kText && v.as_bytes().find('\0') != std::string::npos &&
      t.cls != TypeClass::kBlob)
    return Cannot("PostgreSQL text cannot hold a NUL character");
  switch (t.cls) {
    case TypeClass::kAny:
    case TypeClass::kOther:
      if (v.type() == ValueType::kReal) return Value::Text(RealText(v.as_real()));
      return v;
    case TypeClass::kBoolean:
      if (auto b = BooleanOf(v)) return Value::Integer(*b);
      return Cannot("not a boolean (true/false, t/f, yes/no, on/off, 1/0)");
    case TypeClass::kInteger: {
      auto i = ExactInteger(v);
      if (!i) return Cannot("not an integer");
      const int64_t lo = t.bits == 16 ? -32768 : t.bits == 32 ? -2147483648LL : std::numeric_limits<int64_t>::min();
      const int64_t hi = t.bits == 16 ? 32767 : t.bits == 32 ? 2147483647LL : std::numeric_limits<int64_t>::max();
      if (*i < lo || *i > hi) return Cannot(fmt::format("out of range for {}", t.declared));
      return Value::Integer(*i);
    }
    case TypeClass::kNumeric: {
      std::string dec = DecimalOf(v);
      if (dec.empty()) return Cannot("not a number");
      if (dec == "NaN" || dec == "Infinity" || dec == "-Infinity") return Value::Text(dec);
      int idigits, fdigits;
      DecimalDigits(dec, &idigits, &fdigits);
      if (t.scale >= 0 && fdigits > t.scale) {
        std::string why = fmt::format("has {} decimal places; {} keeps {} and would round it", fdigits, t.declared,
                                      t.scale);
        if (v.type() == ValueType::kReal) {
          // 1.1400000000000001 from float arithmetic: SQLite and PostgreSQL print it as 1.14.
          std::string printed = CanonicalDecimal(fmt::format("{:.15g}", v.as_real()));
          int pi, pf;
          DecimalDigits(printed, &pi, &pf);
          if (pf <= t.scale)
            why += fmt::format(" (it is binary floating-point noise around {}: map it with round(..., {}) in an "
                               "expression, or mark the field lossy: true)",
                               printed, t.scale);
        }
        return Cannot(why);
      }
      if (t.precision > 0 && idigits > t.precision - std::max(t.scale, 0))
        return Cannot(fmt::format("too large for {}", t.declared));
      if (auto i = ExactInteger(Value::Text(dec))) return Value::Integer(*i);
      return Value::Text(dec);
    }
    case TypeClass::kReal: {
      auto d = RealOf(v);
      if (!d) return Cannot("not a number");
      if (v.type() == ValueType::kInteger && !IntegerFitsDouble(v.as_integer()))
        return Cannot(fmt::format("{} keeps 53 bits; the integer would be rounded", t.declared));
      if (v.type() == ValueType::kText) {
        std::string dec = CanonicalDecimal(v.as_bytes());
        if (!dec.empty() && !ExactDouble(dec))
          return Cannot(fmt::format("{} would round it to {}", t.declared, RealText(*d)));
      }
      if (t.bits == 32 && std::isfinite(*d) && !Float4Holds(*d))
        return Cannot(fmt::format("real (float4) would round it to {}", fmt::format("{}", static_cast<float>(*d))));
      return Value::Real(*d);
    }
    case TypeClass::kText: {
      std::optional<std::string> s;
      if (v.type() == ValueType::kBlob) {
        if (!ValidUtf8(v.as_bytes()) || v.as_bytes().find('\0') != std::string::npos)
          return Cannot("bytes that are not UTF-8 text cannot be stored in a text column");
        s = v.as_bytes();
      } else {
        s = TextOf(v);
      }
      if (!ValidUtf8(*s)) return Cannot("not valid UTF-8 text");
      if (t.length >= 0) {
        std::string meaningful = t.fixed_length ? RightTrimSpaces(*s) : *s;
        if (Utf8Length(meaningful) > static_cast<size_t>(t.length) ||
            (!t.fixed_length && Utf8Length(*s) > static_cast<size_t>(t.length)))
          return Cannot(fmt::format("{} characters; {} holds {}", Utf8Length(*s), t.declared, t.length));
      }
      return Value::Text(*s);
    }
    case TypeClass::kDate: {
      if (v.type() != ValueType::kText) return Cannot("not a date (YYYY-MM-DD)");
      std::string low = Lower(std::string(Trim(v.as_bytes())));
      if (low == "infinity" || low == "-infinity") return Value::Text(low);
      auto dt = ParseDateTime(v.as_bytes());
      if (!dt || dt->has_zone) return Cannot("not a date (YYYY-MM-DD)");
      if (dt->has_time && (dt->hour || dt->minute || dt->second || !dt->fraction.empty()))
        return Cannot("has a time of day; a date column would drop it");
      return Value::Text(DateText(*dt));
    }
    case TypeClass::kTimestamp:
    case TypeClass::kTimestampTz: {
      if (v.type() != ValueType::kText) return Cannot("not a timestamp (YYYY-MM-DD HH:MM:SS)");
      std::string low = Lower(std::string(Trim(v.as_bytes())));
      if (low == "infinity" || low == "-infinity") return Value::Text(low);
      auto dt = ParseDateTime(v.as_bytes());
      if (!dt) return Cannot("not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])");
      if (dt->fraction.size() > 6) return Cannot("has more than 6 decimal places of seconds; PostgreSQL would round it");
      return Value::Text(TimestampText(*dt, t.cls == TypeClass::kTimestampTz));
    }
    case TypeClass::kTime: {
      if (v.type() != ValueType::kText) return Cannot("not a time of day (HH:MM:SS)");
      auto dt = ParseTimeOfDay(v.as_bytes());
      if (!dt) return Cannot("not a time of day (HH:MM:SS)");
      if (dt->fraction.size() > 6) return Cannot("has more than 6 decimal places of seconds; PostgreSQL would round it");
      CarryLeapSecond(&*dt);
      return Value::Text(TimeText(*dt));
    }
    case TypeClass::kUuid: {
      if (v.type() != ValueType::kText) return Cannot("not a UUID");
      auto u = CanonicalUuid(v.as_bytes());
      if (!u) return Cannot("not a UUID");
      return Value::Text(*u);
    }
    case TypeClass::kBlob:
      if (v.type() == ValueType::kText) return Value::Blob(v.as_bytes());
      if (v.type() == ValueType::kBlob) return v;
      return Cannot("a number cannot be stored in a bytea column");
    case TypeClass::kJson:
    case TypeClass::kJsonb: {
      auto s = TextOf(v);
      bool has_nul = false;
      if (!s || !CanonicalJson(*s, &has_nul)) return Cannot("not valid JSON");
      if (has_nul && t.cls == TypeClass::kJsonb) return Cannot("jsonb cannot hold the character U+0000 (\\u0000)");
      return Value::Text(*s);
    }
    case TypeClass::kEnum: {
      auto s = TextOf(v);
      if (s)
        for (const std::string& label : t.labels)
          if (label == *s) return Value::Text(*s);
      return Cannot(fmt::format("not a label of {} ({})", t.declared, fmt::join(t.labels, ", ")));
    }
  }
  return v;
}

}  // namespace

Result<Value> StoreValue(const ColumnType& t, const Value& v) {
  if (v.is_null()) return v;
  return t.dialect == Dialect::kSqlite ? StoreSqlite(t, v) : StorePostgres(t, v);
}

}  // namespace tandem
