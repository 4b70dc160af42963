// tandem_pg_bench: the PostgreSQL issue's performance figures, PostgreSQL ->
// PostgreSQL (one cluster, two databases), with the example customer mapping
// (examples/tandem.yaml's customer entity: 5 mapped columns, 2 computed) on
// examples/postgres/'s schemas.
//
//   1. throughput: 100,000 inserts into legacy "CUSTMAST" in 1,000-row
//      transactions (one multi-row INSERT each) while `tandem run` runs; first
//      write to last row committed in modern.customers; as ratios to raw
//      batched inserts of the same rows into modern.customers (multi-row
//      INSERT, and COPY) and to the rate the source accepted the writes; the
//      CPU `tandem run` used per 1,000 changes (and its PostgreSQL sessions');
//   2. latency: single-row transactions (half inserts, half updates) paced at
//      500/s by the clock, source commit to target commit;
//   3. capture overhead: single-row autocommit UPDATEs of random rows of a
//      100,000-row table, 1 and 4 clients, capture installed vs not;
//   4. kinds (issue 13, bench/pg_kinds.h): inserts, updates, deletes and a
//      70/20/10 update/insert/delete mix, each direction, on a plain
//      customers table with an identity mapping, against native logical
//      replication, Bucardo and the raw rate; idle CPU of `tandem run` and
//      its server sessions. --rows is the number of changes per kind.
//
// The server is not started here: TANDEM_BENCH_PG_URL names it
// (postgresql://USER@HOST:PORT, a superuser, no database; scripts/bench.sh
// starts a private one with scripts/pg-cluster.sh). Every database this
// creates is named tandem_bench_<pid>_<what> and dropped WITH (FORCE) at the
// end, also when a figure fails. Capture is installed in-process (the
// installer `tandem install` runs); syncing is the real `tandem run` binary
// in a child process, so its CPU is its own (/proc/PID/stat).
//
// Usage: tandem_pg_bench [--rows N] [--latency-seconds S] [--latency-rate R]
//          [--overhead-seconds S] [--only throughput|latency|overhead|kinds] [--perf FILE]
//          [--kinds insert,update,delete,mixed] [--directions legacy,modern] [--idle-seconds S]
//          [--no-bucardo] [--no-logical]
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "engine/ops/installer.h"
#include "engine/sync_engine.h"
#include "mapping/expression.h"
#include "pg_kinds.h"
#include "pg_support.h"

namespace tandem::pgbench {
namespace {

// examples/tandem.yaml's customer entity; the URLs are filled in per run.
constexpr const char* kConfig = R"YAML(version: 1
systems:
  legacy: {{ database: "{}" }}
  modern: {{ database: "{}" }}
primary: legacy
entities:
  customer:
    legacy: {{ table: CUSTMAST, key: CUSTNO, new_keys: database }}
    modern: {{ table: customers, key: id, new_keys: uuid }}
    fields:
      email: EMAIL
      status: {{ legacy: STAT, map: {{ A: active, I: inactive }} }}
      balance: {{ legacy: BAL_CENTS, to_modern: "BAL_CENTS / 100.0", to_legacy: "CAST(round(balance * 100) AS INTEGER)" }}
    to_modern:
      first_name: "trim(substr(CNAME, instr(CNAME, ',') + 1))"
      last_name:  "trim(substr(CNAME, 1, instr(CNAME, ',') - 1))"
    to_legacy:
      CNAME: "last_name || ', ' || first_name"
)YAML";

std::string ExampleSchema(const char* file) {
  return ReadFile(std::string(TANDEM_SOURCE_DIR) + "/examples/postgres/" + file);
}

// A legacy and a modern database with the example schemas, the customer
// config in a temporary folder, capture installed (optionally).
struct SyncPair {
  BenchDatabase legacy, modern;
  std::string dir, config_path;

