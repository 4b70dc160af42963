// Masking PostgreSQL connection targets and libpq's messages about them (no
// server): URIs and keyword/value conninfo, well-formed or not.
#include "connectors/postgres/pg_target.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "core/secrets.h"

namespace tandem {
namespace {

constexpr char kNastyPassword[] = "p@ss:w/rd?#%+= 'x\"\\";

// True when `text` holds any 4-character piece of `secret`: a leak even if
// the whole secret is not there.
::testing::AssertionResult ShowsNoPieceOf(const std::string& text, const std::string& secret) {
  for (size_t i = 0; i + 4 <= secret.size(); ++i)
    if (text.find(secret.substr(i, 4)) != std::string::npos)
      return ::testing::AssertionFailure() << "'" << text << "' shows '" << secret.substr(i, 4) << "' of the secret";
  return ::testing::AssertionSuccess();
}

// libpq's own parse error for `target` ("" when it parses).
std::string LibpqParseError(const std::string& target) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(target.c_str(), &err);
  if (opts) PQconninfoFree(opts);
  std::string why = err ? err : "";
  if (err) PQfreemem(err);
  return why;
}

TEST(MaskConnectionTargetTest, MasksTheUriPasswordAndKeepsTheRest) {
  EXPECT_EQ(MaskConnectionTarget("postgresql://app:s%40cret@db:5432/x?sslmode=require"),
            "postgresql://app:****@db:5432/x?sslmode=require");
  EXPECT_EQ(MaskConnectionTarget("postgres://app:secret@db/x"), "postgres://app:****@db/x");
  EXPECT_EQ(MaskConnectionTarget("postgresql://app@db/x?password=secret&sslmode=require"),
            "postgresql://app@db/x?password=****&sslmode=require");
  const std::string encoded = "postgresql://app:" + PercentEncode(kNastyPassword) + "@db/x";
  EXPECT_EQ(MaskConnectionTarget(encoded), "postgresql://app:****@db/x");
}

TEST(MaskConnectionTargetTest, LeavesTargetsWithoutPasswordsAlone) {
  EXPECT_EQ(MaskConnectionTarget("postgresql://app@db:5432/x"), "postgresql://app@db:5432/x");
  EXPECT_EQ(MaskConnectionTarget("postgresql://db/x?application_name=a@b"), "postgresql://db/x?application_name=a@b");
  EXPECT_EQ(MaskConnectionTarget("sqlite:/data/pass=word:x@y.db"), "sqlite:/data/pass=word:x@y.db");
  EXPECT_EQ(MaskConnectionTarget("host=db dbname=x"), "host=db dbname=x");
}

TEST(MaskConnectionTargetTest, MasksAnUnencodedPasswordFullOfMetacharacters) {
  // libpq reads this differently from what was meant (or not at all): no part
  // of the password may show either way.
  const std::string target = std::string("postgresql://app:") + kNastyPassword + "@db/x";
  const std::string masked = MaskConnectionTarget(target);
  EXPECT_TRUE(ShowsNoPieceOf(masked, kNastyPassword));
  EXPECT_TRUE(masked.starts_with("postgresql://app:****@")) << masked;
}

TEST(MaskConnectionTargetTest, MasksAPasswordLibpqReadsAsHostAndPort) {
  // An unencoded '/' or '@' (base64 passwords): libpq parses these without a
  // password (host "secretuser", port "Sekr3t"), and its errors quote them.
  EXPECT_EQ(MaskConnectionTarget("postgresql://secretuser:Sekr3t/Hidden@127.0.0.1:5432/modern"),
            "postgresql://secretuser:****@127.0.0.1:5432/modern");
  EXPECT_EQ(MaskConnectionTarget("postgresql://secretuser:Sekr3t@Hidden@127.0.0.1/modern"),
            "postgresql://secretuser:****@127.0.0.1/modern");
  RegisterTargetSecrets("postgresql://secretuser:Sekr3t/Hidden@127.0.0.1:5432/modern");
  EXPECT_EQ(ScrubSecrets("invalid integer value \"Sekr3t/Hidden\" for connection option"),
            "invalid integer value \"****\" for connection option");
}

TEST(MaskConnectionTargetTest, MasksMalformedUris) {
  const std::string bracket = "postgresql://app:hunter2secret@[::1/db";
  ASSERT_NE(LibpqParseError(bracket), "");
  EXPECT_EQ(MaskConnectionTarget(bracket), "postgresql://app:****@[::1/db");
  const std::string bad_escape = "postgresql://app:hun%zzter2@db/x";
  ASSERT_NE(LibpqParseError(bad_escape), "");
  EXPECT_EQ(MaskConnectionTarget(bad_escape), "postgresql://app:****@db/x");
  EXPECT_EQ(MaskConnectionTarget("mysql://app:hunter2@db/x"), "mysql://app:****@db/x");
}

TEST(MaskConnectionTargetTest, MasksConninfoPasswordsQuotedOrNot) {
  EXPECT_EQ(MaskConnectionTarget("host=db password=secret dbname=x"), "host=db password=**** dbname=x");
  EXPECT_EQ(MaskConnectionTarget("host=db password = 'p@ss \\'x\\\\' dbname=x"), "host=db password = **** dbname=x");
  const std::string nasty = "host=db password=" + QuoteConninfoValue(kNastyPassword) + " dbname=x";
  ASSERT_EQ(LibpqParseError(nasty), "");
  EXPECT_EQ(MaskConnectionTarget(nasty), "host=db password=**** dbname=x");
}

TEST(MaskConnectionTargetTest, MasksEverythingFromWhereConninfoBreaks) {
  EXPECT_EQ(MaskConnectionTarget("host=db password=my secret dbname=x"), "host=db password=**** ****");
  EXPECT_EQ(MaskConnectionTarget("host=db password='unterminated secret"), "host=db password=****");
  EXPECT_EQ(MaskConnectionTarget("host=db passwd=hunter2"), "host=db passwd=****");
}

TEST(ScrubConnectionMessageTest, HidesWhatLibpqQuotesFromABrokenTarget) {
  for (const std::string& target : {std::string("host=db password=my hunter2secret dbname=x"),
                                   std::string("postgresql://app:hunter2%zzsecret@db/x"),
                                   std::string("postgresql://app:hunter2secret@[::1/db"),
                                   std::string("postgresql://app@db/x?password=hunter2secret&&")}) {
    const std::string error = LibpqParseError(target);
    ASSERT_NE(error, "") << target;
    const std::string shown = ScrubConnectionMessage(error, target);
    EXPECT_TRUE(ShowsNoPieceOf(shown, "hunter2secret")) << "libpq said: " << error;
  }
}

TEST(RegisterTargetSecretsTest, RegistersThePasswordLibpqReads) {
  const std::string password = std::string(kNastyPassword) + "-register";
  EXPECT_TRUE(RegisterTargetSecrets("postgresql://app:" + PercentEncode(password) + "@db/x"));
  EXPECT_EQ(ScrubSecrets("error: " + password), "error: ****");
  EXPECT_TRUE(RegisterTargetSecrets("host=db password=" + QuoteConninfoValue("conninfo-" + password)));
  EXPECT_EQ(ScrubSecrets("conninfo-" + password), "****");
  EXPECT_FALSE(RegisterTargetSecrets("postgresql://app:unparsable-secret@[::1/db"));
  EXPECT_EQ(ScrubSecrets("unparsable-secret"), "****");
  EXPECT_TRUE(RegisterTargetSecrets("sqlite:/data/x.db"));
}

TEST(IsPostgresTargetTest, TellsUrisAndConninfoFromOtherTargets) {
  EXPECT_TRUE(IsPostgresTarget("postgresql://db/x"));
  EXPECT_TRUE(IsPostgresTarget("postgres://db/x"));
  EXPECT_TRUE(IsPostgresTarget("host=db dbname=x"));
  EXPECT_FALSE(IsPostgresTarget("sqlite:/x.db"));
  EXPECT_FALSE(IsPostgresTarget("mysql://db/x"));
  EXPECT_FALSE(IsPostgresTarget("legacy.db"));
}

}  // namespace
}  // namespace tandem
