#include "connectors/postgres/pg_connector.h"

#include <cinttypes>
#include <cstdio>
#include <map>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

namespace tandem {

namespace {
// Key types whose text form no session setting changes (a domain's is not
// known here, so it counts as changing).
bool PrintsAlike(const std::string& declared_type) {
  static const char* const kTypes[] = {"smallint", "integer", "bigint", "text", "uuid", "boolean", "numeric",
                                       "character varying", "character"};
  for (const char* t : kTypes)
    if (declared_type == t || (declared_type.starts_with(t) && declared_type[strlen(t)] == '(')) return true;
  return false;
}

// A key column's value as logged: its type's text output, NULL as NULL. A
// cast to text is that output, except for char(n), whose padding it strips.
std::string KeyText(const std::string& column, const std::string& declared_type) {
  if (PrintsAlike(declared_type) && !declared_type.starts_with("character("))
    return column + "::text";
  return "CASE WHEN " + column + " IS NULL THEN NULL ELSE format('%s', " + column + ") END";
}

// A SQL string literal.
std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string FunctionName(const CaptureTable& t, const char* kind) {
  return fmt::format("tandem._tandem_{}_{}", kind, t.id);
}
std::string TriggerName(const CaptureTable& t, const char* kind) { return fmt::format("_tandem_{}_{}", t.id, kind); }

constexpr const char* kLogColumns = "id, table_id, op, k1, k2, k3, k4, o1, o2, o3, o4, at_ms";
// How many log rows the statement's snapshot sees that snapshot `?` did not,
// and the largest of their ids: the columns after SELECT ... that make a
// window ending at the statement's snapshot.
constexpr const char* kNewSinceSnapshot = "count(*), coalesce(max(id), 0) FROM tandem._tandem_log WHERE NOT "
                                          "pg_visible_in_snapshot(tx, ?::pg_snapshot)";

}  // namespace

Result<std::unique_ptr<PgConnector>> PgConnector::Open(const std::string& url, const ConnectorOptions& options) {
  TANDEM_ASSIGN_OR_RETURN(auto session, PgSession::Connect(url, options.busy_timeout_ms));
  auto conn = std::unique_ptr<PgConnector>(new PgConnector(std::move(session), url, options.busy_timeout_ms));
  return conn;
}

std::string PgConnector::QuoteIdent(const std::string& name) const {
  // "schema.table" names a table in a schema.
  std::string out;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    out += (start ? "." : "") + std::string("\"");
    for (char c : part) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    out += "\"";
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

Result<std::optional<TableInfo>> PgConnector::DescribeTable(const std::string& table) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(session_->Run(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef OR a.attidentity <> '', "
      "coalesce(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0), a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, "
      "d.adrelid), '') LIKE 'nextval(%', "
      // The type values are read as: a domain's base type, an enum's labels.
      "CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(a.atttypid, "
      "a.atttypmod) END, (SELECT string_agg(e.enumlabel, chr(31) ORDER BY e.enumsortorder) FROM pg_enum e WHERE "
      "e.enumtypid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END), "
      // The name set writes cast to (ColumnType::cast_name); none for a domain over a domain.
      "CASE WHEN t.typtype <> 'd' THEN quote_ident(tn.nspname) || '.' || quote_ident(t.typname) WHEN bt.typtype <> "
      "'d' THEN quote_ident(bn.nspname) || '.' || quote_ident(bt.typname) END "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace "
      "LEFT JOIN pg_type bt ON bt.oid = t.typbasetype LEFT JOIN pg_namespace bn ON bn.oid = bt.typnamespace "
      "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND "
      "i.indisprimary LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = "
      "to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
      {Value::Text(QuoteIdent(table))}, &rows));
  if (rows.empty()) return std::optional<TableInfo>();
  TableInfo info;
  info.name = table;
  std::vector<std::pair<int64_t, size_t>> pk;
  for (auto& r : rows) {
    ColumnInfo c;
    c.name = r[0].as_bytes();
    c.declared_type = r[1].as_bytes();
    std::vector<std::string> labels;
    if (!r[7].is_null()) {
      std::string all = r[7].as_bytes();
      for (size_t at = 0;;) {
        size_t sep = all.find('\x1f', at);
        labels.push_back(all.substr(at, sep == std::string::npos ? std::string::npos : sep - at));
        if (sep == std::string::npos) break;
        at = sep + 1;
      }
    }
    c.type = PostgresColumnType(r[6].as_bytes(), std::move(labels));
    c.type.declared = c.declared_type;
    if (!r[8].is_null()) c.type.cast_name = r[8].as_bytes();
    c.not_null = r[2].as_integer() != 0;
    c.has_default = r[3].as_integer() != 0;
    if (r[4].as_integer() > 0) pk.emplace_back(r[4].as_integer(), info.columns.size());
    info.columns.push_back(std::move(c));
  }
  std::sort(pk.begin(), pk.end());
  for (auto& [n, index] : pk) info.primary_key.push_back(info.columns[index].name);
  if (pk.size() == 1) info.integer_rowid_key = rows[pk[0].second][5].as_integer() != 0;
  return std::optional<TableInfo>(std::move(info));
}

Status PgConnector::Exec(const std::string& sql, const Row& params, int64_t* rows_changed) {
  return session_->Run(sql, params, nullptr, rows_changed);
}

Status PgConnector::ExecLater(const std::string& sql, const Row& params) { return session_->Send(sql, params); }

Status PgConnector::Query(const std::string& sql, const Row& params, std::vector<Row>* out) {
  return session_->Run(sql, params, out);
}

Result<std::optional<Row>> PgConnector::QueryOne(const std::string& sql, const Row& params) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(session_->Run(sql, params, &rows));
  if (rows.empty()) return std::optional<Row>();
  return std::optional<Row>(std::move(rows[0]));
}

Result<Value> PgConnector::InsertReturningKey(const std::string& sql, const Row& params,
                                              const std::string& key_column) {
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(session_->Run(sql + " RETURNING " + QuoteIdent(key_column), params, &rows));
  if (rows.empty() || rows[0].empty()) return Status::Internal("INSERT ... RETURNING returned no key");
  return rows[0][0];
}

std::vector<std::string> PgConnector::UniqueViolationColumns(const Status& failed) const {
  // "duplicate key value violates unique constraint "c" (Key (email, region)=(a@x, eu) already exists.) [SQLSTATE 23505]"
  std::vector<std::string> out;
  const std::string& m = failed.message();
  if (failed.code() != StatusCode::kConstraint || m.find("SQLSTATE 23505") == std::string::npos) return out;
  auto at = m.find("Key (");
  auto end = m.find(")=(", at);
  if (at == std::string::npos || end == std::string::npos) return out;
  std::string list = m.substr(at + 5, end - at - 5);
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(", ", pos);
    std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') item = item.substr(1, item.size() - 2);
    out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 2;
  }
  return out;
}

