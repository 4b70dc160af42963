// Round-trip property test (issue 11), on the four pairings of database
// systems: for every column type a user will meet, generated values with
// their edges go legacy -> modern -> legacy and modern -> legacy -> modern
// through identity copies, code maps and typical computed expressions.
//
// The oracle, per cell: the value arrives as the same value (core/column_type
// SameValue of the target column, against what the rule makes of the source
// value), and copied back it is the same value as the source column held; or
// the change is put aside (a _tandem_parked row on the target side whose
// reason names the field); or `tandem check` warned about the field (its type
// check, mapping/type_check.h) and the field is one of kFields' `warned` pairs
// (only pairs of different systems, only values that come back as the same
// value in the other column's form). Anything else --
// a value changed without a put-aside row, a record neither applied nor put
// aside, a put-aside record whose values each round-trip alone -- fails with
// the seed, the field, the value before and after.
//
// TANDEM_TEST_SEED=N replays a run; TANDEM_TEST_RANDOM_VALUES=N sets how many
// random values each column gets besides its edges (default 8).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/column_type.h"
#include "core/key_codec.h"
#include "mapping/expression.h"
#include "mapping/type_check.h"
#include "support/pg_test_server.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::Backends;
using testing::SystemsPair;
using testing::SystemsPairName;
using testing::TestEnv;

constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

// How a field maps.
enum class Kind {
  kCopy,    // identity
  kFlag,    // code map CHAR(1) Y/N <-> boolean
  kStatus,  // code map integer code <-> enum label (TEXT on SQLite)
  kPrice,   // computed: integer cents <-> decimal(12,2)
  kHired,   // computed: date(TEXT) <-> date
  kDob,     // computed: integer YYYYMMDD <-> date
};

struct Field {
  const char* name;    // modern column, and the field's name
  const char* legacy;  // legacy column
  // Declared types: legacy on SQLite, legacy on PostgreSQL, modern on SQLite, modern on PostgreSQL.
  const char* legacy_sqlite;
  const char* legacy_pg;
  const char* modern_sqlite;
  const char* modern_pg;
  Kind kind;
  const char* legacy_gen;  // value generators (Generate())
  const char* modern_gen;
  // Non-null: between SQLite and PostgreSQL this pair of columns does not
  // keep every value in its own form, and `tandem check` must warn about it
  // (the test fails when it does not). A value may then come back changed,
  // but only to one the other column cannot tell apart from the original
  // (SameValue of the other column). These are the pairs where no column type
  // of the other system holds the same kind of value.
  const char* warned;
};

// Pairs of the same system have the same declared type on both sides.
const std::vector<Field> kFields = {
    {"b", "B", "BOOLEAN", "boolean", "BOOLEAN", "boolean", Kind::kCopy, "bool", "bool", nullptr},
    {"i16", "I16", "SMALLINT", "smallint", "SMALLINT", "smallint", Kind::kCopy, "i16", "i16", nullptr},
    {"i32", "I32", "INT", "integer", "INT", "integer", Kind::kCopy, "i32", "i32", nullptr},
    {"i64", "I64", "INTEGER", "bigint", "INTEGER", "bigint", Kind::kCopy, "i64", "i64", nullptr},
    {"num", "NUM", "NUMERIC", "numeric", "NUMERIC", "numeric", Kind::kCopy, "num", "num", nullptr},
    {"dec", "DEC", "DECIMAL(12,2)", "numeric(12,2)", "DECIMAL(12,2)", "numeric(12,2)", Kind::kCopy, "dec", "dec",
     nullptr},
    {"n38", "N38", "TEXT", "numeric(38,10)", "TEXT", "numeric(38,10)", Kind::kCopy, "n38", "n38",
     "SQLite has no exact decimal type, so 38-digit numerics live in TEXT; numeric keeps the number, not its text "
     "('1e-7' comes back as '0.0000001', '1.50' as '1.5')"},
    {"f4", "F4", "REAL", "real", "REAL", "real", Kind::kCopy, "f4", "f4", nullptr},
    {"f8", "F8", "DOUBLE", "double precision", "DOUBLE", "double precision", Kind::kCopy, "f8", "f8", nullptr},
    {"txt", "TXT", "TEXT", "text", "TEXT", "text", Kind::kCopy, "text", "text", nullptr},
    {"vc", "VC", "VARCHAR(10)", "varchar(10)", "VARCHAR(10)", "varchar(10)", Kind::kCopy, "vc", "vc", nullptr},
    {"ch", "CH", "CHAR(5)", "char(5)", "CHAR(5)", "char(5)", Kind::kCopy, "ch", "ch",
     "PostgreSQL char(n) pads with spaces and does not count them; SQLite CHAR(n) keeps the text as given, so "
     "trailing spaces come back added or removed"},
    {"d", "D", "DATE", "date", "DATE", "date", Kind::kCopy, "date", "date", nullptr},
    {"ts", "TS", "DATETIME", "timestamp", "DATETIME", "timestamp", Kind::kCopy, "ts", "ts", nullptr},
    {"tstz", "TSTZ", "TIMESTAMP", "timestamptz", "TIMESTAMP", "timestamptz", Kind::kCopy, "tstz", "tstz", nullptr},
    {"tm", "TM", "TIME", "time", "TIME", "time", Kind::kCopy, "time", "time", nullptr},
    {"u", "U", "CHAR(36)", "uuid", "CHAR(36)", "uuid", Kind::kCopy, "uuid", "uuid",
     "SQLite has no uuid type; uuid prints lowercase with dashes, so 'A0EE...' and '{a0ee...}' come back as "
     "'a0ee...'"},
    {"bl", "BL", "BLOB", "bytea", "BLOB", "bytea", Kind::kCopy, "blob", "blob",
     "a SQLite BLOB column holds any value, bytea only bytes: text comes back as a blob of the same bytes"},
    {"js", "JS", "JSON", "json", "JSON", "json", Kind::kCopy, "json", "json", nullptr},
    {"jb", "JB", "TEXT", "jsonb", "TEXT", "jsonb", Kind::kCopy, "jsonb", "jsonb",
     "SQLite has no jsonb type: jsonb keeps parsed JSON, so spacing, key order and duplicate keys come back "
     "normalized"},
    {"en", "EN", "TEXT", "mood", "TEXT", "mood", Kind::kCopy, "enum", "enum", nullptr},
    {"untyped", "UNTYPED", "", "text", "", "text", Kind::kCopy, "any", "any",
     "a SQLite column without a type holds numbers, text and blobs; PostgreSQL text gives numbers back as text"},
    {"flag", "FLAG", "CHAR(1)", "char(1)", "BOOLEAN", "boolean", Kind::kFlag, "flag", "bool", nullptr},
    {"status", "STATUS", "INTEGER", "smallint", "TEXT", "mood", Kind::kStatus, "code", "enum", nullptr},
    {"price", "PRICE_CENTS", "INTEGER", "bigint", "DECIMAL(12,2)", "numeric(12,2)", Kind::kPrice, "cents", "dec",
     nullptr},
    {"hired_on", "HIREDT", "TEXT", "text", "DATE", "date", Kind::kHired, "datetext", "date", nullptr},
    {"dob", "DOB", "INTEGER", "integer", "DATE", "date", Kind::kDob, "yyyymmdd", "date", nullptr},
};

