// Conflict policies (issue 3): each policy settles a field changed on both
// sides before either change was synced, records the case, and `tandem
// conflicts list` shows it. Edits are made while no engine runs, so which
// changes are concurrent is decided by the test, not by timing.
#include <gtest/gtest.h>

#include "engine/ops/conflict_queue.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

std::string ConfigWithConflicts(const std::string& conflicts_yaml) {
  return testing::ExampleConfigWithCustomerConflicts(conflicts_yaml);
}

class ConflictTest : public ::testing::Test {
 protected:
  // Two customers synced to both sides; `prepare_sql` runs on both databases first.
  void Start(const std::string& conflicts_yaml, const std::string& legacy_sql = "",
             const std::string& modern_sql = "") {
    env_ = std::make_unique<TestEnv>(ConfigWithConflicts(conflicts_yaml));
    if (!legacy_sql.empty()) env_->Write(L, legacy_sql);
    if (!modern_sql.empty()) env_->Write(M, modern_sql);
    env_->Install();
    env_->Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                   "(1, 'DOE, JOHN', 'j@x', 'A', 100), (2, 'ROE, JANE', 'r@x', 'A', 200)");
    env_->SyncOnce();
    ASSERT_EQ(env_->Count(M, "customers"), 2);
  }
  std::string Legacy(int custno, const std::string& cols) {
    return env_->Query(L, "SELECT " + cols + " FROM CUSTMAST WHERE CUSTNO = " + std::to_string(custno));
  }
  std::string Modern(const std::string& email_before, const std::string& cols) {
    return env_->Query(M, "SELECT " + cols + " FROM customers WHERE id = (SELECT id FROM customers WHERE email = '" +
                              email_before + "')");
  }
  nlohmann::json Conflicts(bool all, const std::string& entity = "") {
    Config c = env_->LoadConfig();
    auto l = OpenConnector(c.legacy.resolved, {});
    auto m = OpenConnector(c.modern.resolved, {});
    ConflictFilter filter;
    filter.entity = entity;
    filter.all = all;
    auto list = ListConflicts(**l, **m, filter);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? *list : nlohmann::json::array();
  }
  // Runs the real tandem binary on this test's config; returns its exit code.
  int Tandem(const std::string& args, std::string* out) {
    return testing::RunCommand(std::string(TANDEM_BINARY) + " " + args + " -c " + env_->config_path(), out);
  }
  std::unique_ptr<TestEnv> env_;
};

TEST_F(ConflictTest, MergeKeepsOneSidedChangesAndUsesTheFallbackForTheSameField) {
  Start("    conflicts: { default: merge, fallback: modern-wins }\n");
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 111, EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET status = 'inactive', email = 'modern@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL, STAT, BAL_CENTS"), "modern@x|I|111\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, status, balance FROM customers WHERE email = 'modern@x'"),
            "modern@x|inactive|1.11\n");
  auto all = Conflicts(true);
  ASSERT_EQ(all.size(), 1u) << all.dump();
  EXPECT_EQ(all[0]["field"], "email");
  EXPECT_EQ(all[0]["winner"], "modern");
  EXPECT_EQ(all[0]["policy"], "modern-wins");
  EXPECT_EQ(all[0]["status"], "settled");
  EXPECT_EQ(all[0]["legacy_value"], "'legacy@x'");
  EXPECT_EQ(all[0]["modern_value"], "'modern@x'");
  EXPECT_EQ(all[0]["base_value"], "'j@x'");
  EXPECT_TRUE(Conflicts(false).empty()) << "a settled conflict is not open";
}

TEST_F(ConflictTest, PerFieldOwnersWinTheirFields) {
  Start("    conflicts:\n"
        "      default: merge\n"
        "      fields: { email: modern-wins, balance: legacy-wins }\n");
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 111, EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET balance = 9.99, email = 'modern@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL, BAL_CENTS"), "modern@x|111\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, balance FROM customers WHERE email = 'modern@x'"), "modern@x|1.11\n");
  auto all = Conflicts(true);
  ASSERT_EQ(all.size(), 2u) << all.dump();
  std::map<std::string, std::string> winner;
  for (auto& c : all) winner[c["field"]] = c["winner"].get<std::string>() + "/" + c["policy"].get<std::string>();
  EXPECT_EQ(winner["email"], "modern/modern-wins");
  EXPECT_EQ(winner["balance"], "legacy/legacy-wins");
}