// --- transactions ---

Status PgConnector::End(const char* sql) {
  // A failure among statements still in the pipeline is the caller's to
  // learn from the call that waited; a ROLLBACK must reach the server anyway.
  Status pending = session_->Collect();
  Status st = session_->Script(sql);
  if (st.ok() && std::string_view(sql) != "ROLLBACK") st = pending;
  session_->set_in_transaction(false);
  return st;
}

// Transactions begin and read transactions end in the pipeline: they cost no
// round trip of their own (they travel with the next statement).
Status PgConnector::BeginRead() {
  TANDEM_RETURN_IF_ERROR(session_->Send("BEGIN ISOLATION LEVEL REPEATABLE READ"));
  session_->set_in_transaction(true);
  in_read_ = true;
  return Status::Ok();
}

Status PgConnector::BeginReadAfter(int64_t position) {
  ReleasePins(position);
  // A pin kept past kPinMaxAge (the engine cannot apply, say) holds back the
  // source's vacuum for nothing: it goes, and a batch only gets longer.
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < pins_.size();) {
    if (now - pins_[i].taken_at < kPinMaxAge) {
      ++i;
      continue;
    }
    EndPin(std::move(pins_[i].session));
    pins_.erase(pins_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (pins_.empty()) return BeginRead();
  // Imported at once: a pin whose session is gone is dropped with the rest,
  // and the read goes on in a snapshot of its own. The snapshot id comes
  // from the server; sent as a script, it leaves no prepared statement behind.
  Status st = session_->Script("BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '" +
                               pins_.front().exported + "'");
  session_->set_in_transaction(true);
  if (st.ok()) {
    in_read_ = true;
    read_pin_ = pins_.front().seq;
    return Status::Ok();
  }
  (void)End("ROLLBACK");
  spdlog::info("{}: a pinned snapshot is gone ({}); reading in a new one", Describe(), st.message());
  ReleasePins(std::numeric_limits<int64_t>::max());
  return BeginRead();
}

void PgConnector::ReleasePins(int64_t seq) {
  size_t n = 0;
  while (n < pins_.size() && pins_[n].seq <= seq) ++n;
  for (size_t i = 0; i < n; ++i) EndPin(std::move(pins_[i].session));
  pins_.erase(pins_.begin(), pins_.begin() + static_cast<std::ptrdiff_t>(n));
}

void PgConnector::EndPin(std::unique_ptr<PgSession> session) {
  session->set_in_transaction(false);
  if (session->Script("COMMIT").ok() && spare_sessions_.size() < kMaxSpareSessions)
    spare_sessions_.push_back(std::move(session));
}

void PgConnector::PinIfBehind(int64_t spacing) {
  if (pins_.size() >= kMaxPins || known_ticks_.empty()) return;
  std::unique_ptr<PgSession> s;
  if (!spare_sessions_.empty()) {
    s = std::move(spare_sessions_.back());
    spare_sessions_.pop_back();
  } else {
    auto opened = PgSession::Connect(url_, lock_timeout_ms_);
    if (!opened.ok()) {
      spdlog::debug("{}: no session to pin a snapshot on: {}", Describe(), opened.status().message());
      return;
    }
    s = std::move(opened).value();
  }
  const auto& [last, last_snap] = *known_ticks_.rbegin();
  // Cheap first: how far the log's newest id moved since the newest tick.
  std::vector<Row> rows;
  Status st = s->Run("SELECT coalesce(max(id), 0) FROM tandem._tandem_log", {}, &rows);
  if (st.ok() && !rows.empty() && rows[0][0].as_integer() - newest_tick_max_id_ < spacing) {
    spare_sessions_.push_back(std::move(s));
    return;
  }
  // The pin: a snapshot that stays open, and the changes it adds after the newest tick.
  rows.clear();
  if (st.ok()) st = s->Send("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  s->set_in_transaction(true);
  if (st.ok())
    st = s->Run(std::string("SELECT pg_current_snapshot()::text, pg_export_snapshot(), ") + kNewSinceSnapshot,
                {Value::Text(last_snap)}, &rows);
  if (!st.ok() || rows.empty() || rows[0][2].as_integer() == 0) {
    if (!st.ok()) spdlog::debug("{}: pinning a snapshot failed: {}", Describe(), st.message());
    s->set_in_transaction(false);
    if (s->Script(st.ok() ? "COMMIT" : "ROLLBACK").ok()) spare_sessions_.push_back(std::move(s));
    return;
  }
  const int64_t seq = last + rows[0][2].as_integer();
  known_ticks_.emplace(seq, rows[0][0].as_bytes());
  newest_tick_max_id_ = std::max(newest_tick_max_id_, rows[0][3].as_integer());
  pins_.push_back(Pin{seq, rows[0][1].as_bytes(), std::move(s), std::chrono::steady_clock::now()});
  spdlog::debug("{}: pinned the snapshot ending position {}", Describe(), seq);
}

void PgConnector::EndRead() {
  if (!in_read_) return;
  in_read_ = false;
  read_pin_ = -1;
  head_ = WindowHead{};
  // Its outcome is read with the next statement's; a read transaction has nothing to lose.
  if (!session_->Send("COMMIT").ok()) (void)End("ROLLBACK");
  session_->set_in_transaction(false);
}

Status PgConnector::BeginApply() {
  TANDEM_RETURN_IF_ERROR(session_->Send("BEGIN"));
  TANDEM_RETURN_IF_ERROR(session_->Send("SET LOCAL tandem.applying = 'on'"));
  session_->set_in_transaction(true);
  return Status::Ok();
}

Status PgConnector::CommitApply() {
  // With the writes still in the pipeline: one round trip for all.
  Status st = session_->Send("COMMIT");
  if (st.ok()) st = session_->Collect();
  session_->set_in_transaction(false);
  if (!st.ok()) (void)End("ROLLBACK");
  return st;
}

void PgConnector::RollbackApply() { (void)End("ROLLBACK"); }

Status PgConnector::BeginWrite() {
  TANDEM_RETURN_IF_ERROR(session_->Script("BEGIN"));
  session_->set_in_transaction(true);
  return Status::Ok();
}

Status PgConnector::Commit() { return CommitApply(); }

Status PgConnector::Savepoint(const std::string& name) { return session_->Script("SAVEPOINT " + name); }
Status PgConnector::ReleaseSavepoint(const std::string& name) { return session_->Script("RELEASE SAVEPOINT " + name); }
Status PgConnector::RollbackToSavepoint(const std::string& name) {
  return session_->Script("ROLLBACK TO SAVEPOINT " + name + "; RELEASE SAVEPOINT " + name);
}

Status PgConnector::RefreshStatistics() {
  // The key map grows fast from empty; until autovacuum catches up the
  // planner may pick a plan for the empty table (a filter over every row of
  // an entity instead of an index probe per key).
  return session_->Script("ANALYZE tandem._tandem_records");
}

// --- capture ---

// Stretches of time when a table's capture was missing (engine/capture_health.h).
constexpr const char* kGapsTableSql =
    "CREATE TABLE IF NOT EXISTS tandem._tandem_gaps(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "table_name text NOT NULL, problem text NOT NULL, noticed_at_ms bigint NOT NULL, repaired_at_ms bigint, "
    "cleared_at_ms bigint)";
namespace {
constexpr const char* kPgIdentityTableSql = "CREATE TABLE IF NOT EXISTS tandem._tandem_identity(db_id text NOT NULL)";
constexpr const char* kPgIdentityRowSql =
    "INSERT INTO tandem._tandem_identity(db_id) SELECT md5(random()::text || clock_timestamp()::text || "
    "pg_backend_pid()::text) WHERE NOT EXISTS (SELECT 1 FROM tandem._tandem_identity)";
}  // namespace

std::vector<std::string> PgConnector::ControlTablesSql() const {
  return {
      "CREATE SCHEMA IF NOT EXISTS tandem",
      // Which tables are captured, and the id their log rows carry.
      "CREATE TABLE IF NOT EXISTS tandem._tandem_capture(table_id integer PRIMARY KEY, table_name text NOT NULL "
      "UNIQUE, key_columns text NOT NULL)",
      // The change log: what changed (k* = key after, o* = key before a key
      // change, as text), by which transaction. Not in commit order: see ticks.
      "CREATE TABLE IF NOT EXISTS tandem._tandem_log(id bigserial PRIMARY KEY, tx xid8 NOT NULL DEFAULT "
      "pg_current_xact_id(), table_id integer NOT NULL, op smallint NOT NULL, k1 text, k2 text, k3 text, k4 text, "
      "o1 text, o2 text, o3 text, o4 text, at_ms bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * "
      "1000)::bigint)",
      // Per direction applied INTO this database: the source position, stored
      // with the data, and its cursor (a PostgreSQL source's window snapshot).
      // source_id / source_mark: the source database's identity and its
      // HistoryMark at seq (engine/source_identity.h).
      "CREATE TABLE IF NOT EXISTS tandem._tandem_position(direction text PRIMARY KEY, seq bigint NOT NULL, "
      "applied_at_ms bigint, source_at_ms bigint, applied_total bigint NOT NULL DEFAULT 0, cursor text, source_id "
      "text, source_mark text)",
      "CREATE TABLE IF NOT EXISTS tandem._tandem_entity_stats(direction text NOT NULL, entity text NOT NULL, "
      "last_applied_at_ms bigint, applied_total bigint NOT NULL DEFAULT 0, PRIMARY KEY(direction, entity))",
      // Key map + last agreed version per record (see the SQLite connector).
      // lkey first in the unique index: `lkey IN (...)` probes it whatever
      // the planner thinks of `entity = ?`.
      "CREATE TABLE IF NOT EXISTS tandem._tandem_records(entity text NOT NULL, lkey text NOT NULL, mkey text NOT "
      "NULL, mhash bigint NOT NULL, version bigint NOT NULL, gone integer NOT NULL DEFAULT 0, lbase text, mbase text, "
      "UNIQUE(lkey, entity))",
      "CREATE INDEX IF NOT EXISTS _tandem_records_by_mhash ON tandem._tandem_records(mhash)",
      "CREATE INDEX IF NOT EXISTS _tandem_records_gone ON tandem._tandem_records(version) WHERE gone = 1",
      "CREATE TABLE IF NOT EXISTS tandem._tandem_parked(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
      "direction text NOT NULL, entity text NOT NULL, source_key text NOT NULL, kind text NOT NULL, reason text NOT "
      "NULL, first_seq bigint, last_seq bigint, parked_at_ms bigint, attempts integer NOT NULL DEFAULT 1, "
      "retry_requested integer NOT NULL DEFAULT 0, old_key text, UNIQUE(direction, entity, source_key))",
      "CREATE TABLE IF NOT EXISTS tandem._tandem_conflicts(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
      "at_ms bigint NOT NULL, direction text NOT NULL, entity text NOT NULL, lkey text, mkey text, field text, "
      "legacy_value text, modern_value text, winner text NOT NULL, kind text NOT NULL, policy text, base_value text, "
      "status text NOT NULL DEFAULT 'settled', settled_at_ms bigint, resolution text)",
      "CREATE INDEX IF NOT EXISTS _tandem_conflicts_status ON tandem._tandem_conflicts(status)",
      // The capture triggers run as whoever writes a captured table: every
      // role may append to the log (and nothing else in this schema).
      "GRANT USAGE ON SCHEMA tandem TO PUBLIC",
      "GRANT INSERT ON tandem._tandem_log TO PUBLIC",
      "GRANT USAGE ON SEQUENCE tandem._tandem_log_id_seq TO PUBLIC",
      "CREATE TABLE IF NOT EXISTS tandem._tandem_audit(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
      "at_ms bigint NOT NULL, action text NOT NULL, detail text NOT NULL)",
      kGapsTableSql,
      // This database's identity: a random id made at the first install and
      // kept by every later one (a dump or backup carries it).
      kPgIdentityTableSql,
      kPgIdentityRowSql,
  };
}

Result<std::vector<std::string>> PgConnector::UpgradeControlTablesSql() {
  std::vector<std::string> out;
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT (to_regclass('tandem._tandem_capture') IS NOT NULL)::int, "
                                             "(to_regclass('tandem._tandem_gaps') IS NOT NULL)::int",
                                             {}));
  if (row && (*row)[0].as_integer() == 1 && (*row)[1].as_integer() == 0) out.push_back(kGapsTableSql);  // before capture gaps
  TANDEM_ASSIGN_OR_RETURN(auto position, DescribeTable("_tandem_position"));
  if (position && position->Find("source_id") < 0) {  // before positions named the source and its history
    out.push_back("ALTER TABLE tandem._tandem_position ADD COLUMN source_id text");
    out.push_back("ALTER TABLE tandem._tandem_position ADD COLUMN source_mark text");
  }
  TANDEM_ASSIGN_OR_RETURN(auto identity, DescribeTable("_tandem_identity"));
  if (position && !identity) {  // before databases had an identity
    out.push_back(kPgIdentityTableSql);
    out.push_back(kPgIdentityRowSql);
  }
  return out;
}

