// CaptureHealth: is Tandem's capture in place on a database as `tandem
// install` made it, and where was it missing?
//
// Capture lives in triggers, and ordinary operations take them away: the
// standard SQLite table rebuild (create a new table, copy, drop the old one,
// rename) drops them with the old table; a DBA may drop or disable one. A
// table without capture changes silently: nothing reaches the change log.
// So the engine checks capture at start and whenever a schema changes,
// pauses the entities of a table whose capture is broken (with the reason),
// and records a *gap* in that database's _tandem_gaps: the changes made while
// capture was missing were never captured and need a compare-and-repair.
// `tandem install` repairs capture and closes open gaps as repaired; a gap
// stays listed (status, check) until an operator clears it.
#pragma once

#include <string>
#include <vector>

#include "connectors/connector.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct CaptureIssue {
  std::string table;
  std::string problem;  // CaptureDdl::CaptureProblem's text
};

// The CaptureTable that install makes for `spec` with table id `id` (key
// types from the table's definition, when it exists).
Result<CaptureTable> CaptureTableFor(const CapturedTableSpec& spec, int id, SqlSession& db);

// The capture of every table `mapping` captures on `side` that exists on
// `db`. A table the mapping captures that install never registered is an
// issue too. REQUIRES: the control tables exist on `db`.
Result<std::vector<CaptureIssue>> CheckCapture(const CompiledMapping& mapping, Side side, CaptureDdl& db);

// A stretch of time when capture of a table was missing.
struct CaptureGap {
  int64_t id = 0;
  std::string table;
  std::string problem;
  int64_t noticed_at_ms = 0;
  int64_t repaired_at_ms = 0;  // 0 while capture is still missing
};

// Records that capture of `table` is missing (noticed now), unless a gap of
// that table is already open (not repaired). Returns true when one was added.
Result<bool> RecordCaptureGap(SqlSession& db, const std::string& table, const std::string& problem, int64_t now_ms);
// The SQL install runs to mark the open gaps of `table` repaired at `now_ms`.
std::string CloseCaptureGapsSql(SqlSession& db, const std::string& table, int64_t now_ms);
// Gaps an operator has not cleared yet, oldest first.
Result<std::vector<CaptureGap>> UnclearedCaptureGaps(SqlSession& db);
// Clears a gap (or all, id < 0) after the operator compared and repaired the
// table; audited. Returns how many were cleared.
Result<int64_t> ClearCaptureGaps(Connector& db, int64_t id, int64_t now_ms);

// The standard advice for a gap, for messages.
std::string CaptureGapAdvice(const std::string& config_path);

}  // namespace tandem
