// Regressions found in review: each test is named after what broke.
#include <gtest/gtest.h>

#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

class RegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.Install();
    env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS, ADDR1, CITY) VALUES "
                  "(1, 'DOE, JOHN', 'j@x', 'A', 100, '1 Main', 'Oslo'), (2, 'ROE, JANE', 'r@x', 'A', 200, '2 High', "
                  "'Bergen')");
    env_.SyncOnce();
    john_ = env_.Query(M, "SELECT id FROM customers WHERE email = 'j@x'");
    jane_ = env_.Query(M, "SELECT id FROM customers WHERE email = 'r@x'");
  }
  void ExpectConverged() {
    EXPECT_EQ(env_.Query(L, "SELECT EMAIL, STAT, BAL_CENTS, CNAME FROM CUSTMAST ORDER BY EMAIL"),
              env_.Query(M, "SELECT email, CASE status WHEN 'active' THEN 'A' ELSE 'I' END, "
                            "CAST(round(balance * 100) AS INTEGER), last_name || ', ' || first_name FROM customers "
                            "ORDER BY email"));
  }
  TestEnv env_;
  std::string john_, jane_;
};

TEST_F(RegressionTest, KeyChangeThenUpdateInOneSnapshotKeepsConcurrentEdits) {
  env_.Write(L, "UPDATE CUSTMAST SET CUSTNO = 10 WHERE CUSTNO = 1; UPDATE CUSTMAST SET EMAIL = 'new@x' WHERE CUSTNO = 10");
  env_.Write(M, "UPDATE customers SET status = 'inactive', last_name = 'DOE-SMITH' WHERE email = 'j@x'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT id, email, status, last_name FROM customers WHERE id = " +
                              john_.substr(0, john_.size() - 1).insert(0, "'") + "'"),
            john_.substr(0, john_.size() - 1) + "|new@x|inactive|DOE-SMITH\n");
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, STAT, CNAME FROM CUSTMAST WHERE EMAIL = 'new@x'"), "10|I|DOE-SMITH, JOHN\n");
  ExpectConverged();
}

TEST_F(RegressionTest, RecordMovedOntoADeletedRecordsKey) {
  env_.Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 2; UPDATE CUSTMAST SET CUSTNO = 2 WHERE CUSTNO = 1");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers"), john_);
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 999 WHERE CUSTNO = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT balance FROM customers"), "9.99\n");
  ExpectConverged();
}

TEST_F(RegressionTest, KeySwapThroughATemporaryKeyKeepsBothRecords) {
  env_.Write(L, "BEGIN; UPDATE CUSTMAST SET CUSTNO = 0 WHERE CUSTNO = 1; UPDATE CUSTMAST SET CUSTNO = 1 WHERE CUSTNO = 2;"
                "UPDATE CUSTMAST SET CUSTNO = 2 WHERE CUSTNO = 0; COMMIT;");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers"), 2);
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers WHERE email = 'j@x'"), john_);
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers WHERE email = 'r@x'"), jane_);
  // Each record now answers to its new legacy key, both ways.
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 222 WHERE CUSTNO = 2");  // John
  env_.Write(M, "UPDATE customers SET first_name = 'JANIE' WHERE email = 'r@x'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT balance FROM customers WHERE email = 'j@x'"), "2.22\n");
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO, CNAME FROM CUSTMAST WHERE EMAIL = 'r@x'"), "1|ROE, JANIE\n");
  EXPECT_EQ(env_.Count(L, "CUSTMAST"), 2);
  EXPECT_EQ(env_.Count(M, "customers"), 2);
  ExpectConverged();
}