std::vector<std::string> PgConnector::CaptureSql(const CaptureTable& t) const {
  std::vector<std::string> out = DropCaptureSql(t);
  const std::string tbl = QuoteIdent(t.table);
  std::string kcols, ocols, newk, oldk, rowk_new, rowk_old, key_changed, keys_csv;
  bool all_print_alike = true;
  for (size_t i = 0; i < t.key_columns.size(); ++i) {
    const std::string q = QuoteIdent(t.key_columns[i]);
    kcols += fmt::format(", k{}", i + 1);
    ocols += fmt::format(", o{}", i + 1);
    const std::string type = i < t.key_types.size() ? t.key_types[i] : "";
    all_print_alike &= PrintsAlike(type);
    newk += ", " + KeyText("n." + q, type);
    oldk += ", " + KeyText("o." + q, type);
    rowk_new += ", " + KeyText("NEW." + q, type);
    rowk_old += ", " + KeyText("OLD." + q, type);
    // Bytewise: a change of letter case under a case-insensitive collation is a key change too.
    key_changed += fmt::format("{}OLD.{}::text COLLATE \"C\" IS DISTINCT FROM NEW.{}::text COLLATE \"C\"",
                               i ? " OR " : "", q, q);
    keys_csv += (i ? "," : "") + t.key_columns[i];
  }
  out.push_back(fmt::format(
      "INSERT INTO tandem._tandem_capture(table_id, table_name, key_columns) VALUES ({}, {}, {}) ON CONFLICT "
      "(table_id) DO UPDATE SET table_name = excluded.table_name, key_columns = excluded.key_columns",
      t.id, Literal(t.table), Literal(keys_csv)));
  // One INSERT ... SELECT per statement, from its transition table.
  const std::string skip = "IF current_setting('tandem.applying', true) = 'on' THEN RETURN NULL; END IF;";
  // Keys are logged in the text form Tandem's own session reads them in,
  // whatever the writing session's settings (time zone, date style, float
  // digits, bytea output): the functions run with Tandem's settings, unless
  // every key type prints alike under any settings (which saves a few
  // microseconds per statement).
  const std::string settings = all_print_alike ? "" : " " + TextFormSettings(" ");
  auto statement_fn = [&](const char* kind, int op, const std::string& rows, const std::string& keys) {
    return fmt::format(
        "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql{} AS $tandem$ BEGIN {} INSERT INTO "
        "tandem._tandem_log(table_id, op{}) SELECT {}, {}{} FROM {}; RETURN NULL; END $tandem$",
        FunctionName(t, kind), settings, skip, kcols, t.id, op, keys, rows);
  };
  out.push_back(statement_fn("ins", 1, "tandem_new n", newk));
  out.push_back(statement_fn("upd", 2, "tandem_new n", newk));
  out.push_back(statement_fn("del", 3, "tandem_old o", oldk));
  // TRUNCATE deletes without row triggers: a trigger that runs before it
  // (holding TRUNCATE's exclusive lock) logs a delete for every row the table
  // holds, partitions and children included (a delete logged for a row that
  // stays is harmless: the engine reads the row). Its SELECT must see every
  // committed row, which a REPEATABLE READ or SERIALIZABLE snapshot may not:
  // there TRUNCATE is refused with the reason. The table is named through
  // TG_TABLE_SCHEMA/TG_TABLE_NAME, whatever the writer's search_path; the
  // function runs as its owner, so a role allowed to TRUNCATE but not to
  // SELECT can still truncate.
  std::string trunc_keys = oldk;
  for (size_t at = 0; (at = trunc_keys.find('%', at)) != std::string::npos; at += 2) trunc_keys.insert(at, "%");
  out.push_back(fmt::format(
      "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = "
      "pg_catalog, pg_temp{} AS $tandem$ BEGIN {} IF current_setting('transaction_isolation') <> 'read committed' "
      "THEN RAISE EXCEPTION 'TRUNCATE of %.% is refused: Tandem syncs this table and captures TRUNCATE only in a READ "
      "COMMITTED transaction', TG_TABLE_SCHEMA, TG_TABLE_NAME USING HINT = 'Use DELETE, or TRUNCATE in a READ "
      "COMMITTED transaction.'; END IF; EXECUTE format($sql$INSERT INTO tandem._tandem_log(table_id, op{}) SELECT {}, "
      "3{} FROM %I.%I o$sql$, TG_TABLE_SCHEMA, TG_TABLE_NAME); RETURN NULL; END $tandem$",
      FunctionName(t, "trunc"), settings, skip, kcols, t.id, trunc_keys));
  out.push_back(fmt::format(
      "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql{} AS $tandem$ BEGIN {} INSERT INTO "
      "tandem._tandem_log(table_id, op{}{}) VALUES ({}, 4{}{}); RETURN NULL; END $tandem$",
      FunctionName(t, "key"), settings, skip, kcols, ocols, t.id, rowk_new, rowk_old));
  out.push_back(fmt::format("CREATE TRIGGER {} AFTER INSERT ON {} REFERENCING NEW TABLE AS tandem_new FOR EACH "
                            "STATEMENT EXECUTE FUNCTION {}()",
                            TriggerName(t, "ins"), tbl, FunctionName(t, "ins")));
  // A key change is logged per row (old and new key together) before the
  // statement's update rows, which name the new keys.
  out.push_back(fmt::format("CREATE TRIGGER {} AFTER UPDATE ON {} FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}()",
                            TriggerName(t, "key"), tbl, key_changed, FunctionName(t, "key")));
  out.push_back(fmt::format("CREATE TRIGGER {} AFTER UPDATE ON {} REFERENCING NEW TABLE AS tandem_new FOR EACH "
                            "STATEMENT EXECUTE FUNCTION {}()",
                            TriggerName(t, "upd"), tbl, FunctionName(t, "upd")));
  out.push_back(fmt::format("CREATE TRIGGER {} AFTER DELETE ON {} REFERENCING OLD TABLE AS tandem_old FOR EACH "
                            "STATEMENT EXECUTE FUNCTION {}()",
                            TriggerName(t, "del"), tbl, FunctionName(t, "del")));
  out.push_back(fmt::format("CREATE TRIGGER {} BEFORE TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()",
                            TriggerName(t, "trunc"), tbl, FunctionName(t, "trunc")));
  // Fired in every session, also with session_replication_role = replica
  // (pg_restore, bulk loaders, logical replication's apply): every writer is
  // captured. Tandem's own writes skip it through tandem.applying.
  for (const char* kind : {"ins", "key", "upd", "del", "trunc"})
    out.push_back(fmt::format("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", tbl, TriggerName(t, kind)));
  return out;
}

