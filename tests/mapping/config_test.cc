#include "mapping/config.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/secrets.h"

namespace tandem {
namespace {

constexpr char kFile[] = "tandem.yaml";
constexpr char kFolder[] = "/srv/tandem";

ParseOutcome Parse(const std::string& yaml) { return ParseConfigText(yaml, kFile, kFolder); }

// A valid config up to `entities:`; tests append entities after it, so their
// first line is line 6.
constexpr char kHeader[] =
    "version: 1\n"
    "systems:\n"
    "  legacy: { database: \"sqlite:legacy.db\" }\n"
    "  modern: { database: \"sqlite:modern.db\" }\n"
    "entities:\n";
constexpr int kLine6 = 6;

// A minimal valid entity, for tests about other sections.
constexpr char kItemEntity[] =
    "  item: { legacy: { table: I, key: ID }, modern: { table: i, key: id } }\n";

ParseOutcome ParseEntities(const std::string& entities_yaml) {
  return Parse(kHeader + entities_yaml);
}

std::string AllProblems(const ParseOutcome& outcome) {
  std::string out;
  for (const ConfigProblem& problem : outcome.problems) out += "\n  " + problem.ToString();
  return out.empty() ? " (none)" : out;
}

bool ContainsAll(const std::string& text, std::initializer_list<std::string_view> fragments) {
  for (std::string_view fragment : fragments) {
    if (text.find(fragment) == std::string::npos) return false;
  }
  return true;
}

// The first problem whose message contains every fragment, or nullptr.
const ConfigProblem* FindProblem(const ParseOutcome& outcome,
                                 std::initializer_list<std::string_view> fragments) {
  for (const ConfigProblem& problem : outcome.problems) {
    if (ContainsAll(problem.message, fragments)) return &problem;
  }
  return nullptr;
}

// Passes when a problem on `line` mentions every fragment; the outcome must not be ok.
testing::AssertionResult HasProblem(const ParseOutcome& outcome, int line,
                                    std::initializer_list<std::string_view> fragments) {
  if (outcome.ok()) return testing::AssertionFailure() << "outcome is ok";
  for (const ConfigProblem& problem : outcome.problems) {
    if (problem.where.line == line && ContainsAll(problem.message, fragments)) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure()
         << "no such problem on line " << line << "; problems:" << AllProblems(outcome);
}

// The example from the README, with non-default primary and sync values.
constexpr char kExample[] = R"yaml(version: 1
systems:
  legacy: { database: "sqlite:data/legacy.db" }
  modern: { database: "sqlite:data/modern.db" }
primary: modern
sync: { poll_interval_ms: 10, batch_size: 200, busy_timeout_ms: 3000, purge_interval_ms: 500 }
entities:
  customer:
    direction: both
    legacy: { table: CUSTMAST, key: CUSTNO, new_keys: database }
    modern: { table: customers, key: id, new_keys: uuid }
    fields:
      email: EMAIL
      status: { legacy: STAT, map: { A: active, I: inactive, 1: one } }
      balance: { legacy: BAL_CENTS, to_modern: "BAL_CENTS / 100.0", to_legacy: "CAST(round(balance * 100) AS INTEGER)" }
    to_modern:
      first_name: "trim(substr(CNAME, instr(CNAME, ',') + 1))"
    to_legacy:
      CNAME: "last_name || ', ' || first_name"
  address:
    legacy: { table: CUSTMAST, key: CUSTNO }
    modern: { table: addresses, key: id, new_keys: uuid }
    fields:
      customer_id: { legacy: CUSTNO, lookup: customer }
      line1: ADDR1
  order:
    direction: legacy-to-modern
    legacy: { table: ORDHDR, key: [ORDNO, ORDSUB] }
    modern: { table: orders, key: id, new_keys: uuid }
    fields:
      customer_id: { legacy: CUSTNO, lookup: customer }
)yaml";

TEST(ConfigParseTest, ReadsTheDocumentedExampleWithEveryFieldKind) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const Config& config = outcome.config;
  EXPECT_EQ(config.version, 1);
  EXPECT_EQ(config.path, "tandem.yaml");
  EXPECT_EQ(config.directory, "/srv/tandem");
  EXPECT_EQ(config.legacy.url, "sqlite:data/legacy.db");
  EXPECT_EQ(config.legacy.resolved, "sqlite:/srv/tandem/data/legacy.db");
  EXPECT_EQ(config.modern.resolved, "sqlite:/srv/tandem/data/modern.db");
  EXPECT_EQ(config.legacy.where.line, 3);
  EXPECT_EQ(config.primary, Side::kModern);
  EXPECT_EQ(config.sync.poll_interval_ms, 10);
  EXPECT_EQ(config.sync.batch_size, 200);
  EXPECT_EQ(config.sync.busy_timeout_ms, 3000);
  EXPECT_EQ(config.sync.purge_interval_ms, 500);
  ASSERT_EQ(config.entities.size(), 3u);
  EXPECT_EQ(config.entities[0].name, "customer");
  EXPECT_EQ(config.entities[1].name, "address");
  EXPECT_EQ(config.entities[2].name, "order");
}

TEST(ConfigParseTest, ReadsSidesAndNewKeys) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const EntityConfig& customer = *outcome.config.FindEntity("customer");
  EXPECT_EQ(customer.where.line, 8);
  EXPECT_EQ(customer.direction, SyncDirection::kBoth);
  EXPECT_EQ(customer.legacy.table, "CUSTMAST");
  EXPECT_EQ(customer.legacy.key, std::vector<std::string>{"CUSTNO"});
  EXPECT_EQ(customer.legacy.new_keys, NewKeys::kDatabase);
  EXPECT_TRUE(customer.legacy.new_keys_given);
  EXPECT_EQ(customer.side(Side::kModern).table, "customers");
  EXPECT_EQ(customer.modern.new_keys, NewKeys::kUuid);
}

TEST(ConfigParseTest, ReadsCopyCodeMapAndExpressionFields) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const EntityConfig& customer = *outcome.config.FindEntity("customer");
  ASSERT_EQ(customer.fields.size(), 3u);

  const FieldConfig& email = customer.fields[0];
  EXPECT_EQ(email.kind, FieldKind::kCopy);
  EXPECT_EQ(email.modern_column, "email");
  EXPECT_EQ(email.legacy_column, "EMAIL");
  EXPECT_EQ(email.where.line, 13);

  const FieldConfig& status = customer.fields[1];
  EXPECT_EQ(status.kind, FieldKind::kCodeMap);
  EXPECT_EQ(status.legacy_column, "STAT");
  using CodeMap = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(status.code_map, (CodeMap{{"A", "active"}, {"I", "inactive"}, {"1", "one"}}));

  const FieldConfig& balance = customer.fields[2];
  EXPECT_EQ(balance.kind, FieldKind::kExpression);
  EXPECT_EQ(balance.legacy_column, "BAL_CENTS");
  EXPECT_EQ(balance.to_modern, "BAL_CENTS / 100.0");
  EXPECT_EQ(balance.to_legacy, "CAST(round(balance * 100) AS INTEGER)");
}

