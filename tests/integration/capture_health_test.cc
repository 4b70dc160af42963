// Capture health (issue 12, point 3): the standard table rebuild (create a
// new table, copy, drop the old one, rename) drops Tandem's triggers with the
// old table; so does a trigger dropped by hand, and PostgreSQL can disable
// one. Tandem notices at start and while running, pauses that entity with the
// reason (the others flow), records a gap in the database (changes made
// meanwhile were never captured), and `tandem install` repairs capture; the
// entity then resumes and the changes it held arrive.
#include <gtest/gtest.h>

#include "engine/capture_health.h"
#include "engine/ops/status_report.h"
#include "support/pg_test_server.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::SystemsPair;
using testing::TestEnv;

constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

const std::string kConfig = testing::kExampleSystemsYaml + R"YAML(  person:
    legacy: { table: PERSON, key: ID, new_keys: same }
    modern: { table: person, key: id, new_keys: same }
    fields: { name: NAME }
  tag:
    legacy: { table: TAG, key: ID, new_keys: same }
    modern: { table: tag, key: id, new_keys: same }
    fields: { label: LABEL }
)YAML";

class CaptureHealthTest : public ::testing::TestWithParam<SystemsPair> {
 protected:
  void SetUp() override {
    if (GetParam().any_pg()) TANDEM_REQUIRE_PG();
    testing::Backends b = GetParam().backends();
    b.legacy_schema = Schema(L);
    b.modern_schema = Schema(M);
    env_ = std::make_unique<TestEnv>(kConfig, b);
    env_->Install();
    env_->Write(L, "INSERT INTO " + Id(L, "person") + " VALUES (1, 'Ann'), (2, 'Bob'); INSERT INTO " + Id(L, "tag") +
                       " VALUES (1, 'a')");
  }
  bool Pg(Side s) const { return s == L ? GetParam().legacy_pg : GetParam().modern_pg; }
  std::string Id(Side s, const std::string& lower) const { return testing::NameOn(s, lower, Pg(s)); }
  std::string Schema(Side s) const {
    return "CREATE TABLE " + Id(s, "person") + "(" + Id(s, "id") + " bigint PRIMARY KEY, " + Id(s, "name") +
           " text); CREATE TABLE " + Id(s, "tag") + "(" + Id(s, "id") + " bigint PRIMARY KEY, " + Id(s, "label") +
           " text);";
  }
  // The rebuild every SQLite guide describes (also common on PostgreSQL).
  void Rebuild(Side s) {
    const std::string t = Id(s, "person"), tmp = Id(s, "person_new");
    env_->Write(s, "CREATE TABLE " + tmp + "(" + Id(s, "id") + " bigint PRIMARY KEY, " + Id(s, "name") +
                       " text); INSERT INTO " + tmp + " SELECT * FROM " + t + "; DROP TABLE " + t + "; ALTER TABLE " +
                       tmp + " RENAME TO " + t);
  }
  nlohmann::json Status() {
    Config config = env_->LoadConfig();
    auto l = OpenConnector(config.legacy.resolved, {});
    auto m = OpenConnector(config.modern.resolved, {});
    EXPECT_TRUE(l.ok() && m.ok());
    auto report = BuildStatusReport(config, **l, **m);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : nlohmann::json();
  }
  std::string Name(Side s, int id) {
    return env_->Query(s, "SELECT " + Id(s, "name") + " FROM " + Id(s, "person") + " WHERE " + Id(s, "id") + " = " +
                              std::to_string(id));
  }
  std::unique_ptr<TestEnv> env_;
};

