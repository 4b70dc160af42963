#include "pg_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "engine/ops/installer.h"
#include "engine/sync_engine.h"
#include "mapping/expression.h"
#include "workload.h"

namespace tandem::pgbench {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- cleanup: what a failure anywhere must not leave behind ---

std::string g_base_url;

namespace {
std::mutex g_cleanup_mu;
std::vector<std::string> g_databases;                   // GUARDED_BY(g_cleanup_mu): created, not dropped yet
std::vector<std::pair<int, std::function<void()>>> g_cleanups;  // GUARDED_BY(g_cleanup_mu)
int g_next_cleanup = 1;                                 // GUARDED_BY(g_cleanup_mu)
std::atomic<pid_t> g_tandem_pid{0};                     // a running `tandem run`, or 0
std::atomic<bool> g_interrupted{false};  // SIGINT/SIGTERM: the signal thread cleans up and exits
}  // namespace

std::string DatabaseUrl(const std::string& db) { return g_base_url + "/" + db; }

void CleanUp() {
  static std::mutex once;  // a second caller waits for the first, then finds nothing left
  std::lock_guard<std::mutex> hold(once);
  if (pid_t pid = g_tandem_pid.exchange(0); pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  std::vector<std::pair<int, std::function<void()>>> cleanups;
  std::vector<std::string> dbs;
  {
    std::lock_guard<std::mutex> lock(g_cleanup_mu);
    cleanups.swap(g_cleanups);
    dbs = g_databases;
  }
  for (auto it = cleanups.rbegin(); it != cleanups.rend(); ++it) it->second();
  for (const auto& db : dbs) DropDatabase(db);
}

int AddCleanup(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(g_cleanup_mu);
  g_cleanups.emplace_back(g_next_cleanup, std::move(fn));
  return g_next_cleanup++;
}

void RemoveCleanup(int id) {
  std::lock_guard<std::mutex> lock(g_cleanup_mu);
  g_cleanups.erase(std::remove_if(g_cleanups.begin(), g_cleanups.end(), [id](auto& c) { return c.first == id; }),
                   g_cleanups.end());
}

void Fail(const std::string& what) {
  // Sessions cut by an interrupt's cleanup fail: leave the exit to the signal thread.
  while (g_interrupted.load()) std::this_thread::sleep_for(std::chrono::seconds(1));
  std::fflush(stdout);
  fmt::print(stderr, "pg benchmark failed: {}\n", what);
  std::fflush(stdout);
  std::exit(1);  // CleanUp runs (atexit)
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) Fail(fmt::format("{}: {}", what, st.ToString()));
}

void HandleStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::thread([stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    g_interrupted = true;
    fmt::print(stderr, "interrupted: stopping `tandem run` and the peers, dropping the benchmark's databases\n");
    CleanUp();
    _exit(128 + sig);
  }).detach();
}

void UnblockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

// --- sessions ---

PgConn::PgConn(const std::string& url) : url_(url), conn_(PQconnectdb(url.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) Fail(fmt::format("cannot connect to {}: {}", url, PQerrorMessage(conn_)));
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
}

void PgConn::Exec(const std::string& sql) { PQclear(Checked(PQexec(conn_, sql.c_str()), sql)); }

std::vector<std::vector<std::string>> PgConn::Query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> p;
  for (auto& s : params) p.push_back(s.c_str());
  PGresult* res = Checked(
      PQexecParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0), sql);
  std::vector<std::vector<std::string>> rows(PQntuples(res));
  for (int r = 0; r < PQntuples(res); ++r)
    for (int c = 0; c < PQnfields(res); ++c) rows[r].push_back(PQgetvalue(res, r, c));
  PQclear(res);
  return rows;
}

std::string PgConn::Scalar(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = Query(sql, params);
  return rows.empty() || rows[0].empty() ? std::string() : rows[0][0];
}

void PgConn::Prepare(const std::string& name, const std::string& sql) {
  if (!prepared_.insert(name).second) return;
  PQclear(Checked(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), sql));
}

void PgConn::Run(const std::string& name, const std::vector<std::string>& params) {
  std::vector<const char*> p;
  p.reserve(params.size());
  for (auto& s : params) p.push_back(s.c_str());
  PQclear(
      Checked(PQexecPrepared(conn_, name.c_str(), static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0), name));
}

