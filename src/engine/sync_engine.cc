#include "engine/sync_engine.h"

#include <poll.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "engine/apply/apply_batch.h"
#include "engine/capture_health.h"
#include "engine/engine_lock.h"
#include "engine/ops/operator_requests.h"
#include "engine/positions.h"
#include "engine/source_identity.h"

namespace tandem {

SyncEngine::~SyncEngine() = default;

Result<std::unique_ptr<SyncEngine>> SyncEngine::Open(const Config& config) {
  auto engine = std::unique_ptr<SyncEngine>(new SyncEngine());
  TANDEM_RETURN_IF_ERROR(engine->Init(config));
  return engine;
}

Status SyncEngine::Init(const Config& config) {
  config_ = config;
  TANDEM_RETURN_IF_ERROR(OpenDatabases());
  TANDEM_RETURN_IF_ERROR(CheckInstalled());
  TANDEM_RETURN_IF_ERROR(CompileAtStart());
  records_ = std::make_unique<RecordStore>(*legacy_, *modern_);
  TANDEM_RETURN_IF_ERROR(records_->Init());
  for (Side source : {Side::kLegacy, Side::kModern}) TANDEM_RETURN_IF_ERROR(OpenDirection(source));
  return Status::Ok();
}

Status SyncEngine::OpenDatabases() {
  ConnectorOptions opts;
  opts.busy_timeout_ms = config_.sync.busy_timeout_ms;
  TANDEM_ASSIGN_OR_RETURN(legacy_, OpenConnector(config_.legacy.resolved, opts));
  TANDEM_ASSIGN_OR_RETURN(modern_, OpenConnector(config_.modern.resolved, opts));
  // One engine per pair of databases: versions and positions assume a single
  // writer of Tandem state. Keyed by the legacy database's identity (engine_lock.h).
  auto lock = EngineLock::Acquire(config_.legacy.resolved, *legacy_);
  if (!lock.ok() && lock.status().code() == StatusCode::kBusy)
    return Status::Busy(lock.status().message() + "; stop it first, or use 'tandem retry' which asks the running process");
  TANDEM_RETURN_IF_ERROR(lock.status());
  engine_lock_ = std::move(lock).value();
  // The modern database's too: it may be another pair's (one modern database
  // given two legacy ones, or a config with the sides swapped).
  auto modern_lock = EngineLock::Acquire(config_.modern.resolved, *modern_);
  if (!modern_lock.ok() && modern_lock.status().code() == StatusCode::kBusy)
    return Status::Busy(modern_lock.status().message() + " (the modern database is synced by another engine, maybe "
                        "of another pair); stop it first");
  TANDEM_RETURN_IF_ERROR(modern_lock.status());
  modern_lock_ = std::move(modern_lock).value();
  return Status::Ok();
}

Status SyncEngine::CheckInstalled() {
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(bool installed, db(s).IsInstalled());
    if (!installed)
      return Status::InvalidArgument(fmt::format("capture is not installed on the {} database ({}): run 'tandem "
                                                 "install -c {}' first",
                                                 SideName(s), db(s).Describe(), config_.path));
    TANDEM_ASSIGN_OR_RETURN(auto upgrade, db(s).UpgradeControlTablesSql());
    if (!upgrade.empty())
      return Status::InvalidArgument(fmt::format("Tandem's control tables on the {} database ({}) were made by an older "
                                                 "version: run 'tandem install -c {}' to upgrade them (key maps and "
                                                 "pending changes are kept)",
                                                 SideName(s), db(s).Describe(), config_.path));
  }
  return Status::Ok();
}

