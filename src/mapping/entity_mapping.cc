#include "mapping/entity_mapping.h"

#include "connectors/change_source.h"  // kMaxKeyColumns

#include <strings.h>

#include <algorithm>
#include <functional>
#include <set>

#include <fmt/format.h>

#include "mapping/exact_write.h"

namespace tandem {

const char* PolicyName(ConflictPolicy p) {
  switch (p) {
    case ConflictPolicy::kMerge: return "merge";
    case ConflictPolicy::kLegacyWins: return "legacy-wins";
    case ConflictPolicy::kModernWins: return "modern-wins";
    case ConflictPolicy::kNewest: return "newest";
    case ConflictPolicy::kManual: return "manual";
  }
  return "?";
}

const char* PolicyName(DeletePolicy p) {
  switch (p) {
    case DeletePolicy::kPrimary: return "primary";
    case DeletePolicy::kKeepUpdate: return "keep-update";
    case DeletePolicy::kDeleteWins: return "delete-wins";
    case DeletePolicy::kManual: return "manual";
  }
  return "?";
}

const char* PolicyName(ReadOnlyEditPolicy p) {
  switch (p) {
    case ReadOnlyEditPolicy::kRevert: return "revert";
    case ReadOnlyEditPolicy::kPark: return "park";
  }
  return "?";
}

Value CodeValue(const std::string& text) {
  if (!text.empty()) {
    size_t i = (text[0] == '-') ? 1 : 0;
    bool digits = i < text.size() && text.size() - i <= 18;
    for (size_t k = i; k < text.size() && digits; ++k) digits = std::isdigit(static_cast<unsigned char>(text[k]));
    if (digits && !(text.size() - i > 1 && text[i] == '0')) return Value::Integer(std::stoll(text));
  }
  return Value::Text(text);
}

namespace {

bool SameName(const std::string& a, const std::string& b) { return strcasecmp(a.c_str(), b.c_str()) == 0; }

int IndexOf(const std::vector<std::string>& v, const std::string& name) {
  for (size_t i = 0; i < v.size(); ++i)
    if (SameName(v[i], name)) return static_cast<int>(i);
  return -1;
}

class Compiler {
 public:
  Compiler(const Config& config, SqlSession& legacy, SqlSession& modern, SqliteHandle& expr_db,
           CompiledMapping* previous, bool pause_failing)
      : config_(config),
        legacy_(legacy),
        modern_(modern),
        expr_db_(expr_db),
        previous_(previous),
        pause_failing_(pause_failing) {}

  CompileOutcome Run();

 private:
  void Problem(const SourceLocation& where, std::string message, std::string hint = "") {
    problems_.push_back(ConfigProblem{where, std::move(message), std::move(hint)});
  }
  SqlSession& Db(Side s) { return s == Side::kLegacy ? legacy_ : modern_; }
  const TableInfo* Table(Side side, const SideTableConfig& cfg, const std::string& entity);
  bool CheckColumn(Side side, const TableInfo& table, const std::string& column, const SourceLocation& where,
                   const std::string& what);
  void CompileDirection(const EntityConfig& e, Side source, const TableInfo& src, const TableInfo& dst,
                        DirectionMapping* out);
  std::vector<int> TopologicalOrder();
  std::shared_ptr<const std::unordered_map<std::string, Value>> CompileCodeMap(const EntityConfig& e,
                                                                               const FieldConfig& f, Side source,
                                                                               const ColumnType& source_type,
                                                                               const ColumnType& target_type,
                                                                               const std::string& target_column);

