// Restore and replacement detection (engine/source_identity.h): before
// anything is applied from a source, Tandem makes sure it is the database,
// with the same history, that the stored position came from; a direction
// whose source is not is stopped with what happened and what to do, until
// `tandem accept-restored SIDE`.
//
// Real backups: SQLite files copied with VACUUM INTO while no write is in
// progress and put back in place with a rename, as an operator would; a
// PostgreSQL database recreated from a template under the same name.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "support/pg_test_server.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

// `tandem ARGS -c CONFIG`; its exit code, and its output in *out.
int Cli(const TestEnv& env, const std::string& args, std::string* out) {
  return testing::RunCommand(std::string(TANDEM_BINARY) + " " + args + " -c '" + env.config_path() + "'", out);
}

// A fresh engine's `run --once`: the status it ends with.
Status RunOnce(TestEnv& env) {
  auto engine = SyncEngine::Open(env.LoadConfig());
  if (!engine.ok()) return engine.status();
  return (*engine)->RunUntilIdle();
}

// Waits up to `timeout` for `pid` to exit; its exit code, or -1 if it still runs.
int WaitFor(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ReadLog(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.Install(); }

  // Legacy writes go through the sqlite3 shell: no connection of the test
  // keeps the legacy file open, so it can be backed up and put back.
  void Legacy(const std::string& sql) { env_.Sh(L, sql); }
  // A backup of the legacy database as it is now (no write in progress).
  std::string BackUpLegacy() {
    const std::string path = env_.dir() + "/legacy-backup.db";
    Legacy("VACUUM INTO '" + path + "';");
    return path;
  }
  // Puts `backup` in place of the legacy database (every session is closed).
  void RestoreLegacy(const std::string& backup) { std::filesystem::rename(backup, env_.legacy_path()); }

  // CUSTNO 1..3 synced; a backup taken; then CUSTNO 4 ("OLD FOUR") inserted
  // and updated twice, and synced: the modern database holds legacy
  // position 6 and the old CUSTNO 4 as a customer. Returns the backup.
  std::string HistoryWithOldFour() {
    Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'ONE, A', 'one@x', 'A', 100), "
           "(2, 'TWO, B', 'two@x', 'A', 200), (3, 'THREE, C', 'three@x', 'A', 300);");
    env_.SyncOnce();
    std::string backup = BackUpLegacy();
    Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (4, 'FOUR, OLD', 'old.four@x', 'A', "
           "400); UPDATE CUSTMAST SET BAL_CENTS = 401 WHERE CUSTNO = 4; UPDATE CUSTMAST SET BAL_CENTS = 402 WHERE "
           "CUSTNO = 4;");
    env_.SyncOnce();
    EXPECT_EQ(env_.Query(M, "SELECT seq FROM _tandem_position WHERE direction = 'legacy-to-modern'"), "6\n");
    EXPECT_EQ(OldFour(), "old.four@x|FOUR|OLD|4.02\n");
    return backup;
  }
  std::string OldFour() {
    return env_.Query(M, "SELECT email, last_name, first_name, balance FROM customers WHERE email LIKE '%four%'");
  }

  TestEnv env_;
};