TEST_F(ConflictTest, NewestByTimestampColumns) {
  Start("    conflicts: { default: newest, newest_by: { legacy: UPDTS, modern: updated_at } }\n",
        "ALTER TABLE CUSTMAST ADD COLUMN UPDTS TEXT", "ALTER TABLE customers ADD COLUMN updated_at TEXT");
  // Customer 1: modern's edit is later. Customer 2: legacy's edit is later.
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'l1@x', UPDTS = '2026-01-01 10:00:00' WHERE CUSTNO = 1;"
                 "UPDATE CUSTMAST SET EMAIL = 'l2@x', UPDTS = '2026-01-01 12:00:00' WHERE CUSTNO = 2");
  env_->Write(M, "UPDATE customers SET email = 'm1@x', updated_at = '2026-01-01 11:00:00' WHERE email = 'j@x';"
                 "UPDATE customers SET email = 'm2@x', updated_at = '2026-01-01 11:00:00' WHERE email = 'r@x'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL") + Legacy(2, "EMAIL"), "m1@x\nl2@x\n");
  EXPECT_EQ(env_->Query(M, "SELECT email FROM customers ORDER BY email"), "l2@x\nm1@x\n");
}

TEST_F(ConflictTest, NewestByCaptureTimeWithoutTimestampColumns) {
  Start("    conflicts: { default: newest }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'l1@x' WHERE CUSTNO = 1; UPDATE CUSTMAST SET EMAIL = 'l2@x' WHERE "
                 "CUSTNO = 2");
  env_->Write(M, "UPDATE customers SET email = 'm1@x' WHERE email = 'j@x';"
                 "UPDATE customers SET email = 'm2@x' WHERE email = 'r@x'");
  // Capture times set by hand: customer 1 changed last on modern, customer 2 on legacy.
  // Only the two new changes on each side: the change at an applied position
  // is its source's history mark (engine/source_identity.h) and stays as it was.
  env_->Write(L, "UPDATE _tandem_log SET at_ms = CASE k1 WHEN 1 THEN 1000 ELSE 3000 END WHERE seq > (SELECT "
                 "max(seq) - 2 FROM _tandem_log)");
  env_->Write(M, "UPDATE _tandem_log SET at_ms = 2000 WHERE seq > (SELECT max(seq) - 2 FROM _tandem_log)");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL") + Legacy(2, "EMAIL"), "m1@x\nl2@x\n");
  EXPECT_EQ(env_->Query(M, "SELECT email FROM customers ORDER BY email"), "l2@x\nm1@x\n");
}

TEST_F(ConflictTest, ManualHoldsTheRecordAndEverythingElseFlows) {
  Start("    conflicts: { default: merge, fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@x', BAL_CENTS = 500 WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'modern@x', status = 'inactive' WHERE email = 'j@x'");
  env_->Write(M, "UPDATE customers SET status = 'inactive' WHERE email = 'r@x'");  // another record: flows
  env_->SyncOnce();
  // Neither version of customer 1 is applied, on either side.
  EXPECT_EQ(Legacy(1, "EMAIL, STAT, BAL_CENTS"), "legacy@x|A|500\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, status, balance FROM customers WHERE email = 'modern@x'"),
            "modern@x|inactive|1\n");
  EXPECT_EQ(Legacy(2, "STAT"), "I\n");
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  EXPECT_EQ(open[0]["status"], "open");
  EXPECT_EQ(open[0]["field"], "email");
  EXPECT_EQ(open[0]["policy"], "manual");
  EXPECT_EQ(open[0]["winner"], "");
  EXPECT_EQ(open[0]["legacy_value"], "'legacy@x'");
  EXPECT_EQ(open[0]["modern_value"], "'modern@x'");
  EXPECT_EQ(env_->Count(L, "_tandem_parked WHERE kind = 'conflict'") +
                env_->Count(M, "_tandem_parked WHERE kind = 'conflict'"),
            2)
      << "both directions hold the record";
  // A later change of the record waits behind the conflict; another record's flows.
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 700 WHERE CUSTNO = 1; UPDATE CUSTMAST SET BAL_CENTS = 900 WHERE "
                 "CUSTNO = 2");
  env_->SyncOnce();
  EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers WHERE email = 'modern@x'"), "1\n");
  EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers WHERE email = 'r@x'"), "9\n");
  EXPECT_EQ(Conflicts(false).size(), 1u) << "seen again, still one open conflict";
  EXPECT_EQ(Conflicts(false, "order").size(), 0u) << "--entity filters";
}

