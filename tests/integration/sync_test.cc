// End-to-end behaviour of the sync engine on real SQLite files with the
// example mapping (examples/tandem.yaml). Writes go through separate
// connections (or the sqlite3 shell process), as other applications' would.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.Install(); }
  TestEnv env_;
};

TEST_F(SyncTest, LegacyInsertArrivesMappedOnModern) {
  env_.Sh(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS, ADDR1, CITY) "
             "VALUES (7, 'LOVELACE, ADA', 'ada@x.org', 'I', 123456, '12 Sq', 'London');");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT email, status, balance, first_name, last_name FROM customers"),
            "ada@x.org|inactive|1234.56|ADA|LOVELACE\n");
  // A UUID was made for the modern key, and the address split off the same row.
  std::string id = env_.Query(M, "SELECT id FROM customers");
  EXPECT_EQ(id.size(), 37u) << id;
  EXPECT_EQ(env_.Query(M, "SELECT a.line1, a.city, a.customer_id = c.id FROM addresses a, customers c"),
            "12 Sq|London|1\n");
}

TEST_F(SyncTest, ModernInsertGetsDatabaseKeyOnLegacyAndFillsSharedRow) {
  env_.Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) "
                "VALUES ('c1', 'alan@x.org', 'active', 10.5, 'ALAN', 'TURING');"
                "INSERT INTO addresses(id, customer_id, line1, city) VALUES ('a1', 'c1', '1 Park', 'Bletchley');"
                "INSERT INTO orders(id, customer_id, total) VALUES ('o1', 'c1', 99.99);");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS, ADDR1, CITY FROM CUSTMAST"),
            "1|TURING, ALAN|alan@x.org|A|1050|1 Park|Bletchley\n");
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, TOTAL_CENTS FROM ORDHDR"), "1|9999\n");
}

TEST_F(SyncTest, NothingEchoesBack) {
  env_.Write(L, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('A, B', 'a@b', 'A', 1)");
  env_.Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) "
                "VALUES ('c9', 'c@d', 'active', 2, 'C', 'D')");
  env_.SyncOnce();
  // What Tandem applied was not captured on either side...
  EXPECT_EQ(env_.Count(L, "_tandem_log WHERE seq > 1"), 0);
  EXPECT_EQ(env_.Count(M, "_tandem_log WHERE seq > 1"), 0);
  // ...so a second pass has nothing to do.
  env_.SyncOnce();
  EXPECT_EQ(env_.last_stats(L).changes_read, 0);
  EXPECT_EQ(env_.last_stats(M).changes_read, 0);
  EXPECT_EQ(env_.Count(L, "CUSTMAST"), 2);
  EXPECT_EQ(env_.Count(M, "customers"), 2);
}

TEST_F(SyncTest, UpdatesWriteOnlyMappedColumnsAndNoOpsWriteNothing) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS, CRTDT, FILLER1) "
                "VALUES (1, 'A, B', 'a@b', 'A', 100, '1999-01-01', 'keep me')");
  env_.SyncOnce();
  // Count every write Tandem makes to the modern row (triggers fire inside its transactions too).
  env_.Write(M, "CREATE TABLE writes(n INTEGER); INSERT INTO writes VALUES (0);"
                "CREATE TRIGGER count_writes AFTER UPDATE ON customers BEGIN UPDATE writes SET n = n + 1; END;"
                "UPDATE customers SET created_at = 'modern-only'");
  env_.SyncOnce();
  env_.Write(M, "UPDATE writes SET n = 0");
  env_.Write(L, "UPDATE CUSTMAST SET CRTDT = '2000-02-02', FILLER1 = 'changed' WHERE CUSTNO = 1");  // unmapped only
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT n FROM writes"), "0\n");
  env_.Write(M, "UPDATE customers SET email = 'new@b'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT EMAIL, CRTDT, FILLER1 FROM CUSTMAST"), "new@b|2000-02-02|changed\n");
  EXPECT_EQ(env_.Query(M, "SELECT created_at FROM customers"), "modern-only\n");
}