TEST_P(CaptureHealthTest, RebuildWhileRunningPausesTheEntityRecordsAGapAndInstallRepairs) {
  auto engine = SyncEngine::Open(env_->LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  ASSERT_EQ(Name(M, 1), "Ann\n");

  Rebuild(L);
  // Made while capture is missing: never captured.
  env_->Write(L, "UPDATE " + Id(L, "person") + " SET " + Id(L, "name") + " = 'Gap' WHERE " + Id(L, "id") + " = 1");
  // Made on the other side: must wait, not be lost.
  env_->Write(M, "UPDATE person SET name = 'Bo' WHERE id = 2");
  env_->Write(M, "INSERT INTO tag VALUES (2, 'b')");
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());

  EXPECT_EQ(env_->Query(L, "SELECT " + Id(L, "label") + " FROM " + Id(L, "tag") + " ORDER BY 1"), "a\nb\n")
      << "the other entity flows";
  EXPECT_EQ(Name(L, 2), "Bob\n") << "person is paused: the modern edit waits";
  const std::string reasons = env_->Query(L, "SELECT reason FROM _tandem_parked");
  EXPECT_NE(reasons.find("capture on the legacy table"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("missing"), std::string::npos) << reasons;
  EXPECT_EQ(env_->Count(L, "_tandem_gaps WHERE repaired_at_ms IS NULL"), 1);
  nlohmann::json status = Status();
  ASSERT_EQ(status["capture_problems"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["capture_problems"][0]["side"], "legacy");
  EXPECT_EQ(status["capture_gaps"].size(), 1u);

  env_->Install();  // repairs capture, closes the gap as repaired
  EXPECT_EQ(env_->Count(L, "_tandem_gaps WHERE repaired_at_ms IS NULL"), 0);
  env_->Write(L, "UPDATE " + Id(L, "person") + " SET " + Id(L, "name") + " = 'Cy' WHERE " + Id(L, "id") + " = 1");
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(Name(L, 2), "Bo\n") << "the held change arrives once capture is back";
  EXPECT_EQ(Name(M, 1), "Cy\n") << "legacy changes are captured again";
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
  status = Status();
  EXPECT_TRUE(status["capture_problems"].empty()) << status.dump(2);
  EXPECT_EQ(status["capture_gaps"].size(), 1u) << "the gap stays listed until an operator clears it";
  Config config = env_->LoadConfig();
  auto l = OpenConnector(config.legacy.resolved, {});
  ASSERT_TRUE(l.ok());
  auto cleared = ClearCaptureGaps(**l, -1, 1);
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ(*cleared, 1);
  EXPECT_TRUE(Status()["capture_gaps"].empty());
}

TEST_P(CaptureHealthTest, RebuildWhileStoppedIsNoticedAtStart) {
  env_->SyncOnce();
  ASSERT_EQ(Name(M, 1), "Ann\n");
  Rebuild(M);
  env_->Write(L, "UPDATE " + Id(L, "person") + " SET " + Id(L, "name") + " = 'Al' WHERE " + Id(L, "id") + " = 1");
  auto engine = SyncEngine::Open(env_->LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(Name(M, 1), "Ann\n") << "nothing is written into a table whose capture is broken";
  EXPECT_EQ(env_->Count(M, "_tandem_gaps"), 1);
  EXPECT_NE(env_->Query(M, "SELECT reason FROM _tandem_parked").find("capture on the modern table"), std::string::npos);
  engine->reset();
  env_->Install();
  env_->SyncOnce();
  EXPECT_EQ(Name(M, 1), "Al\n");
}

TEST_P(CaptureHealthTest, DroppedOrDisabledTriggerIsBrokenCapture) {
  const std::string name = Pg(L) ? "_tandem_1_upd" : "_tandem_1_del";
  if (Pg(L))
    env_->Write(L, "ALTER TABLE " + Id(L, "person") + " ENABLE REPLICA TRIGGER " + name);  // ordinary writes skip it
  else
    env_->Write(L, "DROP TRIGGER " + name);
  nlohmann::json status = Status();
  ASSERT_EQ(status["capture_problems"].size(), 1u) << status.dump(2);
  EXPECT_NE(status["capture_problems"][0]["problem"].get<std::string>().find(name), std::string::npos);
  env_->Install();
  EXPECT_TRUE(Status()["capture_problems"].empty());
  EXPECT_EQ(env_->Count(L, "_tandem_gaps WHERE repaired_at_ms IS NOT NULL"), 1) << "install records the gap it closes";
}

INSTANTIATE_TEST_SUITE_P(Sides, CaptureHealthTest,
                         ::testing::Values(SystemsPair{"SqliteToSqlite", false, false},
                                           SystemsPair{"PgToPg", true, true}, SystemsPair{"SqliteToPg", false, true}),
                         testing::SystemsPairName);

}  // namespace
}  // namespace tandem
