// Conflict policies converge (issue 3, guarantee 2). For each policy, rounds
// of: random edits of the same customers on both sides while Tandem is
// stopped (so which edits are concurrent is known exactly), then `tandem run`
// killed with SIGKILL at random moments, restarted, and drained with `run
// --once`. An oracle replays the workload's own log and computes the expected
// final value of every field from the policy's rule (and, for records deleted
// on one side, the primary side's action); both databases must hold exactly
// that, with no record lost or duplicated. For `manual`, every open conflict
// is then resolved with a random side through the CLI first.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "engine/ops/conflict_queue.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

// A customer in legacy terms; records are told apart by CNAME 'R<n>, X' /
// last_name 'R<n>', which the workload never changes.
struct Fields {
  std::string email;
  int64_t cents = 0;
  std::string stat;  // A | I
  bool operator==(const Fields&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Fields& f) { return os << f.email << "|" << f.cents << "|" << f.stat; }

struct PolicyCase {
  const char* name;
  const char* conflicts_yaml;
};

void PrintTo(const PolicyCase& p, std::ostream* os) { *os << p.name; }

class ConflictConvergenceTest : public ::testing::TestWithParam<PolicyCase> {
 protected:
  std::map<int, Fields> Read(Side side) {
    std::vector<Row> rows;
    Status st = side == L ? env_->App(L).Run("SELECT CNAME, EMAIL, BAL_CENTS, STAT FROM CUSTMAST", {}, &rows)
                          : env_->App(M).Run("SELECT last_name, email, CAST(round(balance * 100) AS INTEGER), CASE "
                                             "status WHEN 'active' THEN 'A' ELSE 'I' END FROM customers",
                                             {}, &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::map<int, Fields> out;
    for (auto& r : rows) {
      int id = std::stoi(r[0].as_bytes().substr(1));
      EXPECT_FALSE(out.count(id)) << SideName(side) << " holds record " << id << " twice";
      out[id] = Fields{r[1].as_bytes(), r[2].as_integer(), r[3].as_bytes()};
    }
    return out;
  }
  void Edit(Side side, int id, const Fields& f, int64_t clock) {
    if (side == L)
      env_->Write(L, fmt::format("UPDATE CUSTMAST SET EMAIL = '{}', BAL_CENTS = {}, STAT = '{}', UPDTS = {} WHERE "
                                 "CNAME = 'R{}, X'",
                                 f.email, f.cents, f.stat, clock, id));
    else
      env_->Write(M, fmt::format("UPDATE customers SET email = '{}', balance = {} / 100.0, status = '{}', updated_at "
                                 "= {} WHERE last_name = 'R{}'",
                                 f.email, f.cents, f.stat == "A" ? "active" : "inactive", clock, id));
  }
  void Insert(Side side, int id, const Fields& f) {
    if (side == L)
      env_->Write(L, fmt::format("INSERT INTO CUSTMAST(CNAME, EMAIL, BAL_CENTS, STAT) VALUES ('R{}, X', '{}', {}, "
                                 "'{}')",
                                 id, f.email, f.cents, f.stat));
    else
      env_->Write(M, fmt::format("INSERT INTO customers(id, email, balance, status, first_name, last_name) VALUES "
                                 "('n{}', '{}', {} / 100.0, '{}', 'X', 'R{}')",
                                 id, f.email, f.cents, f.stat == "A" ? "active" : "inactive", id));
  }
  void SyncWithKills(std::mt19937_64& rng, int kills) {
    const std::string log = env_->dir() + "/tandem.log";
    for (int k = 0; k < kills; ++k) {
      pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "-c", env_->config_path(), "--log-level", "warn"}, log);
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 150));  // a random kill point
      kill(pid, SIGKILL);
      ASSERT_EQ(testing::Wait(pid), 128 + SIGKILL) << testing::ReadFile(log);
    }
    pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "--once", "-c", env_->config_path(), "--log-level", "warn"}, log);
    ASSERT_EQ(testing::Wait(pid), 0) << testing::ReadFile(log);
  }
  std::unique_ptr<TestEnv> env_;
};