void PgConn::Copy(const std::string& copy_sql, const std::string& data) {
  PGresult* res = PQexec(conn_, copy_sql.c_str());
  if (PQresultStatus(res) != PGRES_COPY_IN) Fail(fmt::format("{} on {}: {}", copy_sql, url_, PQerrorMessage(conn_)));
  PQclear(res);
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(conn_, nullptr) != 1)
    Fail(fmt::format("COPY data to {}: {}", url_, PQerrorMessage(conn_)));
  PQclear(Checked(PQgetResult(conn_), copy_sql));
  while (PGresult* more = PQgetResult(conn_)) PQclear(more);
}

void PgConn::RunPipelined(const std::vector<std::pair<const char*, std::vector<std::string>>>& calls) {
  if (PQenterPipelineMode(conn_) != 1) Fail(fmt::format("pipeline mode on {}: {}", url_, PQerrorMessage(conn_)));
  auto sent = [&](int ok, const char* what) {
    if (ok != 1) Fail(fmt::format("sending {} to {}: {}", what, url_, PQerrorMessage(conn_)));
  };
  sent(PQsendQueryParams(conn_, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), "BEGIN");
  std::vector<const char*> p;
  for (auto& [name, params] : calls) {
    p.clear();
    for (auto& s : params) p.push_back(s.c_str());
    sent(PQsendQueryPrepared(conn_, name, static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0), name);
  }
  sent(PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0), "COMMIT");
  sent(PQpipelineSync(conn_), "sync");
  std::string error;
  for (size_t i = 0; i < calls.size() + 2; ++i) {  // each command: its result, then NULL
    while (PGresult* res = PQgetResult(conn_)) {
      ExecStatusType st = PQresultStatus(res);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && error.empty())
        error = fmt::format("{}: {}", i == 0 ? "BEGIN" : i <= calls.size() ? calls[i - 1].first : "COMMIT",
                            PQresultErrorMessage(res));
      PQclear(res);
    }
  }
  PGresult* sync = PQgetResult(conn_);
  if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && error.empty()) error = "no pipeline sync";
  PQclear(sync);
  PQexitPipelineMode(conn_);
  if (!error.empty()) Fail(fmt::format("pipelined transaction on {}: {}", url_, error));
}

PGresult* PgConn::Checked(PGresult* res, const std::string& what) {
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  std::string msg = PQerrorMessage(conn_);
  PQclear(res);
  Fail(fmt::format("{} on {}: {}", what.substr(0, 200), url_, msg));
}

// --- databases ---

namespace {
// Runs `sql` on `conn`, ignoring failure (cleanup goes on past what is already gone).
void TryExec(PGconn* conn, const std::string& sql) { PQclear(PQexec(conn, sql.c_str())); }

// Subscriptions in `name` (pg_subscription is shared: seen from any database)
// and logical replication slots on it: each keeps DROP DATABASE from running.
void DropReplication(PGconn* admin, const std::string& name) {
  PGresult* subs = PQexecParams(admin,
                                "SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
                                "WHERE d.datname = $1",
                                1, nullptr, std::vector<const char*>{name.c_str()}.data(), nullptr, nullptr, 0);
  if (PQresultStatus(subs) == PGRES_TUPLES_OK && PQntuples(subs) > 0) {
    PGconn* db = PQconnectdb(DatabaseUrl(name).c_str());
    for (int r = 0; r < PQntuples(subs) && PQstatus(db) == CONNECTION_OK; ++r) {
      std::string sub = PQgetvalue(subs, r, 0);
      TryExec(db, fmt::format("ALTER SUBSCRIPTION \"{}\" DISABLE", sub));
      TryExec(db, fmt::format("ALTER SUBSCRIPTION \"{}\" SET (slot_name = NONE)", sub));
      TryExec(db, fmt::format("DROP SUBSCRIPTION \"{}\"", sub));
    }
    PQfinish(db);
  }
  PQclear(subs);
  for (int attempt = 0; attempt < 50; ++attempt) {  // a walsender lets go of its slot shortly after it is cut
    TryExec(admin, fmt::format("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = "
                               "'{}' AND active_pid IS NOT NULL",
                               name));
    PGresult* left = PQexec(admin, fmt::format("SELECT count(pg_drop_replication_slot(slot_name)) FROM "
                                               "pg_replication_slots WHERE database = '{}' AND NOT active",
                                               name)
                                       .c_str());
    PQclear(left);
    PGresult* any = PQexec(admin, fmt::format("SELECT 1 FROM pg_replication_slots WHERE database = '{}'", name).c_str());
    const bool done = PQresultStatus(any) == PGRES_TUPLES_OK && PQntuples(any) == 0;
    PQclear(any);
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}
}  // namespace

void DropDatabase(const std::string& name) {
  PGconn* conn = PQconnectdb(DatabaseUrl("postgres").c_str());
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  if (PQstatus(conn) == CONNECTION_OK) {
    DropReplication(conn, name);
    PGresult* res = PQexec(conn, fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name).c_str());
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
      fmt::print(stderr, "warning: could not drop database {}: {}", name, PQerrorMessage(conn));
    PQclear(res);
  }
  PQfinish(conn);
  std::lock_guard<std::mutex> lock(g_cleanup_mu);
  g_databases.erase(std::remove(g_databases.begin(), g_databases.end(), name), g_databases.end());
}

