// Crash test: `tandem run` is killed with SIGKILL at random moments, again and
// again, while a random two-sided workload writes both databases through its
// own connections. After the workload stops, one `tandem run --once` must
// bring both sides to the same state through the mapping, with nothing lost
// and nothing applied twice (no duplicate records with fresh keys).
//
// The oracle is independent of Tandem's own bookkeeping: every record carries
// a unique email tag that the workload never changes, and the workload's own
// log says which tags were created and deleted on which side.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/pg_test_server.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::Backends;
using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

struct Customer {
  std::string first, last, status;
  int64_t cents;
  bool operator==(const Customer& o) const {
    return first == o.first && last == o.last && status == o.status && cents == o.cents;
  }
};

// Legacy names are quoted uppercase on PostgreSQL (examples/postgres/).
std::string LegacyName(TestEnv& env, const std::string& name) { return env.pg(L) ? "\"" + name + "\"" : name; }

std::map<std::string, Customer> ReadLegacy(TestEnv& env, std::multiset<std::string>* emails) {
  std::vector<Row> rows;
  auto q = [&](const char* n) { return LegacyName(env, n); };
  Status st = env.AppDb(L).Query(fmt::format("SELECT {}, {}, {}, {} FROM {}", q("EMAIL"), q("CNAME"), q("STAT"),
                                             q("BAL_CENTS"), q("CUSTMAST")),
                                 {}, &rows);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::map<std::string, Customer> out;
  for (auto& r : rows) {
    std::string cname = r[1].as_bytes();
    auto comma = cname.find(',');
    Customer c{cname.substr(comma + 2), cname.substr(0, comma), r[2].as_bytes() == "A" ? "active" : "inactive",
               r[3].as_integer()};
    emails->insert(r[0].as_bytes());
    out[r[0].as_bytes()] = c;
  }
  return out;
}

std::map<std::string, Customer> ReadModern(TestEnv& env, std::multiset<std::string>* emails) {
  std::vector<Row> rows;
  Status st = env.AppDb(M).Query("SELECT email, first_name, last_name, status, balance FROM customers", {}, &rows);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::map<std::string, Customer> out;
  for (auto& r : rows) {
    double balance = r[4].type() == ValueType::kInteger ? static_cast<double>(r[4].as_integer()) : r[4].as_real();
    Customer c{r[1].as_bytes(), r[2].as_bytes(), r[3].as_bytes(), std::llround(balance * 100)};
    emails->insert(r[0].as_bytes());
    out[r[0].as_bytes()] = c;
  }
  return out;
}

// The random workload: transactions of 1-4 operations on one side at a time,
// through each side's own application connection. A transaction the
// database refuses (PostgreSQL: a deadlock with Tandem's batch, the server
// going away) is rolled back and forgotten; one whose COMMIT got no answer
// may or may not have happened, so its records are "uncertain".
class Workload {
 public:
  Workload(TestEnv& env, uint64_t seed) : env_(env), rng_(seed) {}

  // Returns false when the database refused the transaction (SQLite never should).
  bool Step() {
    Side side = Pick(2) ? L : M;
    Connector& db = env_.AppDb(side);
    pending_created_.clear();
    pending_deleted_.clear();
    Status st = db.BeginWrite();
    int ops = 1 + Pick(4);
    for (int i = 0; i < ops && st.ok(); ++i) st = db.Exec(Op(side), {}, nullptr);
    if (!st.ok()) {
      db.RollbackApply();
      if (!env_.pg(side)) ADD_FAILURE() << "workload write failed: " << st.ToString();
      return false;
    }
    st = db.Commit();
    if (!st.ok()) {
      // No answer to COMMIT: it may have happened.
      uncertain_.insert(pending_created_.begin(), pending_created_.end());
      uncertain_.insert(pending_deleted_.begin(), pending_deleted_.end());
      if (!env_.pg(side)) ADD_FAILURE() << "workload commit failed: " << st.ToString();
      return false;
    }
    created_.insert(pending_created_.begin(), pending_created_.end());
    deleted_.insert(pending_deleted_.begin(), pending_deleted_.end());
    return true;
  }

  const std::set<std::string>& deleted() const { return deleted_; }
  const std::set<std::string>& created() const { return created_; }
  const std::set<std::string>& uncertain() const { return uncertain_; }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  std::string Q(const char* name) { return LegacyName(env_, name); }

  // A random existing tag on `side` (read in the workload's own connection).
  std::string Existing(Side side) {
    std::vector<Row> rows;
    std::string sql = side == L ? fmt::format("SELECT {} FROM {} ORDER BY random() LIMIT 1", Q("EMAIL"), Q("CUSTMAST"))
                                : "SELECT email FROM customers ORDER BY random() LIMIT 1";
    (void)env_.AppDb(side).Query(sql, {}, &rows);
    return rows.empty() ? "" : rows[0][0].as_bytes();
  }

