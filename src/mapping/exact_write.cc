#include "mapping/exact_write.h"

#include <strings.h>

#include <fmt/format.h>

namespace tandem {

namespace {

int IndexOf(const std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (strcasecmp(names[i].c_str(), name.c_str()) == 0) return static_cast<int>(i);
  return -1;
}

void PlanOneWay(DirectionMapping& there, const DirectionMapping& back) {
  there.round_trips.clear();
  there.back_input.assign(there.rules.size(), -1);
  if (!there.enabled || !back.enabled) return;
  for (size_t i = 0; i < there.rules.size(); ++i) {
    if (there.rules[i].kind == RuleKind::kLookup) continue;
    there.back_input[i] = IndexOf(back.source_columns, there.rules[i].target_column);
  }
  for (size_t b = 0; b < back.rules.size(); ++b) {
    const ColumnRule& br = back.rules[b];
    if (br.kind == RuleKind::kLookup || br.deps.empty()) continue;
    DirectionMapping::RoundTrip rt;
    rt.back_rule = static_cast<int>(b);
    rt.source_index = IndexOf(there.source_columns, br.target_column);
    if (rt.source_index < 0) continue;  // writes a column this direction does not read
    bool inputs_known = true;
    bool lossy = br.lossy;
    for (int dep : br.deps) {
      int via = -1;
      for (size_t i = 0; i < there.rules.size(); ++i)
        if (there.back_input[i] == dep) via = static_cast<int>(i);
      if (via < 0) {
        inputs_known = false;  // reads a column this direction does not write
        break;
      }
      lossy |= there.rules[via].lossy;
      rt.via.push_back(via);
    }
    if (inputs_known && !lossy) there.round_trips.push_back(std::move(rt));
  }
}

std::string Listed(const DirectionMapping& dm, const std::vector<int>& rules, const Row& values) {
  std::string out;
  for (int r : rules)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", dm.rules[r].target_column, values[r].ToDisplay());
  return out;
}

}  // namespace

void PlanRoundTrips(EntityMapping& em) {
  PlanOneWay(em.to_modern, em.to_legacy);
  PlanOneWay(em.to_legacy, em.to_modern);
}

Status CheckExactWrite(const DirectionMapping& there, const DirectionMapping& back, const Row& source_row,
                       Row* mapped, std::vector<std::string>* problems) {
  problems->assign(there.rules.size(), std::string());
  Row& out = *mapped;
  bool any_problem = false;
  for (size_t i = 0; i < there.rules.size(); ++i) {
    const ColumnRule& r = there.rules[i];
    if (r.lossy || r.kind == RuleKind::kLookup) continue;
    if (r.kind == RuleKind::kExpression && out[i].is_null()) {
      for (int dep : r.deps) {
        if (source_row[dep].is_null()) continue;
        (*problems)[i] = fmt::format("field '{}': its expression yields NULL from {} {} {}; a conversion that fails "
                                     "is put aside, never written as NULL (lossy: true writes it)",
                                     r.field, SideName(there.source), there.source_columns[dep],
                                     source_row[dep].ToDisplay());
        any_problem = true;
        break;
      }
      if (!(*problems)[i].empty()) continue;
    }
    // char(n) pads with spaces that are not part of the value: a copy
    // into a column that keeps trailing spaces takes the value without them.
    if (r.kind == RuleKind::kCopy && there.source_types[r.source_index].fixed_length && !r.target_type.fixed_length &&
        out[i].type() == ValueType::kText) {
      std::string s = out[i].as_bytes();
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out[i] = Value::Text(std::move(s));
    }
    auto stored = StoreValue(r.target_type, out[i]);
    if (!stored.ok()) {
      (*problems)[i] = fmt::format("field '{}': value {} cannot be stored in {} column {}.{} ({}): {}", r.field,
                                   out[i].ToDisplay(), SideName(there.target), there.target_table, r.target_column,
                                   r.target_type.Describe(), stored.status().message());
      any_problem = true;
      continue;
    }
    out[i] = std::move(stored).value();
  }
  if (there.round_trips.empty()) return Status::Ok();

  // The other side's row as the other direction would read it, from the values written.
  Row other(back.source_columns.size(), Value::Null());
  for (size_t i = 0; i < there.rules.size(); ++i)
    if (there.back_input[i] >= 0) other[there.back_input[i]] = out[i];
  Row back_exprs;
  bool evaluated = false;
  for (const DirectionMapping::RoundTrip& rt : there.round_trips) {
    bool skip = false;
    for (int via : rt.via) skip |= any_problem && !(*problems)[via].empty();
    if (skip) continue;
    const ColumnRule& br = back.rules[rt.back_rule];
    Value returned;
    switch (br.kind) {
      case RuleKind::kCopy: returned = other[br.source_index]; break;
      case RuleKind::kCode: {
        const Value& v = other[br.source_index];
        if (v.is_null()) break;
        auto it = br.codes->find(CodeKey(back.source_types[br.source_index], v));
        if (it == br.codes->end()) {
          skip = true;  // a value the map does not know cannot have come from it
          break;
        }
        returned = it->second;
        break;
      }
      case RuleKind::kExpression:
        if (!evaluated) {
          TANDEM_RETURN_IF_ERROR(back.expressions->Evaluate(other, &back_exprs));
          evaluated = true;
        }
        returned = back_exprs[br.expr_index];
        break;
      case RuleKind::kLookup: skip = true; break;
    }
    if (skip) continue;
    const Value& original = source_row[rt.source_index];
    const ColumnType& type = there.source_types[rt.source_index];
    auto back_stored = StoreValue(type, returned);
    if (back_stored.ok() && SameValue(type, *back_stored, original)) continue;
    // A copy into a column of another type comes back when it is the same
    // value as that column sees it: the TEXT '2024-01-02 03:04:05' that a
    // timestamptz holds, the JSON text that jsonb reformats. (`tandem check`
    // warns that such values come back in the other column's form.)
    if (back_stored.ok() && br.kind == RuleKind::kCopy && rt.via.size() == 1 &&
        there.rules[rt.via[0]].kind == RuleKind::kCopy &&
        SameValue(there.rules[rt.via[0]].target_type, original, *back_stored))
      continue;
    for (int via : rt.via) {
      if (!(*problems)[via].empty()) continue;
      (*problems)[via] = fmt::format(
          "field '{}': {} {} {} would not come back: written as {} {} it maps back to {}; a mapping that changes "
          "values on purpose needs lossy: true",
          there.rules[via].field, SideName(there.source), there.source_columns[rt.source_index], original.ToDisplay(),
          SideName(there.target), Listed(there, rt.via, out), returned.ToDisplay());
    }
  }
  return Status::Ok();
}

Result<Value> StoreTypedValue(const ColumnType& type, const std::string& text) {
  TANDEM_ASSIGN_OR_RETURN(Value stored, StoreValue(type, CodeValue(text)));
  if (type.IsNumber() && stored.type() == ValueType::kText)
    return Status::InvalidArgument(fmt::format("'{}' is not a number", text));
  return stored;
}

}  // namespace tandem