TEST(ConfigParseTest, ReadsComputedColumns) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const EntityConfig& customer = *outcome.config.FindEntity("customer");
  ASSERT_EQ(customer.to_modern.size(), 1u);
  EXPECT_EQ(customer.to_modern[0].column, "first_name");
  EXPECT_EQ(customer.to_modern[0].expression, "trim(substr(CNAME, instr(CNAME, ',') + 1))");
  EXPECT_EQ(customer.to_modern[0].where.line, 17);
  ASSERT_EQ(customer.to_legacy.size(), 1u);
  EXPECT_EQ(customer.to_legacy[0].column, "CNAME");
  EXPECT_EQ(customer.to_legacy[0].expression, "last_name || ', ' || first_name");
}

TEST(ConfigParseTest, ReadsLookupsAndCompositeKeyList) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const EntityConfig& address = *outcome.config.FindEntity("address");
  ASSERT_EQ(address.fields.size(), 2u);
  EXPECT_EQ(address.fields[0].kind, FieldKind::kLookup);
  EXPECT_EQ(address.fields[0].legacy_column, "CUSTNO");
  EXPECT_EQ(address.fields[0].lookup_entity, "customer");

  const EntityConfig& order = *outcome.config.FindEntity("order");
  EXPECT_EQ(order.direction, SyncDirection::kLegacyToModern);
  EXPECT_EQ(order.legacy.key, (std::vector<std::string>{"ORDNO", "ORDSUB"}));
}

TEST(ConfigParseTest, AppliesDefaultsWhenOptionalKeysAreOmitted) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: ITEMS, key: ITEMNO }\n"
      "    modern: { table: items, key: id }\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const Config& config = outcome.config;
  EXPECT_EQ(config.primary, Side::kLegacy);
  EXPECT_EQ(config.sync.poll_interval_ms, 1);
  EXPECT_EQ(config.sync.batch_size, 10000);
  EXPECT_EQ(config.sync.busy_timeout_ms, 5000);
  EXPECT_EQ(config.sync.purge_interval_ms, 1000);
  const EntityConfig& item = config.entities.at(0);
  EXPECT_EQ(item.direction, SyncDirection::kBoth);
  EXPECT_EQ(item.legacy.new_keys, NewKeys::kSame);
  EXPECT_FALSE(item.legacy.new_keys_given);
  EXPECT_FALSE(item.modern.new_keys_given);
  EXPECT_TRUE(item.fields.empty());
}

TEST(ConfigParseTest, ResolvesSqlitePathsAgainstTheConfigFolderOnly) {
  ParseOutcome outcome = ParseConfigText(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:../shared/legacy.db\" }\n"
      "  modern: { database: \"postgresql://app@db.example.com/modern\" }\n"
      "entities:\n"
      "  item: { legacy: { table: I, key: ID }, modern: { table: items, key: id } }\n",
      "conf/tandem.yaml", "/srv/tandem/conf/");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  EXPECT_EQ(outcome.config.directory, "/srv/tandem/conf");
  EXPECT_EQ(outcome.config.legacy.resolved, "sqlite:/srv/tandem/shared/legacy.db");
  EXPECT_EQ(outcome.config.modern.resolved, "postgresql://app@db.example.com/modern");
  EXPECT_EQ(outcome.config.modern.url, "postgresql://app@db.example.com/modern");
}

TEST(ConfigParseTest, KeepsAbsoluteSqlitePaths) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:/var/lib/legacy.db\" }\n"
      "  modern: { database: \"sqlite:modern.db\" }\n"
      "entities:\n"
      "  item: { legacy: { table: I, key: ID }, modern: { table: items, key: id } }\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  EXPECT_EQ(outcome.config.legacy.resolved, "sqlite:/var/lib/legacy.db");
  EXPECT_EQ(outcome.config.modern.resolved, "sqlite:/srv/tandem/modern.db");
}

TEST(ConfigParseTest, ExpandsEnvironmentVariablesInDatabaseUrls) {
  ASSERT_EQ(setenv("TANDEM_TEST_PG_PASSWORD", "s3cret", 1), 0);
  ASSERT_EQ(setenv("TANDEM_TEST_DATA", "data", 1), 0);
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:${TANDEM_TEST_DATA}/legacy.db\" }\n"
      "  modern: { database: \"postgresql://app:${TANDEM_TEST_PG_PASSWORD}@db/modern\" }\n"
      "entities:\n"
      "  item: { legacy: { table: I, key: ID }, modern: { table: items, key: id } }\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  EXPECT_EQ(outcome.config.legacy.url, "sqlite:${TANDEM_TEST_DATA}/legacy.db");
  EXPECT_EQ(outcome.config.legacy.resolved, "sqlite:/srv/tandem/data/legacy.db");
  EXPECT_EQ(outcome.config.modern.resolved, "postgresql://app:s3cret@db/modern");
}

// Every URI and conninfo metacharacter, quotes and a backslash.
constexpr char kNastyPassword[] = "p@ss:w/rd?#%+= 'x\"\\&${}";

