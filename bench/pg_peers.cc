// The peers Tandem is measured against (see pg_kinds.h), each set up from
// scratch for one measurement on the same workload and timing as Tandem's:
//
//   native logical replication: a publication of customers on the source
//     database, a pgoutput slot made beforehand (CREATE SUBSCRIPTION into a
//     database of the same cluster would wait forever for its own slot), a
//     subscription in the target without the initial copy;
//   Bucardo 5 (Debian package bucardo): its control database `bucardo`
//     installed on the same server (`bucardo install`), both databases added,
//     a two-way (source/source) sync of customers, the daemon started with
//     its pid files and logs in a temporary folder; afterwards the daemon is
//     stopped (`bucardo stop`, then SIGKILL by its pid files for anything
//     left) and its control database dropped.
//
// Both sides hold the pre-load before the peer starts (written directly to
// both databases: the rows are "already synced" for updates and deletes).
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "pg_kinds.h"

namespace tandem::pgbench {

using benchkit::From;
using benchkit::Workload;

namespace {

std::string What(const char* peer, const Workload& w, From from) {
  return fmt::format("{} {} {}", peer, benchkit::DirectionName(from), benchkit::KindName(w.kind));
}

// --- logical replication ---

// Fails the benchmark when the subscription reported apply errors (PostgreSQL 15+).
void SubscriptionAlive(PgConn& target, const std::string& what) {
  std::string errors = target.Scalar("SELECT coalesce(sum(apply_error_count), 0) FROM pg_stat_subscription_stats "
                                     "WHERE subname = 'tandem_bench'");
  if (!errors.empty() && errors != "0")
    Fail(fmt::format("{}: the subscription reported {} apply errors (see the server log)", what, errors));
}

// Drops the subscription in the target, then its slot on the source.
void DropLogical(PgConn& source, PgConn& target, const std::string& slot) {
  target.Exec("ALTER SUBSCRIPTION tandem_bench DISABLE");
  target.Exec("ALTER SUBSCRIPTION tandem_bench SET (slot_name = NONE)");
  target.Exec("DROP SUBSCRIPTION tandem_bench");
  for (int i = 0; i < 100; ++i) {  // the walsender lets go of the slot when its subscriber is gone
    if (source.Scalar("SELECT active FROM pg_replication_slots WHERE slot_name = $1", {slot}) != "t") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  source.Exec(fmt::format("SELECT pg_drop_replication_slot('{}')", slot));
}

}  // namespace

Timing MeasureLogical(const Workload& w, From from) {
  const std::string what = What("logical replication", w, from), name = "lr_" + MeasurementName(from, w.kind);
  KindsPair pair(name);
  PgConn source(pair.source(from).url()), target(pair.target(from).url());
  WritePreload(source, w.preload);
  WritePreload(target, w.preload);
  const std::string slot = fmt::format("tandem_bench_{}_{}", getpid(), name);
  source.Exec("CREATE PUBLICATION tandem_bench FOR TABLE customers");
  source.Exec(fmt::format("SELECT pg_create_logical_replication_slot('{}', 'pgoutput')", slot));
  target.Exec(fmt::format("CREATE SUBSCRIPTION tandem_bench CONNECTION '{}' PUBLICATION tandem_bench WITH "
                          "(create_slot = false, slot_name = '{}', copy_data = false)",
                          pair.source(from).url(), slot));
  PgConn watch(pair.target(from).url());
  auto alive = [&] { SubscriptionAlive(watch, what); };
  if (!WarmUp(source, pair.target(from).url(), alive, 60)) Fail(what + ": the warm-up change did not arrive in 60 s");
  Timing t = TimeWorkload(source, pair.target(from).url(), w, alive, what);
  DropLogical(source, target, slot);
  return t;
}

// --- Bucardo ---

namespace {

// The benchmark's server, for Bucardo's settings (it takes no URL).
struct Server {
  std::string host = "localhost", port = "5432", user, password;
};

Server ParseServer() {
  Server s;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(g_base_url.c_str(), &err);
  if (opts == nullptr) Fail(fmt::format("cannot parse TANDEM_BENCH_PG_URL: {}", err ? err : "?"));
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string k = o->keyword;
    if (k == "host") s.host = o->val;
    else if (k == "port") s.port = o->val;
    else if (k == "user") s.user = o->val;
    else if (k == "password") s.password = o->val;
  }
  PQconninfoFree(opts);
  if (s.user.empty() && getenv("USER")) s.user = getenv("USER");
  return s;
}

std::string FindOnPath(const std::string& program) {
  const char* path = getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string LastLines(const std::string& path, int n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0; i < lines.size(); ++i)
    out += "    " + lines[i] + "\n";
  return out;
}

// The pids in Bucardo's pid files that still name a Bucardo process.
std::vector<pid_t> BucardoPids(const std::string& piddir) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto& f : std::filesystem::directory_iterator(piddir, ec)) {
    if (f.path().extension() != ".pid") continue;
    pid_t pid = 0;
    std::ifstream(f.path()) >> pid;
    std::ifstream cmd(fmt::format("/proc/{}/cmdline", pid));
    std::string cmdline((std::istreambuf_iterator<char>(cmd)), {});
    if (pid > 0 && cmdline.rfind("Bucardo", 0) == 0) out.push_back(pid);
  }
  return out;
}