BenchDatabase::BenchDatabase(const std::string& what) : name_(fmt::format("tandem_bench_{}_{}", getpid(), what)) {
  DropDatabase(name_);
  {
    std::lock_guard<std::mutex> lock(g_cleanup_mu);
    g_databases.push_back(name_);
  }
  PgConn(DatabaseUrl("postgres")).Exec(fmt::format("CREATE DATABASE {}", name_));
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp " + tmpl);
  path_ = tmpl;
  cleanup_id_ = AddCleanup([path = path_] { std::filesystem::remove_all(path); });
}

TempDir::~TempDir() {
  std::filesystem::remove_all(path_);
  RemoveCleanup(cleanup_id_);
}

void InstallTandem(const std::string& config_path) {
  ParseOutcome p = ParseConfigFile(config_path);
  if (!p.ok()) Fail(p.problems[0].ToString());
  auto l = OpenConnector(p.config.legacy.resolved, {});
  auto m = OpenConnector(p.config.modern.resolved, {});
  Check(l.status(), "open legacy");
  Check(m.status(), "open modern");
  auto expr = OpenExpressionDatabase();
  Check(expr.status(), "expression database");
  CompileOutcome compiled = CompileMapping(p.config, **l, **m, **expr);
  if (!compiled.problems.empty()) Fail(compiled.problems[0].ToString());
  auto plan = PlanInstall(*compiled.mapping, **l, **m);
  Check(plan.status(), "plan install");
  Check(ExecutePlan(*plan, **l, **m), "install");
}

// --- processes ---

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one;
}

TandemRun::TandemRun(const std::string& config_path) {
  pid_ = fork();
  if (pid_ < 0) Fail("fork");
  if (pid_ == 0) {
    UnblockStopSignals();
    execl(TANDEM_BINARY, TANDEM_BINARY, "run", "-c", config_path.c_str(), "--log-level", "warn",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  g_tandem_pid = pid_;
}

double TandemRun::CpuSeconds() const { return benchkit::ProcessCpuSeconds(pid_); }

void TandemRun::CheckAlive() {
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = 0;
    g_tandem_pid = 0;
    Fail(fmt::format("`tandem run` exited early ({})",
                     WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : "killed by a signal"));
  }
}

struct rusage TandemRun::Stop() {
  struct rusage usage {};
  kill(pid_, SIGTERM);
  int status = 0;
  wait4(pid_, &status, 0, &usage);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fmt::print(stderr, "warning: `tandem run` ended with status {}\n", status);
  pid_ = 0;
  g_tandem_pid = 0;
  return usage;
}

std::map<int, double> TandemBackendCpu(PgConn& admin, const std::vector<std::string>& databases) {
  std::map<int, double> out;
  std::string list;
  for (auto& db : databases) list += (list.empty() ? "" : ",") + db;
  for (auto& r : admin.Query("SELECT pid FROM pg_stat_activity WHERE application_name = 'tandem' AND datname = "
                             "ANY(string_to_array($1, ','))",
                             {list})) {
    int pid = std::stoi(r[0]);
    double s = benchkit::ProcessCpuSeconds(pid);
    if (s >= 0) out[pid] = s;
  }
  return out;
}

double CpuDelta(const std::map<int, double>& before, const std::map<int, double>& after) {
  double sum = 0;
  for (auto& [pid, s] : after) {
    auto b = before.find(pid);
    sum += s - (b == before.end() ? 0.0 : b->second);
  }
  return sum;
}

}  // namespace tandem::pgbench