  explicit SyncPair(const std::string& what)
      : legacy(what + "_legacy"), modern(what + "_modern") {
    PgConn(legacy.url()).Exec(ExampleSchema("legacy_schema.sql"));
    PgConn(modern.url()).Exec(ExampleSchema("modern_schema.sql"));
    char tmpl[] = "/tmp/tandem-pg-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp");
    dir = tmpl;
    config_path = dir + "/tandem.yaml";
    std::ofstream(config_path) << fmt::format(kConfig, legacy.url(), modern.url());
  }
  ~SyncPair() { std::filesystem::remove_all(dir); }

  void Install() { InstallTandem(config_path); }
};

// Changes Tandem applied legacy -> modern, read from the position row it
// commits in the same transaction as the rows (one primary-key lookup,
// instead of counting a growing table every few milliseconds).
int64_t AppliedToModern(PgConn& modern) {
  std::string v = modern.Scalar("SELECT applied_total FROM tandem._tandem_position WHERE direction = "
                                "'legacy-to-modern'");
  return v.empty() ? 0 : std::stoll(v);
}

// Waits until Tandem has applied `total` changes legacy -> modern. `commits`
// (optional) receives each new applied total seen: Tandem's target
// transactions, as far as polling every 2 ms can tell them apart.
void WaitApplied(PgConn& modern, TandemRun& tandem, int64_t total, double timeout_s,
                 std::vector<int64_t>* commits = nullptr) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (int64_t applied = AppliedToModern(modern);; applied = AppliedToModern(modern)) {
    if (commits && (commits->empty() || commits->back() != applied)) commits->push_back(applied);
    if (applied >= total) break;
    if (Clock::now() > deadline) Fail(fmt::format("Tandem did not apply {} changes within {:.0f} s", total, timeout_s));
    tandem.CheckAlive();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// The legacy row n of the throughput workload, as multi-row INSERT parameters.
void LegacyRowParams(int64_t n, std::vector<std::string>* p) {
  p->push_back(fmt::format("LAST{}, FIRST{}", n, n));
  p->push_back(fmt::format("u{}@example.com", n));
  p->push_back(n % 7 ? "A" : "I");
  p->push_back(std::to_string(n));
}

std::string MultiRowInsert(const std::string& head, int columns, int rows) {
  std::string sql = head + " VALUES ";
  for (int r = 0, n = 1; r < rows; ++r) {
    sql += r ? ",(" : "(";
    for (int c = 0; c < columns; ++c, ++n) sql += fmt::format("{}${}", c ? "," : "", n);
    sql += ")";
  }
  return sql;
}

constexpr const char* kLegacyInsertHead = R"(INSERT INTO "CUSTMAST"("CNAME", "EMAIL", "STAT", "BAL_CENTS"))";
constexpr const char* kModernColumns = "customers(id, email, status, balance, first_name, last_name)";

// Inserts legacy rows first..first+rows-1 in transactions of `per_tx` rows,
// one multi-row INSERT each (autocommit). Returns the seconds it took.
double WriteLegacyRows(PgConn& db, int64_t first, int64_t rows, int per_tx) {
  const std::string statement = fmt::format("legacy_insert_{}", per_tx);
  db.Prepare(statement, MultiRowInsert(kLegacyInsertHead, 4, per_tx));
  std::vector<std::string> params;
  auto start = Clock::now();
  for (int64_t done = 0; done < rows; done += per_tx) {
    params.clear();
    for (int i = 0; i < per_tx; ++i) LegacyRowParams(first + done + i, &params);
    db.Run(statement, params);
  }
  return Seconds(Clock::now() - start);
}

// --- 1. throughput ---

// Raw batched inserts: the same number of rows as modern.customers rows
// (client-made UUIDs, as Tandem makes them) straight into a fresh modern
// database, 1,000-row transactions: one multi-row INSERT each, then COPY.
nlohmann::json RawInsertBaseline(int64_t rows) {
  nlohmann::json out;
  for (bool copy : {false, true}) {
    BenchDatabase db(copy ? "raw_copy" : "raw_insert");
    PgConn conn(db.url());
    conn.Exec(ExampleSchema("modern_schema.sql"));
    auto modern_row = [](int64_t n, std::vector<std::string>* p) {
      p->push_back(NewUuid());
      p->push_back(fmt::format("u{}@example.com", n));
      p->push_back(n % 7 ? "active" : "inactive");
      p->push_back(fmt::format("{}.{:02}", n / 100, n % 100));
      p->push_back(fmt::format("FIRST{}", n));
      p->push_back(fmt::format("LAST{}", n));
    };
    constexpr int kPerTx = 1000;
    if (!copy) conn.Prepare("raw", MultiRowInsert(std::string("INSERT INTO ") + kModernColumns, 6, kPerTx));
    std::vector<std::string> params;
    std::string data;
    auto start = Clock::now();
    for (int64_t done = 0; done < rows; done += kPerTx) {
      params.clear();
      for (int i = 0; i < kPerTx; ++i) modern_row(done + i + 1, &params);
      if (!copy) {
        conn.Run("raw", params);
        continue;
      }
      data.clear();
      for (size_t i = 0; i < params.size(); ++i) data += params[i] + ((i + 1) % 6 ? '\t' : '\n');
      conn.Exec("BEGIN");
      conn.Copy(std::string("COPY ") + kModernColumns + " FROM STDIN", data);
      conn.Exec("COMMIT");
    }
    double s = Seconds(Clock::now() - start);
    out[copy ? "copy_rows_per_s" : "rows_per_s"] = rows / s;
    out["rows"] = rows;
  }
  fmt::print("raw batched inserts: {} rows straight into a fresh modern.customers in 1,000-row transactions: {:.0f} "
             "rows/s with one multi-row INSERT each, {:.0f} rows/s with COPY\n",
             rows, out["rows_per_s"].get<double>(), out["copy_rows_per_s"].get<double>());
  return out;
}

// Runs `perf record` system-wide while alive (--perf FILE).
class PerfRecord {
 public:
  explicit PerfRecord(const std::string& file) {
    if (file.empty()) return;
    pid_ = fork();
    if (pid_ == 0) {
      UnblockStopSignals();
      execlp("perf", "perf", "record", "-q", "-a", "-g", "-F", "999", "-o", file.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let it attach before the measured part
  }
  ~PerfRecord() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = 0;
};

nlohmann::json Throughput(int64_t rows, const nlohmann::json& raw, const std::string& perf_file) {
  SyncPair pair("throughput");
  pair.Install();
  PgConn writer(pair.legacy.url()), observer(pair.modern.url()), admin(DatabaseUrl("postgres"));
  TandemRun tandem(pair.config_path);
  // Warm-up: one row through, so the engine is connected, compiled and polling.
  WriteLegacyRows(writer, 0, 1, 1);
  WaitApplied(observer, tandem, 1, 60);
  // What an idle `tandem run` costs (it polls both databases for commits).
  auto idle_b = TandemBackendCpu(admin, {pair.legacy.name(), pair.modern.name()});
  double idle_t = tandem.CpuSeconds();
  auto idle_start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double idle_s = Seconds(Clock::now() - idle_start);
  double idle_tandem = (tandem.CpuSeconds() - idle_t) / idle_s;
  double idle_backends = CpuDelta(idle_b, TandemBackendCpu(admin, {pair.legacy.name(), pair.modern.name()})) / idle_s;

  double write_s = 0, total_s = 0, cpu_tandem = 0, cpu_backends = 0;
  std::vector<int64_t> commits;  // applied totals seen, from 1 (the warm-up row)
  {
    PerfRecord perf(perf_file);
    auto backends_before = TandemBackendCpu(admin, {pair.legacy.name(), pair.modern.name()});
    double cpu_before = tandem.CpuSeconds();
    const auto start = Clock::now();
    // The observer polls while the writer writes, so it sees every target transaction.
    std::thread watch([&] {
      WaitApplied(observer, tandem, rows + 1, 600, &commits);
      total_s = Seconds(Clock::now() - start);
    });
    write_s = WriteLegacyRows(writer, 1, rows, 1000);
    watch.join();
    cpu_tandem = tandem.CpuSeconds() - cpu_before;
    cpu_backends = CpuDelta(backends_before, TandemBackendCpu(admin, {pair.legacy.name(), pair.modern.name()}));
  }
  struct rusage usage = tandem.Stop();
  const int64_t in_modern = std::stoll(observer.Scalar("SELECT count(*) FROM customers"));
  if (in_modern != rows + 1) Fail(fmt::format("modern.customers holds {} rows, expected {}", in_modern, rows + 1));

  const double rate = rows / total_s, source_rate = rows / write_s;
  const double raw_rate = raw.is_null() ? 0 : raw["rows_per_s"].get<double>();
  const double copy_rate = raw.is_null() ? 0 : raw["copy_rows_per_s"].get<double>();
  fmt::print("throughput legacy->modern: {} inserts in 1,000-row transactions, first write to last row committed in "
             "modern {:.2f} s = {:.0f} changes/s (target >= 100,000)\n",
             rows, total_s, rate);
  if (raw_rate > 0)
    fmt::print("  = {:.2f}x raw batched inserts into the target ({:.0f} rows/s; {:.2f}x COPY at {:.0f} rows/s), "
               "{:.2f}x the rate the source accepted the writes ({:.0f} rows/s, {:.2f} s)\n",
               rate / raw_rate, raw_rate, rate / copy_rate, copy_rate, rate / source_rate, source_rate, write_s);
  else
    fmt::print("  = {:.2f}x the rate the source accepted the writes ({:.0f} rows/s, {:.2f} s)\n", rate / source_rate,
               source_rate, write_s);
  fmt::print("  CPU per 1,000 changes: `tandem run` process {:.1f} ms ({:.2f} s over the run = {:.0f}% of a core), "
             "its PostgreSQL sessions {:.1f} ms; idle `tandem run`: {:.1f}% of a core, its sessions {:.1f}%\n",
             cpu_tandem / rows * 1000 * 1000, cpu_tandem, cpu_tandem / total_s * 100, cpu_backends / rows * 1000 * 1000,
             idle_tandem * 100, idle_backends * 100);
  int64_t largest = 0;
  std::string sizes;
  for (size_t i = 1; i < commits.size(); ++i) {
    largest = std::max(largest, commits[i] - commits[i - 1]);
    sizes += fmt::format("{}{}", i > 1 ? ", " : "", commits[i] - commits[i - 1]);
  }
  fmt::print("  Tandem committed them to modern in {} transaction{} seen by the observer (largest: {} changes; in "
             "order: {})\n",
             commits.size() - 1, commits.size() == 2 ? "" : "s", largest, sizes);
  const double life_user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
  const double life_sys = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  fmt::print("  `tandem run` whole life (start, warm-up, idle second, run, stop): {:.2f} s user + {:.2f} s system, "
             "peak resident memory {:.1f} MB\n",
             life_user, life_sys, usage.ru_maxrss / 1024.0);
  nlohmann::json out = {{"rows", rows},
                        {"seconds", total_s},
                        {"changes_per_s", rate},
                        {"source_write_seconds", write_s},
                        {"source_write_rows_per_s", source_rate},
                        {"ratio_to_source_rate", rate / source_rate},
                        {"tandem_cpu_ms_per_1000", cpu_tandem / rows * 1e6},
                        {"tandem_backends_cpu_ms_per_1000", cpu_backends / rows * 1e6},
                        {"idle_tandem_core_fraction", idle_tandem},
                        {"idle_backends_core_fraction", idle_backends},
                        {"peak_rss_mb", usage.ru_maxrss / 1024.0},
                        {"target_transactions_seen", commits.size() - 1},
                        {"largest_target_transaction", largest}};
  if (raw_rate > 0) {
    out["ratio_to_raw_insert"] = rate / raw_rate;
    out["ratio_to_raw_copy"] = rate / copy_rate;
  }
  return out;
}

// --- 2. latency ---

// Source commit to target commit at `rate` single-row transactions/s for
// `seconds`: odd-numbered ones insert a customer, even ones update one of
// 1,000 synced customers; transaction i sets BAL_CENTS = i. Writers start each
// transaction at its slot on the clock (several connections, so one commit's
// fsync does not delay the next slot). A notify trigger on modern.customers
// tells the observer, at the commit of Tandem's transaction, which i arrived;
// its time of arrival minus the time the source COMMIT returned is the latency.
nlohmann::json Latency(double seconds, int rate) {
  SyncPair pair("latency");
  PgConn(pair.modern.url())
      .Exec("CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM "
            "pg_notify('tandem_bench', round(NEW.balance * 100)::bigint::text); RETURN NULL; END $$; "
            "CREATE TRIGGER bench_notify AFTER INSERT OR UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION "
            "bench_notify()");
  pair.Install();
  constexpr int kSynced = 1000;
  {
    PgConn legacy(pair.legacy.url());
    legacy.Exec(fmt::format("INSERT INTO \"CUSTMAST\"(\"CNAME\", \"EMAIL\", \"STAT\", \"BAL_CENTS\") SELECT 'LAST' || "
                            "g || ', FIRST' || g, 'u' || g || '@example.com', 'A', -1 FROM generate_series(1, {}) g",
                            kSynced));
  }
  PgConn observer_db(pair.modern.url());
  TandemRun tandem(pair.config_path);
  WaitApplied(observer_db, tandem, kSynced, 60);

  const int64_t n = static_cast<int64_t>(seconds * rate);
  std::vector<Clock::time_point> committed(n + 1), arrived(n + 1);
  std::vector<char> seen(n + 1, 0);
  std::atomic<int64_t> arrivals{0};
  std::atomic<bool> observing{true};
  PgConn listener(pair.modern.url());
  listener.Exec("LISTEN tandem_bench");
  std::thread observer([&] {
    while (observing.load() && arrivals.load() < n) {
      pollfd pfd{PQsocket(listener.raw()), POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      auto now = Clock::now();
      if (!PQconsumeInput(listener.raw())) Fail(fmt::format("LISTEN: {}", PQerrorMessage(listener.raw())));
      while (PGnotify* note = PQnotifies(listener.raw())) {
        int64_t i = std::atoll(note->extra);
        if (i >= 1 && i <= n && !seen[i]) {
          seen[i] = 1;
          arrived[i] = now;
          arrivals++;
        }
        PQfreemem(note);
      }
    }
  });

  constexpr int kWriters = 4;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  auto slot = [&](int64_t i) { return start + std::chrono::microseconds(i * 1000000 / rate); };
  std::atomic<int64_t> next{1};
  std::atomic<int64_t> max_late_us{0}, late_slots{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      PgConn db(pair.legacy.url());
      db.Prepare("ins", std::string(kLegacyInsertHead) + " VALUES ('LAST, FIRST', 'x@example.com', 'A', $1)");
      db.Prepare("upd", "UPDATE \"CUSTMAST\" SET \"BAL_CENTS\" = $1 WHERE \"CUSTNO\" = $2");
      for (int64_t i = next++; i <= n; i = next++) {
        std::this_thread::sleep_until(slot(i));
        auto began = Clock::now();
        int64_t late = std::chrono::duration_cast<std::chrono::microseconds>(began - slot(i)).count();
        if (late > 1000) late_slots++;
        for (int64_t m = max_late_us.load(); late > m && !max_late_us.compare_exchange_weak(m, late);) {
        }
        if (i % 2) db.Run("ins", {std::to_string(i)});
        else db.Run("upd", {std::to_string(i), std::to_string((i / 2) % kSynced + 1)});
        committed[i] = Clock::now();
      }
    });
  }
  for (auto& t : writers) t.join();
  const double write_s = Seconds(*std::max_element(committed.begin() + 1, committed.end()) - start);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (arrivals.load() < n && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  observing = false;
  observer.join();
  tandem.Stop();

  std::vector<double> all, inserts, updates;
  for (int64_t i = 1; i <= n; ++i) {
    if (!seen[i]) continue;
    double ms = Millis(arrived[i] - committed[i]);
    all.push_back(ms);
    (i % 2 ? inserts : updates).push_back(ms);
  }
  auto pct = [](std::vector<double>& v, double p) {
    if (v.empty()) return -1.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  };
  const double p50 = pct(all, 0.50), p99 = pct(all, 0.99), max = all.empty() ? -1.0 : all.back();
  fmt::print("latency at {:.0f} single-row transactions/s ({} transactions, half inserts, half updates, {} "
             "connections): p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms, source commit to target commit "
             "(targets p50 <= 5 ms, p99 <= 25 ms); {} of {} arrived\n",
             n / write_s, n, kWriters, p50, p99, max, all.size(), n);
  fmt::print("  inserts p50 {:.2f} / p99 {:.2f} ms, updates p50 {:.2f} / p99 {:.2f} ms; writers started {} "
             "transactions > 1 ms after their slot (latest {:.1f} ms)\n",
             pct(inserts, 0.5), pct(inserts, 0.99), pct(updates, 0.5), pct(updates, 0.99), late_slots.load(),
             max_late_us.load() / 1000.0);
  return {{"transactions", n},       {"rate_per_s", n / write_s},        {"p50_ms", p50},
          {"p99_ms", p99},           {"max_ms", max},                    {"arrived", all.size()},
          {"insert_p50_ms", pct(inserts, 0.5)}, {"update_p50_ms", pct(updates, 0.5)},
          {"late_slots", late_slots.load()}};
}

// --- 3. capture overhead ---

// Mean time of a single-row autocommit UPDATE of a random customer, with
// `clients` connections at once, on a database without capture and on its
// twin with capture installed; rounds alternate which goes first so both
// share the machine's noise (checkpoints, other processes).
nlohmann::json CaptureOverhead(double seconds_per_round, int rounds) {
  constexpr int64_t kRows = 100000;
  BenchDatabase plain("overhead_plain");
  SyncPair captured("overhead");
  const std::string load = fmt::format(
      "INSERT INTO \"CUSTMAST\"(\"CNAME\", \"EMAIL\", \"STAT\", \"BAL_CENTS\") SELECT 'LAST' || g || ', FIRST' || g, "
      "'u' || g || '@example.com', 'A', g FROM generate_series(1, {}) g",
      kRows);
  for (const std::string& url : {plain.url(), captured.legacy.url()}) {
    PgConn db(url);
    if (url == plain.url()) db.Exec(ExampleSchema("legacy_schema.sql"));
    db.Exec(load);
    db.Exec("VACUUM ANALYZE \"CUSTMAST\"");
  }
  captured.Install();
  PgConn(DatabaseUrl("postgres")).Exec("CHECKPOINT");

  nlohmann::json out;
  for (int clients : {1, 4}) {
    struct Totals {
      double seconds = 0;
      int64_t transactions = 0;
    } totals[2];  // [0] without capture, [1] with
    std::vector<std::unique_ptr<PgConn>> conns[2];
    for (int which = 0; which < 2; ++which) {
      for (int c = 0; c < clients; ++c) {
        conns[which].push_back(std::make_unique<PgConn>(which ? captured.legacy.url() : plain.url()));
        conns[which].back()->Prepare("upd", "UPDATE \"CUSTMAST\" SET \"BAL_CENTS\" = \"BAL_CENTS\" + 1 WHERE "
                                            "\"CUSTNO\" = $1");
      }
    }
    auto run = [&](int which, double seconds, bool measured) {
      std::vector<std::thread> threads;
      std::vector<Totals> per(clients);
      const auto until = Clock::now() + std::chrono::duration<double>(seconds);
      for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
          std::mt19937_64 rng(std::random_device{}());
          std::uniform_int_distribution<int64_t> key(1, kRows);
          PgConn& db = *conns[which][c];
          while (Clock::now() < until) {
            auto t0 = Clock::now();
            db.Run("upd", {std::to_string(key(rng))});
            per[c].seconds += Seconds(Clock::now() - t0);
            per[c].transactions++;
          }
        });
      }
      for (auto& t : threads) t.join();
      if (!measured) return;
      for (auto& p : per) {
        totals[which].seconds += p.seconds;
        totals[which].transactions += p.transactions;
      }
    };
    run(0, 0.5, false);  // warm-up: sessions, plans, caches
    run(1, 0.5, false);
    for (int r = 0; r < rounds; ++r) {
      for (int which : {r % 2, 1 - r % 2}) run(which, seconds_per_round, true);
    }
    const double us_without = totals[0].seconds / totals[0].transactions * 1e6;
    const double us_with = totals[1].seconds / totals[1].transactions * 1e6;
    const double measured_s = seconds_per_round * rounds;
    fmt::print("capture overhead, single-row autocommit UPDATEs of random rows of {} customers, {} client{}: {:.0f} us "
               "per transaction without capture ({:.0f}/s), {:.0f} us with ({:.0f}/s) = {:.2f}x (target <= 1.2x)\n",
               kRows, clients, clients > 1 ? "s" : "", us_without, totals[0].transactions / measured_s, us_with,
               totals[1].transactions / measured_s, us_with / us_without);
    out[fmt::format("clients_{}", clients)] = {{"us_without", us_without},
                                               {"us_with", us_with},
                                               {"ratio", us_with / us_without},
                                               {"transactions_without", totals[0].transactions},
                                               {"transactions_with", totals[1].transactions}};
  }
  return out;
}

}  // namespace
}  // namespace tandem::pgbench