// `tandem conflicts resolve --take`: the chosen version ends on both sides,
// the held changes flow again, and the case stays in the audit trail.
TEST_F(ConflictTest, ResolveTakeAppliesTheChosenVersionAndReleasesHeldChanges) {
  Start("    conflicts: { fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'modern@x', status = 'inactive' WHERE email = 'j@x'");
  env_->SyncOnce();
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 700 WHERE CUSTNO = 1");  // held behind the conflict
  env_->SyncOnce();
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts show " + open[0]["id"].get<std::string>() + " --json", &out), 0) << out;
  auto shown = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(shown.is_discarded()) << out;
  EXPECT_EQ(shown["legacy_key"], "1");
  EXPECT_EQ(shown["legacy_row"]["EMAIL"], "'legacy@x'");
  EXPECT_EQ(shown["modern_row"]["email"], "'modern@x'");
  ASSERT_EQ(shown["conflicts"].size(), 1u);
  EXPECT_EQ(shown["conflicts"][0]["base_value"], "'j@x'");
  out.clear();
  EXPECT_EQ(Tandem("conflicts show " + open[0]["id"].get<std::string>(), &out), 0) << out;
  EXPECT_NE(out.find("legacy row now:"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take modern", &out), 0) << out;
  EXPECT_NE(out.find("resolved: email=modern"), std::string::npos) << out;
  // The chosen value is on both sides right away.
  EXPECT_EQ(Legacy(1, "EMAIL"), "modern@x\n");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL, STAT, BAL_CENTS"), "modern@x|I|700\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, status, balance FROM customers WHERE email = 'modern@x'"),
            "modern@x|inactive|7\n");
  EXPECT_TRUE(Conflicts(false).empty());
  auto all = Conflicts(true);
  ASSERT_EQ(all.size(), 1u) << all.dump();
  EXPECT_EQ(all[0]["status"], "resolved");
  EXPECT_EQ(all[0]["winner"], "modern");
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
  EXPECT_EQ(env_->Count(M, "_tandem_audit WHERE action = 'resolve'"), 1);
  // Resolving it again is refused.
  out.clear();
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take legacy", &out), 1) << out;
}

// Settling touches two databases. A crash after one of them marked the
// record resolved leaves the request pending in the other (both were marked
// 'resolving' before any write); the next pass carries it out again.
TEST_F(ConflictTest, AResolutionInterruptedBetweenTheTwoDatabasesIsFinishedByTheNextPass) {
  Start("    conflicts: { fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'modern@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  std::string out;
  ASSERT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take modern", &out), 0) << out;
  // The state such a crash leaves: resolved on legacy, still being resolved on modern.
  env_->Write(M, "UPDATE _tandem_conflicts SET status = 'resolving', resolution = '{\"take\":\"modern\"}'");
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 800 WHERE CUSTNO = 1");  // a later edit flows as usual
  env_->SyncOnce();
  EXPECT_TRUE(Conflicts(false).empty()) << Conflicts(false).dump();
  EXPECT_EQ(env_->Count(M, "_tandem_conflicts WHERE status <> 'resolved'"), 0);
  EXPECT_EQ(Legacy(1, "EMAIL, BAL_CENTS"), "modern@x|800\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, balance FROM customers WHERE email = 'modern@x'"), "modern@x|8\n");
}

TEST_F(ConflictTest, ResolveSetWritesAHandMergedValueToBothSides) {
  Start("    conflicts: { fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'modern@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --set email=both@x", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL"), "both@x\n");
  EXPECT_EQ(env_->Count(M, "customers WHERE email = 'both@x'"), 1);
  EXPECT_TRUE(Conflicts(false).empty());
  out.clear();
  EXPECT_EQ(Tandem("conflicts resolve legacy:999 --take legacy", &out), 1) << out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>(), &out), 2) << out;
}

