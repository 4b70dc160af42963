// The tandem command refuses what it cannot do exactly (issue: strict CLI
// input and honest summaries): ids are parsed whole, conflicting options are
// refused, a `resolve --set` value the column cannot hold is refused before
// anything is written, one database given as both sides is refused, the
// one-engine lock holds whatever path reaches the database, and the run
// summary counts only what was committed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/ops/conflict_queue.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::RunCommand;
using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

std::string Tandem(const std::string& args, const TestEnv& env) {
  return std::string(TANDEM_BINARY) + " " + args + " -c " + env.config_path();
}

// Replaces the first `from` in the config of `env` with `to`.
void EditConfig(const TestEnv& env, const std::string& from, const std::string& to) {
  std::string cfg = testing::ReadFile(env.config_path());
  auto at = cfg.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  cfg.replace(at, from.size(), to);
  std::ofstream(env.config_path()) << cfg;
}

// A put-aside change stored in the modern database as modern:1 (an unmapped status code).
void PutOneChangeAside(TestEnv& env) {
  env.Install();
  env.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'DOE, JOHN', 'j@x', 'Q', 1)");
  env.SyncOnce();
  ASSERT_EQ(env.Query(M, "SELECT id FROM _tandem_parked"), "1\n");
}

// Uninstall would drop the put-aside change with the runtime tables, leaving
// the two sides different: refused unless --force, which audits it.
TEST(CliStrictTest, UninstallRefusesToDropPutAsideChangesWithoutForce) {
  TestEnv env;
  PutOneChangeAside(env);
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("uninstall", env), &out), 1) << out;
  EXPECT_NE(out.find("uninstall refused: 1 put-aside change(s)"), std::string::npos) << out;
  EXPECT_EQ(env.Count(M, "_tandem_parked"), 1) << "nothing was dropped";
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("uninstall --force", env), &out), 0) << out;
  EXPECT_NE(env.Query(M, "SELECT detail FROM _tandem_audit WHERE action = 'uninstall'").find("1 put-aside"),
            std::string::npos);
}

TEST(CliStrictTest, GapsClearTakesOnlyAWholeGapId) {
  TestEnv env;
  env.Install();
  std::string out;
  for (const std::string bad : {"1", "1x", "-1", "ALL", "legacy:", "legacy:1x", "modern:-1", "both:1"}) {
    out.clear();
    EXPECT_EQ(RunCommand(Tandem("gaps --clear " + bad, env), &out), 2) << bad << ": " << out;
    EXPECT_NE(out.find("bad gap id"), std::string::npos) << out;
  }
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("gaps", env), &out), 0) << out;
  EXPECT_NE(out.find("no capture gaps"), std::string::npos) << out;
}

TEST(CliStrictTest, MalformedIdsAreRefusedAndNothingIsActedOn) {
  TestEnv env;
  PutOneChangeAside(env);
  const std::vector<std::string> bad = {"modern:1x", "'modern:1 junk'", "legacy:", ":1", "modern:-1",
                                        "modern:99999999999999999999", "modern:+1", "modern:0", "'modern: 1'",
                                        "MODERN:1"};
  for (const std::string& id : bad) {
    for (std::string command : {"retry ", "discard ", "conflicts show ", "conflicts resolve "}) {
      std::string out;
      const std::string args = command + id + (command == "conflicts resolve " ? " --take legacy" : "");
      EXPECT_EQ(RunCommand(Tandem(args, env), &out), 2) << args << ": " << out;
      EXPECT_NE(out.find("bad id"), std::string::npos) << args << ": " << out;
    }
  }
  EXPECT_EQ(env.Count(M, "_tandem_parked"), 1) << "no malformed id discarded modern:1";
  EXPECT_EQ(env.Query(M, "SELECT attempts FROM _tandem_parked"), "1\n") << "no malformed id retried modern:1";
  EXPECT_EQ(env.Count(M, "_tandem_audit"), 0);
}

TEST(CliStrictTest, RetryWithAnIdAndAllIsRefused) {
  TestEnv env;
  PutOneChangeAside(env);
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("retry modern:1 --all", env), &out), 2) << out;
  EXPECT_NE(out.find("not both"), std::string::npos) << out;
  EXPECT_EQ(env.Query(M, "SELECT attempts FROM _tandem_parked"), "1\n") << "nothing retried";
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("retry", env), &out), 2) << out;
}