const std::string kConfig = testing::kExampleSystemsYaml + R"YAML(  rt:
    legacy: { table: RT, key: ID, new_keys: same }
    modern: { table: rt, key: id, new_keys: same }
    fields:
)YAML";

std::string ConfigText() {
  std::string out = kConfig;
  for (const Field& f : kFields) {
    out += fmt::format("      {}: ", f.name);
    switch (f.kind) {
      case Kind::kCopy:
        out += f.legacy;
        break;
      case Kind::kFlag:
        out += fmt::format("{{ legacy: {}, map: {{ Y: true, N: false }} }}", f.legacy);
        break;
      case Kind::kStatus:
        out += fmt::format("{{ legacy: {}, map: {{ 1: happy, 2: sad, 3: ok }} }}", f.legacy);
        break;
      case Kind::kPrice:
        out +=
            fmt::format("{{ legacy: {}, to_modern: \"{} / 100.0\", to_legacy: \"CAST(round({} * 100) AS INTEGER)\" }}",
                        f.legacy, f.legacy, f.name);
        break;
      case Kind::kHired:
        out += fmt::format("{{ legacy: {}, to_modern: \"date({})\", to_legacy: \"{}\" }}", f.legacy, f.legacy, f.name);
        break;
      case Kind::kDob:
        out += fmt::format(
            "{{ legacy: {0}, to_modern: \"date(printf('%04d-%02d-%02d', {0} / 10000, {0} / 100 % 100, "
            "{0} % 100))\", to_legacy: \"CAST(strftime('%Y%m%d', {1}) AS INTEGER)\" }}",
            f.legacy, f.name);
        break;
    }
    out += "\n";
  }
  return out;
}

std::string Schema(Side side, bool pg) {
  const bool legacy = side == L;
  std::string out;
  if (pg) out += "CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok', 'with space');\n";
  auto q = [&](const std::string& name) { return pg && legacy ? "\"" + name + "\"" : name; };
  out += fmt::format("CREATE TABLE {}({} {} PRIMARY KEY", q(legacy ? "RT" : "rt"), q(legacy ? "ID" : "id"),
                     pg ? "bigint" : "INTEGER");
  for (const Field& f : kFields) {
    const char* type = legacy ? (pg ? f.legacy_pg : f.legacy_sqlite) : (pg ? f.modern_pg : f.modern_sqlite);
    out += fmt::format(", {}{}{}", q(legacy ? f.legacy : f.name), *type ? " " : "", type);
  }
  return out + ");\n";
}

// --- values ---