ExpandedTarget ExpandWith(std::string_view text, const std::map<std::string, std::string>& vars) {
  return ExpandTargetVariables(text, [&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

// What libpq reads as `keyword` in `target` (nullopt: unparsable or absent).
std::optional<std::string> LibpqReads(const std::string& target, std::string_view keyword) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(target.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return std::nullopt;
  std::optional<std::string> value;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val && keyword == o->keyword) value = o->val;
  PQconninfoFree(opts);
  return value;
}

TEST(ExpandTargetVariablesTest, PercentEncodesValuesInUris) {
  ExpandedTarget uri = ExpandWith("postgresql://app:${PW}@db:5432/${DB}?sslmode=require",
                                  {{"PW", kNastyPassword}, {"DB", "modern"}});
  EXPECT_EQ(uri.text, "postgresql://app:p%40ss%3Aw%2Frd%3F%23%25%2B%3D%20%27x%22%5C%26%24%7B%7D@db:5432/modern"
                      "?sslmode=require");
  EXPECT_EQ(LibpqReads(uri.text, "password"), kNastyPassword);
  EXPECT_EQ(LibpqReads(uri.text, "host"), "db");
  EXPECT_EQ(LibpqReads(uri.text, "dbname"), "modern");
  EXPECT_EQ(uri.values, (std::vector<std::string>{kNastyPassword, "modern"}));
  EXPECT_EQ(LibpqReads(ExpandWith("postgres://app:${PW}@db/x", {{"PW", kNastyPassword}}).text, "password"),
            kNastyPassword);
}

TEST(ExpandTargetVariablesTest, QuotesValuesInConninfo) {
  const std::map<std::string, std::string> vars = {{"PW", kNastyPassword}, {"EMPTY", ""}};
  for (const char* text : {"host=db password=${PW} dbname=x", "host=db password = ${PW}", "password='${PW}' host=db",
                           "host=db dbname=x password=${PW}"})
    EXPECT_EQ(LibpqReads(ExpandWith(text, vars).text, "password"), kNastyPassword) << text;
  EXPECT_EQ(LibpqReads(ExpandWith("host=db password=pre${PW}", vars).text, "password"),
            std::string("pre") + kNastyPassword);
  EXPECT_EQ(LibpqReads(ExpandWith("host=db password='pre ${PW} post'", vars).text, "password"),
            std::string("pre ") + kNastyPassword + " post");
  EXPECT_EQ(LibpqReads(ExpandWith("host=db password=${EMPTY} dbname=x", vars).text, "dbname"), "x");
  EXPECT_EQ(ExpandWith("host=db password=${PW}", vars).text, "host=db password=" + QuoteConninfoValue(kNastyPassword));
}

TEST(ExpandTargetVariablesTest, LeavesSqlitePathsAndWholeUrlsAsTheyAre) {
  EXPECT_EQ(ExpandWith("sqlite:${DIR}/a b.db", {{"DIR", "/data/x y"}}).text, "sqlite:/data/x y/a b.db");
  EXPECT_EQ(ExpandWith("${URL}", {{"URL", "postgresql://app:pw@db/x"}}).text, "postgresql://app:pw@db/x");
}

TEST(ExpandTargetVariablesTest, ReportsMissingAndUnterminatedReferences) {
  ExpandedTarget missing = ExpandWith("postgresql://${USER}:${PW}@db/x", {{"PW", "pw"}});
  EXPECT_EQ(missing.missing, (std::vector<std::string>{"USER"}));
  EXPECT_FALSE(missing.unterminated);
  EXPECT_TRUE(ExpandWith("postgresql://app:${PW@db/x", {{"PW", "pw"}}).unterminated);
}

TEST(ConfigParseTest, ShowsDatabaseTargetsWithThePasswordMasked) {
  ASSERT_EQ(setenv("TANDEM_TEST_NASTY_PASSWORD", kNastyPassword, 1), 0);
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "  modern: { database: \"postgresql://app:${TANDEM_TEST_NASTY_PASSWORD}@db/modern\" }\n"
      "entities:\n"
      "  item: { legacy: { table: I, key: ID }, modern: { table: items, key: id } }\n");
  unsetenv("TANDEM_TEST_NASTY_PASSWORD");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  EXPECT_EQ(LibpqReads(outcome.config.modern.resolved, "password"), kNastyPassword);
  EXPECT_EQ(outcome.config.modern.Shown(), "postgresql://app:****@db/modern");
  EXPECT_EQ(outcome.config.legacy.Shown(), "sqlite:/srv/tandem/legacy.db");
}

TEST(ConfigParseTest, ReportsUnsetEnvironmentVariableByName) {
  unsetenv("TANDEM_TEST_UNSET_VARIABLE");
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "  modern: { database: \"postgresql://app:${TANDEM_TEST_UNSET_VARIABLE}@db/m\" }\n"
      "entities:\n"
      "  item: { legacy: { table: I, key: ID }, modern: { table: items, key: id } }\n");
  EXPECT_TRUE(
      HasProblem(outcome, 4, {"systems.modern", "'TANDEM_TEST_UNSET_VARIABLE' is not set"}));
}

TEST(ConfigParseTest, FindEntityReturnsNullForUnknownName) {
  ParseOutcome outcome = Parse(kExample);
  ASSERT_NE(outcome.config.FindEntity("order"), nullptr);
  EXPECT_EQ(outcome.config.FindEntity("order")->legacy.table, "ORDHDR");
  EXPECT_EQ(outcome.config.FindEntity("invoice"), nullptr);
}

TEST(ConfigProblemTest, FormatsAsFileLineColumnMessageAndHint) {
  EXPECT_EQ((SourceLocation{"tandem.yaml", 12, 5}).ToString(), "tandem.yaml:12:5");
  EXPECT_EQ((SourceLocation{"tandem.yaml", 0, 0}).ToString(), "tandem.yaml");
  ConfigProblem problem{{"tandem.yaml", 3, 7}, "entity 'x': bad", "fix it"};
  EXPECT_EQ(problem.ToString(), "tandem.yaml:3:7: entity 'x': bad (hint: fix it)");
  problem.hint.clear();
  EXPECT_EQ(problem.ToString(), "tandem.yaml:3:7: entity 'x': bad");
}

TEST(ConfigParseTest, ReportsOneBasedLineAndColumn) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    colour: red\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 3, {"entity 'item'", "unknown key 'colour'"}));
  EXPECT_EQ(outcome.problems[0].where.column, 5);
  EXPECT_EQ(outcome.problems[0].where.file, "tandem.yaml");
}

// Files.

class ConfigFileTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tandem_config_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    folder_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  std::filesystem::path folder_;
};

TEST_F(ConfigFileTest, ReadsFileAndResolvesPathsAgainstItsFolder) {
  std::string path = (folder_ / "tandem.yaml").string();
  std::ofstream(path) << kExample;
  ParseOutcome outcome = ParseConfigFile(path);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  EXPECT_EQ(outcome.config.path, path);
  EXPECT_EQ(outcome.config.directory, folder_.string());
  EXPECT_EQ(outcome.config.legacy.resolved, "sqlite:" + (folder_ / "data/legacy.db").string());
  EXPECT_EQ(outcome.config.entities.size(), 3u);
}

TEST_F(ConfigFileTest, ReportsProblemsWithTheFilePath) {
  std::string path = (folder_ / "broken.yaml").string();
  std::ofstream(path) << "version: 3\n";
  ParseOutcome outcome = ParseConfigFile(path);
  ASSERT_TRUE(HasProblem(outcome, 1, {"unsupported version '3'"}));
  EXPECT_EQ(outcome.problems[0].where.file, path);
}

TEST_F(ConfigFileTest, ReportsMissingFile) {
  std::string path = (folder_ / "absent.yaml").string();
  ParseOutcome outcome = ParseConfigFile(path);
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_EQ(outcome.problems[0].where.file, path);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {path, "does not exist"}));
  EXPECT_FALSE(outcome.problems[0].hint.empty());
}

TEST_F(ConfigFileTest, ReportsDirectoryGivenAsFile) {
  ParseOutcome outcome = ParseConfigFile(folder_.string());
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {"is a directory"}));
}

// Document-level problems.

TEST(ConfigProblemsTest, ReportsYamlSyntaxErrorWithItsLine) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems: { legacy: [1,\n"
      "entities: {}\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {"YAML syntax error"}));
  EXPECT_GE(outcome.problems[0].where.line, 2);
}

TEST(ConfigProblemsTest, ReportsEmptyConfig) {
  ParseOutcome outcome = Parse("# nothing yet\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {"empty"}));
}

TEST(ConfigProblemsTest, ReportsConfigThatIsNotAMap) {
  ParseOutcome outcome = Parse("- version\n- 1\n");
  EXPECT_TRUE(HasProblem(outcome, 1, {"must be a map"}));
}

TEST(ConfigProblemsTest, ReportsMissingVersion) {
  ParseOutcome outcome = Parse(
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "  modern: { database: \"sqlite:modern.db\" }\n"
      "entities:\n" +
      std::string(kItemEntity));
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {"missing 'version'"}));
}

TEST(ConfigProblemsTest, ReportsUnsupportedVersion) {
  ParseOutcome outcome = Parse(
      "version: 2\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "  modern: { database: \"sqlite:modern.db\" }\n"
      "entities:\n" +
      std::string(kItemEntity));
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(HasProblem(outcome, 1, {"unsupported version '2'"}));
}

TEST(ConfigProblemsTest, ReportsMissingSystems) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "entities:\n" +
      std::string(kItemEntity));
  EXPECT_NE(FindProblem(outcome, {"missing 'systems'"}), nullptr) << AllProblems(outcome);
}

