// ConflictQueue: what `tandem conflicts` shows, read from both databases'
// _tandem_conflicts tables (each direction records the conflicts it meets in
// the database it writes to). Works whether or not `tandem run` is running.
//
// A conflict row is 'settled' (a policy chose the winner), 'open' (policy
// manual: the record waits until a person settles it) or 'resolved' (settled
// by `tandem conflicts resolve`). Rows are never deleted: they are the audit
// trail of every value that lost.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "connectors/sql_session.h"
#include "mapping/config.h"

namespace tandem {

struct ConflictFilter {
  std::string entity;  // empty: all entities
  bool all = false;    // include settled and resolved conflicts, not only open ones
  int limit = 1000;    // newest first, per database
  // Only one record's conflicts (its encoded keys, as stored).
  bool one_record = false;
  std::string lkey, mkey;
};

// Conflicts matching `filter`, newest first. Each has an id "legacy:N" or
// "modern:N" (the database that holds it, and its row id).
Result<nlohmann::json> ListConflicts(SqlSession& legacy, SqlSession& modern, const ConflictFilter& filter);
// One line per conflict, for a terminal.
std::string RenderConflictsText(const nlohmann::json& conflicts, bool all);

// One conflict (id N stored in `stored`'s database) with every conflict row
// of its record (both databases, any status: the fields in conflict, both
// versions in the field's terms, the base) and the record's current rows on
// both sides, column by column.
Result<nlohmann::json> ShowConflict(const Config& config, SqlSession& legacy, SqlSession& modern, Side stored,
                                    int64_t id);
std::string RenderConflictText(const nlohmann::json& shown);

}  // namespace tandem
