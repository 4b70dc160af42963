// PostgreSQL for tests: the private server scripts/test.sh starts with
// scripts/pg-cluster.sh (a real server, reached through libpq; no mocks), a
// fresh database per test on it, and stopping/starting it for fault tests.
//
// scripts/test.sh exports TANDEM_TEST_PG_URL, the server's base URL without a
// database ("postgresql://tandem@127.0.0.1:PORT"; role `tandem` is a
// superuser), and TANDEM_TEST_PG_DIR, the cluster's folder. To run one test
// binary by hand: `scripts/pg-cluster.sh start DIR` prints the URL; export
// both variables; `scripts/pg-cluster.sh stop DIR` when done.
//
//   TEST(PgSomethingTest, Behaviour) {
//     TANDEM_REQUIRE_PG();
//     testing::PgTestDatabase db;
//     db.Exec("CREATE TABLE t(id int PRIMARY KEY, name text)");
//     ... point Tandem at db.url() ...
//     EXPECT_EQ(db.Query("SELECT id, name FROM t ORDER BY id"), "1|a\n2|NULL\n");
//   }
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "support/process.h"

namespace tandem::testing {

// The test server's base URL (TANDEM_TEST_PG_URL), or nullopt when there is none.
inline std::optional<std::string> PgBaseUrl() {
  const char* url = getenv("TANDEM_TEST_PG_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

inline bool RunningInCi() {
  const char* ci = getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

inline constexpr const char* kNoPgTestServer =
    "no PostgreSQL test server: TANDEM_TEST_PG_URL is unset. scripts/test.sh starts one; by hand, run "
    "`scripts/pg-cluster.sh start DIR` and export TANDEM_TEST_PG_URL=<the URL it prints> TANDEM_TEST_PG_DIR=DIR";

// First statement of a test (or SetUp) that needs the PostgreSQL test server:
// skips the test when there is none, or fails it when CI=true, so CI can never
// skip PostgreSQL tests silently.
#define TANDEM_REQUIRE_PG()                                                    \
  do {                                                                         \
    if (!::tandem::testing::PgBaseUrl()) {                                     \
      if (::tandem::testing::RunningInCi()) {                                  \
        GTEST_FAIL() << ::tandem::testing::kNoPgTestServer << " (CI=true)";    \
      }                                                                        \
      GTEST_SKIP() << ::tandem::testing::kNoPgTestServer;                      \
    }                                                                          \
  } while (0)

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultClearer {
  void operator()(PGresult* res) const { PQclear(res); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnCloser>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultClearer>;

// A connection to `url`; on failure, nullptr and the reason in *error.
inline PgConnPtr PgConnect(const std::string& url, std::string* error) {
  PgConnPtr conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) == CONNECTION_OK) return conn;
  *error = "cannot connect to " + url + ": " + PQerrorMessage(conn.get());
  return nullptr;
}

// A fresh, uniquely named database on the test server (CREATE DATABASE from
// template1), dropped WITH (FORCE) when this object is destroyed -- unless
// TANDEM_KEEP_TEST_DIRS is set, as TestEnv keeps its folder.
// Exec() and Query() share one session of their own; when the server was
// restarted since (PgClusterStop/Start) it is reopened first.
// Failures are gtest failures naming the database and the server's message:
// fatal in Exec() (use ASSERT_NO_FATAL_FAILURE to stop the test), non-fatal
// elsewhere. Not thread-safe: use it from the test's thread.
class PgTestDatabase {
 public:
  // `base_url`: a URL like TANDEM_TEST_PG_URL's (no database, no parameters)
  // of a server that is up; the default is TANDEM_TEST_PG_URL. Without one
  // nothing is created and Exec()/Query() fail, so a fixture may hold this as
  // a member and call TANDEM_REQUIRE_PG() in SetUp().
  explicit PgTestDatabase(std::string base_url = PgBaseUrl().value_or("")) : base_url_(std::move(base_url)) {
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
    if (base_url_.empty()) return;
    name_ = UniqueName();
    url_ = base_url_ + "/" + name_;
    created_ = AdminExec("CREATE DATABASE " + name_);
  }
  ~PgTestDatabase() {
    session_.reset();
    if (created_ && !getenv("TANDEM_KEEP_TEST_DIRS")) AdminExec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  PgTestDatabase(const PgTestDatabase&) = delete;
  PgTestDatabase& operator=(const PgTestDatabase&) = delete;

  // "tandem_test_<pid>_<n>_<random>": a plain identifier, no quoting needed.
  const std::string& name() const { return name_; }
  // "postgresql://tandem@127.0.0.1:PORT/<name>".
  const std::string& url() const { return url_; }

  // Runs `sql`, one or more statements separated by ';' (no parameters).
  void Exec(const std::string& sql) {
    PgResultPtr res = Run(sql);
    if (res == nullptr) FAIL() << last_error_;
  }

  // Runs `sql` and returns the rows of its last statement rendered as
  // TestEnv::Query does: columns (PostgreSQL's text form) joined by '|', NULL
  // as "NULL", each row ending in '\n'. "" for no rows or on failure.
  std::string Query(const std::string& sql) {
    PgResultPtr res = Run(sql);
    if (res == nullptr) {
      ADD_FAILURE() << last_error_;
      return "";
    }
    std::string out;
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      for (int c = 0; c < PQnfields(res.get()); ++c) {
        if (c > 0) out += "|";
        out += PQgetisnull(res.get(), r, c) ? "NULL" : PQgetvalue(res.get(), r, c);
      }
      out += "\n";
    }
    return out;
  }

 private:
  static std::string UniqueName() {
    static std::atomic<int> counter{0};
    char name[64];
    snprintf(name, sizeof name, "tandem_test_%d_%d_%08x", static_cast<int>(getpid()), counter++,
             static_cast<unsigned>(std::random_device()()));
    return name;
  }

  // False when the server ended `conn` while it was idle (it was stopped
  // since): its goodbye and EOF are waiting on the socket. Reads do not block.
  static bool IdleSessionAlive(PGconn* conn) {
    for (int read = 0; read < 2; ++read) {  // the first read may only get the server's FATAL message
      if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) return false;
    }
    return true;
  }

  // `sql` on the session (opened or reopened as needed); nullptr and
  // last_error_ set on failure.
  PgResultPtr Run(const std::string& sql) {
    if (url_.empty()) {
      last_error_ = std::string("PgTestDatabase: ") + kNoPgTestServer + "; start the test with TANDEM_REQUIRE_PG()";
      return nullptr;
    }
    if (session_ != nullptr && !IdleSessionAlive(session_.get())) session_.reset();
    if (session_ == nullptr) {
      session_ = PgConnect(url_, &last_error_);
      if (session_ == nullptr) return nullptr;
    }
    PgResultPtr res(PQexec(session_.get(), sql.c_str()));
    ExecStatusType status = PQresultStatus(res.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) return res;
    last_error_ = "SQL failed on " + url_ + ": " + PQerrorMessage(session_.get()) + "SQL: " + sql;
    return nullptr;
  }

  // `sql` on a new connection to the `postgres` database; false and a test
  // failure when it fails.
  bool AdminExec(const std::string& sql) {
    std::string error;
    PgConnPtr conn = PgConnect(base_url_ + "/postgres", &error);
    if (conn == nullptr) {
      ADD_FAILURE() << "PgTestDatabase: " << error;
      return false;
    }
    PgResultPtr res(PQexec(conn.get(), sql.c_str()));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      ADD_FAILURE() << "PgTestDatabase: " << sql << ": " << PQerrorMessage(conn.get());
      return false;
    }
    return true;
  }

  std::string base_url_;
  std::string name_;
  std::string url_;
  bool created_ = false;
  PgConnPtr session_;
  std::string last_error_;
};

// `scripts/pg-cluster.sh CMD $TANDEM_TEST_PG_DIR`, its output in the failure message.
inline ::testing::AssertionResult RunPgClusterScript(const std::string& cmd) {
  const char* dir = getenv("TANDEM_TEST_PG_DIR");
  if (dir == nullptr || *dir == '\0') {
    return ::testing::AssertionFailure() << "TANDEM_TEST_PG_DIR is unset: no test server to " << cmd;
  }
  std::string quoted_dir = "'";
  for (const char* p = dir; *p != '\0'; ++p) quoted_dir += *p == '\'' ? std::string("'\\''") : std::string(1, *p);
  quoted_dir += "'";
  std::string line = std::string(TANDEM_SOURCE_DIR) + "/scripts/pg-cluster.sh " + cmd + " " + quoted_dir;
  std::string output;
  int rc = RunCommand(line, &output);
  if (rc != 0) return ::testing::AssertionFailure() << line << " exited with " << rc << ":\n" << output;
  return ::testing::AssertionSuccess();
}

// Stop (fast shutdown: open sessions are cut) and start the test server; it
// keeps its data and URL. Returns once done; use as ASSERT_TRUE(PgClusterStop()).
// Stopping disturbs every test using the server meanwhile, so tests calling
// these belong to a test suite named *SerialTest: tests/CMakeLists.txt runs
// those alone (ctest RUN_SERIAL).
inline ::testing::AssertionResult PgClusterStop() { return RunPgClusterScript("stop"); }
inline ::testing::AssertionResult PgClusterStart() { return RunPgClusterScript("start"); }

// Keeps the test server stopped for its lifetime and starts it again when
// destroyed, also when the test fails in between, so later tests find it up.
class PgClusterStoppedScope {
 public:
  PgClusterStoppedScope() { EXPECT_TRUE(PgClusterStop()); }
  ~PgClusterStoppedScope() { EXPECT_TRUE(PgClusterStart()); }
  PgClusterStoppedScope(const PgClusterStoppedScope&) = delete;
  PgClusterStoppedScope& operator=(const PgClusterStoppedScope&) = delete;
};

}  // namespace tandem::testing
