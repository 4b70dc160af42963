// Never a wrong value (issue 11): typed code maps, strict conversions, NaN.
// Each test is a scenario a user met, on real databases: what used to be
// written quietly (0, NULL, '', a bogus conflict) is now either the exact
// value or a change put aside with the field, the value and the reason.
#include <gtest/gtest.h>

#include <fstream>

#include "support/pg_test_server.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::Backends;
using testing::SystemsPair;
using testing::SystemsPairName;
using testing::TestEnv;

constexpr Side L = Side::kLegacy;
constexpr Side M = Side::kModern;

class ExactValuesTest : public ::testing::TestWithParam<SystemsPair> {
 protected:
  void SetUp() override {
    if (GetParam().any_pg()) TANDEM_REQUIRE_PG();
  }
  Backends With(std::string legacy_schema, std::string modern_schema) const {
    Backends b = GetParam().backends();
    b.legacy_schema = std::move(legacy_schema);
    b.modern_schema = std::move(modern_schema);
    return b;
  }
};

// The docs' Y/N code map onto a boolean column: a PostgreSQL boolean reads
// as 1/0, a YAML `true` is text; both are one value now. Modern inserts and
// edits come back to legacy instead of being put aside.
TEST_P(ExactValuesTest, BooleanCodeMapFlowsBothWays) {
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  item:
    legacy: { table: ITEM, key: ID, new_keys: same }
    modern: { table: item, key: id, new_keys: same }
    fields:
      available: { legacy: AVAIL, map: { Y: true, N: false } }
      name: NAME
)YAML";
  const bool pg = GetParam().modern_pg;
  TestEnv env(config, With(GetParam().legacy_pg ? "CREATE TABLE \"ITEM\"(\"ID\" bigint PRIMARY KEY, \"AVAIL\" char(1), "
                                                  "\"NAME\" text)"
                                                : "CREATE TABLE ITEM(ID INTEGER PRIMARY KEY, AVAIL CHAR(1), NAME TEXT)",
                           pg ? "CREATE TABLE item(id bigint PRIMARY KEY, available boolean NOT NULL, name text)"
                              : "CREATE TABLE item(id INTEGER PRIMARY KEY, available BOOLEAN NOT NULL, name TEXT)"));
  env.Install();
  env.Write(L, GetParam().legacy_pg ? "INSERT INTO \"ITEM\" VALUES (1, 'Y', 'a'), (2, 'N', 'b')"
                                    : "INSERT INTO ITEM VALUES (1, 'Y', 'a'), (2, 'N', 'b')");
  env.SyncOnce();
  EXPECT_EQ(env.Query(M, pg ? "SELECT id, available::int FROM item ORDER BY id" : "SELECT id, available FROM item ORDER BY id"),
            "1|1\n2|0\n")
      << "a YAML true is stored as the database's true (1 in SQLite)";
  env.Write(M, "UPDATE item SET available = " + std::string(pg ? "false" : "0") + " WHERE id = 1");
  env.Write(M, "INSERT INTO item VALUES (3, " + std::string(pg ? "true" : "1") + ", 'c')");
  env.Write(M, "UPDATE item SET name = 'b2' WHERE id = 2");
  env.SyncOnce();
  const std::string legacy_rows = GetParam().legacy_pg ? "SELECT \"ID\", \"AVAIL\", \"NAME\" FROM \"ITEM\" ORDER BY 1"
                                                       : "SELECT ID, AVAIL, NAME FROM ITEM ORDER BY 1";
  EXPECT_EQ(env.Query(L, legacy_rows), "1|N|a\n2|N|b2\n3|Y|c\n");
  EXPECT_EQ(env.Count(L, "_tandem_parked") + env.Count(M, "_tandem_parked"), 0);
  EXPECT_EQ(env.Count(L, "_tandem_conflicts") + env.Count(M, "_tandem_conflicts"), 0);
  env.SyncOnce();
  EXPECT_EQ(env.last_stats(L).changes_read + env.last_stats(M).changes_read, 0) << "nothing echoes";
}

