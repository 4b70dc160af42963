// tandem: the command-line interface. One function per command; each returns
// the process exit code: 0 ok, 1 a problem found or reported, 2 bad usage.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <thread>
#include <cstdio>
#include <charconv>
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
#include "core/clock.h"
#include "engine/capture_health.h"
#include "engine/ops/conflict_queue.h"
#include "engine/engine_lock.h"
#include "engine/ops/installer.h"
#include "engine/source_identity.h"
#include "engine/ops/status_report.h"
#include "engine/sync_engine.h"
#include "mapping/entity_mapping.h"
#include "mapping/exact_write.h"
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
  // libpq's password from the environment, where a side is PostgreSQL (a
  // SQLite pair never uses it, and masking it there would only garble output).
  for (Side s : {Side::kLegacy, Side::kModern})
    if (parsed.config.system(s).resolved.rfind("sqlite:", 0) != 0)
      if (const char* password = std::getenv("PGPASSWORD")) RegisterSecret(password);
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

// Whether both sides are one database (the same file through another path or
// a symlink; the same PostgreSQL database through another URL): nullopt
// when they differ, else the problem to report. Syncing a database with
// itself would apply every change onto its own rows.
std::optional<std::string> SameDatabaseProblem(const Config& config, Databases& dbs) {
  auto legacy = dbs.legacy->Identity();
  auto modern = dbs.modern->Identity();
  if (!legacy.ok() || !modern.ok()) {
    spdlog::warn("cannot tell whether both sides are one database: {}",
                 (!legacy.ok() ? legacy.status() : modern.status()).message());
    return std::nullopt;
  }
  if (*legacy != *modern) return std::nullopt;
  return fmt::format("{}: the legacy database ({}) and the modern database ({}) are the same database ({}); Tandem "
                     "syncs two different databases: point one side at the other database",
                     config.modern.where.ToString(), config.legacy.Shown(), config.modern.Shown(), *legacy);
}