Status SyncEngine::CompileAtStart() {
  TANDEM_ASSIGN_OR_RETURN(expr_db_, OpenExpressionDatabase());
  // An entity whose tables do not match the mapping (changed while no
  // engine ran) starts paused; the others sync.
  CompileOutcome compiled = CompileMapping(config_, *legacy_, *modern_, *expr_db_, nullptr, /*pause_failing=*/true);
  if (!compiled.mapping) {
    std::string msg = "the configuration has problems:";
    for (auto& p : compiled.problems) msg += "\n  " + p.ToString();
    // A database that could not be read for a passing reason: retry, not a config error.
    return compiled.retryable ? Status::Unavailable(msg) : Status::InvalidArgument(msg);
  }
  mapping_ = std::move(compiled.mapping);
  TANDEM_RETURN_IF_ERROR(PauseForBrokenCapture());
  for (const EntityMapping& em : mapping_->entities)
    if (!em.paused.empty())
      spdlog::error("entity '{}' is paused: {}; its changes are put aside (waiting) until it is fixed; the other "
                    "entities sync",
                    em.name, em.paused);
  for (const EntityConfig& e : config_.entities) {
    schema_tables_[0].push_back(e.legacy.table);
    schema_tables_[1].push_back(e.modern.table);
  }
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const int i = s == Side::kLegacy ? 0 : 1;
    TANDEM_ASSIGN_OR_RETURN(schema_version_[i], db(s).SchemaVersion(schema_tables_[i]));
    TANDEM_ASSIGN_OR_RETURN(schema_signature_[i], SchemaSignature(s));
  }
  return Status::Ok();
}

Status SyncEngine::OpenDirection(Side source) {
  auto dir = std::make_unique<Direction>();
  dir->source = source;
  dir->target = Other(source);
  dir->src = &db(source);
  dir->dst = &db(dir->target);
  dir->name = DirectionName(source);
  dir->target_single_writer = dir->dst->Traits().single_writer;
  dir->max_txn_ms = config_.sync.max_txn_ms >= 0 ? config_.sync.max_txn_ms : dir->target_single_writer ? 500 : 0;
  dir->max_txn_changes = config_.sync.max_txn_changes;
  TANDEM_RETURN_IF_ERROR(BindMapping(*dir));
  TANDEM_ASSIGN_OR_RETURN(auto pos, ReadPosition(*dir->dst, dir->name));
  if (pos) {
    dir->position = pos->seq;
    dir->applied_total = pos->applied_total;
  }
  TANDEM_RETURN_IF_ERROR(dir->src->ResumeAt(dir->position, pos ? pos->cursor : ""));
  TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(*dir));
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(dir->dst->Query("SELECT entity, source_key, kind FROM _tandem_parked WHERE direction = ?",
                                         {Value::Text(dir->name)}, &rows));
  for (auto& r : rows) {
    if (r[2].as_bytes() == "waiting") dir->has_waiting = true;
    dir->parked.insert(ParkedKey(r[0].as_bytes(), r[1].as_bytes()));
  }
  spdlog::info("{}: resuming after change {}", dir->name, dir->position);
  boundaries_[source == Side::kLegacy ? 0 : 1] = std::make_unique<CommitBoundaries>(
      config_.system(source).resolved,
      config_.sync.sample_commit_boundaries && db(source).SupportsBoundarySampling(), config_.sync.busy_timeout_ms,
      config_.sync.poll_interval_ms, config_.sync.batch_size);
  directions_.push_back(std::move(dir));
  return Status::Ok();
}

// --- the parts' context ---

ApplyContext SyncEngine::ApplyContextOf() {
  return ApplyContext{.mapping = *mapping_,
                      .records = *records_,
                      .legacy = *legacy_,
                      .modern = *modern_,
                      .primary = config_.primary,
                      .detect_conflicts = config_.sync.detect_conflicts,
                      .stats = stats_,
                      .keep_applied = static_cast<bool>(applied_callback_),
                      .request_operator_check = [this] { next_operator_check_ms_ = 0; }};
}

OperatorRequests SyncEngine::Ops() { return OperatorRequests(ApplyContextOf(), directions_); }

Status SyncEngine::RetryParked(Side stored_in, int64_t id) { return Ops().RetryParked(stored_in, id); }

Result<int> SyncEngine::RetryAllParked() { return Ops().RetryAllParked(); }

Result<int> SyncEngine::ProcessResolutions() { return Ops().ProcessResolutions(); }

