// PgConnector as a SqlSession and an ApplyTarget: statements, transactions,
// introspection, schema versions, change detection (pg_connector.h).
#include "connectors/postgres/pg_connector.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace tandem {

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

// --- reconnects ---

bool PgConnector::Reconnected() {
  if (session_->connects() == connects_seen_) return false;
  connects_seen_ = session_->connects();
  return true;
}

}  // namespace tandem
