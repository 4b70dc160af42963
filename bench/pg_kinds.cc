// PostgreSQL kinds of change: the workload's statements, the timing every
// system shares, Tandem's measurement, the raw rate and the table (see
// pg_kinds.h). The application's transactions are 1,000 changes each:
// inserts as one multi-row INSERT, updates and deletes as one statement over
// an id array, the mix as 1,000 single-row prepared statements in the
// workload's interleaved order, sent as one pipeline. An update sets
// email = 'v2.' || email, balance = balance + 1, updated_at = now().
#include "pg_kinds.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>

namespace tandem::pgbench {

using benchkit::From;
using benchkit::Kind;
using benchkit::Op;
using benchkit::Step;
using benchkit::Workload;

namespace {

constexpr const char* kCustomersTable =
    "CREATE TABLE customers(id bigint PRIMARY KEY, name text, email text, balance numeric(12,2), updated_at "
    "timestamptz)";

// Tandem's identity mapping of customers, both ways.
constexpr const char* kIdentityConfig = R"YAML(version: 1
systems:
  legacy: {{ database: "{}" }}
  modern: {{ database: "{}" }}
primary: legacy
entities:
  customer:
    legacy: {{ table: customers, key: id, new_keys: same }}
    modern: {{ table: customers, key: id, new_keys: same }}
    fields:
      name: name
      email: email
      balance: balance
      updated_at: updated_at
)YAML";

constexpr const char* kUpdateSet = "SET email = 'v2.' || email, balance = balance + 1, updated_at = now()";

std::string UpdatedEmail(int64_t n) { return fmt::format("v2.u{}@example.com", n); }

void InsertParams(int64_t n, std::vector<std::string>* p) {
  p->push_back(std::to_string(n));
  p->push_back(fmt::format("name{}", n));
  p->push_back(fmt::format("u{}@example.com", n));
  p->push_back(fmt::format("{}.{:02}", n / 100, n % 100));
}

// Prepares the workload's statements on `db` (once per session).
void PrepareWorkload(PgConn& db, int per_tx) {
  std::string sql = "INSERT INTO customers(id, name, email, balance, updated_at) VALUES ";
  for (int r = 0; r < per_tx; ++r)
    sql += fmt::format("{}(${}, ${}, ${}, ${}, now())", r ? "," : "", 4 * r + 1, 4 * r + 2, 4 * r + 3, 4 * r + 4);
  db.Prepare(fmt::format("ins_{}", per_tx), sql);
  db.Prepare("ins_1", "INSERT INTO customers(id, name, email, balance, updated_at) VALUES ($1, $2, $3, $4, now())");
  db.Prepare("upd_many", fmt::format("UPDATE customers {} WHERE id = ANY($1::bigint[])", kUpdateSet));
  db.Prepare("upd_1", fmt::format("UPDATE customers {} WHERE id = $1", kUpdateSet));
  db.Prepare("del_many", "DELETE FROM customers WHERE id = ANY($1::bigint[])");
  db.Prepare("del_1", "DELETE FROM customers WHERE id = $1");
}

std::string IdArray(const std::vector<Step>& txn) {
  std::string out = "{";
  for (size_t i = 0; i < txn.size(); ++i) out += (i ? "," : "") + std::to_string(txn[i].n);
  return out + "}";
}

// One of the workload's transactions.
void WriteTxn(PgConn& db, Kind kind, const std::vector<Step>& txn) {
  std::vector<std::string> params;
  switch (kind) {
    case Kind::kInsert:
      for (const Step& s : txn) InsertParams(s.n, &params);
      db.Run(fmt::format("ins_{}", txn.size()), params);
      return;
    case Kind::kUpdate: db.Run("upd_many", {IdArray(txn)}); return;
    case Kind::kDelete: db.Run("del_many", {IdArray(txn)}); return;
    case Kind::kMixed: {
      std::vector<std::pair<const char*, std::vector<std::string>>> calls;
      calls.reserve(txn.size());
      for (const Step& s : txn) {
        params.clear();
        if (s.op == Op::kInsert) InsertParams(s.n, &params);
        else params.push_back(std::to_string(s.n));
        calls.emplace_back(s.op == Op::kInsert ? "ins_1" : s.op == Op::kUpdate ? "upd_1" : "del_1", params);
      }
      db.RunPipelined(calls);
      return;
    }
  }
}

// Polls `done` every `every`, calling `alive` every 200 ms; false after `timeout_s`.
bool Poll(const std::function<bool()>& done, const std::function<void()>& alive, double timeout_s,
          std::chrono::milliseconds every) {
  const auto start = Clock::now();
  auto checked = start;
  while (!done()) {
    if (Seconds(Clock::now() - checked) > 0.2) {
      checked = Clock::now();
      alive();
    }
    if (Seconds(Clock::now() - start) > timeout_s) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

// The same; fails the benchmark after `timeout_s`.
void PollUntil(const std::function<bool()>& done, const std::function<void()>& alive, double timeout_s,
               const std::string& what, std::chrono::milliseconds every = std::chrono::milliseconds(2)) {
  if (!Poll(done, alive, timeout_s, every)) Fail(fmt::format("{}: not seen within {:.0f} s", what, timeout_s));
}

bool LastArrived(PgConn& target, const Workload& w) {
  const Step& last = w.last();
  auto rows = target.Query("SELECT email FROM customers WHERE id = $1", {std::to_string(last.n)});
  switch (last.op) {
    case Op::kInsert: return !rows.empty();
    case Op::kDelete: return rows.empty();
    case Op::kUpdate: return !rows.empty() && rows[0][0] == UpdatedEmail(last.n);
  }
  return false;
}

bool AllArrived(PgConn& target, const Workload& w) {
  auto r = target.Query("SELECT count(*), count(*) FILTER (WHERE email LIKE 'v2.%') FROM customers")[0];
  return std::stoll(r[0]) == w.final_rows() && std::stoll(r[1]) == w.updates;
}

}  // namespace

// --- shared with pg_peers.cc ---

KindsPair::KindsPair(const std::string& what) : legacy(what + "_legacy"), modern(what + "_modern") {
  PgConn(legacy.url()).Exec(kCustomersTable);
  PgConn(modern.url()).Exec(kCustomersTable);
}

std::string MeasurementName(From from, Kind kind) {
  return fmt::format("{}_{}", from == From::kLegacy ? "l" : "m", benchkit::KindName(kind));
}

void WritePreload(PgConn& db, int64_t preload) {
  db.Prepare("preload", "INSERT INTO customers(id, name, email, balance, updated_at) SELECT g, 'name' || g, 'u' || g "
                        "|| '@example.com', g / 100.0, now() FROM generate_series($1::bigint, $2::bigint) g");
  for (int64_t lo = 0; lo <= preload; lo += 10000)
    db.Run("preload", {std::to_string(lo), std::to_string(std::min(preload, lo + 9999))});
}

bool WarmUp(PgConn& source, const std::string& target_url, const std::function<void()>& alive, double timeout_s) {
  source.Exec("UPDATE customers SET email = 'w.' || email WHERE id = 0");
  PgConn target(target_url);
  return Poll([&] { return target.Scalar("SELECT email FROM customers WHERE id = 0").rfind("w.", 0) == 0; }, alive,
              timeout_s, std::chrono::milliseconds(10));
}

double WriteWorkload(PgConn& db, const Workload& w) {
  PrepareWorkload(db, static_cast<int>(w.txns.front().size()));
  const auto start = Clock::now();
  for (auto& txn : w.txns) WriteTxn(db, w.kind, txn);
  return Seconds(Clock::now() - start);
}

Timing TimeWorkload(PgConn& source, const std::string& target_url, const Workload& w,
                    const std::function<void()>& alive, const std::string& what) {
  PgConn(DatabaseUrl("postgres")).Exec("CHECKPOINT");  // not in the middle of the measured part
  PrepareWorkload(source, static_cast<int>(w.txns.front().size()));
  Timing t;
  const auto start = Clock::now();
  std::thread observer([&] {
    PgConn target(target_url);
    PollUntil([&] { return LastArrived(target, w); }, alive, 1800, what + ": the last change");
    PollUntil([&] { return AllArrived(target, w); }, alive, 120, what + ": every change",
              std::chrono::milliseconds(20));
    t.seconds = Seconds(Clock::now() - start);
  });
  t.source_seconds = WriteWorkload(source, w);
  observer.join();
  return t;
}

namespace {

// --- Tandem ---

// `tandem run`'s idle CPU and its sessions' (fractions of one core) over `seconds`, after a second's rest.
nlohmann::json IdleCpu(TandemRun& tandem, const KindsPair& pair, double seconds) {
  PgConn admin(DatabaseUrl("postgres"));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::vector<std::string> dbs = {pair.legacy.name(), pair.modern.name()};
  auto backends = TandemBackendCpu(admin, dbs);
  const double cpu = tandem.CpuSeconds();
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double s = Seconds(Clock::now() - start);
  const double process = (tandem.CpuSeconds() - cpu) / s;
  const double sessions = CpuDelta(backends, TandemBackendCpu(admin, dbs)) / s;
  fmt::print("idle `tandem run` (PostgreSQL, nothing to sync, {:.0f} s): process {:.2f}% of one core, its {} server "
             "sessions {:.2f}%, together {:.2f}% (target <= 1%)\n",
             seconds, process * 100, backends.size(), sessions * 100, (process + sessions) * 100);
  return {{"seconds", seconds},
          {"tandem_core_percent", process * 100},
          {"sessions", backends.size()},
          {"sessions_core_percent", sessions * 100},
          {"total_core_percent", (process + sessions) * 100}};
}

// Fails the benchmark when `tandem run` exited or put changes aside.
void TandemAlive(TandemRun& tandem, PgConn& legacy, PgConn& modern, const std::string& what) {
  tandem.CheckAlive();
  for (PgConn* db : {&legacy, &modern})
    if (std::string parked = db->Scalar("SELECT count(*) FROM tandem._tandem_parked"); parked != "0")
      Fail(fmt::format("{}: Tandem put {} changes aside in {} (see `tandem status`)", what, parked, db->url()));
}

Timing MeasureTandem(const Workload& w, From from, double idle_seconds, nlohmann::json* idle) {
  const std::string what = fmt::format("Tandem {} {}", benchkit::DirectionName(from), benchkit::KindName(w.kind));
  KindsPair pair("t_" + MeasurementName(from, w.kind));
  TempDir dir("tandem-pg-kinds-");
  const std::string config = dir.path() + "/tandem.yaml";
  std::ofstream(config) << fmt::format(kIdentityConfig, pair.legacy.url(), pair.modern.url());
  InstallTandem(config);
  PgConn source(pair.source(from).url()), target(pair.target(from).url());
  PgConn legacy_watch(pair.legacy.url()), modern_watch(pair.modern.url());
  WritePreload(source, w.preload);
  TandemRun tandem(config);
  auto alive = [&] { TandemAlive(tandem, legacy_watch, modern_watch, what); };
  // The pre-load synced: its last record, then all of it.
  PollUntil([&] { return target.Scalar("SELECT count(*) FROM customers WHERE id = $1",
                                       {std::to_string(w.preload)}) == "1"; },
            alive, 1800, what + ": the pre-load", std::chrono::milliseconds(20));
  PollUntil([&] { return target.Scalar("SELECT count(*) FROM customers") == std::to_string(w.preload + 1); }, alive,
            120, what + ": the whole pre-load", std::chrono::milliseconds(50));
  if (!WarmUp(source, pair.target(from).url(), alive, 60)) Fail(what + ": the warm-up change did not arrive in 60 s");
  if (idle_seconds > 0 && idle->is_null()) *idle = IdleCpu(tandem, pair, idle_seconds);
  Timing t = TimeWorkload(source, pair.target(from).url(), w, alive, what);
  tandem.Stop();
  return t;
}

// The raw rate: the workload's statements straight into a fresh table holding the pre-load.
double RawRate(const Workload& w) {
  BenchDatabase db(fmt::format("raw_{}", benchkit::KindName(w.kind)));
  PgConn conn(db.url());
  conn.Exec(kCustomersTable);
  WritePreload(conn, w.preload);
  conn.Exec("VACUUM ANALYZE customers");
  conn.Exec("CHECKPOINT");
  return w.changes() / WriteWorkload(conn, w);
}

// --- the figure ---

double PerS(const Workload& w, const Timing& t) { return t.seconds > 0 ? w.changes() / t.seconds : -1; }

std::string Targets(Kind kind, double tandem, double logical, double bucardo) {
  auto met = [](double a, double b, double x) { return a > 0 && b > 0 ? (a >= x * b ? "met" : "NOT met") : "-"; };
  std::string out = fmt::format(">= 2.0x Bucardo: {}", met(tandem, bucardo, 2.0));
  if (kind != Kind::kMixed) out += fmt::format("; >= 0.4x logical: {}", met(tandem, logical, 0.4));
  return out;
}

struct Figures {
  double tandem = -1, source = -1, logical = -1, bucardo = -1, raw = -1;
};

nlohmann::json RowJson(const Workload& w, const Timing& tandem, const Figures& r) {
  nlohmann::json j = {{"changes", w.changes()},
                      {"inserts", w.inserts},
                      {"updates", w.updates},
                      {"deletes", w.deletes},
                      {"tandem_seconds", tandem.seconds},
                      {"tandem_changes_per_s", r.tandem},
                      {"source_rows_per_s", r.source},
                      {"raw_rows_per_s", r.raw},
                      {"ratio_to_raw", r.tandem / r.raw}};
  if (r.logical > 0) {
    j["logical_changes_per_s"] = r.logical;
    j["ratio_to_logical"] = r.tandem / r.logical;
  }
  if (r.bucardo > 0) {
    j["bucardo_changes_per_s"] = r.bucardo;
    j["ratio_to_bucardo"] = r.tandem / r.bucardo;
  }
  return j;
}

}  // namespace

nlohmann::json PgKinds(const PgKindsOptions& o) {
  using benchkit::Rate;
  using benchkit::Ratio;
  fmt::print("kinds of change, PostgreSQL -> PostgreSQL (one cluster, two databases; customers(id bigint primary key, "
             "name, email, balance numeric(12,2), updated_at timestamptz), Tandem with new_keys: same): {} changes "
             "per kind and direction in 1,000-change transactions; first write -> last change visible on the other "
             "side\n",
             o.changes);
  std::string bucardo_skipped = o.bucardo ? o.bucardo_skipped : "--no-bucardo";
  if (!bucardo_skipped.empty()) fmt::print("Bucardo: SKIPPED ({})\n", bucardo_skipped);
  if (!o.logical) fmt::print("logical replication: SKIPPED (--no-logical)\n");
  std::fflush(stdout);
  nlohmann::json out = {{"changes", o.changes}}, idle;
  benchkit::TextTable table({"direction", "kind", "Tandem/s", "logical/s", "Bucardo/s", "raw/s", "T/Bucardo",
                             "T/logical", "T/raw", "targets (issue 13)"});
  std::map<Kind, double> raw;
  for (From from : o.directions) {
    for (Kind kind : o.kinds) {
      Workload w = benchkit::MakeWorkload(kind, o.changes);
      if (!raw.count(kind)) raw[kind] = RawRate(w);
      Figures r;
      r.raw = raw[kind];
      Timing tandem = MeasureTandem(w, from, o.idle_seconds, &idle);
      r.tandem = PerS(w, tandem);
      r.source = w.changes() / tandem.source_seconds;
      if (o.logical) r.logical = PerS(w, MeasureLogical(w, from));
      if (bucardo_skipped.empty()) {
        r.bucardo = PerS(w, MeasureBucardo(w, from, &bucardo_skipped));
        if (!bucardo_skipped.empty()) fmt::print("Bucardo: SKIPPED from here on ({})\n", bucardo_skipped);
      }
      fmt::print("  {} {}: Tandem {} changes/s ({:.2f} s; source {} rows/s), logical replication {}, Bucardo {}, raw "
                 "{} rows/s\n",
                 benchkit::DirectionName(from), benchkit::KindName(kind), Rate(r.tandem), tandem.seconds,
                 Rate(r.source), Rate(r.logical), Rate(r.bucardo), Rate(r.raw));
      std::fflush(stdout);
      table.Add({benchkit::DirectionName(from), benchkit::KindName(kind), Rate(r.tandem), Rate(r.logical),
                 Rate(r.bucardo), Rate(r.raw), Ratio(r.tandem, r.bucardo), Ratio(r.tandem, r.logical),
                 Ratio(r.tandem, r.raw), Targets(kind, r.tandem, r.logical, r.bucardo)});
      out[benchkit::DirectionKey(from)][benchkit::KindName(kind)] = RowJson(w, tandem, r);
    }
  }
  fmt::print("\n{}", table.Render());
  if (!bucardo_skipped.empty()) {
    fmt::print("Bucardo was not measured: {}\n", bucardo_skipped);
    out["bucardo_skipped"] = bucardo_skipped;
  }
  if (!idle.is_null()) {
    fmt::print("idle CPU with nothing to sync: `tandem run` {:.2f}% of one core, its server sessions {:.2f}%, "
               "together {:.2f}% (target <= 1%)\n",
               idle["tandem_core_percent"].get<double>(), idle["sessions_core_percent"].get<double>(),
               idle["total_core_percent"].get<double>());
    out["idle"] = idle;
  }
  return out;
}

}  // namespace tandem::pgbench