TEST_P(ConflictConvergenceTest, RandomConcurrentEditsWithKillsEndAsThePolicySays) {
  const PolicyCase& pc = GetParam();
  env_ = std::make_unique<TestEnv>(testing::ExampleConfigWithCustomerConflicts(pc.conflicts_yaml));
  env_->Write(L, "ALTER TABLE CUSTMAST ADD COLUMN UPDTS INTEGER");
  env_->Write(M, "ALTER TABLE customers ADD COLUMN updated_at INTEGER");
  env_->Install();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(fmt::format("policy {} seed {}", pc.name, seed));
  std::mt19937_64 rng(seed);
  const std::string policy = pc.name;

  std::map<int, Fields> agreed;  // what both sides hold at the start of a round
  int next_id = 1;
  for (; next_id <= 60; ++next_id) {
    Fields f{fmt::format("init{}@x", next_id), static_cast<int64_t>(rng() % 100000), rng() % 2 ? "A" : "I"};
    Insert(L, next_id, f);
    agreed[next_id] = f;
  }
  SyncWithKills(rng, 0);
  ASSERT_EQ(Read(L), agreed);
  ASSERT_EQ(Read(M), agreed);

  int64_t clock = 0;
  int conflicts_seen = 0;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    // 1. Concurrent edits, logged per side: final values and the time of the last edit.
    std::map<int, Fields> side_now[2] = {agreed, agreed};
    std::map<int, int64_t> last_edit[2];
    std::set<int> deleted[2];
    for (int e = 0; e < 150; ++e) {
      Side side = rng() % 2 ? L : M;
      auto& mine = side_now[side == L ? 0 : 1];
      auto& gone = deleted[side == L ? 0 : 1];
      if (rng() % 25 == 0) {  // a delete, on one side only
        int id = static_cast<int>(1 + rng() % (next_id - 1));
        if (!mine.count(id) || gone.count(id)) continue;
        env_->Write(side, side == L ? fmt::format("DELETE FROM CUSTMAST WHERE CNAME = 'R{}, X'", id)
                                    : fmt::format("DELETE FROM customers WHERE last_name = 'R{}'", id));
        gone.insert(id);
        continue;
      }
      if (rng() % 20 == 0) {  // a new record, on one side only
        int id = next_id++;
        Fields f{fmt::format("new{}@x", id), static_cast<int64_t>(rng() % 100000), rng() % 2 ? "A" : "I"};
        Insert(side, id, f);
        mine[id] = f;
        last_edit[side == L ? 0 : 1][id] = ++clock;
        continue;
      }
      // Mostly a few hot records, so that both sides often edit the same one.
      int id = static_cast<int>(1 + (rng() % 4 ? rng() % 10 : rng() % 60));
      if (!mine.count(id) || gone.count(id)) continue;  // not on this side (new elsewhere, or deleted)
      Fields f = mine[id];
      switch (rng() % 3) {  // one or more fields, sometimes to the same value as the other side
        case 0: f.email = rng() % 4 ? fmt::format("{}{}.{}@x", side == L ? "l" : "m", round, clock) : "same@x"; break;
        case 1: f.cents = static_cast<int64_t>(rng() % 1000); break;
        default: f.stat = rng() % 2 ? "A" : "I"; break;
      }
      if (rng() % 3 == 0) f.cents = static_cast<int64_t>(rng() % 1000);
      Edit(side, id, f, ++clock);
      mine[id] = f;
      last_edit[side == L ? 0 : 1][id] = clock;
    }
    // 2. Sync with crashes.
    SyncWithKills(rng, 2);
    // 3. Manual: a person settles every open conflict, picking a side at random.
    std::map<std::pair<std::string, std::string>, Side> chosen;  // (legacy key, modern key) -> side
    std::map<int, Side> chosen_by_id;
    if (policy == "manual") {
      Config c = env_->LoadConfig();
      auto l = OpenConnector(c.legacy.resolved, {});
      auto m = OpenConnector(c.modern.resolved, {});
      auto open = ListConflicts(**l, **m, ConflictFilter{});
      ASSERT_TRUE(open.ok());
      for (auto& conflict : *open) {
        auto record = std::make_pair(conflict["legacy_key"].get<std::string>(), conflict["modern_key"].get<std::string>());
        if (chosen.count(record)) continue;  // one resolve settles the whole record
        Side take = rng() % 2 ? L : M;
        chosen[record] = take;
        std::string out;
        ASSERT_EQ(testing::RunCommand(fmt::format("{} conflicts resolve {} --take {} -c {}", TANDEM_BINARY,
                                                  conflict["id"].get<std::string>(), SideName(take),
                                                  env_->config_path()),
                                      &out),
                  0)
            << out;
        // Which record: its legacy key is CUSTNO; map it to the record number through CNAME.
        auto row = env_->Query(L, "SELECT CNAME FROM CUSTMAST WHERE CUSTNO = " + record.first);
        chosen_by_id[std::stoi(row.substr(1))] = take;
      }
      conflicts_seen += static_cast<int>(chosen.size());
      SyncWithKills(rng, 1);
    }
    // 4. The oracle: per record and field, from the base and both sides' edits.
    std::map<int, Fields> expected;
    for (auto& [id, lnow] : side_now[0]) expected[id] = lnow;
    for (auto& [id, mnow] : side_now[1])
      if (!expected.count(id)) expected[id] = mnow;
    for (auto& [id, base] : agreed) {
      if (deleted[0].count(id) || deleted[1].count(id)) continue;  // settled by the delete rule below
      const Fields& lv = side_now[0][id];
      const Fields& mv = side_now[1][id];
      auto settle = [&](auto Fields::*field) {
        bool lc = !(lv.*field == base.*field), mc = !(mv.*field == base.*field);
        if (lc && !mc) return lv.*field;
        if (mc && !lc) return mv.*field;
        if (!lc && !mc) return base.*field;
        if (lv.*field == mv.*field) return lv.*field;
        ++conflicts_seen;
        if (policy == "legacy-wins") return lv.*field;
        if (policy == "modern-wins" || policy == "merge") return mv.*field;  // merge falls back to modern
        if (policy == "newest") return last_edit[0][id] > last_edit[1][id] ? lv.*field : mv.*field;
        EXPECT_TRUE(chosen_by_id.count(id)) << "record " << id << " conflicted but no open conflict was listed";
        return chosen_by_id[id] == L ? lv.*field : mv.*field;
      };
      expected[id] = Fields{settle(&Fields::email), settle(&Fields::cents), settle(&Fields::stat)};
    }
    // Deletes (on_delete unset: the primary side, legacy, wins a delete against an update).
    for (int id = 1; id < next_id; ++id) {
      bool ld = deleted[0].count(id) > 0, md = deleted[1].count(id) > 0;
      if (!ld && !md) continue;
      bool l_updated = agreed.count(id) && side_now[0].count(id) && !(side_now[0][id] == agreed[id]);
      if (md && !ld && l_updated) {
        expected[id] = side_now[0][id];  // legacy's update wins: re-created on modern
        conflicts_seen++;
      } else {
        expected.erase(id);
      }
    }
    auto legacy = Read(L), modern = Read(M);
    EXPECT_EQ(legacy.size(), expected.size());
    EXPECT_EQ(modern.size(), expected.size());
    for (auto& [id, want] : expected) {
      EXPECT_EQ(legacy[id], want) << "legacy record " << id;
      EXPECT_EQ(modern[id], want) << "modern record " << id;
    }
    if (HasFailure()) return;
    agreed = expected;
  }
  EXPECT_GT(conflicts_seen, 0) << "the workload should produce conflicts";
  // Nothing left behind: no open conflicts, nothing put aside.
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
  EXPECT_EQ(env_->Count(L, "_tandem_conflicts WHERE status = 'open'") +
                env_->Count(M, "_tandem_conflicts WHERE status = 'open'"),
            0);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, ConflictConvergenceTest,
    ::testing::Values(PolicyCase{"merge", "    conflicts: { default: merge, fallback: modern-wins }\n"},
                      PolicyCase{"legacy-wins", "    conflicts: { default: legacy-wins }\n"},
                      PolicyCase{"modern-wins", "    conflicts: { default: modern-wins }\n"},
                      PolicyCase{"newest", "    conflicts: { default: newest, newest_by: { legacy: UPDTS, modern: "
                                           "updated_at } }\n"},
                      PolicyCase{"manual", "    conflicts: { default: manual }\n"}),
    [](const ::testing::TestParamInfo<PolicyCase>& info) {
      std::string n = info.param.name;
      for (auto& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

}  // namespace
}  // namespace tandem