TEST_F(SyncTest, DeletesPropagateAndSplitDeleteClearsSharedColumns) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS, ADDR1, CITY) VALUES "
                "(1, 'A, B', 'a@b', 'A', 1, 'x', 'y'), (2, 'C, D', 'c@d', 'A', 2, 'u', 'v')");
  env_.SyncOnce();
  ASSERT_EQ(env_.Count(M, "addresses"), 2);
  // Modern deletes an address: the legacy row keeps existing with its address columns cleared.
  env_.Write(M, "DELETE FROM addresses WHERE line1 = 'x'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, ADDR1, CITY FROM CUSTMAST ORDER BY 1"), "1|NULL|NULL\n2|u|v\n");
  // Legacy deletes a customer: customer and its address go on modern.
  env_.Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 1);
  EXPECT_EQ(env_.Count(M, "addresses"), 0);
  // Legacy clears an address on a row: the modern address is deleted, the customer stays.
  env_.Write(L, "UPDATE CUSTMAST SET ADDR1 = 'new', CITY = 'town' WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "addresses"), 1);
  env_.Write(L, "UPDATE CUSTMAST SET ADDR1 = NULL, CITY = NULL WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "addresses"), 0);
  EXPECT_EQ(env_.Count(M, "customers"), 1);
}

TEST_F(SyncTest, LegacyKeyChangeKeepsTheModernRecord) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'A', 1)");
  env_.SyncOnce();
  std::string id = env_.Query(M, "SELECT id FROM customers");
  env_.Write(L, "UPDATE CUSTMAST SET CUSTNO = 10, EMAIL = 'moved@b' WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers"), id);
  EXPECT_EQ(env_.Query(M, "SELECT email FROM customers"), "moved@b\n");
  // The record is now known by its new legacy key, both ways.
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 500 WHERE CUSTNO = 10");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT balance FROM customers"), "5\n");
  env_.Write(M, "UPDATE customers SET email = 'back@b'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, EMAIL FROM CUSTMAST"), "10|back@b\n");
  EXPECT_EQ(env_.Count(M, "customers"), 1);
}

TEST_F(SyncTest, ModernKeyChangeKeepsTheLegacyRecord) {
  env_.Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) "
                "VALUES ('old-id', 'a@b', 'active', 1, 'A', 'B')");
  env_.SyncOnce();
  ASSERT_EQ(env_.Query(L, "SELECT CUSTNO FROM CUSTMAST"), "1\n");
  env_.Write(M, "UPDATE customers SET id = 'new-id', email = 'renamed@b' WHERE id = 'old-id'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, EMAIL FROM CUSTMAST"), "1|renamed@b\n");
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 300 WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT id, balance FROM customers"), "new-id|3\n");
  env_.Write(M, "DELETE FROM customers WHERE id = 'new-id'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(L, "CUSTMAST"), 0);
}

TEST_F(SyncTest, ConcurrentDisjointEditsBothSurvive) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'A', 100)");
  env_.SyncOnce();
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 250 WHERE CUSTNO = 1");
  env_.Write(M, "UPDATE customers SET email = 'modern@b', first_name = 'BEE'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CNAME, EMAIL, BAL_CENTS FROM CUSTMAST"), "A, BEE|modern@b|250\n");
  EXPECT_EQ(env_.Query(M, "SELECT first_name, email, balance FROM customers"), "BEE|modern@b|2.5\n");
  EXPECT_EQ(env_.Count(L, "_tandem_conflicts") + env_.Count(M, "_tandem_conflicts"), 0);
}