  std::string Op(Side side) {
    int kind = Pick(10);
    std::string tag = Existing(side);
    if (kind < 4 || tag.empty()) {  // insert
      std::string email = fmt::format("{}-{}@t", side == L ? "L" : "M", ++counter_);
      pending_created_.insert(email);
      int64_t cents = Pick(1000000);
      if (side == L)
        return fmt::format("INSERT INTO {}({}, {}, {}, {}) VALUES ('LAST{}, FIRST{}', '{}', '{}', {})", Q("CUSTMAST"),
                           Q("CNAME"), Q("EMAIL"), Q("STAT"), Q("BAL_CENTS"), counter_, counter_, email,
                           Pick(2) ? "A" : "I", cents);
      std::string id = env_.pg(M) ? fmt::format("00000000-0000-4000-8000-{:012d}", counter_) : email;
      return fmt::format("INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES ('{0}', "
                         "'{1}', '{2}', {3}.{4:02d}, 'FIRST{5}', 'LAST{5}')",
                         id, email, Pick(2) ? "active" : "inactive", cents / 100, cents % 100, counter_);
    }
    if (kind < 9) {  // update one or two fields
      int64_t cents = Pick(1000000);
      if (side == L) {
        const std::string where = fmt::format(" WHERE {} = '{}'", Q("EMAIL"), tag);
        switch (Pick(3)) {
          case 0: return fmt::format("UPDATE {} SET {} = {}", Q("CUSTMAST"), Q("BAL_CENTS"), cents) + where;
          case 1: return fmt::format("UPDATE {} SET {} = '{}'", Q("CUSTMAST"), Q("STAT"), Pick(2) ? "A" : "I") + where;
          default:
            return fmt::format("UPDATE {} SET {} = 'L{}, F{}', {} = {}", Q("CUSTMAST"), Q("CNAME"), Pick(1000),
                               Pick(1000), Q("BAL_CENTS"), cents) +
                   where;
        }
      }
      switch (Pick(3)) {
        case 0:
          return fmt::format("UPDATE customers SET balance = {}.{:02d} WHERE email = '{}'", cents / 100, cents % 100,
                             tag);
        case 1:
          return fmt::format("UPDATE customers SET status = '{}' WHERE email = '{}'", Pick(2) ? "active" : "inactive",
                             tag);
        default: return fmt::format("UPDATE customers SET first_name = 'F{}' WHERE email = '{}'", Pick(1000), tag);
      }
    }
    pending_deleted_.insert(tag);  // delete
    return side == L ? fmt::format("DELETE FROM {} WHERE {} = '{}'", Q("CUSTMAST"), Q("EMAIL"), tag)
                     : fmt::format("DELETE FROM customers WHERE email = '{}'", tag);
  }

  TestEnv& env_;
  std::mt19937_64 rng_;
  int counter_ = 0;
  std::set<std::string> created_, deleted_, uncertain_, pending_created_, pending_deleted_;
};

// After quiescence: both sides hold the same records with the same values
// through the mapping, none twice, none lost, nothing pending.
void ExpectConverged(TestEnv& env, const Workload& workload) {
  std::multiset<std::string> legacy_emails, modern_emails;
  auto legacy = ReadLegacy(env, &legacy_emails);
  auto modern = ReadModern(env, &modern_emails);
  // Nothing applied twice: no record exists twice on either side.
  EXPECT_EQ(legacy_emails.size(), legacy.size()) << "duplicate records on legacy";
  EXPECT_EQ(modern_emails.size(), modern.size()) << "duplicate records on modern";
  EXPECT_EQ(legacy.size(), modern.size());
  int mismatches = 0;
  for (auto& [email, c] : legacy) {
    auto it = modern.find(email);
    if (it == modern.end()) {
      ADD_FAILURE() << email << " is on legacy only";
    } else if (!(it->second == c) && ++mismatches <= 5) {
      ADD_FAILURE() << email << " differs: legacy " << c.last << ", " << c.first << " " << c.status << " " << c.cents
                    << " / modern " << it->second.last << ", " << it->second.first << " " << it->second.status << " "
                    << it->second.cents;
    }
  }
  for (auto& [email, c] : modern)
    if (!legacy.count(email)) ADD_FAILURE() << email << " is on modern only";
  // Nothing lost: every record created and never deleted by the workload exists.
  int lost = 0;
  for (auto& email : workload.created())
    if (!workload.deleted().count(email) && !workload.uncertain().count(email) && !legacy.count(email) && ++lost <= 5)
      ADD_FAILURE() << email << " was lost";
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(env.Count(L, "_tandem_parked") + env.Count(M, "_tandem_parked"), 0);
  std::cout << "records created: " << workload.created().size() << ", deleted: " << workload.deleted().size()
            << ", uncertain: " << workload.uncertain().size() << ", final: " << legacy.size() << "\n";
}

using Pair = testing::SystemsPair;

