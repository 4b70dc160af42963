// TestEnv: a temporary folder with the example legacy and modern databases,
// a config, and capture installed -- the real thing, on real files or a real
// server. Either side may be PostgreSQL (Backends): a fresh database on the
// test server (support/pg_test_server.h) with examples/postgres/'s schema,
// and the config's `database:` for that side pointing at it.
// Writes made through Write() use their own connection, exactly as another
// application would; Sh() runs the sqlite3 shell as a separate process.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "connectors/sqlite/sqlite_handle.h"
#include "engine/ops/installer.h"
#include "engine/ops/status_report.h"
#include "engine/sync_engine.h"
#include "mapping/config.h"
#include "support/pg_test_server.h"

namespace tandem::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// examples/tandem.yaml with `conflicts_yaml` (a `conflicts:` block indented
// for an entity) added to the customer entity.
inline std::string ExampleConfigWithCustomerConflicts(const std::string& conflicts_yaml) {
  std::string cfg = ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/tandem.yaml");
  auto at = cfg.find("    direction: both");
  at = cfg.find('\n', at) + 1;
  return cfg.insert(at, conflicts_yaml);
}

// The head of a config over the example databases' URLs (TestEnv points a
// PostgreSQL side at its test database), up to `entities:`.
inline const std::string kExampleSystemsYaml =
    "version: 1\nsystems:\n  legacy: { database: \"sqlite:data/legacy.db\" }\n  modern: { database: "
    "\"sqlite:data/modern.db\" }\nprimary: legacy\nentities:\n";

// A name as the test schemas write it on `side`: modern names lower case;
// legacy names upper case, quoted on PostgreSQL (where unquoted names fold).
inline std::string NameOn(Side side, const std::string& lower, bool on_pg) {
  if (side == Side::kModern) return lower;
  std::string up;
  for (char c : lower) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return on_pg ? "\"" + up + "\"" : up;
}

// Which database system holds each side.
struct Backends {
  bool legacy_pg = false;
  bool modern_pg = false;
  // Schemas to create instead of the example's (SQL for that side's system).
  std::string legacy_schema, modern_schema;
};

// A named choice of database systems, for tests parameterized over them:
// INSTANTIATE_TEST_SUITE_P(Sides, T, Values(SystemsPair{"PgToPg", true, true}, ...), SystemsPairName).
struct SystemsPair {
  const char* name;
  bool legacy_pg, modern_pg;
  Backends backends() const { return Backends{legacy_pg, modern_pg, "", ""}; }
  bool any_pg() const { return legacy_pg || modern_pg; }
};
inline std::string SystemsPairName(const ::testing::TestParamInfo<SystemsPair>& p) { return p.param.name; }

class TestEnv {
 public:
  // `config_text`: YAML; defaults to examples/tandem.yaml. Its databases must
  // be the examples' (sqlite:data/legacy.db and sqlite:data/modern.db, or
  // postgresql://tandem@127.0.0.1:5432/legacy and .../modern); a side on
  // PostgreSQL gets its test database's URL instead.
  explicit TestEnv(std::string config_text = "", Backends backends = {}) {
    char tmpl[] = "/tmp/tandem-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::create_directories(dir_ + "/data");
    if (config_text.empty()) config_text = ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/tandem.yaml");
    const std::string examples = std::string(TANDEM_SOURCE_DIR) + "/examples/";
    for (Side side : {Side::kLegacy, Side::kModern}) {
      const bool legacy = side == Side::kLegacy;
      const bool on_pg = legacy ? backends.legacy_pg : backends.modern_pg;
      std::string schema = legacy ? backends.legacy_schema : backends.modern_schema;
      const std::string file = legacy ? "legacy_schema.sql" : "modern_schema.sql";
      if (schema.empty()) schema = ReadFile(examples + (on_pg ? "postgres/" : "") + file);
      if (!on_pg) {
        Exec(legacy ? legacy_path() : modern_path(), schema);
        continue;
      }
      auto& pg = pg_[legacy ? 0 : 1];
      pg = std::make_unique<PgTestDatabase>();
      pg->Exec(schema);
      // The example configs' URLs for this side: examples/*.yaml.
      std::string example_url = legacy ? "sqlite:data/legacy.db" : "sqlite:data/modern.db";
      auto at = config_text.find(example_url);
      if (at == std::string::npos) {
        example_url = std::string("postgresql://tandem@127.0.0.1:5432/") + (legacy ? "legacy" : "modern");
        at = config_text.find(example_url);
      }
      EXPECT_NE(at, std::string::npos) << "the config does not use an example URL for " << SideName(side);
      if (at != std::string::npos) config_text.replace(at, example_url.size(), pg->url());
    }
    config_path_ = dir_ + "/tandem.yaml";
    std::ofstream(config_path_) << config_text;
  }
  // The PostgreSQL database of `side`, or nullptr when it is SQLite.
  PgTestDatabase* pg(Side side) { return pg_[side == Side::kLegacy ? 0 : 1].get(); }
  ~TestEnv() {
    if (!getenv("TANDEM_KEEP_TEST_DIRS")) std::filesystem::remove_all(dir_);
  }

  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string legacy_path() const { return dir_ + "/data/legacy.db"; }
  std::string modern_path() const { return dir_ + "/data/modern.db"; }

  Config LoadConfig() {
    ParseOutcome p = ParseConfigFile(config_path_);
    EXPECT_TRUE(p.ok()) << (p.problems.empty() ? "" : p.problems[0].ToString());
    return p.config;
  }