Status SyncEngine::ReloadParkedIfChanged(Direction& dir, bool force) {
  // An operator may retry or discard put-aside changes from another process.
  if (!force && !operator_checks_due_) return Status::Ok();
  TANDEM_ASSIGN_OR_RETURN(auto n, dir.dst->QueryOne("SELECT count(*), coalesce(sum(CASE WHEN kind = 'waiting' OR "
                                                    "retry_requested <> 0 THEN 1 ELSE 0 END), 0), coalesce(sum(CASE "
                                                    "WHEN retry_requested <> 0 THEN 1 ELSE 0 END), 0) FROM "
                                                    "_tandem_parked WHERE direction = ?",
                                                    {Value::Text(dir.name)}));
  if (!force && static_cast<size_t>((*n)[0].as_integer()) == dir.parked.size() && (*n)[2].as_integer() == 0)
    return Status::Ok();
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(
      dir.dst->Query("SELECT entity, source_key FROM _tandem_parked WHERE direction = ?", {Value::Text(dir.name)}, &rows));
  dir.parked.clear();
  for (auto& r : rows) dir.parked.insert(ParkedKey(r[0].as_bytes(), r[1].as_bytes()));
  dir.has_waiting = (*n)[1].as_integer() > 0;
  return Status::Ok();
}

// --- the loop ---

Result<int64_t> SyncEngine::DrainOnce() {
  int64_t total = 0;
  // Conflicts an operator settled (`tandem conflicts resolve`), before the
  // changes they held are retried.
  const int64_t now = Clock::Default()->NowMillis();
  operator_checks_due_ = now >= next_operator_check_ms_;
  operator_check_owed_ = !operator_checks_due_;
  int resolved = 0;
  if (operator_checks_due_) {
    next_operator_check_ms_ = now + kOperatorCheckIntervalMs;
    TANDEM_ASSIGN_OR_RETURN(resolved, ProcessResolutions());
  }
  if (resolved > 0) {
    for (auto& dir : directions_) TANDEM_RETURN_IF_ERROR(ReloadParkedIfChanged(*dir, /*force=*/true));
  }
  TANDEM_RETURN_IF_ERROR(WatchSourceIdentity());
  TANDEM_RETURN_IF_ERROR(WatchSchema(now).status());
  for (auto& dir : directions_) {
    bool enabled = false;
    for (auto& em : mapping_->entities) enabled |= em.from(dir->source).enabled || em.from(dir->source).read_only;
    if (!enabled) continue;
    auto n = Drain(*dir);
    if (!n.ok()) {
      // A table that changed under the mapping since this pass looked shows
      // as a failure first: look now, and have the pass made again.
      schema_check_owed_ = true;
      auto drifted = WatchSchema(Clock::Default()->NowMillis());
      if (drifted.ok() && *drifted)
        return Status::Unavailable(fmt::format("{}: a mapped table's definition changed during the pass ({}); the "
                                               "mapping was checked again",
                                               dir->name, n.status().message()));
      return n.status().WithContext(fmt::format("{} (from the {} database {} to the {} database {})", dir->name,
                                                SideName(dir->source), dir->src->Describe(), SideName(dir->target),
                                                dir->dst->Describe()));
    }
    total += *n;
  }
  return total;
}

Status SyncEngine::RunUntilIdle() {
  next_operator_check_ms_ = 0;  // what operators asked for so far is seen
  schema_check_owed_ = true;     // and the tables as they are now
  // A passing problem (a deadlock, a position that moved, a busy database)
  // is retried a few times before it is reported.
  int retries = 0;
  while (true) {
    auto n = DrainOnce();
    if (!n.ok()) {
      if (!n.status().retryable() || ++retries > 5) return n.status();
      spdlog::info("{}; retrying", n.status().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(50 << retries));
      continue;
    }
    if (*n == 0) return StoppedStatus();
  }
}

