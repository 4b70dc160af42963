// The secret registry, the scrubbing log sink and the encodings (no server).
#include "core/secrets.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <cctype>
#include <sstream>

namespace tandem {
namespace {

// Every URI and conninfo metacharacter, quotes and a backslash.
constexpr char kNastyPassword[] = "p@ss:w/rd?#%+= 'x\"\\&[]{}$";

TEST(PercentEncodeTest, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("Az09-._~"), "Az09-._~");
  EXPECT_EQ(PercentEncode("p@ss:w/rd?#%+= 'x\"\\"), "p%40ss%3Aw%2Frd%3F%23%25%2B%3D%20%27x%22%5C");
  EXPECT_EQ(PercentEncode("\xC3\xA9"), "%C3%A9");  // UTF-8 bytes one by one
}

TEST(PercentEncodeTest, DecodesBackAnyHexCaseAndKeepsMalformedEscapes) {
  EXPECT_EQ(PercentDecode(PercentEncode(kNastyPassword)), kNastyPassword);
  EXPECT_EQ(PercentDecode("a%2fb%2Fc"), "a/b/c");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
}

TEST(QuoteConninfoValueTest, QuotesAndEscapesBackslashAndQuote) {
  EXPECT_EQ(QuoteConninfoValue(""), "''");
  EXPECT_EQ(QuoteConninfoValue("a b"), "'a b'");
  EXPECT_EQ(QuoteConninfoValue("it's C:\\x"), "'it\\'s C:\\\\x'");
}

TEST(ScrubSecretsTest, MasksEveryEncodedFormOfARegisteredSecret) {
  const std::string secret = std::string(kNastyPassword) + "-scrub-test";
  RegisterSecret(secret);
  std::string json_form;
  for (char c : secret) json_form += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  std::string lower_hex;
  for (char c : PercentEncode(secret)) lower_hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const std::string& form : {secret, PercentEncode(secret), lower_hex, json_form}) {
    const std::string text = "before " + form + " middle " + form + " after";
    EXPECT_EQ(ScrubSecrets(text), "before **** middle **** after") << form;
  }
  EXPECT_EQ(ScrubSecrets("nothing secret here"), "nothing secret here");
}

TEST(ScrubSecretsTest, IgnoresEmptyAndVeryShortSecretsInFreeText) {
  RegisterSecret("");
  RegisterSecret("zq");
  EXPECT_EQ(ScrubSecrets("zq zq"), "zq zq");
}

TEST(SecretScrubbingSinkTest, ScrubsEveryLevelBeforeFormatting) {
  RegisterSecret("sink-test-secret");
  std::ostringstream out;
  auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("scrub-test", MakeSecretScrubbingSink(inner));
  logger.set_level(spdlog::level::trace);
  logger.set_pattern("%l %v");
  logger.trace("connecting with sink-test-secret");
  logger.error("failed: {}", PercentEncode("sink-test-secret"));
  logger.flush();
  EXPECT_EQ(out.str(), "trace connecting with ****\nerror failed: ****\n");
}

}  // namespace
}  // namespace tandem
