#include "mapping/type_check.h"

#include <strings.h>

#include <fmt/format.h>

#include <iterator>

namespace tandem {

namespace {

bool SameName(const std::string& a, const std::string& b) { return strcasecmp(a.c_str(), b.c_str()) == 0; }

bool IsTemporal(TypeClass c) {
  return c == TypeClass::kDate || c == TypeClass::kTimestamp || c == TypeClass::kTimestampTz || c == TypeClass::kTime;
}
bool IsNumber(TypeClass c) { return c == TypeClass::kInteger || c == TypeClass::kNumeric || c == TypeClass::kReal; }
bool IsTextual(TypeClass c) { return c == TypeClass::kText || c == TypeClass::kAny || c == TypeClass::kOther; }

// Why a copy from a column of type `s` into one of type `t` may not keep
// every value as it is; "" when it does. *never: no value of s fits t.
std::string CopyNote(const ColumnType& s, const ColumnType& t, bool* never) {
  *never = false;
  if (t.cls == TypeClass::kAny) return "";
  if (s.cls == t.cls) {
    switch (t.cls) {
      case TypeClass::kInteger:
        return t.bits < s.bits ? "values out of its range are put aside" : "";
      case TypeClass::kNumeric:
        if (t.scale >= 0 && (s.scale < 0 || s.scale > t.scale))
          return fmt::format("values with more than {} decimal places are put aside", t.scale);
        if (t.precision > 0 && (s.precision < 0 || s.precision - std::max(s.scale, 0) > t.precision - std::max(t.scale, 0)))
          return "values too large for it are put aside";
        return "";
      case TypeClass::kReal:
        return t.bits < s.bits ? "values a 32-bit float cannot hold exactly are put aside" : "";
      case TypeClass::kText:
        if (t.length >= 0 && (s.length < 0 || s.length > t.length))
          return fmt::format("values longer than {} characters are put aside", t.length);
        if (s.fixed_length && !t.fixed_length) return "";  // the padding is dropped, as char(n) compares
        if (t.fixed_length) return "trailing spaces do not come back (char(n) treats them as padding)";
        return "";
      case TypeClass::kEnum:
        return s.labels == t.labels ? "" : "values that are not one of its labels are put aside";
      default:
        return "";
    }
  }
  // Different kinds of values.
  if (s.cls == TypeClass::kAny && IsTextual(t.cls) && t.cls != TypeClass::kAny)
    return "numbers and blobs come back as text";
  if (s.cls == TypeClass::kAny || IsTextual(s.cls)) {
    if (IsTextual(t.cls)) return "";
    return fmt::format("values that are not a valid {} are put aside, and the others come back in its form",
                       t.declared);
  }
  if (s.cls == TypeClass::kInteger && (t.cls == TypeClass::kNumeric || IsTextual(t.cls))) {
    if (t.cls == TypeClass::kNumeric && t.precision > 0) return "values too large for it are put aside";
    return "";
  }
  if (IsNumber(s.cls) && IsTextual(t.cls)) return "";
  if (s.cls == TypeClass::kBoolean && t.cls == TypeClass::kInteger) return "";
  if (IsNumber(s.cls) && IsNumber(t.cls)) {
    if (t.cls == TypeClass::kInteger) return "values with decimals are put aside";
    if (t.cls == TypeClass::kReal) return "values a float cannot hold exactly are put aside";
    return "values with more decimals than it keeps are put aside";
  }
  if (IsTemporal(s.cls) && IsTemporal(t.cls)) {
    if (t.cls == TypeClass::kDate) return "values with a time of day are put aside";
    if (s.cls == TypeClass::kTimestampTz && t.cls == TypeClass::kTimestamp)
      return "instants are written in UTC without their zone";
    if (s.cls == TypeClass::kDate || s.cls == TypeClass::kTime || t.cls == TypeClass::kTime) {
      *never = s.cls == TypeClass::kTime || t.cls == TypeClass::kTime;
      return *never ? "a time of day and a date cannot hold each other's values" : "";
    }
    return "";
  }
  if ((s.cls == TypeClass::kJson || s.cls == TypeClass::kJsonb) && (t.cls == TypeClass::kJson || t.cls == TypeClass::kJsonb))
    return t.cls == TypeClass::kJsonb ? "JSON comes back reformatted (jsonb orders keys and drops spaces)" : "";
  if (IsTextual(t.cls)) {
    return t.dialect == Dialect::kPostgres && s.cls == TypeClass::kBlob
               ? "bytes that are not UTF-8 text are put aside"
               : fmt::format("values come back in the {} text form", s.declared);
  }
  *never = (IsNumber(s.cls) || s.cls == TypeClass::kBoolean || s.cls == TypeClass::kBlob) !=
               (IsNumber(t.cls) || t.cls == TypeClass::kBoolean) ||
           IsTemporal(s.cls) != IsTemporal(t.cls);
  return fmt::format("values of {} are put aside unless they are also a valid {}", s.declared, t.declared);
}

SourceLocation WhereOf(const EntityMapping& em, const DirectionMapping& d, const ColumnRule& r) {
  const EntityConfig& e = *em.config;
  for (const FieldConfig& f : e.fields)
    if (f.modern_column == r.field) return f.where;
  for (const ComputedColumnConfig& c : d.target == Side::kModern ? e.to_modern : e.to_legacy)
    if (SameName(c.column, r.field)) return c.where;
  return e.where;
}

}  // namespace

Result<std::vector<TypeFinding>> CheckTypes(const CompiledMapping& mapping, SqlSession& legacy, SqlSession& modern) {
  std::vector<TypeFinding> out;
  auto add = [&](bool error, SourceLocation where, std::string message, std::string hint) {
    out.push_back(TypeFinding{error, ConfigProblem{std::move(where), std::move(message), std::move(hint)}});
  };
  std::map<std::string, TableInfo> tables[2];
  auto table = [&](Side s, const std::string& name) -> Result<const TableInfo*> {
    auto& cache = tables[s == Side::kLegacy ? 0 : 1];
    auto it = cache.find(name);
    if (it == cache.end()) {
      TANDEM_ASSIGN_OR_RETURN(auto info, (s == Side::kLegacy ? legacy : modern).DescribeTable(name));
      if (!info) return static_cast<const TableInfo*>(nullptr);
      it = cache.emplace(name, std::move(*info)).first;
    }
    return &it->second;
  };
  for (const EntityMapping& em : mapping.entities) {
    const EntityConfig& e = *em.config;
    // Keys.
    for (Side s : {Side::kLegacy, Side::kModern}) {
      const SideTableConfig& st = e.side(s);
      TANDEM_ASSIGN_OR_RETURN(const TableInfo* t, table(s, st.table));
      if (!t) continue;
      for (const std::string& k : st.key) {
        int i = t->Find(k);
        if (i < 0) continue;
        const ColumnType& kt = t->columns[i].type;
        if (st.new_keys == NewKeys::kUuid && (IsNumber(kt.cls) || kt.cls == TypeClass::kBoolean || IsTemporal(kt.cls) ||
                                              (kt.cls == TypeClass::kText && kt.length >= 0 && kt.length < 36)))
          add(true, st.where,
              fmt::format("entity '{}': new_keys: uuid makes 36-character text keys, but the {} key column '{}' is {}",
                          e.name, SideName(s), k, kt.Describe()),
              "use new_keys: database for a key the database assigns, or a uuid/text key column");
      }
    }
    if (e.legacy.new_keys == NewKeys::kSame && e.modern.new_keys == NewKeys::kSame &&
        e.legacy.key.size() == e.modern.key.size()) {
      TANDEM_ASSIGN_OR_RETURN(const TableInfo* lt, table(Side::kLegacy, e.legacy.table));
      TANDEM_ASSIGN_OR_RETURN(const TableInfo* mt, table(Side::kModern, e.modern.table));
      for (size_t k = 0; lt && mt && k < e.legacy.key.size(); ++k) {
        int li = lt->Find(e.legacy.key[k]), mi = mt->Find(e.modern.key[k]);
        if (li < 0 || mi < 0) continue;
        bool never;
        std::string a = CopyNote(lt->columns[li].type, mt->columns[mi].type, &never);
        std::string b = CopyNote(mt->columns[mi].type, lt->columns[li].type, &never);
        if (!a.empty() || !b.empty())
          add(false, e.where,
              fmt::format("entity '{}': new_keys: same, but key columns legacy '{}' ({}) and modern '{}' ({}) differ: {}",
                          e.name, e.legacy.key[k], lt->columns[li].type.Describe(), e.modern.key[k],
                          mt->columns[mi].type.Describe(), a.empty() ? b : a),
              "give both key columns the same type");
      }
    }
    for (const DirectionMapping* d : {&em.to_modern, &em.to_legacy}) {
      if (!d->enabled) continue;
      TANDEM_ASSIGN_OR_RETURN(const TableInfo* tt, table(d->target, d->target_table));
      if (!tt) continue;
      // Rules.
      for (const ColumnRule& r : d->rules) {
        if (r.lossy) continue;
        const SourceLocation where = WhereOf(em, *d, r);
        if (r.kind == RuleKind::kCopy) {
          const ColumnType& s = d->source_types[r.source_index];
          bool never;
          std::string note = CopyNote(s, r.target_type, &never);
          if (!note.empty())
            add(never, where,
                fmt::format("entity '{}', field '{}': {} column '{}' ({}) is copied into {} column '{}' ({}): {}",
                            e.name, r.field, SideName(d->source), d->source_columns[r.source_index], s.Describe(),
                            SideName(d->target), r.target_column, r.target_type.Describe(), note),
                never ? "map it with an expression (to_modern/to_legacy) or change a column's type"
                      : "accept it, convert with an expression, or mark the field `lossy: true` if values may change");
        } else if (r.kind == RuleKind::kExpression && d->expressions && !r.deps.empty()) {
          // An expression over number columns: tried on typical numbers,
          // each result must fit the column (AMT * 0.01 gives 19.990000000000002).
          bool numeric_inputs = true;
          for (int dep : r.deps) numeric_inputs &= IsNumber(d->source_types[dep].cls);
          if (!numeric_inputs) {
            // Text built from text: bounded by the inputs' lengths at best.
            const ColumnType& tt_type = r.target_type;
            if (tt_type.cls != TypeClass::kText || tt_type.length < 0) continue;
            for (int dep : r.deps) {
              const ColumnType& st_type = d->source_types[dep];
              if (IsNumber(st_type.cls) || (st_type.length >= 0 && st_type.length <= tt_type.length)) continue;
              add(false, where,
                  fmt::format("entity '{}', field '{}': the expression reads {} column '{}' ({}) and writes {} column "
                              "'{}' ({}): results longer than {} characters are put aside",
                              e.name, r.field, SideName(d->source), d->source_columns[dep], st_type.Describe(),
                              SideName(d->target), r.target_column, tt_type.Describe(), tt_type.length),
                  "shorten the result in the expression (substr), widen the column, or mark the field lossy: true");
              break;
            }
            continue;
          }
          static const int64_t kIntegers[] = {0, 1, 7, 99, 1999, -5, 123456};
          static const double kReals[] = {0.1, 1.5, 19.99, 2.675, -0.25};
          for (size_t p = 0; p < std::size(kIntegers); ++p) {
            Row probe(d->source_columns.size(), Value::Null());
            for (int dep : r.deps)
              probe[dep] = d->source_types[dep].cls == TypeClass::kInteger
                               ? Value::Integer(kIntegers[p])
                               : Value::Real(kReals[p % std::size(kReals)]);
            Row results;
            if (!d->expressions->Evaluate(probe, &results).ok()) break;
            const Value& result = results[r.expr_index];
            auto stored = result.is_null() ? Result<Value>(result) : StoreValue(r.target_type, result);
            if (stored.ok()) continue;
            std::string inputs;
            for (int dep : r.deps)
              inputs += fmt::format("{}{} = {}", inputs.empty() ? "" : ", ", d->source_columns[dep], probe[dep].ToDisplay());
            add(false, where,
                fmt::format("entity '{}', field '{}': with {} the expression gives {}, which {} column '{}' ({}) "
                            "cannot hold: {}; such values are put aside",
                            e.name, r.field, inputs, result.ToDisplay(), SideName(d->target), r.target_column,
                            r.target_type.Describe(), stored.status().message()),
                "round the result to what the column holds (round(..., n), CAST), or mark the field lossy: true");
            break;
          }
        } else if (r.kind == RuleKind::kLookup) {
          const EntityMapping& parent = mapping.entities[r.lookup_entity_index];
          const DirectionMapping& pd = parent.from(d->source);
          TANDEM_ASSIGN_OR_RETURN(const TableInfo* pt, table(d->target, pd.target_table));
          if (!pt || pd.target_key_columns.size() != 1) continue;
          int ki = pt->Find(pd.target_key_columns[0]);
          if (ki < 0) continue;
          bool never;
          std::string note = CopyNote(pt->columns[ki].type, r.target_type, &never);
          if (!note.empty())
            add(never, where,
                fmt::format("entity '{}', field '{}': {} column '{}' ({}) holds keys of '{}', whose {} key '{}' is {}: {}",
                            e.name, r.field, SideName(d->target), r.target_column, r.target_type.Describe(),
                            parent.name, SideName(d->target), pd.target_key_columns[0],
                            pt->columns[ki].type.Describe(), note),
                "give the foreign key column the type of the key it refers to");
        }
      }
      // NOT NULL columns a new record must fill.
      if (d->target_row_shared) continue;
      for (const ColumnInfo& c : tt->columns) {
        if (!c.not_null || c.has_default) continue;
        bool filled = false;
        for (const ColumnRule& r : d->rules) filled |= SameName(r.target_column, c.name);
        for (const std::string& k : d->target_key_columns) filled |= SameName(k, c.name);
        if (filled) continue;
        add(true, e.side(d->target).where,
            fmt::format("entity '{}': {} column {}.{} is NOT NULL without a default, and no rule fills it: every "
                        "record inserted there from the {} side would be rejected",
                        e.name, SideName(d->target), d->target_table, c.name, SideName(d->source)),
            fmt::format("map a field or a computed column (to_{}) onto it, give it a DEFAULT, or make the entity "
                        "one-way",
                        SideName(d->target)));
      }
    }
  }
  return out;
}

}  // namespace tandem