void SyncEngine::IdleWait(std::chrono::milliseconds poll_interval, int idle_waits) {
  // Where both databases tell of commits through a descriptor (SQLite), the
  // engine sleeps in poll() until one does: an idle engine costs nothing and
  // wakes at once. Otherwise it naps `poll_interval`, longer after a quiet spell (as
  // the PostgreSQL probes thin out, connectors/postgres: every 5 ms after
  // ~0.1 s, 20 ms after ~2 s, 100 ms after ~12 s), so an idle engine does not
  // wake 1,000 times a second for probes that are not due.
  std::chrono::milliseconds nap = poll_interval;
  if (idle_waits > 1000) nap = std::max(nap, std::chrono::milliseconds(100));
  else if (idle_waits > 500) nap = std::max(nap, std::chrono::milliseconds(20));
  else if (idle_waits > 100) nap = std::max(nap, std::chrono::milliseconds(5));
  const int fds[2] = {legacy_->CommitNotifyFd(), modern_->CommitNotifyFd()};
  if (fds[0] < 0 || fds[1] < 0) {
    std::this_thread::sleep_for(nap);
    return;
  }
  // Bounded, for what needs no commit: stop requests, replaced files, the
  // operator checks a pass skipped.
  struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
  (void)::poll(p, 2, static_cast<int>(kReplacedCheckIntervalMs));
}

Status SyncEngine::Run(const std::atomic<bool>& stop) {
  int backoff_ms = 0;
  const auto poll = std::chrono::milliseconds(std::max(0, config_.sync.poll_interval_ms));
  int64_t next_replaced_check_ms = 0;
  while (!stop.load()) {
    auto n = DrainOnce();
    if (!n.ok()) {
      if (!n.status().retryable()) return n.status();
      backoff_ms = std::min(backoff_ms ? backoff_ms * 2 : 50, 5000);
      spdlog::warn("{}; retrying in {} ms", n.status().message(), backoff_ms);
      for (int waited = 0; waited < backoff_ms && !stop.load(); waited += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (backoff_ms) spdlog::info("recovered; syncing again");
    backoff_ms = 0;
    if (*n > 0) continue;  // more may have arrived while applying
    // Idle: wait for a commit on either side, or until checks a pass
    // skipped are due.
    for (int idle_waits = 0; !stop.load(); ++idle_waits) {
      if (operator_check_owed_ && Clock::Default()->NowMillis() >= next_operator_check_ms_) break;
      auto a = legacy_->WaitForCommit(std::chrono::milliseconds(0));
      auto b = modern_->WaitForCommit(std::chrono::milliseconds(0));
      if (!a.ok() || !b.ok() || *a || *b) break;
      // A database file replaced while idle is noticed without a commit.
      if (const int64_t t = Clock::Default()->NowMillis(); t >= next_replaced_check_ms) {
        next_replaced_check_ms = t + kReplacedCheckIntervalMs;
        if (!legacy_->Replaced().empty() || !modern_->Replaced().empty()) break;
      }
      IdleWait(poll, idle_waits);
    }
  }
  return StoppedStatus();
}

// --- schema changes ---

Result<std::string> SyncEngine::SchemaSignature(Side s) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db(s).SchemaVersionLater(schema_tables_[s == Side::kLegacy ? 0 : 1], {}, &rows));
  TANDEM_RETURN_IF_ERROR(db(s).Collect());
  return rows.empty() ? std::string() : rows[0][0].ToCodeText();
}