class CrashTest : public ::testing::TestWithParam<Pair> {
 protected:
  bool any_pg() const { return GetParam().any_pg(); }
};

TEST_P(CrashTest, RepeatedKillNineUnderTwoSidedWorkloadConvergesExactly) {
  if (any_pg()) TANDEM_REQUIRE_PG();
  TestEnv env("", GetParam().backends());
  env.Install();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Workload workload(env, seed);
  const std::string log = env.dir() + "/tandem.log";
  const std::vector<std::string> run = {TANDEM_BINARY, "run", "-c", env.config_path(), "--log-level", "warn"};

  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) (void)workload.Step();
  });
  int kills = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(any_pg() ? 12 : 20);
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t pid = testing::Spawn(run, log);
    // Let it work for a random while, then pull the plug at whatever point it is.
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
    kill(pid, SIGKILL);
    EXPECT_EQ(testing::Wait(pid), 128 + SIGKILL) << testing::ReadFile(log);
    ++kills;
  }
  stop = true;
  writer.join();

  // Quiescence: one run drains everything both ways.
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "--once", "-c", env.config_path(), "--log-level", "warn"}, log);
  ASSERT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  ExpectConverged(env, workload);
  std::cout << "kills: " << kills << "\n";
  EXPECT_GE(kills, 10);
  EXPECT_GT(workload.created().size(), 100u);
}

INSTANTIATE_TEST_SUITE_P(Sides, CrashTest,
                         ::testing::Values(Pair{"SqliteToSqlite", false, false}, Pair{"PgToPg", true, true},
                                           Pair{"SqliteToPg", false, true}),
                         testing::SystemsPairName);

// Tandem's own PostgreSQL sessions are cut (pg_terminate_backend) at random
// moments while it applies batches under a two-sided workload: a batch whose
// connection is lost is either wholly applied with its position or not at
// all (a COMMIT without an answer is settled by the position stored with the
// data), and `tandem run` reconnects on its own.
TEST(PgConnectionCutTest, LostConnectionsMidBatchLoseAndDuplicateNothing) {
  TANDEM_REQUIRE_PG();
  TestEnv env("", Backends{true, true, "", ""});
  env.Install();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Workload workload(env, seed);
  const std::string log = env.dir() + "/tandem.log";
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path(), "--log-level", "warn"}, log);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) (void)workload.Step();
  });
  std::string error;
  auto admin = testing::PgConnect(*testing::PgBaseUrl() + "/postgres", &error);
  ASSERT_TRUE(admin) << error;
  const std::string cut = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
                          "'tandem' AND datname IN ('" + env.pg(L)->name() + "', '" + env.pg(M)->name() + "')";
  int64_t cuts = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 300));
    testing::PgResultPtr r(PQexec(admin.get(), cut.c_str()));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(admin.get());
    cuts += std::atoll(PQgetvalue(r.get(), 0, 0));
  }
  stop = true;
  writer.join();
  EXPECT_TRUE(env.WaitUntilCaughtUp(std::chrono::seconds(60)));
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "tandem run exited: " << testing::ReadFile(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  ExpectConverged(env, workload);
  std::cout << "sessions cut: " << cuts << "\n";
  EXPECT_GE(cuts, 10);
}

// The PostgreSQL server stopped and started (fast shutdown: every session is
// cut, transactions in flight are lost) while `tandem run` works under a
// two-sided workload: Tandem retries with backoff, resumes, and loses and
// duplicates nothing.
TEST(PgRestartSerialTest, ServerRestartsDuringRunLoseAndDuplicateNothing) {
  TANDEM_REQUIRE_PG();
  TestEnv env("", Backends{true, true, "", ""});
  env.Install();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Workload workload(env, seed);
  const std::string log = env.dir() + "/tandem.log";
  // Started while the server is down: it waits for it.
  ASSERT_TRUE(testing::PgClusterStop());
  pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env.config_path(), "--log-level", "warn"}, log);
  ASSERT_TRUE(testing::PgClusterStart());
  // A workload step per round: writes while the server is up, refused while it is down.
  int committed = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 150; ++i) committed += workload.Step() ? 1 : 0;
    ASSERT_TRUE(testing::PgClusterStop());
    EXPECT_FALSE(workload.Step()) << "the server is down";
    ASSERT_TRUE(testing::PgClusterStart());
  }
  for (int i = 0; i < 150; ++i) committed += workload.Step() ? 1 : 0;
  // Tandem is still running (it retried) and catches up on its own.
  EXPECT_TRUE(env.WaitUntilCaughtUp(std::chrono::seconds(60)));
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "tandem run exited: " << testing::ReadFile(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  ExpectConverged(env, workload);
  EXPECT_GT(committed, 400);
  const std::string out = testing::ReadFile(log);
  EXPECT_NE(out.find("retrying in"), std::string::npos) << "the outage was noticed and retried:\n" << out;
}

}  // namespace
}  // namespace tandem