TEST(ConfigProblemsTest, ReportsMissingSystemAndMissingDatabase) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { file: legacy.db }\n"
      "entities:\n" +
      std::string(kItemEntity));
  EXPECT_TRUE(HasProblem(outcome, 2, {"systems", "missing 'modern'"}));
  EXPECT_TRUE(HasProblem(outcome, 3, {"systems.legacy", "missing 'database'"}));
  EXPECT_TRUE(HasProblem(outcome, 3, {"systems.legacy", "unknown key 'file'"}));
}

TEST(ConfigProblemsTest, ReportsInvalidPrimaryListingValidValues) {
  ParseOutcome outcome = Parse(std::string(kHeader) + kItemEntity + "primary: both\n");
  ASSERT_TRUE(HasProblem(outcome, 7, {"primary 'both' is not valid"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[0].hint, {"legacy, modern"}));
}

TEST(ConfigProblemsTest, ReportsMissingEntities) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "  modern: { database: \"sqlite:modern.db\" }\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(ContainsAll(outcome.problems[0].message, {"missing 'entities'"}));
}

TEST(ConfigProblemsTest, ReportsEmptyEntities) {
  EXPECT_TRUE(HasProblem(Parse(std::string(kHeader) + "\n"), 5, {"'entities' is empty"}));
  EXPECT_TRUE(HasProblem(ParseEntities("  {}\n"), kLine6, {"'entities' is empty"}));
}

TEST(ConfigProblemsTest, ReportsUnknownTopLevelKeyWithSuggestion) {
  ParseOutcome outcome = ParseEntities(std::string(kItemEntity) + "primery: legacy\n");
  ASSERT_TRUE(HasProblem(outcome, 7, {"unknown key 'primery'"}));
  EXPECT_EQ(outcome.problems[0].hint, "did you mean 'primary'?");
}

// Sync options.

TEST(ConfigProblemsTest, ReportsSyncOptionsThatAreNotPositiveIntegers) {
  ParseOutcome outcome = ParseEntities(std::string(kItemEntity) +
                                       "sync:\n"
                                       "  poll_interval_ms: 0\n"
                                       "  batch_size: -5\n"
                                       "  busy_timeout_ms: 2.5\n"
                                       "  purge_interval_ms: soon\n"
                                       "  batchsize: 10\n");
  EXPECT_TRUE(
      HasProblem(outcome, 8, {"sync", "'poll_interval_ms' must be a positive whole number"}));
  EXPECT_TRUE(HasProblem(outcome, 9, {"sync", "'batch_size'", "'-5'"}));
  EXPECT_TRUE(HasProblem(outcome, 10, {"sync", "'busy_timeout_ms'", "'2.5'"}));
  EXPECT_TRUE(HasProblem(outcome, 11, {"sync", "'purge_interval_ms'", "'soon'"}));
  EXPECT_TRUE(HasProblem(outcome, 12, {"sync", "unknown key 'batchsize'"}));
  EXPECT_EQ(outcome.problems.size(), 5u) << AllProblems(outcome);
}

// Entities and their sides.

TEST(ConfigProblemsTest, ReportsEntityWithoutSides) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    direction: both\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6, {"entity 'item'", "missing 'legacy'"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6, {"entity 'item'", "missing 'modern'"}));
}

TEST(ConfigProblemsTest, ReportsSideWithoutTableOrKey) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { key: ID }\n"
      "    modern: { table: items }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 1, {"entity 'item', legacy", "missing 'table'"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 2, {"entity 'item', modern", "missing 'key'"}));
  EXPECT_EQ(outcome.problems.size(), 2u) << AllProblems(outcome);
}

TEST(ConfigProblemsTest, ReportsEntityThatIsNotAMap) {
  ParseOutcome outcome = ParseEntities("  item: [a, b]\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6, {"entity 'item' must be a map"}));
  EXPECT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
}

TEST(ConfigProblemsTest, ReportsDuplicateEntityName) {
  ParseOutcome outcome =
      ParseEntities(std::string(kItemEntity) +
                    "  item: { legacy: { table: J, key: ID }, modern: { table: j, key: id } }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 1, {"key 'item' appears twice"}));
}

TEST(ConfigProblemsTest, ReportsEmptyKeyList) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: [] }\n"
      "    modern: { table: items, key: [id, id] }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 1, {"entity 'item', legacy", "'key' must be"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 2, {"entity 'item', modern", "'id' is listed twice"}));
}

TEST(ConfigProblemsTest, SuggestsCloseKeyForUnknownEntitySideAndFieldKeys) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { tabel: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fileds: {}\n"
      "    fields:\n"
      "      owner: { legacy: OWNER, lookpu: item }\n");
  const ConfigProblem* side =
      FindProblem(outcome, {"entity 'item', legacy", "unknown key 'tabel'"});
  ASSERT_NE(side, nullptr) << AllProblems(outcome);
  EXPECT_EQ(side->where.line, kLine6 + 1);
  EXPECT_EQ(side->hint, "did you mean 'table'?");
  const ConfigProblem* entity = FindProblem(outcome, {"entity 'item'", "unknown key 'fileds'"});
  ASSERT_NE(entity, nullptr) << AllProblems(outcome);
  EXPECT_EQ(entity->where.line, kLine6 + 3);
  EXPECT_EQ(entity->hint, "did you mean 'fields'?");
  const ConfigProblem* field =
      FindProblem(outcome, {"entity 'item', field 'owner'", "unknown key 'lookpu'"});
  ASSERT_NE(field, nullptr) << AllProblems(outcome);
  EXPECT_EQ(field->where.line, kLine6 + 5);
  EXPECT_EQ(field->hint, "did you mean 'lookup'?");
}

TEST(ConfigProblemsTest, ListsValidKeysWhenNoKeyIsClose) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID, primary_key: yes }\n"
      "    modern: { table: items, key: id }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 1, {"unknown key 'primary_key'"}));
  EXPECT_EQ(outcome.problems[0].hint, "valid keys: table, key, new_keys");
}

TEST(ConfigProblemsTest, ReportsInvalidDirectionListingValidValues) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    direction: legacy-to-modren\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 1, {"entity 'item'", "direction 'legacy-to-modren'"}));
  EXPECT_TRUE(ContainsAll(
      outcome.problems[0].hint,
      {"did you mean 'legacy-to-modern'?", "both, legacy-to-modern, modern-to-legacy, off"}));
}

TEST(ConfigProblemsTest, ReportsInvalidNewKeysListingValidValues) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id, new_keys: serial }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 2, {"entity 'item', modern", "new_keys 'serial'"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[0].hint, {"uuid, database, same"}));
}

TEST(ConfigProblemsTest, ReportsDatabaseNewKeysWithCompositeKey) {
  ParseOutcome outcome = ParseEntities(
      "  line:\n"
      "    legacy: { table: ORDLIN, key: [ORDNO, LINENO], new_keys: database }\n"
      "    modern: { table: order_lines, key: id, new_keys: database }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 1,
                         {"entity 'line', legacy", "new_keys: database", "2 columns"}));
  EXPECT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
}

// Fields.

