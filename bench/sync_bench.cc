// tandem_bench: the core issue's performance figures, SQLite to SQLite, with
// the example customer mapping (5 mapped columns, computed ones included).
//
//   1. sustained one-way throughput (first write to last applied), and its
//      ratio to the raw rate of inserting the same rows into the target, with
//      the machine's SQLite floor (set-based inserts, no Tandem code);
//   2. commit-to-commit latency at 1,000 single-row transactions/s;
//   3. capture overhead on single-row autocommit transactions;
//   4. peak resident memory of `tandem run --once` draining a backlog;
//   5. (issue 3) update throughput with `merge` against no conflict detection;
//   6. (issue 12) a legacy application with a 5 s busy timeout writing while
//      one 45,000-row modern transaction, then a 150,000-change modern
//      backlog, are applied to legacy: bounded target transactions (the
//      default) against source transactions kept whole (the old behaviour).
// While (1) and (2) run, an "application" writes the target file with a 5 s
// busy timeout and counts SQLITE_BUSY errors (guarantee 7).
//
//   7. (issue 13) every kind of change (inserts, updates, deletes, a 70/20/10
//      update/insert/delete mix) in each direction, beside the raw rate of
//      writing the same rows into the target and the floor with key-map rows;
//      idle CPU of `tandem run` (bench/sqlite_kinds.cc).
//
// Usage: tandem_bench [--rows N] [--backlog N] [--latency-seconds S] [--writer-rows N] [--writer-backlog N]
//          [--kinds-rows N] [--kinds K,...] [--directions legacy,modern] [--idle-seconds S] [--only NAME]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "sqlite_env.h"
#include "sqlite_kinds.h"

namespace tandem::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Inserts `rows` customers into the legacy table in transactions of `per_tx`.
double WriteLegacyRows(SqliteHandle& db, int64_t first, int64_t rows, int per_tx) {
  auto start = Clock::now();
  for (int64_t done = 0; done < rows;) {
    Check(db.Run("BEGIN", {}), "begin");
    for (int i = 0; i < per_tx && done < rows; ++i, ++done) {
      int64_t n = first + done;
      Check(db.Run("INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES (?, ?, ?, ?)",
                   {Value::Text(fmt::format("LAST{}, FIRST{}", n, n)), Value::Text(fmt::format("u{}@example.com", n)),
                    Value::Text(n % 7 ? "A" : "I"), Value::Integer(n)}),
            "insert");
    }
    Check(db.Run("COMMIT", {}), "commit");
  }
  return Seconds(Clock::now() - start);
}

