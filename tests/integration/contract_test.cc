// Other shapes the configuration contract allows: composite keys with
// `new_keys: same`, text keys, one-way and switched-off entities.
#include <gtest/gtest.h>

#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::TestEnv;
constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

const char* kConfig = R"YAML(version: 1
systems:
  legacy: { database: "sqlite:data/legacy.db" }
  modern: { database: "sqlite:data/modern.db" }
primary: legacy
entities:
  stock:
    legacy: { table: ITEMS, key: [WH, SKU], new_keys: same }
    modern: { table: stock, key: [warehouse, sku], new_keys: same }
    fields:
      quantity: QTY
      description: { legacy: DESCR, to_modern: "lower(DESCR)", to_legacy: "upper(description)" }
  note:
    direction: legacy-to-modern
    legacy: { table: NOTES, key: CODE }
    modern: { table: notes, key: code }
    fields:
      body: TXT
  audit:
    direction: off
    legacy: { table: AUDIT, key: ID }
    modern: { table: audit, key: id }
    fields:
      what: WHAT
)YAML";

class ContractTest : public ::testing::Test {
 protected:
  ContractTest() : env_(kConfig) {}
  void SetUp() override {
    env_.Write(L, "CREATE TABLE ITEMS(WH TEXT, SKU INTEGER, QTY INTEGER, DESCR TEXT, PRIMARY KEY (WH, SKU));"
                  "CREATE TABLE NOTES(CODE TEXT PRIMARY KEY, TXT TEXT);"
                  "CREATE TABLE AUDIT(ID INTEGER PRIMARY KEY, WHAT TEXT);");
    env_.Write(M, "CREATE TABLE stock(warehouse TEXT, sku INTEGER, quantity INTEGER, description TEXT, "
                  "PRIMARY KEY (warehouse, sku));"
                  "CREATE TABLE notes(code TEXT PRIMARY KEY, body TEXT);"
                  "CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);");
    env_.Install();
  }
  TestEnv env_;
};

// With shared keys, the same key inserted on both sides before either was
// synced is the same record: equal rows become one, different ones are an
// insert-insert conflict (never one side silently overwriting the other).
TEST_F(ContractTest, SameKeyInsertedOnBothSidesIsOneRecordOrAConflict) {
  env_.Write(L, "INSERT INTO ITEMS VALUES ('north', 1, 10, 'BOLT'), ('north', 2, 5, 'NUT')");
  env_.Write(M, "INSERT INTO stock VALUES ('north', 1, 10, 'bolt'), ('north', 2, 6, 'nut')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT QTY FROM ITEMS ORDER BY SKU"), "10\n5\n");
  EXPECT_EQ(env_.Query(M, "SELECT quantity FROM stock ORDER BY sku"), "10\n6\n") << "neither version overwritten";
  EXPECT_EQ(env_.Count(L, "_tandem_conflicts WHERE status = 'open' AND kind = 'insert-insert'") +
                env_.Count(M, "_tandem_conflicts WHERE status = 'open' AND kind = 'insert-insert'"),
            1);
  EXPECT_EQ(env_.Count(M, "_tandem_records WHERE entity = 'stock' AND NOT gone"), 1) << "the equal pair is linked";
  std::string id = env_.Count(L, "_tandem_conflicts WHERE status = 'open'")
                       ? "legacy:" + env_.Query(L, "SELECT id FROM _tandem_conflicts WHERE status = 'open'")
                       : "modern:" + env_.Query(M, "SELECT id FROM _tandem_conflicts WHERE status = 'open'");
  id.pop_back();  // the newline
  std::string out;
  EXPECT_EQ(testing::RunCommand(std::string(TANDEM_BINARY) + " conflicts resolve " + id + " --take modern -c " +
                                    env_.config_path(),
                                &out),
            0)
      << out;
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT QTY, DESCR FROM ITEMS ORDER BY SKU"), "10|BOLT\n6|NUT\n");
  EXPECT_EQ(env_.Count(M, "_tandem_records WHERE entity = 'stock' AND NOT gone"), 2);
  EXPECT_EQ(env_.Count(L, "_tandem_parked") + env_.Count(M, "_tandem_parked"), 0);
  // Linked: an edit now flows as for any record.
  env_.Write(L, "UPDATE ITEMS SET QTY = 7 WHERE SKU = 2");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT quantity FROM stock WHERE sku = 2"), "7\n");
}