TEST(ConfigProblemsTest, ReportsFieldThatIsNeitherScalarNorMap) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      name: [NAME1, NAME2]\n"
      "      note:\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 4, {"entity 'item', field 'name'", "got a list"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 5, {"entity 'item', field 'note'", "got nothing"}));
  EXPECT_TRUE(outcome.config.entities.at(0).fields.empty());
}

TEST(ConfigProblemsTest, ReportsFieldMapWithoutLegacyColumn) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      price: { to_modern: \"PRICE / 100.0\" }\n");
  EXPECT_TRUE(
      HasProblem(outcome, kLine6 + 4, {"entity 'item', field 'price'", "missing 'legacy'"}));
}

TEST(ConfigProblemsTest, ReportsEmptyExpression) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      price: { legacy: PRICE, to_modern: \"\" }\n"
      "    to_legacy:\n"
      "      TOTAL:\n");
  EXPECT_TRUE(
      HasProblem(outcome, kLine6 + 4, {"entity 'item', field 'price'", "'to_modern' is empty"}));
  EXPECT_TRUE(
      HasProblem(outcome, kLine6 + 6, {"entity 'item', to_legacy 'TOTAL'", "must be text"}));
}

TEST(ConfigProblemsTest, ReportsEmptyCodeMap) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      status: { legacy: STAT, map: {} }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 4, {"entity 'item', field 'status'", "an empty map"}));
}

TEST(ConfigProblemsTest, ReportsCodeMapGivingOneModernValueFromTwoCodes) {
  ParseOutcome outcome = ParseEntities(
      "  customer:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: customers, key: id }\n"
      "    fields:\n"
      "      status:\n"
      "        legacy: STAT\n"
      "        map:\n"
      "          A: active\n"
      "          I: inactive\n"
      "          X: active\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 9,
                         {"entity 'customer', field 'status': map is not one-to-one: modern value "
                          "'active' comes from both 'A' and 'X'"}));
  EXPECT_FALSE(outcome.problems[0].hint.empty());
}

TEST(ConfigProblemsTest, ReportsCodeMapWithRepeatedLegacyCode) {
  ParseOutcome outcome = ParseEntities(
      "  customer:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: customers, key: id }\n"
      "    fields:\n"
      "      status:\n"
      "        legacy: STAT\n"
      "        map:\n"
      "          A: active\n"
      "          A: archived\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 8,
                         {"entity 'customer', field 'status'", "legacy code 'A' appears twice"}));
}

TEST(ConfigProblemsTest, ReportsFieldCombiningMapWithExpressionOrLookup) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      status: { legacy: STAT, map: { A: active }, to_modern: \"lower(STAT)\" }\n"
      "      owner: { legacy: OWNER, map: { A: active }, lookup: item }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 4,
                         {"entity 'item', field 'status'", "ambiguous", "'map' and 'to_modern'"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 5,
                         {"entity 'item', field 'owner'", "ambiguous", "'map' and 'lookup'"}));
}

// Lookups.

TEST(ConfigProblemsTest, ReportsLookupOfUnknownEntityListingKnownOnes) {
  ParseOutcome outcome = ParseEntities(
      "  customer: { legacy: { table: C, key: ID }, modern: { table: c, key: id } }\n"
      "  order:\n"
      "    legacy: { table: O, key: ID }\n"
      "    modern: { table: o, key: id }\n"
      "    fields:\n"
      "      customer_id: { legacy: CUST, lookup: custmer }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 5,
                         {"entity 'order', field 'customer_id'", "unknown entity 'custmer'"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[0].hint,
                          {"did you mean 'customer'?", "known entities: customer, order"}));
}

TEST(ConfigProblemsTest, ReportsLookupCycleBetweenTwoEntities) {
  ParseOutcome outcome = ParseEntities(
      "  a:\n"
      "    legacy: { table: A, key: ID }\n"
      "    modern: { table: a, key: id }\n"
      "    fields: { b_id: { legacy: B, lookup: b } }\n"
      "  b:\n"
      "    legacy: { table: B, key: ID }\n"
      "    modern: { table: b, key: id }\n"
      "    fields: { a_id: { legacy: A, lookup: a } }\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 7, {"entity 'b', field 'a_id'", "cycle: a -> b -> a"}));
}

TEST(ConfigProblemsTest, ReportsLookupCycleThroughThreeEntities) {
  ParseOutcome outcome = ParseEntities(
      "  a: { legacy: { table: A, key: ID }, modern: { table: a, key: id }, fields: { c_id: { legacy: C, lookup: c } } }\n"
      "  b: { legacy: { table: B, key: ID }, modern: { table: b, key: id }, fields: { a_id: { legacy: A, lookup: a } } }\n"
      "  c: { legacy: { table: C, key: ID }, modern: { table: c, key: id }, fields: { b_id: { legacy: B, lookup: b } } }\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 1, {"entity 'b', field 'a_id'", "a -> c -> b -> a"}));
}

TEST(ConfigProblemsTest, ReportsEntityLookingUpItself) {
  ParseOutcome outcome = ParseEntities(
      "  employee:\n"
      "    legacy: { table: EMP, key: EMPNO }\n"
      "    modern: { table: employees, key: id }\n"
      "    fields:\n"
      "      manager_id: { legacy: MGR, lookup: employee }\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 4,
                         {"entity 'employee', field 'manager_id'", "cycle: employee -> employee"}));
}

// Columns written twice.

TEST(ConfigProblemsTest, ReportsModernColumnWrittenByFieldAndComputedColumn) {
  ParseOutcome outcome = ParseEntities(
      "  customer:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: customers, key: id }\n"
      "    fields:\n"
      "      first_name: FNAME\n"
      "    to_modern:\n"
      "      first_name: \"trim(FNAME)\"\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 6,
                         {"entity 'customer'", "modern column 'first_name' is written twice",
                          "field 'first_name' (line 10)", "to_modern 'first_name'"}));
}

TEST(ConfigProblemsTest, ReportsLegacyColumnWrittenTwiceIgnoringCase) {
  ParseOutcome outcome = ParseEntities(
      "  customer:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: customers, key: id }\n"
      "    fields:\n"
      "      email: EMAIL\n"
      "      email_copy: email\n"
      "    to_legacy:\n"
      "      EMAIL: \"lower(email)\"\n");
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 5,
                         {"entity 'customer'", "legacy column 'email' is written twice",
                          "field 'email'", "field 'email_copy'"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 7,
                         {"entity 'customer'", "legacy column 'EMAIL'", "to_legacy 'EMAIL'"}));
}

TEST(ConfigParseTest, AllowsLookupOnLegacyKeyAndOneWayExpressionsReadingOneColumn) {
  // A split entity: the address lives in the customer's legacy row, so its
  // lookup column is the legacy key; two one-way expressions only read CNAME.
  ParseOutcome outcome = ParseEntities(
      "  customer:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: customers, key: id }\n"
      "    fields:\n"
      "      first_name: { legacy: CNAME, to_modern: \"substr(CNAME, 1, 10)\" }\n"
      "      last_name: { legacy: CNAME, to_modern: \"substr(CNAME, 11)\" }\n"
      "  address:\n"
      "    legacy: { table: CUSTMAST, key: CUSTNO }\n"
      "    modern: { table: addresses, key: id }\n"
      "    fields:\n"
      "      customer_id: { legacy: CUSTNO, lookup: customer }\n"
      "      line1: ADDR1\n");
  EXPECT_TRUE(outcome.ok()) << AllProblems(outcome);
}