// An application writing the target file while Tandem applies: one small
// autocommit transaction every 5 ms with a 5 s busy timeout.
struct TargetApp {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> busy_errors{0}, writes{0};
  std::atomic<int64_t> max_wait_us{0};
  std::thread thread;
  explicit TargetApp(const std::string& path) {
    thread = std::thread([this, path] {
      auto db = Open(path, 5000);
      db->ExecScript("CREATE TABLE IF NOT EXISTS app_heartbeat(n INTEGER)");
      while (!stop.load()) {
        auto t0 = Clock::now();
        Status st = db->Run("INSERT INTO app_heartbeat VALUES (1)", {});
        int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        if (!st.ok()) busy_errors++;
        writes++;
        max_wait_us = std::max<int64_t>(max_wait_us.load(), us);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  void Stop() {
    stop = true;
    thread.join();
  }
};

nlohmann::json RawInsertBaseline(int64_t rows) {
  Env env("raw", /*install=*/false);
  auto db = Open(env.modern());
  Check(db->ExecScript("PRAGMA synchronous=FULL"), "pragma");
  auto start = Clock::now();
  for (int64_t done = 0; done < rows;) {
    Check(db->Run("BEGIN", {}), "begin");
    for (int i = 0; i < 1000 && done < rows; ++i, ++done) {
      Check(db->Run("INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES (?, ?, ?, ?, ?, ?)",
                    {Value::Text(NewUuid()), Value::Text(fmt::format("u{}@example.com", done)), Value::Text("active"),
                     Value::Real(done / 100.0), Value::Text(fmt::format("FIRST{}", done)),
                     Value::Text(fmt::format("LAST{}", done))}),
            "raw insert");
    }
    Check(db->Run("COMMIT", {}), "commit");
  }
  double s = Seconds(Clock::now() - start);
  fmt::print("raw baseline: {} rows inserted directly into modern.customers (1,000-row transactions) in {:.2f} s = "
             "{:.0f} rows/s\n",
             rows, s, rows / s);
  return {{"rows", rows}, {"seconds", s}, {"rows_per_s", rows / s}};
}

// The most SQLite itself does on this machine for the target side of the
// throughput run, with no Tandem code at all: the same number of rows put into
// modern.customers with set-based INSERT ... SELECT statements in 10,000-row
// transactions (Tandem's default batch), first alone, then with the one
// key-map row per record (real _tandem_records table, bases of the size the
// customer mapping stores) that any crash-safe key map has to write in the
// same transaction. Tandem's throughput cannot exceed the second figure.
nlohmann::json SqliteFloor(int64_t rows) {
  nlohmann::json out;
  for (bool key_map : {false, true}) {
    Env env(key_map ? "floor-keymap" : "floor", /*install=*/true);
    auto db = Open(env.modern());
    Check(db->ExecScript("PRAGMA synchronous=FULL; PRAGMA cache_size=-32000"), "pragma");
    auto start = Clock::now();
    for (int64_t lo = 0; lo < rows; lo += 10000) {
      int64_t hi = std::min(rows, lo + 10000);
      Check(db->Run("BEGIN IMMEDIATE", {}), "begin");
      Check(db->Run("WITH RECURSIVE n(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
                    "INSERT INTO customers(id, email, status, balance, first_name, last_name) SELECT "
                    "lower(hex(randomblob(16))), 'u' || x || '@example.com', 'active', x / 100.0, 'FIRST' || x, "
                    "'LAST' || x FROM n",
                    {Value::Integer(lo + 1), Value::Integer(hi)}),
            "floor insert");
      if (key_map)
        Check(db->Run("INSERT INTO _tandem_records(entity, lkey, mkey, mhash, version, gone, lbase, mbase) SELECT "
                      "'customer', 'i' || rowid, 't' || id, random(), rowid, 0, printf('%095d', 0), "
                      "printf('%0103d', 0) FROM customers WHERE rowid > ?",
                      {Value::Integer(lo)}),
              "floor key map");
      Check(db->Run("COMMIT", {}), "commit");
    }
    double s = Seconds(Clock::now() - start);
    out[key_map ? "with_key_map_rows_per_s" : "rows_per_s"] = rows / s;
  }
  fmt::print("SQLite floor (no Tandem code): {} rows into modern.customers by set-based INSERT ... SELECT, 10,000-row "
             "transactions: {:.0f} rows/s alone, {:.0f} rows/s with one key-map row each\n",
             rows, out["rows_per_s"].get<double>(), out["with_key_map_rows_per_s"].get<double>());
  return out;
}

nlohmann::json Throughput(int64_t rows, double raw_rate) {
  Env env("throughput");
  auto engine = SyncEngine::Open(env.LoadConfig());
  Check(engine.status(), "engine");
  std::atomic<bool> stop{false};
  std::thread runner([&] { Check((*engine)->Run(stop), "run"); });
  TargetApp app(env.modern());
  auto writer_db = Open(env.legacy());
  auto start = Clock::now();
  double write_s = WriteLegacyRows(*writer_db, 1, rows, 1000);
  auto observer = Open(env.modern());
  while (true) {  // last applied: the target holds every row
    // max(rowid) is one B-tree descent (rows are only inserted here); a
    // count(*) every 2 ms would read the whole table and steal a core.
    std::vector<Row> r;
    Check(observer->Run("SELECT coalesce(max(rowid), 0) FROM customers", {}, &r), "observe");
    if (r[0][0].as_integer() >= rows) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double total_s = Seconds(Clock::now() - start);
  stop = true;
  runner.join();
  app.Stop();
  double rate = rows / total_s;
  fmt::print("throughput legacy->modern: {} row changes, first write to last applied {:.2f} s = {:.0f} changes/s "
             "({:.2f}x the raw insert rate; the source accepted the writes at {:.0f} rows/s)\n",
             rows, total_s, rate, rate / raw_rate, rows / write_s);
  fmt::print("  target-side application during the run: {} writes, {} SQLITE_BUSY, longest wait {:.1f} ms\n",
             app.writes.load(), app.busy_errors.load(), app.max_wait_us.load() / 1000.0);
  return {{"rows", rows},
          {"seconds", total_s},
          {"changes_per_s", rate},
          {"ratio_to_raw_insert", rate / raw_rate},
          {"source_write_rows_per_s", rows / write_s},
          {"app_busy_errors", app.busy_errors.load()},
          {"app_max_wait_ms", app.max_wait_us.load() / 1000.0}};
}

// Issue 3: what conflict detection costs. `rows` customers are synced, then
// updated on legacy (two mapped columns each, 1,000-row transactions) while
// Tandem runs; first write to last applied, with `merge` (the default: every
// field compared with its base and the target) and with detection off (the
// source simply overwrites).
nlohmann::json ConflictCheckCost(int64_t rows) {
  nlohmann::json out;
  for (bool detect : {true, false}) {
    Env env(detect ? "merge" : "nodetect", true,
            detect ? "" : "sync: { detect_conflicts: false }\n");
    auto writer_db = Open(env.legacy());
    WriteLegacyRows(*writer_db, 1, rows, 10000);
    {
      auto engine = SyncEngine::Open(env.LoadConfig());
      Check(engine.status(), "engine");
      Check((*engine)->RunUntilIdle(), "initial sync");
    }
    auto engine = SyncEngine::Open(env.LoadConfig());
    Check(engine.status(), "engine");
    std::atomic<bool> stop{false};
    std::thread runner([&] { Check((*engine)->Run(stop), "run"); });
    auto start = Clock::now();
    for (int64_t lo = 1; lo <= rows; lo += 1000) {
      Check(writer_db->Run("UPDATE CUSTMAST SET BAL_CENTS = BAL_CENTS + 1, EMAIL = 'v2.' || EMAIL WHERE CUSTNO "
                           "BETWEEN ? AND ?",
                           {Value::Integer(lo), Value::Integer(lo + 999)}),
            "update");
    }
    std::vector<Row> r;
    Check(writer_db->Run("SELECT max(seq) FROM _tandem_log", {}, &r), "last seq");
    int64_t last = r[0][0].as_integer();
    auto observer = Open(env.modern());
    while (true) {  // last applied: the position is committed with the data
      r.clear();
      Check(observer->Run("SELECT coalesce(max(seq), 0) FROM _tandem_position WHERE direction = 'legacy-to-modern'",
                          {}, &r),
            "observe");
      if (r[0][0].as_integer() >= last) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    double s = Seconds(Clock::now() - start);
    stop = true;
    runner.join();
    out[detect ? "merge_changes_per_s" : "no_detection_changes_per_s"] = rows / s;
  }
  double ratio = out["merge_changes_per_s"].get<double>() / out["no_detection_changes_per_s"].get<double>();
  out["ratio"] = ratio;
  fmt::print("conflict checks, legacy->modern, {} updates of 2 mapped columns in 1,000-row transactions: merge {:.0f} "
             "changes/s, detection off {:.0f} changes/s = {:.2f}x (target >= 0.80x)\n",
             rows, out["merge_changes_per_s"].get<double>(), out["no_detection_changes_per_s"].get<double>(), ratio);
  return out;
}

nlohmann::json Latency(double seconds, int rate_per_s) {
  Env env("latency");
  auto engine = SyncEngine::Open(env.LoadConfig());
  Check(engine.status(), "engine");
  std::atomic<bool> stop{false};
  std::thread runner([&] { Check((*engine)->Run(stop), "run"); });
  TargetApp app(env.modern());
  const int64_t n = static_cast<int64_t>(seconds * rate_per_s);
  std::vector<Clock::time_point> committed(n + 1), arrived(n + 1);
  std::vector<char> seen(n + 1, 0);
  std::atomic<bool> observing{true};
  std::thread observer([&] {
    auto db = Open(env.modern());
    int64_t last_rowid = 0, version = -1, got = 0;
    while (observing.load() && got < n) {
      std::vector<Row> v;
      db->Run("PRAGMA data_version", {}, &v);
      if (!v.empty() && v[0][0].as_integer() != version) {
        version = v[0][0].as_integer();
        std::vector<Row> rows;
        db->Run("SELECT rowid, balance FROM customers WHERE rowid > ? ORDER BY rowid", {Value::Integer(last_rowid)},
                &rows);
        auto now = Clock::now();
        for (auto& r : rows) {
          last_rowid = r[0].as_integer();
          double b = r[1].type() == ValueType::kInteger ? static_cast<double>(r[1].as_integer()) : r[1].as_real();
          int64_t i = std::llround(b * 100);
          if (i >= 1 && i <= n && !seen[i]) {
            seen[i] = 1;
            arrived[i] = now;
            ++got;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  auto writer = Open(env.legacy());
  auto start = Clock::now();
  for (int64_t i = 1; i <= n; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1000000 / rate_per_s));
    Check(writer->Run("INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('LAST, FIRST', 'x', 'A', ?)",
                      {Value::Integer(i)}),
          "insert");
    committed[i] = Clock::now();
  }
  double write_s = Seconds(Clock::now() - start);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    if (std::count(seen.begin() + 1, seen.end(), 1) == n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  observing = false;
  observer.join();
  stop = true;
  runner.join();
  app.Stop();
  std::vector<double> ms;
  for (int64_t i = 1; i <= n; ++i)
    if (seen[i]) ms.push_back(std::chrono::duration<double, std::milli>(arrived[i] - committed[i]).count());
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms.empty() ? -1.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  fmt::print("latency at {:.0f} single-row transactions/s ({} transactions): p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} "
             "ms, commit to commit ({} arrived)\n",
             n / write_s, n, pct(0.50), pct(0.99), ms.empty() ? -1.0 : ms.back(), ms.size());
  fmt::print("  target-side application during the run: {} writes, {} SQLITE_BUSY, longest wait {:.1f} ms\n",
             app.writes.load(), app.busy_errors.load(), app.max_wait_us.load() / 1000.0);
  return {{"transactions", n},       {"rate_per_s", n / write_s}, {"p50_ms", pct(0.50)},
          {"p99_ms", pct(0.99)},     {"max_ms", ms.empty() ? -1.0 : ms.back()},
          {"arrived", ms.size()},    {"app_busy_errors", app.busy_errors.load()}};
}

nlohmann::json CaptureOverhead(int64_t per_round, int rounds) {
  nlohmann::json out;
  for (const char* sync : {"FULL", "NORMAL"}) {
    Env plain("plain", /*install=*/false), captured("captured", /*install=*/true);
    auto a = Open(plain.legacy()), b = Open(captured.legacy());
    Check(a->ExecScript(fmt::format("PRAGMA synchronous={}", sync)), "pragma");
    Check(b->ExecScript(fmt::format("PRAGMA synchronous={}", sync)), "pragma");
    double t[2] = {0, 0};
    int64_t n = 0;
    for (int r = 0; r < rounds; ++r) {
      for (int which = 0; which < 2; ++which) {  // alternate to share any machine noise
        SqliteHandle& db = which ? *b : *a;
        auto start = Clock::now();
        for (int64_t i = 0; i < per_round; ++i) {
          Check(db.Run("INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES ('LAST, FIRST', 'x@y', 'A', ?)",
                       {Value::Integer(i)}),
                "insert");
          Check(db.Run("UPDATE CUSTMAST SET BAL_CENTS = BAL_CENTS + 1 WHERE CUSTNO = last_insert_rowid()", {}),
                "update");
        }
        t[which] += Seconds(Clock::now() - start);
      }
      n += per_round * 2;
    }
    double ratio = t[1] / t[0];
    fmt::print("capture overhead, single-row autocommit insert+update transactions, synchronous={}: {:.1f} us without "
               "capture, {:.1f} us with = {:.2f}x\n",
               sync, t[0] / n * 1e6, t[1] / n * 1e6, ratio);
    out[sync] = {{"transactions", n}, {"us_without", t[0] / n * 1e6}, {"us_with", t[1] / n * 1e6}, {"ratio", ratio}};
  }
  return out;
}

nlohmann::json BacklogMemory(int64_t rows) {
  Env env("backlog");
  auto writer = Open(env.legacy());
  double write_s = WriteLegacyRows(*writer, 1, rows, 10000);
  writer.reset();
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execl(TANDEM_BINARY, TANDEM_BINARY, "run", "--once", "-c", env.config_path.c_str(), "--log-level", "warn",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  double s = Seconds(Clock::now() - start);
  auto db = Open(env.modern());
  std::vector<Row> r;
  db->Run("SELECT count(*) FROM customers", {}, &r);
  int64_t applied = r[0][0].as_integer();
  double rss_mb = usage.ru_maxrss / 1024.0;
  fmt::print("backlog: {} changes written while Tandem was stopped ({:.1f} s); `tandem run --once` drained them in "
             "{:.1f} s = {:.0f} changes/s, peak resident memory {:.1f} MB (exit {}, {} rows on modern)\n",
             rows, write_s, s, rows / s, rss_mb, WIFEXITED(status) ? WEXITSTATUS(status) : -1, applied);
  return {{"rows", rows}, {"seconds", s}, {"changes_per_s", rows / s}, {"peak_rss_mb", rss_mb}, {"applied", applied}};
}

// Issue 12, guarantee 5: the legacy application is never locked out. A
// legacy application (5 s busy timeout, an insert every 5 ms) writes while
// (a) one modern transaction updating `txn_rows` customers and (b) a backlog
// of `backlog` modern inserts (1,000-row transactions, written while Tandem
// was stopped) are applied to legacy. Run with the default bound
// (sync.max_txn_ms 500 on SQLite) and, as the baseline of the same run, with
// source transactions kept whole and no bound.
nlohmann::json LegacyWriter(int64_t txn_rows, int64_t backlog) {
  nlohmann::json out;
  for (bool bounded : {false, true}) {
    const char* mode = bounded ? "bounded (default, max_txn_ms 500)" : "kept whole (max_txn_ms 0, split off)";
    Env env(bounded ? "writer-bounded" : "writer-whole", true,
            bounded ? "" : "sync: { max_txn_ms: 0, split_transactions: false }\n");
    {
      auto legacy = Open(env.legacy());
      WriteLegacyRows(*legacy, 1, txn_rows, 10000);
      auto engine = SyncEngine::Open(env.LoadConfig());
      Check(engine.status(), "engine");
      Check((*engine)->RunUntilIdle(), "initial sync");
    }
    nlohmann::json m;
    auto engine = SyncEngine::Open(env.LoadConfig());
    Check(engine.status(), "engine");
    auto observer = Open(env.legacy());
    auto scalar = [&](const char* sql) {
      std::vector<Row> r;
      Check(observer->Run(sql, {}, &r), "observe");
      return r[0][0].as_integer();
    };
    // Until `sql` reaches `want`; a change put aside would never let it.
    // Polled every 100 ms: the count scans the table, and polling it faster
    // would take a good part of a core from the run being measured.
    auto wait_for = [&](const char* sql, int64_t want) {
      for (auto t0 = Clock::now(); scalar(sql) < want; std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
        if (scalar("SELECT count(*) FROM _tandem_parked") > 0 || Seconds(Clock::now() - t0) > 900) {
          fmt::print(stderr, "benchmark failed: changes put aside on legacy, or not applied in 900 s\n");
          std::exit(1);
        }
      }
    };
    {  // (a) one modern transaction updating every customer
      std::atomic<bool> stop{false};
      std::thread runner([&] { Check((*engine)->Run(stop), "run"); });
      TargetApp app(env.legacy());
      auto modern = Open(env.modern());
      const int64_t batches_before = (*engine)->stats(Side::kModern).batches;
      auto start = Clock::now();
      Check(modern->Run("UPDATE customers SET email = 'n' || email", {}), "modern update");
      double write_s = Seconds(Clock::now() - start);
      wait_for("SELECT count(*) FROM CUSTMAST WHERE EMAIL LIKE 'n%'", txn_rows);
      double s = Seconds(Clock::now() - start);
      stop = true;
      runner.join();
      app.Stop();
      const int64_t txns = (*engine)->stats(Side::kModern).batches - batches_before;
      fmt::print("legacy writer, {}: one modern UPDATE of {} rows ({:.2f} s on modern) applied to legacy in {:.2f} s "
                 "({} target transactions); the legacy application: {} writes, {} SQLITE_BUSY, longest wait {:.1f} "
                 "ms\n",
                 mode, txn_rows, write_s, s, txns, app.writes.load(), app.busy_errors.load(),
                 app.max_wait_us.load() / 1000.0);
      m["transaction"] = {{"rows", txn_rows},
                          {"seconds", s},
                          {"target_transactions", txns},
                          {"app_writes", app.writes.load()},
                          {"app_busy_errors", app.busy_errors.load()},
                          {"app_max_wait_ms", app.max_wait_us.load() / 1000.0}};
    }
    engine->reset();  // Tandem stops
    {  // (b) a backlog written while Tandem was stopped
      auto modern = Open(env.modern());
      Check(modern->ExecScript("PRAGMA synchronous=NORMAL"), "pragma");
      for (int64_t done = 0; done < backlog;) {
        Check(modern->Run("BEGIN", {}), "begin");
        for (int i = 0; i < 1000 && done < backlog; ++i, ++done)
          Check(modern->Run("INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES (?, ?, "
                            "?, ?, ?, ?)",
                            {Value::Text(NewUuid()), Value::Text(fmt::format("b{}@example.com", done)),
                             Value::Text("active"), Value::Real(static_cast<double>(done % 1000)),
                             Value::Text(fmt::format("FIRST{}", done)), Value::Text(fmt::format("LAST{}", done))}),
                "backlog insert");
        Check(modern->Run("COMMIT", {}), "commit");
      }
      auto drainer = SyncEngine::Open(env.LoadConfig());
      Check(drainer.status(), "engine");
      std::atomic<bool> stop{false};
      TargetApp app(env.legacy());
      auto start = Clock::now();
      std::thread runner([&] { Check((*drainer)->Run(stop), "run"); });
      wait_for("SELECT count(*) FROM CUSTMAST", txn_rows + backlog);
      double s = Seconds(Clock::now() - start);
      stop = true;
      runner.join();
      app.Stop();
      const int64_t txns = (*drainer)->stats(Side::kModern).batches;
      fmt::print("legacy writer, {}: a backlog of {} modern inserts applied to legacy in {:.2f} s = {:.0f} changes/s "
                 "({} target transactions); the legacy application: {} writes, {} SQLITE_BUSY, longest wait {:.1f} "
                 "ms\n",
                 mode, backlog, s, backlog / s, txns, app.writes.load(), app.busy_errors.load(),
                 app.max_wait_us.load() / 1000.0);
      m["backlog"] = {{"changes", backlog},
                      {"seconds", s},
                      {"changes_per_s", backlog / s},
                      {"target_transactions", txns},
                      {"app_writes", app.writes.load()},
                      {"app_busy_errors", app.busy_errors.load()},
                      {"app_max_wait_ms", app.max_wait_us.load() / 1000.0}};
    }
    out[bounded ? "bounded" : "whole"] = m;
  }
  const double whole = out["whole"]["backlog"]["changes_per_s"].get<double>();
  const double bounded = out["bounded"]["backlog"]["changes_per_s"].get<double>();
  fmt::print("legacy writer: backlog drain rate bounded / kept whole = {:.2f}x (what the bound costs)\n",
             bounded / whole);
  out["backlog_rate_ratio_bounded_to_whole"] = bounded / whole;
  return out;
}

}  // namespace
}  // namespace tandem::bench

int main(int argc, char** argv) {
  using namespace tandem::bench;
  int64_t rows = 200000, backlog = 1000000, writer_rows = 45000, writer_backlog = 150000;
  double latency_s = 5;
  std::string only, kinds = "all", directions = "both";
  KindsOptions kinds_options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--rows") rows = std::stoll(next());
    else if (a == "--backlog") backlog = std::stoll(next());
    else if (a == "--latency-seconds") latency_s = std::stod(next());
    else if (a == "--only") only = next();
    else if (a == "--writer-rows") writer_rows = std::stoll(next());
    else if (a == "--writer-backlog") writer_backlog = std::stoll(next());
    else if (a == "--kinds-rows") kinds_options.changes = std::stoll(next());
    else if (a == "--kinds") kinds = next();
    else if (a == "--directions") directions = next();
    else if (a == "--idle-seconds") kinds_options.idle_seconds = std::stod(next());
    else {
      fmt::print(stderr, "usage: tandem_bench [--rows N] [--backlog N] [--latency-seconds S] [--writer-rows N] "
                         "[--writer-backlog N] [--kinds-rows N] [--kinds insert,update,delete,mixed] [--directions "
                         "legacy,modern] [--idle-seconds S] [--only "
                         "throughput|conflicts|latency|overhead|backlog|writer|kinds]\n");
      return 2;
    }
  }
  const std::vector<std::string> figures = {"throughput", "conflicts", "latency", "overhead",
                                            "backlog",    "writer",    "kinds"};
  if (!only.empty() && std::find(figures.begin(), figures.end(), only) == figures.end()) {
    fmt::print(stderr, "--only takes throughput, conflicts, latency, overhead, backlog, writer or kinds\n");
    return 2;
  }
  std::string error;
  if (!tandem::benchkit::ParseKinds(kinds, &kinds_options.kinds, &error) ||
      !tandem::benchkit::ParseDirections(directions, &kinds_options.directions, &error)) {
    fmt::print(stderr, "{}\n", error);
    return 2;
  }
  if (kinds_options.changes <= 0 || kinds_options.changes % 1000 != 0) {
    fmt::print(stderr, "--kinds-rows must be a positive multiple of 1,000 (the source transaction size)\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  fmt::print("Tandem core benchmark: SQLite -> SQLite, customer mapping (5 mapped columns, 2 computed), {} cores\n",
             std::thread::hardware_concurrency());
  nlohmann::json report;
  if (only.empty() || only == "throughput") {
    report["raw_insert"] = RawInsertBaseline(rows);
    report["sqlite_floor"] = SqliteFloor(rows);
    report["throughput"] = Throughput(rows, report["raw_insert"]["rows_per_s"]);
  }
  if (only.empty() || only == "conflicts") report["conflict_checks"] = ConflictCheckCost(rows);
  if (only.empty() || only == "latency") report["latency"] = Latency(latency_s, 1000);
  if (only.empty() || only == "overhead") report["capture_overhead"] = CaptureOverhead(1000, 3);
  if (only.empty() || only == "backlog") report["backlog"] = BacklogMemory(backlog);
  if (only.empty() || only == "writer") report["legacy_writer"] = LegacyWriter(writer_rows, writer_backlog);
  if (only.empty() || only == "kinds") report["kinds"] = SqliteKinds(kinds_options);
  fmt::print("\nJSON {}\n", report.dump());
  return 0;
}
