// The PostgreSQL test helpers against the real test server scripts/test.sh
// starts: databases come and go, Query renders rows like TestEnv::Query, and
// the server can be stopped and started without losing data.
#include "support/pg_test_server.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace tandem {
namespace {

using testing::PgTestDatabase;

// "1\n" when database `name` exists on the test server, "0\n" when not.
std::string DatabaseCount(PgTestDatabase& observer, const std::string& name) {
  return observer.Query("SELECT count(*) FROM pg_database WHERE datname = '" + name + "'");
}

TEST(PgTestDatabaseTest, CreatesAFreshDatabasePerObjectAndDropsItWhenDestroyed) {
  TANDEM_REQUIRE_PG();
  PgTestDatabase observer;
  std::string name;
  {
    PgTestDatabase db;
    name = db.name();
    EXPECT_EQ(db.url(), *testing::PgBaseUrl() + "/" + name);
    EXPECT_NE(name, observer.name());
    EXPECT_EQ(DatabaseCount(observer, name), "1\n");
    ASSERT_NO_FATAL_FAILURE(db.Exec("CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
    EXPECT_EQ(db.Query("SELECT current_database(), current_user, count(*) FROM t"), name + "|tandem|1\n");
    EXPECT_EQ(observer.Query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "0\n");
  }
  EXPECT_EQ(DatabaseCount(observer, name), "0\n");
}

TEST(PgTestDatabaseTest, QueryRendersRowsLikeTestEnvWithNullAsNULL) {
  TANDEM_REQUIRE_PG();
  PgTestDatabase db;
  ASSERT_NO_FATAL_FAILURE(db.Exec(
      "CREATE TABLE c(id int PRIMARY KEY, name text, balance numeric(10,2), active boolean);"
      "INSERT INTO c VALUES (1, 'Ada', 12.50, true), (2, NULL, NULL, false), (3, 'a|b', -1, NULL);"));
  EXPECT_EQ(db.Query("SELECT id, name, balance, active FROM c ORDER BY id"),
            "1|Ada|12.50|t\n"
            "2|NULL|NULL|f\n"
            "3|a|b|-1.00|NULL\n");
  EXPECT_EQ(db.Query("SELECT id FROM c WHERE false"), "");
  EXPECT_EQ(db.Query("UPDATE c SET name = 'x' WHERE id = 2; SELECT name FROM c WHERE id = 2"), "x\n");
  EXPECT_NONFATAL_FAILURE(db.Query("SELECT * FROM missing"), "relation \"missing\" does not exist");
}

// Runs alone (a *SerialTest suite): it stops the server every test shares.
TEST(PgClusterSerialTest, StopAndStartKeepDataAndUrlAndTheDatabaseSessionReconnects) {
  TANDEM_REQUIRE_PG();
  PgTestDatabase db;
  ASSERT_NO_FATAL_FAILURE(db.Exec("CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'kept')"));
  {
    testing::PgClusterStoppedScope down;
    ASSERT_FALSE(HasFailure());
    std::string error;
    EXPECT_EQ(testing::PgConnect(db.url(), &error), nullptr);
    EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;
  }
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(db.Query("SELECT id, v FROM t"), "1|kept\n");
  // Starting a running server is a no-op.
  EXPECT_TRUE(testing::PgClusterStart());
  EXPECT_EQ(db.Query("SELECT count(*) FROM t"), "1\n");
}

}  // namespace
}  // namespace tandem
