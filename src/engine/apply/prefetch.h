// Prefetch: IN-list reads of many rows by key (DirectionSql's *_many
// statements), sent pipelined so reads of two databases overlap. The apply
// batch reads each chunk's facts this way (ApplyBatch::Prefetch); operator
// requests read single rows through them too.
#pragma once

#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/multi_row.h"
#include "connectors/sql_session.h"

namespace tandem {

// Sends SelectByKeysSql over `keys` (SqlSession::QueryLater): the answers
// land in `results` once `db` collects them.
Status SendSelectByKeys(SqlSession& db, const InListSql& sql, const std::vector<Row>& keys,
                        std::deque<std::vector<Row>>* results);

// The rows SendSelectByKeys received, keyed by EncodeKey of their first
// key_count columns.
void KeyRows(std::deque<std::vector<Row>>* results, size_t key_count, std::unordered_map<std::string, Row>* out);

// Runs SelectByKeysSql over `keys`; rows are keyed by EncodeKey of their first
// key_count columns.
Status SelectByKeys(SqlSession& db, const InListSql& sql, size_t key_count, const std::vector<Row>& keys,
                    std::unordered_map<std::string, Row>* out);

}  // namespace tandem