std::vector<std::string> PgConnector::DropCaptureSql(const CaptureTable& t) const {
  std::vector<std::string> out;
  // DROP TRIGGER IF EXISTS needs the table to exist.
  for (const char* kind : {"ins", "key", "upd", "del", "trunc"})
    out.push_back(fmt::format("DO $tandem$ BEGIN IF to_regclass({}) IS NOT NULL THEN DROP TRIGGER IF EXISTS {} ON {}; "
                              "END IF; END $tandem$",
                              Literal(QuoteIdent(t.table)), TriggerName(t, kind), QuoteIdent(t.table)));
  // CASCADE: a trigger left on a table renamed aside (the "rename the old
  // table, create the new one, copy" rebuild) still runs the function.
  for (const char* kind : {"ins", "key", "upd", "del", "trunc"})
    out.push_back(fmt::format("DROP FUNCTION IF EXISTS {}() CASCADE", FunctionName(t, kind)));
  return out;
}

std::vector<std::string> PgConnector::DropControlTablesSql() const { return {"DROP SCHEMA IF EXISTS tandem CASCADE"}; }

std::vector<std::string> PgConnector::DropRuntimeTablesSql() const {
  // The schema stays, with the key map and the audit trail in it.
  return {"DROP TABLE IF EXISTS tandem._tandem_log",         "DROP TABLE IF EXISTS tandem._tandem_capture",
          "DROP TABLE IF EXISTS tandem._tandem_position",    "DROP TABLE IF EXISTS tandem._tandem_entity_stats",
          "DROP TABLE IF EXISTS tandem._tandem_parked",      "DROP TABLE IF EXISTS tandem._tandem_conflicts"};
}

