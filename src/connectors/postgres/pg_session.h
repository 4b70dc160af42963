// PgSession: one libpq connection, with Tandem's conventions.
//
// - Statements use `?` placeholders (as everywhere in Tandem); they are
//   rewritten to $1..$n once and kept as prepared statements per SQL text.
// - Parameters are sent as text of unknown type, so the server converts them
//   to the column's type (an integer into numeric or boolean, text into date,
//   uuid, jsonb...). Blobs go as binary bytea.
// - Results come back as Values by column type: integers (int2/4/8, oid) as
//   integers, float4/8 as reals, boolean as 0/1, bytea as blobs, numeric as an
//   integer or real when that is exact and as text otherwise, everything else
//   (text, uuid, date, timestamp[tz], json[b], ...) as its text form. The
//   session runs with TimeZone UTC and DateStyle ISO, so timestamps read the
//   same whatever the server's defaults.
// - Errors carry the server's message, detail and SQLSTATE. A lost or refused
//   connection, a serialization failure, a deadlock or a lock timeout is
//   Status::Unavailable (retryable); an integrity or data error is
//   Status::Constraint (the row is rejected); anything else is Internal.
// - A connection lost inside a transaction stays failed until the caller
//   ends the transaction (Rollback), so a half-done transaction can never be
//   continued on a fresh connection. Outside a transaction the next call
//   reconnects.
//
// Not thread-safe: one thread at a time, like every Connector.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/value.h"

namespace tandem {

// The settings that fix how values print as text: "SET name = value" clauses
// joined by `separator`. Tandem's sessions run with them, and so do the
// capture functions, so a key any writer logs reads back exactly as Tandem
// reads it from the row, whatever that writer's own time zone, date style,
// float digits or bytea output.
std::string TextFormSettings(const char* separator);

class PgSession {
 public:
  // `url`: a libpq URI or conninfo string. `lock_timeout_ms` bounds waits for
  // row and table locks (like SQLite's busy timeout). The passwords it may
  // use (the target's, PGPASSWORD's, the password file's) are registered as
  // secrets (core/secrets.h); its messages never show them.
  static Result<std::unique_ptr<PgSession>> Connect(const std::string& url, int lock_timeout_ms);
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // "postgresql://user@host:port/db" (never the password).
  const std::string& display() const { return display_; }

  // One statement with `?` parameters. `out` (optional) receives its rows.
  Status Run(const std::string& sql, const Row& params, std::vector<Row>* out = nullptr,
             int64_t* rows_changed = nullptr);
  // Several statements without parameters (DDL scripts, BEGIN/COMMIT).
  Status Script(const std::string& sql);

  // Pipelining (libpq pipeline mode): sends one statement whose result
  // nothing needs at once, without waiting for the server. The next call that
  // waits (Run, Script, Collect) sends the rest with it and reads every result
  // in that one round trip; it fails with the first failure among the
  // statements sent (in a transaction, the statements after a failure are
  // not run). `params` as for Run; `out` (optional, must stay alive)
  // receives the statement's rows by the time that call returns ok.
  Status Send(const std::string& sql, const Row& params = {}, std::vector<Row>* out = nullptr);
  // Waits for the statements sent; the first failure among them.
  Status Collect();

  // Takes the advisory lock `key` for this session, and again after every
  // reconnect; Busy (not retryable) when another session holds it.
  Status HoldSessionLock(int64_t key);

  // Transaction state as the caller declared it (see the class comment).
  void set_in_transaction(bool in) {
    in_transaction_ = in;
    if (!in) broken_in_transaction_ = false;
  }
  bool in_transaction() const { return in_transaction_; }
  // How many times this session connected (1 after Connect; more after reconnects).
  int64_t connects() const { return connects_; }

  PGconn* raw() { return conn_; }

  // `?` -> `$n`, outside string literals, quoted identifiers and comments.
  static std::string NumberPlaceholders(const std::string& sql, int* count);
  // A result value from its text form and type oid.
  static Value FromText(const char* text, int length, unsigned int type_oid);

 private:
  PgSession() = default;
  Status EnsureConnected();
  Status Configure();
  Status ErrorOf(const PGresult* res, const std::string& what);
  Status ConnectionLost(const std::string& what);
  // A pipeline failed part-way: ConnectionLost, and the session is closed.
  Status PipelineBroken(const std::string& what);

  PGconn* conn_ = nullptr;
  std::string url_;
  std::string display_;
  int lock_timeout_ms_ = 5000;
  bool in_transaction_ = false;
  int64_t connects_ = 0;
  std::optional<int64_t> session_lock_;
  bool broken_in_transaction_ = false;
  struct Prepared {
    std::string name;
    int params = 0;
  };
  std::unordered_map<std::string, Prepared> prepared_;
  int next_statement_ = 0;
  // Statements sent in pipeline mode whose results are not read yet.
  struct Sent {
    std::string sql;
    std::vector<Row>* out = nullptr;  // the waiting statement's rows (Run)
    int64_t* rows_changed = nullptr;
  };
  std::vector<Sent> sent_;
  std::vector<std::string> to_deallocate_;  // statements a table change spoiled, dropped after the pipeline

  // The statement prepared for `sql`, preparing it first (waits).
  Result<const Prepared*> PrepareOnce(const std::string& sql, const Row& params);
  // Run and Send's common start: a usable session, the statement prepared,
  // and as many parameters as it takes.
  Result<const Prepared*> ReadyToRun(const std::string& sql, const Row& params);
  // Sends a prepared statement in pipeline mode (entering it if needed).
  Status SendPrepared(const std::string& sql, const Prepared& p, const Row& params, std::vector<Row>* out,
                      int64_t* rows_changed);
  // A statement's result: its failure, or its rows into out/rows_changed.
  Status TakeResult(PGresult* res, const std::string& sql, const Prepared* p, std::vector<Row>* out,
                    int64_t* rows_changed);
};

}  // namespace tandem
