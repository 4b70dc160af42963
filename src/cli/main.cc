// tandem: the command-line interface. One function per command; each returns
// the process exit code: 0 ok, 1 a problem found or reported, 2 bad usage.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "connectors/connector.h"
#include "core/secrets.h"
#include "engine/conflict_queue.h"
#include "engine/installer.h"
#include "engine/source_identity.h"
#include "engine/status_report.h"
#include "engine/sync_engine.h"
#include "mapping/entity_mapping.h"
#include "mapping/lens_check.h"
#include "mapping/type_check.h"

namespace tandem {

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

// Loads and structurally checks the config; prints problems.
std::optional<Config> LoadConfig(const std::string& path) {
  ParseOutcome parsed = ParseConfigFile(path);
  if (!parsed.ok()) {
    for (auto& p : parsed.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
    PrintScrubbed(stderr, "{} problem(s) in {}\n", parsed.problems.size(), path);
    return std::nullopt;
  }
  return parsed.config;
}

struct Databases {
  std::unique_ptr<Connector> legacy, modern;
};

std::optional<Databases> OpenDatabases(const Config& config) {
  Databases dbs;
  ConnectorOptions opts;
  opts.busy_timeout_ms = config.sync.busy_timeout_ms;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    auto c = OpenConnector(config.system(s).resolved, opts);
    if (!c.ok()) {
      PrintScrubbed(stderr, "{}: {} database: {}\n", config.system(s).where.ToString(), SideName(s), c.status().message());
      return std::nullopt;
    }
    (s == Side::kLegacy ? dbs.legacy : dbs.modern) = std::move(c).value();
  }
  return dbs;
}

int CmdCheck(const std::string& path, int sample_rows, bool strict) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  auto expr_db = OpenExpressionDatabase();
  CompileOutcome compiled = CompileMapping(*config, *dbs->legacy, *dbs->modern, **expr_db);
  for (auto& p : compiled.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
  if (!compiled.problems.empty()) {
    PrintScrubbed(stderr, "{} problem(s) in {}\n", compiled.problems.size(), path);
    return 1;
  }
  // What the declared column types say, before any row exists.
  int errors = 0, warnings = 0;
  auto types = CheckTypes(*compiled.mapping, *dbs->legacy, *dbs->modern);
  if (!types.ok()) {
    PrintScrubbed(stderr, "warning: could not read the column types: {}\n", types.status().message());
    ++warnings;
  } else {
    for (auto& f : *types) {
      PrintScrubbed(stderr, "{}{}\n", f.error ? "" : "warning: ", f.problem.ToString());
      ++(f.error ? errors : warnings);
    }
  }
  // The mapping as a lens: sample rows there and back, name what does not return.
  auto lens = CheckLensRoundTrip(*compiled.mapping, *dbs->legacy, *dbs->modern, sample_rows);
  if (!lens.ok()) {
    PrintScrubbed(stderr, "warning: could not sample rows for the round-trip check: {}\n", lens.status().message());
    ++warnings;
  } else {
    for (auto& f : *lens) PrintScrubbed(stderr, "warning: {}\n", f.ToString());
    warnings += static_cast<int>(lens->size());
  }
  if (errors > 0) {
    PrintScrubbed(stderr, "{} problem(s), {} warning(s) in {}\n", errors, warnings, path);
    return 1;
  }
  for (Side s : {Side::kLegacy, Side::kModern}) {
    auto installed = (s == Side::kLegacy ? dbs->legacy : dbs->modern)->IsInstalled();
    PrintScrubbed("{} database {}: {}\n", SideName(s), config->system(s).Shown(),
               installed.ok() && *installed ? "capture installed" : "capture not installed (run 'tandem install')");
  }
  // Each direction's source: the database, and the history, its position came from.
  for (Side source : {Side::kLegacy, Side::kModern}) {
    Connector& src = source == Side::kLegacy ? *dbs->legacy : *dbs->modern;
    Connector& dst = source == Side::kLegacy ? *dbs->modern : *dbs->legacy;
    auto installed_l = dbs->legacy->IsInstalled();
    auto installed_m = dbs->modern->IsInstalled();
    if (!installed_l.ok() || !installed_m.ok() || !*installed_l || !*installed_m) break;  // install first
    auto upgrade_l = dbs->legacy->UpgradeControlTablesSql();
    auto upgrade_m = dbs->modern->UpgradeControlTablesSql();
    if (!upgrade_l.ok() || !upgrade_m.ok() || !upgrade_l->empty() || !upgrade_m->empty()) break;  // upgrade first
    auto stopped = StoppedDirectionMessage(*config, src, dst, source);
    if (!stopped.ok()) {
      PrintScrubbed(stderr, "warning: could not check the {} database's identity: {}\n", SideName(source),
                    stopped.status().message());
      ++warnings;
    } else if (*stopped) {
      PrintScrubbed(stderr, "{}\n", **stopped);
      ++errors;
    }
  }
  if (errors > 0) {
    PrintScrubbed(stderr, "{} problem(s), {} warning(s) in {}\n", errors, warnings, path);
    return 1;
  }
  if (warnings > 0 && strict) {
    PrintScrubbed(stderr, "{} warning(s) in {} (--strict)\n", warnings, path);
    return 1;
  }
  PrintScrubbed("{}: ok ({} entities{})\n", path, compiled.mapping->entities.size(),
             warnings ? fmt::format(", {} warning(s)", warnings) : std::string());
  return 0;
}

int CmdInstall(const std::string& path, bool dry_run, bool uninstall) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  Result<InstallPlan> plan = Status::Ok();
  std::unique_ptr<SqliteHandle> expr_db;
  CompileOutcome compiled;
  if (uninstall) {
    plan = PlanUninstall(*dbs->legacy, *dbs->modern);
  } else {
    expr_db = std::move(OpenExpressionDatabase()).value();
    compiled = CompileMapping(*config, *dbs->legacy, *dbs->modern, *expr_db);
    if (!compiled.problems.empty()) {
      for (auto& p : compiled.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
      PrintScrubbed(stderr, "{} problem(s); nothing installed\n", compiled.problems.size());
      return 1;
    }
    plan = PlanInstall(*compiled.mapping, *dbs->legacy, *dbs->modern);
  }
  if (!plan.ok()) {
    PrintScrubbed(stderr, "{}\n", plan.status().message());
    return 1;
  }
  if (dry_run) {
    for (Side s : {Side::kLegacy, Side::kModern}) {
      PrintScrubbed("-- {} database: {}\n", SideName(s), config->system(s).Shown());
      for (auto& sql : plan->statements[s == Side::kLegacy ? 0 : 1]) PrintScrubbed("{};\n", sql);
    }
    return 0;
  }
  Status st = ExecutePlan(*plan, *dbs->legacy, *dbs->modern);
  if (!st.ok()) {
    PrintScrubbed(stderr, "{} failed: {}\n", uninstall ? "uninstall" : "install", st.message());
    return 1;
  }
  spdlog::info("{} on both databases", uninstall ? "capture and control tables removed (data kept)"
                                                : "control tables and capture triggers installed");
  return 0;
}

int CmdRun(const std::string& path, bool once) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto engine = SyncEngine::Open(*config);
  // A database that is down or restarting when `tandem run` starts is waited
  // for, as during the run (`--once` reports it at once).
  // The engine lock held: a process that was just killed may keep it until
  // its server session ends; give that a few seconds before reporting it.
  const auto busy_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto may_retry = [&](const Status& st) {
    return st.retryable() ||
           (st.code() == StatusCode::kBusy && std::chrono::steady_clock::now() < busy_deadline);
  };
  for (int backoff_ms = 50; !once && !engine.ok() && may_retry(engine.status()) && !g_stop.load();
       backoff_ms = std::min(backoff_ms * 2, 5000)) {
    spdlog::warn("cannot start yet: {}; retrying in {} ms", engine.status().message(), backoff_ms);
    for (int waited = 0; waited < backoff_ms && !g_stop.load(); waited += 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    engine = SyncEngine::Open(*config);
  }
  if (!engine.ok()) {
    PrintScrubbed(stderr, "{}\n", engine.status().message());
    return 1;
  }
  Status st;
  if (once) {
    st = (*engine)->RunUntilIdle();
  } else {
    spdlog::info("syncing {} <-> {} (Ctrl-C to stop)", config->legacy.Shown(), config->modern.Shown());
    st = (*engine)->Run(g_stop);
  }
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const DirectionStats& d = (*engine)->stats(s);
    spdlog::info("{}: {} changes read, {} records written, {} put aside, {} conflicts", DirectionName(s),
                 d.changes_read, d.records_applied, d.parked, d.conflicts);
  }
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  return 0;
}