TEST_F(SyncTest, SameFieldEditedOnBothSidesEndsWithPrimaryValueAndIsRecorded) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'A', 100)");
  env_.SyncOnce();
  env_.Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@b' WHERE CUSTNO = 1");
  env_.Write(M, "UPDATE customers SET email = 'modern@b', balance = 7");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT EMAIL, BAL_CENTS FROM CUSTMAST"), "legacy@b|700\n");
  EXPECT_EQ(env_.Query(M, "SELECT email, balance FROM customers"), "legacy@b|7\n");
  std::string conflicts = env_.Query(L, "SELECT entity, field, legacy_value, modern_value, winner FROM _tandem_conflicts") +
                          env_.Query(M, "SELECT entity, field, legacy_value, modern_value, winner FROM _tandem_conflicts");
  EXPECT_EQ(conflicts, "customer|email|'legacy@b'|'modern@b'|legacy\n");
  // `tandem status` lists it.
  auto l = OpenConnector("sqlite:" + env_.legacy_path(), {});
  auto m = OpenConnector("sqlite:" + env_.modern_path(), {});
  auto report = BuildStatusReport(env_.LoadConfig(), **l, **m);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ((*report)["conflicts"].size(), 1u);
  EXPECT_EQ((*report)["conflicts"][0]["field"], "email");
}

TEST_F(SyncTest, ModernPrimaryWinsWhenConfigured) {
  std::string cfg = testing::ReadFile(env_.config_path());
  cfg.replace(cfg.find("primary: legacy"), 15, "primary: modern");
  std::ofstream(env_.config_path()) << cfg;
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'A', 100)");
  env_.SyncOnce();
  env_.Write(L, "UPDATE CUSTMAST SET EMAIL = 'legacy@b' WHERE CUSTNO = 1");
  env_.Write(M, "UPDATE customers SET email = 'modern@b'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT EMAIL FROM CUSTMAST"), "modern@b\n");
  EXPECT_EQ(env_.Query(M, "SELECT email FROM customers"), "modern@b\n");
}

TEST_F(SyncTest, UnmappedCodeIsPutAsideOthersFlowAndRetryAppliesIt) {
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                "(1, 'A, B', 'a@b', 'X', 1), (2, 'C, D', 'c@d', 'A', 2)");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT email FROM customers"), "c@d\n");
  EXPECT_EQ(env_.Query(M, "SELECT entity, source_key, kind FROM _tandem_parked"), "customer|i1|rejected\n");
  EXPECT_NE(env_.Query(M, "SELECT reason FROM _tandem_parked").find("'X' has no mapping"), std::string::npos);
  // Later changes to the same record wait behind it; other records keep flowing.
  env_.Write(L, "UPDATE CUSTMAST SET EMAIL = 'still@b' WHERE CUSTNO = 1; UPDATE CUSTMAST SET EMAIL = 'c2@d' WHERE CUSTNO = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT email FROM customers"), "c2@d\n");
  // Fix the cause at the source, then retry: the record's current state is applied.
  env_.Write(L, "UPDATE CUSTMAST SET STAT = 'I' WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 1);
  auto engine = SyncEngine::Open(env_.LoadConfig());
  ASSERT_TRUE(engine.ok());
  auto n = (*engine)->RetryAllParked();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(env_.Query(M, "SELECT email, status FROM customers ORDER BY email"), "c2@d|active\nstill@b|inactive\n");
  EXPECT_EQ(env_.Count(M, "_tandem_parked"), 0);
  EXPECT_EQ(env_.Count(M, "_tandem_audit WHERE action = 'retry'"), 1);
}

TEST_F(SyncTest, RowRejectedByTargetConstraintIsPutAsideAndTheRestOfTheBatchCommits) {
  // The modern schema demands a status; the legacy row's NULL BAL_CENTS-derived balance is NOT NULL too.
  env_.Write(M, "CREATE UNIQUE INDEX customers_email ON customers(email)");
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                "(1, 'A, B', 'dup@b', 'A', 1), (2, 'C, D', 'dup@b', 'A', 2), (3, 'E, F', 'ok@b', 'A', 3)");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 2);
  EXPECT_EQ(env_.Query(M, "SELECT entity, source_key FROM _tandem_parked"), "customer|i2\n");
  EXPECT_NE(env_.Query(M, "SELECT reason FROM _tandem_parked").find("UNIQUE"), std::string::npos);
  // Discarding it is audited, and later changes to that record flow again.
  auto m = OpenConnector("sqlite:" + env_.modern_path(), {});
  auto id = env_.Query(M, "SELECT id FROM _tandem_parked");
  ASSERT_TRUE(DiscardParked(**m, std::stoll(id)).ok());
  EXPECT_EQ(env_.Count(M, "_tandem_audit WHERE action = 'discard'"), 1);
  env_.Write(L, "UPDATE CUSTMAST SET EMAIL = 'unique@b' WHERE CUSTNO = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 3);
}

