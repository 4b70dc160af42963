#include "connectors/postgres/pg_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <utility>
#include <cstdlib>
#include <cstring>

#include "connectors/postgres/pg_target.h"
#include "core/secrets.h"

namespace tandem {

namespace {

// Type oids (pg_type.h).
constexpr unsigned kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kTextOid = 25,
                   kOidOid = 26, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700;

bool StartsWith(const char* s, const char* prefix) { return s && std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

// SQLSTATEs after which the same work may succeed later.
bool RetryableState(const char* state) {
  if (!state) return false;
  return StartsWith(state, "08") ||      // connection exception
         StartsWith(state, "53") ||      // insufficient resources (too many connections, disk full)
         StartsWith(state, "57P") ||     // admin / crash shutdown, cannot connect now
         !std::strcmp(state, "40001") || // serialization failure
         !std::strcmp(state, "40P01") || // deadlock detected
         !std::strcmp(state, "55P03") || // lock not available (lock_timeout)
         !std::strcmp(state, "57014");   // query canceled (statement timeout)
}

// The decimal text without trailing fractional zeros ("1.50" -> "1.5", "2.00" -> "2").
std::string TrimDecimal(std::string_view s) {
  std::string out(s);
  if (out.find('.') == std::string::npos || out.find_first_of("eE") != std::string::npos) return out;
  while (!out.empty() && out.back() == '0') out.pop_back();
  if (!out.empty() && out.back() == '.') out.pop_back();
  if (out.empty() || out == "-") out = "0";
  return out;
}

}  // namespace

PgSession::~PgSession() {
  if (conn_) PQfinish(conn_);
}

Result<std::unique_ptr<PgSession>> PgSession::Connect(const std::string& url, int lock_timeout_ms) {
  std::unique_ptr<PgSession> s(new PgSession());
  s->url_ = url;
  s->lock_timeout_ms_ = lock_timeout_ms;
  // Every password this session may use is known before anything is
  // printed: the target's, PGPASSWORD's (and .pgpass's, after connecting).
  if (const char* env = std::getenv("PGPASSWORD")) RegisterSecret(env);
  RegisterTargetSecrets(url);
  // What messages may show: no password.
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string why = err ? err : "unparsable";
    if (err) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::InvalidArgument(fmt::format("PostgreSQL connection string {} is not valid: {}",
                                               MaskConnectionTarget(url), ScrubConnectionMessage(why, url)));
  }
  std::string user, host, port, db;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    std::string k = o->keyword;
    if (k == "user") user = o->val;
    else if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    else if (k == "port") port = o->val;
    else if (k == "dbname") db = o->val;
  }
  PQconninfoFree(opts);
  s->display_ = "postgresql://" + (user.empty() ? "" : user + "@") + (host.empty() ? "localhost" : host) +
                (port.empty() ? "" : ":" + port) + "/" + db;
  TANDEM_RETURN_IF_ERROR(s->EnsureConnected());
  return s;
}

Status PgSession::EnsureConnected() {
  if (conn_ && !in_transaction_ && PQstatus(conn_) == CONNECTION_OK) {
    // A session the server ended while it was idle (restart, administrator)
    // has the server's goodbye and EOF waiting on its socket: two
    // non-blocking reads find them, so the next statement goes to a new
    // session instead of failing (nothing was sent yet, so nothing is lost).
    for (int read = 0; read < 2 && PQstatus(conn_) == CONNECTION_OK; ++read)
      if (!PQconsumeInput(conn_)) break;
  }
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
  if (in_transaction_) {
    broken_in_transaction_ = true;
    return Status::Unavailable(fmt::format("{}: connection lost inside a transaction (it is rolled back)", display_));
  }
  if (conn_) PQfinish(conn_);
  prepared_.clear();
  // Keepalives and a TCP user timeout: a connection a firewall dropped
  // silently fails within about a minute instead of hanging a call forever.
  const char* keys[] = {"dbname",           "connect_timeout",    "fallback_application_name",
                        "keepalives",       "keepalives_idle",    "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout",   nullptr};
  const char* vals[] = {url_.c_str(), "10", "tandem", "1", "30", "10", "3", "60000", nullptr};
  conn_ = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    // The password libpq found itself (in the password file) is a secret too.
    if (conn_ && PQpass(conn_)) RegisterSecret(PQpass(conn_));
    std::string why = conn_ ? ScrubConnectionMessage(PQerrorMessage(conn_), url_) : "out of memory";
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    // A refused or unreachable server may come back: retryable. A bad
    // password or a missing database will not, but the message says which.
    bool permanent = why.find("password authentication failed") != std::string::npos ||
                     (why.find("database \"") != std::string::npos && why.find("does not exist") != std::string::npos);
    std::string msg = fmt::format("cannot connect to {}: {}", display_, why);
    return permanent ? Status::InvalidArgument(msg) : Status::Unavailable(msg);
  }
  if (PQpass(conn_)) RegisterSecret(PQpass(conn_));
  // Server notices ("trigger ... does not exist, skipping") are for debugging only.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { spdlog::debug("postgresql: {}", std::string_view(message)); }, nullptr);
  ++connects_;
  TANDEM_RETURN_IF_ERROR(Configure());
  if (session_lock_) return HoldSessionLock(*session_lock_);
  return Status::Ok();
}

