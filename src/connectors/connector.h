// Connector: everything Tandem needs from one database, as one object
// implementing the connector roles, for SQLite and PostgreSQL (MariaDB next):
//
//   SqlSession    (sql_session.h)    statements, transactions, introspection
//   ChangeSource  (change_source.h)  the change log: positions, windows, history
//   ApplyTarget   (apply_target.h)   apply transactions, set writes, rejections, traits
//   CaptureDdl    (capture_ddl.h)    control tables and capture triggers
//
// A Connector is one session to one database: the roles are views of that one
// session (so a batch reads the log and the rows in one snapshot, and
// PostgreSQL pins work), and each role's session() is the connector itself.
// Code that needs one role takes that role; the engine, which needs all of
// them, holds Connectors. A database Tandem only reads (a load's source) or
// only writes implements SqlSession and the role it plays.
//
// Used by one thread at a time (the sync engine is single-threaded by design:
// directions run one after the other so that each sees the other's committed
// state). The connector owns everything dialect-specific: identifier quoting,
// capture triggers, echo suppression, change detection.
#pragma once

#include <memory>
#include <string>

#include "connectors/apply_target.h"
#include "connectors/capture_ddl.h"
#include "connectors/change_source.h"
#include "connectors/sql_session.h"
#include "core/status.h"

namespace tandem {

class Connector : public SqlSession, public ChangeSource, public ApplyTarget, public CaptureDdl {
 public:
  // Every role's session is this connector's.
  SqlSession& session() final { return *this; }
};

struct ConnectorOptions {
  int busy_timeout_ms = 5000;
  bool create_if_missing = false;
};
// Opens a connector for a resolved database URL: "sqlite:/abs/path.db", a
// postgresql:// URI or PostgreSQL keyword/value conninfo. Its errors show the
// target with the password masked (connectors/postgres/pg_target.h).
Result<std::unique_ptr<Connector>> OpenConnector(const std::string& url, const ConnectorOptions& options);

}  // namespace tandem