// A record deleted and a new one inserted under the same key before Tandem
// syncs: the old one's delete is applied first, so the new row survives.
TEST_F(ContractTest, KeyReusedAfterADeleteKeepsTheNewRow) {
  env_.Write(L, "INSERT INTO ITEMS VALUES ('north', 28, 1, 'OLD')");
  env_.SyncOnce();
  env_.Write(L, "DELETE FROM ITEMS WHERE SKU = 28");
  env_.Write(L, "INSERT INTO ITEMS VALUES ('north', 28, 2, 'NEW')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT warehouse, sku, quantity, description FROM stock"), "north|28|2|new\n");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT WH, SKU, QTY, DESCR FROM ITEMS"), "north|28|2|NEW\n");
  EXPECT_EQ(env_.Count(L, "_tandem_conflicts") + env_.Count(M, "_tandem_conflicts"), 0);
}

TEST_F(ContractTest, CompositeEqualKeysSyncBothWays) {
  env_.Write(L, "INSERT INTO ITEMS VALUES ('north', 1, 10, 'BOLT'), ('south', 1, 20, 'NUT')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT warehouse, sku, quantity, description FROM stock ORDER BY 1"),
            "north|1|10|bolt\nsouth|1|20|nut\n");
  env_.Write(M, "UPDATE stock SET quantity = 11 WHERE warehouse = 'north' AND sku = 1;"
                "INSERT INTO stock VALUES ('east', 7, 70, 'washer')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT WH, SKU, QTY, DESCR FROM ITEMS ORDER BY 1"),
            "east|7|70|WASHER\nnorth|1|11|BOLT\nsouth|1|20|NUT\n");
  // A composite key change moves the row on the other side too.
  env_.Write(L, "UPDATE ITEMS SET WH = 'west' WHERE WH = 'south'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT warehouse, sku, quantity FROM stock ORDER BY 1"),
            "east|7|70\nnorth|1|11\nwest|1|20\n");
  env_.Write(M, "DELETE FROM stock WHERE warehouse = 'east'");
  env_.SyncOnce();
  EXPECT_EQ(env_.Count(L, "ITEMS"), 2);
}

// A one-way entity owns its data on one side: edits on the other side are
// never applied back; an update is reverted to the owner's values and a new
// row is put aside (issue 3, read_only_edits). An `off` entity is not synced.
TEST_F(ContractTest, OneWayEntityRevertsReadOnlySideEditsAndOffEntityIsNotSynced) {
  env_.Write(L, "INSERT INTO NOTES VALUES ('a', 'from legacy'); INSERT INTO AUDIT VALUES (1, 'legacy only')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(M, "SELECT code, body FROM notes"), "a|from legacy\n");
  EXPECT_EQ(env_.Count(M, "audit"), 0);
  env_.Write(M, "UPDATE notes SET body = 'edited on modern'; INSERT INTO notes VALUES ('b', 'modern only')");
  env_.SyncOnce();
  EXPECT_EQ(env_.Query(L, "SELECT CODE, TXT FROM NOTES"), "a|from legacy\n");
  EXPECT_EQ(env_.Query(M, "SELECT code, body FROM notes ORDER BY code"), "a|from legacy\nb|modern only\n");
  EXPECT_EQ(env_.Count(L, "_tandem_parked WHERE kind = 'conflict'"), 1) << "the modern-only row is put aside";
  // The read-only side is captured (to see such edits); the off entity nowhere.
  EXPECT_EQ(env_.Count(M, "sqlite_master WHERE type = 'trigger' AND tbl_name = 'notes'"), 4);
  EXPECT_EQ(env_.Count(L, "sqlite_master WHERE type = 'trigger' AND tbl_name = 'AUDIT'"), 0);
}

}  // namespace
}  // namespace tandem
