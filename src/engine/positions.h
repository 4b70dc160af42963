// Positions: where each direction stands in its source's change log.
//
// The target stores its direction's position (_tandem_position) in the
// transaction that applied the changes up to it (store-with-data: a crash
// leaves both or neither), with the cursor the source needs to resume there
// (ChangeSource::PositionCursor), the source's id and its history mark at
// the position (engine/source_identity.h), and per entity how much was
// applied (_tandem_entity_stats, for `tandem status`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "connectors/sql_session.h"

namespace tandem {

// A direction's position as its target stores it.
struct PositionRow {
  int64_t seq = 0;
  int64_t applied_total = 0;
  std::string cursor;       // ChangeSource::PositionCursor at seq; "" for none
  std::string source_mark;  // ChangeSource::HistoryMark at seq; "" for none
};

// `direction`'s position stored in `target`; nullopt when it has none.
Result<std::optional<PositionRow>> ReadPosition(SqlSession& target, const std::string& direction);

// Stores `direction`'s position in `target`, with the capture time of the
// last change applied and the source's id. Sent with SqlSession::ExecLater:
// it travels with the commit, and a failure may surface at a later call.
// REQUIRES: inside the apply transaction that applied the changes up to it.
Status StorePositionLater(SqlSession& target, const std::string& direction, const PositionRow& position,
                          int64_t source_at_ms, const std::string& source_id);

// Adds `written` (records written, per entity) to `direction`'s statistics
// in `target`, sent as StorePositionLater is. Stops at the first failure.
Status AddEntityStatsLater(SqlSession& target, const std::string& direction,
                           const std::map<std::string, int64_t>& written);

}  // namespace tandem
