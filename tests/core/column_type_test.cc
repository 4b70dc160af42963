#include "core/column_type.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace tandem {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

ColumnType Pg(const std::string& t) { return PostgresColumnType(t); }
ColumnType Lite(const std::string& t) { return SqliteColumnType(t); }

std::string StoreError(const ColumnType& t, const Value& v) {
  auto r = StoreValue(t, v);
  return r.ok() ? std::string("stored ") + r->ToDisplay() : r.status().message();
}

TEST(ColumnTypeTest, SqliteDeclaredTypesFollowAffinityRules) {
  EXPECT_EQ(Lite("INTEGER").cls, TypeClass::kInteger);
  EXPECT_EQ(Lite("BIGINT").affinity, Affinity::kInteger);
  EXPECT_EQ(Lite("VARCHAR(20)").cls, TypeClass::kText);
  EXPECT_EQ(Lite("").cls, TypeClass::kAny);
  EXPECT_EQ(Lite("BLOB").cls, TypeClass::kAny);
  EXPECT_EQ(Lite("DOUBLE").cls, TypeClass::kReal);
  EXPECT_EQ(Lite("DECIMAL(10,2)").cls, TypeClass::kNumeric);
  EXPECT_EQ(Lite("BOOLEAN").cls, TypeClass::kBoolean);
  EXPECT_EQ(Lite("DATETIME").cls, TypeClass::kTimestamp);
  EXPECT_EQ(Lite("DATE").cls, TypeClass::kDate);
  EXPECT_EQ(Lite("DATE").affinity, Affinity::kNumeric);
  EXPECT_EQ(Lite("JSON").cls, TypeClass::kJson);
  EXPECT_EQ(Lite("JSON").affinity, Affinity::kNumeric);
}

// A SQLite column declared JSON has numeric affinity: JSON text that reads
// as a number would be stored as SQLite's number, in another form.
TEST(ColumnTypeTest, SqliteJsonColumnsKeepJsonText) {
  ColumnType j = Lite("JSON");
  EXPECT_EQ(StoreError(j, Value::Text("1.0")), "SQLite's NUMERIC affinity would store this JSON text as the number 1");
  EXPECT_EQ(StoreError(j, Value::Text("1e2")), "SQLite's NUMERIC affinity would store this JSON text as the number 100");
  EXPECT_EQ(StoreValue(j, Value::Text("123"))->as_integer(), 123) << "the same text as SQLite prints it";
  EXPECT_EQ(StoreValue(j, Value::Text("{\"a\": 1.0}"))->as_bytes(), "{\"a\": 1.0}");
  EXPECT_TRUE(SameValue(j, Value::Integer(123), Value::Text("123")));
  EXPECT_FALSE(SameValue(j, Value::Integer(1), Value::Text("1.0")));
}

TEST(ColumnTypeTest, PostgresTypesCarryTheirModifiers) {
  ColumnType n = Pg("numeric(12,2)");
  EXPECT_EQ(n.cls, TypeClass::kNumeric);
  EXPECT_EQ(n.precision, 12);
  EXPECT_EQ(n.scale, 2);
  EXPECT_EQ(Pg("numeric").scale, -1);
  EXPECT_EQ(Pg("character varying(5)").length, 5);
  EXPECT_TRUE(Pg("character(3)").fixed_length);
  EXPECT_EQ(Pg("smallint").bits, 16);
  EXPECT_EQ(Pg("real").bits, 32);
  EXPECT_EQ(Pg("timestamp with time zone").cls, TypeClass::kTimestampTz);
  EXPECT_EQ(Pg("timestamp(3) without time zone").cls, TypeClass::kTimestamp);
  EXPECT_EQ(Pg("time without time zone").cls, TypeClass::kTime);
  EXPECT_EQ(Pg("integer[]").cls, TypeClass::kOther);
  EXPECT_EQ(PostgresColumnType("mood", {"sad", "ok"}).cls, TypeClass::kEnum);
}