class ResolveInputTest : public ::testing::Test {
 protected:
  // An open manual conflict on customer 1's balance.
  void SetUp() override {
    env_ = std::make_unique<TestEnv>(
        testing::ExampleConfigWithCustomerConflicts("    conflicts: { fields: { balance: manual } }\n"));
    env_->Install();
    env_->Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'DOE, JOHN', 'j@x', 'A', "
                   "100)");
    env_->SyncOnce();
    env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 200 WHERE CUSTNO = 1");
    env_->Write(M, "UPDATE customers SET balance = 3");
    env_->SyncOnce();
    Config c = env_->LoadConfig();
    auto l = OpenConnector(c.legacy.resolved, {});
    auto m = OpenConnector(c.modern.resolved, {});
    auto open = ListConflicts(**l, **m, ConflictFilter{});
    ASSERT_TRUE(open.ok());
    ASSERT_EQ(open->size(), 1u) << open->dump();
    id_ = (*open)[0]["id"].get<std::string>();
  }
  // The request is untouched: still open, no resolution, both sides as they were.
  void ExpectNothingWritten(const std::string& why) {
    const Side stored = id_.starts_with("legacy:") ? L : M;
    EXPECT_EQ(env_->Query(stored, "SELECT status, resolution FROM _tandem_conflicts"), "open|NULL\n") << why;
    EXPECT_EQ(env_->Query(L, "SELECT BAL_CENTS FROM CUSTMAST"), "200\n") << why;
    EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers"), "3\n") << why;
  }
  std::unique_ptr<TestEnv> env_;
  std::string id_;
};

TEST_F(ResolveInputTest, TakeAndSetTogetherAreRefused) {
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --take legacy --set balance=4", *env_), &out), 2) << out;
  EXPECT_NE(out.find("not both"), std::string::npos) << out;
  ExpectNothingWritten("--take with --set");
}

TEST_F(ResolveInputTest, SetWithoutEqualsOrOfAnUnknownFieldIsRefusedBeforeWriting) {
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --set balance", *env_), &out), 2) << out;
  EXPECT_NE(out.find("expected field=value"), std::string::npos) << out;
  ExpectNothingWritten("--set without =");
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --set saldo=4", *env_), &out), 2) << out;
  EXPECT_NE(out.find("has no field 'saldo'"), std::string::npos) << out;
  ExpectNothingWritten("--set of an unknown field");
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --set balance=4 --set balance=5", *env_), &out), 2)
      << out;
  EXPECT_NE(out.find("twice"), std::string::npos) << out;
  ExpectNothingWritten("--set of one field twice");
}

TEST_F(ResolveInputTest, SetValueTheColumnCannotHoldIsRefusedBeforeWriting) {
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --set balance=abc", *env_), &out), 2) << out;
  EXPECT_NE(out.find("customers.balance"), std::string::npos) << "names the column: " << out;
  EXPECT_NE(out.find("not a number"), std::string::npos) << out;
  EXPECT_EQ(out.find("resolved"), std::string::npos) << out;
  ExpectNothingWritten("--set balance=abc");
  // A value it can hold settles the conflict on both sides.
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("conflicts resolve " + id_ + " --set balance=4.5", *env_), &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(env_->Query(L, "SELECT BAL_CENTS FROM CUSTMAST"), "450\n");
  EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers"), "4.5\n");
}

