// SQLite -> SQLite, every kind of change in each direction, with the example
// customer mapping (bench/sqlite_env.h). For each direction and kind:
//
//   Tandem: capture installed, the pre-load written on the source and synced
//     by `tandem run` (a child process), one warm-up change through, then the
//     workload's 1,000-change source transactions (prepared statements); first
//     source write to the last change visible in the target (polled by primary
//     key every 2 ms), then the whole target checked (row count, updated rows);
//   raw: the same rows written straight into a fresh target table (no Tandem
//     installed), prepared statements, one transaction;
//   floor with key-map rows: the same, plus for every record Tandem's key-map
//     upsert (INSERT ... ON CONFLICT DO UPDATE into the real _tandem_records,
//     pre-loaded with the entries of the pre-loaded records, with bases of the
//     mapping's columns) in a target where Tandem is installed, its capture
//     muted by the _tandem_applying row as in Tandem's own apply transaction.
//   Both with Tandem's connection settings (synchronous=FULL, foreign keys
//   on) and a page cache that holds the one transaction.
//
// Idle CPU: `tandem run` with nothing to do, over --idle-seconds, in the first
// Tandem measurement (after its warm-up change).
#include "sqlite_kinds.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/key_codec.h"
#include "engine/record_store.h"
#include "sqlite_env.h"