// Conflicts.

// An entity with every kind of mapped name: `fields:` keys (email, balance,
// status), a `to_modern:` column (first_name) and a `to_legacy:` column (CNAME).
// Its `conflicts:` key is on line 17; tests append the block's entries from line 18.
constexpr char kConflictEntity[] =
    "  customer:\n"                                         // 6
    "    legacy: { table: CUSTMAST, key: CUSTNO }\n"        // 7
    "    modern: { table: customers, key: id }\n"           // 8
    "    fields:\n"                                         // 9
    "      email: EMAIL\n"                                  // 10
    "      balance: BAL\n"                                  // 11
    "      status: { legacy: STAT, map: { A: active } }\n"  // 12
    "    to_modern:\n"                                      // 13
    "      first_name: \"trim(CNAME)\"\n"                   // 14
    "    to_legacy:\n"                                      // 15
    "      CNAME: \"first_name\"\n"                         // 16
    "    conflicts:\n";                                     // 17
constexpr int kConflictsLine = 17;

ParseOutcome ParseConflicts(const std::string& block) {
  return ParseEntities(kConflictEntity + block);
}

const ConflictConfig& FirstEntityConflicts(const ParseOutcome& outcome) {
  return outcome.config.entities.at(0).conflicts;
}

TEST(ConfigConflictsTest, ReadsAFullBlockIntoTheStruct) {
  ParseOutcome outcome = ParseConflicts(
      "      default: newest\n"                                   // 18
      "      fallback: modern-wins\n"                             // 19
      "      newest_by: { legacy: UPDTS, modern: updated_at }\n"  // 20
      "      fields:\n"                                           // 21
      "        email: modern-wins\n"                              // 22
      "        balance: legacy-wins\n"                            // 23
      "        status: manual\n"                                  // 24
      "        first_name: merge\n"                               // 25
      "        CNAME: newest\n"                                   // 26
      "      on_delete: delete-wins\n"                            // 27
      "      read_only_edits: park\n");                           // 28
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  EXPECT_TRUE(conflicts.given);
  EXPECT_EQ(conflicts.where.file, "tandem.yaml");
  EXPECT_EQ(conflicts.where.line, kConflictsLine);
  EXPECT_EQ(conflicts.default_policy, ConflictPolicy::kNewest);
  EXPECT_EQ(conflicts.fallback, ConflictPolicy::kModernWins);
  EXPECT_TRUE(conflicts.fallback_given);
  EXPECT_EQ(conflicts.newest_by_legacy, "UPDTS");
  EXPECT_EQ(conflicts.newest_by_modern, "updated_at");
  ASSERT_EQ(conflicts.fields.size(), 5u);
  EXPECT_EQ(conflicts.fields[0].field, "email");
  EXPECT_EQ(conflicts.fields[0].policy, ConflictPolicy::kModernWins);
  EXPECT_EQ(conflicts.fields[0].where.line, 22);
  EXPECT_EQ(conflicts.fields[1].field, "balance");
  EXPECT_EQ(conflicts.fields[1].policy, ConflictPolicy::kLegacyWins);
  EXPECT_EQ(conflicts.fields[2].field, "status");
  EXPECT_EQ(conflicts.fields[2].policy, ConflictPolicy::kManual);
  // A per-field merge is kept as written; it means "follow the entity's default".
  EXPECT_EQ(conflicts.fields[3].field, "first_name");
  EXPECT_EQ(conflicts.fields[3].policy, ConflictPolicy::kMerge);
  EXPECT_EQ(conflicts.fields[4].field, "CNAME");
  EXPECT_EQ(conflicts.fields[4].policy, ConflictPolicy::kNewest);
  EXPECT_EQ(conflicts.fields[4].where.line, 26);
  EXPECT_EQ(conflicts.on_delete, DeletePolicy::kDeleteWins);
  EXPECT_EQ(conflicts.read_only_edits, ReadOnlyEditPolicy::kPark);
}

TEST(ConfigConflictsTest, ReadsEveryValueOfEachChoice) {
  struct Case {
    std::string line;  // one entry of the block
    ConflictPolicy default_policy = ConflictPolicy::kMerge;
    DeletePolicy on_delete = DeletePolicy::kPrimary;
    ReadOnlyEditPolicy read_only_edits = ReadOnlyEditPolicy::kRevert;
  };
  const Case cases[] = {
      {.line = "default: merge", .default_policy = ConflictPolicy::kMerge},
      {.line = "default: legacy-wins", .default_policy = ConflictPolicy::kLegacyWins},
      {.line = "default: modern-wins", .default_policy = ConflictPolicy::kModernWins},
      {.line = "default: newest", .default_policy = ConflictPolicy::kNewest},
      {.line = "default: manual", .default_policy = ConflictPolicy::kManual},
      {.line = "on_delete: keep-update", .on_delete = DeletePolicy::kKeepUpdate},
      {.line = "on_delete: delete-wins", .on_delete = DeletePolicy::kDeleteWins},
      {.line = "on_delete: manual", .on_delete = DeletePolicy::kManual},
      {.line = "read_only_edits: revert", .read_only_edits = ReadOnlyEditPolicy::kRevert},
      {.line = "read_only_edits: park", .read_only_edits = ReadOnlyEditPolicy::kPark},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    ParseOutcome outcome = ParseConflicts("      " + c.line + "\n");
    ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
    const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
    EXPECT_EQ(conflicts.default_policy, c.default_policy);
    EXPECT_EQ(conflicts.on_delete, c.on_delete);
    EXPECT_EQ(conflicts.read_only_edits, c.read_only_edits);
  }
}

TEST(ConfigConflictsTest, AbsentBlockGivesDefaults) {
  ParseOutcome outcome = ParseEntities(kItemEntity);
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  EXPECT_FALSE(conflicts.given);
  EXPECT_EQ(conflicts.where.line, 0);
  EXPECT_EQ(conflicts.default_policy, ConflictPolicy::kMerge);
  EXPECT_FALSE(conflicts.fallback_given);
  EXPECT_TRUE(conflicts.newest_by_legacy.empty());
  EXPECT_TRUE(conflicts.newest_by_modern.empty());
  EXPECT_TRUE(conflicts.fields.empty());
  EXPECT_EQ(conflicts.on_delete, DeletePolicy::kPrimary);
  EXPECT_EQ(conflicts.read_only_edits, ReadOnlyEditPolicy::kRevert);
}

TEST(ConfigConflictsTest, EmptyBlockIsGivenWithDefaults) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    conflicts: {}\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  EXPECT_TRUE(conflicts.given);
  EXPECT_EQ(conflicts.where.line, kLine6 + 3);
  EXPECT_EQ(conflicts.default_policy, ConflictPolicy::kMerge);
  EXPECT_FALSE(conflicts.fallback_given);
  EXPECT_EQ(conflicts.on_delete, DeletePolicy::kPrimary);
  EXPECT_EQ(conflicts.read_only_edits, ReadOnlyEditPolicy::kRevert);
}