Result<std::string> PgConnector::Identity() {
  // Host, port and database name can all be spelled several ways; the
  // cluster's system identifier and the database's oid cannot.
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT (SELECT system_identifier::text FROM pg_control_system()), "
                                             "(SELECT oid::text FROM pg_database WHERE datname = current_database())",
                                             {}));
  if (!row || (*row)[0].is_null() || (*row)[1].is_null())
    return Status::Internal(fmt::format("{}: cannot read the cluster's system identifier", Describe()));
  return fmt::format("postgresql:{}:{}", (*row)[0].ToCodeText(), (*row)[1].ToCodeText());
}

Result<bool> PgConnector::IsInstalled() {
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT count(*) FROM pg_tables WHERE schemaname = 'tandem' AND "
                                             "tablename IN ('_tandem_log', '_tandem_position', '_tandem_records', "
                                             "'_tandem_capture')",
                                             {}));
  return row && (*row)[0].as_integer() == 4;
}

Result<std::string> PgConnector::CaptureProblem(const CaptureTable& t) {
  TANDEM_ASSIGN_OR_RETURN(auto registered, QueryOne("SELECT table_name FROM tandem._tandem_capture WHERE table_id = ?",
                                                    {Value::Integer(t.id)}));
  if (!registered || (*registered)[0].as_bytes() != t.table)
    return fmt::format("table '{}' is not registered for capture (id {})", t.table, t.id);
  // The body each capture function should have, by name.
  std::map<std::string, std::string> bodies;
  static const std::string kFunction = "CREATE OR REPLACE FUNCTION ", kTrigger = "CREATE TRIGGER ",
                           kExecute = "EXECUTE FUNCTION ", kQuote = "$tandem$";
  const std::vector<std::string> statements = CaptureSql(t);
  for (const std::string& sql : statements) {
    if (sql.rfind(kFunction, 0) != 0) continue;
    const size_t open = sql.find(kQuote), close = sql.rfind(kQuote);
    bodies[sql.substr(kFunction.size(), sql.find('(') - kFunction.size())] =
        sql.substr(open + kQuote.size(), close - open - kQuote.size());
  }
  for (const std::string& sql : statements) {
    if (sql.rfind(kTrigger, 0) != 0) continue;
    const std::string name = sql.substr(kTrigger.size(), sql.find(' ', kTrigger.size()) - kTrigger.size());
    const size_t fn_at = sql.find(kExecute) + kExecute.size();
    const std::string function = sql.substr(fn_at, sql.find('(', fn_at) - fn_at);
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT t.tgenabled::text, p.prosrc FROM pg_trigger t JOIN pg_proc p ON "
                                               "p.oid = t.tgfoid WHERE t.tgrelid = to_regclass(?) AND t.tgname = ?",
                                               {Value::Text(QuoteIdent(t.table)), Value::Text(name)}));
    if (!row)
      return fmt::format("capture trigger {} on '{}' is missing (dropped, or the table was recreated)", name, t.table);
    // 'O' (origin) and 'A' (always) fire for ordinary writers; 'D' never,
    // 'R' only in sessions with session_replication_role = replica.
    if ((*row)[0].as_bytes() == "D")
      return fmt::format("capture trigger {} on '{}' is disabled (ALTER TABLE ... DISABLE TRIGGER)", name, t.table);
    if ((*row)[0].as_bytes() == "R")
      return fmt::format("capture trigger {} on '{}' fires only in replica sessions (ALTER TABLE ... ENABLE REPLICA "
                         "TRIGGER): ordinary writes are not captured",
                         name, t.table);
    if ((*row)[1].as_bytes() != bodies[function])
      return fmt::format("capture trigger {} on '{}' does not run the function 'tandem install' makes now (stale or "
                         "changed)",
                         name, t.table);
  }
  return std::string();
}

// --- positions: ticks over snapshots ---

// A snapshot in which no transaction is visible: position 0 is before every change.
constexpr const char* kBeforeEverything = "1:1:";

// A position inside a window (a target transaction bounded by
// sync.max_txn_ms ends there) is stored as
// "mid:<start seq>:<end seq>:<last log id>|<start snapshot>|<end snapshot>":
// the rest of the window is its rows with a larger id.
constexpr std::string_view kMidWindow = "mid:";

Status PgConnector::ResumeAt(int64_t seq, const std::string& cursor) {
  if (seq != 0 && cursor.empty())
    return Status::InvalidArgument(fmt::format("{}: position {} has no stored snapshot (made by an older version?): "
                                               "run 'tandem install' again",
                                               Describe(), seq));
  ReleasePins(std::numeric_limits<int64_t>::max());  // numbered after ticks that are gone
  known_ticks_.clear();
  cursor_ = Cursor{};
  head_ = WindowHead{};
  newest_tick_max_id_ = 0;
  if (cursor.rfind(kMidWindow, 0) == 0) {
    int64_t start = 0, end = 0, id = 0;
    const size_t bar1 = cursor.find('|'), bar2 = cursor.find('|', bar1 == std::string::npos ? 0 : bar1 + 1);
    if (bar1 == std::string::npos || bar2 == std::string::npos ||
        std::sscanf(cursor.c_str() + kMidWindow.size(), "%" SCNd64 ":%" SCNd64 ":%" SCNd64, &start, &end, &id) != 3 ||
        !(start < seq && seq < end))
      return Status::InvalidArgument(fmt::format("{}: position {} has an unreadable stored cursor '{}'", Describe(),
                                                 seq, cursor));
    known_ticks_.emplace(start, cursor.substr(bar1 + 1, bar2 - bar1 - 1));
    known_ticks_.emplace(end, cursor.substr(bar2 + 1));
    cursor_ = Cursor{seq, id, end};  // the window goes on after log id `id`
    return Status::Ok();
  }
  known_ticks_.emplace(seq, cursor.empty() ? kBeforeEverything : cursor);
  return Status::Ok();
}