TEST_F(SyncTest, ChildWaitsForItsParentAndFollowsIt) {
  // The customer is rejected (unknown code) so its order must wait, not fail.
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (1, 'A, B', 'a@b', 'Z', 1);"
                "INSERT INTO ORDHDR(ORDNO, CUSTNO, TOTAL_CENTS) VALUES (5, 1, 1234);");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "orders"), 0);
  EXPECT_EQ(env_.Query(M, "SELECT entity, kind FROM _tandem_parked ORDER BY entity"),
            "customer|rejected\norder|waiting\n");
  env_.Write(L, "UPDATE CUSTMAST SET STAT = 'A' WHERE CUSTNO = 1");
  auto engine = SyncEngine::Open(env_.LoadConfig());
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->RetryAllParked().ok());
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env_.Query(M, "SELECT o.total, o.customer_id = c.id FROM orders o, customers c"), "12.34|1\n");
  EXPECT_EQ(env_.Count(M, "_tandem_parked"), 0);
}

TEST_F(SyncTest, SourceTransactionIsNeverSplitOnTheTarget) {
  // A reader on the target must only ever see all or none of a 2,000-row source transaction.
  std::string sql = "BEGIN;";
  for (int i = 1; i <= 2000; ++i)
    sql += "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('L" + std::to_string(i) + ", F', 'e" +
           std::to_string(i) + "', 'A', " + std::to_string(i) + ");";
  env_.Write(L, sql + "COMMIT;");
  std::atomic<bool> done{false};
  std::atomic<int64_t> partial{0}, reads{0};
  std::thread reader([&] {
    auto h = SqliteHandle::Open(env_.modern_path(), SQLITE_OPEN_READWRITE, 5000);
    while (!done.load()) {
      std::vector<Row> rows;
      if (!(*h)->Run("SELECT count(*) FROM customers", {}, &rows).ok()) continue;
      int64_t n = rows[0][0].as_integer();
      if (n != 0 && n != 2000) partial++;
      reads++;
    }
  });
  // Small chunks force many reads per target transaction.
  std::string cfg = testing::ReadFile(env_.config_path()) + "sync: { batch_size: 100 }\n";
  std::ofstream(env_.config_path()) << cfg;
  env_.SyncOnce();
  done = true;
  reader.join();
  EXPECT_EQ(env_.Count(M, "customers"), 2000);
  EXPECT_EQ(partial.load(), 0) << "a reader saw a partly applied source transaction";
  EXPECT_GT(reads.load(), 0);
}

TEST_F(SyncTest, TargetTransactionsEndOnlyBetweenSourceTransactions) {
  // 20 source transactions of 100 rows, applied with a batch size of 150. The
  // engine learns where each transaction ended (as its sampler does after
  // commits) and may end a target transaction only there.
  std::vector<int64_t> boundaries;
  for (int t = 0; t < 20; ++t) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < 100; ++i)
      sql += "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('L, F', 'e', 'A', " + std::to_string(t) + ");";
    env_.Write(L, sql + "COMMIT;");
    boundaries.push_back(std::stoll(env_.Query(L, "SELECT max(seq) FROM _tandem_log")));
  }
  // Record the target's row count at every commit of a Tandem batch.
  env_.RecordAtEveryBatchCommit(M, "SELECT count(*) FROM customers");
  std::string cfg = testing::ReadFile(env_.config_path()) + "sync: { batch_size: 150, sample_commit_boundaries: false }\n";
  std::ofstream(env_.config_path()) << cfg;
  auto engine = SyncEngine::Open(env_.LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  for (int64_t b : boundaries) (*engine)->NoteCommitBoundary(L, b);
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env_.Count(M, "customers"), 2000);
  EXPECT_EQ(env_.Count(M, "seen WHERE n % 100 <> 0"), 0) << env_.Query(M, "SELECT n FROM seen");
  // Batches were bounded: more than one target transaction, each of 2 source transactions.
  EXPECT_EQ(env_.Count(M, "seen"), 10) << env_.Query(M, "SELECT n FROM seen");
}