int CmdStatus(const std::string& path, bool json) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  auto report = BuildStatusReport(*config, *dbs->legacy, *dbs->modern);
  if (!report.ok()) {
    PrintScrubbed(stderr, "{}\n", report.status().message());
    return 1;
  }
  if (json) PrintScrubbed("{}\n", report->dump(2));
  else PrintScrubbed("{}", RenderStatusText(*report));
  return 0;
}

int CmdConflictsList(const std::string& path, const ConflictFilter& filter, bool json) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  if (!filter.entity.empty() && !config->FindEntity(filter.entity)) {
    PrintScrubbed(stderr, "no entity '{}' in {}\n", filter.entity, path);
    return 2;
  }
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  auto list = ListConflicts(*dbs->legacy, *dbs->modern, filter);
  if (!list.ok()) {
    PrintScrubbed(stderr, "{}\n", list.status().message());
    return 1;
  }
  if (json) PrintScrubbed("{}\n", list->dump(2));
  else PrintScrubbed("{}", RenderConflictsText(*list, filter.all));
  return 0;
}

// "legacy:12" -> (legacy, 12)
bool ParseParkedId(const std::string& id, Side* side, int64_t* n) {
  auto colon = id.find(':');
  if (colon == std::string::npos) return false;
  std::string s = id.substr(0, colon);
  if (s != "legacy" && s != "modern") return false;
  *side = s == "legacy" ? Side::kLegacy : Side::kModern;
  try {
    *n = std::stoll(id.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return true;
}

int CmdRetry(const std::string& path, const std::string& id, bool all) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  Side side = Side::kLegacy;
  int64_t n = -1;
  if (!all && !ParseParkedId(id, &side, &n)) {
    PrintScrubbed(stderr, "bad id '{}': expected legacy:N or modern:N as shown by 'tandem status'\n", id);
    return 2;
  }
  auto engine = SyncEngine::Open(*config);
  if (!engine.ok() && engine.status().code() == StatusCode::kBusy) {
    // `tandem run` is running: ask it to retry (it checks before every batch).
    auto dbs = OpenDatabases(*config);
    if (!dbs) return 1;
    int64_t marked = 0;
    for (Side s : {Side::kLegacy, Side::kModern}) {
      if (!all && s != side) continue;
      auto r = RequestRetry(s == Side::kLegacy ? *dbs->legacy : *dbs->modern, n);
      if (!r.ok()) {
        PrintScrubbed(stderr, "{}\n", r.status().message());
        return 1;
      }
      marked += *r;
    }
    if (marked == 0) {
      PrintScrubbed(stderr, "no put-aside change {}\n", all ? "to retry" : id);
      return 1;
    }
    PrintScrubbed("{} put-aside change(s) handed to the running tandem process for retry; see 'tandem status'\n", marked);
    return 0;
  }
  if (!engine.ok()) {
    PrintScrubbed(stderr, "{}\n", engine.status().message());
    return 1;
  }
  if (all) {
    auto n = (*engine)->RetryAllParked();
    if (!n.ok()) {
      PrintScrubbed(stderr, "{}\n", n.status().message());
      return 1;
    }
    PrintScrubbed("{} put-aside change(s) applied\n", *n);
    return 0;
  }
  Status st = (*engine)->RetryParked(side, n);
  if (!st.ok()) {
    PrintScrubbed(stderr, "{} not applied: {}\n", id, st.message());
    return 1;
  }
  PrintScrubbed("{} applied\n", id);
  return 0;
}

int CmdConflictsShow(const std::string& path, const std::string& id, bool json) {
  Side side;
  int64_t n;
  if (!ParseParkedId(id, &side, &n)) {
    PrintScrubbed(stderr, "bad id '{}': expected legacy:N or modern:N as shown by 'tandem conflicts list'\n", id);
    return 2;
  }
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  auto shown = ShowConflict(*config, *dbs->legacy, *dbs->modern, side, n);
  if (!shown.ok()) {
    PrintScrubbed(stderr, "{}\n", shown.status().message());
    return 1;
  }
  if (json) PrintScrubbed("{}\n", shown->dump(2));
  else PrintScrubbed("{}", RenderConflictText(*shown));
  return 0;
}

int CmdConflictsResolve(const std::string& path, const std::string& id, const std::string& take,
                        const std::vector<std::string>& sets) {
  Side side;
  int64_t n;
  if (!ParseParkedId(id, &side, &n)) {
    PrintScrubbed(stderr, "bad id '{}': expected legacy:N or modern:N as shown by 'tandem conflicts list'\n", id);
    return 2;
  }
  nlohmann::json resolution = nlohmann::json::object();
  if (!take.empty()) resolution["take"] = take;
  for (auto& kv : sets) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintScrubbed(stderr, "bad --set '{}': expected field=value\n", kv);
      return 2;
    }
    resolution["set"][kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto config = LoadConfig(path);
  if (!config) return 1;
  {
    auto dbs = OpenDatabases(*config);
    if (!dbs) return 1;
    Connector& db = side == Side::kLegacy ? *dbs->legacy : *dbs->modern;
    int64_t changed = 0;
    Status st = db.Exec("UPDATE _tandem_conflicts SET status = 'resolving', resolution = ? WHERE id = ? AND status = "
                        "'open'",
                        {Value::Text(resolution.dump()), Value::Integer(n)}, &changed);
    if (!st.ok()) {
      PrintScrubbed(stderr, "{}\n", st.message());
      return 1;
    }
    if (changed == 0) {
      PrintScrubbed(stderr, "no open conflict {} (see 'tandem conflicts list')\n", id);
      return 1;
    }
  }
  auto engine = SyncEngine::Open(*config);
  if (!engine.ok() && engine.status().code() == StatusCode::kBusy) {
    PrintScrubbed("{}: handed to the running tandem process\n", id);
    return 0;
  }
  if (!engine.ok()) {
    PrintScrubbed(stderr, "{}\n", engine.status().message());
    return 1;
  }
  auto done = (*engine)->ProcessResolutions();
  if (!done.ok()) {
    PrintScrubbed(stderr, "{}\n", done.status().message());
    return 1;
  }
  auto row = (*engine)->db(side).QueryOne("SELECT status, resolution FROM _tandem_conflicts WHERE id = ?",
                                          {Value::Integer(n)});
  if (row.ok() && *row && (**row)[0].as_bytes() == "resolved") {
    PrintScrubbed("{} resolved: {}; the changes it held are applied by the next 'tandem run'\n", id,
               (**row)[1].as_bytes());
    return 0;
  }
  PrintScrubbed(stderr, "{} {}\n", id, row.ok() && *row ? (**row)[1].ToCodeText() : std::string("not resolved"));
  return 1;
}

int CmdDiscard(const std::string& path, const std::string& id) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  Side side;
  int64_t n;
  if (!ParseParkedId(id, &side, &n)) {
    PrintScrubbed(stderr, "bad id '{}': expected legacy:N or modern:N as shown by 'tandem status'\n", id);
    return 2;
  }
  Status st = DiscardParked(side == Side::kLegacy ? *dbs->legacy : *dbs->modern, n);
  if (!st.ok()) {
    PrintScrubbed(stderr, "{}\n", st.message());
    return 1;
  }
  PrintScrubbed("{} discarded (recorded in _tandem_audit)\n", id);
  return 0;
}

