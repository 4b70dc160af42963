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

#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

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

std::map<std::string, Customer> ReadLegacy(TestEnv& env, std::multiset<std::string>* emails) {
  std::vector<Row> rows;
  EXPECT_TRUE(env.App(L).Run("SELECT EMAIL, CNAME, STAT, BAL_CENTS FROM CUSTMAST", {}, &rows).ok());
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
  EXPECT_TRUE(env.App(M).Run("SELECT email, first_name, last_name, status, balance FROM customers", {}, &rows).ok());
  std::map<std::string, Customer> out;
  for (auto& r : rows) {
    double balance = r[4].type() == ValueType::kInteger ? static_cast<double>(r[4].as_integer()) : r[4].as_real();
    Customer c{r[1].as_bytes(), r[2].as_bytes(), r[3].as_bytes(), std::llround(balance * 100)};
    emails->insert(r[0].as_bytes());
    out[r[0].as_bytes()] = c;
  }
  return out;
}

// The random workload: transactions of 1-4 operations on one side at a time.
class Workload {
 public:
  Workload(TestEnv& env, uint64_t seed) : env_(env), rng_(seed) {}

  void Step() {
    Side side = Pick(2) ? L : M;
    std::string sql = "BEGIN IMMEDIATE;";
    int ops = 1 + Pick(4);
    for (int i = 0; i < ops; ++i) sql += Op(side);
    Status st = env_.App(side).ExecScript(sql + "COMMIT;");
    if (!st.ok()) {
      env_.App(side).ExecScript("ROLLBACK;");
      ADD_FAILURE() << "workload write failed: " << st.ToString();
    }
  }

  const std::set<std::string>& deleted() const { return deleted_; }
  const std::set<std::string>& created() const { return created_; }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }

  // A random existing tag on `side` (read in the workload's own connection).
  std::string Existing(Side side) {
    std::vector<Row> rows;
    const char* sql = side == L ? "SELECT EMAIL FROM CUSTMAST ORDER BY random() LIMIT 1"
                                : "SELECT email FROM customers ORDER BY random() LIMIT 1";
    env_.App(side).Run(sql, {}, &rows);
    return rows.empty() ? "" : rows[0][0].as_bytes();
  }

  std::string Op(Side side) {
    int kind = Pick(10);
    std::string tag = Existing(side);
    if (kind < 4 || tag.empty()) {  // insert
      std::string email = fmt::format("{}-{}@t", side == L ? "L" : "M", ++counter_);
      created_.insert(email);
      int64_t cents = Pick(1000000);
      if (side == L)
        return fmt::format("INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('LAST{0}, FIRST{0}', '{1}', "
                           "'{2}', {3});",
                           counter_, email, Pick(2) ? "A" : "I", cents);
      return fmt::format("INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES ('{0}', "
                         "'{0}', '{1}', {2}.{3:02d}, 'FIRST{4}', 'LAST{4}');",
                         email, Pick(2) ? "active" : "inactive", cents / 100, cents % 100, counter_);
    }
    if (kind < 9) {  // update one or two fields
      int64_t cents = Pick(1000000);
      if (side == L) {
        switch (Pick(3)) {
          case 0: return fmt::format("UPDATE CUSTMAST SET BAL_CENTS = {} WHERE EMAIL = '{}';", cents, tag);
          case 1: return fmt::format("UPDATE CUSTMAST SET STAT = '{}' WHERE EMAIL = '{}';", Pick(2) ? "A" : "I", tag);
          default:
            return fmt::format("UPDATE CUSTMAST SET CNAME = 'L{0}, F{0}', BAL_CENTS = {1} WHERE EMAIL = '{2}';",
                               Pick(1000), cents, tag);
        }
      }
      switch (Pick(3)) {
        case 0: return fmt::format("UPDATE customers SET balance = {}.{:02d} WHERE email = '{}';", cents / 100, cents % 100, tag);
        case 1:
          return fmt::format("UPDATE customers SET status = '{}' WHERE email = '{}';", Pick(2) ? "active" : "inactive", tag);
        default: return fmt::format("UPDATE customers SET first_name = 'F{}' WHERE email = '{}';", Pick(1000), tag);
      }
    }
    deleted_.insert(tag);  // delete
    return side == L ? fmt::format("DELETE FROM CUSTMAST WHERE EMAIL = '{}';", tag)
                     : fmt::format("DELETE FROM customers WHERE email = '{}';", tag);
  }

  TestEnv& env_;
  std::mt19937_64 rng_;
  int counter_ = 0;
  std::set<std::string> created_, deleted_;
};

TEST(CrashTest, RepeatedKillNineUnderTwoSidedWorkloadConvergesExactly) {
  TestEnv env;
  env.Install();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Workload workload(env, seed);
  const std::string log = env.dir() + "/tandem.log";
  const std::vector<std::string> run = {TANDEM_BINARY, "run", "-c", env.config_path(), "--log-level", "warn"};

  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) workload.Step();
  });
  int kills = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
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

  std::multiset<std::string> legacy_emails, modern_emails;
  auto legacy = ReadLegacy(env, &legacy_emails);
  auto modern = ReadModern(env, &modern_emails);
  // Nothing applied twice: no record exists twice on either side.
  EXPECT_EQ(legacy_emails.size(), legacy.size()) << "duplicate records on legacy";
  EXPECT_EQ(modern_emails.size(), modern.size()) << "duplicate records on modern";
  // Both sides hold the same records with the same values through the mapping.
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
    if (!workload.deleted().count(email) && !legacy.count(email) && ++lost <= 5) ADD_FAILURE() << email << " was lost";
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(lost, 0);
  // And nothing is left pending or put aside.
  EXPECT_EQ(env.Count(L, "_tandem_parked") + env.Count(M, "_tandem_parked"), 0);
  std::cout << "kills: " << kills << ", records created: " << workload.created().size()
            << ", deleted: " << workload.deleted().size() << ", final: " << legacy.size() << "\n";
  EXPECT_GE(kills, 10);
  EXPECT_GT(workload.created().size(), 100u);
}

}  // namespace
}  // namespace tandem
