// PgConnector as a ChangeSource: change windows over snapshots (ticks),
// pinned snapshots, positions and their cursors, and the history mark
// (connectors/postgres/pg_connector.h explains the model).
#include <cinttypes>
#include <cstdio>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connectors/postgres/pg_connector.h"

namespace tandem {

namespace {
constexpr const char* kLogColumns = "id, table_id, op, k1, k2, k3, k4, o1, o2, o3, o4, at_ms";
// How many log rows the statement's snapshot sees that snapshot `?` did not,
// and the largest of their ids: the columns after SELECT ... that make a
// window ending at the statement's snapshot.
constexpr const char* kNewSinceSnapshot = "count(*), coalesce(max(id), 0) FROM tandem._tandem_log WHERE NOT "
                                          "pg_visible_in_snapshot(tx, ?::pg_snapshot)";

}  // namespace

// --- the read transaction and pinned snapshots ---

Status PgConnector::BeginReadAfter(int64_t position) {
  ReleasePins(position);
  // A pin kept past kPinMaxAge (the engine cannot apply, say) holds back the
  // source's vacuum for nothing: it goes, and a batch only gets longer.
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < pins_.size();) {
    if (now - pins_[i].taken_at < kPinMaxAge) {
      ++i;
      continue;
    }
    EndPin(std::move(pins_[i].session));
    pins_.erase(pins_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (pins_.empty()) return BeginRead();
  // Imported at once: a pin whose session is gone is dropped with the rest,
  // and the read goes on in a snapshot of its own. The snapshot id comes
  // from the server; sent as a script, it leaves no prepared statement behind.
  Status st = session_->Script("BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '" +
                               pins_.front().exported + "'");
  session_->set_in_transaction(true);
  if (st.ok()) {
    in_read_ = true;
    read_pin_ = pins_.front().seq;
    return Status::Ok();
  }
  (void)End("ROLLBACK");
  spdlog::info("{}: a pinned snapshot is gone ({}); reading in a new one", Describe(), st.message());
  ReleasePins(std::numeric_limits<int64_t>::max());
  return BeginRead();
}

void PgConnector::ReleasePins(int64_t seq) {
  size_t n = 0;
  while (n < pins_.size() && pins_[n].seq <= seq) ++n;
  for (size_t i = 0; i < n; ++i) EndPin(std::move(pins_[i].session));
  pins_.erase(pins_.begin(), pins_.begin() + static_cast<std::ptrdiff_t>(n));
}

void PgConnector::EndPin(std::unique_ptr<PgSession> session) {
  session->set_in_transaction(false);
  if (session->Script("COMMIT").ok() && spare_sessions_.size() < kMaxSpareSessions)
    spare_sessions_.push_back(std::move(session));
}

void PgConnector::PinIfBehind(int64_t spacing) {
  if (pins_.size() >= kMaxPins || known_ticks_.empty()) return;
  std::unique_ptr<PgSession> s;
  if (!spare_sessions_.empty()) {
    s = std::move(spare_sessions_.back());
    spare_sessions_.pop_back();
  } else {
    auto opened = PgSession::Connect(url_, lock_timeout_ms_);
    if (!opened.ok()) {
      spdlog::debug("{}: no session to pin a snapshot on: {}", Describe(), opened.status().message());
      return;
    }
    s = std::move(opened).value();
  }
  const auto& [last, last_snap] = *known_ticks_.rbegin();
  // Cheap first: how far the log's newest id moved since the newest tick.
  std::vector<Row> rows;
  Status st = s->Run("SELECT coalesce(max(id), 0) FROM tandem._tandem_log", {}, &rows);
  if (st.ok() && !rows.empty() && rows[0][0].as_integer() - newest_tick_max_id_ < spacing) {
    spare_sessions_.push_back(std::move(s));
    return;
  }
  // The pin: a snapshot that stays open, and the changes it adds after the newest tick.
  rows.clear();
  if (st.ok()) st = s->Send("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  s->set_in_transaction(true);
  if (st.ok())
    st = s->Run(std::string("SELECT pg_current_snapshot()::text, pg_export_snapshot(), ") + kNewSinceSnapshot,
                {Value::Text(last_snap)}, &rows);
  if (!st.ok() || rows.empty() || rows[0][2].as_integer() == 0) {
    if (!st.ok()) spdlog::debug("{}: pinning a snapshot failed: {}", Describe(), st.message());
    s->set_in_transaction(false);
    if (s->Script(st.ok() ? "COMMIT" : "ROLLBACK").ok()) spare_sessions_.push_back(std::move(s));
    return;
  }
  const int64_t seq = last + rows[0][2].as_integer();
  known_ticks_.emplace(seq, rows[0][0].as_bytes());
  newest_tick_max_id_ = std::max(newest_tick_max_id_, rows[0][3].as_integer());
  pins_.push_back(Pin{seq, rows[0][1].as_bytes(), std::move(s), std::chrono::steady_clock::now()});
  spdlog::debug("{}: pinned the snapshot ending position {}", Describe(), seq);
}

// --- positions: ticks over snapshots ---

// A snapshot in which no transaction is visible: position 0 is before every change.
constexpr const char* kBeforeEverything = "1:1:";

// A position inside a window (a target transaction bounded by
// sync.max_txn_ms ends there) is stored as
// "mid:<start seq>:<end seq>:<last log id>|<start snapshot>|<end snapshot>":
// the rest of the window is its rows with a larger id.
constexpr std::string_view kMidWindow = "mid:";

Status PgConnector::ResumeAt(int64_t seq, const std::string& cursor) {
  if (seq != 0 && cursor.empty())
    return Status::InvalidArgument(fmt::format("{}: position {} has no stored snapshot (made by an older version?): "
                                               "run 'tandem install' again",
                                               Describe(), seq));
  ReleasePins(std::numeric_limits<int64_t>::max());  // numbered after ticks that are gone
  known_ticks_.clear();
  cursor_ = Cursor{};
  head_ = WindowHead{};
  newest_tick_max_id_ = 0;
  if (cursor.rfind(kMidWindow, 0) == 0) {
    int64_t start = 0, end = 0, id = 0;
    const size_t bar1 = cursor.find('|'), bar2 = cursor.find('|', bar1 == std::string::npos ? 0 : bar1 + 1);
    if (bar1 == std::string::npos || bar2 == std::string::npos ||
        std::sscanf(cursor.c_str() + kMidWindow.size(), "%" SCNd64 ":%" SCNd64 ":%" SCNd64, &start, &end, &id) != 3 ||
        !(start < seq && seq < end))
      return Status::InvalidArgument(fmt::format("{}: position {} has an unreadable stored cursor '{}'", Describe(),
                                                 seq, cursor));
    known_ticks_.emplace(start, cursor.substr(bar1 + 1, bar2 - bar1 - 1));
    known_ticks_.emplace(end, cursor.substr(bar2 + 1));
    cursor_ = Cursor{seq, id, end};  // the window goes on after log id `id`
    return Status::Ok();
  }
  known_ticks_.emplace(seq, cursor.empty() ? kBeforeEverything : cursor);
  return Status::Ok();
}

std::string PgConnector::PositionCursor(int64_t seq) const {
  auto it = known_ticks_.find(seq);
  if (it != known_ticks_.end()) return it->second;
  // Inside the window ReadChanges is reading: where it stopped.
  auto end = known_ticks_.upper_bound(seq);
  if (cursor_.seq != seq || end == known_ticks_.begin() || end == known_ticks_.end() ||
      end->first != cursor_.window_end)
    return "";
  auto start = std::prev(end);
  return fmt::format("{}{}:{}:{}|{}|{}", kMidWindow, start->first, end->first, cursor_.id, start->second, end->second);
}

Result<int64_t> PgConnector::MaxChangeSeq() {
  // The changes the newest window's snapshot did not see, counted in this
  // statement's snapshot (inside a read transaction: that transaction's),
  // which becomes the next window's end.
  if (known_ticks_.empty()) known_ticks_.emplace(0, kBeforeEverything);
  head_ = WindowHead{};
  if (in_read_ && read_pin_ >= 0) return read_pin_;  // the read is in that pin's snapshot
  const auto [last, last_snap] = *known_ticks_.rbegin();
  int64_t n = 0, max_id = 0;
  std::string snap;
  if (in_read_) {
    // In the read transaction every statement sees its snapshot, so the log
    // rows it sees that the newest window's snapshot did not are exactly the
    // next window: its first rows and its end travel in one round trip, and
    // only a window longer than that needs counting.
    // Both answers land in members: an error between Send and Collect
    // leaves no answer pointing at a local.
    TANDEM_RETURN_IF_ERROR(session_->Send("SELECT pg_current_snapshot()::text", {}, &head_.snapshot));
    TANDEM_RETURN_IF_ERROR(session_->Send(
        fmt::format("SELECT {} FROM tandem._tandem_log WHERE NOT pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER "
                    "BY id LIMIT ?",
                    kLogColumns),
        {Value::Text(last_snap), Value::Integer(kWindowHeadRows + 1)}, &head_.rows));
    TANDEM_RETURN_IF_ERROR(session_->Collect());
    if (head_.snapshot.empty()) return Status::Internal("pg_current_snapshot() returned no row");
    snap = head_.snapshot[0][0].as_bytes();
    n = static_cast<int64_t>(head_.rows.size());
    if (n > 0) max_id = head_.rows.back()[0].as_integer();
    if (n > kWindowHeadRows) {
      head_.rows.pop_back();
      TANDEM_ASSIGN_OR_RETURN(auto count,
                              QueryOne(std::string("SELECT ") + kNewSinceSnapshot, {Value::Text(last_snap)}));
      n = (*count)[0].as_integer();
      max_id = (*count)[1].as_integer();
    }
  } else {
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(std::string("SELECT pg_current_snapshot()::text, ") + kNewSinceSnapshot,
                                               {Value::Text(last_snap)}));
    snap = (*row)[0].as_bytes();
    n = (*row)[1].as_integer();
    max_id = (*row)[2].as_integer();
  }
  if (n == 0) return last;
  const int64_t end = last + n;
  known_ticks_.emplace(end, std::move(snap));
  newest_tick_max_id_ = std::max(newest_tick_max_id_, max_id);
  if (!head_.rows.empty()) head_.window_end = end;
  return end;
}

Result<std::pair<PgConnector::Tick, std::optional<PgConnector::Tick>>> PgConnector::WindowAround(int64_t seq) {
  auto after = known_ticks_.upper_bound(seq);
  if (after == known_ticks_.begin())
    return Status::Internal(fmt::format("{}: no change window at or before position {}", Describe(), seq));
  auto start = std::prev(after);
  std::pair<Tick, std::optional<Tick>> out;
  out.first = {start->first, start->second};
  if (after != known_ticks_.end()) out.second = Tick{after->first, after->second};
  return out;
}

Result<const std::vector<unsigned>*> PgConnector::KeyTypes(int table_id) {
  auto it = key_types_.find(table_id);
  if (it != key_types_.end()) return &it->second;
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT table_name, key_columns FROM tandem._tandem_capture WHERE "
                                             "table_id = ?",
                                             {Value::Integer(table_id)}));
  std::vector<unsigned> types;
  if (row) {
    std::string cols = (*row)[1].as_bytes();
    size_t pos = 0;
    while (pos <= cols.size()) {
      size_t comma = cols.find(',', pos);
      std::string col = cols.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      // A domain's values arrive typed as its base type.
      TANDEM_ASSIGN_OR_RETURN(auto t, QueryOne("SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::bigint FROM "
                                               "pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = "
                                               "to_regclass(?) AND a.attname = ?",
                                               {Value::Text(QuoteIdent((*row)[0].as_bytes())), Value::Text(col)}));
      types.push_back(t ? static_cast<unsigned>((*t)[0].as_integer()) : 25u);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return &key_types_.emplace(table_id, std::move(types)).first->second;
}

Status PgConnector::ReadChanges(int64_t after, int64_t upto, size_t limit, std::vector<CapturedChange>* out) {
  size_t got = 0;
  while (got < limit && after < upto) {
    TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(after));
    if (!window.second)  // `upto` came from MaxChangeSeq, which records its window first
      return Status::Internal(fmt::format("{}: no change window recorded after position {} (up to {})", Describe(),
                                          after, upto));
    const Tick& start = window.first;
    const Tick& end = *window.second;
    const int64_t want = std::min<int64_t>(static_cast<int64_t>(limit - got), upto - after);
    std::vector<Row> fetched;
    const std::vector<Row>* rows = &fetched;
    size_t first = 0, count = 0;
    if (head_.window_end == end.seq && after - start.seq < static_cast<int64_t>(head_.rows.size())) {
      // The window's first rows came with its end (MaxChangeSeq).
      rows = &head_.rows;
      first = static_cast<size_t>(after - start.seq);
      count = std::min<size_t>(static_cast<size_t>(want), head_.rows.size() - first);
    } else {
      // Within a window, go on from where the last read stopped.
      int64_t from_id = 0, skip = after - start.seq;
      if (cursor_.window_end == end.seq && cursor_.seq == after) {
        from_id = cursor_.id;
        skip = 0;
      }
      TANDEM_RETURN_IF_ERROR(session_->Run(
          fmt::format("SELECT {} FROM tandem._tandem_log WHERE id > ? AND pg_visible_in_snapshot(tx, ?::pg_snapshot) "
                      "AND NOT pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER BY id LIMIT ? OFFSET ?",
                      kLogColumns),
          {Value::Integer(from_id), Value::Text(end.snap), Value::Text(start.snap), Value::Integer(want),
           Value::Integer(skip)},
          &fetched));
      count = fetched.size();
    }
    int64_t seq = after;
    for (size_t i = first; i < first + count; ++i) {
      const Row& r = (*rows)[i];
      CapturedChange c;
      c.seq = ++seq;
      c.table_id = static_cast<int>(r[1].as_integer());
      c.op = static_cast<ChangeOp>(r[2].as_integer());
      TANDEM_ASSIGN_OR_RETURN(const std::vector<unsigned>* types, KeyTypes(c.table_id));
      auto typed = [&](const Value& v, size_t k) {
        if (v.is_null() || k >= types->size()) return v;
        return PgSession::FromText(v.as_bytes().data(), static_cast<int>(v.as_bytes().size()), (*types)[k]);
      };
      c.key.reserve(kMaxKeyColumns);
      for (int k = 0; k < kMaxKeyColumns; ++k) c.key.push_back(typed(r[3 + k], k));
      if (c.op == ChangeOp::kKeyChange)
        for (int k = 0; k < kMaxKeyColumns; ++k) c.old_key.push_back(typed(r[7 + k], k));
      c.captured_at_ms = r[11].as_integer();
      cursor_ = {c.seq, r[0].as_integer(), end.seq};
      out->push_back(std::move(c));
    }
    got += count;
    if (seq >= upto && seq < end.seq) return Status::Ok();  // stopped inside the window, at `upto`
    if (rows == &head_.rows && seq < end.seq) {
      after = seq;  // the rest of the window is read from the log
      continue;
    }
    if (static_cast<int64_t>(count) < want || seq >= end.seq) {
      // The window is done (a shorter one than its tick says would mean
      // purged rows): the next read starts at the following window.
      if (seq < end.seq && !out->empty()) out->back().seq = end.seq;
      after = end.seq;
      if (count == 0 && seq < end.seq) return Status::Ok();
    } else {
      after = seq;
    }
  }
  return Status::Ok();
}

Status PgConnector::PurgeChanges(int64_t before) {
  // The changes of every window up to `before` are applied: they are the ones
  // its end snapshot sees. Windows before it are no longer needed (it stays,
  // as the start of the next one).
  TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(before));
  constexpr int64_t kChunk = 10000;
  while (true) {
    int64_t changed = 0;
    TANDEM_RETURN_IF_ERROR(session_->Run(
        "DELETE FROM tandem._tandem_log WHERE id IN (SELECT id FROM tandem._tandem_log WHERE "
        "pg_visible_in_snapshot(tx, ?::pg_snapshot) ORDER BY id LIMIT ?)",
        {Value::Text(window.first.snap), Value::Integer(kChunk)}, nullptr, &changed));
    if (changed < kChunk) break;
  }
  known_ticks_.erase(known_ticks_.begin(), known_ticks_.lower_bound(window.first.seq));
  return Status::Ok();
}