int CmdCheck(const std::string& path, int sample_rows, bool strict) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  if (auto same = SameDatabaseProblem(*config, *dbs)) {
    PrintScrubbed(stderr, "{}\n1 problem(s) in {}\n", *same, path);
    return 1;
  }
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
    Connector& db = *(s == Side::kLegacy ? dbs->legacy : dbs->modern);
    auto installed = db.IsInstalled();
    if (!installed.ok() || !*installed) {
      PrintScrubbed("{} database {}: capture not installed (run 'tandem install')\n", SideName(s),
                    config->system(s).Shown());
      continue;
    }
    // Capture as install made it: a table rebuild drops its triggers.
    auto issues = CheckCapture(*compiled.mapping, s, db);
    PrintScrubbed("{} database {}: {}\n", SideName(s), config->system(s).Shown(),
                  issues.ok() && !issues->empty() ? "capture installed, but broken on some tables (below)"
                                                  : "capture installed");
    if (!issues.ok()) {
      PrintScrubbed(stderr, "warning: could not check capture on the {} database: {}\n", SideName(s),
                    issues.status().message());
      ++warnings;
      continue;
    }
    for (const CaptureIssue& issue : *issues) {
      PrintScrubbed(stderr, "{} database: capture on table '{}' is broken: {}; run 'tandem install -c {}' to repair "
                    "it (changes made meanwhile were not captured)\n",
                    SideName(s), issue.table, issue.problem, path);
      ++errors;
    }
    auto gaps = UnclearedCaptureGaps(db);
    if (gaps.ok())
      for (const CaptureGap& g : *gaps) {
        PrintScrubbed(stderr, "warning: {} database: capture gap {} on table '{}' ({}): changes made then were not "
                      "synced; see 'tandem gaps'\n",
                      SideName(s), g.id, g.table, g.problem);
        ++warnings;
      }
  }
  if (errors > 0) {
    PrintScrubbed(stderr, "{} problem(s), {} warning(s) in {}\n", errors, warnings, path);
    return 1;
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

void PrintPlan(const Config& config, const InstallPlan& plan) {
  for (Side s : {Side::kLegacy, Side::kModern}) {
    PrintScrubbed("-- {} database: {}\n", SideName(s), config.system(s).Shown());
    for (auto& sql : plan.statements[s == Side::kLegacy ? 0 : 1]) PrintScrubbed("{};\n", sql);
  }
}

// The message of an install refused over rows that are not linked.
std::string UnlinkedMessage(const std::vector<UnlinkedEntity>& unlinked) {
  std::string msg = "install refused: ";
  for (size_t i = 0; i < unlinked.size(); ++i)
    msg += fmt::format("{}entity '{}' (legacy table {}, modern table {})", i ? ", " : "", unlinked[i].entity,
                       unlinked[i].legacy_table, unlinked[i].modern_table);
  msg += fmt::format(
      " {} rows on both sides but the key map (_tandem_records) has no entry for {}: they were synced before and "
      "the key map was dropped (e.g. by 'tandem uninstall --purge'), or they were never linked. Syncing now would "
      "copy every record edited later to the other side as a new record (a duplicate). Either:\n"
      "  - restore _tandem_records from a backup of either database (the same one for both sides is enough), then "
      "run 'tandem install' again;\n"
      "  - or relink the existing rows with 'tandem load --match' (coming), then install;\n"
      "  - or run 'tandem install --allow-unlinked' to accept that the existing rows are not linked (rows edited "
      "later are copied as new records).",
      unlinked.size() == 1 ? "holds" : "hold", unlinked.size() == 1 ? "it" : "them");
  return msg;
}

int CmdInstall(const std::string& path, bool dry_run, bool allow_unlinked) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  if (auto same = SameDatabaseProblem(*config, *dbs)) {
    PrintScrubbed(stderr, "{}; nothing installed\n", *same);
    return 1;
  }
  auto expr_db = std::move(OpenExpressionDatabase()).value();
  CompileOutcome compiled = CompileMapping(*config, *dbs->legacy, *dbs->modern, *expr_db);
  if (!compiled.problems.empty()) {
    for (auto& p : compiled.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
    PrintScrubbed(stderr, "{} problem(s); nothing installed\n", compiled.problems.size());
    return 1;
  }
  auto unlinked = FindUnlinkedEntities(*compiled.mapping, *dbs->legacy, *dbs->modern);
  if (!unlinked.ok()) {
    PrintScrubbed(stderr, "{}; nothing installed\n", unlinked.status().message());
    return 1;
  }
  if (!unlinked->empty() && !allow_unlinked && !dry_run) {
    PrintScrubbed(stderr, "{}\n", UnlinkedMessage(*unlinked));
    return 1;
  }
  for (auto& u : *unlinked)
    spdlog::warn("entity '{}': existing rows of {} and {} are not linked{}", u.entity, u.legacy_table,
                 u.modern_table, dry_run ? " (install would be refused without --allow-unlinked)" : " (--allow-unlinked)");
  auto plan = PlanInstall(*compiled.mapping, *dbs->legacy, *dbs->modern);
  if (!plan.ok()) {
    PrintScrubbed(stderr, "{}\n", plan.status().message());
    return 1;
  }
  if (dry_run) {
    for (const std::string& w : plan->warnings) PrintScrubbed(stderr, "warning (install would repair this): {}\n", w);
    PrintPlan(*config, *plan);
    return 0;
  }
  Status st = ExecutePlan(*plan, *dbs->legacy, *dbs->modern);
  if (!st.ok()) {
    PrintScrubbed(stderr, "install failed: {}\n", st.message());
    return 1;
  }
  for (const std::string& w : plan->warnings) PrintScrubbed(stderr, "warning: {}\n", w);
  spdlog::info("control tables and capture triggers installed on both databases");
  return 0;
}

// Rows of `table` on `db`, or -1 when it does not exist.
int64_t CountRows(Connector& db, const std::string& table, const std::string& where = "") {
  auto info = db.DescribeTable(table);
  if (!info.ok() || !*info) return -1;
  auto row = db.QueryOne("SELECT count(*) FROM " + table + where, {});
  return row.ok() && *row ? (**row)[0].as_integer() : -1;
}

int CmdUninstall(const std::string& path, bool dry_run, bool purge, bool force) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  // The engine's own lock, held until this process ends: no engine may run
  // while its tables go, nor start meanwhile.
  std::unique_ptr<EngineLock> lock;
  if (!dry_run) {
    auto locked = EngineLock::Acquire(config->legacy.resolved, *dbs->legacy);
    if (!locked.ok()) {
      PrintScrubbed(stderr, "uninstall refused: {}; stop it first (Ctrl-C or SIGTERM), then uninstall\n",
                 locked.status().message());
      return 1;
    }
    lock = std::move(locked).value();
  }
  auto plan = PlanUninstall(*dbs->legacy, *dbs->modern, purge);
  if (!plan.ok()) {
    PrintScrubbed(stderr, "{}\n", plan.status().message());
    return 1;
  }
  if (dry_run) {
    PrintPlan(*config, *plan);
    return 0;
  }
  // What goes, counted before it goes, so the summary says it.
  int64_t pending = 0, parked = 0, open_conflicts = 0, key_map[2] = {0, 0}, audit = 0;
  if (auto report = BuildStatusReport(*config, *dbs->legacy, *dbs->modern); report.ok()) {
    for (auto& d : (*report)["directions"])
      for (auto& e : d["entities"]) pending += e["pending"].get<int64_t>();
    parked = static_cast<int64_t>((*report)["put_aside"].size());
  }
  for (Side s : {Side::kLegacy, Side::kModern}) {
    Connector& db = s == Side::kLegacy ? *dbs->legacy : *dbs->modern;
    open_conflicts += std::max<int64_t>(0, CountRows(db, "_tandem_conflicts", " WHERE status IN ('open', 'resolving')"));
    key_map[s == Side::kLegacy ? 0 : 1] = std::max<int64_t>(0, CountRows(db, "_tandem_records"));
    audit += std::max<int64_t>(0, CountRows(db, "_tandem_audit"));
  }
  // Work in hand would go with the runtime tables, leaving the two sides
  // different with no trace: refused unless the operator says so.
  if ((parked > 0 || open_conflicts > 0 || pending > 0) && !force) {
    PrintScrubbed(stderr, "uninstall refused: {} put-aside change(s), {} open conflict(s) and {} captured change(s) "
                  "not yet applied would be lost, leaving the two databases different: settle them first ('tandem run "
                  "--once', 'tandem retry' / 'tandem discard', 'tandem conflicts resolve'), or pass --force (what is "
                  "dropped is recorded in _tandem_audit)\n",
                  parked, open_conflicts, pending);
    return 1;
  }
  if (parked > 0 || open_conflicts > 0 || pending > 0) {
    const std::string detail = fmt::format("uninstall --force{} dropped {} put-aside change(s), {} open conflict(s), "
                                           "{} captured change(s) not yet applied",
                                           purge ? " --purge" : "", parked, open_conflicts, pending);
    for (Connector* db : {dbs->legacy.get(), dbs->modern.get()})
      if (Status a = db->Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'uninstall', ?)",
                              {Value::Integer(Clock::Default()->NowMillis()), Value::Text(detail)});
          !a.ok())
        spdlog::warn("could not audit the uninstall: {}", a.message());
  }
  Status st = ExecutePlan(*plan, *dbs->legacy, *dbs->modern);
  if (!st.ok()) {
    PrintScrubbed(stderr, "uninstall failed: {}\n", st.message());
    return 1;
  }
  PrintScrubbed("uninstalled from both databases: capture triggers, change log, positions, statistics, {} put-aside "
             "change(s), {} open conflict(s){}\n",
             parked, open_conflicts, pending ? fmt::format(", {} captured change(s) not yet applied", pending) : "");
  if (purge) {
    PrintScrubbed("--purge also dropped the key map (_tandem_records: {} entries on legacy, {} on modern; a later "
               "install over these rows will not know which are one record) and the audit trail (_tandem_audit: {} "
               "rows)\n",
               key_map[0], key_map[1], audit);
  } else {
    PrintScrubbed("kept: the key map (_tandem_records: {} entries on legacy, {} on modern) the audit trail "
               "(_tandem_audit) and the capture gaps (_tandem_gaps), so 'tandem install' again links the same records; 'tandem uninstall --purge' "
               "drops them too. Edits made while uninstalled are not captured; they sync when next edited\n",
               key_map[0], key_map[1]);
  }
  PrintScrubbed("data kept: every row of the synced tables is untouched\n");
  return 0;
}

