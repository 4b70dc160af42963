#include "engine/positions.h"

#include "core/clock.h"

namespace tandem {

Result<std::optional<PositionRow>> ReadPosition(SqlSession& target, const std::string& direction) {
  TANDEM_ASSIGN_OR_RETURN(auto stored, target.QueryOne("SELECT seq, applied_total, cursor, source_mark FROM "
                                                       "_tandem_position WHERE direction = ?",
                                                       {Value::Text(direction)}));
  if (!stored) return std::optional<PositionRow>();
  PositionRow p;
  p.seq = (*stored)[0].as_integer();
  p.applied_total = (*stored)[1].as_integer();
  p.cursor = (*stored)[2].is_null() ? "" : (*stored)[2].as_bytes();
  p.source_mark = (*stored)[3].is_null() ? "" : (*stored)[3].as_bytes();
  return std::optional<PositionRow>(std::move(p));
}

Status StorePositionLater(SqlSession& target, const std::string& direction, const PositionRow& position,
                          int64_t source_at_ms, const std::string& source_id) {
  return target.ExecLater(
      "INSERT INTO _tandem_position(direction, seq, applied_at_ms, source_at_ms, applied_total, cursor, source_id, "
      "source_mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(direction) DO UPDATE SET seq = excluded.seq, "
      "applied_at_ms = excluded.applied_at_ms, source_at_ms = excluded.source_at_ms, applied_total = "
      "excluded.applied_total, cursor = excluded.cursor, source_id = excluded.source_id, source_mark = "
      "excluded.source_mark",
      {Value::Text(direction), Value::Integer(position.seq), Value::Integer(Clock::Default()->NowMillis()),
       Value::Integer(source_at_ms), Value::Integer(position.applied_total),
       position.cursor.empty() ? Value::Null() : Value::Text(position.cursor), Value::Text(source_id),
       Value::Text(position.source_mark)});
}

Status AddEntityStatsLater(SqlSession& target, const std::string& direction,
                           const std::map<std::string, int64_t>& written) {
  for (auto& [entity, n] : written) {
    TANDEM_RETURN_IF_ERROR(target.ExecLater(
        "INSERT INTO _tandem_entity_stats(direction, entity, last_applied_at_ms, applied_total) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(direction, entity) DO UPDATE SET last_applied_at_ms = excluded.last_applied_at_ms, "
        "applied_total = _tandem_entity_stats.applied_total + excluded.applied_total",
        {Value::Text(direction), Value::Text(entity), Value::Integer(Clock::Default()->NowMillis()),
         Value::Integer(n)}));
  }
  return Status::Ok();
}

}  // namespace tandem
