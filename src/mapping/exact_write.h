// Exact writes: the checks a mapped row passes before any of its values is
// written to the target, so that Tandem never writes a value that is not
// what the source holds (issue 11: strict conversions by default).
//
// A value is refused, with the field, the value and the reason, when:
//   - an expression yields NULL although one of its inputs is not NULL
//     (a date that does not parse, a failed conversion);
//   - the target column cannot hold it exactly (core/column_type.h
//     StoreValue: not a number, more decimals than numeric(p,s), too long...);
//   - mapped back by the other direction it does not come back as the source
//     holds it (CAST('n/a' AS INTEGER) is 0, and 0 is not 'n/a').
// A rule marked `lossy: true` skips all three.
#pragma once

#include <string>
#include <vector>

#include "mapping/entity_mapping.h"

namespace tandem {

// Fills DirectionMapping::round_trips/back_input of both directions of `em`
// (after both are compiled). Only directions that are both synced check
// round trips.
void PlanRoundTrips(EntityMapping& em);

// Checks the values `there` mapped from `source_row` (`mapped`, one per rule,
// the output of the rules) and converts them in place into what the target
// column stores. problems[i] is empty when rule i's value may be written,
// else a message naming the field, the value and why. `back` is the other
// direction of the same entity. Lookups are exact (key maps) and not checked.
// Returns an error only when an expression cannot be evaluated.
Status CheckExactWrite(const DirectionMapping& there, const DirectionMapping& back, const Row& source_row,
                       Row* mapped, std::vector<std::string>* problems);

// A value typed by a person (`tandem conflicts resolve --set field=TEXT`),
// as a column of `type` stores it: TEXT read as a code value (CodeValue),
// then StoreValue. Stricter than StoreValue where SQLite would keep text in
// a number column: a value that is not a number is refused there too. The
// error says why, without the column (the caller names it).
Result<Value> StoreTypedValue(const ColumnType& type, const std::string& text);

}  // namespace tandem
