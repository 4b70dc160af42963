// Type check: what `tandem check` knows from the two databases' declared
// column types alone, before any row exists (issue 11). Each finding names
// the config's file:line and has a hint.
//
// Errors (the mapping cannot work): a NOT NULL column without a default that
// no rule fills on a side that receives inserts; `new_keys` that do not fit
// the key column's type; a copy between types that can never hold each
// other's values (a date into a boolean). Warnings (some values may be put
// aside, or come back in another form): a copy into a narrower or another
// type (text into integer, numeric(12,4) into numeric(12,2), bigint into
// integer, text into varchar(n), double into real, timestamptz into
// timestamp...); a lookup whose column type differs from the parent's key.
// Code-map values a column cannot hold are reported by CompileMapping.
#pragma once

#include <vector>

#include "connectors/sql_session.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct TypeFinding {
  bool error = false;
  ConfigProblem problem;
};

Result<std::vector<TypeFinding>> CheckTypes(const CompiledMapping& mapping, SqlSession& legacy, SqlSession& modern);

}  // namespace tandem
