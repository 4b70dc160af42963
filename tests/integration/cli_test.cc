// The tandem command as a user runs it: exit codes, messages, dry runs,
// status output, graceful stop, uninstall.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::RunCommand;
using testing::TestEnv;

std::string Tandem(const std::string& args) { return std::string(TANDEM_BINARY) + " " + args; }

TEST(CliTest, BadUsageExitsTwo) {
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("frobnicate"), &out), 2);
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("run --no-such-flag"), &out), 2);
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("run --help"), &out), 0);
  EXPECT_NE(out.find("--once"), std::string::npos);
}

TEST(CliTest, CheckListsEveryProblemWithFileAndLine) {
  TestEnv env;
  std::string cfg = testing::ReadFile(env.config_path());
  // Three problems that need the databases: unknown table, unknown column, bad expression.
  cfg.replace(cfg.find("table: ORDHDR"), 13, "table: ORDERS");
  cfg.replace(cfg.find("email: EMAIL"), 12, "email: EMAIL_ADDR");
  cfg.replace(cfg.find("\"BAL_CENTS / 100.0\""), 19, "\"BAL_CENTS // 100\"");
  std::ofstream(env.config_path()) << cfg;
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("check -c " + env.config_path()), &out), 1);
  const auto order_line = 1 + std::count(cfg.begin(), cfg.begin() + cfg.find("table: ORDERS"), '\n');
  EXPECT_NE(out.find("tandem.yaml:" + std::to_string(order_line) + ":"), std::string::npos) << out;  // order's legacy: line
  EXPECT_NE(out.find("'ORDERS' does not exist on the legacy database"), std::string::npos) << out;
  EXPECT_NE(out.find("column 'EMAIL_ADDR' does not exist in legacy table 'CUSTMAST'"), std::string::npos) << out;
  EXPECT_NE(out.find("bad to_modern expression \"BAL_CENTS // 100\""), std::string::npos) << out;
  EXPECT_NE(out.find("3 problem(s)"), std::string::npos) << out;
}

TEST(CliTest, CheckReportsStructuralProblemsWithoutTouchingDatabases) {
  TestEnv env("version: 1\nsystems:\n  legacy: { database: \"sqlite:data/legacy.db\" }\n"
              "  modern: { database: \"sqlite:data/modern.db\" }\nprimary: legacy\nentities:\n"
              "  customer:\n    direction: sideways\n    legacy: { table: CUSTMAST, key: CUSTNO }\n"
              "    modern: { table: customers, key: id, new_keys: uuid }\n"
              "    fields:\n      status: { legacy: STAT, map: { A: active, I: active } }\n");
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("check -c " + env.config_path()), &out), 1);
  EXPECT_NE(out.find("tandem.yaml:8:"), std::string::npos) << out;
  EXPECT_NE(out.find("sideways"), std::string::npos) << out;
  EXPECT_NE(out.find("one-to-one"), std::string::npos) << out;
}

TEST(CliTest, InstallDryRunPrintsSqlAndChangesNothing) {
  TestEnv env;
  std::string out;
  ASSERT_EQ(RunCommand(Tandem("install --dry-run -c " + env.config_path()), &out), 0) << out;
  EXPECT_NE(out.find("CREATE TRIGGER _tandem_1_ins AFTER INSERT ON \"CUSTMAST\""), std::string::npos) << out;
  EXPECT_EQ(env.Count(Side::kLegacy, "sqlite_master WHERE name LIKE '_tandem%'"), 0);
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("run --once -c " + env.config_path()), &out), 1);
  EXPECT_NE(out.find("run 'tandem install"), std::string::npos) << out;
}