TEST(ColumnTypeTest, BooleansCompareAcrossTheirSpellings) {
  ColumnType b = Pg("boolean");
  EXPECT_TRUE(SameValue(b, Value::Integer(1), Value::Text("true")));
  EXPECT_TRUE(SameValue(b, Value::Integer(0), Value::Text("f")));
  EXPECT_FALSE(SameValue(b, Value::Integer(1), Value::Integer(0)));
  EXPECT_EQ(CodeKey(b, Value::Text("true")), CodeKey(b, Value::Integer(1)));
  EXPECT_TRUE(SameValue(Lite("BOOLEAN"), Value::Integer(1), Value::Text("TRUE")));
  EXPECT_EQ(StoreError(b, Value::Text("maybe")), "not a boolean (true/false, t/f, yes/no, on/off, 1/0)");
}

TEST(ColumnTypeTest, NumbersCompareByValueAndScale) {
  ColumnType n = Pg("numeric(12,2)");
  EXPECT_TRUE(SameValue(n, Value::Text("1.50"), Value::Real(1.5)));
  EXPECT_TRUE(SameValue(n, Value::Text("2.00"), Value::Integer(2)));
  EXPECT_FALSE(SameValue(n, Value::Text("1.51"), Value::Real(1.5)));
  EXPECT_TRUE(SameValue(Lite("INTEGER"), Value::Text("12"), Value::Integer(12)));
  EXPECT_EQ(CanonicalDecimal("1e-7"), "0.0000001");
  EXPECT_EQ(CanonicalDecimal("-0.000"), "0");
  EXPECT_EQ(CanonicalDecimal(" 12300 "), "12300");
  EXPECT_EQ(CanonicalDecimal("1.2e3"), "1200");
  EXPECT_EQ(CanonicalDecimal("abc"), "");
  EXPECT_EQ(CanonicalDecimal("1e"), "");
  EXPECT_EQ(CanonicalDecimal("12345678901234567890123456789012345678"),
            "12345678901234567890123456789012345678");
}

TEST(ColumnTypeTest, NaNEqualsNaNAndNegativeZeroOnlyWhereTheColumnCannotTell) {
  EXPECT_TRUE(SameValue(Pg("double precision"), Value::Real(kNaN), Value::Real(kNaN)));
  EXPECT_TRUE(SameValue(Lite("REAL"), Value::Real(kNaN), Value::Real(kNaN)));
  EXPECT_TRUE(Value::Real(kNaN).SameAs(Value::Real(kNaN)));
  EXPECT_FALSE(SameValue(Pg("double precision"), Value::Real(-0.0), Value::Real(0.0)));
  EXPECT_FALSE(SameValue(Pg("double precision"), Value::Real(kNaN), Value::Real(1)));
}

// SQLite stores -0.0 as 0 in a column of number affinity: a PostgreSQL
// float's -0.0 is refused there (put aside), and is not the 0 it holds (else
// an update from 0 to -0.0 would be taken for no change and never arrive).
TEST(ColumnTypeTest, SqliteNumberColumnsCannotHoldNegativeZero) {
  for (const char* declared : {"REAL", "DOUBLE", "NUMERIC", "DECIMAL(12,2)", "INTEGER"}) {
    EXPECT_EQ(StoreError(Lite(declared), Value::Real(-0.0)),
              "SQLite stores -0.0 as 0 in a column with numeric, integer or real affinity (it loses the sign)")
        << declared;
    EXPECT_FALSE(SameValue(Lite(declared), Value::Real(-0.0), Value::Real(0.0))) << declared;
    EXPECT_FALSE(SameValue(Lite(declared), Value::Integer(0), Value::Real(-0.0))) << declared;
    EXPECT_TRUE(SameValue(Lite(declared), Value::Real(-0.0), Value::Real(-0.0))) << declared;
    EXPECT_TRUE(SameValue(Lite(declared), Value::Real(0.0), Value::Integer(0))) << declared;
  }
  EXPECT_EQ(StoreValue(Lite("TEXT"), Value::Real(-0.0))->as_bytes(), "-0");
  auto untyped = StoreValue(Lite(""), Value::Real(-0.0));
  ASSERT_TRUE(untyped.ok()) << "a column without a type keeps -0.0";
  EXPECT_TRUE(std::signbit(untyped->as_real()));
}

