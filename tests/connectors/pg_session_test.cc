// PgSession's pure parts: placeholder numbering and result conversion (no server).
#include "connectors/postgres/pg_session.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

constexpr unsigned kBool = 16, kBytea = 17, kInt8 = 20, kText = 25, kFloat8 = 701, kNumeric = 1700;

Value From(const std::string& text, unsigned oid) {
  return PgSession::FromText(text.data(), static_cast<int>(text.size()), oid);
}

TEST(PgSessionTest, NumbersPlaceholdersOutsideLiteralsIdentifiersAndComments) {
  int n = 0;
  EXPECT_EQ(PgSession::NumberPlaceholders("SELECT ?, '?', \"a?\" FROM t WHERE x = ? -- why?\nAND y = ?", &n),
            "SELECT $1, '?', \"a?\" FROM t WHERE x = $2 -- why?\nAND y = $3");
  EXPECT_EQ(n, 3);
  EXPECT_EQ(PgSession::NumberPlaceholders("SELECT 'it''s ?', ?", &n), "SELECT 'it''s ?', $1");
  EXPECT_EQ(n, 1);
}

TEST(PgSessionTest, ConvertsResultsByType) {
  EXPECT_EQ(From("t", kBool).as_integer(), 1);
  EXPECT_EQ(From("f", kBool).as_integer(), 0);
  EXPECT_EQ(From("-9223372036854775808", kInt8).as_integer(), INT64_MIN);
  EXPECT_EQ(From("0.1", kFloat8).as_real(), 0.1);
  Value blob = From("\\x00ff10", kBytea);
  ASSERT_EQ(blob.type(), ValueType::kBlob);
  EXPECT_EQ(blob.as_bytes(), std::string("\x00\xff\x10", 3));
  EXPECT_EQ(From("héllo", kText).as_bytes(), "héllo");
}

// numeric: a number where that is exact, else the exact text.
TEST(PgSessionTest, NumericIsExact) {
  EXPECT_EQ(From("2.00", kNumeric).type(), ValueType::kInteger);
  EXPECT_EQ(From("2.00", kNumeric).as_integer(), 2);
  EXPECT_EQ(From("1.50", kNumeric).type(), ValueType::kReal);
  EXPECT_EQ(From("1.50", kNumeric).as_real(), 1.5);
  EXPECT_EQ(From("12345678901234.56", kNumeric).type(), ValueType::kReal);
  EXPECT_EQ(From("123456789012345678.91", kNumeric).type(), ValueType::kText);
  EXPECT_EQ(From("123456789012345678.91", kNumeric).as_bytes(), "123456789012345678.91");
  EXPECT_EQ(From("99999999999999999999", kNumeric).as_bytes(), "99999999999999999999");
  EXPECT_EQ(From("NaN", kNumeric).as_bytes(), "NaN");
  EXPECT_EQ(From("-0.10", kNumeric).as_real(), -0.1);
}

}  // namespace
}  // namespace tandem