// "2026-12-03 15:04:05 UTC".
std::string FormatMillis(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// `tandem gaps`: stretches of time when a table's capture was missing
// (engine/capture_health.h); --clear ID|all once the table was reconciled.
int CmdGaps(const std::string& path, const std::string& clear) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  if (!clear.empty() && clear != "all") {
    const size_t colon = clear.find(':');
    const std::string side = clear.substr(0, colon == std::string::npos ? 0 : colon);
    const std::string digits = colon == std::string::npos ? "" : clear.substr(colon + 1);
    if ((side != "legacy" && side != "modern") || digits.empty() || digits.size() > 18 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      PrintScrubbed(stderr, "bad gap id '{}': expected legacy:N, modern:N (as 'tandem gaps' lists them) or all\n",
                    clear);
      return 2;
    }
  }
  int open = 0;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    Connector& db = *(s == Side::kLegacy ? dbs->legacy : dbs->modern);
    auto installed = db.IsInstalled();
    if (!installed.ok() || !*installed) continue;
    if (!clear.empty()) {
      const std::string prefix = std::string(SideName(s)) + ":";
      int64_t id = -1;
      if (clear != "all") {
        if (clear.rfind(prefix, 0) != 0) continue;
        const std::string digits = clear.substr(prefix.size());
        if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) {
          PrintScrubbed(stderr, "bad gap id '{}': expected legacy:N, modern:N or all\n", clear);
          return 2;
        }
        id = std::stoll(digits);
      }
      auto n = ClearCaptureGaps(db, id, Clock::Default()->NowMillis());
      if (!n.ok()) {
        PrintScrubbed(stderr, "clearing gaps on the {} database failed: {}\n", SideName(s), n.status().message());
        return 1;
      }
      PrintScrubbed("{} database: {} gap(s) cleared\n", SideName(s), *n);
      if (clear != "all" && *n == 0) {
        PrintScrubbed(stderr, "no repaired, uncleared gap {} (a gap is cleared after install repaired capture)\n",
                      clear);
        return 1;
      }
      continue;
    }
    auto gaps = UnclearedCaptureGaps(db);
    if (!gaps.ok()) {
      PrintScrubbed(stderr, "{} database: {}\n", SideName(s), gaps.status().message());
      return 1;
    }
    for (const CaptureGap& g : *gaps) {
      ++open;
      PrintScrubbed("{}:{}  table {}  noticed {}  {}\n    {}\n", SideName(s), g.id, g.table,
                    FormatMillis(g.noticed_at_ms),
                    g.repaired_at_ms ? "repaired " + FormatMillis(g.repaired_at_ms) : std::string("NOT REPAIRED"),
                    g.problem);
    }
  }
  if (!clear.empty()) return 0;
  if (open == 0) {
    PrintScrubbed("no capture gaps\n");
    return 0;
  }
  PrintScrubbed("changes made to these tables while capture was missing were not captured and are not synced: "
                "compare the entities' rows on both sides and repair them (docs/operations.md), then "
                "'tandem gaps --clear ID'\n");
  return 1;
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

