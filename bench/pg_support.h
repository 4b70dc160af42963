// What the PostgreSQL benchmarks (bench/pg_bench.cc, pg_kinds.cc,
// pg_peers.cc) share: the server's base URL, the benchmark's own sessions
// (plain libpq), fresh databases, `tandem run` as a child process, CPU of
// processes and server sessions, and the cleanup that a failure or an
// interrupt anywhere runs (children stopped, daemons stopped, databases with
// their subscriptions and replication slots dropped).
#pragma once

#include <libpq-fe.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace tandem::pgbench {

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
inline double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string ReadFile(const std::string& path);

// --- the server and cleanup ---

extern std::string g_base_url;  // TANDEM_BENCH_PG_URL without a trailing '/'
std::string DatabaseUrl(const std::string& db);

// Ends the benchmark with `what` on stderr, exit 1; CleanUp runs (atexit).
[[noreturn]] void Fail(const std::string& what);
void Check(const Status& st, const char* what);

// Stops `tandem run`, runs the registered cleanups (newest first), drops the
// databases still registered. Idempotent; registered with atexit by main.
void CleanUp();
// A cleanup to run on failure or interrupt (e.g. stopping a daemon); returns
// its id for RemoveCleanup once the owner cleaned up itself.
int AddCleanup(std::function<void()> fn);
void RemoveCleanup(int id);

// main(): SIGINT/SIGTERM are blocked in every thread and taken by a thread of
// its own, which runs CleanUp and exits.
void HandleStopSignals();
// In a forked child before exec: unblocks SIGINT and SIGTERM again.
void UnblockStopSignals();

// --- the benchmark's own sessions (applications, observers, admin) ---

class PgConn {
 public:
  explicit PgConn(const std::string& url);
  ~PgConn() { PQfinish(conn_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  PGconn* raw() { return conn_; }
  const std::string& url() const { return url_; }

  // One or more statements without parameters; exits on failure.
  void Exec(const std::string& sql);
  // Rows of the (last) statement, as text ("" for NULL).
  std::vector<std::vector<std::string>> Query(const std::string& sql, const std::vector<std::string>& params = {});
  std::string Scalar(const std::string& sql, const std::vector<std::string>& params = {});
  // Prepares `sql` as `name` unless this session already has `name`.
  void Prepare(const std::string& name, const std::string& sql);
  // A prepared statement with text parameters, in autocommit: one transaction.
  void Run(const std::string& name, const std::vector<std::string>& params);
  // COPY ... FROM STDIN with `data` (text format).
  void Copy(const std::string& copy_sql, const std::string& data);
  // BEGIN, the prepared statements `calls` (name, parameters) in order, COMMIT:
  // one transaction sent as one pipeline (one round trip).
  void RunPipelined(const std::vector<std::pair<const char*, std::vector<std::string>>>& calls);

 private:
  // `res` when it succeeded; otherwise the benchmark ends with the server's message.
  PGresult* Checked(PGresult* res, const std::string& what);
  std::string url_;
  PGconn* conn_;
  std::set<std::string> prepared_;
};

// Drops `name` (WITH (FORCE)) with the subscriptions it holds and the
// replication slots on it, which would block the drop.
void DropDatabase(const std::string& name);

// A fresh database tandem_bench_<pid>_<what>, dropped with this object.
class BenchDatabase {
 public:
  explicit BenchDatabase(const std::string& what);
  ~BenchDatabase() { DropDatabase(name_); }
  BenchDatabase(const BenchDatabase&) = delete;
  BenchDatabase& operator=(const BenchDatabase&) = delete;

  const std::string& name() const { return name_; }
  std::string url() const { return DatabaseUrl(name_); }

 private:
  std::string name_;
};

// A fresh folder /tmp/<prefix>XXXXXX, removed with this object or by CleanUp.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int cleanup_id_ = 0;
};

// What `tandem install -c CONFIG` does, in-process (as tandem_bench does).
void InstallTandem(const std::string& config_path);

// --- processes ---

// The machine's 1-minute load average (other work skews every figure on 2 cores).
std::string LoadAverage();

// `tandem run -c CONFIG` as a child process.
class TandemRun {
 public:
  explicit TandemRun(const std::string& config_path);
  ~TandemRun() {
    if (pid_ > 0) Stop();
  }
  TandemRun(const TandemRun&) = delete;
  TandemRun& operator=(const TandemRun&) = delete;
  pid_t pid() const { return pid_; }
  double CpuSeconds() const;
  // Fails the benchmark when the process has exited.
  void CheckAlive();
  // SIGTERM (it finishes the batch in hand) and wait; its whole-life rusage.
  struct rusage Stop();

 private:
  pid_t pid_ = 0;
};

// CPU seconds so far of the PostgreSQL backends serving Tandem (application_name
// 'tandem') on `databases`, per backend pid.
std::map<int, double> TandemBackendCpu(PgConn& admin, const std::vector<std::string>& databases);
double CpuDelta(const std::map<int, double>& before, const std::map<int, double>& after);

}  // namespace tandem::pgbench