// Capture is key-only and rows are read when applied, so a target
// transaction that ends at a boundary before the snapshot's end must read the
// source as of that boundary: here the third source transaction changes
// customer 1 (written by the first) and adds customer 201, and no reader of
// the target may ever see one of those changes without the other.
TEST_F(SyncTest, EarlyEndingBatchReadsTheSourceAsOfItsBoundary) {
  std::string cfg = testing::ReadFile(env_.config_path()) + "sync: { batch_size: 150, sample_commit_boundaries: false }\n";
  std::ofstream(env_.config_path()) << cfg;
  auto engine = SyncEngine::Open(env_.LoadConfig());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto insert_tx = [&](int from, int to) {
    std::string sql = "BEGIN;";
    for (int i = from; i <= to; ++i)
      sql += "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (" + std::to_string(i) +
             ", 'L, F', 'e', 'A', 1);";
    env_.Write(L, sql + "COMMIT;");
  };
  insert_tx(1, 100);
  auto p1 = (*engine)->PinSourceSnapshot(L);
  insert_tx(101, 200);
  auto p2 = (*engine)->PinSourceSnapshot(L);
  env_.Write(L, "BEGIN; UPDATE CUSTMAST SET EMAIL = 't3' WHERE CUSTNO = 1;"
                "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (201, 'L, F', 't3', 'A', 1); COMMIT;");
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(*p1, 100);
  EXPECT_EQ(*p2, 200);
  env_.RecordAtEveryBatchCommit(M, "SELECT count(*) FROM customers WHERE email = 't3'");
  ASSERT_TRUE((*engine)->RunUntilIdle().ok());
  EXPECT_EQ(env_.Count(M, "customers"), 201);
  EXPECT_EQ(env_.Count(M, "seen WHERE n = 1"), 0) << "a batch carried half of a later source transaction: "
                                                  << env_.Query(M, "SELECT n FROM seen");
  EXPECT_GE(env_.Count(M, "seen"), 2) << "the backlog should have taken more than one target transaction";
}

TEST_F(SyncTest, WithoutKnownBoundariesTheWholeSnapshotIsOneTransaction) {
  for (int t = 0; t < 5; ++t) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < 100; ++i) sql += "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('L, F', 'e', 'A', 1);";
    env_.Write(L, sql + "COMMIT;");
  }
  env_.RecordAtEveryBatchCommit(M, "SELECT count(*) FROM customers");
  std::string cfg = testing::ReadFile(env_.config_path()) + "sync: { batch_size: 150, sample_commit_boundaries: false }\n";
  std::ofstream(env_.config_path()) << cfg;
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT n FROM seen"), "500\n");
}

TEST_F(SyncTest, ChangesFromTheSqliteShellProcessAreCaptured) {
  env_.Sh(L, "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('SHELL, ONE', 's@x', 'A', 42);");
  env_.Sh(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES "
             "('m1', 'm@x', 'inactive', 1.25, 'TWO', 'SHELL');");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CNAME, STAT, BAL_CENTS FROM CUSTMAST ORDER BY CUSTNO"),
            "SHELL, ONE|A|42\nSHELL, TWO|I|125\n");
  EXPECT_EQ(env_.Query(M, "SELECT first_name, status, balance FROM customers ORDER BY email"),
            "TWO|inactive|1.25\nONE|active|0.42\n");
}

}  // namespace
}  // namespace tandem