// Failed conversions used to be written as 0, NULL or '': now the change is
// put aside with the field, the value and why; good rows of the same batch
// still arrive.
TEST_P(ExactValuesTest, FailedConversionsArePutAsideNeverWrittenAsZeroNullOrEmpty) {
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  employee:
    legacy: { table: EMP, key: ID, new_keys: same }
    modern: { table: employee, key: id, new_keys: same }
    fields:
      salary: { legacy: SAL_CENTS, to_modern: "SAL_CENTS / 100.0", to_legacy: "CAST(round(salary * 100) AS INTEGER)" }
      hired_on: { legacy: HIREDT, to_modern: "date(HIREDT)", to_legacy: "hired_on" }
    to_modern:
      first_name: "trim(substr(NAME, instr(NAME, ',') + 1))"
      last_name: "trim(substr(NAME, 1, instr(NAME, ',') - 1))"
    to_legacy:
      NAME: "last_name || ', ' || first_name"
)YAML";
  const bool lpg = GetParam().legacy_pg, mpg = GetParam().modern_pg;
  TestEnv env(config,
              With(lpg ? "CREATE TABLE \"EMP\"(\"ID\" bigint PRIMARY KEY, \"SAL_CENTS\" bigint, \"HIREDT\" text, "
                         "\"NAME\" text)"
                       : "CREATE TABLE EMP(ID INTEGER PRIMARY KEY, SAL_CENTS INTEGER, HIREDT TEXT, NAME TEXT)",
                   mpg ? "CREATE TABLE employee(id bigint PRIMARY KEY, salary text, hired_on text, first_name text, "
                         "last_name text)"
                       : "CREATE TABLE employee(id INTEGER PRIMARY KEY, salary TEXT, hired_on TEXT, first_name TEXT, "
                         "last_name TEXT)"));
  env.Install();
  const std::string emp = lpg ? "\"EMP\"" : "EMP";
  env.Write(L, "INSERT INTO " + emp + " VALUES (1, 150000, '2020-01-15', 'Doe, John'), "
               "(2, 90000, 'unbekannt', 'Roe, Jane'), (3, 50000, '2021-03-01', 'Smith')");
  env.SyncOnce();
  EXPECT_EQ(env.Query(M, "SELECT id, salary, hired_on, first_name, last_name FROM employee ORDER BY id"),
            "1|1500|2020-01-15|John|Doe\n")
      << "the date that does not parse and the name without a separator are put aside";
  std::string reasons = env.Query(M, "SELECT source_key, reason FROM _tandem_parked ORDER BY source_key");
  EXPECT_NE(reasons.find("field 'hired_on': its expression yields NULL from legacy HIREDT 'unbekannt'"),
            std::string::npos)
      << reasons;
  EXPECT_NE(reasons.find("legacy NAME 'Smith' would not come back"), std::string::npos) << reasons;

  // A modern salary that is not a number: never 0 on legacy.
  env.Write(M, "UPDATE employee SET salary = 'n/a' WHERE id = 1");
  env.SyncOnce();
  EXPECT_EQ(env.Query(L, "SELECT " + std::string(lpg ? "\"SAL_CENTS\"" : "SAL_CENTS") + " FROM " + emp +
                             " WHERE " + (lpg ? "\"ID\"" : "ID") + " = 1"),
            "150000\n");
  reasons = env.Query(L, "SELECT reason FROM _tandem_parked");
  EXPECT_NE(reasons.find("field 'salary': modern salary 'n/a' would not come back"), std::string::npos) << reasons;
  // Fixed at the source, the record flows again (a later change of it
  // waits behind the put-aside one until it is retried).
  env.Write(M, "UPDATE employee SET salary = '1600.00' WHERE id = 1");
  env.SyncOnce();
  EXPECT_EQ(env.Count(L, "_tandem_parked"), 1) << "still held behind its put-aside change";
}