int main(int argc, char** argv) {
  using namespace tandem::pgbench;
  int64_t rows = 100000;
  double latency_s = 10, overhead_s = 2;
  int latency_rate = 500;
  std::string only, perf_file, kinds = "all", directions = "both";
  PgKindsOptions kinds_options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--rows") rows = std::stoll(next());
    else if (a == "--latency-seconds") latency_s = std::stod(next());
    else if (a == "--latency-rate") latency_rate = std::stoi(next());
    else if (a == "--overhead-seconds") overhead_s = std::stod(next());
    else if (a == "--only") only = next();
    else if (a == "--perf") perf_file = next();
    else if (a == "--kinds") kinds = next();
    else if (a == "--directions") directions = next();
    else if (a == "--idle-seconds") kinds_options.idle_seconds = std::stod(next());
    else if (a == "--no-bucardo") kinds_options.bucardo = false;
    else if (a == "--no-logical") kinds_options.logical = false;
    else {
      fmt::print(stderr, "usage: tandem_pg_bench [--rows N] [--latency-seconds S] [--latency-rate R] "
                         "[--overhead-seconds S] [--only throughput|latency|overhead|kinds] [--perf FILE] [--kinds "
                         "insert,update,delete,mixed] [--directions legacy,modern] [--idle-seconds S] [--no-bucardo] "
                         "[--no-logical]\n"
                         "TANDEM_BENCH_PG_URL=postgresql://USER@HOST:PORT names the server (a superuser, no "
                         "database); scripts/bench.sh starts one. TANDEM_BENCH_BUCARDO_SKIPPED=REASON: Bucardo is "
                         "not measured, for that reason\n");
      return 2;
    }
  }
  std::string error;
  if (!tandem::benchkit::ParseKinds(kinds, &kinds_options.kinds, &error) ||
      !tandem::benchkit::ParseDirections(directions, &kinds_options.directions, &error)) {
    fmt::print(stderr, "{}\n", error);
    return 2;
  }
  kinds_options.changes = rows;
  if (const char* why = getenv("TANDEM_BENCH_BUCARDO_SKIPPED"); why != nullptr && *why != '\0')
    kinds_options.bucardo_skipped = why;
  if (rows <= 0 || rows % 1000 != 0) {
    fmt::print(stderr, "--rows must be a positive multiple of 1,000 (the source transaction size)\n");
    return 2;
  }
  if (!only.empty() && only != "throughput" && only != "latency" && only != "overhead" && only != "kinds") {
    fmt::print(stderr, "--only takes throughput, latency, overhead or kinds\n");
    return 2;
  }
  const char* url = getenv("TANDEM_BENCH_PG_URL");
  if (url == nullptr || *url == '\0') {
    fmt::print(stderr, "TANDEM_BENCH_PG_URL is unset: set it to a PostgreSQL server's base URL "
                       "(postgresql://USER@HOST:PORT, a superuser), e.g. the one `scripts/pg-cluster.sh start DIR` "
                       "prints; scripts/bench.sh does this for you\n");
    return 2;
  }
  g_base_url = url;
  while (!g_base_url.empty() && g_base_url.back() == '/') g_base_url.pop_back();
  std::atexit(CleanUp);
  // Ctrl-C / SIGTERM: a thread of its own takes them (every other thread
  // blocks them), stops `tandem run` and the peers, drops the databases, exits.
  HandleStopSignals();
  spdlog::set_level(spdlog::level::warn);

  nlohmann::json report;
  {
    PgConn admin(DatabaseUrl("postgres"));
    auto s = [&](const char* name) { return admin.Scalar(std::string("SHOW ") + name); };
    report["setup"] = {{"server_version", s("server_version")},   {"fsync", s("fsync")},
                       {"synchronous_commit", s("synchronous_commit")}, {"wal_sync_method", s("wal_sync_method")},
                       {"full_page_writes", s("full_page_writes")},     {"shared_buffers", s("shared_buffers")},
                       {"cores", std::thread::hardware_concurrency()}, {"load_average", LoadAverage()}};
    fmt::print("Tandem PostgreSQL benchmark: PostgreSQL {} -> the same server (two databases, {}), customer mapping "
               "(5 mapped columns, 2 computed), {} cores; fsync={}, synchronous_commit={}, wal_sync_method={}, "
               "full_page_writes={}, shared_buffers={}; load average {}\n",
               s("server_version"), g_base_url, std::thread::hardware_concurrency(), s("fsync"),
               s("synchronous_commit"), s("wal_sync_method"), s("full_page_writes"), s("shared_buffers"),
               LoadAverage());
  }
  std::fflush(stdout);
  if (only.empty() || only == "throughput") {
    report["raw_insert"] = RawInsertBaseline(rows);
    std::fflush(stdout);
    report["throughput"] = Throughput(rows, report["raw_insert"], perf_file);
    std::fflush(stdout);
  }
  if (only.empty() || only == "latency") {
    report["latency"] = Latency(latency_s, latency_rate);
    std::fflush(stdout);
  }
  if (only.empty() || only == "overhead") {
    report["capture_overhead"] = CaptureOverhead(overhead_s, 4);
    std::fflush(stdout);
  }
  if (only.empty() || only == "kinds") report["kinds"] = PgKinds(kinds_options);
  fmt::print("\nJSON {}\n", report.dump());
  return 0;
}