TEST(CliTest, InstallRunStatusUninstallRoundTrip) {
  TestEnv env;
  std::string out;
  ASSERT_EQ(RunCommand(Tandem("install -c " + env.config_path()), &out), 0) << out;
  ASSERT_EQ(RunCommand(Tandem("install -c " + env.config_path()), &out), 0) << "install is idempotent: " << out;
  env.Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('A, B', 'a@b', 'A', 1), "
                        "('C, D', 'c@d', 'Q', 2);");
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("status --json -c " + env.config_path()), &out), 0) << out;
  auto before = nlohmann::json::parse(out);
  EXPECT_EQ(before["directions"][0]["direction"], "legacy-to-modern");
  EXPECT_EQ(before["directions"][0]["entities"][0]["pending"], 2);
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("run --once -c " + env.config_path()), &out), 0) << out;
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("status -c " + env.config_path()), &out), 0) << out;
  EXPECT_NE(out.find("put-aside changes"), std::string::npos) << out;
  EXPECT_NE(out.find("'Q' has no mapping"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("status --json -c " + env.config_path()), &out), 0) << out;
  auto after = nlohmann::json::parse(out);
  EXPECT_EQ(after["directions"][0]["entities"][0]["pending"], 0);
  EXPECT_EQ(after["directions"][0]["entities"][0]["put_aside"], 1);
  EXPECT_EQ(after["directions"][0]["entities"][0]["records_written"], 1);
  EXPECT_FALSE(after["directions"][0]["entities"][0]["last_applied_at_ms"].is_null());
  EXPECT_TRUE(after["directions"][0]["entities"][2]["last_applied_at_ms"].is_null()) << "no order was written";
  std::string id = after["put_aside"][0]["id"];
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("retry " + id + " -c " + env.config_path()), &out), 1) << "still unmapped: " << out;
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("discard " + id + " -c " + env.config_path()), &out), 0) << out;
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("uninstall -c " + env.config_path()), &out), 0) << out;
  // The key map and the audit trail stay (reinstall_test.cc); capture goes.
  for (Side s : {Side::kLegacy, Side::kModern})
    EXPECT_EQ(env.Query(s, "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE "
                           "'\\_tandem%' ESCAPE '\\' ORDER BY name"),
              "_tandem_audit\n_tandem_gaps\n_tandem_identity\n_tandem_records\n")
        << SideName(s);
  EXPECT_EQ(env.Count(Side::kLegacy, "CUSTMAST"), 2) << "uninstall keeps data";
  EXPECT_EQ(env.Count(Side::kModern, "customers"), 1) << "uninstall keeps data";
  out.clear();
  ASSERT_EQ(RunCommand(Tandem("uninstall --purge -c " + env.config_path()), &out), 0) << out;
  EXPECT_EQ(env.Count(Side::kLegacy, "sqlite_master WHERE name LIKE '_tandem%'"), 0);
  EXPECT_EQ(env.Count(Side::kModern, "sqlite_master WHERE name LIKE '_tandem%'"), 0);
}

TEST(CliTest, RunStopsGracefullyOnSigterm) {
  TestEnv env;
  env.Install();
  std::string log = env.dir() + "/run.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path()}, log);
  env.Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('A, B', 'a@b', 'A', 1);");
  // Wait until the change has arrived (bounded), then stop.
  for (int i = 0; i < 500 && env.Count(Side::kModern, "customers") == 0; ++i) usleep(10000);
  EXPECT_EQ(env.Count(Side::kModern, "customers"), 1);
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  EXPECT_NE(testing::ReadFile(log).find("legacy-to-modern: 1 changes read"), std::string::npos);
}

TEST(CliTest, SecondRunIsRefusedAndRetryIsHandedToTheRunningProcess) {
  TestEnv env;
  env.Install();
  std::string log = env.dir() + "/run.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path()}, log);
  env.Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'Q', 1);");
  for (int i = 0; i < 500 && env.Count(Side::kModern, "_tandem_parked") == 0; ++i) usleep(10000);
  ASSERT_EQ(env.Count(Side::kModern, "_tandem_parked"), 1) << testing::ReadFile(log);
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("run --once -c " + env.config_path()), &out), 1);
  EXPECT_NE(out.find("another tandem process is already syncing"), std::string::npos) << out;
  // Fix the cause at the source; the record stays put aside until retried.
  env.Sh(Side::kLegacy, "UPDATE CUSTMAST SET STAT = 'A' WHERE CUSTNO = 1;");
  out.clear();
  EXPECT_EQ(RunCommand(Tandem("retry --all -c " + env.config_path()), &out), 0) << out;
  EXPECT_NE(out.find("handed to the running tandem"), std::string::npos) << out;
  for (int i = 0; i < 500 && env.Count(Side::kModern, "customers") == 0; ++i) usleep(10000);
  EXPECT_EQ(env.Query(Side::kModern, "SELECT status FROM customers"), "active\n");
  EXPECT_EQ(env.Count(Side::kModern, "_tandem_parked"), 0);
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0);
}

TEST(CliTest, CheckNamesColumnsThatDoNotRoundTrip) {
  TestEnv env;
  env.Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('SMITH,JOHN', 's@x', 'A', 5), "
                        "('LOVELACE, ADA', 'a@x', 'A', 7);");
  env.Sh(Side::kModern, "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES "
                        "('m1', 'm@x', 'active', 10.555, 'ALAN', 'TURING');");
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("check -c " + env.config_path()), &out), 0) << out;
  EXPECT_NE(out.find("legacy column 'CNAME' does not survive legacy -> modern -> legacy in 1 of 2 sampled rows (e.g. "
                     "'SMITH,JOHN' comes back as 'SMITH, JOHN')"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("modern column 'balance' does not survive modern -> legacy -> modern"), std::string::npos) << out;
  EXPECT_EQ(out.find("'email'"), std::string::npos) << "email round-trips: " << out;
}