  // `tandem install`, in-process.
  void Install() {
    Config config = LoadConfig();
    auto l = OpenConnector(config.legacy.resolved, {});
    auto m = OpenConnector(config.modern.resolved, {});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto expr_db = OpenExpressionDatabase();
    CompileOutcome c = CompileMapping(config, **l, **m, **expr_db);
    ASSERT_TRUE(c.problems.empty()) << c.problems[0].ToString();
    auto plan = PlanInstall(*c.mapping, **l, **m);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    Status done = ExecutePlan(*plan, **l, **m);
    ASSERT_TRUE(done.ok()) << done.ToString();
  }

  // `tandem run --once`, in-process, with a fresh engine (as a new process would).
  void SyncOnce() {
    auto engine = SyncEngine::Open(LoadConfig());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    Status st = (*engine)->RunUntilIdle();
    ASSERT_TRUE(st.ok()) << st.ToString();
    last_stats_[0] = (*engine)->stats(Side::kLegacy);
    last_stats_[1] = (*engine)->stats(Side::kModern);
  }
  const DirectionStats& last_stats(Side source) const { return last_stats_[source == Side::kLegacy ? 0 : 1]; }

  // True when no captured change waits to be applied in either direction
  // (`tandem status`'s pending counts are all 0). For waiting on a running
  // `tandem run` to catch up.
  bool CaughtUp() {
    Config config = LoadConfig();
    auto l = OpenConnector(config.legacy.resolved, {});
    auto m = OpenConnector(config.modern.resolved, {});
    if (!l.ok() || !m.ok()) return false;
    auto report = BuildStatusReport(config, **l, **m);
    if (!report.ok()) return false;
    for (auto& d : (*report)["directions"])
      for (auto& e : d["entities"])
        if (e["pending"].get<int64_t>() != 0) return false;
    return true;
  }
  // Waits (polling, up to `timeout`) until CaughtUp().
  bool WaitUntilCaughtUp(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!CaughtUp()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // An "application" connection to a side, through the Connector API, for
  // either database system (BeginWrite/Commit are captured, unlike BeginApply).
  Connector& AppDb(Side side) {
    auto& c = app_dbs_[side == Side::kLegacy ? 0 : 1];
    if (!c) {
      // Named apart from Tandem's own sessions (application_name 'tandem').
      auto opened = OpenConnector(pg(side) ? pg(side)->url() + "?application_name=test-app"
                                           : "sqlite:" + (side == Side::kLegacy ? legacy_path() : modern_path()),
                                  {});
      EXPECT_TRUE(opened.ok()) << opened.status().ToString();
      c = std::move(opened).value();
    }
    return *c;
  }

  // A separate "application" connection per SQLite database.
  SqliteHandle& App(Side side) {
    auto& h = apps_[side == Side::kLegacy ? 0 : 1];
    if (!h) h = std::move(SqliteHandle::Open(side == Side::kLegacy ? legacy_path() : modern_path(),
                                             SQLITE_OPEN_READWRITE, 5000)).value();
    return *h;
  }
  void Write(Side side, const std::string& sql) {
    if (pg(side)) return pg(side)->Exec(sql);
    Status st = App(side).ExecScript(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // Runs a query on a side; returns rows rendered as "a|b|c" lines (values in
  // that database's text form).
  std::string Query(Side side, const std::string& sql) {
    if (pg(side)) return pg(side)->Query(sql);
    std::vector<Row> rows;
    Status st = App(side).Run(sql, {}, &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::string out;
    for (auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) out += (i ? "|" : "") + (r[i].is_null() ? "NULL" : r[i].ToCodeText());
      out += "\n";
    }
    return out;
  }
  int64_t Count(Side side, const std::string& table_and_where) {
    if (pg(side)) {
      std::string n = pg(side)->Query("SELECT count(*) FROM " + table_and_where);
      return n.empty() ? -1 : std::stoll(n);
    }
    std::vector<Row> rows;
    EXPECT_TRUE(App(side).Run("SELECT count(*) FROM " + table_and_where, {}, &rows).ok());
    return rows.empty() ? -1 : rows[0][0].as_integer();
  }
  // Records `count_sql`'s result into table `seen` at every commit of a Tandem
  // batch into `side` (a trigger on its position row), to observe what readers
  // of that database can see between Tandem's transactions.
  void RecordAtEveryBatchCommit(Side side, const std::string& count_sql) {
    Write(side, "CREATE TABLE seen(n INTEGER);"
                "CREATE TRIGGER seen_i AFTER INSERT ON _tandem_position BEGIN INSERT INTO seen " + count_sql + "; END;"
                "CREATE TRIGGER seen_u AFTER UPDATE ON _tandem_position BEGIN INSERT INTO seen " + count_sql + "; END;");
  }

  // The sqlite3 shell as a separate writer process.
  void Sh(Side side, const std::string& sql) {
    std::string file = dir_ + "/sh.sql";
    std::ofstream(file) << ".timeout 5000\n" << sql << "\n";
    std::string cmd = "sqlite3 '" + (side == Side::kLegacy ? legacy_path() : modern_path()) + "' < '" + file + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

 private:
  static void Exec(const std::string& path, const std::string& sql) {
    auto h = SqliteHandle::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->ExecScript(sql).ok());
  }

  std::string dir_;
  std::string config_path_;
  std::unique_ptr<SqliteHandle> apps_[2];
  std::unique_ptr<PgTestDatabase> pg_[2];
  std::unique_ptr<Connector> app_dbs_[2];
  DirectionStats last_stats_[2];
};

}  // namespace tandem::testing