// A value a float column would round is the same as nothing it holds: an
// update to it is a change (put aside), never taken for "no change".
TEST(ColumnTypeTest, ValuesAFloatColumnWouldRoundAreNotWhatItHolds) {
  ColumnType f4 = Pg("real");
  EXPECT_FALSE(SameValue(f4, Value::Real(0.0), Value::Real(2.5354423702009477e-161)));
  EXPECT_EQ(StoreError(f4, Value::Real(2.5354423702009477e-161)), "real (float4) would round it to 0");
  EXPECT_FALSE(SameValue(f4, Value::Real(16777216.0), Value::Real(16777217.0)));
  EXPECT_FALSE(SameValue(f4, Value::Real(16777216.0), Value::Integer(16777217)));
  EXPECT_FALSE(SameValue(f4, Value::Real(0.1), Value::Real(static_cast<double>(0.1f))))
      << "the float 0.1f reads back as 0.1: its exact value 0.10000000149011612 would come back changed";
  EXPECT_EQ(StoreError(f4, Value::Real(static_cast<double>(0.1f))), "real (float4) would round it to 0.1");
  EXPECT_EQ(StoreError(f4, Value::Real(static_cast<double>(std::numeric_limits<float>::max()))),
            "real (float4) would round it to 3.4028235e+38");
  EXPECT_TRUE(SameValue(f4, Value::Real(3.4028235e+38), Value::Text("3.4028235e+38")));
  EXPECT_TRUE(SameValue(f4, Value::Text("0.1"), Value::Real(0.1)));
  const int64_t big = (int64_t{1} << 53) + 1;
  for (const char* declared : {"REAL", ""}) {
    EXPECT_FALSE(SameValue(Lite(declared), Value::Integer(big), Value::Real(9007199254740992.0))) << declared;
    EXPECT_TRUE(SameValue(Lite(declared), Value::Integer(5), Value::Real(5.0))) << declared;
  }
  EXPECT_FALSE(SameValue(Pg("double precision"), Value::Integer(big), Value::Real(9007199254740992.0)));
  EXPECT_FALSE(SameValue(Pg("double precision"), Value::Text("0.1000000000000000000001"), Value::Real(0.1)));
  EXPECT_TRUE(SameValue(Pg("double precision"), Value::Text("1e-7"), Value::Real(1e-7)));
}

// PostgreSQL stores 24:00:00 and a 60th second as the next day or minute.
TEST(ColumnTypeTest, MidnightAtTheEndOfADayAndLeapSecondsAreCarried) {
  for (const char* declared : {"timestamp without time zone", "timestamp with time zone"}) {
    ColumnType ts = Pg(declared);
    EXPECT_TRUE(SameValue(ts, Value::Text("2020-06-01 24:00:00"), Value::Text("2020-06-02 00:00:00"))) << declared;
    EXPECT_TRUE(SameValue(ts, Value::Text("2020-12-31 24:00:00"), Value::Text("2021-01-01 00:00:00+00"))) << declared;
    EXPECT_TRUE(SameValue(ts, Value::Text("2016-12-31 23:59:60"), Value::Text("2017-01-01 00:00:00"))) << declared;
    EXPECT_FALSE(SameValue(ts, Value::Text("2020-06-01 24:00:00"), Value::Text("2020-06-01 00:00:00"))) << declared;
    EXPECT_EQ(StoreError(ts, Value::Text("2020-06-01 24:00:00.5")),
              "not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])")
        << declared;
    EXPECT_EQ(StoreError(ts, Value::Text("2016-12-31 23:59:60.5")),
              "not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])")
        << "PostgreSQL refuses it: " << declared;
  }
  EXPECT_TRUE(SameValue(Lite("DATETIME"), Value::Text("2020-06-01 24:00:00"), Value::Text("2020-06-02 00:00:00")));
  ColumnType time = Pg("time without time zone");
  EXPECT_TRUE(SameValue(time, Value::Text("23:59:60"), Value::Text("24:00:00")));
  EXPECT_TRUE(SameValue(time, Value::Text("12:34:60.5"), Value::Text("12:35:00.5")));
  EXPECT_FALSE(SameValue(time, Value::Text("24:00:00"), Value::Text("00:00:00"))) << "time keeps 24:00:00";
  EXPECT_EQ(StoreValue(time, Value::Text("23:59:60"))->as_bytes(), "24:00:00");
  EXPECT_EQ(StoreError(time, Value::Text("24:00:00.5")), "not a time of day (HH:MM:SS)");
}