Value I(int64_t v) { return Value::Integer(v); }
Value R(double v) { return Value::Real(v); }
Value T(std::string v) { return Value::Text(std::move(v)); }
Value B(std::string v) { return Value::Blob(std::move(v)); }

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  int64_t Int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <class V>
  const typename V::value_type& Pick(const V& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

  int64_t Integer(int bits) {
    const int64_t hi = bits == 16 ? 32767 : bits == 32 ? 2147483647LL : kI64Max;
    const int64_t lo = -hi - 1;
    switch (Int(0, 3)) {
      case 0:
        return Int(-1000, 1000);
      case 1:
        return Int(lo, hi);
      case 2: {
        int64_t p = int64_t{1} << Int(0, bits - 2);
        return Chance(0.5) ? p + Int(-1, 1) : -p + Int(-1, 1);
      }
      default:
        return Int(lo / 2, hi / 2);
    }
  }
  // A decimal with up to `int_digits` digits before the point and `scale` after.
  std::string Decimal(int int_digits, int scale) {
    std::string s = Chance(0.3) ? "-" : "";
    int n = static_cast<int>(Int(1, int_digits));
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + Int(i == 0 && n > 1 ? 1 : 0, 9));
    int f = static_cast<int>(Int(0, scale));
    if (f > 0) {
      s += '.';
      for (int i = 0; i < f; ++i) s += static_cast<char>('0' + Int(0, 9));
    }
    return s;
  }
  double Double() {
    switch (Int(0, 3)) {
      case 0: {
        double d;
        do {
          uint64_t bits = static_cast<uint64_t>(Int(kI64Min, kI64Max));
          std::memcpy(&d, &bits, sizeof d);
        } while (!std::isfinite(d));
        return d;
      }
      case 1:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 2:
        return static_cast<double>(Int(-100000, 100000)) / 100.0;
      default:
        return std::ldexp(std::uniform_real_distribution<double>(0.5, 1)(rng_), static_cast<int>(Int(-1074, 1023)));
    }
  }
  std::string Text(int max_code_points) {
    static const std::vector<uint32_t> kPool = {'a',
                                                'b',
                                                'Z',
                                                ' ',
                                                '0',
                                                '9',
                                                '\'',
                                                '"',
                                                '\\',
                                                '%',
                                                '_',
                                                '\t',
                                                '\n',
                                                0xE9 /* é */,
                                                0xDF /* ß */,
                                                0x301 /* combining acute */,
                                                0x308 /* combining diaeresis */,
                                                0x323 /* combining dot below */,
                                                0x200D /* zero-width joiner */,
                                                0xA0 /* no-break space */,
                                                0x65E5 /* 日 */,
                                                0x5D0 /* א */,
                                                0x1F44D /* 👍 */,
                                                0x1F3FD /* skin tone */,
                                                0xFEFF /* BOM */,
                                                0x10FFFF};
    std::string s;
    int n = static_cast<int>(Int(0, max_code_points));
    for (int i = 0; i < n; ++i) s += Utf8(Pick(kPool));
    return s;
  }
  std::string Date() {
    int y = static_cast<int>(Chance(0.2) ? Int(1, 99) : Int(1, 9999));
    int m = static_cast<int>(Int(1, 12));
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dmax = kDays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return fmt::format("{:04}-{:02}-{:02}", y, m, Int(1, dmax));
  }
  std::string Time() {
    std::string t = fmt::format("{:02}:{:02}:{:02}", Int(0, 23), Int(0, 59), Int(0, 59));
    if (Chance(0.5)) t += fmt::format(".{:06}", Int(0, 999999));
    return t;
  }
  std::string Offset() {
    static const std::vector<std::string> kOffsets = {"+00", "Z", "+05:30", "-08", "+14", "-12", "+01:00", "-03:30"};
    return Pick(kOffsets);
  }
  std::string Uuid() {
    std::string hex;
    for (int i = 0; i < 32; ++i) hex += "0123456789abcdef"[Int(0, 15)];
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
           hex.substr(20);
  }
  std::string Bytes(int max_len) {
    std::string s;
    int n = static_cast<int>(Int(0, max_len));
    for (int i = 0; i < n; ++i) s += static_cast<char>(Int(0, 255));
    return s;
  }
  std::string Json(int depth = 0) {
    switch (Int(0, depth > 2 ? 3 : 5)) {
      case 0:
        return fmt::format("{}", Int(-1000000, 1000000));
      case 1:
        return Chance(0.5) ? "true" : "null";
      case 2:
        return fmt::format("{}", static_cast<double>(Int(-100000, 100000)) / 1000.0);
      case 3: {
        std::string s = "\"";
        for (char c : Text(6))
          if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) s += c;
        return s + "\"";
      }
      case 4: {
        std::string s = "[";
        int n = static_cast<int>(Int(0, 3));
        for (int i = 0; i < n; ++i) s += (i ? "," : "") + Json(depth + 1);
        return s + "]";
      }
      default: {
        std::string s = "{";
        int n = static_cast<int>(Int(0, 3));
        for (int i = 0; i < n; ++i) s += fmt::format("{}\"k{}\":{}", i ? ", " : "", Int(0, 9), Json(depth + 1));
        return s + "}";
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

const std::vector<std::string> kLabels = {"happy", "sad", "ok", "with space"};

// Edge values of a generator, then `n` random ones. Values a database does
// not accept are skipped when they are written (as an application's insert
// would fail); SQLite keeps most of them, as legacy databases do.
std::vector<Value> Generate(const std::string& gen, Gen& g, int n) {
  std::vector<Value> v;
  auto random = [&](auto make) {
    for (int i = 0; i < n; ++i) v.push_back(make());
  };
  const std::string d38 = "12345678901234567890123456789012345678";
  if (gen == "bool") {
    v = {I(1), I(0), T("true"), T("f"), T("yes"), I(2), T("maybe"), R(1.0), T("")};
    random([&] { return I(g.Int(0, 1)); });
  } else if (gen == "i16" || gen == "i32" || gen == "i64") {
    const int bits = gen == "i16" ? 16 : gen == "i32" ? 32 : 64;
    v = {I(0),
         I(1),
         I(-1),
         I(-32768),
         I(32767),
         I(32768),
         I(-2147483648LL),
         I(2147483647LL),
         I(2147483648LL),
         I(kI64Min),
         I(kI64Max),
         I((int64_t{1} << 53) + 1),
         I(-(int64_t{1} << 53) - 1),
         R(1.5),
         T("abc"),
         T(""),
         T("12"),
         T(" 7"),
         R(1e20),
         T("0x10")};
    random([&] { return I(g.Integer(bits)); });
  } else if (gen == "num") {
    v = {T("0"),         T("-0"),       T("1.50"),
         T("0.0000001"), T("1e-7"),     T("-123.456"),
         T(d38),         T("-" + d38),  T("12345678901234567890.123456789012345678"),
         T("NaN"),       T("Infinity"), T("abc"),
         R(0.1),         R(-0.0),       I(kI64Max),
         R(1e300),       T("")};
    random([&] { return T(g.Decimal(20, 12)); });
  } else if (gen == "dec") {
    v = {T("0"),    T("0.01"), T("-0.01"), T("9999999999.99"), T("-9999999999.99"), T("10000000000"), T("0.005"),
         T("1.10"), R(0.1),    T("1e-7"),  T("abc"),           I(kI64Max),          T("0.29")};
    random([&] { return T(g.Decimal(10, 2)); });
  } else if (gen == "n38") {
    v = {T("1234567890123456789012345678.1234567890"),
         T("-9999999999999999999999999999.9999999999"),
         T("0.0000001"),
         T("1e-7"),
         T("1.50"),
         T("0"),
         T("-0"),
         T(d38),
         T("0.00000000001"),
         T("abc"),
         T(""),
         T("1234567890123456789012345678.123456789")};
    random([&] { return T(g.Decimal(28, 10)); });
  } else if (gen == "f4") {
    v = {R(0.0),
         R(-0.0),
         R(1e-7),
         R(0.1),
         R(1.5),
         R(std::numeric_limits<float>::max()),
         R(std::numeric_limits<float>::min()),
         R(std::numeric_limits<float>::denorm_min()),
         R(std::numeric_limits<double>::infinity()),
         R(-std::numeric_limits<double>::infinity()),
         R(std::numeric_limits<double>::quiet_NaN()),
         R(1e300),
         R(16777217.0),
         T("abc"),
         T(""),
         R(static_cast<double>(1e-7f))};
    random([&] { return R(g.Chance(0.5) ? static_cast<double>(static_cast<float>(g.Double())) : g.Double()); });
  } else if (gen == "f8") {
    v = {R(0.0),
         R(-0.0),
         R(1e-7),
         R(0.1),
         R(std::numeric_limits<double>::max()),
         R(-std::numeric_limits<double>::max()),
         R(std::numeric_limits<double>::min()),
         R(std::numeric_limits<double>::denorm_min()),
         R(std::numeric_limits<double>::infinity()),
         R(-std::numeric_limits<double>::infinity()),
         R(std::numeric_limits<double>::quiet_NaN()),
         R(9007199254740992.0),
         I((int64_t{1} << 53) + 1),
         T("1e-7"),
         T("abc"),
         T("")};
    random([&] { return R(g.Double()); });
  } else if (gen == "text") {
    v = {T(""),
         T(" "),
         T("trailing   "),
         T("  leading"),
         T("O'Brien"),
         T("back\\slash"),
         T("tab\tnew\nline\r"),
         T("e\xCC\x81"),
         T("Zo\xC3\xAB"),
         T("Zoe\xCC\x88"),
         T("a\xCC\x88\xCC\xA3\xCC\x81"),
         T("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"),
         T("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"),
         T("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"),
         T("\xE2\x80\x8B"),
         T("NULL"),
         T("0123"),
         T("1e5"),
         T("-0"),
         T(std::string(3000, 'x') + "\xC3\xA9"),
         I(5),
         R(1.5),
         B("\xff\xfe"),
         T(std::string("a\0b", 3)),
         T("\xff")};
    random([&] { return T(g.Text(40)); });
  } else if (gen == "vc") {
    std::string e5, e6;
    for (int i = 0; i < 5; ++i) e5 += "e\xCC\x81";
    e6 = e5 + "e\xCC\x81";
    v = {T(""),
         T("abcdefghij"),
         T("abcdefghijk"),
         T(e5),
         T(e6),
         T("ab        "),
         T("ab          "),
         T("\xE6\x97\xA5\xE6\x9C\xAC"),
         T("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"),
         I(1234567890),
         I(12345678901)};
    random([&] { return T(g.Text(12)); });
  } else if (gen == "ch") {
    v = {T("ab"),
         T("ab   "),
         T(""),
         T("abcde"),
         T("abcdef"),
         T("  x"),
         T("e\xCC\x81"
           "e\xCC\x81"),
         T("a b"),
         T("     "),
         T("abcde  "),
         I(12)};
    random([&] { return T(g.Text(6)); });
  } else if (gen == "date") {
    v = {T("0001-01-01"),    T("9999-12-31"), T("2000-02-29"), T("1970-01-01"),          T("2021-03-28"),
         T("0044-03-15 BC"), T("infinity"),   T("-infinity"),  T("2020-02-30"),          T("20200115"),
         T("2020-1-5"),      T(""),           T("someday"),    T("2020-01-15 00:00:00"), T("2020-01-15T10:00:00"),
         I(20200115),        T("0000-06-01")};
    random([&] { return T(g.Date()); });
  } else if (gen == "ts") {
    v = {T("0001-01-01 00:00:00"),
         T("9999-12-31 23:59:59.999999"),
         T("2021-03-28 02:30:00"),
         T("2021-03-14 02:30:00"),
         T("2021-10-31 02:30:00"),
         T("2000-01-01 00:00:00.5"),
         T("1970-01-01 00:00:00"),
         T("infinity"),
         T("0044-03-15 12:00:00 BC"),
         T("2020-01-01T10:00:00"),
         T("2020-01-01 10:00"),
         T("2020-01-01 10:00:00.1234567"),
         T("2020-01-01 10:00:00Z"),
         T("2020-01-01 10:00:00+02:00"),
         I(1700000000),
         R(2459000.5),
         T(""),
         T("2020-02-30 10:00:00"),
         T("2020-06-01 24:00:00"),
         T("2020-06-01 24:00:00.5"),
         T("2016-12-31 23:59:60"),
         T("2016-12-31 23:59:60.5")};
    random([&] { return T(g.Date() + " " + g.Time()); });
  } else if (gen == "tstz") {
    v = {T("2021-03-28 02:30:00"),
         T("2021-10-31 02:30:00"),
         T("0001-01-01 00:00:00+00"),
         T("9999-12-31 23:59:59.999999+00"),
         T("2020-06-01 12:00:00+05:30"),
         T("2020-06-01T12:00:00Z"),
         T("1969-12-31 23:59:59.999999-08"),
         T("infinity"),
         T("-infinity"),
         T("2020-01-01 10:00:00.1234567+00"),
         T("someday"),
         T(""),
         T("2021-03-28 02:30:00 Europe/Berlin"),
         T("0001-01-01 00:00:00")};
    random([&] { return T(g.Date() + " " + g.Time() + (g.Chance(0.7) ? g.Offset() : "")); });
  } else if (gen == "time") {
    v = {T("00:00:00"), T("23:59:59.999999"),  T("24:00:00"),  T("12:34:56.5"), T("12:00"),
         T("25:00:00"), T("12:34:56.1234567"), T("noon"),      T(""),           T("12:34:56+02"),
         T("23:59:60"), T("12:34:60.5"),       T("24:00:00.5")};
    random([&] { return T(g.Time()); });
  } else if (gen == "uuid") {
    std::string u = g.Uuid(), upper;
    for (char c : u) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string nodash;
    for (char c : u)
      if (c != '-') nodash += c;
    v = {T(u),      T(upper), T("{" + g.Uuid() + "}"), T("00000000-0000-0000-0000-000000000000"), T("not-a-uuid"),
         T(nodash), T("")};
    random([&] { return T(g.Uuid()); });
  } else if (gen == "blob") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    v = {B(""), B(std::string(1, '\0')), B(all), B("\xff\xfe"), T("abc"), I(5), R(1.5), T("")};
    random([&] { return B(g.Bytes(40)); });
  } else if (gen == "json" || gen == "jsonb") {
    v = {T("{\"a\":1}"),
         T("[1,2,3]"),
         T("null"),
         T("\"\xC3\xA9\""),
         T("{\"a\":1,\"a\":2}"),
         T(" {\"b\" : [ ] } "),
         T("1.0"),
         T("123"),
         T("1e2"),
         T("\"\\u00e9\""),
         T("{\"big\":12345678901234567890123}"),
         T("{\"f\":0.1000}"),
         T(""),
         T("not json"),
         T("{\"a\":\"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\"}"),
         T("{\"b\":1,\"a\":2}"),
         T("-0"),
         T("{\"z\":1e400}")};
    random([&] { return T(g.Json()); });
  } else if (gen == "enum") {
    v = {T("happy"), T("sad"), T("ok"), T("with space"), T("HAPPY"), T("unknown"), T(""), T("ok ")};
    random([&] { return T(g.Pick(kLabels)); });
  } else if (gen == "any") {
    v = {I(5),      R(1.5),          R(-0.0),    T("x"),    T(""), B("\x01\x02"),
         B("\xff"), T("2020-01-01"), I(kI64Min), T("0123"), R(0.1)};
    random([&] { return g.Chance(0.5) ? T(g.Text(10)) : I(g.Integer(64)); });
  } else if (gen == "flag") {
    v = {T("Y"), T("N"), T("X"), T(""), T("y"), T("Y "), I(1), T(std::string("Y\0", 2)), T("N\xff")};
    random([&] { return T(g.Chance(0.5) ? "Y" : "N"); });
  } else if (gen == "code") {
    v = {I(1), I(2), I(3), I(4), I(0), I(-1), T("1"), T("x"), R(2.0), R(2.5)};
    random([&] { return I(g.Int(1, 3)); });
  } else if (gen == "cents") {
    v = {I(0),
         I(1),
         I(-1),
         I(99),
         I(12345),
         I(999999999999),
         I(-999999999999),
         I(1000000000000),
         I(kI64Max),
         I(kI64Min),
         I((int64_t{1} << 53) + 1),
         R(1.5),
         T("abc"),
         T(""),
         I(29),
         I(-29)};
    random([&] { return I(g.Chance(0.5) ? g.Int(-100000, 100000) : g.Int(-99999999999, 99999999999)); });
  } else if (gen == "datetext") {
    v = {T("2020-01-15"),          T("0001-01-01"), T("9999-12-31"),       T("2020-02-30"),  T("2020-01-15 10:00:00"),
         T("2020-01-15 00:00:00"), T(""),           T("unbekannt"),        T(" 2020-01-15"), T("2020-02-29"),
         T("2021-02-29"),          T("0000-01-01"), T("2020-01-15T00:00"), T("2459000.5")};
    random([&] { return T(g.Date()); });
  } else if (gen == "yyyymmdd") {
    v = {I(19800115), I(10101), I(99991231), I(0),          I(20200230), I(20200229), I(-1),
         I(kI64Max),  I(101),   I(20201301), T("19800115"), I(20210229), I(100000101)};
    random([&] {
      std::string d = g.Date();
      return I(std::stoll(d.substr(0, 4)) * 10000 + std::stoll(d.substr(5, 2)) * 100 + std::stoll(d.substr(8, 2)));
    });
  } else {
    ADD_FAILURE() << "no generator " << gen;
  }
  return v;
}

// A value and a slightly different one, for an update that must not be
// taken for "no change": the second is a different value for the column.
std::vector<std::pair<Value, Value>> NearPairs(const std::string& gen) {
  if (gen == "jsonb" || gen == "json")
    return {{T("{\"n\": 12345678901234567890123}"), T("{\"n\": 12345678901234567890124}")},
            {T("{\"n\": 1.00000000000000001}"), T("{\"n\": 1}")}};
  if (gen == "num")
    return {{T("1.00000000000000000001"), T("1")}, {T(std::string(20, '9')), T(std::string(19, '9') + "8")}};
  if (gen == "n38")
    return {{T("1234567890123456789012345678.1234567890"), T("1234567890123456789012345678.1234567891")}};
  if (gen == "f8") return {{R(0.1), R(std::nextafter(0.1, 1.0))}, {R(0.0), R(-0.0)}, {R(-0.0), R(0.0)}};
  if (gen == "f4") return {{R(1.0), R(static_cast<double>(std::nextafter(1.0f, 2.0f)))}, {R(0.0), R(-0.0)}};
  if (gen == "text") return {{T("e"), T("e\xCC\x81")}, {T("a"), T("a ")}};
  if (gen == "vc") return {{T("ab"), T("ab ")}};
  if (gen == "ts") return {{T("2020-01-01 00:00:00"), T("2020-01-01 00:00:00.000001")}};
  if (gen == "tstz") return {{T("2020-01-01 00:00:00+00"), T("2020-01-01 00:00:00.000001+00")}};
  if (gen == "time") return {{T("12:00:00"), T("12:00:00.000001")}};
  if (gen == "uuid") return {{T("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), T("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12")}};
  if (gen == "blob") return {{B("a"), B(std::string("a\0", 2))}};
  if (gen == "i64") return {{I(kI64Max - 1), I(kI64Max)}, {I(9007199254740992), I(9007199254740993)}};
  if (gen == "i16") return {{I(32766), I(32767)}};
  if (gen == "dec") return {{T("0.01"), T("0.02")}};
  if (gen == "date") return {{T("0001-01-01"), T("0001-01-02")}};
  if (gen == "enum") return {{T("happy"), T("sad")}};
  if (gen == "any") return {{T("1"), I(1)}, {B("x"), T("x")}};
  return {};
}

// --- the run ---

struct Write {
  int64_t id;
  bool update;
  std::vector<std::pair<int, Value>> cells;  // field index, value
};

// What happened to one written record.
enum class Fate { kRefusedBySource, kArrived, kParked };

class RoundTripRun {
 public:
  RoundTripRun(TestEnv& env, const SystemsPair& pair, uint64_t seed)
      : env_(env), pair_(pair), seed_(seed), gen_(seed) {}

  void Describe() {
    for (Side s : {L, M}) {
      auto info = env_.AppDb(s).DescribeTable(Table(s));
      ASSERT_TRUE(info.ok() && *info) << "cannot describe " << Table(s);
      for (const Field& f : kFields) {
        int i = (*info)->Find(s == L ? f.legacy : f.name);
        ASSERT_GE(i, 0) << f.name;
        types_[Idx(s)].push_back((*info)->columns[i].type);
      }
    }
    // What `tandem check` says from the column types alone: the fields it warns about.
    Config config = env_.LoadConfig();
    auto expr_db = OpenExpressionDatabase();
    ASSERT_TRUE(expr_db.ok());
    CompileOutcome compiled = CompileMapping(config, env_.AppDb(L), env_.AppDb(M), **expr_db);
    ASSERT_TRUE(compiled.problems.empty()) << compiled.problems[0].ToString();
    auto findings = CheckTypes(*compiled.mapping, env_.AppDb(L), env_.AppDb(M));
    ASSERT_TRUE(findings.ok()) << findings.status().ToString();
    for (const TypeFinding& finding : *findings) {
      EXPECT_FALSE(finding.error) << Where() << "tandem check: " << finding.problem.ToString();
      for (size_t f = 0; f < kFields.size(); ++f)
        if (finding.problem.message.find(fmt::format("field '{}'", kFields[f].name)) != std::string::npos)
          check_warns_.insert(static_cast<int>(f));
    }
    for (size_t f = 0; f < kFields.size(); ++f)
      if (kFields[f].warned && pair_.legacy_pg != pair_.modern_pg && !check_warns_.count(static_cast<int>(f)))
        Fail(fmt::format(
            "tandem check does not warn about field '{}' ({} <-> {}), whose values do not all come back "
            "in their own form: {}",
            kFields[f].name, Cell(L, static_cast<int>(f)), Cell(M, static_cast<int>(f)), kFields[f].warned));

    // The enum is known as one (its labels are what StoreValue checks).
    for (size_t f = 0; f < kFields.size(); ++f)
      if (std::string(kFields[f].modern_pg) == "mood" && pair_.modern_pg) {
        EXPECT_EQ(types_[1][f].cls, TypeClass::kEnum) << kFields[f].name;
      }
  }

  void Run() {
    // 1. Legacy-born values, one record per value (one non-NULL field), and one all-NULL record.
    std::map<int64_t, Value> near_l, near_m;  // record -> the value the other side then updates it to
    std::vector<Write> born_l = {{1, false, {}}};
    Born(L, 2, &born_l, &near_l);
    const auto a = Phase("legacy-born values", L, born_l, {});
    if (stopped_) return Report();

    // 2. Modern side: copies of what arrived (their way back), modern-born
    //    values, and updates of arrived records (near values first).
    std::vector<Write> copies_m, born_m, updates_m;
    std::map<int64_t, int64_t> copy_of;  // copy record -> original record
    Copies(born_l, a, 100000, &copies_m, &copy_of);
    Born(M, 200000, &born_m, &near_m);
    Updates(M, born_l, a, near_l, &updates_m);
    std::vector<Write> all_m = copies_m;
    all_m.insert(all_m.end(), born_m.begin(), born_m.end());
    all_m.insert(all_m.end(), updates_m.begin(), updates_m.end());
    const auto b =
        Phase("modern-born values, copies of arrived legacy values, modern updates", M, all_m, copy_of, &a.source_rows);
    if (stopped_) return Report();

    // 3. Legacy side: copies of what arrived of the modern-born values and
    //    updates (their way back), and updates of arrived modern-born records.
    std::vector<Write> all_l, updates_l;
    std::map<int64_t, int64_t> copy_of_m;
    Copies(born_m, b, 100000, &all_l, &copy_of_m);
    Copies(updates_m, b, 600000, &all_l, &copy_of_m);
    Updates(L, born_m, b, near_m, &updates_l);
    all_l.insert(all_l.end(), updates_l.begin(), updates_l.end());
    const auto c = Phase("copies of arrived modern values, legacy updates", L, all_l, copy_of_m, &b.source_rows);
    if (stopped_) return Report();

    // 4. Whole records of values that each went there and back unchanged:
    //    they must arrive (a put-aside one is a wrong put-aside).
    std::vector<std::vector<Value>> clean_l(kFields.size()), clean_m(kFields.size());
    for (auto& [copy, original] : copy_of)
      if (b.fates.at(copy) == Fate::kArrived && clean_back_.count(copy))
        for (int f : clean_back_[copy]) clean_l[f].push_back(a.source_rows.at(original)[f]);
    for (auto& [copy, original] : copy_of_m)
      if (c.fates.at(copy) == Fate::kArrived && clean_back_.count(copy))
        for (int f : clean_back_[copy]) clean_m[f].push_back(b.source_rows.at(original)[f]);
    std::vector<Write> whole_l, whole_m;
    for (int r = 0; r < 40; ++r) {
      Write wl{700000 + r, false, {}}, wm{800000 + r, false, {}};
      for (size_t f = 0; f < kFields.size(); ++f) {
        if (!clean_l[f].empty() && !gen_.Chance(0.15)) wl.cells.push_back({static_cast<int>(f), gen_.Pick(clean_l[f])});
        if (!clean_m[f].empty() && !gen_.Chance(0.15)) wm.cells.push_back({static_cast<int>(f), gen_.Pick(clean_m[f])});
      }
      whole_l.push_back(std::move(wl));
      whole_m.push_back(std::move(wm));
    }
    must_arrive_ = true;
    Phase("whole records of clean legacy values", L, whole_l, {});
    if (!stopped_) Phase("whole records of clean modern values", M, whole_m, {});
    must_arrive_ = false;
    if (stopped_) return Report();

    // Nothing echoes, no conflict was made up.
    env_.SyncOnce();
    EXPECT_EQ(env_.last_stats(L).changes_read + env_.last_stats(M).changes_read, 0) << Where() << "nothing echoes";
    EXPECT_EQ(env_.Count(L, "_tandem_conflicts") + env_.Count(M, "_tandem_conflicts"), 0) << Where();
    Report();
  }

 private:
  // Prints what was checked and reports the failures (the first 60).
  void Report() {
    std::string summary;
    for (auto& [field, n_changed] : warned_changes_) summary += fmt::format(" {}: {},", field, n_changed);
    fmt::print("[ roundtrip ] {} seed {}: {} checked cells, {} records put aside, warned changes:{}\n", pair_.name,
               seed_, checked_, parked_, summary.empty() ? " none" : summary);
    const size_t shown = std::min<size_t>(failures_.size(), 60);
    for (size_t i = 0; i < shown; ++i) ADD_FAILURE() << failures_[i];
    if (failures_.size() > shown) ADD_FAILURE() << Where() << failures_.size() - shown << " more failures";
  }

  struct PhaseResult {
    std::map<int64_t, Fate> fates;
    std::map<int64_t, Row> source_rows;  // as the source holds them after the writes
    std::map<int64_t, Row> target_rows;  // as the target holds them after the sync
  };

  int RandomCount() const {
    const char* n = getenv("TANDEM_TEST_RANDOM_VALUES");
    return n ? std::atoi(n) : 8;
  }
  const char* GenOf(Side s, int f) const { return s == L ? kFields[f].legacy_gen : kFields[f].modern_gen; }

  // Records born on `side` from id `id` on: one per generated value of each
  // field; for copies also the first values of NearPairs, whose second
  // values the other side then updates them to (`near`).
  void Born(Side side, int64_t id, std::vector<Write>* out, std::map<int64_t, Value>* near) {
    for (size_t fi = 0; fi < kFields.size(); ++fi) {
      const int f = static_cast<int>(fi);
      for (Value& v : Generate(GenOf(side, f), gen_, RandomCount())) out->push_back({id++, false, {{f, v}}});
      if (kFields[fi].kind != Kind::kCopy) continue;
      for (auto& [first, second] : NearPairs(GenOf(side, f))) {
        (*near)[id] = second;
        out->push_back({id++, false, {{f, first}}});
      }
    }
  }

  // Inserts on the other side copying every field of the records of
  // `writes` that arrived there, at id + `offset`.
  void Copies(const std::vector<Write>& writes, const PhaseResult& r, int64_t offset, std::vector<Write>* out,
              std::map<int64_t, int64_t>* copy_of) {
    for (const Write& w : writes) {
      if (r.fates.at(w.id) != Fate::kArrived) continue;
      Write c{w.id + offset, false, {}};
      for (size_t f = 0; f < kFields.size(); ++f) c.cells.push_back({static_cast<int>(f), r.target_rows.at(w.id)[f]});
      (*copy_of)[c.id] = w.id;
      out->push_back(std::move(c));
    }
  }

  // Updates on `side` of records born on the other side (`born`) that
  // arrived: near values, and a few values generated for `side`'s column.
  void Updates(Side side, const std::vector<Write>& born, const PhaseResult& r, const std::map<int64_t, Value>& near,
               std::vector<Write>* out) {
    std::map<int, int> per_field;
    for (const Write& w : born) {
      if (w.cells.empty() || r.fates.at(w.id) != Fate::kArrived) continue;
      const int f = w.cells[0].first;
      if (auto n = near.find(w.id); n != near.end()) {
        out->push_back({w.id, true, {{f, n->second}}});
      } else if (per_field[f]++ < 4) {
        auto values = Generate(GenOf(side, f), gen_, 3);  // edges, then 3 random values
        out->push_back({w.id, true, {{f, values[values.size() - 1 - static_cast<size_t>(gen_.Int(0, 2))]}}});
      }
    }
  }

  static int Idx(Side s) { return s == L ? 0 : 1; }
  std::string Table(Side s) const { return s == L ? "RT" : "rt"; }
  std::string Column(Side s, int f) const { return s == L ? kFields[f].legacy : kFields[f].name; }
  const ColumnType& Type(Side s, int f) const { return types_[Idx(s)][f]; }
  // A field whose values may come back in the other column's form: check warns about it, and it is listed so.
  bool Warned(int f) const { return kFields[f].warned && pair_.legacy_pg != pair_.modern_pg && check_warns_.count(f); }
  std::string Where() const { return fmt::format("[seed {} (TANDEM_TEST_SEED), {}] ", seed_, pair_.name); }
  std::string Cell(Side s, int f) const {
    return fmt::format("{} {}.{} ({})", SideName(s), Table(s), Column(s, f), Type(s, f).Describe());
  }
  void Fail(std::string what) { failures_.push_back(Where() + what); }

  std::map<int64_t, Row> ReadTable(Side s) {
    Connector& db = env_.AppDb(s);
    std::string sql = "SELECT " + db.QuoteIdent(s == L ? "ID" : "id");
    for (size_t f = 0; f < kFields.size(); ++f) sql += ", " + db.QuoteIdent(Column(s, static_cast<int>(f)));
    sql += " FROM " + db.QuoteIdent(Table(s));
    std::vector<Row> rows;
    Status st = db.Query(sql, {}, &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::map<int64_t, Row> out;
    for (Row& r : rows) out[r[0].as_integer()] = Row(r.begin() + 1, r.end());
    return out;
  }

  std::map<int64_t, std::string> Parked(Side target) {
    std::vector<Row> rows;
    Status st =
        env_.AppDb(target).Query("SELECT source_key, reason FROM _tandem_parked WHERE entity = 'rt'", {}, &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::map<int64_t, std::string> out;
    for (Row& r : rows) {
      auto key = DecodeKey(r[0].as_bytes());
      if (!key.ok() || key->size() != 1) {
        Fail("unreadable put-aside key " + r[0].ToDisplay());
        continue;
      }
      out[(*key)[0].as_integer()] = r[1].is_null() ? "" : r[1].as_bytes();
    }
    return out;
  }

  // Writes as an application would (a transaction, a savepoint per record);
  // returns the records the database refused.
  std::set<int64_t> WriteAll(Side s, const std::vector<Write>& writes) {
    Connector& db = env_.AppDb(s);
    std::set<int64_t> refused;
    const bool pg = env_.pg(s) != nullptr;
    Status st = db.BeginWrite();
    EXPECT_TRUE(st.ok()) << st.ToString();
    // A PostgreSQL application in a time zone with daylight saving time:
    // timestamptz values without an offset are its local time (DST gaps included).
    if (pg) {
      EXPECT_TRUE(db.Exec("SET LOCAL TimeZone = 'Europe/Berlin'").ok());
    }
    for (const Write& w : writes) {
      std::string sql;
      Row params;
      if (w.update) {
        sql = "UPDATE " + db.QuoteIdent(Table(s)) + " SET ";
        for (size_t i = 0; i < w.cells.size(); ++i) {
          sql += (i ? ", " : "") + db.QuoteIdent(Column(s, w.cells[i].first)) + " = ?";
          params.push_back(w.cells[i].second);
        }
        sql += " WHERE " + db.QuoteIdent(s == L ? "ID" : "id") + " = ?";
        params.push_back(I(w.id));
      } else {
        sql = "INSERT INTO " + db.QuoteIdent(Table(s)) + "(" + db.QuoteIdent(s == L ? "ID" : "id");
        std::string marks = "?";
        params.push_back(I(w.id));
        for (auto& [f, v] : w.cells) {
          sql += ", " + db.QuoteIdent(Column(s, f));
          marks += ", ?";
          params.push_back(v);
        }
        sql += ") VALUES (" + marks + ")";
      }
      auto ok = [&](Status st) { EXPECT_TRUE(st.ok()) << st.ToString(); };
      ok(db.Savepoint("w"));
      if (db.Exec(sql, params).ok()) {
        ok(db.ReleaseSavepoint("w"));
      } else {
        ok(db.RollbackToSavepoint("w"));
        refused.insert(w.id);
      }
    }
    st = db.Commit();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return refused;
  }

  // The value field `f` must have on side `to` for the value `v` of the other
  // side; nullopt when the rule has no exact image of it (then the record
  // must be put aside).
  std::optional<Value> Image(int f, Side to, const Value& v) const {
    if (v.is_null()) return Value::Null();
    const Side from = Other(to);
    const Value c = CanonicalValue(Type(from, f), v);
    switch (kFields[f].kind) {
      case Kind::kCopy:
      case Kind::kHired:  // date(x) is x when it comes back as x; the way back is the identity
        return v;
      case Kind::kFlag:
        if (to == M) {
          if (c.type() == ValueType::kText && c.as_bytes() == "Y") return I(1);
          if (c.type() == ValueType::kText && c.as_bytes() == "N") return I(0);
          return std::nullopt;
        }
        if (c.type() == ValueType::kInteger && c.as_integer() == 1) return T("Y");
        if (c.type() == ValueType::kInteger && c.as_integer() == 0) return T("N");
        return std::nullopt;
      case Kind::kStatus:
        if (to == M) {
          if (c.type() == ValueType::kInteger && c.as_integer() >= 1 && c.as_integer() <= 3)
            return T(kLabels[static_cast<size_t>(c.as_integer() - 1)]);
          return std::nullopt;
        }
        for (int i = 0; i < 3; ++i)
          if (c.type() == ValueType::kText && c.as_bytes() == kLabels[static_cast<size_t>(i)]) return I(i + 1);
        return std::nullopt;
      case Kind::kPrice: {
        // Exact decimal arithmetic while doubles are exact to the cent (|cents|
        // < 2^53); beyond, what the rule's own double arithmetic gives
        // (x / 100.0, round(x * 100), CAST saturating at the int64 range):
        // there the copy-back check is what tells a changed value.
        constexpr double kExact = 9007199254740992.0;  // 2^53
        if (to == M) {
          if (v.type() != ValueType::kInteger) return std::nullopt;
          if (std::fabs(static_cast<double>(v.as_integer())) >= kExact)
            return R(static_cast<double>(v.as_integer()) / 100.0);
          return T(CanonicalDecimal(std::to_string(v.as_integer()) + "e-2"));
        }
        std::string dec = c.type() == ValueType::kInteger ? std::to_string(c.as_integer())
                          : c.type() == ValueType::kText  ? CanonicalDecimal(c.as_bytes())
                          : c.type() == ValueType::kReal  ? CanonicalDecimal(RealText(c.as_real()))
                                                          : "";
        if (dec.empty()) return std::nullopt;
        std::string cents = CanonicalDecimal(dec + "e2");
        if (std::fabs(std::strtod(cents.c_str(), nullptr)) >= kExact) {
          const double r = std::round(std::strtod(dec.c_str(), nullptr) * 100.0);
          if (r >= 9223372036854775807.0) return I(kI64Max);
          if (r <= -9223372036854775808.0) return I(kI64Min);
          return I(static_cast<int64_t>(r));
        }
        if (cents.find('.') != std::string::npos) return std::nullopt;
        return I(std::stoll(cents));
      }
      case Kind::kDob: {
        if (to == M) {
          if (v.type() != ValueType::kInteger || v.as_integer() < 0) return std::nullopt;
          const int64_t n = v.as_integer(), y = n / 10000, mo = n / 100 % 100, d = n % 100;
          if (y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
          return T(fmt::format("{:04}-{:02}-{:02}", y, mo, d));
        }
        if (c.type() != ValueType::kText) return std::nullopt;
        const std::string& t = c.as_bytes();
        if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
        for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
          if (!std::isdigit(static_cast<unsigned char>(t[static_cast<size_t>(i)]))) return std::nullopt;
        return I(std::stoll(t.substr(0, 4)) * 10000 + std::stoll(t.substr(5, 2)) * 100 + std::stoll(t.substr(8, 2)));
      }
    }
    return std::nullopt;
  }

  // Writes `writes` on `from`, syncs, and checks every cell of every written
  // record on the other side. `copy_of` names records that copy the other
  // side's record (`originals`, as the other side held it when it was
  // written): their values must come back as that record's.
  PhaseResult Phase(const std::string& name, Side from, const std::vector<Write>& writes,
                    const std::map<int64_t, int64_t>& copy_of, const std::map<int64_t, Row>* originals = nullptr) {
    SCOPED_TRACE(name);
    const Side to = Other(from);
    PhaseResult out;
    const auto target_before = ReadTable(to);
    const auto refused = WriteAll(from, writes);
    out.source_rows = ReadTable(from);
    const auto parked_before = Parked(to);
    env_.SyncOnce();
    if (::testing::Test::HasFatalFailure()) {  // the sync failed: nothing more to learn from this run
      stopped_ = true;
      return out;
    }
    out.target_rows = ReadTable(to);
    const auto parked = Parked(to);
    for (const Write& w : writes) {
      const std::string what = fmt::format("{} record {} ({})", SideName(from), w.id, name);
      if (refused.count(w.id)) {
        out.fates[w.id] = Fate::kRefusedBySource;
        if (must_arrive_ || copy_of.count(w.id))
          Fail(fmt::format("{}: {} refused a value it holds itself", what, SideName(from)));
        continue;
      }
      const Row& src = out.source_rows.at(w.id);
      auto p = parked.find(w.id);
      if (p != parked.end() && !parked_before.count(w.id)) {
        out.fates[w.id] = Fate::kParked;
        ++parked_;
        CheckParked(what, from, w, src, p->second, target_before, out.target_rows, copy_of);
        continue;
      }
      auto t = out.target_rows.find(w.id);
      if (t == out.target_rows.end()) {
        Fail(fmt::format("{}: neither arrived on {} nor put aside", what, SideName(to)));
        out.fates[w.id] = Fate::kParked;
        continue;
      }
      out.fates[w.id] = Fate::kArrived;
      if (must_arrive_ && p != parked.end()) Fail(what + ": was put aside before");
      for (size_t fi = 0; fi < kFields.size(); ++fi) {
        const int f = static_cast<int>(fi);
        ++checked_;
        const Value& sv = src[fi];
        const Value& tv = t->second[fi];
        std::optional<Value> image = Image(f, to, sv);
        if (!image) {
          Fail(
              fmt::format("{}: {} {} arrived as {} {}, but the rule has no exact image of it; it should have been "
                          "put aside",
                          what, Cell(from, f), sv.ToDisplay(), Cell(to, f), tv.ToDisplay()));
          continue;
        }
        if (!SameValue(Type(to, f), tv, *image)) {
          if (Warned(f) && SameValue(Type(from, f), tv, *image)) {  // kept in the other column's form
            ++warned_changes_[kFields[f].name];
            continue;
          }
          Fail(fmt::format("{}: {} {} silently changed: {} holds {} (expected {}), no put-aside row", what,
                           Cell(from, f), sv.ToDisplay(), Cell(to, f), tv.ToDisplay(), image->ToDisplay()));
          continue;
        }
        // The way back: a copy of the other side's record must bring back its values.
        auto c = copy_of.find(w.id);
        if (c == copy_of.end() || !originals) continue;
        const Value& original = originals->at(c->second)[fi];
        if (SameValue(Type(to, f), tv, original)) {
          clean_back_[w.id].insert(f);
          continue;
        }
        if (Warned(f) && SameValue(Type(from, f), tv, original)) {
          ++warned_changes_[kFields[f].name];
          continue;
        }
        Fail(
            fmt::format("{} (record {} there and back): {} {} came back as {}, a different value for {} (with no "
                        "put-aside row)",
                        what, c->second, Cell(to, f), original.ToDisplay(), tv.ToDisplay(), Type(to, f).Describe()));
      }
    }
    return out;
  }

  void CheckParked(const std::string& what, Side from, const Write& w, const Row& src, const std::string& reason,
                   const std::map<int64_t, Row>& target_before, const std::map<int64_t, Row>& target_after,
                   const std::map<int64_t, int64_t>& copy_of) {
    const Side to = Other(from);
    if (reason.empty()) Fail(what + ": put aside without a reason");
    if (must_arrive_)
      Fail(fmt::format("{}: put aside although each of its values went there and back alone: {}", what, reason));
    // The reason names a field this record sets.
    bool named = false;
    for (auto& [f, v] : w.cells) named |= reason.find(fmt::format("field '{}'", kFields[f].name)) != std::string::npos;
    if (w.cells.empty() || !named)
      Fail(fmt::format("{}: the put-aside reason names none of its fields: {}", what, reason));
    // A copy of what the other side holds, put aside on its way back, where
    // the way there passed the round-trip check.
    // (Computed fields and code maps may: a value can arrive exactly under the
    // target's type and still not map back to itself from there.)
    if (copy_of.count(w.id)) {
      bool warned = false;
      for (auto& [f, v] : w.cells)
        if (!v.is_null() && (Warned(f) || kFields[f].kind != Kind::kCopy) &&
            reason.find(fmt::format("field '{}'", kFields[f].name)) != std::string::npos)
          warned = true;
      if (!warned)
        Fail(fmt::format("{}: a copy of {} record {} that arrived there exactly is put aside on its way back: {}", what,
                         SideName(to), copy_of.at(w.id), reason));
    }
    // Nothing of it was written.
    auto before = target_before.find(w.id);
    auto after = target_after.find(w.id);
    if (before == target_before.end()) {
      if (after != target_after.end()) Fail(what + ": put aside, yet a record was written on " + SideName(to));
    } else if (after == target_after.end()) {
      Fail(what + ": put aside, yet the record is gone on " + SideName(to));
    } else {
      for (size_t f = 0; f < kFields.size(); ++f)
        if (!before->second[f].SameAs(after->second[f]) || before->second[f].type() != after->second[f].type())
          Fail(fmt::format("{}: put aside, yet {} changed from {} to {}", what, Cell(to, static_cast<int>(f)),
                           before->second[f].ToDisplay(), after->second[f].ToDisplay()));
    }
    (void)src;
  }

  TestEnv& env_;
  SystemsPair pair_;
  uint64_t seed_;
  Gen gen_;
  std::vector<ColumnType> types_[2];
  std::vector<std::string> failures_;
  std::map<std::string, int> warned_changes_;
  std::map<int64_t, std::set<int>> clean_back_;  // copy record -> fields that came back unchanged
  std::set<int> check_warns_;                    // fields `tandem check` warns about
  bool stopped_ = false;                         // a sync failed
  bool must_arrive_ = false;
  int64_t checked_ = 0, parked_ = 0;
};

class RoundTripPropertyTest : public ::testing::TestWithParam<SystemsPair> {
 protected:
  void SetUp() override {
    if (GetParam().any_pg()) TANDEM_REQUIRE_PG();
  }
};

TEST_P(RoundTripPropertyTest, EveryValueComesBackOrIsPutAsideWithAReason) {
  uint64_t seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  if (const char* s = getenv("TANDEM_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE(fmt::format("seed {} (rerun with TANDEM_TEST_SEED={})", seed, seed));
  const SystemsPair& pair = GetParam();
  Backends backends = pair.backends();
  backends.legacy_schema = Schema(L, pair.legacy_pg);
  backends.modern_schema = Schema(M, pair.modern_pg);
  TestEnv env(ConfigText(), backends);
  ASSERT_NO_FATAL_FAILURE(env.Install());
  RoundTripRun run(env, pair, seed);
  ASSERT_NO_FATAL_FAILURE(run.Describe());
  run.Run();
}

INSTANTIATE_TEST_SUITE_P(Sides, RoundTripPropertyTest,
                         ::testing::Values(SystemsPair{"SqliteToSqlite", false, false},
                                           SystemsPair{"SqliteToPg", false, true},
                                           SystemsPair{"PgToSqlite", true, false}, SystemsPair{"PgToPg", true, true}),
                         SystemsPairName);

}  // namespace
}  // namespace tandem