Status PgSession::HoldSessionLock(int64_t key) {
  session_lock_ = key;
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(Run("SELECT pg_try_advisory_lock(?::bigint)", {Value::Integer(key)}, &rows));
  if (rows.empty() || rows[0][0].as_integer() != 1)
    return Status::Busy(fmt::format("another tandem process is already syncing {} (it holds the engine's advisory "
                                    "lock); stop it first, or use 'tandem retry' which asks the running process",
                                    display_));
  return Status::Ok();
}

std::string TextFormSettings(const char* separator) {
  static constexpr const char* kSettings[][2] = {{"TimeZone", "'UTC'"},
                                                 {"DateStyle", "'ISO, YMD'"},
                                                 {"IntervalStyle", "'iso_8601'"},
                                                 {"extra_float_digits", "3"},
                                                 {"bytea_output", "'hex'"}};
  std::string out;
  for (auto& [name, value] : kSettings) out += fmt::format("{}SET {} = {}", out.empty() ? "" : separator, name, value);
  return out;
}

Status PgSession::Configure() {
  return Script(fmt::format(
      "{}; SET client_encoding = 'UTF8'; SET lock_timeout = {}; SET plan_cache_mode = force_custom_plan; "
      "SELECT set_config('search_path', current_setting('search_path') || ', tandem', false)",
      TextFormSettings("; "), lock_timeout_ms_));
}

Status PgSession::ConnectionLost(const std::string& what) {
  if (in_transaction_) broken_in_transaction_ = true;
  std::string why = ScrubConnectionMessage(PQerrorMessage(conn_), url_);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return Status::Unavailable(fmt::format("{}: connection lost {}: {}", display_, what, why));
}

Status PgSession::ErrorOf(const PGresult* res, const std::string& what) {
  if (PQstatus(conn_) != CONNECTION_OK) return ConnectionLost(what);
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  std::string msg = primary ? primary : PQresultErrorMessage(res);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (detail) msg += fmt::format(" ({})", detail);
  msg = ScrubSecrets(msg);
  msg += fmt::format(" [SQLSTATE {}]", state ? state : "?");
  if (RetryableState(state)) return Status::Unavailable(fmt::format("{}: {}: {}", display_, what, msg));
  if (StartsWith(state, "23503")) return Status::Constraint("FOREIGN KEY constraint failed: " + msg);
  // 25P02: an earlier statement of this transaction failed; the caller
  // re-runs the batch record by record (savepoints), like for a rejection.
  if (StartsWith(state, "23") || StartsWith(state, "22") || StartsWith(state, "25P02")) return Status::Constraint(msg);
  return Status::Internal(fmt::format("{}: {}: {}", display_, what, msg));
}

std::string PgSession::NumberPlaceholders(const std::string& sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // literal or quoted identifier: copy to its end
      size_t j = i + 1;
      while (j < sql.size() && !(sql[j] == c && (j + 1 >= sql.size() || sql[j + 1] != c))) j += sql[j] == c ? 2 : 1;
      out.append(sql, i, j - i + 1);
      i = j;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      if (j == std::string::npos) j = sql.size() - 1;
      out.append(sql, i, j - i + 1);
      i = j;
    } else if (c == '?') {
      out += "$" + std::to_string(++n);
    } else {
      out.push_back(c);
    }
  }
  if (count) *count = n;
  return out;
}

Value PgSession::FromText(const char* text, int length, unsigned int type_oid) {
  std::string_view s(text, static_cast<size_t>(length));
  switch (type_oid) {
    case kBoolOid:
      return Value::Integer(s == "t" ? 1 : 0);
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      int64_t v = 0;
      std::from_chars(s.data(), s.data() + s.size(), v);
      return Value::Integer(v);
    }
    case kFloat4Oid:
    case kFloat8Oid:
      return Value::Real(std::strtod(std::string(s).c_str(), nullptr));
    case kNumericOid: {
      // Exact where a number type can hold it; otherwise the exact text.
      std::string t = TrimDecimal(s);
      if (t.find_first_of(".eEN") == std::string::npos) {
        int64_t v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec == std::errc() && end == t.data() + t.size()) return Value::Integer(v);
        return Value::Text(std::string(s));
      }
      if (t.find_first_of("eEN") == std::string::npos) {
        double d = std::strtod(t.c_str(), nullptr);
        if (fmt::format("{}", d) == t) return Value::Real(d);
      }
      return Value::Text(std::string(s));
    }
    case kByteaOid: {
      size_t n = 0;
      unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(std::string(s).c_str()), &n);
      if (!bytes) return Value::Null();
      Value v = Value::Blob(std::string(reinterpret_cast<char*>(bytes), n));
      PQfreemem(bytes);
      return v;
    }
    default:
      return Value::Text(std::string(s));
  }
}