TEST_F(RegressionTest, KeyRenamedAndBackIsAPlainChange) {
  env_.Write(L, "UPDATE CUSTMAST SET CUSTNO = 100 WHERE CUSTNO = 1; UPDATE CUSTMAST SET CUSTNO = 1 WHERE CUSTNO = 100");
  env_.SyncOnce();
  env_.Write(L, "UPDATE CUSTMAST SET BAL_CENTS = 5 WHERE CUSTNO = 1");
  env_.Write(M, "UPDATE customers SET first_name = 'JON' WHERE email = 'j@x'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(L, "CUSTMAST"), 2);
  EXPECT_EQ(env_.Count(M, "customers"), 2);
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers WHERE email = 'j@x'"), john_);
  ExpectConverged();
}

TEST_F(RegressionTest, KeyChainKeepsTheModernRecordAndItsChildren) {
  env_.Write(L, "INSERT INTO ORDHDR(ORDNO, CUSTNO, TOTAL_CENTS) VALUES (7, 1, 700)");
  env_.SyncOnce();
  env_.Write(L, "PRAGMA foreign_keys=OFF; BEGIN; UPDATE CUSTMAST SET CUSTNO = 5 WHERE CUSTNO = 1; "
                "UPDATE CUSTMAST SET CUSTNO = 6 WHERE CUSTNO = 5; UPDATE ORDHDR SET CUSTNO = 6 WHERE ORDNO = 7; COMMIT;");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT id FROM customers WHERE email = 'j@x'"), john_);
  EXPECT_EQ(env_.Query(M, "SELECT customer_id FROM orders"), john_);
  EXPECT_EQ(env_.Count(M, "_tandem_parked"), 0);
  EXPECT_EQ(env_.Count(M, "addresses"), 2);
}

TEST_F(RegressionTest, DeleteOnModernIsNotUndoneByAnUnmappedLegacyTouch) {
  env_.Write(M, "DELETE FROM addresses WHERE customer_id = " + ("'" + jane_.substr(0, jane_.size() - 1) + "'") +
                    "; DELETE FROM customers WHERE email = 'r@x'");
  env_.Write(L, "UPDATE CUSTMAST SET FILLER1 = 'touched' WHERE CUSTNO = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'r@x'"), 0);
  EXPECT_EQ(env_.Count(L, "CUSTMAST WHERE CUSTNO = 2"), 0);
  EXPECT_EQ(env_.Count(L, "_tandem_conflicts") + env_.Count(M, "_tandem_conflicts"), 0);
}

TEST_F(RegressionTest, DeletedAndReinsertedKeyIsANewRecord) {
  env_.Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 2; "
                "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (2, 'ZED, ZOE', 'z@x', 'A', 1)");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'r@x'"), 0);
  std::string zoe = env_.Query(M, "SELECT id FROM customers WHERE email = 'z@x'");
  EXPECT_FALSE(zoe.empty());
  EXPECT_NE(zoe, jane_) << "a new record must not take over the deleted record identity; john " << john_ << " all: " << env_.Query(M, "SELECT id, email FROM customers");
  ExpectConverged();
}

TEST_F(RegressionTest, SecondAddressForOneLegacyRowIsPutAside) {
  std::string john = "'" + john_.substr(0, john_.size() - 1) + "'";
  env_.Write(M, "INSERT INTO addresses(id, customer_id, line1, city) VALUES ('a2', " + john + ", '99 Second St', 'Rome')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT ADDR1, CITY FROM CUSTMAST WHERE CUSTNO = 1"), "1 Main|Oslo\n");
  EXPECT_EQ(env_.Query(L, "SELECT entity, source_key, kind FROM _tandem_parked"), "address|ta2|rejected\n");
  EXPECT_NE(env_.Query(L, "SELECT reason FROM _tandem_parked").find("has room for one"), std::string::npos);
}

TEST_F(RegressionTest, ParentDeletedWithItsChildrenInALargeTransactionIsNotPutAside) {
  env_.Write(L, "INSERT INTO ORDHDR(ORDNO, CUSTNO, TOTAL_CENTS) VALUES (11, 1, 100), (12, 1, 200)");
  env_.SyncOnce();
  ASSERT_EQ(env_.Count(M, "orders"), 2);
  std::string cfg = testing::ReadFile(env_.config_path()) + "sync: { batch_size: 2 }\n";
  std::ofstream(env_.config_path()) << cfg;
  env_.Write(L, "BEGIN; DELETE FROM CUSTMAST WHERE CUSTNO = 1; DELETE FROM ORDHDR WHERE CUSTNO = 1; COMMIT;");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "orders"), 0);
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'j@x'"), 0);
  EXPECT_EQ(env_.Count(M, "_tandem_parked"), 0) << env_.Query(M, "SELECT entity, kind, reason FROM _tandem_parked");
}