namespace tandem::bench {
namespace {

using benchkit::Clock;
using benchkit::From;
using benchkit::Kind;
using benchkit::Op;
using benchkit::Seconds;
using benchkit::Step;
using benchkit::Workload;

// --- records: record n as each side holds it ---

std::string Email(int64_t n, bool updated) { return fmt::format("{}u{}@example.com", updated ? "v2." : "", n); }
// The key of a record born on modern (the application's own UUIDs).
std::string ModernId(int64_t n) { return fmt::format("00000000-0000-4000-8000-{:012d}", n); }

struct Table {
  const char* name;
  const char* key;
};
Table TableOf(Side s) { return s == Side::kLegacy ? Table{"CUSTMAST", "CUSTNO"} : Table{"customers", "id"}; }
Side SourceSide(From f) { return f == From::kLegacy ? Side::kLegacy : Side::kModern; }
Side TargetSide(From f) { return f == From::kLegacy ? Side::kModern : Side::kLegacy; }

// Writes record n's change `op` into `side`'s table, by `key`; a legacy
// insert with a NULL key lets the database assign it. Returns the row's key.
Value WriteRecord(SqliteHandle& db, Side side, Op op, int64_t n, const Value& key) {
  const bool legacy = side == Side::kLegacy;
  switch (op) {
    case Op::kInsert:
      if (legacy && key.is_null()) {
        Check(db.Run("INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) VALUES (?, ?, ?, ?)",
                     {Value::Text(fmt::format("LAST{}, FIRST{}", n, n)), Value::Text(Email(n, false)),
                      Value::Text(n % 7 ? "A" : "I"), Value::Integer(n)}),
              "insert");
        return Value::Integer(sqlite3_last_insert_rowid(db.db()));
      }
      if (legacy) {
        Check(db.Run("INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES (?, ?, ?, ?, ?)",
                     {key, Value::Text(fmt::format("LAST{}, FIRST{}", n, n)), Value::Text(Email(n, false)),
                      Value::Text(n % 7 ? "A" : "I"), Value::Integer(n)}),
              "insert");
        return key;
      }
      Check(db.Run("INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES (?, ?, ?, ?, ?, ?)",
                   {key, Value::Text(Email(n, false)), Value::Text(n % 7 ? "active" : "inactive"),
                    Value::Real(n / 100.0), Value::Text(fmt::format("FIRST{}", n)),
                    Value::Text(fmt::format("LAST{}", n))}),
            "insert");
      return key;
    case Op::kUpdate:
      if (legacy)
        Check(db.Run("UPDATE CUSTMAST SET EMAIL = ?, BAL_CENTS = ? WHERE CUSTNO = ?",
                     {Value::Text(Email(n, true)), Value::Integer(n + 1), key}),
              "update");
      else
        Check(db.Run("UPDATE customers SET email = ?, balance = ? WHERE id = ?",
                     {Value::Text(Email(n, true)), Value::Real((n + 1) / 100.0), key}),
              "update");
      return key;
    case Op::kDelete:
      Check(db.Run(legacy ? "DELETE FROM CUSTMAST WHERE CUSTNO = ?" : "DELETE FROM customers WHERE id = ?", {key}),
            "delete");
      return key;
  }
  return key;
}

Value SourceKey(From from, int64_t n) {
  return from == From::kLegacy ? Value::Integer(n) : Value::Text(ModernId(n));
}

// The application: records 0..w.preload, in 10,000-row transactions.
void WritePreload(SqliteHandle& db, From from, int64_t preload) {
  for (int64_t n = 0; n <= preload;) {
    Check(db.Run("BEGIN", {}), "begin");
    for (int i = 0; i < 10000 && n <= preload; ++i, ++n)
      WriteRecord(db, SourceSide(from), Op::kInsert, n, SourceKey(from, n));
    Check(db.Run("COMMIT", {}), "commit");
  }
}

// The application: the measured transactions. Returns the seconds they took.
double WriteWorkload(SqliteHandle& db, From from, const Workload& w) {
  auto start = Clock::now();
  for (auto& txn : w.txns) {
    Check(db.Run("BEGIN", {}), "begin");
    for (const Step& s : txn) WriteRecord(db, SourceSide(from), s.op, s.n, SourceKey(from, s.n));
    Check(db.Run("COMMIT", {}), "commit");
  }
  return Seconds(Clock::now() - start);
}

// --- `tandem run` as a child process ---

std::atomic<pid_t> g_tandem_pid{0};
void KillTandem() {
  if (pid_t pid = g_tandem_pid.exchange(0); pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

class TandemChild {
 public:
  explicit TandemChild(const std::string& config_path) {
    static bool registered = (std::atexit(KillTandem), true);
    (void)registered;
    pid_ = fork();
    if (pid_ < 0) Fail("fork");
    if (pid_ == 0) {
      execl(TANDEM_BINARY, TANDEM_BINARY, "run", "-c", config_path.c_str(), "--log-level", "warn",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    g_tandem_pid = pid_;
  }
  ~TandemChild() { Stop(); }
  TandemChild(const TandemChild&) = delete;
  TandemChild& operator=(const TandemChild&) = delete;

  double CpuSeconds() const { return benchkit::ProcessCpuSeconds(pid_); }
  void CheckAlive() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      g_tandem_pid = 0;
      Fail(fmt::format("`tandem run` exited early (status {})", status));
    }
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fmt::print(stderr, "warning: `tandem run` ended with status {}\n", status);
    pid_ = 0;
    g_tandem_pid = 0;
  }
  [[noreturn]] static void Fail(const std::string& what) {
    fmt::print(stderr, "benchmark failed: {}\n", what);
    std::exit(1);  // KillTandem runs (atexit)
  }

 private:
  pid_t pid_ = 0;
};

// --- observing the target ---

int64_t Scalar(SqliteHandle& db, const std::string& sql, const Row& params = {}) {
  std::vector<Row> r;
  Check(db.Run(sql, params, &r), "observe");
  return r.empty() || r[0].empty() || r[0][0].is_null() ? 0 : r[0][0].as_integer();
}

// Polls `done` every `every` until it holds; fails after `timeout_s`, when
// `tandem run` exits, or when changes were put aside (they would never arrive).
void WaitFor(const std::function<bool()>& done, TandemChild& tandem, const Env& env, double timeout_s,
             const std::string& what, std::chrono::milliseconds every = std::chrono::milliseconds(2)) {
  auto start = Clock::now(), checked = start;
  while (!done()) {
    tandem.CheckAlive();
    if (Seconds(Clock::now() - checked) > 1) {
      checked = Clock::now();
      for (const std::string& path : {env.legacy(), env.modern()}) {
        auto db = Open(path);
        if (int64_t parked = Scalar(*db, "SELECT count(*) FROM _tandem_parked"); parked > 0)
          TandemChild::Fail(fmt::format("{}: Tandem put {} changes aside in {} (see `tandem status`)", what, parked,
                                        path));
      }
    }
    if (Seconds(Clock::now() - start) > timeout_s)
      TandemChild::Fail(fmt::format("{}: not reached within {:.0f} s", what, timeout_s));
    std::this_thread::sleep_for(every);
  }
}

// The target's key of every pre-loaded record (by its email u<n>@example.com).
// (SQLite names are case-insensitive: `email` is legacy's EMAIL too.)
std::vector<Value> TargetKeys(SqliteHandle& target, From from, int64_t preload) {
  Table t = TableOf(TargetSide(from));
  std::vector<Row> rows;
  Check(target.Run(fmt::format("SELECT {}, email FROM {}", t.key, t.name), {}, &rows), "target keys");
  std::vector<Value> keys(preload + 1);
  for (auto& r : rows) {
    const std::string& email = r[1].as_bytes();
    int64_t n = std::stoll(email.substr(email.find('u') + 1));
    if (n >= 0 && n <= preload) keys[n] = r[0];
  }
  return keys;
}

// The workload's last change shows in the target.
bool LastArrived(SqliteHandle& target, From from, const Workload& w, const std::vector<Value>& keys) {
  Table t = TableOf(TargetSide(from));
  const Step& last = w.last();
  if (last.op == Op::kInsert)  // inserts only: rowids are dense, the last one is the count
    return Scalar(target, fmt::format("SELECT max(rowid) FROM {}", t.name)) >= w.final_rows();
  std::vector<Row> r;
  Check(target.Run(fmt::format("SELECT email FROM {} WHERE {} = ?", t.name, t.key), {keys[last.n]}, &r), "observe");
  if (last.op == Op::kDelete) return r.empty();
  return !r.empty() && r[0][0].as_bytes() == Email(last.n, true);
}

// Every change shows in the target: its row count and its updated rows.
bool AllArrived(SqliteHandle& target, From from, const Workload& w) {
  Table t = TableOf(TargetSide(from));
  std::vector<Row> r;
  Check(target.Run(fmt::format("SELECT count(*), coalesce(sum(email LIKE 'v2.%'), 0) FROM {}", t.name), {}, &r),
        "observe");
  return r[0][0].as_integer() == w.final_rows() && r[0][1].as_integer() == w.updates;
}

// --- Tandem ---

struct TandemFigure {
  double seconds = 0, source_seconds = 0;
};

// Idle CPU of `tandem run` (fraction of one core) over `seconds`, after a second's rest.
double IdleCpu(TandemChild& tandem, double seconds) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double before = tandem.CpuSeconds();
  auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return (tandem.CpuSeconds() - before) / Seconds(Clock::now() - start);
}

TandemFigure MeasureTandem(const Workload& w, From from, double idle_seconds, nlohmann::json* idle) {
  Env env("kinds-tandem");
  auto source = Open(from == From::kLegacy ? env.legacy() : env.modern());
  auto target = Open(from == From::kLegacy ? env.modern() : env.legacy());
  const std::string what = fmt::format("{} {}", benchkit::DirectionName(from), benchkit::KindName(w.kind));
  WritePreload(*source, from, w.preload);
  TandemChild tandem(env.config_path);
  Table t = TableOf(TargetSide(from));
  WaitFor([&] { return Scalar(*target, fmt::format("SELECT count(*) FROM {}", t.name)) >= w.preload + 1; }, tandem,
          env, 900, what + ": pre-load synced", std::chrono::milliseconds(50));
  std::vector<Value> keys = TargetKeys(*target, from, w.preload);
  // Warm-up: one change through the running engine (record 0, not counted as updated).
  Table s = TableOf(SourceSide(from));
  Check(source->Run(fmt::format("UPDATE {} SET email = 'w.' || email WHERE {} = ?", s.name, s.key),
                    {SourceKey(from, 0)}),
        "warm-up");
  WaitFor([&] { return Scalar(*target, fmt::format("SELECT count(*) FROM {} WHERE {} = ? AND email LIKE 'w.%'",
                                                   t.name, t.key),
                              {keys[0]}) == 1; },
          tandem, env, 60, what + ": warm-up change");
  if (idle_seconds > 0 && idle->is_null()) {
    const double core = IdleCpu(tandem, idle_seconds);
    fmt::print("idle `tandem run` (SQLite, nothing to sync, {:.0f} s): {:.2f}% of one core (target <= 1%)\n",
               idle_seconds, core * 100);
    *idle = {{"seconds", idle_seconds}, {"tandem_core_percent", core * 100}};
  }

  TandemFigure f;
  const auto start = Clock::now();
  std::thread observer([&] {
    auto db = Open(target->path());
    WaitFor([&] { return LastArrived(*db, from, w, keys); }, tandem, env, 1800, what + ": last change");
    WaitFor([&] { return AllArrived(*db, from, w); }, tandem, env, 60, what + ": every change",
            std::chrono::milliseconds(20));
    f.seconds = Seconds(Clock::now() - start);
  });
  f.source_seconds = WriteWorkload(*source, from, w);
  observer.join();
  tandem.Stop();
  return f;
}

// --- the baselines: no Tandem code ---

const char* kKeyMapUpsert =
    "INSERT INTO _tandem_records(entity, lkey, mkey, mhash, version, gone, lbase, mbase) VALUES (?, ?, ?, ?, ?, ?, ?, "
    "?) ON CONFLICT(entity, lkey) DO UPDATE SET mkey = excluded.mkey, mhash = excluded.mhash, version = "
    "excluded.version, gone = excluded.gone, lbase = excluded.lbase, mbase = excluded.mbase";

// The key-map entry of record n after `op`, with the bases Tandem keeps for the customer mapping.
Row KeyMapEntry(From from, Op op, int64_t n, const Value& target_key, int64_t version) {
  const Value lkey = from == From::kLegacy ? Value::Integer(n) : target_key;
  const Value mkey = from == From::kLegacy ? target_key : Value::Text(ModernId(n));
  const std::string l = EncodeKey({lkey}), m = EncodeKey({mkey});
  const bool updated = op == Op::kUpdate, gone = op == Op::kDelete;
  Value lbase, mbase;
  if (!gone) {
    ColumnValues lb, mb;
    lb["CNAME"] = Value::Text(fmt::format("LAST{}, FIRST{}", n, n));
    lb["EMAIL"] = Value::Text(Email(n, updated));
    lb["STAT"] = Value::Text(n % 7 ? "A" : "I");
    lb["BAL_CENTS"] = Value::Integer(updated ? n + 1 : n);
    mb["email"] = Value::Text(Email(n, updated));
    mb["status"] = Value::Text(n % 7 ? "active" : "inactive");
    mb["balance"] = Value::Real((updated ? n + 1 : n) / 100.0);
    mb["first_name"] = Value::Text(fmt::format("FIRST{}", n));
    mb["last_name"] = Value::Text(fmt::format("LAST{}", n));
    lbase = Value::Text(RecordStore::EncodeBase(lb));
    mbase = Value::Text(RecordStore::EncodeBase(mb));
  }
  return {Value::Text("customer"), Value::Text(l), Value::Text(m), Value::Integer(KeyHash("customer", m)),
          Value::Integer(version), Value::Integer(gone ? 1 : 0), lbase, mbase};
}

// A new target row's key: the database's on legacy, a random UUID on modern (as Tandem makes them).
Value NewTargetKey(From from) { return from == From::kLegacy ? Value::Text(NewUuid()) : Value::Null(); }

// Rows/s of writing the workload's target rows straight into a fresh target,
// prepared statements, one transaction; `key_map`: plus a key-map row each.
// The pre-load (record 0..preload) is written first, untimed.
double TargetRate(const Workload& w, From from, bool key_map) {
  Env env(key_map ? "kinds-floor" : "kinds-raw", /*install=*/key_map);
  auto db = Open(from == From::kLegacy ? env.modern() : env.legacy());
  // Tandem's connection settings, but a page cache that holds the whole
  // transaction: with Tandem's 32 MB, one transaction of 100,000 changes and
  // their key-map rows spills dirty pages mid-transaction (a cost of the one
  // big transaction; Tandem's own are bounded at 500 ms and stay far below).
  Check(db->ExecScript("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-1048576"), "pragma");
  const Side side = TargetSide(from);
  int64_t version = 0;
  auto begin = [&] {
    Check(db->Run("BEGIN IMMEDIATE", {}), "begin");
    if (key_map) Check(db->Run("INSERT INTO _tandem_applying(x) VALUES (1)", {}), "applying");
  };
  auto commit = [&] {
    if (key_map) Check(db->Run("DELETE FROM _tandem_applying", {}), "applying");
    Check(db->Run("COMMIT", {}), "commit");
  };
  std::vector<Value> keys(w.preload + 1);
  begin();
  for (int64_t n = 0; n <= w.preload; ++n) {
    keys[n] = WriteRecord(*db, side, Op::kInsert, n, NewTargetKey(from));
    if (key_map) Check(db->Run(kKeyMapUpsert, KeyMapEntry(from, Op::kInsert, n, keys[n], ++version)), "key map");
  }
  commit();
  const auto start = Clock::now();
  begin();
  for (auto& txn : w.txns) {
    for (const Step& s : txn) {
      Value key = WriteRecord(*db, side, s.op, s.n, s.op == Op::kInsert ? NewTargetKey(from) : keys[s.n]);
      if (key_map) Check(db->Run(kKeyMapUpsert, KeyMapEntry(from, s.op, s.n, key, ++version)), "key map");
    }
  }
  commit();
  return w.changes() / Seconds(Clock::now() - start);
}

// --- the figure ---

std::string Target(Kind k, double tandem, double floor) {
  if (k != Kind::kInsert && k != Kind::kUpdate) return "";
  return fmt::format(">= 0.75x floor: {}", tandem >= 0.75 * floor ? "met" : "NOT met");
}

}  // namespace

nlohmann::json SqliteKinds(const KindsOptions& o) {
  using benchkit::Rate;
  using benchkit::Ratio;
  fmt::print("kinds of change, SQLite -> SQLite (customer mapping, synchronous=FULL): {} changes per kind and "
             "direction in 1,000-change source transactions; Tandem first source write -> last change visible in "
             "the target; raw / floor: the same target rows written directly, prepared statements, one transaction "
             "(floor: plus one key-map row per record)\n",
             o.changes);
  std::fflush(stdout);
  nlohmann::json out = {{"changes", o.changes}}, idle;
  benchkit::TextTable table({"direction", "kind", "Tandem/s", "source/s", "raw/s", "floor/s", "Tandem/floor",
                             "Tandem/raw", "target (issue 13)"});
  for (From from : o.directions) {
    for (Kind kind : o.kinds) {
      Workload w = benchkit::MakeWorkload(kind, o.changes);
      const double raw = TargetRate(w, from, false), floor = TargetRate(w, from, true);
      TandemFigure f = MeasureTandem(w, from, o.idle_seconds, &idle);
      const double rate = w.changes() / f.seconds, source = w.changes() / f.source_seconds;
      fmt::print("  {} {}: Tandem {} changes/s ({:.2f} s; the source wrote them at {} rows/s), raw {} rows/s, floor "
                 "with key-map rows {} rows/s = {} of the floor\n",
                 benchkit::DirectionName(from), benchkit::KindName(kind), Rate(rate), f.seconds, Rate(source),
                 Rate(raw), Rate(floor), Ratio(rate, floor));
      std::fflush(stdout);
      table.Add({benchkit::DirectionName(from), benchkit::KindName(kind), Rate(rate), Rate(source), Rate(raw),
                 Rate(floor), Ratio(rate, floor), Ratio(rate, raw), Target(kind, rate, floor)});
      out[benchkit::DirectionKey(from)][benchkit::KindName(kind)] = {
          {"changes", w.changes()},           {"inserts", w.inserts},
          {"updates", w.updates},             {"deletes", w.deletes},
          {"tandem_seconds", f.seconds},      {"tandem_changes_per_s", rate},
          {"source_rows_per_s", source},      {"raw_rows_per_s", raw},
          {"floor_rows_per_s", floor},        {"ratio_to_floor", rate / floor},
          {"ratio_to_raw", rate / raw}};
    }
  }
  fmt::print("\n{}", table.Render());
  if (!idle.is_null()) {
    fmt::print("idle CPU of `tandem run` with nothing to sync: {:.2f}% of one core (target <= 1%)\n",
               idle["tandem_core_percent"].get<double>());
    out["idle"] = idle;
  }
  return out;
}

}  // namespace tandem::bench
