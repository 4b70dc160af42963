// Bounded target transactions (issue 12, point 5): a source transaction
// larger than sync.max_txn_changes is applied in several target
// transactions, each committed with its exact position (on PostgreSQL a
// position inside a change window, with its cursor), so a restart between
// them goes on where the last one ended: every row arrives exactly once.
// split_transactions: false keeps the source transaction whole.
#include <gtest/gtest.h>

#include "support/pg_test_server.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::SystemsPair;
using testing::TestEnv;

constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

std::string Config(const std::string& sync) {
  return testing::kExampleSystemsYaml + R"YAML(  item:
    legacy: { table: ITEM, key: ID, new_keys: same }
    modern: { table: item, key: id, new_keys: same }
    fields: { label: LABEL }
)YAML" + sync;
}

class BoundedTxnTest : public ::testing::TestWithParam<SystemsPair> {
 protected:
  void SetUp() override {
    if (GetParam().any_pg()) TANDEM_REQUIRE_PG();
  }
  std::unique_ptr<TestEnv> Env(const std::string& sync) {
    testing::Backends b = GetParam().backends();
    b.legacy_schema = std::string("CREATE TABLE ") + (GetParam().legacy_pg ? "\"ITEM\"(\"ID\"" : "ITEM(ID") +
                      " bigint PRIMARY KEY, " + (GetParam().legacy_pg ? "\"LABEL\"" : "LABEL") + " text)";
    b.modern_schema = "CREATE TABLE item(id bigint PRIMARY KEY, label text)";
    auto env = std::make_unique<TestEnv>(Config(sync), b);
    env->Install();
    return env;
  }
  std::string Item(Side s) const {
    return s == L && GetParam().legacy_pg ? "\"ITEM\"" : s == L ? "ITEM" : "item";
  }
  // One source transaction of `n` inserts on legacy (a source statement of n rows).
  void WriteOneTransaction(TestEnv& env, int n) {
    const bool pg = GetParam().legacy_pg;
    env.Write(L, "INSERT INTO " + Item(L) + " SELECT x, 'v' || x FROM " +
                     (pg ? "generate_series(1, " + std::to_string(n) + ") x"
                         : "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < " +
                               std::to_string(n) + ") SELECT x FROM s)"));
  }
};

TEST_P(BoundedTxnTest, ALargeSourceTransactionIsSplitAndResumesExactlyAfterARestart) {
  auto env = Env("sync: { max_txn_changes: 100 }\n");
  WriteOneTransaction(*env, 1000);
  {
    auto engine = SyncEngine::Open(env->LoadConfig());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto n = (*engine)->DrainOnce();  // one target transaction per direction
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 100);
    EXPECT_EQ(env->Count(M, "item"), 100) << "the first target transaction holds the bound's worth";
  }
  // A new process resumes inside the source transaction (its stored cursor).
  auto engine = SyncEngine::Open(env->LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env->Count(M, "item"), 1000);
  EXPECT_EQ(env->Query(M, "SELECT count(DISTINCT id), min(id), max(id) FROM item"), "1000|1|1000\n");
  EXPECT_GE((*engine)->stats(L).batches, 9) << "the rest came in bounded transactions too";
  EXPECT_EQ(env->Count(M, "_tandem_parked") + env->Count(L, "_tandem_parked"), 0);
  // Nothing echoed back, and the next change flows as usual.
  env->Write(L, "UPDATE " + Item(L) + " SET " + (GetParam().legacy_pg ? "\"LABEL\"" : "LABEL") +
                    " = 'x' WHERE " + (GetParam().legacy_pg ? "\"ID\"" : "ID") + " = 500");
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env->Query(M, "SELECT label FROM item WHERE id = 500"), "x\n");
  EXPECT_EQ(env->Count(L, Item(L)), 1000);
}

TEST_P(BoundedTxnTest, SplitTransactionsFalseKeepsItWhole) {
  auto env = Env("sync: { max_txn_changes: 100, split_transactions: false }\n");
  WriteOneTransaction(*env, 1000);
  auto engine = SyncEngine::Open(env->LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto n = (*engine)->DrainOnce();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(env->Count(M, "item"), 1000) << "one target transaction for the whole source transaction";
}

TEST_P(BoundedTxnTest, TheTimeBoundSplitsToo) {
  // 1 ms: every chunk reaches it, so the 1,000-row transaction is split.
  auto env = Env("sync: { max_txn_ms: 1 }\n");
  WriteOneTransaction(*env, 1000);
  auto engine = SyncEngine::Open(env->LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env->Query(M, "SELECT count(DISTINCT id) FROM item"), "1000\n");
  EXPECT_GT((*engine)->stats(L).batches, 1);
}

INSTANTIATE_TEST_SUITE_P(Sides, BoundedTxnTest,
                         ::testing::Values(SystemsPair{"SqliteToSqlite", false, false},
                                           SystemsPair{"PgToSqlite", true, false}, SystemsPair{"PgToPg", true, true}),
                         testing::SystemsPairName);

}  // namespace
}  // namespace tandem
