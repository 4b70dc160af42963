#include "engine/source_identity.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "engine/sync_engine.h"

namespace tandem {

Result<std::string> ReadDatabaseId(SqlSession& db) {
  TANDEM_ASSIGN_OR_RETURN(auto table, db.DescribeTable("_tandem_identity"));
  if (!table) return std::string();
  TANDEM_ASSIGN_OR_RETURN(auto row, db.QueryOne("SELECT db_id FROM _tandem_identity ORDER BY db_id LIMIT 1", {}));
  return row && !(*row)[0].is_null() ? (*row)[0].as_bytes() : std::string();
}

Result<StoredPosition> LoadStoredPosition(SqlSession& target, const std::string& direction) {
  TANDEM_ASSIGN_OR_RETURN(auto row, target.QueryOne("SELECT seq, cursor, source_id, source_mark FROM _tandem_position "
                                                    "WHERE direction = ?",
                                                    {Value::Text(direction)}));
  StoredPosition out;
  if (!row) return out;
  out.exists = true;
  out.seq = (*row)[0].as_integer();
  if (!(*row)[1].is_null()) out.cursor = (*row)[1].as_bytes();
  if (!(*row)[2].is_null()) out.source_id = (*row)[2].as_bytes();
  if (!(*row)[3].is_null()) out.source_mark = (*row)[3].as_bytes();
  return out;
}

Result<SourceFinding> CheckSource(ChangeSource& source, Side source_side, const std::string& source_id,
                                  const StoredPosition& stored) {
  SourceFinding f;
  if (!stored.exists) return f;  // nothing applied from it yet: a new pair
  const Side target_side = Other(source_side);
  if (stored.source_id && !stored.source_id->empty() && !source_id.empty() && *stored.source_id != source_id) {
    f.kind = SourceFinding::Kind::kDifferentDatabase;
    f.culprit = source_side;
    f.what = fmt::format("it is another database (Tandem id {}) than the one position {} stored in the {} database "
                         "came from (Tandem id {})",
                         source_id, stored.seq, SideName(target_side), *stored.source_id);
    return f;
  }
  TANDEM_ASSIGN_OR_RETURN(auto history, source.CheckHistory(stored.seq, stored.cursor, stored.source_mark));
  using Verdict = ChangeSource::HistoryCheck::Verdict;
  if (history.verdict == Verdict::kSame) return f;
  f.kind = history.verdict == Verdict::kTargetBehind ? SourceFinding::Kind::kTargetBehind
                                                     : SourceFinding::Kind::kRestored;
  f.culprit = history.verdict == Verdict::kTargetBehind ? target_side : source_side;
  f.what = history.what;
  return f;
}

std::string StoppedMessage(const Config& config, Side source_side, const SqlSession& source,
                           const SourceFinding& f) {
  const Side target_side = Other(source_side);
  const char* dir = DirectionName(source_side);
  const char* culprit = SideName(f.culprit);
  const std::string accept = fmt::format("tandem accept-restored {} -c {}", culprit, config.path);
  const std::string repair =
      fmt::format("compare and repair the two databases first (changes that reached one side and are missing on the "
                  "other are not synced by accepting: `tandem reconcile --repair` once it exists, until then by "
                  "hand; see docs/operations.md)");
  switch (f.kind) {
    case SourceFinding::Kind::kNone:
      return "";
    case SourceFinding::Kind::kReplaced:
      return fmt::format("{} stopped: {} ({} database): {}. Both directions are stopped; nothing more is applied from "
                         "or to it. Restart 'tandem run': it checks the database it then finds at that path (the same "
                         "database with the same history goes on; a restored backup or another database is refused "
                         "with what to do)",
                         dir, source.Describe(), SideName(source_side), f.what);
    case SourceFinding::Kind::kDifferentDatabase:
      return fmt::format("{} stopped: the {} database {} is not the database Tandem synced: {}. Both directions are "
                         "stopped; nothing is applied until you act. If the URL is wrong, fix it in {}. If this is "
                         "the database you mean to sync from now on: {}; then run '{}'",
                         dir, culprit, source.Describe(), f.what, config.path, repair, accept);
    case SourceFinding::Kind::kRestored:
      return fmt::format("{} stopped: the {} database {} was restored from a backup (or recreated): {}. The {} "
                         "database holds a position in its old history; nothing is applied from it until you act. "
                         "If the restore was deliberate: {}; then run '{}', which syncs on from its log as it is now. "
                         "If it was not: put the right database back; nothing was applied from this one",
                         dir, culprit, source.Describe(), f.what, SideName(target_side), repair, accept);
    case SourceFinding::Kind::kTargetBehind:
      return fmt::format("{} stopped: the {} database was restored from a backup (it is older than what Tandem "
                         "applied to it): the {} database {}: {}. Nothing is applied to it in this direction until "
                         "you act. If the restore was deliberate: {}; then run '{}'",
                         dir, culprit, SideName(source_side), source.Describe(), f.what, repair, accept);
  }
  return f.what;
}

Status AcceptSource(ChangeSource& source, ApplyTarget& target, Side source_side, const std::string& reason) {
  const std::string dir = DirectionName(source_side);
  TANDEM_ASSIGN_OR_RETURN(std::string source_id, ReadDatabaseId(source.session()));
  TANDEM_ASSIGN_OR_RETURN(StoredPosition old, LoadStoredPosition(target.session(), dir));
  // The source's log end now (outside a transaction: a commit boundary),
  // counted from the start of its log: what is in it is taken as applied.
  TANDEM_RETURN_IF_ERROR(source.ResumeAt(0, ""));
  TANDEM_ASSIGN_OR_RETURN(int64_t end, source.MaxChangeSeq());
  const std::string cursor = source.PositionCursor(end);
  TANDEM_ASSIGN_OR_RETURN(std::string mark, source.HistoryMark(end));
  TANDEM_RETURN_IF_ERROR(target.BeginApply());
  Status st = target.session().Exec(
      "INSERT INTO _tandem_position(direction, seq, applied_at_ms, applied_total, cursor, source_id, source_mark) "
      "VALUES (?, ?, NULL, 0, ?, ?, ?) ON CONFLICT(direction) DO UPDATE SET seq = excluded.seq, cursor = "
      "excluded.cursor, source_id = excluded.source_id, source_mark = excluded.source_mark",
      {Value::Text(dir), Value::Integer(end), cursor.empty() ? Value::Null() : Value::Text(cursor),
       Value::Text(source_id), Value::Text(mark)});
  if (st.ok())
    st = target.session().Exec("INSERT INTO _tandem_audit(at_ms, action, detail) VALUES (?, 'accept-restored', ?)",
                     {Value::Integer(Clock::Default()->NowMillis()),
                      Value::Text(fmt::format("{}: position {} (source id {}) replaced by the end of the {} log of {} "
                                              "now, {} (source id {}); was stopped because: {}",
                                              dir, old.seq, old.source_id.value_or("unknown"), SideName(source_side),
                                              source.session().Describe(), end, source_id, reason))});
  if (!st.ok()) {
    target.RollbackApply();
    return st;
  }
  return target.CommitApply();
}

Result<std::optional<std::string>> StoppedDirectionMessage(const Config& config, ChangeSource& source, SqlSession& target,
                                                           Side source_side) {
  TANDEM_ASSIGN_OR_RETURN(std::string source_id, ReadDatabaseId(source.session()));
  TANDEM_ASSIGN_OR_RETURN(StoredPosition stored, LoadStoredPosition(target, DirectionName(source_side)));
  TANDEM_ASSIGN_OR_RETURN(SourceFinding finding, CheckSource(source, source_side, source_id, stored));
  if (finding.ok()) return std::optional<std::string>();
  return std::optional<std::string>(StoppedMessage(config, source_side, source.session(), finding));
}

Result<std::vector<std::string>> AcceptRestored(const Config& config, Connector& legacy, Connector& modern, Side side) {
  (void)config;
  auto db = [&](Side s) -> Connector& { return s == Side::kLegacy ? legacy : modern; };
  std::vector<std::string> done;
  SourceFinding findings[2];
  StoredPosition stored[2];
  bool other_database = false;
  for (Side source : {Side::kLegacy, Side::kModern}) {
    const int i = source == Side::kLegacy ? 0 : 1;
    TANDEM_ASSIGN_OR_RETURN(std::string source_id, ReadDatabaseId(db(source)));
    TANDEM_ASSIGN_OR_RETURN(stored[i], LoadStoredPosition(db(Other(source)), DirectionName(source)));
    TANDEM_ASSIGN_OR_RETURN(findings[i], CheckSource(db(source), source, source_id, stored[i]));
    other_database |= findings[i].kind == SourceFinding::Kind::kDifferentDatabase;
  }
  for (Side source : {Side::kLegacy, Side::kModern}) {
    const int i = source == Side::kLegacy ? 0 : 1;
    const SourceFinding& f = findings[i];
    // Another database behind a URL: which of the two is the other one
    // cannot be told from one position, so the operator's word decides, and
    // every direction starts from its source's log end (a direction that
    // never stored a position too: the log of the old pairing is not this one's).
    const bool accept = (!f.ok() && (f.culprit == side || f.kind == SourceFinding::Kind::kDifferentDatabase)) ||
                        (other_database && !stored[i].exists);
    if (!accept) continue;
    TANDEM_RETURN_IF_ERROR(AcceptSource(db(source), db(Other(source)), source, f.ok() ? "no position yet" : f.what));
    TANDEM_ASSIGN_OR_RETURN(StoredPosition now, LoadStoredPosition(db(Other(source)), DirectionName(source)));
    done.push_back(fmt::format("{}: position {} replaced by {}, the end of the {} database's log now ({}); recorded in "
                               "the {} database's _tandem_audit",
                               DirectionName(source), stored[i].seq, now.seq, SideName(source),
                               f.ok() ? "it had none" : f.what, SideName(Other(source))));
  }
  return done;
}

}  // namespace tandem