std::string PgConnector::PositionCursor(int64_t seq) const {
  auto it = known_ticks_.find(seq);
  if (it != known_ticks_.end()) return it->second;
  // Inside the window ReadChanges is reading: where it stopped.
  auto end = known_ticks_.upper_bound(seq);
  if (cursor_.seq != seq || end == known_ticks_.begin() || end == known_ticks_.end() ||
      end->first != cursor_.window_end)
    return "";
  auto start = std::prev(end);
  return fmt::format("{}{}:{}:{}|{}|{}", kMidWindow, start->first, end->first, cursor_.id, start->second, end->second);
}

Result<int64_t> PgConnector::MaxChangeSeq() {
  // The changes the newest window's snapshot did not see, counted in this
  // statement's snapshot (inside a read transaction: that transaction's),
  // which becomes the next window's end.
  if (known_ticks_.empty()) known_ticks_.emplace(0, kBeforeEverything);
  head_ = WindowHead{};
  if (in_read_ && read_pin_ >= 0) return read_pin_;  // the read is in that pin's snapshot
  const auto [last, last_snap] = *known_ticks_.rbegin();
  int64_t n = 0, max_id = 0;
  std::string snap;
  if (in_read_) {
    // In the read transaction every statement sees its snapshot, so the log
    // rows it sees that the newest window's snapshot did not are exactly the
    // next window: its first rows and its end travel in one round trip, and
    // only a window longer than that needs counting.
    // Both answers land in members: an error between Send and Collect
    // leaves no answer pointing at a local.
    TANDEM_RETURN_IF_ERROR(session_->Send("SELECT pg_current_snapshot()::text", {}, &head_.snapshot));
    TANDEM_RETURN_IF_ERROR(session_->Send(
        fmt::format("SELECT {} FROM tandem._tandem_log WHERE NOT pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER "
                    "BY id LIMIT ?",
                    kLogColumns),
        {Value::Text(last_snap), Value::Integer(kWindowHeadRows + 1)}, &head_.rows));
    TANDEM_RETURN_IF_ERROR(session_->Collect());
    if (head_.snapshot.empty()) return Status::Internal("pg_current_snapshot() returned no row");
    snap = head_.snapshot[0][0].as_bytes();
    n = static_cast<int64_t>(head_.rows.size());
    if (n > 0) max_id = head_.rows.back()[0].as_integer();
    if (n > kWindowHeadRows) {
      head_.rows.pop_back();
      TANDEM_ASSIGN_OR_RETURN(auto count,
                              QueryOne(std::string("SELECT ") + kNewSinceSnapshot, {Value::Text(last_snap)}));
      n = (*count)[0].as_integer();
      max_id = (*count)[1].as_integer();
    }
  } else {
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(std::string("SELECT pg_current_snapshot()::text, ") + kNewSinceSnapshot,
                                               {Value::Text(last_snap)}));
    snap = (*row)[0].as_bytes();
    n = (*row)[1].as_integer();
    max_id = (*row)[2].as_integer();
  }
  if (n == 0) return last;
  const int64_t end = last + n;
  known_ticks_.emplace(end, std::move(snap));
  newest_tick_max_id_ = std::max(newest_tick_max_id_, max_id);
  if (!head_.rows.empty()) head_.window_end = end;
  return end;
}

Result<std::pair<PgConnector::Tick, std::optional<PgConnector::Tick>>> PgConnector::WindowAround(int64_t seq) {
  auto after = known_ticks_.upper_bound(seq);
  if (after == known_ticks_.begin())
    return Status::Internal(fmt::format("{}: no change window at or before position {}", Describe(), seq));
  auto start = std::prev(after);
  std::pair<Tick, std::optional<Tick>> out;
  out.first = {start->first, start->second};
  if (after != known_ticks_.end()) out.second = Tick{after->first, after->second};
  return out;
}

Result<const std::vector<unsigned>*> PgConnector::KeyTypes(int table_id) {
  auto it = key_types_.find(table_id);
  if (it != key_types_.end()) return &it->second;
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT table_name, key_columns FROM tandem._tandem_capture WHERE "
                                             "table_id = ?",
                                             {Value::Integer(table_id)}));
  std::vector<unsigned> types;
  if (row) {
    std::string cols = (*row)[1].as_bytes();
    size_t pos = 0;
    while (pos <= cols.size()) {
      size_t comma = cols.find(',', pos);
      std::string col = cols.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      // A domain's values arrive typed as its base type.
      TANDEM_ASSIGN_OR_RETURN(auto t, QueryOne("SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::bigint FROM "
                                               "pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = "
                                               "to_regclass(?) AND a.attname = ?",
                                               {Value::Text(QuoteIdent((*row)[0].as_bytes())), Value::Text(col)}));
      types.push_back(t ? static_cast<unsigned>((*t)[0].as_integer()) : 25u);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return &key_types_.emplace(table_id, std::move(types)).first->second;
}

Status PgConnector::ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) {
  size_t got = 0;
  while (got < limit && after < upto) {
    TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(after));
    if (!window.second)  // `upto` came from MaxChangeSeq, which records its window first
      return Status::Internal(fmt::format("{}: no change window recorded after position {} (up to {})", Describe(),
                                          after, upto));
    const Tick& start = window.first;
    const Tick& end = *window.second;
    const int64_t want = std::min<int64_t>(static_cast<int64_t>(limit - got), upto - after);
    std::vector<Row> fetched;
    const std::vector<Row>* rows = &fetched;
    size_t first = 0, count = 0;
    if (head_.window_end == end.seq && after - start.seq < static_cast<int64_t>(head_.rows.size())) {
      // The window's first rows came with its end (MaxChangeSeq).
      rows = &head_.rows;
      first = static_cast<size_t>(after - start.seq);
      count = std::min<size_t>(static_cast<size_t>(want), head_.rows.size() - first);
    } else {
      // Within a window, go on from where the last read stopped.
      int64_t from_id = 0, skip = after - start.seq;
      if (cursor_.window_end == end.seq && cursor_.seq == after) {
        from_id = cursor_.id;
        skip = 0;
      }
      TANDEM_RETURN_IF_ERROR(session_->Run(
          fmt::format("SELECT {} FROM tandem._tandem_log WHERE id > ? AND pg_visible_in_snapshot(tx, ?::pg_snapshot) "
                      "AND NOT pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER BY id LIMIT ? OFFSET ?",
                      kLogColumns),
          {Value::Integer(from_id), Value::Text(end.snap), Value::Text(start.snap), Value::Integer(want),
           Value::Integer(skip)},
          &fetched));
      count = fetched.size();
    }
    int64_t seq = after;
    for (size_t i = first; i < first + count; ++i) {
      const Row& r = (*rows)[i];
      CapturedChange c;
      c.seq = ++seq;
      c.table_id = static_cast<int>(r[1].as_integer());
      c.op = static_cast<ChangeOp>(r[2].as_integer());
      TANDEM_ASSIGN_OR_RETURN(const std::vector<unsigned>* types, KeyTypes(c.table_id));
      auto typed = [&](const Value& v, size_t k) {
        if (v.is_null() || k >= types->size()) return v;
        return PgSession::FromText(v.as_bytes().data(), static_cast<int>(v.as_bytes().size()), (*types)[k]);
      };
      c.key.reserve(kMaxKeyColumns);
      for (int k = 0; k < kMaxKeyColumns; ++k) c.key.push_back(typed(r[3 + k], k));
      if (c.op == ChangeOp::kKeyChange)
        for (int k = 0; k < kMaxKeyColumns; ++k) c.old_key.push_back(typed(r[7 + k], k));
      c.captured_at_ms = r[11].as_integer();
      cursor_ = {c.seq, r[0].as_integer(), end.seq};
      out->push_back(std::move(c));
    }
    got += count;
    if (seq >= upto && seq < end.seq) return Status::Ok();  // stopped inside the window, at `upto`
    if (rows == &head_.rows && seq < end.seq) {
      after = seq;  // the rest of the window is read from the log
      continue;
    }
    if (static_cast<int64_t>(count) < want || seq >= end.seq) {
      // The window is done (a shorter one than its tick says would mean
      // purged rows): the next read starts at the following window.
      if (seq < end.seq && !out->empty()) out->back().seq = end.seq;
      after = end.seq;
      if (count == 0 && seq < end.seq) return Status::Ok();
    } else {
      after = seq;
    }
  }
  return Status::Ok();
}