TEST(ColumnTypeTest, TimestampsCompareAsInstants) {
  ColumnType tz = Pg("timestamp with time zone");
  EXPECT_TRUE(SameValue(tz, Value::Text("2024-01-01 10:00:00"), Value::Text("2024-01-01 10:00:00+00")));
  EXPECT_TRUE(SameValue(tz, Value::Text("2024-01-01T12:30:00+02:30"), Value::Text("2024-01-01 10:00:00+00")));
  EXPECT_TRUE(SameValue(tz, Value::Text("2024-01-01 00:30:00+01"), Value::Text("2023-12-31 23:30:00+00")));
  EXPECT_TRUE(SameValue(tz, Value::Text("2024-01-01 10:00:00.500"), Value::Text("2024-01-01 10:00:00.5+00")));
  EXPECT_FALSE(SameValue(tz, Value::Text("2024-01-01 10:00:01"), Value::Text("2024-01-01 10:00:00+00")));
  ColumnType ts = Pg("timestamp without time zone");
  EXPECT_TRUE(SameValue(ts, Value::Text("2024-03-31 02:30:00"), Value::Text("2024-03-31T02:30:00")));
  EXPECT_EQ(StoreValue(ts, Value::Text("0001-01-01 00:00:00"))->as_bytes(), "0001-01-01 00:00:00");
  EXPECT_EQ(StoreError(ts, Value::Text("unbekannt")), "not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])");
  EXPECT_EQ(StoreError(ts, Value::Text("2024-01-01 10:00:00.1234567")),
            "has more than 6 decimal places of seconds; PostgreSQL would round it");
  EXPECT_EQ(StoreValue(Lite("DATETIME"), Value::Text("2024-01-01 12:00:00+02"))->as_bytes(), "2024-01-01 10:00:00");
}

TEST(ColumnTypeTest, DatesAreValidatedAndNormalized) {
  ColumnType d = Pg("date");
  EXPECT_EQ(StoreValue(d, Value::Text("9999-12-31"))->as_bytes(), "9999-12-31");
  EXPECT_EQ(StoreError(d, Value::Text("2023-02-29")), "not a date (YYYY-MM-DD)");
  EXPECT_EQ(StoreError(d, Value::Text("2024-02-29 10:00")), "has a time of day; a date column would drop it");
  EXPECT_TRUE(SameValue(d, Value::Text("2024-02-29"), Value::Text("2024-02-29 00:00:00")));
}

