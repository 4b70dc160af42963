// Uninstall keeps what makes reinstall safe: the key map survives `tandem
// uninstall` (not `--purge`, which says what it drops), so an install again
// links the same records and an edit after it creates no duplicate; an
// install over rows on both sides that no key map links is refused (unless
// --allow-unlinked); uninstall is refused while an engine runs on the pair.
// Each on SQLite and on PostgreSQL.
#include <gtest/gtest.h>
#include <unistd.h>

#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::RunCommand;
using testing::SystemsPair;
using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

class ReinstallTest : public ::testing::TestWithParam<SystemsPair> {
 protected:
  void SetUp() override {
    if (GetParam().any_pg()) TANDEM_REQUIRE_PG();
    env_ = std::make_unique<TestEnv>("", GetParam().backends());
  }
  int Tandem(const std::string& args, std::string* out) {
    out->clear();
    return RunCommand(std::string(TANDEM_BINARY) + " " + args + " -c " + env_->config_path(), out);
  }
  int64_t Triggers(Side side) {
    return env_->pg(side) ? env_->Count(side, "pg_trigger WHERE tgname LIKE '\\_tandem%'")
                          : env_->Count(side, "sqlite_master WHERE type = 'trigger'");
  }
  bool HasTable(Side side, const std::string& table) {
    return env_->pg(side) ? env_->Count(side, "pg_tables WHERE schemaname = 'tandem' AND tablename = '" + table + "'") == 1
                          : env_->Count(side, "sqlite_master WHERE type = 'table' AND name = '" + table + "'") == 1;
  }
  // One customer born on each side, synced.
  void InstallAndSyncTwoCustomers() {
    std::string out;
    ASSERT_EQ(Tandem("install", &out), 0) << out;
    env_->Write(L, "INSERT INTO \"CUSTMAST\"(\"CUSTNO\", \"CNAME\", \"EMAIL\", \"STAT\", \"BAL_CENTS\") VALUES (1, "
                   "'DOE, JOHN', 'j@x', 'A', 100)");
    env_->Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES "
                   "('0c1e5b9a-0000-4000-8000-000000000001', 'm@x', 'active', 2.5, 'MARY', 'MODERN')");
    ASSERT_EQ(Tandem("run --once", &out), 0) << out;
    ASSERT_EQ(env_->Count(L, "\"CUSTMAST\""), 2);
    ASSERT_EQ(env_->Count(M, "customers"), 2);
  }
  std::unique_ptr<TestEnv> env_;
};

TEST_P(ReinstallTest, UninstallKeepsTheKeyMapSoAnEditAfterReinstallMakesNoDuplicate) {
  InstallAndSyncTwoCustomers();
  std::string out;
  ASSERT_EQ(Tandem("uninstall", &out), 0) << out;
  EXPECT_NE(out.find("kept: the key map (_tandem_records: "), std::string::npos) << out;
  for (Side s : {L, M}) {
    EXPECT_EQ(Triggers(s), 0) << SideName(s);
    EXPECT_FALSE(HasTable(s, "_tandem_log")) << SideName(s);
    EXPECT_FALSE(HasTable(s, "_tandem_position")) << SideName(s);
    EXPECT_TRUE(HasTable(s, "_tandem_records")) << SideName(s);
  }
  // Not captured: no trigger while uninstalled.
  env_->Write(L, "UPDATE \"CUSTMAST\" SET \"CITY\" = 'Uncaptured' WHERE \"CUSTNO\" = 1");
  ASSERT_EQ(Tandem("install", &out), 0) << "a kept key map links the rows: " << out;
  EXPECT_GT(Triggers(L), 0);
  env_->Write(L, "UPDATE \"CUSTMAST\" SET \"EMAIL\" = 'after@x' WHERE \"CUSTNO\" = 1");
  env_->Write(M, "UPDATE customers SET email = 'after-m@x' WHERE email = 'm@x'");
  ASSERT_EQ(Tandem("run --once", &out), 0) << out;
  EXPECT_EQ(env_->Count(L, "\"CUSTMAST\""), 2) << "no duplicate on legacy: " << out;
  EXPECT_EQ(env_->Count(M, "customers"), 2) << "no duplicate on modern: " << out;
  EXPECT_EQ(env_->Count(M, "customers WHERE email = 'after@x'"), 1);
  EXPECT_EQ(env_->Count(L, "\"CUSTMAST\" WHERE \"EMAIL\" = 'after-m@x'"), 1);
  EXPECT_EQ(env_->Count(M, "addresses WHERE city = 'Uncaptured'"), 1)
      << "the record's current row was applied, edits while uninstalled included";
  // Nothing stale replayed: another pass finds nothing to do.
  ASSERT_EQ(Tandem("run --once", &out), 0) << out;
  EXPECT_NE(out.find("legacy-to-modern: 0 changes read"), std::string::npos) << out;
  EXPECT_NE(out.find("modern-to-legacy: 0 changes read"), std::string::npos) << out;
}

