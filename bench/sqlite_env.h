// The SQLite benchmarks' setup (bench/sync_bench.cc, bench/sqlite_kinds.cc):
// a fresh folder with the example schemas (examples/legacy_schema.sql,
// examples/modern_schema.sql), the example customer mapping, capture
// installed in-process (what `tandem install` does).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include <fmt/format.h>

#include "connectors/sqlite/sqlite_handle.h"
#include "engine/ops/installer.h"
#include "engine/sync_engine.h"

namespace tandem::bench {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline constexpr const char* kConfig = R"YAML(version: 1
systems:
  legacy: { database: "sqlite:data/legacy.db" }
  modern: { database: "sqlite:data/modern.db" }
primary: legacy
entities:
  customer:
    legacy: { table: CUSTMAST, key: CUSTNO, new_keys: database }
    modern: { table: customers, key: id, new_keys: uuid }
    fields:
      email: EMAIL
      status: { legacy: STAT, map: { A: active, I: inactive } }
      balance: { legacy: BAL_CENTS, to_modern: "BAL_CENTS / 100.0", to_legacy: "CAST(round(balance * 100) AS INTEGER)" }
    to_modern:
      first_name: "trim(substr(CNAME, instr(CNAME, ',') + 1))"
      last_name:  "trim(substr(CNAME, 1, instr(CNAME, ',') - 1))"
    to_legacy:
      CNAME: "last_name || ', ' || first_name"
)YAML";

inline std::unique_ptr<SqliteHandle> Open(const std::string& path, int busy_ms = 5000) {
  auto db = SqliteHandle::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_ms);
  if (!db.ok()) {
    fmt::print(stderr, "benchmark failed: cannot open {}: {}\n", path, db.status().ToString());
    std::exit(1);
  }
  return std::move(db).value();
}

inline void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    fmt::print(stderr, "benchmark failed at {}: {}\n", what, st.ToString());
    std::exit(1);
  }
}

// Folders of the Envs alive now, removed at exit also when a benchmark fails (std::exit skips destructors).
inline std::set<std::string>& LiveEnvDirs() {
  static std::set<std::string> dirs;
  return dirs;
}
inline void RemoveLiveEnvDirs() {
  for (const std::string& dir : LiveEnvDirs()) std::filesystem::remove_all(dir);
}

// A fresh folder with the example schemas, the customer config, capture installed.
struct Env {
  std::string dir;
  std::string config_path;
  std::string legacy() const { return dir + "/data/legacy.db"; }
  std::string modern() const { return dir + "/data/modern.db"; }

  explicit Env(const std::string& name, bool install = true, const std::string& extra_config = "") {
    dir = std::filesystem::temp_directory_path() / ("tandem-bench-" + name + "-" + std::to_string(getpid()));
    static const bool registered = (LiveEnvDirs(), std::atexit(RemoveLiveEnvDirs), true);
    (void)registered;
    std::filesystem::remove_all(dir);
    LiveEnvDirs().insert(dir);
    std::filesystem::create_directories(dir + "/data");
    config_path = dir + "/tandem.yaml";
    std::ofstream(config_path) << kConfig << extra_config;
    Check(Open(legacy())->ExecScript(ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/legacy_schema.sql") +
                                     "PRAGMA journal_mode=WAL;"),
          "legacy schema");
    Check(Open(modern())->ExecScript(ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/modern_schema.sql") +
                                     "PRAGMA journal_mode=WAL;"),
          "modern schema");
    if (install) Install();
  }
  ~Env() {
    std::filesystem::remove_all(dir);
    LiveEnvDirs().erase(dir);
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  Config LoadConfig() const {
    ParseOutcome p = ParseConfigFile(config_path);
    if (!p.ok()) {
      fmt::print(stderr, "{}\n", p.problems[0].ToString());
      std::exit(1);
    }
    return p.config;
  }
  void Install() {
    Config c = LoadConfig();
    auto l = OpenConnector(c.legacy.resolved, {});
    auto m = OpenConnector(c.modern.resolved, {});
    Check(l.status(), "open legacy");
    Check(m.status(), "open modern");
    auto expr = OpenExpressionDatabase();
    Check(expr.status(), "expression database");
    CompileOutcome compiled = CompileMapping(c, **l, **m, **expr);
    if (!compiled.problems.empty()) {
      fmt::print(stderr, "benchmark failed: {}\n", compiled.problems[0].ToString());
      std::exit(1);
    }
    auto plan = PlanInstall(*compiled.mapping, **l, **m);
    Check(plan.status(), "plan install");
    Check(ExecutePlan(*plan, **l, **m), "install");
  }
};

}  // namespace tandem::bench