Result<const PgSession::Prepared*> PgSession::PrepareOnce(const std::string& sql, const Row& params) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return &it->second;
  TANDEM_RETURN_IF_ERROR(Collect());  // preparing waits for the server
  TANDEM_RETURN_IF_ERROR(EnsureConnected());
  Prepared p;
  p.name = "t" + std::to_string(next_statement_++);
  std::string numbered = NumberPlaceholders(sql, &p.params);
  PGresult* res = PQprepare(conn_, p.name.c_str(), numbered.c_str(), 0, nullptr);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && !std::strcmp(state, "42P18") && params.size() == static_cast<size_t>(p.params)) {
      // A parameter whose type the statement does not tell: type it by value.
      PQclear(res);
      std::vector<Oid> types;
      for (const Value& v : params)
        types.push_back(v.type() == ValueType::kInteger ? kInt8Oid
                        : v.type() == ValueType::kReal  ? kFloat8Oid
                        : v.type() == ValueType::kBlob  ? kByteaOid
                                                        : kTextOid);
      res = PQprepare(conn_, p.name.c_str(), numbered.c_str(), p.params, types.data());
    }
  }
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    Status st = ErrorOf(res, fmt::format("preparing [{}]", sql.substr(0, 200)));
    PQclear(res);
    return st;
  }
  PQclear(res);
  return &prepared_.emplace(sql, std::move(p)).first->second;
}

namespace {
// libpq's parameter arrays for `params`: text, except blobs (binary).
struct BoundParams {
  std::vector<std::string> text;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  Status Bind(const Row& params) {
    text.assign(params.size(), std::string());
    values.assign(params.size(), nullptr);
    lengths.assign(params.size(), 0);
    formats.assign(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      switch (v.type()) {
        case ValueType::kNull:
          continue;
        case ValueType::kInteger:
          text[i] = std::to_string(v.as_integer());
          break;
        case ValueType::kReal:
          text[i] = fmt::format("{}", v.as_real());
          break;
        case ValueType::kText:
          if (v.as_bytes().find('\0') != std::string::npos)
            return Status::Constraint("text with a NUL character cannot be stored in PostgreSQL");
          text[i] = v.as_bytes();
          break;
        case ValueType::kBlob:
          values[i] = v.as_bytes().data();
          lengths[i] = static_cast<int>(v.as_bytes().size());
          formats[i] = 1;
          continue;
      }
      values[i] = text[i].c_str();
      lengths[i] = static_cast<int>(text[i].size());
    }
    return Status::Ok();
  }
};
}  // namespace

Status PgSession::TakeResult(PGresult* res, const std::string& sql, const Prepared* p, std::vector<Row>* out,
                             int64_t* rows_changed) {
  ExecStatusType status = PQresultStatus(res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    Status st = res ? ErrorOf(res, fmt::format("executing [{}]", sql.substr(0, 200)))
                    : ConnectionLost(fmt::format("executing [{}]", sql.substr(0, 200)));
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    if (p && state && !std::strcmp(state, "0A000") && st.message().find("cached plan") != std::string::npos) {
      // A table's columns changed under a prepared statement: prepare it
      // again on the retry.
      to_deallocate_.push_back(p->name);
      prepared_.erase(sql);
      return Status::Unavailable(st.message() + " (the table changed; retrying with a fresh statement)");
    }
    return st;
  }
  if (out && status == PGRES_TUPLES_OK) {
    int rows = PQntuples(res), cols = PQnfields(res);
    out->reserve(out->size() + rows);
    for (int r = 0; r < rows; ++r) {
      Row row;
      row.reserve(cols);
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res, r, c)) row.push_back(Value::Null());
        else row.push_back(FromText(PQgetvalue(res, r, c), PQgetlength(res, r, c), PQftype(res, c)));
      }
      out->push_back(std::move(row));
    }
  }
  if (rows_changed) {
    const char* n = PQcmdTuples(res);
    *rows_changed = n && *n ? std::atoll(n) : 0;
  }
  return Status::Ok();
}