// A float NaN equal on both sides is one value: edits of other fields are
// merged with no conflict, and `manual` does not hold the record for ever.
TEST_P(ExactValuesTest, NaNIsEqualToItself) {
  if (!GetParam().legacy_pg || !GetParam().modern_pg) GTEST_SKIP() << "SQLite stores NaN as NULL";
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  reading:
    legacy: { table: reading, key: id, new_keys: same }
    modern: { table: reading, key: id, new_keys: same }
    fields: { val: val, note: note, unit: unit }
    conflicts: { default: manual }
)YAML";
  const std::string schema = "CREATE TABLE reading(id bigint PRIMARY KEY, val double precision, note text, unit text)";
  TestEnv env(config, With(schema, schema));
  env.Install();
  env.Write(L, "INSERT INTO reading VALUES (1, 'NaN', 'a', 'm')");
  env.SyncOnce();
  EXPECT_EQ(env.Query(M, "SELECT val, note FROM reading"), "NaN|a\n");
  env.Write(L, "UPDATE reading SET note = 'b'");
  env.Write(M, "UPDATE reading SET unit = 'km'");
  env.SyncOnce();
  EXPECT_EQ(env.Count(L, "_tandem_conflicts") + env.Count(M, "_tandem_conflicts"), 0);
  EXPECT_EQ(env.Query(L, "SELECT val, note, unit FROM reading"), "NaN|b|km\n");
  EXPECT_EQ(env.Query(M, "SELECT val, note, unit FROM reading"), "NaN|b|km\n");
}

