#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "core/key_codec.h"
#include "core/value.h"

namespace tandem {

TEST(ValueTest, NumbersCompareByValueAcrossIntegerAndReal) {
  EXPECT_TRUE(Value::Integer(12).SameAs(Value::Real(12.0)));
  EXPECT_FALSE(Value::Integer(12).SameAs(Value::Real(12.5)));
  EXPECT_FALSE(Value::Integer(12).SameAs(Value::Text("12")));
  EXPECT_TRUE(Value::Null().SameAs(Value::Null()));
  EXPECT_FALSE(Value::Null().SameAs(Value::Integer(0)));
}

TEST(ValueTest, CompareOrdersLikeSqlite) {
  EXPECT_LT(Value::Null().Compare(Value::Integer(-5)), 0);
  EXPECT_EQ(Value::Integer(2).Compare(Value::Real(2.0)), 0);
  EXPECT_LT(Value::Real(1.5).Compare(Value::Integer(2)), 0);
  EXPECT_GT(Value::Integer(10).Compare(Value::Integer(9)), 0);
  EXPECT_LT(Value::Integer(1000).Compare(Value::Text("1")), 0) << "numbers sort before text";
  EXPECT_LT(Value::Text("2026-01-02 10:00").Compare(Value::Text("2026-01-02 10:01")), 0);
  EXPECT_LT(Value::Text("z").Compare(Value::Blob("a")), 0);
}

TEST(KeyCodecTest, RoundTripsEveryTypeAndSeparatorBytes) {
  Row key = {Value::Integer(-5), Value::Text("a\x1f" "b\x1e"), Value::Real(1.25), Value::Blob(std::string("\0\xff", 2)),
             Value::Null()};
  auto back = DecodeKey(EncodeKey(key));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), key.size());
  for (size_t i = 0; i < key.size(); ++i) EXPECT_TRUE((*back)[i].SameAs(key[i])) << i;
  EXPECT_EQ((*back)[1].as_bytes(), "a\x1f" "b\x1e");
}

// Reals as to_chars writes them and as older versions wrote them (%.17g),
// empty text, and a corrupt element: a status, never an exception.
TEST(KeyCodecTest, DecodesEveryWrittenFormAndRejectsCorruptOnes) {
  auto back = DecodeKey("r1.0000000000000001e+20\x1fr-inf\x1frnan\x1ft\x1fi-9223372036854775808");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 5u);
  EXPECT_EQ((*back)[0].as_real(), 1.0000000000000001e+20);
  EXPECT_TRUE(std::isinf((*back)[1].as_real()) && (*back)[1].as_real() < 0);
  EXPECT_TRUE(std::isnan((*back)[2].as_real()));
  EXPECT_EQ((*back)[3].as_bytes(), "");
  EXPECT_EQ((*back)[4].as_integer(), INT64_MIN);
  for (const char* bad : {"i12x", "ifoo", "r1.5.5", "bzz", "x1", "i1\x1f"}) EXPECT_FALSE(DecodeKey(bad).ok()) << bad;
}

// Key-map indexes store this hash: it must never change between versions or
// platforms. Expected values computed independently (FNV-1a 64 in Python).
TEST(KeyCodecTest, KeyHashIsStableFnv1a) {
  EXPECT_EQ(KeyHash("customer", "i1"), INT64_C(-6217035180830965302));
  EXPECT_EQ(KeyHash("", ""), INT64_C(-5808570067293448152));
  EXPECT_NE(KeyHash("customer", "i1"), KeyHash("customers", "i1"));
}

TEST(KeyCodecTest, IntegerAndTextKeysEncodeDifferently) {
  EXPECT_NE(EncodeKey({Value::Integer(1)}), EncodeKey({Value::Text("1")}));
  EXPECT_EQ(EncodeKey({Value::Integer(7)}), EncodeKey({Value::Integer(7)}));
}

}  // namespace tandem

#include "core/clock.h"

namespace tandem {
TEST(UuidTest, CanonicalVersion4Form) {
  std::string u = NewUuid();
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[8], '-');
  EXPECT_EQ(u[13], '-');
  EXPECT_EQ(u[14], '4');
  EXPECT_EQ(u[18], '-');
  EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
  EXPECT_EQ(u[23], '-');
  EXPECT_NE(NewUuid(), u);
}
}  // namespace tandem

namespace tandem {
// A message naming a value must fit any text column (a put-aside reason on PostgreSQL).
TEST(ValueTest, DisplayEscapesNulAndBytesThatAreNotUtf8) {
  EXPECT_EQ(Value::Text(std::string("Y\0", 2)).ToDisplay(), "'Y\\0'");
  EXPECT_EQ(Value::Text("N\xff").ToDisplay(), "'N\\xff'");
  EXPECT_EQ(Value::Text("caf\xc3\xa9 it's").ToDisplay(), "'caf\xc3\xa9 it''s'");
}
}  // namespace tandem

namespace tandem {
TEST(ValueTest, IntegerAndRealAreEqualOnlyWhenExactlyTheSame) {
  EXPECT_TRUE(Value::Integer(9007199254740992).SameAs(Value::Real(9007199254740992.0)));
  EXPECT_FALSE(Value::Integer(9007199254740993).SameAs(Value::Real(9007199254740992.0)));
  EXPECT_FALSE(Value::Real(1e30).SameAs(Value::Integer(INT64_MAX)));
  EXPECT_TRUE(Value::Real(-0.0).SameAs(Value::Integer(0)));
}
}  // namespace tandem