// The same customer inserted on both sides (same email, unique on both):
// reported as an insert-insert conflict, never a crash or a duplicate; taking
// one side makes the two rows one record.
TEST_F(ConflictTest, SameRecordInsertedOnBothSidesIsAConflictAndBecomesOneRecord) {
  Start("", "CREATE UNIQUE INDEX custmast_email ON CUSTMAST(EMAIL)",
        "CREATE UNIQUE INDEX customers_email ON customers(email)");
  env_->Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (3, 'TWIN, LEGACY', 'twin@x', "
                 "'A', 300)");
  env_->Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES ('n1', 'twin@x', "
                 "'inactive', 4.5, 'MODERN', 'TWIN')");
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 3);
  EXPECT_EQ(env_->Count(M, "customers"), 3);
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  EXPECT_EQ(open[0]["kind"], "insert-insert");
  EXPECT_EQ(open[0]["legacy_key"], "3");
  EXPECT_EQ(open[0]["modern_key"], "'n1'");
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --set email=a@x", &out), 1) << out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take modern", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(Legacy(3, "CNAME, EMAIL, STAT, BAL_CENTS"), "TWIN, MODERN|twin@x|I|450\n");
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 3);
  EXPECT_EQ(env_->Count(M, "customers"), 3);
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
  EXPECT_TRUE(Conflicts(false).empty());
  // One record now: an edit on either side reaches the other row.
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 999 WHERE CUSTNO = 3");
  env_->SyncOnce();
  EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers WHERE id = 'n1'"), "9.99\n");
  env_->Write(M, "UPDATE customers SET status = 'active' WHERE id = 'n1'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(3, "STAT"), "A\n");
}

// Whole-entity ownership: with direction legacy-to-modern, an edit made on
// modern by mistake is reported and reverted to legacy's values (default),
// or put aside for a person (read_only_edits: park).
class ReadOnlySideTest : public ConflictTest {
 protected:
  void StartOneWay(const std::string& conflicts_yaml) {
    std::string cfg = ConfigWithConflicts(conflicts_yaml);
    cfg.replace(cfg.find("    direction: both"), 19, "    direction: legacy-to-modern");
    env_ = std::make_unique<TestEnv>(cfg);
    env_->Install();
    env_->Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                   "(1, 'DOE, JOHN', 'j@x', 'A', 100), (2, 'ROE, JANE', 'r@x', 'A', 200)");
    env_->SyncOnce();
    ASSERT_EQ(env_->Count(M, "customers"), 2);
  }
};

TEST_F(ReadOnlySideTest, AnEditOfTheReadOnlySideIsReportedAndReverted) {
  StartOneWay("");
  env_->Write(M, "UPDATE customers SET email = 'oops@x', balance = 5 WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL, BAL_CENTS"), "j@x|100\n") << "legacy is never touched";
  EXPECT_EQ(env_->Count(M, "customers WHERE email = 'j@x' AND balance = 1"), 1) << env_->Query(M, "SELECT * FROM customers");
  auto all = Conflicts(true);
  ASSERT_EQ(all.size(), 1u) << all.dump();
  EXPECT_EQ(all[0]["kind"], "read-only-edit");
  EXPECT_EQ(all[0]["policy"], "revert");
  EXPECT_EQ(all[0]["winner"], "legacy");
  EXPECT_EQ(all[0]["status"], "resolved");
  // Legacy keeps flowing as before.
  env_->Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 300 WHERE CUSTNO = 1");
  env_->SyncOnce();
  EXPECT_EQ(env_->Query(M, "SELECT balance FROM customers WHERE email = 'j@x'"), "3\n");
}