INSTANTIATE_TEST_SUITE_P(Sides, ExactValuesTest,
                         ::testing::Values(SystemsPair{"SqliteToSqlite", false, false},
                                           SystemsPair{"SqliteToPg", false, true},
                                           SystemsPair{"PgToSqlite", true, false},
                                           SystemsPair{"PgToPg", true, true}),
                         SystemsPairName);

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// `tandem check` on empty tables (nothing to sample): what the declared
// types alone say, with file:line; --strict fails on warnings.
TEST(CheckTypesTest, EmptyTablesAreCheckedByTheirDeclaredTypes) {
  TANDEM_REQUIRE_PG();
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  item:
    legacy: { table: ITEM, key: ID, new_keys: database }
    modern: { table: item, key: id, new_keys: uuid }
    fields:
      available: { legacy: AVAIL, map: { Y: true, N: maybe } }
      qty: QTY
)YAML";
  testing::TestEnv env(config, testing::Backends{false, true,
                                                 "CREATE TABLE ITEM(ID INTEGER PRIMARY KEY, AVAIL TEXT, QTY TEXT)",
                                                 "CREATE TABLE item(id bigint PRIMARY KEY, available boolean, qty "
                                                 "integer, sku text NOT NULL)"});
  std::string out;
  const std::string check = std::string(TANDEM_BINARY) + " check -c " + env.config_path() + " 2>&1";
  EXPECT_EQ(testing::RunCommand(check, &out), 1) << out;
  EXPECT_NE(out.find("tandem.yaml:11:"), std::string::npos) << out;
  EXPECT_NE(out.find("map value 'maybe' cannot be stored in modern column 'available' (boolean (PostgreSQL)): not a "
                     "boolean"),
            std::string::npos)
      << out;

  // With the map fixed: the key and NOT NULL problems, and a warning.
  std::string fixed = testing::ReadFile(env.config_path());
  fixed.replace(fixed.find("maybe"), 5, "false");
  std::ofstream(env.config_path()) << fixed;
  EXPECT_EQ(testing::RunCommand(check, &out), 1) << out;
  EXPECT_NE(out.find("new_keys: uuid makes 36-character text keys, but the modern key column 'id' is bigint"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("modern column item.sku is NOT NULL without a default, and no rule fills it"), std::string::npos)
      << out;
  EXPECT_NE(out.find("tandem.yaml:12:7: entity 'item', field 'qty'"), std::string::npos) << out;
  EXPECT_NE(out.find("legacy column 'QTY' (TEXT (SQLite, text affinity)) is copied into modern column 'qty' (integer "
                     "(PostgreSQL)): values that are not a valid integer are put aside"),
            std::string::npos)
      << out;

  // Only the warning left: ok, unless --strict.
  env.Write(Side::kModern, "DROP TABLE item; CREATE TABLE item(id uuid PRIMARY KEY, available boolean, qty integer, "
                           "sku text NOT NULL DEFAULT '')");
  EXPECT_EQ(testing::RunCommand(check, &out), 0) << out;
  EXPECT_NE(out.find("ok (1 entities, 1 warning(s))"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(std::string(TANDEM_BINARY) + " check --strict -c " + env.config_path() + " 2>&1", &out),
            1)
      << out;
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// A populated database: `tandem check` samples its rows and names the
// values the first sync would put aside, before it runs.
TEST(CheckTypesTest, SampledRowsThatWouldBePutAsideAreWarnedAbout) {
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  employee:
    legacy: { table: EMP, key: ID, new_keys: same }
    modern: { table: employee, key: id, new_keys: same }
    fields:
      hired_on: { legacy: HIREDT, to_modern: "date(HIREDT)", to_legacy: "hired_on" }
)YAML";
  testing::TestEnv env(config, testing::Backends{false, false, "CREATE TABLE EMP(ID INTEGER PRIMARY KEY, HIREDT TEXT)",
                                                 "CREATE TABLE employee(id INTEGER PRIMARY KEY, hired_on TEXT)"});
  env.Write(Side::kLegacy, "INSERT INTO EMP VALUES (1, '2020-01-15'), (2, 'unbekannt'), (3, '2021-02-03')");
  std::string out;
  const std::string check = std::string(TANDEM_BINARY) + " check -c " + env.config_path() + " 2>&1";
  EXPECT_EQ(testing::RunCommand(check, &out), 0) << out;
  EXPECT_NE(out.find("warning: entity 'employee': 1 of 3 sampled legacy rows would be put aside when synced to the "
                     "modern side, e.g. field 'hired_on': its expression yields NULL from legacy HIREDT 'unbekannt'"),
            std::string::npos)
      << out;
  EXPECT_EQ(testing::RunCommand(std::string(TANDEM_BINARY) + " check --strict -c " + env.config_path() + " 2>&1", &out),
            1);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// An expression over number columns is tried on typical numbers: one whose
// results a typed column cannot hold is warned about before it runs.
TEST(CheckTypesTest, ExpressionsOverNumbersAreTriedOnTypicalValues) {
  TANDEM_REQUIRE_PG();
  const std::string config = testing::kExampleSystemsYaml + R"YAML(  item:
    legacy: { table: ITEM, key: ID, new_keys: same }
    modern: { table: item, key: id, new_keys: same }
    fields:
      price: { legacy: AMT, to_modern: "AMT * 0.01", to_legacy: "CAST(round(price * 100) AS INTEGER)" }
      total: { legacy: TOT, to_modern: "TOT / 100.0", to_legacy: "CAST(round(total * 100) AS INTEGER)" }
)YAML";
  testing::TestEnv env(config, testing::Backends{false, true, "CREATE TABLE ITEM(ID INTEGER PRIMARY KEY, AMT INTEGER, TOT INTEGER)",
                                                 "CREATE TABLE item(id bigint PRIMARY KEY, price numeric(12,2), total "
                                                 "numeric(12,2))"});
  std::string out;
  EXPECT_EQ(testing::RunCommand(std::string(TANDEM_BINARY) + " check -c " + env.config_path() + " 2>&1", &out), 0);
  EXPECT_NE(out.find("field 'price': with AMT = 1999 the expression gives 19.990000000000002"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("field 'total'"), std::string::npos) << "TOT / 100.0 always fits: " << out;
  // Text built from unbounded text into varchar(n).
  env.Write(Side::kModern, "ALTER TABLE item ADD COLUMN label varchar(10)");
  env.Write(Side::kLegacy, "ALTER TABLE ITEM ADD COLUMN NAME TEXT");
  std::string cfg = testing::ReadFile(env.config_path());
  cfg += "    to_modern: { label: \"upper(NAME)\" }\n";
  std::ofstream(env.config_path()) << cfg;
  EXPECT_EQ(testing::RunCommand(std::string(TANDEM_BINARY) + " check -c " + env.config_path() + " 2>&1", &out), 0);
  EXPECT_NE(out.find("field 'label': the expression reads legacy column 'NAME' (TEXT (SQLite, text affinity)) and "
                     "writes modern column 'label' (character varying(10) (PostgreSQL)): results longer than 10 "
                     "characters are put aside"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace tandem