Result<const PgSession::Prepared*> PgSession::ReadyToRun(const std::string& sql, const Row& params) {
  if (broken_in_transaction_)
    return Status::Unavailable(fmt::format("{}: connection lost inside a transaction (it is rolled back)", display_));
  // Connected first: a new session has none of the old one's statements.
  if (sent_.empty()) TANDEM_RETURN_IF_ERROR(EnsureConnected());
  TANDEM_ASSIGN_OR_RETURN(const Prepared* p, PrepareOnce(sql, params));
  if (params.size() != static_cast<size_t>(p->params))
    return Status::Internal(fmt::format("[{}] takes {} parameters, got {}", sql.substr(0, 200), p->params,
                                        params.size()));
  return p;
}

Status PgSession::Run(const std::string& sql, const Row& params, std::vector<Row>* out, int64_t* rows_changed) {
  TANDEM_ASSIGN_OR_RETURN(const Prepared* p, ReadyToRun(sql, params));
  if (!sent_.empty()) {
    // Statements are waiting in the pipeline: this one joins them, and one
    // round trip reads every result.
    TANDEM_RETURN_IF_ERROR(SendPrepared(sql, *p, params, out, rows_changed));
    return Collect();
  }
  BoundParams bound;
  TANDEM_RETURN_IF_ERROR(bound.Bind(params));
  PGresult* res = PQexecPrepared(conn_, p->name.c_str(), p->params, bound.values.data(), bound.lengths.data(),
                                 bound.formats.data(), 0);
  Status st = TakeResult(res, sql, p, out, rows_changed);
  PQclear(res);
  for (const std::string& name : std::exchange(to_deallocate_, {})) (void)Script("DEALLOCATE " + name);
  return st;
}

Status PgSession::Send(const std::string& sql, const Row& params, std::vector<Row>* out) {
  TANDEM_ASSIGN_OR_RETURN(const Prepared* p, ReadyToRun(sql, params));
  return SendPrepared(sql, *p, params, out, nullptr);
}

Status PgSession::SendPrepared(const std::string& sql, const Prepared& p, const Row& params, std::vector<Row>* out,
                               int64_t* rows_changed) {
  if (sent_.empty() && !PQenterPipelineMode(conn_)) return PipelineBroken("entering pipeline mode");
  BoundParams bound;
  TANDEM_RETURN_IF_ERROR(bound.Bind(params));
  if (!PQsendQueryPrepared(conn_, p.name.c_str(), p.params, bound.values.data(), bound.lengths.data(),
                           bound.formats.data(), 0))
    return PipelineBroken(fmt::format("sending [{}]", sql.substr(0, 200)));
  sent_.push_back({sql, out, rows_changed});
  return Status::Ok();
}

Status PgSession::PipelineBroken(const std::string& what) {
  // The session's state is unknown: it is closed, so the next call starts a
  // new one (inside a transaction, once the caller has ended it).
  Status st = ConnectionLost(what);
  sent_.clear();
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  return st;
}

Status PgSession::Collect() {
  if (sent_.empty()) return Status::Ok();
  std::vector<Sent> sent = std::move(sent_);
  sent_.clear();
  if (!PQpipelineSync(conn_)) return PipelineBroken("sending a pipeline sync");
  Status first = Status::Ok();
  for (const Sent& s : sent) {
    PGresult* res = PQgetResult(conn_);
    if (!res) return PipelineBroken(fmt::format("executing [{}]", s.sql.substr(0, 200)));
    for (; res; res = PQgetResult(conn_)) {
      if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED && first.ok()) {
        auto it = prepared_.find(s.sql);
        first = TakeResult(res, s.sql, it == prepared_.end() ? nullptr : &it->second, s.out, s.rows_changed);
      }
      PQclear(res);
    }
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || !PQexitPipelineMode(conn_)) return PipelineBroken("ending a pipeline");
  if (!to_deallocate_.empty())
    for (const std::string& name : std::exchange(to_deallocate_, {})) (void)Script("DEALLOCATE " + name);
  return first;
}

Status PgSession::Script(const std::string& sql) {
  if (broken_in_transaction_)
    return Status::Unavailable(fmt::format("{}: connection lost inside a transaction (it is rolled back)", display_));
  TANDEM_RETURN_IF_ERROR(Collect());
  TANDEM_RETURN_IF_ERROR(EnsureConnected());
  PGresult* res = PQexec(conn_, sql.c_str());
  ExecStatusType status = PQresultStatus(res);
  Status st = Status::Ok();
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY)
    st = res ? ErrorOf(res, fmt::format("executing [{}]", sql.substr(0, 200)))
             : ConnectionLost(fmt::format("executing [{}]", sql.substr(0, 200)));
  PQclear(res);
  return st;
}

}  // namespace tandem