TEST(ConfigConflictsTest, ReportsBlockThatIsNotAMap) {
  ParseOutcome outcome = ParseConflicts("      - merge\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, kConflictsLine + 1, {"entity 'customer', conflicts must be a map"}));
}

TEST(ConfigConflictsTest, AcceptsLegacyAndModernAsFallbackSynonyms) {
  ParseOutcome outcome = ParseEntities(
      "  a:\n"
      "    legacy: { table: A, key: ID }\n"
      "    modern: { table: a, key: id }\n"
      "    conflicts: { fallback: modern }\n"
      "  b:\n"
      "    legacy: { table: B, key: ID }\n"
      "    modern: { table: b, key: id }\n"
      "    conflicts: { fallback: legacy }\n"
      "  c:\n"
      "    legacy: { table: C, key: ID }\n"
      "    modern: { table: c, key: id }\n"
      "    conflicts: { fallback: manual }\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const ConflictConfig& a = outcome.config.FindEntity("a")->conflicts;
  const ConflictConfig& b = outcome.config.FindEntity("b")->conflicts;
  const ConflictConfig& c = outcome.config.FindEntity("c")->conflicts;
  EXPECT_EQ(a.fallback, ConflictPolicy::kModernWins);
  EXPECT_TRUE(a.fallback_given);
  // kLegacyWins is also the struct's default, so fallback_given tells a written
  // `legacy` from an absent fallback.
  EXPECT_EQ(b.fallback, ConflictPolicy::kLegacyWins);
  EXPECT_TRUE(b.fallback_given);
  EXPECT_EQ(c.fallback, ConflictPolicy::kManual);
  EXPECT_TRUE(c.fallback_given);
}

TEST(ConfigConflictsTest, ReportsMergeAsFallback) {
  ParseOutcome outcome = ParseConflicts(
      "      default: merge\n"     // 18
      "      fallback: merge\n");  // 19
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  ASSERT_TRUE(HasProblem(
      outcome, kConflictsLine + 2,
      {"entity 'customer', conflicts", "fallback 'merge'", "merge cannot be its own fallback"}));
  EXPECT_TRUE(
      ContainsAll(outcome.problems[0].hint, {"legacy-wins", "modern-wins", "newest", "manual"}));
  EXPECT_FALSE(FirstEntityConflicts(outcome).fallback_given);
}

TEST(ConfigConflictsTest, ReportsUnknownKeysInTheBlockAndInNewestByWithSuggestions) {
  ParseOutcome outcome = ParseConflicts(
      "      defualt: manual\n"                                              // 18
      "      newest_by: { legacy: UPDTS, modern: updated_at, modren: x }\n"  // 19
      "      strategy: manual\n");                                           // 20
  ASSERT_EQ(outcome.problems.size(), 3u) << AllProblems(outcome);
  const ConfigProblem* key =
      FindProblem(outcome, {"entity 'customer', conflicts:", "unknown key 'defualt'"});
  ASSERT_NE(key, nullptr) << AllProblems(outcome);
  EXPECT_EQ(key->where.line, kConflictsLine + 1);
  EXPECT_EQ(key->hint, "did you mean 'default'?");
  const ConfigProblem* newest_by =
      FindProblem(outcome, {"entity 'customer', conflicts.newest_by", "unknown key 'modren'"});
  ASSERT_NE(newest_by, nullptr) << AllProblems(outcome);
  EXPECT_EQ(newest_by->where.line, kConflictsLine + 2);
  EXPECT_EQ(newest_by->hint, "did you mean 'modern'?");
  const ConfigProblem* far =
      FindProblem(outcome, {"entity 'customer', conflicts:", "unknown key 'strategy'"});
  ASSERT_NE(far, nullptr) << AllProblems(outcome);
  EXPECT_EQ(far->where.line, kConflictsLine + 3);
  EXPECT_EQ(far->hint,
            "valid keys: default, fallback, newest_by, fields, on_delete, read_only_edits");
  // The misspelled default was not applied.
  EXPECT_EQ(FirstEntityConflicts(outcome).default_policy, ConflictPolicy::kMerge);
}

TEST(ConfigConflictsTest, SuggestsConflictsForMisspelledEntityKey) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    conflict: { default: manual }\n");
  ASSERT_TRUE(HasProblem(outcome, kLine6 + 3, {"entity 'item'", "unknown key 'conflict'"}));
  EXPECT_EQ(outcome.problems[0].hint, "did you mean 'conflicts'?");
}

TEST(ConfigConflictsTest, ReportsEveryBadValueListingTheValidOnes) {
  ParseOutcome outcome = ParseConflicts(
      "      default: newer\n"           // 18
      "      fallback: primary\n"        // 19
      "      fields:\n"                  // 20
      "        email: always\n"          // 21
      "        balance: legacy-wins\n"   // 22
      "      on_delete: delete\n"        // 23
      "      read_only_edits: ignore\n"  // 24
  );
  ASSERT_EQ(outcome.problems.size(), 5u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, 18, {"entity 'customer', conflicts", "default 'newer' is not valid"}));
  EXPECT_EQ(outcome.problems[0].hint,
            "did you mean 'newest'? valid values: merge, legacy-wins, modern-wins, newest, manual");
  EXPECT_TRUE(
      HasProblem(outcome, 19, {"entity 'customer', conflicts", "fallback 'primary' is not valid"}));
  EXPECT_EQ(outcome.problems[1].hint,
            "valid values: legacy-wins, modern-wins, newest, manual, legacy, modern");
  EXPECT_TRUE(HasProblem(outcome, 21,
                         {"entity 'customer', conflicts.fields", "email 'always' is not valid"}));
  EXPECT_EQ(outcome.problems[2].hint,
            "valid values: merge, legacy-wins, modern-wins, newest, manual");
  EXPECT_TRUE(
      HasProblem(outcome, 23, {"entity 'customer', conflicts", "on_delete 'delete' is not valid"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[3].hint, {"keep-update, delete-wins, manual"}));
  EXPECT_TRUE(HasProblem(
      outcome, 24, {"entity 'customer', conflicts", "read_only_edits 'ignore' is not valid"}));
  EXPECT_EQ(outcome.problems[4].hint, "valid values: revert, park");
  // Only the valid override is kept; the others keep their defaults.
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  ASSERT_EQ(conflicts.fields.size(), 1u);
  EXPECT_EQ(conflicts.fields[0].field, "balance");
  EXPECT_EQ(conflicts.default_policy, ConflictPolicy::kMerge);
  EXPECT_FALSE(conflicts.fallback_given);
  EXPECT_EQ(conflicts.on_delete, DeletePolicy::kPrimary);
  EXPECT_EQ(conflicts.read_only_edits, ReadOnlyEditPolicy::kRevert);
}

TEST(ConfigConflictsTest, ReportsFieldOverrideNamingNoFieldOfTheEntity) {
  ParseOutcome outcome = ParseConflicts(
      "      fields:\n"               // 18
      "        emial: modern-wins\n"  // 19: typo of a `fields:` key
      "        EMAIL: modern-wins\n"  // 20: a legacy column of `fields:`, not a name
      "        cname: legacy-wins\n"  // 21: a `to_legacy:` key in the wrong case
      "        phone: manual\n"       // 22: nothing close
      "        first_name: manual\n"  // 23: a `to_modern:` key, fine
      "        CNAME: manual\n");     // 24: a `to_legacy:` key, fine
  ASSERT_EQ(outcome.problems.size(), 4u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, 19, {"entity 'customer', conflicts.fields", "unknown field 'emial'"}));
  EXPECT_EQ(outcome.problems[0].hint, "did you mean 'email'?");
  EXPECT_TRUE(
      HasProblem(outcome, 20, {"entity 'customer', conflicts.fields", "unknown field 'EMAIL'"}));
  EXPECT_EQ(
      outcome.problems[1].hint,
      "did you mean 'email'? ('EMAIL' is its legacy column; name fields by their `fields:` key)");
  EXPECT_TRUE(
      HasProblem(outcome, 21, {"entity 'customer', conflicts.fields", "unknown field 'cname'"}));
  EXPECT_EQ(outcome.problems[2].hint, "did you mean 'CNAME'?");
  EXPECT_TRUE(
      HasProblem(outcome, 22, {"entity 'customer', conflicts.fields", "unknown field 'phone'"}));
  EXPECT_EQ(outcome.problems[3].hint, "its fields: email, balance, status, first_name, CNAME");
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  ASSERT_EQ(conflicts.fields.size(), 2u);
  EXPECT_EQ(conflicts.fields[0].field, "first_name");
  EXPECT_EQ(conflicts.fields[1].field, "CNAME");
}