TEST_F(RegressionTest, ChangePutAsideDuringARerunBatchIsNotDropped) {
  // An order waits for customer 3 and will be rejected by the target when it is retried.
  env_.Write(M, "CREATE TRIGGER orders_positive BEFORE INSERT ON orders WHEN NEW.total < 0 "
                "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: total >= 0'); END;");
  env_.Write(L, "PRAGMA foreign_keys=OFF; INSERT INTO ORDHDR(ORDNO, CUSTNO, TOTAL_CENTS) VALUES (50, 3, -500)");
  env_.SyncOnce();
  ASSERT_EQ(env_.Query(M, "SELECT entity, kind FROM _tandem_parked"), "order|waiting\n");
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                "(3, 'C, THREE', 'c3@x', 'A', 3), (4, 'C, FOUR', 'c4@x', 'X', 4)");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(M, "customers WHERE email = 'c3@x'"), 1);
  EXPECT_EQ(env_.Query(M, "SELECT entity, source_key, kind FROM _tandem_parked ORDER BY entity"),
            "customer|i4|rejected\norder|i50|rejected\n");
}

TEST_F(RegressionTest, KeyMapDoesNotGrowWithDeletedRecords) {
  // Jane was born on legacy (entry stored on modern); a record born on modern has its entry on legacy.
  env_.Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) "
                "VALUES ('m1', 'm@x', 'active', 1, 'M', 'ONE')");
  env_.SyncOnce();
  env_.Write(L, "DELETE FROM CUSTMAST WHERE CUSTNO = 2");
  env_.Write(M, "DELETE FROM customers WHERE id = 'm1'");
  env_.SyncOnce();  // applies the deletes (gone entries) ...
  env_.SyncOnce();  // ... and a later pass removes them with what they hide
  EXPECT_EQ(env_.Count(L, "_tandem_records WHERE gone = 1") + env_.Count(M, "_tandem_records WHERE gone = 1"), 0);
  EXPECT_EQ(env_.Count(L, "_tandem_records WHERE entity = 'customer' AND lkey = 'i2'") +
                env_.Count(M, "_tandem_records WHERE entity = 'customer' AND lkey = 'i2'"),
            0);
  EXPECT_EQ(env_.Count(L, "_tandem_records WHERE mkey = 'tm1'") + env_.Count(M, "_tandem_records WHERE mkey = 'tm1'"),
            0);
  // The keys can be used again by new records, which sync as new.
  env_.Write(L, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (2, 'NEW, TWO', 'n2@x', 'A', 2)");
  env_.Write(M, "INSERT INTO customers(id, email, status, balance, first_name, last_name) "
                "VALUES ('m1', 'again@x', 'active', 3, 'A', 'GAIN')");
  env_.SyncOnce();
  ExpectConverged();
  EXPECT_NE(env_.Query(M, "SELECT id FROM customers WHERE email = 'n2@x'"), jane_);
}

// Key maps written before the hashed modern-key index: the engine refuses
// to run on them with a clear message; `tandem install` upgrades them in
// place and every mapping still resolves by modern key.
TEST_F(RegressionTest, KeyMapFromAnOlderVersionIsUpgradedByInstall) {
  for (Side s : {L, M})
    env_.Write(s, "CREATE TABLE old AS SELECT entity, lkey, mkey, version, gone, lbase, mbase FROM _tandem_records;"
                  "DROP TABLE _tandem_records;"
                  "CREATE TABLE _tandem_records(entity TEXT NOT NULL, lkey TEXT NOT NULL, mkey TEXT NOT NULL, version "
                  "INTEGER NOT NULL, gone INTEGER NOT NULL DEFAULT 0, lbase TEXT, mbase TEXT, UNIQUE(entity, lkey));"
                  "CREATE INDEX _tandem_records_by_mkey ON _tandem_records(entity, mkey);"
                  "INSERT INTO _tandem_records SELECT * FROM old; DROP TABLE old;");
  auto engine = SyncEngine::Open(env_.LoadConfig());
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("made by an older version: run 'tandem install"), std::string::npos)
      << engine.status().ToString();
  env_.Install();
  EXPECT_EQ(env_.Count(M, "_tandem_records WHERE mhash = 0") + env_.Count(L, "_tandem_records WHERE mhash = 0"), 0);
  env_.Write(M, "UPDATE customers SET email = 'john@new' WHERE email = 'j@x'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CUSTNO FROM CUSTMAST WHERE EMAIL = 'john@new'"), "1\n");
  EXPECT_EQ(env_.Count(L, "CUSTMAST"), 2);
  ExpectConverged();
}

}  // namespace
}  // namespace tandem