// Review finding: a read-only edit is judged against the base, not by
// mapping back (a name without the space after the comma does not round-trip).
TEST_F(ReadOnlySideTest, AnUnmappedEditOfANonRoundTrippingRowIsNoConflict) {
  StartOneWay("    conflicts: { read_only_edits: park }\n");
  env_->Write(L, "UPDATE CUSTMAST SET CNAME = 'DOE,JOHN' WHERE CUSTNO = 1");
  env_->SyncOnce();
  env_->Write(M, "UPDATE customers SET created_at = '2020-01-01' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_TRUE(Conflicts(true).empty()) << Conflicts(true).dump();
  EXPECT_EQ(env_->Count(L, "_tandem_parked"), 0);
}

TEST_F(ReadOnlySideTest, ParkKeepsTheEditAsideUntilAPersonDecides) {
  StartOneWay("    conflicts: { read_only_edits: park }\n");
  env_->Write(M, "UPDATE customers SET email = 'oops@x' WHERE email = 'j@x'");
  env_->Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES ('n1', 'new@x', "
                 "'active', 1, 'NEW', 'ONE')");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "EMAIL"), "j@x\n");
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 2) << "nothing created on the owning side";
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 2u) << open.dump();
  EXPECT_EQ(env_->Count(L, "_tandem_parked WHERE kind = 'conflict'"), 2);
  std::string edit_id;
  for (auto& c : open)
    if (c["legacy_key"] == "1") edit_id = c["id"];
  ASSERT_FALSE(edit_id.empty()) << open.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + edit_id + " --take legacy", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "customers WHERE email = 'j@x'"), 1);
  EXPECT_EQ(env_->Count(L, "_tandem_parked WHERE kind = 'conflict'"), 1) << "the insert stays put aside";
}

// on_delete: manual -- review finding: resolving must settle the record, not
// find the same conflict again.
TEST_F(ConflictTest, ManualDeleteAgainstUpdateIsSettledByEitherSide) {
  Start("    conflicts: { on_delete: manual }\n");
  env_->Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO IN (1, 2)");
  env_->Write(M, "UPDATE customers SET email = 'kept1@x' WHERE email = 'j@x';"
                 "UPDATE customers SET email = 'kept2@x' WHERE email = 'r@x'");
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "customers"), 2) << "nothing applied while undecided";
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 2u) << open.dump();
  std::string out;
  for (auto& c : open) {
    bool first = c["legacy_key"] == "1";
    EXPECT_EQ(Tandem("conflicts resolve " + c["id"].get<std::string>() + (first ? " --take modern" : " --take legacy"),
                     &out),
              0)
        << out;
  }
  env_->SyncOnce();
  EXPECT_TRUE(Conflicts(false).empty()) << Conflicts(false).dump();
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
  // 1: modern's update won, so it is re-created on legacy. 2: legacy's delete won.
  EXPECT_EQ(env_->Query(L, "SELECT EMAIL FROM CUSTMAST"), "kept1@x\n");
  EXPECT_EQ(env_->Query(M, "SELECT email FROM customers"), "kept1@x\n");
}

// Review finding: a policy on a computed field (first_name, computed on
// modern from CNAME) must also hold the other direction's rule computed from
// it (CNAME from first_name/last_name), and resolving must write it there.
TEST_F(ConflictTest, ComputedFieldPolicyCoversBothDirections) {
  Start("    conflicts: { default: legacy-wins, fields: { first_name: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET CNAME = 'DOE, JON' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET first_name = 'JOHNNY' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "CNAME"), "DOE, JON\n");
  EXPECT_EQ(env_->Query(M, "SELECT first_name FROM customers WHERE email = 'j@x'"), "JOHNNY\n");
  auto open = Conflicts(false);
  ASSERT_GE(open.size(), 1u);
  for (auto& c : Conflicts(true)) EXPECT_EQ(c["policy"], "manual") << "both directions hold it: " << c.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take modern", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "CNAME"), "DOE, JOHNNY\n");
  EXPECT_EQ(env_->Query(M, "SELECT first_name FROM customers WHERE email = 'j@x'"), "JOHNNY\n");
  EXPECT_TRUE(Conflicts(false).empty()) << Conflicts(false).dump();
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
}

// Review finding: a key change held by a manual conflict is put aside under
// its new key; retrying it must still find the record by its old key, not
// insert a second one.
TEST_F(ConflictTest, HeldKeyChangeIsRetriedAsTheSameRecord) {
  Start("    conflicts: { fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET CUSTNO = 5, EMAIL = 'l@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'm@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "_tandem_parked WHERE kind = 'conflict' AND old_key IS NOT NULL"), 1);
  std::string out;
  Tandem("retry --all", &out);
  EXPECT_EQ(env_->Count(M, "customers"), 2) << "no second customer: " << out;
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 2);
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "customers"), 2);
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 2);
}