Result<Connector::PendingInfo> PgConnector::PendingChanges(int64_t after, int table_id) {
  TANDEM_ASSIGN_OR_RETURN(auto window, WindowAround(after));
  TANDEM_ASSIGN_OR_RETURN(auto p, QueryOne("SELECT count(*), coalesce(min(at_ms), 0) FROM tandem._tandem_log WHERE "
                                           "table_id = ? AND NOT pg_visible_in_snapshot(tx, ?::pg_snapshot)",
                                           {Value::Integer(table_id), Value::Text(window.first.snap)}));
  return PendingInfo{(*p)[0].as_integer(), (*p)[1].as_integer()};
}

Result<Value> PgConnector::NewestCaptureMillis(const std::string& table, const Row& key) {
  std::string sql = "SELECT max(l.at_ms) FROM tandem._tandem_log l JOIN tandem._tandem_capture c ON c.table_id = "
                    "l.table_id WHERE c.table_name = ?";
  Row params{Value::Text(table)};
  for (size_t i = 0; i < key.size(); ++i) {
    sql += fmt::format(" AND l.k{} = ?::text", i + 1);
    params.push_back(key[i].type() == ValueType::kBlob ? Value::Text(key[i].ToDisplay()) : key[i]);
  }
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(sql, params));
  return row ? (*row)[0] : Value::Null();
}