// The target holds legacy position 6; the restored legacy log reaches 4.
TEST_F(RestoreTest, SourceRestoredBehindThePositionStopsItsDirection) {
  RestoreLegacy(HistoryWithOldFour());
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (4, 'FOUR, NEW', 'new.four@x', 'A', 9);");
  Status st = RunOnce(env_);
  ASSERT_FALSE(st.ok()) << "a restored legacy database went unnoticed";
  EXPECT_NE(st.message().find("legacy-to-modern stopped"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("restored from a backup"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("ends at change 4, before position 6"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("tandem accept-restored legacy"), std::string::npos) << st.message();
  EXPECT_EQ(OldFour(), "old.four@x|FOUR|OLD|4.02\n");
  // `tandem status` and `tandem check` say so too; `run --once` exits 1.
  std::string out;
  EXPECT_EQ(Cli(env_, "status", &out), 0) << out;
  EXPECT_NE(out.find("STOPPED: legacy-to-modern stopped: the legacy database"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(Cli(env_, "check --sample 0", &out), 1) << out;
  EXPECT_NE(out.find("restored from a backup"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(Cli(env_, "run --once", &out), 1) << out;
  EXPECT_NE(out.find("accept-restored legacy"), std::string::npos) << out;
}

// Observed: once new writes carried the restored log past the stored
// position, an edit of the NEW CUSTNO 4 overwrote the modern record of the
// OLD CUSTNO 4.
TEST_F(RestoreTest, SourceRestoredAndWrittenPastThePositionDoesNotOverwriteOldRecords) {
  RestoreLegacy(HistoryWithOldFour());
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (4, 'FOUR, NEW', 'new.four@x', 'A', 9);"
         "UPDATE CUSTMAST SET BAL_CENTS = 10 WHERE CUSTNO = 4; UPDATE CUSTMAST SET BAL_CENTS = 11 WHERE CUSTNO = 4;"
         "UPDATE CUSTMAST SET BAL_CENTS = 12 WHERE CUSTNO = 4;");
  Status st = RunOnce(env_);
  ASSERT_FALSE(st.ok()) << "a restored legacy database went unnoticed";
  EXPECT_NE(st.message().find("restored from a backup and written to since"), std::string::npos) << st.message();
  EXPECT_EQ(OldFour(), "old.four@x|FOUR|OLD|4.02\n");
  // The other direction goes on: a modern edit still reaches the legacy database.
  env_.Write(M, "UPDATE customers SET email = 'one.new@x' WHERE email = 'one@x'");
  EXPECT_FALSE(RunOnce(env_).ok());
  std::string out;
  testing::RunCommand("sqlite3 '" + env_.legacy_path() + "' 'SELECT EMAIL FROM CUSTMAST WHERE CUSTNO = 1'", &out);
  EXPECT_EQ(out, "one.new@x\n");
}

// The operator's way out: after comparing and repairing the two sides,
// `tandem accept-restored legacy` syncs on from the restored log's end.
TEST_F(RestoreTest, AcceptRestoredLetsChangesFlowAgainAndIsAudited) {
  RestoreLegacy(HistoryWithOldFour());
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (4, 'FOUR, NEW', 'new.four@x', 'A', 9);");
  ASSERT_FALSE(RunOnce(env_).ok());
  std::string out;
  EXPECT_EQ(Cli(env_, "accept-restored modern", &out), 0) << out;
  EXPECT_NE(out.find("nothing to accept"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(Cli(env_, "accept-restored legacy", &out), 0) << out;
  EXPECT_NE(out.find("legacy-to-modern: position 6 replaced by 4"), std::string::npos) << out;
  EXPECT_EQ(env_.Count(M, "_tandem_audit WHERE action = 'accept-restored' AND detail LIKE 'legacy-to-modern:%'"), 1);
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (9, 'NINE, N', 'nine@x', 'A', 900);");
  Status st = RunOnce(env_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'nine@x'"), 1);
  EXPECT_EQ(OldFour(), "old.four@x|FOUR|OLD|4.02\n");  // what was in the restored log is taken as reconciled
}

// A copy of the same database with the same history (e.g. compacted with
// VACUUM INTO and renamed into place while no engine ran) syncs on.
TEST_F(RestoreTest, SameDatabaseCopiedIntoPlaceSyncsOn) {
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'ONE, A', 'one@x', 'A', 100);");
  env_.SyncOnce();
  RestoreLegacy(BackUpLegacy());
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (2, 'TWO, B', 'two@x', 'A', 200);");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 2);
}

class RunningRestoreTest : public RestoreTest {
 protected:
  // Starts `tandem run` and waits until a first legacy row has arrived.
  pid_t StartRun() {
    log_ = env_.dir() + "/run.log";
    pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env_.config_path()}, log_);
    Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'ONE, A', 'one@x', 'A', 100);");
    for (int i = 0; i < 500 && env_.Count(M, "customers") < 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(env_.Count(M, "customers"), 1) << ReadLog(log_);
    return pid;
  }
  std::string log_;
};

// Another Tandem-installed database renamed over the legacy path while
// `tandem run` runs: its session still reads the old file. Noticed on the
// next pass, both directions stop, and run exits 1 saying so.
TEST_F(RunningRestoreTest, FileReplacedWhileRunningIsNoticedAndStops) {
  TestEnv other;
  other.Install();
  pid_t pid = StartRun();
  std::filesystem::rename(other.legacy_path(), env_.legacy_path());
  Legacy("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (77, 'NEW, FILE', 'new@x', 'A', 1);");
  const int rc = WaitFor(pid, std::chrono::seconds(10));
  if (rc < 0) {
    kill(pid, SIGKILL);
    testing::Wait(pid);
  }
  EXPECT_EQ(rc, 1) << "tandem run did not stop after its legacy file was replaced:\n" << ReadLog(log_);
  EXPECT_NE(ReadLog(log_).find("another file took the path"), std::string::npos) << ReadLog(log_);
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'new@x'"), 0);
  // Started again, it refuses the other database with what to do.
  Status st = RunOnce(env_);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is not the database Tandem synced"), std::string::npos) << st.message();
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'new@x'"), 0);
}

TEST_F(RunningRestoreTest, FileDeletedWhileRunningIsNoticedAndStops) {
  pid_t pid = StartRun();
  std::filesystem::remove(env_.legacy_path());
  const int rc = WaitFor(pid, std::chrono::seconds(10));
  if (rc < 0) {
    kill(pid, SIGKILL);
    testing::Wait(pid);
  }
  EXPECT_EQ(rc, 1) << "tandem run did not stop after its legacy file was deleted:\n" << ReadLog(log_);
  EXPECT_NE(ReadLog(log_).find("was deleted or moved away"), std::string::npos) << ReadLog(log_);
}

// PostgreSQL: another database behind the same URL (dropped, and created
// again from another Tandem-installed database as its template).
TEST(PgRestoreTest, DifferentDatabaseBehindTheSameUrlIsRefused) {
  TANDEM_REQUIRE_PG();
  TestEnv env("", testing::Backends{true, false, "", ""});
  env.Install();
  env.Write(L, "INSERT INTO \"CUSTMAST\"(\"CUSTNO\", \"CNAME\", \"EMAIL\", \"STAT\", \"BAL_CENTS\") VALUES (1, 'ONE, "
               "A', 'one@x', 'A', 100)");
  env.SyncOnce();
  TestEnv other("", testing::Backends{true, false, "", ""});
  other.Install();
  other.Write(L, "INSERT INTO \"CUSTMAST\"(\"CUSTNO\", \"CNAME\", \"EMAIL\", \"STAT\", \"BAL_CENTS\") VALUES (1, "
                 "'OTHER, X', 'other@x', 'A', 100), (2, 'OTHER, Y', 'other2@x', 'A', 1)");
  std::string error;
  auto admin = testing::PgConnect(*testing::PgBaseUrl() + "/tandem", &error);
  ASSERT_TRUE(admin) << error;
  auto admin_exec = [&](const std::string& sql) {
    testing::PgResultPtr r(PQexec(admin.get(), sql.c_str()));
    ASSERT_TRUE(PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK)
        << PQerrorMessage(admin.get()) << sql;
  };
  const std::string name = env.pg(L)->name(), template_name = other.pg(L)->name();
  admin_exec("DROP DATABASE " + name + " WITH (FORCE)");
  admin_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + template_name + "'");
  admin_exec("CREATE DATABASE " + name + " TEMPLATE " + template_name);
  Status st = RunOnce(env);
  ASSERT_FALSE(st.ok()) << "another database behind the legacy URL went unnoticed";
  EXPECT_NE(st.message().find("is not the database Tandem synced"), std::string::npos) << st.message();
  EXPECT_EQ(env.Count(M, "customers WHERE email LIKE 'other%'"), 0);
  // Accepted by the operator: both directions start from the logs as they are now.
  std::string out;
  ASSERT_EQ(Cli(env, "accept-restored legacy", &out), 0) << out;
  Status again = RunOnce(env);
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(env.Count(M, "customers WHERE email LIKE 'other%'"), 0);  // its log was taken as reconciled
}

}  // namespace
}  // namespace tandem