TEST(CliTest, TargetUnavailableForAWhileIsRetriedAndNothingIsLost) {
  TestEnv env;
  std::ofstream(env.config_path(), std::ios::app) << "sync: { busy_timeout_ms: 50 }\n";
  env.Install();
  std::string log = env.dir() + "/run.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path()}, log);
  // Another process takes the modern database's write lock and keeps it (the fault).
  env.Write(Side::kModern, "BEGIN EXCLUSIVE");
  env.Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('A, B', 'a@b', 'A', 1), "
                        "('C, D', 'c@d', 'A', 2);");
  for (int i = 0; i < 500 && testing::ReadFile(log).find("retrying in") == std::string::npos; ++i) usleep(10000);
  std::string during = testing::ReadFile(log);
  EXPECT_NE(during.find("retrying in"), std::string::npos) << during;
  EXPECT_NE(during.find("modern.db"), std::string::npos) << "the message names the database: " << during;
  env.Write(Side::kModern, "COMMIT");  // the database is back
  for (int i = 0; i < 500 && env.Count(Side::kModern, "customers") < 2; ++i) usleep(10000);
  EXPECT_EQ(env.Count(Side::kModern, "customers"), 2);
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  EXPECT_NE(testing::ReadFile(log).find("recovered"), std::string::npos);
}

TEST(CliTest, MissingDatabaseIsAClearError) {
  TestEnv env;
  std::string cfg = testing::ReadFile(env.config_path());
  cfg.replace(cfg.find("data/modern.db"), 14, "data/nowhere.db");
  std::ofstream(env.config_path()) << cfg;
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("check -c " + env.config_path()), &out), 1);
  EXPECT_NE(out.find("tandem.yaml:6:"), std::string::npos) << out;
  EXPECT_NE(out.find("nowhere.db"), std::string::npos) << out;
}

// `tandem demo`: the example edits on both sides arrive on the other side,
// with SQLite on both sides, and with the modern side on PostgreSQL; run
// twice, it starts afresh; it leaves a database it did not prepare alone.
TEST(DemoTest, ExampleEditsArriveOnBothSides) {
  TestEnv env;  // for its folder
  std::string out;
  ASSERT_EQ(RunCommand(Tandem("demo --seconds 0.2 --dir " + env.dir() + "/demo"), &out), 0) << out;
  EXPECT_NE(out.find("modern -> legacy  insert customer"), std::string::npos) << out;
  EXPECT_NE(out.find("retried  legacy -> modern  update customer"), std::string::npos) << out;
  auto db = SqliteHandle::Open(env.dir() + "/demo/data/modern.db", SQLITE_OPEN_READWRITE, 5000);
  ASSERT_TRUE(db.ok());
  std::vector<Row> rows;
  ASSERT_TRUE((*db)->Run("SELECT email FROM customers ORDER BY email", {}, &rows).ok());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0].as_bytes(), "ada.lovelace@example.com");
}

TEST(DemoTest, ModernOnPostgres) {
  TANDEM_REQUIRE_PG();
  TestEnv env;
  testing::PgTestDatabase pg;
  for (int run = 0; run < 2; ++run) {
    std::string out;
    ASSERT_EQ(RunCommand(Tandem("demo --seconds 0.2 --dir " + env.dir() + "/demo --modern " + pg.url()), &out), 0)
        << out;
    EXPECT_NE(out.find("modern -> legacy  insert customer"), std::string::npos) << out;
    EXPECT_EQ(pg.Query("SELECT email, balance FROM customers ORDER BY email"),
              "ada.lovelace@example.com|0.99\nalan@example.com|10.50\ngrace@example.com|50.00\n");
  }
  // Tables the demo did not make are not touched.
  pg.Exec("COMMENT ON TABLE customers IS 'mine'");
  std::string out;
  EXPECT_EQ(RunCommand(Tandem("demo --seconds 0.2 --dir " + env.dir() + "/demo --modern " + pg.url()), &out), 1);
  EXPECT_NE(out.find("that the demo did not create"), std::string::npos) << out;
  EXPECT_EQ(pg.Query("SELECT count(*) FROM customers"), "3\n");
}

}  // namespace
}  // namespace tandem