Status PgConnector::PurgeChanges(int64_t before) {
  // The changes of every window up to `before` are applied: they are the ones
  // its end snapshot sees. Windows before it are no longer needed (it stays,
  // as the start of the next one).
  TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(before));
  constexpr int64_t kChunk = 10000;
  while (true) {
    int64_t changed = 0;
    TANDEM_RETURN_IF_ERROR(session_->Run(
        "DELETE FROM tandem._tandem_log WHERE id IN (SELECT id FROM tandem._tandem_log WHERE "
        "pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER BY id LIMIT ?)",
        {Value::Text(window.first.snap), Value::Integer(kChunk)}, nullptr, &changed));
    if (changed < kChunk) break;
  }
  known_ticks_.erase(known_ticks_.begin(), known_ticks_.lower_bound(window.first.seq));
  return Status::Ok();
}

Result<Connector::PendingInfo> PgConnector::PendingChanges(int64_t after, int table_id) {
  TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(after));
  TANDEM_ASSIGN_OR_RETURN(auto p, QueryOne("SELECT count(*), coalesce(min(at_ms), 0) FROM tandem._tandem_log WHERE "
                                           "table_id = ? AND NOT pg_visible_in_snapshot(tx, ?::pg_snapshot)",
                                           {Value::Integer(table_id), Value::Text(window.first.snap)}));
  return PendingInfo{(*p)[0].as_integer(), (*p)[1].as_integer()};
}

Result<Value> PgConnector::NewestCaptureMillis(const std::string& table, const Row& key) {
  std::string sql = "SELECT max(l.at_ms) FROM tandem._tandem_log l JOIN tandem._tandem_capture c ON c.table_id = "
                    "l.table_id WHERE c.table_name = ?";
  Row params{Value::Text(table)};
  for (size_t i = 0; i < key.size(); ++i) {
    sql += fmt::format(" AND l.k{} = ?::text", i + 1);
    params.push_back(key[i].type() == ValueType::kBlob ? Value::Text(key[i].ToDisplay()) : key[i]);
  }
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(sql, params));
  return row ? (*row)[0] : Value::Null();
}

namespace {
// Which tables exist (by oid: a table dropped and made again is another),
// and every column's name, type, modifier and NOT NULL; enum labels too.
// ?1 and ?2: a text[] of the quoted table names.
constexpr const char* kSchemaDigestSql =
    "SELECT coalesce(string_agg(c.oid::oid::text, ',' ORDER BY c.ord), '') || '/' || (SELECT "
    "coalesce(md5(string_agg(a.attrelid || ':' || a.attnum || ':' || a.attname || ':' || a.atttypid || ':' "
    "|| a.atttypmod || ':' || a.attnotnull || ':' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER "
    "BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid), ''), ',' ORDER BY a.attrelid, "
    "a.attnum)), '') FROM pg_attribute a WHERE a.attrelid IN (SELECT to_regclass(t) FROM "
    "unnest(?::text[]) t) AND a.attnum > 0 AND NOT a.attisdropped) FROM (SELECT to_regclass(t) AS oid, "
    "ord FROM unnest(?::text[]) WITH ORDINALITY AS u(t, ord)) c";
// Appended to the digest: Tandem's capture triggers on the tables and its
// functions (a trigger dropped, disabled or replaced changes it too).
constexpr const char* kCaptureDigestSql =
    "SELECT coalesce(md5(string_agg(tg.tgrelid || ':' || tg.tgname || ':' || tg.tgenabled::text || ':' || tg.tgfoid || ':' "
    "|| tg.xmin::text, ',' ORDER BY tg.tgrelid, tg.tgname)), '') || '/' || coalesce((SELECT md5(string_agg(p.oid || "
    "':' || p.xmin::text, ',' ORDER BY p.oid)) FROM pg_proc p WHERE p.pronamespace = to_regnamespace('tandem')), '') "
    "FROM pg_trigger tg WHERE tg.tgrelid IN (SELECT to_regclass(t) FROM unnest(?::text[]) t) AND tg.tgname LIKE "
    "'\\_tandem\\_%'";
}  // namespace

// A text[] literal of the quoted names, for to_regclass.
static std::string QuotedNamesArray(const PgConnector& pg, const std::vector<std::string>& tables) {
  std::string names = "{";
  for (size_t i = 0; i < tables.size(); ++i) {
    names += i ? ",\"" : "\"";
    for (char c : pg.QuoteIdent(tables[i])) {
      if (c == '"' || c == '\\') names += '\\';
      names += c;
    }
    names += '"';
  }
  return names + "}";
}