// The key changes after the record was held: the held change follows the
// record to its new key, and resolving writes to the row under that key.
TEST_F(ConflictTest, ResolvingARecordWhoseKeyChangedWhileHeldWritesItsCurrentRows) {
  Start("    conflicts: { fields: { email: manual } }\n");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'l@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'm@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  env_->Write(L, "UPDATE CUSTMAST SET CUSTNO = 5, BAL_CENTS = 300 WHERE CUSTNO = 1");
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "_tandem_parked"), 1) << "one held change for the record, under its new key";
  EXPECT_EQ(env_->Count(M, "_tandem_parked WHERE kind = 'conflict' AND old_key IS NOT NULL"), 1);
  auto open = Conflicts(false);
  ASSERT_EQ(open.size(), 1u) << open.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take legacy", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(env_->Query(L, "SELECT CUSTNO, EMAIL, BAL_CENTS FROM CUSTMAST ORDER BY CUSTNO"), "2|r@x|200\n5|l@x|300\n");
  EXPECT_EQ(env_->Query(M, "SELECT email, balance FROM customers ORDER BY email"), "l@x|3\nr@x|2\n");
  EXPECT_TRUE(Conflicts(false).empty());
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
}

// A split record (address lives in the customer's legacy row) deleted on one
// side and updated on the other follows on_delete like any other record.
class SplitOnDeleteTest : public ConflictTest {
 protected:
  void StartWithAddresses(const std::string& address_conflicts) {
    std::string cfg = testing::ExampleConfigWithCustomerConflicts("");
    const std::string at = "  address:                 # a split: the same legacy row also feeds modern.addresses\n";
    ASSERT_NE(cfg.find(at), std::string::npos);
    cfg.insert(cfg.find(at) + at.size(), address_conflicts);
    env_ = std::make_unique<TestEnv>(cfg);
    env_->Install();
    env_->Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, ADDR1, CITY) VALUES (1, 'DOE, JOHN', 'j@x', '1 Main', "
                   "'Oslo'), (2, 'ROE, JANE', 'r@x', '2 High', 'Rome')");
    env_->SyncOnce();
    ASSERT_EQ(env_->Count(M, "addresses"), 2);
    // Deleted on legacy (its columns cleared), updated on modern.
    env_->Write(L, "UPDATE CUSTMAST SET ADDR1 = NULL, CITY = NULL WHERE CUSTNO = 1");
    env_->Write(M, "UPDATE addresses SET city = 'Bergen' WHERE city = 'Oslo'");
    env_->SyncOnce();
    env_->SyncOnce();
  }
};

TEST_F(SplitOnDeleteTest, KeepUpdateRefillsTheSharedRow) {
  StartWithAddresses("    conflicts: { on_delete: keep-update }\n");
  EXPECT_EQ(Legacy(1, "ADDR1, CITY"), "1 Main|Bergen\n");
  EXPECT_EQ(env_->Count(M, "addresses WHERE city = 'Bergen'"), 1);
  auto all = Conflicts(true, "address");
  ASSERT_GE(all.size(), 1u);
  EXPECT_EQ(all[0]["winner"], "modern");
}

TEST_F(SplitOnDeleteTest, DeleteWinsClearsItOnBothSides) {
  StartWithAddresses("    conflicts: { on_delete: delete-wins }\n");
  EXPECT_EQ(Legacy(1, "ADDR1, CITY, EMAIL"), "NULL|NULL|j@x\n") << "the customer's own columns stay";
  EXPECT_EQ(env_->Count(M, "addresses"), 1);
  EXPECT_EQ(env_->Count(M, "customers"), 2);
  auto all = Conflicts(true, "address");
  ASSERT_GE(all.size(), 1u);
  EXPECT_EQ(all[0]["winner"], "legacy");
}

TEST_F(SplitOnDeleteTest, ManualHoldsItUntilResolved) {
  StartWithAddresses("    conflicts: { on_delete: manual }\n");
  EXPECT_EQ(Legacy(1, "ADDR1, CITY"), "NULL|NULL\n");
  EXPECT_EQ(env_->Count(M, "addresses WHERE city = 'Bergen'"), 1);
  auto open = Conflicts(false, "address");
  ASSERT_GE(open.size(), 1u) << open.dump();
  std::string out;
  EXPECT_EQ(Tandem("conflicts resolve " + open[0]["id"].get<std::string>() + " --take legacy", &out), 0) << out;
  env_->SyncOnce();
  EXPECT_EQ(Legacy(1, "ADDR1, CITY"), "NULL|NULL\n");
  EXPECT_EQ(env_->Count(M, "addresses"), 1);
  EXPECT_TRUE(Conflicts(false).empty());
  EXPECT_EQ(env_->Count(L, "_tandem_parked") + env_->Count(M, "_tandem_parked"), 0);
}

