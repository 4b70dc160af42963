// DirectionSql: the statements one entity needs in one direction, built once
// per mapping from the connectors' quoting (the dialect stays in them).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/apply_target.h"
#include "connectors/sql_session.h"
#include "connectors/multi_row.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct DirectionSql {
  InListSql select_source_many;    // source_columns by source keys
  std::string select_target;       // target key + rule target columns by target key
  InListSql select_target_many;    // the same by target keys
  std::string delete_target;
  std::string insert_with_key;     // target key columns, then rule target columns
  std::string insert_without_key;  // rule target columns only (the database assigns the key)
  std::string insert_with_key_head;            // insert_with_key up to its VALUES list
  std::unordered_map<size_t, std::string> insert_many;  // by row count: multi-row insert_with_key + returning
  // Where the target keeps values in its own form (TargetTraits::
  // stores_values_in_own_form): " RETURNING <rule target columns>", so the
  // version both sides agree on is the stored one; empty elsewhere.
  std::string returning;
};

// The statements of `dm` (source rows read from `src`, written to `dst`).
DirectionSql BuildDirectionSql(const SqlSession& src, ApplyTarget& dst, const DirectionMapping& dm);

// "a, b" of quoted `cols`, each followed by `suffix`.
std::string JoinQuoted(const SqlSession& db, const std::vector<std::string>& cols, const std::string& sep,
                       const std::string& suffix = "");
// " WHERE k1 = ? AND k2 = ?"
std::string WhereKey(const SqlSession& db, const std::vector<std::string>& key_cols);
// SELECT `columns` FROM `table` WHERE key IN (...) `suffix`, for each IN-list length.
InListSql SelectByKeysSql(const SqlSession& db, const std::string& table, const std::vector<std::string>& columns,
                          const std::vector<std::string>& key_columns, const std::string& suffix = "");

}  // namespace tandem
