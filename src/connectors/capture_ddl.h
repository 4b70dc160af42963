// CaptureDdl: the SQL that installs, checks and removes Tandem's control
// tables and capture triggers on a database (engine/installer.h runs it;
// engine/capture_health.h checks it).
//
// Everything is returned as statements for the caller to run (so `tandem
// install --dry-run` can print them) except the checks, which read the
// database on the connector's session.
#pragma once

#include <string>
#include <vector>

#include "connectors/sql_session.h"
#include "core/status.h"

namespace tandem {

// A table whose changes are captured, and the id its change-log rows carry.
struct CaptureTable {
  int id = 0;
  std::string table;
  std::vector<std::string> key_columns;
  std::vector<std::string> key_types;  // declared types of key_columns (DescribeTable); empty when unknown
};

class CaptureDdl {
 public:
  virtual ~CaptureDdl() = default;

  // The session the statements are run on and the checks read with.
  virtual SqlSession& session() = 0;

  // DDL creating Tandem's control tables (idempotent).
  virtual std::vector<std::string> ControlTablesSql() const = 0;
  // DDL bringing control tables made by an older Tandem up to date, to run
  // before ControlTablesSql(); empty when they are current or absent.
  virtual Result<std::vector<std::string>> UpgradeControlTablesSql() = 0;
  // DDL (re)creating capture for `table` (idempotent: drops and recreates its triggers).
  virtual std::vector<std::string> CaptureSql(const CaptureTable& table) const = 0;
  // DDL removing capture for `table`.
  virtual std::vector<std::string> DropCaptureSql(const CaptureTable& table) const = 0;
  // DDL dropping all control tables (`tandem uninstall --purge`).
  virtual std::vector<std::string> DropControlTablesSql() const = 0;
  // DDL dropping the control tables that hold capture state (change log,
  // capture list, positions, statistics, put-aside changes, conflicts), and
  // keeping the key map with its versions and bases (_tandem_records) and the
  // audit trail (_tandem_audit): what `tandem uninstall` runs, so that a
  // reinstall still knows which rows are one record. Positions go with the
  // log they point into: a reinstalled log starts afresh from position 0.
  virtual std::vector<std::string> DropRuntimeTablesSql() const = 0;
  // Tables DropRuntimeTablesSql keeps, as this database names them.
  static constexpr const char* kKeptByUninstall[] = {"_tandem_records", "_tandem_audit", "_tandem_gaps",
                                                     "_tandem_identity"};
  // True when the control tables exist.
  virtual Result<bool> IsInstalled() = 0;
  // Whether capture of `table` is in place as CaptureSql(table) makes it:
  // "" when it is, else what is wrong, naming the trigger ("trigger X is
  // missing" after a table rebuild dropped it, "... is disabled", "... is not
  // the one install makes" when stale).
  virtual Result<std::string> CaptureProblem(const CaptureTable& table) = 0;
};

}  // namespace tandem