// "legacy:12" -> (legacy, 12). The whole text must be the id: a side, a
// colon and a positive whole number that fits 64 bits, nothing else.
bool ParseParkedId(const std::string& id, Side* side, int64_t* n) {
  auto colon = id.find(':');
  if (colon == std::string::npos) return false;
  std::string s = id.substr(0, colon);
  if (s != "legacy" && s != "modern") return false;
  const std::string digits = id.substr(colon + 1);
  if (digits.empty() || digits.size() > 19) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value <= 0) return false;
  *side = s == "legacy" ? Side::kLegacy : Side::kModern;
  *n = value;
  return true;
}

void PrintBadId(const std::string& id, const char* listed_by) {
  PrintScrubbed(stderr, "bad id '{}': expected legacy:N or modern:N (N a positive whole number) as shown by '{}'\n", id,
             listed_by);
}

int CmdRetry(const std::string& path, const std::string& id, bool all) {
  auto config = LoadConfig(path);
  if (!config) return 1;
  Side side = Side::kLegacy;
  int64_t n = -1;
  if (!all && !ParseParkedId(id, &side, &n)) {
    PrintBadId(id, "tandem status");
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
    PrintBadId(id, "tandem conflicts list");
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

// Where `tandem conflicts resolve --set FIELD=...` writes: the side and the
// rule of the direction that writes FIELD there (`fields:` names are modern
// columns, so the modern side first), as SyncEngine::ResolveRecord does.
struct SettableField {
  Side side;
  const ColumnRule* rule;
};
std::optional<SettableField> FindSettableField(const EntityMapping& em, const std::string& field) {
  for (Side side : {Side::kModern, Side::kLegacy})
    for (auto& r : em.from(Other(side)).rules)
      if (r.field == field) return SettableField{side, &r};
  return std::nullopt;
}

int CmdConflictsResolve(const std::string& path, const std::string& id, const std::string& take,
                        const std::vector<std::string>& sets) {
  Side side;
  int64_t n;
  if (!ParseParkedId(id, &side, &n)) {
    PrintBadId(id, "tandem conflicts list");
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
    if (resolution.contains("set") && resolution["set"].contains(kv.substr(0, eq))) {
      PrintScrubbed(stderr, "--set gives field '{}' twice: give each field once\n", kv.substr(0, eq));
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
    if (!sets.empty()) {
      // Every hand-set value is checked against the column it is written to
      // before the request is: a value the column cannot hold is refused here,
      // not reported as resolved while the two sides still differ.
      auto conflict = db.QueryOne("SELECT entity FROM _tandem_conflicts WHERE id = ? AND status = 'open'",
                                  {Value::Integer(n)});
      if (!conflict.ok()) {
        PrintScrubbed(stderr, "{}\n", conflict.status().message());
        return 1;
      }
      if (!*conflict) {
        PrintScrubbed(stderr, "no open conflict {} (see 'tandem conflicts list')\n", id);
        return 1;
      }
      auto expr_db = OpenExpressionDatabase();
      if (!expr_db.ok()) {
        PrintScrubbed(stderr, "{}\n", expr_db.status().message());
        return 1;
      }
      CompileOutcome compiled = CompileMapping(*config, *dbs->legacy, *dbs->modern, **expr_db);
      if (!compiled.mapping) {
        for (auto& p : compiled.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
        return 1;
      }
      const std::string entity = (**conflict)[0].as_bytes();
      const EntityMapping* em = nullptr;
      for (auto& e : compiled.mapping->entities)
        if (e.name == entity) em = &e;
      if (!em) {
        PrintScrubbed(stderr, "conflict {} is of entity '{}', which {} does not map\n", id, entity, path);
        return 1;
      }
      for (auto& [field, value] : resolution["set"].items()) {
        auto target = FindSettableField(*em, field);
        if (!target) {
          PrintScrubbed(stderr, "bad --set {}: entity '{}' has no field '{}'; nothing written\n", field, entity, field);
          return 2;
        }
        auto stored = StoreTypedValue(target->rule->target_type, value.get<std::string>());
        if (!stored.ok()) {
          PrintScrubbed(stderr, "bad --set {}={}: the {} column {}.{} ({}) cannot hold it: {}; nothing written\n", field,
                     value.get<std::string>(), SideName(target->side), em->from(Other(target->side)).target_table,
                     target->rule->target_column, target->rule->target_type.Describe(), stored.status().message());
          return 2;
        }
      }
    }
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
  Side side;
  int64_t n;
  if (!ParseParkedId(id, &side, &n)) {
    PrintBadId(id, "tandem status");
    return 2;
  }
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
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
  auto dbs = OpenDatabases(*config);
  if (!dbs) return 1;
  // No engine may run meanwhile: it would keep its own idea of the positions.
  auto lock = EngineLock::Acquire(config->legacy.resolved, *dbs->legacy);
  if (!lock.ok()) {
    PrintScrubbed(stderr, "{}: stop tandem run first, then accept\n", lock.status().message());
    return 1;
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
  bool dry_run = false, allow_unlinked = false, purge = false;
  auto* install = app.add_subcommand("install", "create control tables and capture triggers on both sides "
                                                "(refused over rows on both sides that the key map does not link)");
  add_config(install);
  install->add_flag("--dry-run", dry_run, "print the SQL instead of running it");
  install->add_flag("--allow-unlinked", allow_unlinked,
                    "install although both sides hold rows of an entity the key map has no entry for (they stay "
                    "unlinked: rows edited later are copied as new records)");
  auto* uninstall = app.add_subcommand("uninstall", "remove triggers, change log and runtime tables; keep all data "
                                                    "and the key map (refused while an engine runs on the pair)");
  add_config(uninstall);
  uninstall->add_flag("--dry-run", dry_run, "print the SQL instead of running it");
  uninstall->add_flag("--purge", purge, "drop the key map (_tandem_records) and audit trail too; says what it drops");
  bool force = false;
  uninstall->add_flag("--force", force, "uninstall even though put-aside changes, open conflicts or unapplied "
                                        "changes would be lost (audited)");
  std::string accept_side;
  auto* accept_restored = app.add_subcommand(
      "accept-restored",
      "after a database was restored from a backup, replaced, or another one put behind its URL (tandem run stops "
      "the directions it concerns and says so): sync on from its change log as it is now. Compare and repair the "
      "two databases first (tandem reconcile --repair, coming): what is missing on one side is not synced by "
      "accepting. Stop tandem run before; audited. See docs/operations.md");
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
  retry->add_flag("--all", all, "retry every put-aside change (instead of an id)");
  auto* discard = app.add_subcommand("discard", "drop a put-aside change for good (audited)");
  add_config(discard);
  discard->add_option("id", parked_id, "id as shown by 'tandem status'")->required();
  std::string clear_gap;
  auto* gaps = app.add_subcommand("gaps", "capture gaps: when a table's capture was missing (exit 1 when any)");
  add_config(gaps);
  gaps->add_option("--clear", clear_gap, "clear a gap (legacy:N / modern:N / all) after reconciling its table");
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
  conflicts_resolve->add_option("--take", take, "the version that wins the fields in conflict (not with --set)")
      ->check(CLI::IsMember({"legacy", "modern"}));
  conflicts_resolve->add_option("--set", sets, "field=value (modern terms for fields, legacy for to_legacy columns); "
                                               "refused unless the column can hold the value; not with --take");
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
  auto logger = std::make_shared<spdlog::logger>(
      "tandem", MakeSecretScrubbingSink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (*check) return CmdCheck(config_path, sample_rows, strict);
  if (*install) return CmdInstall(config_path, dry_run, allow_unlinked);
  if (*uninstall) return CmdUninstall(config_path, dry_run, purge, force);
  if (*run) return CmdRun(config_path, once);
  if (*accept_restored) return CmdAcceptRestored(config_path, accept_side);
  if (*status) return CmdStatus(config_path, json);
  if (*gaps) return CmdGaps(config_path, clear_gap);
  if (*retry) {
    if (!all && parked_id.empty()) {
      PrintScrubbed(stderr, "retry needs an id or --all\n");
      return 2;
    }
    if (all && !parked_id.empty()) {
      PrintScrubbed(stderr, "retry takes an id or --all, not both (got '{}' and --all)\n", parked_id);
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
    if (!take.empty() && !sets.empty()) {
      PrintScrubbed(stderr, "resolve takes --take legacy|modern or --set field=value, not both: --set every field in "
                         "conflict, or --take one side's version of them all\n");
      return 2;
    }
    return CmdConflictsResolve(config_path, conflict_id, take, sets);
  }
  if (*demo) {
    if (const char* password = std::getenv("PGPASSWORD"); password && !demo_opts.modern_url.empty())
      RegisterSecret(password);
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    return RunDemo(demo_opts, g_stop);
  }
  return 2;
}