TEST_P(ReinstallTest, PurgeSaysWhatItDropsAndInstallOverUnlinkedRowsIsRefused) {
  InstallAndSyncTwoCustomers();
  std::string out;
  ASSERT_EQ(Tandem("uninstall --purge", &out), 0) << out;
  EXPECT_NE(out.find("--purge also dropped the key map (_tandem_records: "), std::string::npos) << out;
  EXPECT_NE(out.find("_tandem_audit"), std::string::npos) << out;
  for (Side s : {L, M}) EXPECT_FALSE(HasTable(s, "_tandem_records")) << SideName(s);
  EXPECT_EQ(Tandem("install", &out), 1) << out;
  EXPECT_NE(out.find("install refused: entity 'customer'"), std::string::npos) << out;
  EXPECT_NE(out.find("restore _tandem_records from a backup"), std::string::npos) << out;
  EXPECT_NE(out.find("tandem load --match"), std::string::npos) << out;
  EXPECT_NE(out.find("--allow-unlinked"), std::string::npos) << out;
  for (Side s : {L, M}) {
    EXPECT_EQ(Triggers(s), 0) << SideName(s) << ": nothing installed";
    EXPECT_FALSE(HasTable(s, "_tandem_log")) << SideName(s) << ": nothing installed";
  }
  ASSERT_EQ(Tandem("install --allow-unlinked", &out), 0) << out;
  EXPECT_GT(Triggers(L), 0);
  // Rows on one side only duplicate nothing: install goes ahead.
  ASSERT_EQ(Tandem("uninstall --purge", &out), 0) << out;
  env_->Write(M, "DELETE FROM addresses; DELETE FROM orders; DELETE FROM customers");
  EXPECT_EQ(Tandem("install", &out), 0) << out;
  EXPECT_GT(Triggers(L), 0);
}

TEST_P(ReinstallTest, UninstallIsRefusedWhileAnEngineRuns) {
  std::string out;
  ASSERT_EQ(Tandem("install", &out), 0) << out;
  std::string log = env_->dir() + "/run.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env_->config_path()}, log);
  for (int i = 0; i < 500 && testing::ReadFile(log).find("syncing") == std::string::npos; ++i) usleep(10000);
  ASSERT_NE(testing::ReadFile(log).find("syncing"), std::string::npos) << testing::ReadFile(log);
  EXPECT_EQ(Tandem("uninstall", &out), 1) << out;
  EXPECT_NE(out.find("uninstall refused: another tandem process is already syncing"), std::string::npos) << out;
  EXPECT_NE(out.find(env_->pg(L) ? "advisory lock" : "lock file"), std::string::npos) << "names the lock: " << out;
  EXPECT_EQ(Tandem("uninstall --purge", &out), 1) << out;
  EXPECT_GT(Triggers(L), 0) << "nothing uninstalled";
  EXPECT_TRUE(HasTable(M, "_tandem_log"));
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  EXPECT_EQ(Tandem("uninstall", &out), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Sides, ReinstallTest,
                         ::testing::Values(SystemsPair{"SqliteToSqlite", false, false},
                                           SystemsPair{"SqliteToPg", false, true}, SystemsPair{"PgToPg", true, true}),
                         testing::SystemsPairName);

}  // namespace
}  // namespace tandem