Result<std::string> PgConnector::SchemaVersion(const std::vector<std::string>& tables) {
  const std::string names = QuotedNamesArray(*this, tables);
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(kSchemaDigestSql, {Value::Text(names), Value::Text(names)}));
  std::string version = row ? (*row)[0].ToCodeText() : std::string();
  // The tables' oids, for SchemaVersionLater's cheap signature.
  signature_oids_ = "{" + version.substr(0, version.find('/')) + "}";
  TANDEM_ASSIGN_OR_RETURN(auto capture, QueryOne(kCaptureDigestSql, {Value::Text(names)}));
  return version + "/" + (capture ? (*capture)[0].ToCodeText() : std::string());
}

Status PgConnector::SchemaVersionLater(const std::vector<std::string>& tables, const std::vector<std::string>& lock,
                                       std::vector<Row>* out) {
  std::string names_to_lock;
  for (const std::string& t : lock) names_to_lock += (names_to_lock.empty() ? "" : ", ") + QuoteIdent(t);
  if (!names_to_lock.empty())
    TANDEM_RETURN_IF_ERROR(session_->Send("LOCK TABLE " + names_to_lock + " IN ROW EXCLUSIVE MODE"));
  (void)tables;
  // Any change of a column rewrites its pg_attribute row (a new xmin); an
  // added column adds one, a dropped table takes them all (about 0.1 ms,
  // where the full digest takes 0.5).
  return QueryLater("SELECT coalesce(sum(xmin::text::bigint), 0) || ':' || count(*) FROM pg_attribute WHERE attrelid "
                    "= ANY(?::oid[])",
                    {Value::Text(signature_oids_)}, out);
}

Result<bool> PgConnector::WaitForCommit(std::chrono::milliseconds timeout) {
  // The probe: the newest log id (an index lookup) and the current snapshot.
  // A new change moves the first; any transaction that ends, including one
  // that took its log ids long ago, changes the second (so do unrelated
  // ones: a spurious wake-up costs one empty pass). One round trip, no
  // writes, no locks.
  //
  // Idle, the probes thin out so an idle Tandem costs the server little: at
  // every call while changes flow, every 5 ms after ~0.1 s without any, every
  // 20 ms after ~2 s, every 100 ms after ~12 s. The first change after a
  // quiet spell waits at most that.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    const auto spacing = std::chrono::milliseconds(idle_probes_ < 100    ? 0
                                                   : idle_probes_ < 500  ? 5
                                                   : idle_probes_ < 1000 ? 20
                                                                         : 100);
    if (now - last_probe_ >= spacing) {
      last_probe_ = now;
      TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT (SELECT coalesce(max(id), 0) FROM tandem._tandem_log)::text "
                                                 "|| ':' || pg_current_snapshot()::text",
                                                 {}));
      std::string probe = row ? (*row)[0].as_bytes() : "";
      if (probe != probe_) {
        probe_ = probe;
        idle_probes_ = 0;
        return true;
      }
      ++idle_probes_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// --- identity and history ---

bool PgConnector::Reconnected() {
  if (session_->connects() == connects_seen_) return false;
  connects_seen_ = session_->connects();
  return true;
}

Result<std::string> PgConnector::HistoryMark(int64_t /*seq*/) {
  if (!incarnation_.empty() && session_->connects() == incarnation_connects_) return incarnation_;
  // pg_control_* need superuser or pg_monitor (PostgreSQL 15: execute is
  // granted to them only): without it the mark has the database's oid alone.
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(
      "SELECT (SELECT oid::bigint FROM pg_database WHERE datname = current_database()), CASE WHEN "
      "has_function_privilege('pg_control_system()', 'execute') THEN (SELECT system_identifier::text FROM "
      "pg_control_system()) END, CASE WHEN has_function_privilege('pg_control_checkpoint()', 'execute') THEN (SELECT "
      "timeline_id::bigint FROM pg_control_checkpoint()) END",
      {}));
  auto text = [](const Value& v) { return v.is_null() ? std::string("?") : v.ToCodeText(); };
  incarnation_ = fmt::format("pg system={} database={} timeline={}", text((*row)[1]), text((*row)[0]),
                             text((*row)[2]));
  incarnation_connects_ = session_->connects();
  return incarnation_;
}

namespace {
// "system=X database=Y timeline=Z" -> the value of `key` ("" when absent).
std::string MarkField(const std::string& mark, const std::string& key) {
  auto at = mark.find(" " + key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  auto end = mark.find(' ', at);
  return mark.substr(at, end == std::string::npos ? std::string::npos : end - at);
}
// The xmax of a pg_snapshot's text form "xmin:xmax:xip,...".
std::optional<uint64_t> SnapshotXmax(const std::string& snap) {
  auto a = snap.find(':');
  if (a == std::string::npos) return std::nullopt;
  auto b = snap.find(':', a + 1);
  try {
    return std::stoull(snap.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1));
  } catch (...) {
    return std::nullopt;
  }
}
}  // namespace

Result<Connector::HistoryCheck> PgConnector::CheckHistory(int64_t seq, const std::string& cursor,
                                                          const std::string& mark) {
  using Verdict = HistoryCheck::Verdict;
  if (seq <= 0 || mark.empty()) return HistoryCheck{};
  TANDEM_ASSIGN_OR_RETURN(std::string now, HistoryMark(seq));
  auto differs = [&](const char* key) {
    const std::string a = MarkField(mark, key), b = MarkField(now, key);
    return a != "?" && b != "?" && a != b;
  };
  if (differs("system"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("it is served by another PostgreSQL cluster (system identifier {}, the position was "
                                    "applied from {}): restored into a new cluster from a backup or a dump",
                                    MarkField(now, "system"), MarkField(mark, "system"))};
  if (differs("database"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("the database was recreated (its oid is {}, the position was applied from oid {}): "
                                    "dropped and restored from a dump or a template",
                                    MarkField(now, "database"), MarkField(mark, "database"))};
  if (differs("timeline"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("the server is on timeline {}, the position was applied on timeline {}: restored "
                                    "to a point in time, or failed over to a standby that may lack the last changes",
                                    MarkField(now, "timeline"), MarkField(mark, "timeline"))};
  // A copy of the server's files put back: its transaction counter is
  // behind the snapshot that ends the position.
  if (auto stored_xmax = SnapshotXmax(cursor)) {
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", {}));
    auto now_xmax = SnapshotXmax("0:" + (*row)[0].as_bytes() + ":");
    if (now_xmax && *now_xmax < *stored_xmax)
      return HistoryCheck{Verdict::kSourceDiffers,
                          fmt::format("its transaction counter is at {}, behind the snapshot of position {} ({} "
                                      "transactions had started): it was restored from a backup",
                                      *now_xmax, seq, *stored_xmax)};
  }
  return HistoryCheck{};
}

}  // namespace tandem