TEST(ColumnTypeTest, StoreRefusesWhatAColumnWouldChange) {
  EXPECT_EQ(StoreError(Pg("numeric(12,2)"), Value::Text("n/a")), "not a number");
  EXPECT_EQ(StoreError(Pg("numeric(12,2)"), Value::Real(1.234)),
            "has 3 decimal places; numeric(12,2) keeps 2 and would round it");
  EXPECT_EQ(StoreError(Pg("numeric(4,2)"), Value::Integer(100)), "too large for numeric(4,2)");
  EXPECT_EQ(StoreValue(Pg("numeric(12,2)"), Value::Text("1.50"))->ToDisplay(), "'1.5'");
  EXPECT_EQ(StoreError(Pg("integer"), Value::Real(1.5)), "not an integer");
  EXPECT_EQ(StoreError(Pg("smallint"), Value::Integer(40000)), "out of range for smallint");
  EXPECT_EQ(StoreValue(Pg("bigint"), Value::Text("42"))->as_integer(), 42);
  EXPECT_EQ(StoreError(Pg("character varying(3)"), Value::Text("abcd")), "4 characters; character varying(3) holds 3");
  EXPECT_EQ(StoreError(Pg("character varying(3)"), Value::Text("abc  ")), "5 characters; character varying(3) holds 3");
  EXPECT_TRUE(StoreValue(Pg("character(3)"), Value::Text("ab   ")).ok()) << "char(n) pads anyway";
  EXPECT_EQ(StoreError(Pg("real"), Value::Real(0.30000000000000004)), "real (float4) would round it to 0.3");
  EXPECT_TRUE(StoreValue(Pg("real"), Value::Real(0.1)).ok()) << "0.1 reads back as 0.1 from a float4";
  EXPECT_EQ(StoreError(Pg("uuid"), Value::Text("nope")), "not a UUID");
  EXPECT_EQ(StoreValue(Pg("uuid"), Value::Text("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"))->as_bytes(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(StoreError(PostgresColumnType("mood", {"sad", "ok"}), Value::Text("happy")), "not a label of mood (sad, ok)");
  EXPECT_EQ(StoreError(Pg("jsonb"), Value::Text("{")), "not valid JSON");
  EXPECT_EQ(StoreError(Pg("text"), Value::Text(std::string("a\0b", 3))), "PostgreSQL text cannot hold a NUL character");
}

TEST(ColumnTypeTest, SqliteAffinityConversionsMustBeExact) {
  EXPECT_EQ(StoreValue(Lite("INTEGER"), Value::Text("007"))->as_integer(), 7) << "the same integer";
  EXPECT_EQ(StoreValue(Lite("INTEGER"), Value::Text("abc"))->as_bytes(), "abc") << "SQLite keeps non-numbers as text";
  EXPECT_EQ(StoreValue(Lite("TEXT"), Value::Real(0.1 + 0.2))->as_bytes(), "0.30000000000000004");
  EXPECT_EQ(StoreError(Lite("NUMERIC"), Value::Text("12345678901234567890.5")),
            "SQLite would store it as the approximate number 1.2345678901234567e+19 (NUMERIC affinity keeps about 15 "
            "digits); use a TEXT column for exact decimals");
  EXPECT_EQ(StoreError(Lite("REAL"), Value::Real(kNaN)), "SQLite cannot store NaN (it would become NULL)");
  EXPECT_EQ(StoreValue(Lite("TEXT"), Value::Real(kNaN))->as_bytes(), "NaN");
  EXPECT_TRUE(StoreValue(Lite(""), Value::Blob("\x01")).ok());
}

TEST(ColumnTypeTest, JsonbComparesAsJsonValues) {
  ColumnType j = Pg("jsonb");
  EXPECT_TRUE(SameValue(j, Value::Text("{\"b\": 1, \"a\": [1, 2.0]}"), Value::Text("{\"a\":[1,2],\"b\":1}")));
  EXPECT_FALSE(SameValue(j, Value::Text("{\"a\": 1}"), Value::Text("{\"a\": 2}")));
  EXPECT_FALSE(SameValue(Pg("json"), Value::Text("{\"a\": 1}"), Value::Text("{\"a\":1}"))) << "json keeps its text";
}

// Numbers in JSON compare exactly, as jsonb's numeric does: no double in
// between (an edit of the 23rd digit is a change); duplicate keys keep the last.
TEST(ColumnTypeTest, JsonbNumbersAreExact) {
  ColumnType j = Pg("jsonb");
  auto same = [&](const char* a, const char* b) { return SameValue(j, Value::Text(a), Value::Text(b)); };
  EXPECT_FALSE(same("{\"n\": 12345678901234567890123}", "{\"n\": 12345678901234567890124}"));
  EXPECT_FALSE(same("{\"n\": 1.00000000000000001}", "{\"n\": 1}"));
  EXPECT_FALSE(same("[18446744073709551616]", "[18446744073709551617]"));
  EXPECT_TRUE(same("{\"n\": 1.0}", "{\"n\": 1}"));
  EXPECT_TRUE(same("1e2", "100"));
  EXPECT_TRUE(same("-0", "0"));
  EXPECT_TRUE(same("{\"f\": 0.1000}", "{\"f\": 0.1}"));
  EXPECT_TRUE(same("1e400", ("1" + std::string(400, '0')).c_str()));
  EXPECT_TRUE(same("{\"a\": 1, \"a\": 2}", "{\"a\": 2}")) << "jsonb keeps the last of duplicate keys";
  EXPECT_FALSE(same("{\"a\": 1, \"a\": 2}", "{\"a\": 1}"));
  EXPECT_TRUE(same("\"\\u00e9\"", "\"\xC3\xA9\""));
  EXPECT_TRUE(same(" [ {\"b\" : [ ] , \"a\":null} ] ", "[{\"a\": null, \"b\": []}]"));
  EXPECT_FALSE(same("[1, 2]", "[2, 1]"));
  EXPECT_FALSE(same("\"1\"", "1")) << "a string is not a number";
  EXPECT_TRUE(StoreValue(j, Value::Text("{\"z\": 1e400}")).ok()) << "PostgreSQL's numeric holds it";
  EXPECT_EQ(StoreError(j, Value::Text("[1, 2")), "not valid JSON");
  EXPECT_EQ(StoreError(j, Value::Text("01")), "not valid JSON");
  EXPECT_EQ(StoreError(j, Value::Text("\"\\u0000\"")), "jsonb cannot hold the character U+0000 (\\u0000)");
  EXPECT_TRUE(StoreValue(Pg("json"), Value::Text("\"\\u0000\"")).ok()) << "json keeps its text";
}

// json, jsonb, enums and types Tandem does not interpret store a number as
// its text (StoreValue): the number and that text are one value.
TEST(ColumnTypeTest, NumbersInTextLikeColumnsAreTheirText) {
  EXPECT_TRUE(SameValue(Pg("json"), Value::Text("1"), Value::Integer(1)));
  EXPECT_TRUE(SameValue(Pg("json"), Value::Text("1.5"), Value::Real(1.5)));
  EXPECT_FALSE(SameValue(Pg("json"), Value::Text("1.0"), Value::Integer(1))) << "json keeps its text";
  EXPECT_TRUE(SameValue(Pg("jsonb"), Value::Text("1.0"), Value::Integer(1)));
  EXPECT_TRUE(SameValue(Pg("interval"), Value::Text("1.5"), Value::Real(1.5)));
  EXPECT_TRUE(SameValue(PostgresColumnType("level", {"1", "2"}), Value::Text("2"), Value::Integer(2)));
  for (const char* declared : {"json", "jsonb", "interval"}) {
    Value stored = *StoreValue(Pg(declared), Value::Integer(42));
    EXPECT_TRUE(SameValue(Pg(declared), stored, Value::Integer(42))) << declared;
  }
}

TEST(ColumnTypeTest, CharNIgnoresPadding) {
  EXPECT_TRUE(SameValue(Pg("character(5)"), Value::Text("ab"), Value::Text("ab   ")));
  EXPECT_FALSE(SameValue(Pg("text"), Value::Text("ab"), Value::Text("ab   ")));
}

}  // namespace
}  // namespace tandem

namespace tandem {
TEST(ColumnTypeTest, FloatNoiseIntoADecimalIsRefusedWithAHint) {
  auto r = StoreValue(PostgresColumnType("numeric(12,2)"), Value::Real(1.1400000000000001));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("binary floating-point noise around 1.14: map it with round(..., 2)"),
            std::string::npos)
      << r.status().message();
}
}  // namespace tandem