// A config whose two sides are one SQLite file holding both schemas (so that
// everything else in it checks out), reached as `modern_path` (relative to
// the config).
std::unique_ptr<TestEnv> OneFileBothSides(const std::string& modern_path) {
  auto env = std::make_unique<TestEnv>();
  env->Write(L, testing::ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/modern_schema.sql"));
  std::filesystem::create_symlink(env->legacy_path(), env->dir() + "/data/link.db");
  EditConfig(*env, "sqlite:data/modern.db", "sqlite:" + modern_path);
  return env;
}

TEST(CliStrictTest, CheckAndInstallRefuseOneSqliteFileAsBothSides) {
  for (std::string path : {"data/legacy.db", "data/link.db", "data/../data/legacy.db"}) {
    auto env = OneFileBothSides(path);
    std::string out;
    EXPECT_EQ(RunCommand(Tandem("check", *env), &out), 1) << path << ": " << out;
    EXPECT_NE(out.find("are the same database"), std::string::npos) << path << ": " << out;
    out.clear();
    EXPECT_EQ(RunCommand(Tandem("install", *env), &out), 1) << path << ": " << out;
    EXPECT_NE(out.find("are the same database"), std::string::npos) << path << ": " << out;
    EXPECT_EQ(env->Count(L, "sqlite_master WHERE type = 'trigger'"), 0) << path << ": nothing installed";
  }
}

TEST(CliStrictTest, CheckRefusesOnePostgresDatabaseReachedByTwoUrls) {
  TANDEM_REQUIRE_PG();
  const std::string examples = std::string(TANDEM_SOURCE_DIR) + "/examples/postgres/";
  TestEnv env(testing::ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/postgres-to-postgres.yaml"),
              testing::Backends{true, true,
                                testing::ReadFile(examples + "legacy_schema.sql") +
                                    testing::ReadFile(examples + "modern_schema.sql"),
                                ""});
  std::string out;
  ASSERT_EQ(RunCommand(Tandem("check", env), &out), 0) << "two databases: " << out;
  std::string other = env.pg(L)->url();
  ASSERT_NE(other.find("127.0.0.1"), std::string::npos) << other;
  other.replace(other.find("127.0.0.1"), 9, "localhost");
  EditConfig(env, env.pg(M)->url(), other);
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("check", env), &out), 1) << out;
  EXPECT_NE(out.find("are the same database"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("install", env), &out), 1) << out;
  EXPECT_EQ(env.Count(L, "pg_trigger WHERE tgname LIKE '\\_tandem%'"), 0) << "nothing installed";
}

// Waits (up to 5 s) until `log` shows that the engine started.
bool WaitForStart(const std::string& log) {
  for (int i = 0; i < 500; ++i) {
    if (testing::ReadFile(log).find("syncing") != std::string::npos) return true;
    usleep(10000);
  }
  return false;
}

TEST(CliStrictTest, TwoEnginesThroughASymlinkAreRefused) {
  TestEnv env;
  env.Install();
  std::filesystem::create_symlink(env.legacy_path(), env.dir() + "/data/link.db");
  const std::string second = env.dir() + "/second.yaml";
  {
    std::string cfg = testing::ReadFile(env.config_path());
    cfg.replace(cfg.find("sqlite:data/legacy.db"), 21, "sqlite:data/link.db");
    std::ofstream(second) << cfg;
  }
  std::string log = env.dir() + "/run.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path()}, log);
  ASSERT_TRUE(WaitForStart(log)) << testing::ReadFile(log);
  std::string out;
  EXPECT_EQ(RunCommand(std::string(TANDEM_BINARY) + " run --once -c " + second, &out), 1) << out;
  EXPECT_NE(out.find("another tandem process is already syncing"), std::string::npos) << out;
  EXPECT_NE(out.find(".lock"), std::string::npos) << "names the lock: " << out;
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  out.clear();
  EXPECT_EQ(RunCommand(std::string(TANDEM_BINARY) + " run --once -c " + second, &out), 0) << "lock released: " << out;
}

// The run summary counts what committed: a batch re-run record by record
// after a rejection mid-write counts its put-aside records once.
TEST(CliStrictTest, RunSummaryCountsOnlyWhatWasCommitted) {
  std::string modern = testing::ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/modern_schema.sql");
  const std::string balance = "balance     NUMERIC NOT NULL DEFAULT 0";
  modern.replace(modern.find(balance), balance.size(), balance + " CHECK (balance < 1000)");
  TestEnv env("", testing::Backends{false, false, "", modern});
  env.Install();
  // One transaction: an unmapped status (put aside while mapping), then a
  // balance the target's CHECK rejects mid-write (the batch is re-run).
  env.Write(L, "BEGIN; INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'DOE, JOHN', 'j@x', 'Q', "
               "1); INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (2, 'ROE, JANE', 'r@x', 'A', "
               "500000); INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (3, 'POE, ED', 'p@x', "
               "'A', 3); COMMIT;");
  std::string out;
  ASSERT_EQ(RunCommand(Tandem("run --once", env), &out), 0) << out;
  ASSERT_EQ(env.Count(M, "_tandem_parked"), 2) << out;
  EXPECT_EQ(env.Count(M, "customers"), 1) << out;
  EXPECT_NE(out.find("legacy-to-modern: 3 changes read, 1 records written, 2 put aside, 0 conflicts"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("modern-to-legacy: 0 changes read, 0 records written, 0 put aside, 0 conflicts"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace tandem
