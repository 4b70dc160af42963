#include "mapping/lens_check.h"

#include <strings.h>

#include <fmt/format.h>

#include "mapping/exact_write.h"

namespace tandem {

std::string LensFinding::ToString() const {
  Side other = Other(start);
  if (!put_aside_reason.empty())
    return fmt::format("entity '{}': {} of {} sampled {} rows would be put aside when synced to the {} side, e.g. {}",
                       entity, rows_affected, rows_sampled, SideName(start), SideName(other), put_aside_reason);
  return fmt::format("entity '{}': {} column '{}' does not survive {} -> {} -> {} in {} of {} sampled rows (e.g. {} "
                     "comes back as {}); the first sync that touches such a record rewrites it",
                     entity, SideName(start), column, SideName(start), SideName(other), SideName(start), rows_affected,
                     rows_sampled, example_before, example_after);
}

Status MapWithoutLookups(const DirectionMapping& dm, const Row& srow, Row* out, std::vector<bool>* known) {
  out->assign(dm.rules.size(), Value::Null());
  known->assign(dm.rules.size(), true);
  Row exprs;
  if (dm.expressions && dm.expressions->size()) TANDEM_RETURN_IF_ERROR(dm.expressions->Evaluate(srow, &exprs));
  for (size_t i = 0; i < dm.rules.size(); ++i) {
    const ColumnRule& r = dm.rules[i];
    switch (r.kind) {
      case RuleKind::kCopy: (*out)[i] = srow[r.source_index]; break;
      case RuleKind::kExpression: (*out)[i] = exprs[r.expr_index]; break;
      case RuleKind::kCode: {
        const Value& v = srow[r.source_index];
        if (v.is_null()) break;
        auto it = r.codes->find(CodeKey(dm.source_types[r.source_index], v));
        if (it == r.codes->end()) (*known)[i] = false;  // reported by sync as a put-aside change
        else (*out)[i] = it->second;
        break;
      }
      case RuleKind::kLookup: (*known)[i] = false; break;
    }
  }
  return Status::Ok();
}

namespace {

int IndexOf(const std::vector<std::string>& v, const std::string& name) {
  for (size_t i = 0; i < v.size(); ++i)
    if (strcasecmp(v[i].c_str(), name.c_str()) == 0) return static_cast<int>(i);
  return -1;
}

// Rows of `start` mapped there and back; compares the columns both ways touch.
Status CheckOneWay(const EntityMapping& em, Side start, SqlSession& db, int sample_rows,
                   std::vector<LensFinding>* findings) {
  const DirectionMapping& there = em.from(start);
  const DirectionMapping& back = em.from(Other(start));
  if (there.rules.empty() || back.rules.empty()) return Status::Ok();
  std::string cols;
  for (size_t i = 0; i < there.source_columns.size(); ++i)
    cols += (i ? ", " : "") + db.QuoteIdent(there.source_columns[i]);
  std::vector<Row> rows;
  TANDEM_RETURN_IF_ERROR(db.Query(fmt::format("SELECT {} FROM {} LIMIT {}", cols, db.QuoteIdent(there.source_table),
                                              sample_rows),
                                  {}, &rows));
  std::vector<LensFinding> found(back.rules.size());
  std::vector<LensFinding> put_aside(there.rules.size());
  for (const Row& row : rows) {
    if (there.source_row_shared) {  // a split record exists only while one of its columns is set
      bool any = false;
      for (size_t i = there.source_key_count; i < row.size(); ++i) any |= !row[i].is_null();
      if (!any) continue;
    }
    Row mapped, returned;
    std::vector<bool> known, known_back;
    if (!MapWithoutLookups(there, row, &mapped, &known).ok()) continue;
    if (there.enabled) {
      // What syncing this row would put aside (codes without a mapping are
      // reported at run time with their own reason, lookups are not followed).
      Row checked = mapped;
      std::vector<std::string> problems;
      if (CheckExactWrite(there, back, row, &checked, &problems).ok()) {
        for (size_t i = 0; i < problems.size(); ++i) {
          if (problems[i].empty() || !known[i]) continue;
          if (put_aside[i].rows_affected++ == 0) put_aside[i].put_aside_reason = problems[i];
        }
      }
    }
    // The other side's row as `back` reads it: columns `there` produced; others unknown.
    Row other(back.source_columns.size(), Value::Null());
    std::vector<bool> other_known(back.source_columns.size(), false);
    for (size_t i = 0; i < there.rules.size(); ++i) {
      int idx = IndexOf(back.source_columns, there.rules[i].target_column);
      if (idx >= 0 && known[i]) {
        other[idx] = mapped[i];
        other_known[idx] = true;
      }
    }
    if (!MapWithoutLookups(back, other, &returned, &known_back).ok()) continue;
    for (size_t i = 0; i < back.rules.size(); ++i) {
      const ColumnRule& r = back.rules[i];
      if (!known_back[i]) continue;
      bool inputs_known = true;
      for (int dep : r.deps) inputs_known &= other_known[dep];
      if (r.kind == RuleKind::kExpression && r.deps.empty()) inputs_known = false;
      int original = IndexOf(there.source_columns, r.target_column);
      if (!inputs_known || original < 0) continue;
      if (SameValue(there.source_types[original], returned[i], row[original])) continue;
      LensFinding& f = found[i];
      if (f.rows_affected++ == 0) {
        f.example_before = row[original].ToDisplay();
        f.example_after = returned[i].ToDisplay();
      }
    }
  }
  auto report = [&](std::vector<LensFinding>& list, auto column_of) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].rows_affected == 0) continue;
      list[i].entity = em.name;
      list[i].start = start;
      list[i].column = column_of(i);
      list[i].rows_sampled = static_cast<int>(rows.size());
      findings->push_back(std::move(list[i]));
    }
  };
  report(put_aside, [&](size_t i) { return there.rules[i].field; });
  report(found, [&](size_t i) { return back.rules[i].target_column; });
  return Status::Ok();
}

}  // namespace

Result<std::vector<LensFinding>> CheckLensRoundTrip(const CompiledMapping& mapping, SqlSession& legacy,
                                                    SqlSession& modern, int sample_rows) {
  std::vector<LensFinding> findings;
  for (const EntityMapping& em : mapping.entities) {
    TANDEM_RETURN_IF_ERROR(CheckOneWay(em, Side::kLegacy, legacy, sample_rows, &findings));
    TANDEM_RETURN_IF_ERROR(CheckOneWay(em, Side::kModern, modern, sample_rows, &findings));
  }
  return findings;
}

}  // namespace tandem