// --- history ---

Result<std::string> PgConnector::HistoryMark(int64_t /*seq*/) {
  if (!incarnation_.empty() && session_->connects() == incarnation_connects_) return incarnation_;
  // pg_control_* need superuser or pg_monitor (PostgreSQL 15: execute is
  // granted to them only): without it the mark has the database's oid alone.
  TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne(
      "SELECT (SELECT oid::bigint FROM pg_database WHERE datname = current_database()), CASE WHEN "
      "has_function_privilege('pg_control_system()', 'execute') THEN (SELECT system_identifier::text FROM "
      "pg_control_system()) END, CASE WHEN has_function_privilege('pg_control_checkpoint()', 'execute') THEN (SELECT "
      "timeline_id::bigint FROM pg_control_checkpoint()) END",
      {}));
  auto text = [](const Value& v) { return v.is_null() ? std::string("?") : v.ToCodeText(); };
  incarnation_ = fmt::format("pg system={} database={} timeline={}", text((*row)[1]), text((*row)[0]),
                             text((*row)[2]));
  incarnation_connects_ = session_->connects();
  return incarnation_;
}

namespace {
// "system=X database=Y timeline=Z" -> the value of `key` ("" when absent).
std::string MarkField(const std::string& mark, const std::string& key) {
  auto at = mark.find(" " + key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  auto end = mark.find(' ', at);
  return mark.substr(at, end == std::string::npos ? std::string::npos : end - at);
}
// The xmax of a pg_snapshot's text form "xmin:xmax:xip,...".
std::optional<uint64_t> SnapshotXmax(const std::string& snap) {
  auto a = snap.find(':');
  if (a == std::string::npos) return std::nullopt;
  auto b = snap.find(':', a + 1);
  try {
    return std::stoull(snap.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1));
  } catch (...) {
    return std::nullopt;
  }
}
}  // namespace