  const Config& config_;
  SqlSession& legacy_;
  SqlSession& modern_;
  SqliteHandle& expr_db_;
  CompiledMapping* previous_;  // entities that no longer compile are taken from it, paused
  bool pause_failing_;         // without a previous mapping: paused stubs for them
  std::vector<std::string> paused_;
  std::vector<ConfigProblem> problems_;
  bool retryable_ = false;
  std::map<std::string, std::optional<TableInfo>> tables_[2];
  bool shares_parent_row_ = false;
};

const TableInfo* Compiler::Table(Side side, const SideTableConfig& cfg, const std::string& entity) {
  auto& cache = tables_[side == Side::kLegacy ? 0 : 1];
  auto it = cache.find(cfg.table);
  if (it == cache.end()) {
    auto r = Db(side).DescribeTable(cfg.table);
    if (!r.ok()) {
      Problem(cfg.where, fmt::format("entity '{}': cannot read table '{}' on the {} database: {}", entity, cfg.table,
                                     SideName(side), r.status().message()));
      cache[cfg.table] = std::nullopt;
      if (r.status().retryable()) retryable_ = true;
    } else {
      cache[cfg.table] = *r;
      if (!r->has_value())
        Problem(cfg.where,
                fmt::format("entity '{}': table '{}' does not exist on the {} database ({})", entity, cfg.table,
                            SideName(side), Db(side).Describe()),
                "check the table name (SQLite names are case-insensitive) or create the table");
    }
    it = cache.find(cfg.table);
  }
  return it->second ? &*it->second : nullptr;
}

bool Compiler::CheckColumn(Side side, const TableInfo& table, const std::string& column,
                           const SourceLocation& where, const std::string& what) {
  if (table.Find(column) >= 0) return true;
  std::string cols;
  for (auto& c : table.columns) cols += (cols.empty() ? "" : ", ") + c.name;
  Problem(where, fmt::format("{}: column '{}' does not exist in {} table '{}'", what, column, SideName(side), table.name),
          "its columns are: " + cols);
  return false;
}

void Compiler::CompileDirection(const EntityConfig& e, Side source, const TableInfo& src, const TableInfo& dst,
                                DirectionMapping* d) {
  const Side target = Other(source);
  const bool to_modern = target == Side::kModern;
  d->entity = e.name;
  d->source = source;
  d->target = target;
  d->source_table = src.name;
  d->target_table = dst.name;
  d->enabled = e.direction == SyncDirection::kBoth ||
               (to_modern ? e.direction == SyncDirection::kLegacyToModern
                          : e.direction == SyncDirection::kModernToLegacy);
  d->source_columns = e.side(source).key;
  d->source_key_count = d->source_columns.size();
  d->target_key_columns = e.side(target).key;
  for (const std::string& k : d->target_key_columns) {
    int at = dst.Find(k);
    d->target_key_types.push_back(at >= 0 ? dst.columns[at].type : ColumnType{});
  }
  d->target_new_keys = e.side(target).new_keys;

  auto source_index = [&](const std::string& col) {
    int i = IndexOf(d->source_columns, col);
    if (i < 0) {
      d->source_columns.push_back(src.columns[src.Find(col)].name);
      i = static_cast<int>(d->source_columns.size() - 1);
    }
    return i;
  };
  std::vector<std::string> expressions;

  auto add_rule = [&](ColumnRule rule) {
    if (IndexOf(d->target_key_columns, rule.target_column) >= 0) {
      if (rule.kind == RuleKind::kLookup && !to_modern) {
        // The legacy key is a parent's key: this entity lives in the parent's row.
        d->shared_row_key = rule;
        d->target_row_shared = true;
      }
      return;  // key columns are set by the key logic, never by rules
    }
    d->rules.push_back(std::move(rule));
  };

  for (const FieldConfig& f : e.fields) {
    const std::string& src_col = to_modern ? f.legacy_column : f.modern_column;
    const std::string& dst_col = to_modern ? f.modern_column : f.legacy_column;
    if (src.Find(src_col) < 0 || dst.Find(dst_col) < 0) continue;  // reported by the caller
    ColumnRule r;
    r.target_column = dst.columns[dst.Find(dst_col)].name;
    r.target_type = dst.columns[dst.Find(dst_col)].type;
    r.field = f.modern_column;
    r.lossy = f.lossy;
    switch (f.kind) {
      case FieldKind::kCopy:
        r.kind = RuleKind::kCopy;
        r.source_index = source_index(src_col);
        r.deps = {r.source_index};
        break;
      case FieldKind::kCodeMap: {
        r.kind = RuleKind::kCode;
        r.source_index = source_index(src_col);
        r.deps = {r.source_index};
        r.codes = CompileCodeMap(e, f, source, src.columns[src.Find(src_col)].type, r.target_type, r.target_column);
        break;
      }
      case FieldKind::kExpression: {
        const std::string& expr = to_modern ? f.to_modern : f.to_legacy;
        if (expr.empty()) continue;  // one-way field
        r.kind = RuleKind::kExpression;
        r.expr_index = static_cast<int>(expressions.size());
        expressions.push_back(expr);
        break;
      }
      case FieldKind::kLookup:
        r.kind = RuleKind::kLookup;
        r.source_index = source_index(src_col);
        r.deps = {r.source_index};
        r.lookup_entity = f.lookup_entity;
        break;
    }
    add_rule(std::move(r));
  }
  for (const ComputedColumnConfig& c : to_modern ? e.to_modern : e.to_legacy) {
    if (dst.Find(c.column) < 0) continue;  // reported by the caller
    ColumnRule r;
    r.target_column = dst.columns[dst.Find(c.column)].name;
    r.target_type = dst.columns[dst.Find(c.column)].type;
    r.lossy = c.lossy;
    r.field = c.column;
    r.kind = RuleKind::kExpression;
    r.expr_index = static_cast<int>(expressions.size());
    expressions.push_back(c.expression);
    add_rule(std::move(r));
  }

  // Expressions read any column of the source table they name: add those to the read list.
  std::vector<std::string> all_source_columns;
  for (auto& c : src.columns) all_source_columns.push_back(c.name);
  for (auto& r : d->rules) {
    if (r.kind != RuleKind::kExpression) continue;
    for (int col : ReferencedColumns(expressions[r.expr_index], all_source_columns))
      r.deps.push_back(source_index(all_source_columns[col]));
  }
  for (const std::string& col : d->source_columns) d->source_types.push_back(src.columns[src.Find(col)].type);
  // A split entity's legacy row is its parent's row.
  if (to_modern) d->source_row_shared = shares_parent_row_;
  auto compiled = ExpressionSet::Compile(expr_db_, d->source_columns, expressions);
  if (!compiled.ok()) {
    // Pinpoint each failing expression with its own location.
    auto report = [&](const std::string& expr, const SourceLocation& where, const std::string& what) {
      Status st = ExpressionSet::CompileOne(expr_db_, d->source_columns, expr);
      if (!st.ok())
        Problem(where, fmt::format("entity '{}', {}: bad {} expression \"{}\": {}", e.name, what,
                                   to_modern ? "to_modern" : "to_legacy", expr, st.message()),
                fmt::format("expressions are SQLite SQL over the {} row's columns ({} table '{}')", SideName(source),
                            SideName(source), src.name));
    };
    for (const FieldConfig& f : e.fields)
      if (f.kind == FieldKind::kExpression) report(to_modern ? f.to_modern : f.to_legacy, f.where, "field '" + f.modern_column + "'");
    for (const ComputedColumnConfig& c : to_modern ? e.to_modern : e.to_legacy)
      report(c.expression, c.where, "computed column '" + c.column + "'");
    return;
  }
  d->expressions = std::move(compiled).value();
}

// A code map one way, typed: codes are looked up by their value as the
// source column holds it (a PostgreSQL boolean's 1 finds `true`), values are
// what the target column stores. Reports values the column cannot hold and
// entries that become one after typing (`t` and `true` on a boolean).
std::shared_ptr<const std::unordered_map<std::string, Value>> Compiler::CompileCodeMap(
    const EntityConfig& e, const FieldConfig& f, Side source, const ColumnType& source_type,
    const ColumnType& target_type, const std::string& target_column) {
  auto codes = std::make_shared<std::unordered_map<std::string, Value>>();
  const bool to_modern = source == Side::kLegacy;
  std::map<std::string, std::string> written_by;  // target CodeKey -> the code that writes it
  for (auto& [legacy_code, modern_value] : f.code_map) {
    const std::string& from = to_modern ? legacy_code : modern_value;
    const std::string& to = to_modern ? modern_value : legacy_code;
    Value target = CodeValue(to);
    if (target_type.cls == TypeClass::kBoolean) {  // YAML true/false: 1/0 on any database
      Value canonical = CanonicalValue(target_type, Value::Text(to));
      if (canonical.type() == ValueType::kInteger) target = canonical;
    }
    auto stored = StoreValue(target_type, target);
    if (!stored.ok()) {
      if (!f.lossy)
        Problem(f.where,
                fmt::format("entity '{}', field '{}': map value '{}' cannot be stored in {} column '{}' ({}): {}",
                            e.name, f.modern_column, to, SideName(Other(source)), target_column,
                            target_type.Describe(), stored.status().message()),
                "map to values the column holds, or change the column's type");
    } else {
      target = *stored;
    }
    // Entries that are one code after typing are reported by the other
    // direction, where they are one target value.
    codes->emplace(CodeKey(source_type, CodeValue(from)), target);
    auto [w, fresh] = written_by.emplace(CodeKey(target_type, target), from);
    if (!fresh)
      Problem(f.where,
              fmt::format("entity '{}', field '{}': map is not one-to-one for {} column '{}' ({}): '{}' and '{}' "
                          "both become {}",
                          e.name, f.modern_column, SideName(Other(source)), target_column, target_type.Describe(),
                          w->second, from, target.ToDisplay()),
              "list each value once");
  }
  return codes;
}

std::vector<int> Compiler::TopologicalOrder() {
  const auto& es = config_.entities;
  std::map<std::string, int> idx;
  for (size_t i = 0; i < es.size(); ++i) idx[es[i].name] = static_cast<int>(i);
  std::vector<int> order, state(es.size(), 0);
  std::function<void(int)> visit = [&](int i) {
    if (state[i]) return;
    state[i] = 1;
    for (auto& f : es[i].fields)
      if (f.kind == FieldKind::kLookup && idx.count(f.lookup_entity) && idx[f.lookup_entity] != i)
        visit(idx[f.lookup_entity]);
    state[i] = 2;
    order.push_back(i);
  };
  for (size_t i = 0; i < es.size(); ++i) visit(static_cast<int>(i));
  return order;
}

CompileOutcome Compiler::Run() {
  auto mapping = std::make_unique<CompiledMapping>();
  std::vector<int> order = TopologicalOrder();
  // An entity that no longer compiles against the databases, with a
  // previous mapping to fall back on: it stays in the mapping, paused.
  auto failed = [&](const EntityConfig& e, size_t first_problem) {
    EntityMapping em;
    auto it = previous_ ? previous_->index_by_name.find(e.name) : std::map<std::string, int>::iterator();
    if (previous_ && it != previous_->index_by_name.end()) {
      em = std::move(previous_->entities[it->second]);
    } else if (pause_failing_) {
      // A stub: enough to capture and put aside the entity's changes (keys
      // and tables as configured), nothing to apply them with.
      em.config = &e;
      em.name = e.name;
      for (Side source : {Side::kLegacy, Side::kModern}) {
        DirectionMapping& d = em.from(source);
        const Side target = Other(source);
        d.entity = e.name;
        d.source = source;
        d.target = target;
        d.enabled = e.direction == SyncDirection::kBoth ||
                    (target == Side::kModern ? e.direction == SyncDirection::kLegacyToModern
                                             : e.direction == SyncDirection::kModernToLegacy);
        d.read_only = !d.enabled && e.direction != SyncDirection::kOff;
        d.source_table = e.side(source).table;
        d.target_table = e.side(target).table;
        d.source_columns = e.side(source).key;
        d.source_key_count = d.source_columns.size();
        d.source_types.assign(d.source_columns.size(), ColumnType{});
        d.target_key_columns = e.side(target).key;
        d.target_key_types.assign(d.target_key_columns.size(), ColumnType{});
        d.target_new_keys = e.side(target).new_keys;
      }
    } else {
      return;
    }
    em.paused.clear();
    for (size_t p = first_problem; p < problems_.size(); ++p)
      em.paused += (em.paused.empty() ? "" : "; ") + problems_[p].message;
    if (em.paused.empty()) em.paused = "its mapping no longer holds";
    paused_.push_back(e.name);
    mapping->index_by_name[e.name] = static_cast<int>(mapping->entities.size());
    mapping->entities.push_back(std::move(em));
  };
  size_t covered_problems = 0;  // problems of entities kept paused
  for (int i : order) {
    const EntityConfig& e = config_.entities[i];
    const size_t entity_start = problems_.size();
    const TableInfo* lt = Table(Side::kLegacy, e.legacy, e.name);
    const TableInfo* mt = Table(Side::kModern, e.modern, e.name);
    bool ok = lt && mt;
    // Keys.
    for (Side s : {Side::kLegacy, Side::kModern}) {
      const TableInfo* t = s == Side::kLegacy ? lt : mt;
      const SideTableConfig& st = e.side(s);
      if (!t) continue;
      for (auto& k : st.key) ok &= CheckColumn(s, *t, k, st.where, fmt::format("entity '{}', {} key", e.name, SideName(s)));
      if (st.key.size() > static_cast<size_t>(kMaxKeyColumns)) {
        Problem(st.where, fmt::format("entity '{}': {} key has {} columns; at most {} are supported", e.name,
                                      SideName(s), st.key.size(), kMaxKeyColumns));
        ok = false;
      }
      if (st.new_keys == NewKeys::kDatabase && ok &&
          !(t->integer_rowid_key && st.key.size() == 1 && t->primary_key.size() == 1 &&
            SameName(t->primary_key[0], st.key[0]))) {
        Problem(st.where,
                fmt::format("entity '{}': new_keys: database needs the {} key '{}' to be the table's INTEGER PRIMARY "
                            "KEY, so that the database assigns it",
                            e.name, SideName(s), fmt::join(st.key, ",")),
                "use new_keys: uuid (for a text key) or same (equal keys on both sides)");
        ok = false;
      }
    }
    if (e.legacy.new_keys == NewKeys::kSame || e.modern.new_keys == NewKeys::kSame) {
      if (e.legacy.key.size() != e.modern.key.size() && lt && mt &&
          (e.legacy.new_keys == NewKeys::kSame && e.modern.new_keys == NewKeys::kSame)) {
        Problem(e.where, fmt::format("entity '{}': new_keys: same needs keys of the same width on both sides", e.name));
        ok = false;
      }
    }
    // Fields.
    bool shares_parent_row = false;
    if (lt && mt) {
      for (const FieldConfig& f : e.fields) {
        std::string what = fmt::format("entity '{}', field '{}'", e.name, f.modern_column);
        ok &= CheckColumn(Side::kModern, *mt, f.modern_column, f.where, what);
        ok &= CheckColumn(Side::kLegacy, *lt, f.legacy_column, f.where, what);
        if (f.kind == FieldKind::kLookup && e.legacy.key.size() == 1 && SameName(f.legacy_column, e.legacy.key[0]))
          shares_parent_row = true;
        if (f.kind == FieldKind::kLookup && !config_.FindEntity(f.lookup_entity)) ok = false;
      }
      for (auto& c : e.to_modern)
        ok &= CheckColumn(Side::kModern, *mt, c.column, c.where, fmt::format("entity '{}', to_modern", e.name));
      for (auto& c : e.to_legacy)
        ok &= CheckColumn(Side::kLegacy, *lt, c.column, c.where, fmt::format("entity '{}', to_legacy", e.name));
    }
    if (!lt || !mt) {
      size_t n = mapping->entities.size();
      failed(e, entity_start);
      if (mapping->entities.size() != n) covered_problems += problems_.size() - entity_start;
      continue;
    }
    EntityMapping em;
    em.config = &e;
    em.name = e.name;
    em.shares_parent_row = shares_parent_row;
    shares_parent_row_ = shares_parent_row;
    size_t before = problems_.size();
    CompileDirection(e, Side::kLegacy, *lt, *mt, &em.to_modern);
    CompileDirection(e, Side::kModern, *mt, *lt, &em.to_legacy);
    // Conflict policies, resolved per rule.
    const ConflictConfig& cc = e.conflicts;
    const ConflictPolicy primary_wins =
        config_.primary == Side::kLegacy ? ConflictPolicy::kLegacyWins : ConflictPolicy::kModernWins;
    const ConflictPolicy merge_fallback = cc.fallback_given ? cc.fallback : primary_wins;
    for (DirectionMapping* d : {&em.to_modern, &em.to_legacy}) {
      for (ColumnRule& r : d->rules) {
        // An override names a field; it also covers the other direction's
        // rules computed from that field (CNAME from first_name/last_name),
        // so both directions settle the same edit the same way. manual wins
        // over other overrides that cover the same rule.
        ConflictPolicy p = cc.default_policy;
        bool overridden = false;
        for (auto& o : cc.fields) {
          if (o.policy == ConflictPolicy::kMerge) continue;
          bool covers = o.field == r.field;
          for (int dep : r.deps) covers |= SameName(d->source_columns[dep], o.field);
          if (!covers) continue;
          if (!overridden || o.policy == ConflictPolicy::kManual) p = o.policy;
          overridden = true;
        }
        r.policy = p == ConflictPolicy::kMerge ? merge_fallback : p;
      }
    }
    em.on_delete = cc.on_delete;
    em.read_only_edits = cc.read_only_edits;
    for (DirectionMapping* d : {&em.to_modern, &em.to_legacy})
      d->read_only = !d->enabled && e.direction != SyncDirection::kOff;
    if (!cc.newest_by_legacy.empty())
      ok &= CheckColumn(Side::kLegacy, *lt, cc.newest_by_legacy, cc.where,
                        fmt::format("entity '{}', conflicts.newest_by", e.name));
    if (!cc.newest_by_modern.empty())
      ok &= CheckColumn(Side::kModern, *mt, cc.newest_by_modern, cc.where,
                        fmt::format("entity '{}', conflicts.newest_by", e.name));
    em.newest_by[0] = cc.newest_by_legacy;
    em.newest_by[1] = cc.newest_by_modern;
    PlanRoundTrips(em);
    if (!ok || problems_.size() != before) {  // keep checking the rest, report everything
      size_t n = mapping->entities.size();
      if (problems_.size() == entity_start)
        problems_.push_back(ConfigProblem{e.where, fmt::format("entity '{}': its mapping does not hold", e.name), ""});
      failed(e, entity_start);
      if (mapping->entities.size() != n) covered_problems += problems_.size() - entity_start;
      continue;
    }
    mapping->index_by_name[e.name] = static_cast<int>(mapping->entities.size());
    mapping->entities.push_back(std::move(em));
  }
  if (problems_.size() != covered_problems || (retryable_ && !paused_.empty()))
    return CompileOutcome{nullptr, std::move(problems_), retryable_, {}};

  // Resolve lookups and collect captured tables.
  for (size_t i = 0; i < mapping->entities.size(); ++i) {
    EntityMapping& em = mapping->entities[i];
    for (DirectionMapping* d : {&em.to_modern, &em.to_legacy}) {
      for (auto& r : d->rules)
        if (r.kind == RuleKind::kLookup) r.lookup_entity_index = mapping->index_by_name.at(r.lookup_entity);
      if (d->target_row_shared)
        d->shared_row_key.lookup_entity_index = mapping->index_by_name.at(d->shared_row_key.lookup_entity);
      if (!d->enabled && !d->read_only) continue;  // read-only sides are captured too
      auto& specs = mapping->captured[d->source == Side::kLegacy ? 0 : 1];
      auto it = std::find_if(specs.begin(), specs.end(),
                             [&](const CapturedTableSpec& s) { return SameName(s.table, d->source_table); });
      std::vector<std::string> keys(d->source_columns.begin(), d->source_columns.begin() + d->source_key_count);
      if (it == specs.end()) {
        specs.push_back(CapturedTableSpec{d->source_table, keys, {static_cast<int>(i)}});
      } else {
        if (it->key_columns.size() != keys.size() ||
            !std::equal(keys.begin(), keys.end(), it->key_columns.begin(), SameName)) {
          problems_.push_back(ConfigProblem{
              em.config->side(d->source).where,
              fmt::format("entity '{}': {} table '{}' is used with key ({}) here but ({}) by another entity",
                          em.name, SideName(d->source), d->source_table, fmt::join(keys, ","),
                          fmt::join(it->key_columns, ",")),
              "entities sharing a table must name the same key"});
        }
        it->entities.push_back(static_cast<int>(i));
      }
    }
  }
  if (problems_.size() != covered_problems) return CompileOutcome{nullptr, std::move(problems_), retryable_, {}};
  return CompileOutcome{std::move(mapping), std::move(problems_), false, std::move(paused_)};
}

}  // namespace

CompileOutcome CompileMapping(const Config& config, SqlSession& legacy, SqlSession& modern, SqliteHandle& expr_db,
                              CompiledMapping* previous, bool pause_failing) {
  return Compiler(config, legacy, modern, expr_db, previous, pause_failing).Run();
}

}  // namespace tandem