TEST(ConfigConflictsTest, ReportsFieldOverrideOnEntityWithoutFields) {
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    conflicts: { fields: { name: manual } }\n");
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, kLine6 + 3, {"entity 'item', conflicts.fields", "unknown field 'name'"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[0].hint, {"maps no fields"}));
}

TEST(ConfigConflictsTest, ReportsFieldListedTwice) {
  ParseOutcome outcome = ParseConflicts(
      "      fields:\n"                 // 18
      "        email: modern-wins\n"    // 19
      "        balance: manual\n"       // 20
      "        email: legacy-wins\n");  // 21
  ASSERT_EQ(outcome.problems.size(), 1u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, 21, {"entity 'customer', conflicts.fields", "'email' appears twice"}));
  // The first listing stands.
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  ASSERT_EQ(conflicts.fields.size(), 2u);
  EXPECT_EQ(conflicts.fields[0].field, "email");
  EXPECT_EQ(conflicts.fields[0].policy, ConflictPolicy::kModernWins);
}

TEST(ConfigConflictsTest, ChecksFieldNamesWhateverTheOrderOfTheEntityKeys) {
  // `conflicts:` before `fields:`; `price` has a problem of its own, which is
  // reported once and does not make `price` an unknown name for conflicts.
  ParseOutcome outcome = ParseEntities(
      "  item:\n"
      "    conflicts: { fields: { name: manual, price: legacy-wins, nmae: manual } }\n"
      "    legacy: { table: I, key: ID }\n"
      "    modern: { table: items, key: id }\n"
      "    fields:\n"
      "      name: NAME\n"
      "      price: [P1, P2]\n");
  ASSERT_EQ(outcome.problems.size(), 2u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, kLine6 + 1, {"entity 'item', conflicts.fields", "unknown field 'nmae'"}));
  EXPECT_TRUE(HasProblem(outcome, kLine6 + 6, {"entity 'item', field 'price'", "got a list"}));
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  ASSERT_EQ(conflicts.fields.size(), 2u);
  EXPECT_EQ(conflicts.fields[0].field, "name");
  EXPECT_EQ(conflicts.fields[1].field, "price");
}

TEST(ConfigConflictsTest, AllowsNewestWithoutNewestBy) {
  ParseOutcome outcome = ParseConflicts(
      "      default: newest\n"
      "      fields: { email: newest }\n");
  ASSERT_TRUE(outcome.ok()) << AllProblems(outcome);
  const ConflictConfig& conflicts = FirstEntityConflicts(outcome);
  EXPECT_EQ(conflicts.default_policy, ConflictPolicy::kNewest);
  ASSERT_EQ(conflicts.fields.size(), 1u);
  EXPECT_EQ(conflicts.fields[0].policy, ConflictPolicy::kNewest);
  EXPECT_TRUE(conflicts.newest_by_legacy.empty());
  EXPECT_TRUE(conflicts.newest_by_modern.empty());
}

TEST(ConfigConflictsTest, ReportsNewestByWithOnlyOneSide) {
  ParseOutcome outcome = ParseEntities(
      "  a:\n"
      "    legacy: { table: A, key: ID }\n"
      "    modern: { table: a, key: id }\n"
      "    conflicts:\n"
      "      default: newest\n"
      "      newest_by: { legacy: UPDTS }\n"  // line 11
      "  b:\n"
      "    legacy: { table: B, key: ID }\n"
      "    modern: { table: b, key: id }\n"
      "    conflicts:\n"
      "      newest_by:\n"  // line 16
      "        modern: updated_at\n");
  ASSERT_EQ(outcome.problems.size(), 2u) << AllProblems(outcome);
  EXPECT_TRUE(
      HasProblem(outcome, 11,
                 {"entity 'a', conflicts", "newest_by names a legacy column but no modern column",
                  "newest needs a timestamp column on both sides"}));
  EXPECT_TRUE(ContainsAll(outcome.problems[0].hint, {"give both", "or remove newest_by"}));
  EXPECT_TRUE(
      HasProblem(outcome, 16,
                 {"entity 'b', conflicts", "newest_by names a modern column but no legacy column",
                  "newest needs a timestamp column on both sides"}));
}

// Collecting.

TEST(ConfigProblemsTest, ReportsEveryProblemInFileOrder) {
  ParseOutcome outcome = Parse(
      "version: 1\n"
      "systems:\n"
      "  legacy: { database: \"sqlite:legacy.db\" }\n"
      "primary: middle\n"
      "entities:\n"
      "  customer:\n"
      "    legacy: { table: CUSTMAST }\n"
      "    modern: { table: customers, key: id, new_keys: random }\n"
      "    fields:\n"
      "      status: { legacy: STAT, map: { A: active, B: active } }\n"
      "      owner_id: { legacy: OWNER, lookup: owner }\n");
  ASSERT_EQ(outcome.problems.size(), 6u) << AllProblems(outcome);
  EXPECT_FALSE(outcome.ok());
  EXPECT_TRUE(HasProblem(outcome, 2, {"systems", "missing 'modern'"}));
  EXPECT_TRUE(HasProblem(outcome, 4, {"primary 'middle'"}));
  EXPECT_TRUE(HasProblem(outcome, 7, {"entity 'customer', legacy", "missing 'key'"}));
  EXPECT_TRUE(HasProblem(outcome, 8, {"entity 'customer', modern", "new_keys 'random'"}));
  EXPECT_TRUE(HasProblem(outcome, 10, {"entity 'customer', field 'status'", "not one-to-one"}));
  EXPECT_TRUE(
      HasProblem(outcome, 11, {"entity 'customer', field 'owner_id'", "unknown entity 'owner'"}));
  for (size_t i = 1; i < outcome.problems.size(); ++i) {
    EXPECT_LE(outcome.problems[i - 1].where.line, outcome.problems[i].where.line);
  }
}

}  // namespace
}  // namespace tandem