Result<Connector::HistoryCheck> PgConnector::CheckHistory(int64_t seq, const std::string& cursor,
                                                          const std::string& mark) {
  using Verdict = HistoryCheck::Verdict;
  if (seq <= 0 || mark.empty()) return HistoryCheck{};
  TANDEM_ASSIGN_OR_RETURN(std::string now, HistoryMark(seq));
  auto differs = [&](const char* key) {
    const std::string a = MarkField(mark, key), b = MarkField(now, key);
    return a != "?" && b != "?" && a != b;
  };
  if (differs("system"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("it is served by another PostgreSQL cluster (system identifier {}, the position was "
                                    "applied from {}): restored into a new cluster from a backup or a dump",
                                    MarkField(now, "system"), MarkField(mark, "system"))};
  if (differs("database"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("the database was recreated (its oid is {}, the position was applied from oid {}): "
                                    "dropped and restored from a dump or a template",
                                    MarkField(now, "database"), MarkField(mark, "database"))};
  if (differs("timeline"))
    return HistoryCheck{Verdict::kSourceDiffers,
                        fmt::format("the server is on timeline {}, the position was applied on timeline {}: restored "
                                    "to a point in time, or failed over to a standby that may lack the last changes",
                                    MarkField(now, "timeline"), MarkField(mark, "timeline"))};
  // A copy of the server's files put back: its transaction counter is
  // behind the snapshot that ends the position.
  if (auto stored_xmax = SnapshotXmax(cursor)) {
    TANDEM_ASSIGN_OR_RETURN(auto row, QueryOne("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", {}));
    auto now_xmax = SnapshotXmax("0:" + (*row)[0].as_bytes() + ":");
    if (now_xmax && *now_xmax < *stored_xmax)
      return HistoryCheck{Verdict::kSourceDiffers,
                          fmt::format("its transaction counter is at {}, behind the snapshot of position {} ({} "
                                      "transactions had started): it was restored from a backup",
                                      *now_xmax, seq, *stored_xmax)};
  }
  return HistoryCheck{};
}

}  // namespace tandem