// `tandem accept-restored SIDE`: see engine/source_identity.h.
int CmdAcceptRestored(const std::string& path, const std::string& side_name) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  const Side side = side_name == "legacy" ? Side::kLegacy : Side::kModern;
  // No engine may run meanwhile: it would keep its own idea of the positions.
  int lock_fd = -1;
  if (config->legacy.resolved.rfind("sqlite:", 0) == 0) {
    const std::string lock_path = config->legacy.resolved.substr(7) + ".tandem-lock";
    lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      PrintScrubbed(stderr, "tandem run is running on {} (lock {} is held): stop it first, then accept\n",
                    config->legacy.Shown(), lock_path);
      close(lock_fd);
      return 1;
    }
  }
  struct CloseLock {
    int fd;
    ~CloseLock() {
      if (fd >= 0) close(fd);
    }
  } close_lock{lock_fd};
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  if (config->legacy.resolved.rfind("sqlite:", 0) != 0) {
    if (Status st = dbs->legacy->LockForOneEngine(); !st.ok()) {
      PrintScrubbed(stderr, "{}: stop tandem run first, then accept\n", st.message());
      return 1;
    }
  }
  auto done = AcceptRestored(*config, *dbs->legacy, *dbs->modern, side);
  if (!done.ok()) {
    PrintScrubbed(stderr, "accept-restored failed: {}\n", done.status().message());
    return 1;
  }
  if (done->empty()) {
    PrintScrubbed("nothing to accept: no direction is stopped because of the {} database\n", side_name);
    return 0;
  }
  for (auto& line : *done) PrintScrubbed("{}\n", line);
  return 0;
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) {
  using namespace tandem;
  CLI::App app{"tandem: near-real-time two-way sync between a legacy and a modern database"};
  app.require_subcommand(1);
  std::string config_path = "tandem.yaml";
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->check(
      CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  auto add_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_path, "config file")->capture_default_str();
    sub->add_option("--log-level", log_level, "trace|debug|info|warn|error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  };
  auto* check = app.add_subcommand("check", "validate the config against both databases");
  add_config(check);
  int sample_rows = 1000;
  bool strict = false;
  check->add_flag("--strict", strict, "exit 1 on warnings too (for CI)");
  check->add_option("--sample", sample_rows, "rows per table sampled for the round-trip check (0: skip)")
      ->capture_default_str();
  bool dry_run = false;
  auto* install = app.add_subcommand("install", "create control tables and capture triggers on both sides");
  add_config(install);
  install->add_flag("--dry-run", dry_run, "print the SQL instead of running it");
  auto* uninstall = app.add_subcommand("uninstall", "remove triggers and control tables, keep all data");
  add_config(uninstall);
  uninstall->add_flag("--dry-run", dry_run, "print the SQL instead of running it");
  std::string accept_side;
  auto* accept_restored = app.add_subcommand(
      "accept-restored",
      "after a database was restored from a backup, replaced, or another one put behind its URL (tandem run stops "
      "the directions it concerns and says so): sync on from its change log as it is now. Compare and repair the "
      "two databases first (tandem reconcile --repair, coming): what is missing on one side is not synced by "
      "accepting. Stop tandem run before; audited. See docs/operations-restore.md");
  add_config(accept_restored);
  accept_restored->add_option("side", accept_side, "the database that was restored or replaced")
      ->required()
      ->check(CLI::IsMember({"legacy", "modern"}));
  bool once = false;
  auto* run = app.add_subcommand("run", "sync both ways until SIGINT/SIGTERM");
  add_config(run);
  run->add_flag("--once", once, "drain what is pending both ways, then exit");
  bool json = false;
  auto* status = app.add_subcommand("status", "pending changes, lag, put-aside changes and conflicts");
  add_config(status);
  status->add_flag("--json", json, "machine-readable output");
  std::string parked_id;
  bool all = false;
  auto* retry = app.add_subcommand("retry", "apply a put-aside change again (after fixing its cause)");
  add_config(retry);
  retry->add_option("id", parked_id, "id as shown by 'tandem status' (legacy:N / modern:N)");
  retry->add_flag("--all", all, "retry every put-aside change");
  auto* discard = app.add_subcommand("discard", "drop a put-aside change for good (audited)");
  add_config(discard);
  discard->add_option("id", parked_id, "id as shown by 'tandem status'")->required();
  auto* conflicts = app.add_subcommand("conflicts", "the conflict queue: list, show and settle concurrent edits");
  conflicts->require_subcommand(1);
  ConflictFilter conflict_filter;
  auto* conflicts_list = conflicts->add_subcommand("list", "open conflicts (--all: settled ones too), newest first");
  add_config(conflicts_list);
  conflicts_list->add_option("--entity", conflict_filter.entity, "only this entity");
  conflicts_list->add_flag("--all", conflict_filter.all, "include conflicts settled by a policy or by hand");
  conflicts_list->add_flag("--json", json, "machine-readable output");
  std::string conflict_id, take;
  std::vector<std::string> sets;
  auto* conflicts_show = conflicts->add_subcommand("show", "one conflict: both versions, the base, the record now");
  add_config(conflicts_show);
  conflicts_show->add_option("id", conflict_id, "id as shown by 'tandem conflicts list'")->required();
  conflicts_show->add_flag("--json", json, "machine-readable output");
  auto* conflicts_resolve = conflicts->add_subcommand("resolve", "settle an open conflict: one side's version, or "
                                                                 "hand-merged values");
  add_config(conflicts_resolve);
  conflicts_resolve->add_option("id", conflict_id, "id as shown by 'tandem conflicts list'")->required();
  conflicts_resolve->add_option("--take", take, "the version that wins the fields in conflict")
      ->check(CLI::IsMember({"legacy", "modern"}));
  conflicts_resolve->add_option("--set", sets, "field=value (modern terms for fields, legacy for to_legacy columns)");
  DemoOptions demo_opts;
  auto* demo = app.add_subcommand("demo", "create example databases and watch changes sync both ways");
  demo->add_option("--dir", demo_opts.directory, "folder for the example databases and config")->capture_default_str();
  demo->add_option("--seconds", demo_opts.seconds, "stop after this many seconds (default: run until Ctrl-C)");
  demo->add_option("--modern", demo_opts.modern_url,
                   "a PostgreSQL database for the modern side (postgresql://USER@HOST:PORT/DB; password from "
                   "PGPASSWORD or ~/.pgpass); default: a SQLite file");
  demo->add_option("--log-level", log_level, "trace|debug|info|warn|error");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? 0 : (rc == 0 ? 0 : 2);
  }
  // Secrets stay out of every line Tandem writes: its own output goes
  // through PrintScrubbed, its log through a scrubbing sink.
  if (const char* password = std::getenv("PGPASSWORD")) RegisterSecret(password);
  auto logger = std::make_shared<spdlog::logger>(
      "tandem", MakeSecretScrubbingSink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (*check) return CmdCheck(config_path, sample_rows, strict);
  if (*install) return CmdInstall(config_path, dry_run, false);
  if (*uninstall) return CmdInstall(config_path, dry_run, true);
  if (*run) return CmdRun(config_path, once);
  if (*accept_restored) return CmdAcceptRestored(config_path, accept_side);
  if (*status) return CmdStatus(config_path, json);
  if (*retry) {
    if (!all && parked_id.empty()) {
      PrintScrubbed(stderr, "retry needs an id or --all\n");
      return 2;
    }
    return CmdRetry(config_path, parked_id, all);
  }
  if (*discard) return CmdDiscard(config_path, parked_id);
  if (*conflicts_list) return CmdConflictsList(config_path, conflict_filter, json);
  if (*conflicts_show) return CmdConflictsShow(config_path, conflict_id, json);
  if (*conflicts_resolve) {
    if (take.empty() && sets.empty()) {
      PrintScrubbed(stderr, "resolve needs --take legacy|modern or --set field=value\n");
      return 2;
    }
    return CmdConflictsResolve(config_path, conflict_id, take, sets);
  }
  if (*demo) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    return RunDemo(demo_opts, g_stop);
  }
  return 2;
}
