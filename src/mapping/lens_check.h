// Lens check: does a mapping round-trip? `tandem check` samples rows on each
// side, maps them to the other side and back (legacy -> modern -> legacy and
// modern -> legacy -> modern) and names every column that does not come back
// as it was. Such a column is rewritten by the first sync that touches its
// record (a normalisation, or a mapping mistake), so users want to know
// before it touches production data.
//
// Lookups (foreign keys through key maps) are not followed: columns that
// depend on them are skipped.
#pragma once

#include <string>
#include <vector>

#include "connectors/sql_session.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct LensFinding {
  std::string entity;
  Side start;               // the side the sampled rows came from
  std::string column;       // a column of `start` that did not come back
  std::string example_before;
  std::string example_after;
  int rows_affected = 0;
  int rows_sampled = 0;
  // Non-empty: the sampled rows' values of field `column` would be put aside
  // when synced (mapping/exact_write.h); the first row's reason.
  std::string put_aside_reason;
  std::string ToString() const;
};

// Samples up to `sample_rows` rows of each entity on each side: columns that
// do not come back, and fields whose sampled values would be put aside.
Result<std::vector<LensFinding>> CheckLensRoundTrip(const CompiledMapping& mapping, SqlSession& legacy,
                                                    SqlSession& modern, int sample_rows);

// Maps one source row with `dm`'s rules, without following lookups.
// known[i] is false for rules that need a lookup (their value is NULL).
Status MapWithoutLookups(const DirectionMapping& dm, const Row& source_row, Row* out, std::vector<bool>* known);

}  // namespace tandem