Result<bool> SyncEngine::WatchSchema(int64_t now_ms) {
  bool changed = false;
  std::string seen[2];
  for (Side s : {Side::kLegacy, Side::kModern}) {
    const int i = s == Side::kLegacy ? 0 : 1;
    seen[i] = schema_version_[i];
    // SQLite's version is a read of the file header; a server's is a
    // catalog query, made at most every kSchemaCheckIntervalMs.
    const bool server = config_.system(s).resolved.rfind("sqlite:", 0) != 0;
    if (server && now_ms < schema_checked_ms_[i] + kSchemaCheckIntervalMs && !schema_check_owed_) continue;
    schema_checked_ms_[i] = now_ms;
    TANDEM_ASSIGN_OR_RETURN(seen[i], db(s).SchemaVersion(schema_tables_[i]));
    changed |= seen[i] != schema_version_[i];
  }
  schema_check_owed_ = false;
  if (!changed) return false;
  // A first compile without the running mapping: a database that cannot be
  // read now (a lost connection) must not pause anything.
  CompileOutcome fresh = CompileMapping(config_, *legacy_, *modern_, *expr_db_);
  if (!fresh.mapping && fresh.retryable)
    return Status::Unavailable("a table definition changed and the databases cannot be read to check the mapping "
                               "again: " + (fresh.problems.empty() ? std::string() : fresh.problems[0].ToString()));
  std::set<std::string> was_paused;
  for (const EntityMapping& em : mapping_->entities)
    if (!em.paused.empty()) was_paused.insert(em.name);
  CompileOutcome next = fresh.mapping ? std::move(fresh)
                                      : CompileMapping(config_, *legacy_, *modern_, *expr_db_, mapping_.get());
  if (!next.mapping) {
    // Not an entity's problem (cannot happen with the config unchanged): stop, loudly.
    std::string msg = "the mapping no longer holds after a table definition changed:";
    for (auto& p : next.problems) msg += "\n  " + p.ToString();
    return Status::InvalidArgument(msg);
  }
  schema_version_[0] = seen[0];
  schema_version_[1] = seen[1];
  // The signatures apply transactions compare with, as the mapping was compiled.
  TANDEM_ASSIGN_OR_RETURN(schema_signature_[0], SchemaSignature(Side::kLegacy));
  TANDEM_ASSIGN_OR_RETURN(schema_signature_[1], SchemaSignature(Side::kModern));
  mapping_ = std::move(next.mapping);
  TANDEM_RETURN_IF_ERROR(PauseForBrokenCapture());
  bool resumed = false;
  for (const EntityMapping& em : mapping_->entities) {
    if (!em.paused.empty()) {
      spdlog::error("entity '{}' is paused after a schema change: {}; its changes are put aside (waiting) until it "
                    "is fixed",
                    em.name, em.paused);
    } else if (was_paused.count(em.name)) {
      spdlog::info("entity '{}' resumes: its mapping holds again; its changes put aside meanwhile are applied",
                   em.name);
      resumed = true;
    }
  }
  if (was_paused.empty() && std::none_of(mapping_->entities.begin(), mapping_->entities.end(),
                                         [](const EntityMapping& em) { return !em.paused.empty(); }))
    spdlog::info("a table definition changed; the mapping was checked again and still holds");
  for (auto& dir : directions_) {
    TANDEM_RETURN_IF_ERROR(BindMapping(*dir));
    if (resumed) dir->has_waiting = true;
  }
  return true;
}

Status SyncEngine::PauseForBrokenCapture() {
  const int64_t now = Clock::Default()->NowMillis();
  for (Side s : {Side::kLegacy, Side::kModern}) {
    TANDEM_ASSIGN_OR_RETURN(auto issues, CheckCapture(*mapping_, s, db(s)));
    for (const CaptureIssue& issue : issues) {
      const std::string what = fmt::format("capture on the {} table '{}' is broken: {}", SideName(s), issue.table,
                                           issue.problem);
      TANDEM_ASSIGN_OR_RETURN(bool recorded, RecordCaptureGap(db(s), issue.table, issue.problem, now));
      if (recorded) spdlog::error("{}; {}", what, CaptureGapAdvice(config_.path));
      for (EntityMapping& em : mapping_->entities) {
        const EntityConfig* e = config_.FindEntity(em.name);
        if (em.paused.empty() && e && strcasecmp(e->side(s).table.c_str(), issue.table.c_str()) == 0)
          em.paused = fmt::format("{}; run 'tandem install -c {}' to repair it (a gap to reconcile is recorded)", what,
                                  config_.path);
      }
    }
  }
  return Status::Ok();
}