TEST_F(ConflictTest, OnDeleteKeepUpdateRecreatesTheRecord) {
  Start("    conflicts: { on_delete: keep-update }\n");
  env_->Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'kept@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "customers WHERE email = 'kept@x'"), 1);
  EXPECT_EQ(env_->Count(L, "CUSTMAST WHERE EMAIL = 'kept@x'"), 1) << "re-created on legacy";
  auto all = Conflicts(true);
  ASSERT_GE(all.size(), 1u);
  EXPECT_EQ(all[0]["kind"], "delete-update");
  EXPECT_EQ(all[0]["policy"], "keep-update");
  EXPECT_EQ(all[0]["winner"], "modern");
}

TEST_F(ConflictTest, OnDeleteDeleteWinsRemovesItOnBothSides) {
  Start("    conflicts: { on_delete: delete-wins }\n");
  env_->Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'kept@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  env_->SyncOnce();
  EXPECT_EQ(env_->Count(M, "customers"), 1);
  EXPECT_EQ(env_->Count(L, "CUSTMAST"), 1);
  auto all = Conflicts(true);
  ASSERT_GE(all.size(), 1u);
  EXPECT_EQ(all[0]["policy"], "delete-wins");
  EXPECT_EQ(all[0]["winner"], "legacy");
}

// The benchmark's comparison point: with detection off, the change applied
// first simply overwrites, whatever `primary` says, and nothing is recorded.
TEST(ConflictDetectionOffTest, TheFirstAppliedChangeOverwritesAndNothingIsRecorded) {
  std::string cfg = ConfigWithConflicts("");
  cfg.replace(cfg.find("primary: legacy"), 15, "primary: modern");
  TestEnv env(cfg + "sync: { detect_conflicts: false }\n");
  env.Install();
  env.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'DOE, JOHN', 'j@x', 'A', 100)");
  env.SyncOnce();
  env.Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@x' WHERE CUSTNO = 1");
  env.Write(M, "UPDATE customers SET email = 'modern@x'");
  env.SyncOnce();
  EXPECT_EQ(env.Query(L, "SELECT EMAIL FROM CUSTMAST"), "legacy@x\n");
  EXPECT_EQ(env.Query(M, "SELECT email FROM customers"), "legacy@x\n");
  EXPECT_EQ(env.Count(L, "_tandem_conflicts") + env.Count(M, "_tandem_conflicts"), 0);
}

TEST_F(ConflictTest, ConflictTableFromAnOlderVersionIsUpgradedByInstall) {
  Start("");
  for (Side s : {L, M})
    env_->Write(s, "DROP TABLE _tandem_conflicts; CREATE TABLE _tandem_conflicts(id INTEGER PRIMARY KEY, at_ms INTEGER "
                   "NOT NULL, direction TEXT NOT NULL, entity TEXT NOT NULL, lkey TEXT, mkey TEXT, field TEXT, "
                   "legacy_value TEXT, modern_value TEXT, winner TEXT NOT NULL, kind TEXT NOT NULL);"
                   "INSERT INTO _tandem_conflicts(at_ms, direction, entity, field, winner, kind) VALUES (1, "
                   "'legacy-to-modern', 'customer', 'email', 'legacy', 'update-update')");
  EXPECT_FALSE(SyncEngine::Open(env_->LoadConfig()).ok());
  env_->Install();
  auto all = Conflicts(true);
  ASSERT_EQ(all.size(), 2u) << all.dump();
  EXPECT_EQ(all[0]["status"], "settled");
  env_->Write(L, "UPDATE CUSTMAST SET EMAIL = 'a@x' WHERE CUSTNO = 1");
  env_->Write(M, "UPDATE customers SET email = 'b@x' WHERE email = 'j@x'");
  env_->SyncOnce();
  EXPECT_EQ(Conflicts(true).size(), 3u);
}

}  // namespace
}  // namespace tandem