// Kills what the pid files name (parents first, so none respawns a child), twice.
void KillBucardo(const std::string& piddir) {
  for (int round = 0; round < 2; ++round) {
    for (pid_t pid : BucardoPids(piddir)) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

void DropBucardoDatabase() {
  PGconn* admin = PQconnectdb(DatabaseUrl("postgres").c_str());
  PQsetNoticeProcessor(admin, [](void*, const char*) {}, nullptr);
  if (PQstatus(admin) == CONNECTION_OK) PQclear(PQexec(admin, "DROP DATABASE IF EXISTS bucardo WITH (FORCE)"));
  PQfinish(admin);
}

// Bucardo's control database and daemon for one two-way sync of customers.
class BucardoSync {
 public:
  BucardoSync(const std::string& db_a, const std::string& db_b, std::string* skipped);
  ~BucardoSync() { Stop(); }
  BucardoSync(const BucardoSync&) = delete;
  BucardoSync& operator=(const BucardoSync&) = delete;

  bool ok() const { return started_; }
  // Fails the benchmark when the daemon is gone.
  void CheckAlive(const std::string& what);
  std::string LogTail() const { return LastLines(dir_ + "/log/log.bucardo", 15); }

 private:
  bool Setup(const std::string& db_a, const std::string& db_b, std::string* skipped);
  bool PrepareServer(std::string* skipped);
  // `bucardo --bucardorc RC ARGS...`; false with `why` (its output) when it failed.
  bool Run(const std::vector<std::string>& args, std::string* why);
  void Stop();

  Server server_ = ParseServer();
  std::string bucardo_ = FindOnPath("bucardo");
  TempDir dir_holder_{"tandem-bench-bucardo-"};  // rc file, pid files, logs
  std::string dir_, rc_;
  int cleanup_id_ = 0;
  bool installed_ = false, started_ = false;
};

BucardoSync::BucardoSync(const std::string& db_a, const std::string& db_b, std::string* skipped) {
  if (bucardo_.empty()) {
    *skipped = "the bucardo program is not installed (Debian package bucardo; scripts/bench.sh installs it when run "
               "as root)";
    return;
  }
  dir_ = dir_holder_.path();
  std::filesystem::create_directories(dir_ + "/run");
  std::filesystem::create_directories(dir_ + "/log");
  rc_ = dir_ + "/bucardorc";
  std::ofstream(rc_) << fmt::format(
      "dbhost = {}\ndbport = {}\ndbname = bucardo\ndbuser = bucardo\ndbpass = tandem-bench\npiddir = {}/run\n"
      "logdest = {}/log\n",
      server_.host, server_.port, dir_, dir_);
  const std::string piddir = dir_ + "/run";
  cleanup_id_ = AddCleanup([piddir] {
    KillBucardo(piddir);
    DropBucardoDatabase();
  });
  started_ = Setup(db_a, db_b, skipped);
}

// Bucardo's role (a superuser) and no foreign `bucardo` database in the way.
bool BucardoSync::PrepareServer(std::string* skipped) {
  PgConn admin(DatabaseUrl("postgres"));
  const std::string comment = admin.Scalar(
      "SELECT coalesce(shobj_description(oid, 'pg_database'), '(none)') FROM pg_database WHERE datname = 'bucardo'");
  if (!comment.empty() && comment != "tandem-bench") {
    *skipped = "the server already has a database named bucardo that this benchmark did not make (its comment is "
               "not 'tandem-bench'); Bucardo's install needs that name, and the benchmark does not drop it";
    return false;
  }
  DropBucardoDatabase();
  admin.Exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bucardo') THEN CREATE ROLE bucardo "
             "LOGIN SUPERUSER PASSWORD 'tandem-bench'; END IF; END $$");
  return true;
}

bool BucardoSync::Setup(const std::string& db_a, const std::string& db_b, std::string* skipped) {
  if (!PrepareServer(skipped)) return false;
  std::string why;
  auto step = [&](const std::vector<std::string>& args, const char* what) {
    if (Run(args, &why)) return true;
    *skipped = fmt::format("`bucardo {}` failed ({}):\n{}", args[0], what, why);
    return false;
  };
  // `install` connects as the benchmark's superuser (psql) to create the bucardo database.
  if (!step({"install", "--batch", "--dbuser", server_.user, "--dbname", "postgres"}, "installing its database"))
    return false;
  installed_ = true;
  PgConn(DatabaseUrl("postgres")).Exec("COMMENT ON DATABASE bucardo IS 'tandem-bench'");
  const std::string log = dir_ + "/log/";
  return step({"set", "log_conflict_file=" + log + "conflict.log", "reason_file=" + log + "restart.reason",
               "warning_file=" + log + "warning.log"},
              "settings") &&
         step({"add", "db", "bench_a", "dbname=" + db_a, "host=" + server_.host, "port=" + server_.port,
               "user=bucardo", "pass=tandem-bench"},
              "adding the first database") &&
         step({"add", "db", "bench_b", "dbname=" + db_b, "host=" + server_.host, "port=" + server_.port,
               "user=bucardo", "pass=tandem-bench"},
              "adding the second database") &&
         step({"add", "table", "public.customers", "db=bench_a", "relgroup=bench"}, "adding the table") &&
         step({"add", "sync", "bench", "relgroup=bench", "dbs=bench_a:source,bench_b:source"}, "adding the sync") &&
         step({"start"}, "starting the daemon");
}

bool BucardoSync::Run(const std::vector<std::string>& args, std::string* why) {
  const std::string out = dir_ + "/last-command.txt";
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    UnblockStopSignals();
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("HOME", dir_.c_str(), 1);  // no ~/.bucardorc, no ~/.pgpass of the user's
    if (!server_.password.empty()) setenv("PGPASSWORD", server_.password.c_str(), 1);
    if (chdir(dir_.c_str()) != 0) _exit(126);
    std::vector<std::string> all = {bucardo_, "--bucardorc", rc_};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bucardo_.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::string text = LastLines(out, 20);
  std::ofstream(dir_ + "/commands.log", std::ios::app) << "$ bucardo " << args[0] << "\n" << text;
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && text.find("INSTALLATION FAILED") == std::string::npos;
  if (!ok) *why = text.empty() ? fmt::format("status {}", status) : text;
  return ok;
}

void BucardoSync::CheckAlive(const std::string& what) {
  if (BucardoPids(dir_ + "/run").empty())
    Fail(fmt::format("{}: the Bucardo daemon is gone; the end of its log:\n{}", what, LogTail()));
}

void BucardoSync::Stop() {
  if (dir_.empty()) return;
  if (started_) {
    std::string why;
    if (!Run({"stop"}, &why)) fmt::print(stderr, "warning: `bucardo stop` failed:\n{}", why);
    for (int i = 0; i < 100 && !BucardoPids(dir_ + "/run").empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  KillBucardo(dir_ + "/run");
  if (installed_) DropBucardoDatabase();
  RemoveCleanup(cleanup_id_);
  dir_.clear();
}

}  // namespace

Timing MeasureBucardo(const Workload& w, From from, std::string* skipped) {
  const std::string what = What("Bucardo", w, from);
  KindsPair pair("b_" + MeasurementName(from, w.kind));
  {
    PgConn source(pair.source(from).url()), target(pair.target(from).url());
    WritePreload(source, w.preload);
    WritePreload(target, w.preload);
  }
  BucardoSync bucardo(pair.legacy.name(), pair.modern.name(), skipped);
  if (!bucardo.ok()) return {};
  PgConn source(pair.source(from).url());
  auto alive = [&] { bucardo.CheckAlive(what); };
  if (!WarmUp(source, pair.target(from).url(), alive, 120)) {
    *skipped = fmt::format("Bucardo started but did not sync a warm-up change in 120 s; the end of its log:\n{}",
                           bucardo.LogTail());
    return {};
  }
  return TimeWorkload(source, pair.target(from).url(), w, alive, what);
}

}  // namespace tandem::pgbench