// Binds `dir` to mapping_: captured table ids to their specs, and the SQL
// of each entity (Init, and again after the mapping is compiled anew).
Status SyncEngine::BindMapping(Direction& dir) {
  const Side source = dir.source;
  // Table ids as installed.
  std::vector<Row> rows;
  dir.tables.clear();
  dir.sql.clear();
  dir.written_tables.clear();
  for (const EntityMapping& em : mapping_->entities) {
    const DirectionMapping& dm = em.from(dir.source);
    if (!em.paused.empty() || !dm.enabled) continue;
    if (std::find(dir.written_tables.begin(), dir.written_tables.end(), dm.target_table) == dir.written_tables.end())
      dir.written_tables.push_back(dm.target_table);
  }
  TANDEM_RETURN_IF_ERROR(dir.src->Query("SELECT table_id, table_name FROM _tandem_capture", {}, &rows));
  for (const CapturedTableSpec& spec : mapping_->captured_on(source)) {
    bool found = false;
    for (auto& r : rows) {
      if (strcasecmp(r[1].as_bytes().c_str(), spec.table.c_str()) == 0) {
        dir.tables[static_cast<int>(r[0].as_integer())] = &spec;
        found = true;
      }
    }
    if (!found)
      return Status::InvalidArgument(fmt::format("table '{}' on the {} database is not captured yet: run 'tandem "
                                                 "install -c {}' after changing the config",
                                                 spec.table, SideName(source), config_.path));
  }
  for (const EntityMapping& em : mapping_->entities)
    dir.sql.push_back(BuildDirectionSql(*dir.src, *dir.dst, em.from(source)));
  return Status::Ok();
}

// --- source identity (engine/source_identity.h) ---

Status SyncEngine::CheckSourceIdentity(Direction& dir) {
  TANDEM_ASSIGN_OR_RETURN(dir.source_id, ReadDatabaseId(*dir.src));
  TANDEM_ASSIGN_OR_RETURN(StoredPosition stored, LoadStoredPosition(*dir.dst, dir.name));
  // The mark the next comparison is made against: the stored one, as long
  // as the position in memory is the stored one.
  if (stored.seq == dir.position) dir.source_mark = stored.source_mark;
  TANDEM_ASSIGN_OR_RETURN(SourceFinding finding, CheckSource(*dir.src, dir.source, dir.source_id, stored));
  if (finding.ok()) return Status::Ok();
  StopDirection(dir, finding);
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  return Status::Ok();
}

void SyncEngine::StopDirection(Direction& dir, const SourceFinding& finding) {
  std::string message = StoppedMessage(config_, dir.source, *dir.src, finding);
  if (dir.stopped == message) return;
  spdlog::error("{}", message);
  dir.stopped = message;
  if (finding.stops_both()) {
    pair_stopped_ = message;
    for (auto& d : directions_)
      if (d.get() != &dir) d->stopped = message;
  }
}

Status SyncEngine::WatchSourceIdentity() {
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  bool recheck = false;
  for (Side s : {Side::kLegacy, Side::kModern}) {
    std::string replaced = db(s).Replaced();
    if (!replaced.empty()) {
      SourceFinding finding;
      finding.kind = SourceFinding::Kind::kReplaced;
      finding.culprit = s;
      finding.what = replaced;
      for (auto& dir : directions_)
        if (dir->source == s) StopDirection(*dir, finding);
      return Status::InvalidArgument(pair_stopped_);
    }
    recheck |= db(s).Reconnected();
  }
  // A session that reconnected may reach another server or database now.
  if (recheck)
    for (auto& dir : directions_) TANDEM_RETURN_IF_ERROR(CheckSourceIdentity(*dir));
  return Status::Ok();
}

Status SyncEngine::StoppedStatus() const {
  if (!pair_stopped_.empty()) return Status::InvalidArgument(pair_stopped_);
  std::string all;
  for (auto& dir : directions_)
    if (!dir->stopped.empty()) all += (all.empty() ? "" : "\n") + dir->stopped;
  return all.empty() ? Status::Ok() : Status::InvalidArgument(all);
}

}  // namespace tandem
