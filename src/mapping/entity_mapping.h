// EntityMapping: an entity's config compiled against the real tables of both
// databases, once per direction, into flat rules the engine runs per change.
//
// CompileMapping() is also what `tandem check` runs: every problem that needs
// the databases (unknown table or column on either side, key mismatch, bad
// expression, `new_keys: database` on a key the database cannot assign) is
// reported as a ConfigProblem with the config's file:line.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/sql_session.h"
#include "mapping/config.h"
#include "mapping/expression.h"

namespace tandem {

enum class RuleKind { kCopy, kCode, kExpression, kLookup };

// How one target column gets its value from the source row.
struct ColumnRule {
  std::string target_column;
  std::string field;  // the config field / computed column name, for messages
  RuleKind kind = RuleKind::kCopy;
  int source_index = -1;  // kCopy/kCode/kLookup: index into DirectionMapping::source_columns
  int expr_index = -1;    // kExpression: index into the direction's ExpressionSet
  std::shared_ptr<const std::unordered_map<std::string, Value>> codes;  // kCode: source code text -> target value
  std::string lookup_entity;  // kLookup
  int lookup_entity_index = -1;
  std::vector<int> deps;  // source column indices this rule reads
  ColumnType target_type;  // of target_column
  bool lossy = false;      // `lossy: true`: no strictness checks (config.h)
  // How a change of this field on both sides is settled (never kMerge: the
  // entity default and merge's fallback are resolved at compile time).
  ConflictPolicy policy = ConflictPolicy::kLegacyWins;
};

// One entity, one direction (source side -> target side).
struct DirectionMapping {
  std::string entity;
  Side source = Side::kLegacy;
  Side target = Side::kModern;
  bool enabled = false;
  // A one-way entity's other direction: its source side is read-only, and an
  // edit there is a conflict (reverted or put aside), never applied.
  bool read_only = false;
  std::string source_table;
  std::string target_table;
  // Columns read from the source row; the first source_key_count are its key.
  std::vector<std::string> source_columns;
  std::vector<ColumnType> source_types;  // parallel to source_columns
  size_t source_key_count = 0;
  std::vector<std::string> target_key_columns;
  std::vector<ColumnType> target_key_types;  // parallel to target_key_columns
  NewKeys target_new_keys = NewKeys::kSame;
  std::vector<ColumnRule> rules;  // non-key target columns
  // The target row is a parent's row shared by this entity (a split entity
  // applied to the legacy side): the lookup rule shared_row_key gives its key.
  bool target_row_shared = false;
  ColumnRule shared_row_key;
  // The source row is a parent's shared row: the record exists only while
  // some non-key mapped column is non-NULL.
  bool source_row_shared = false;
  std::unique_ptr<ExpressionSet> expressions;
  // What a written value is checked against: a rule of the other direction
  // that maps it back, and the source column it must come back as
  // (mapping/exact_write.h). Empty when the other direction is not synced.
  struct RoundTrip {
    int back_rule = -1;         // index into the other direction's rules
    int source_index = -1;      // the column of this direction's source row it writes
    std::vector<int> via;       // this direction's rules whose values it reads
  };
  std::vector<RoundTrip> round_trips;
  std::vector<int> back_input;  // per rule: index into the other direction's source_columns, or -1
};

struct EntityMapping {
  const EntityConfig* config = nullptr;
  std::string name;
  DirectionMapping to_modern;  // legacy -> modern
  DirectionMapping to_legacy;  // modern -> legacy
  bool shares_parent_row = false;  // legacy side is a split of another entity's row
  // Conflict settings (see ConflictConfig); per-field policies are on the rules.
  DeletePolicy on_delete = DeletePolicy::kPrimary;
  ReadOnlyEditPolicy read_only_edits = ReadOnlyEditPolicy::kRevert;
  std::string newest_by[2];  // [0] legacy, [1] modern timestamp column; empty = capture time
  // Non-empty: the entity is paused, and why (its tables changed under the
  // mapping while Tandem ran, see CompileMapping's `previous`). Its changes
  // are put aside as waiting until a schema or config fix lets it compile.
  std::string paused;
  const std::string& newest_column(Side s) const { return newest_by[s == Side::kLegacy ? 0 : 1]; }
  const DirectionMapping& from(Side source) const { return source == Side::kLegacy ? to_modern : to_legacy; }
  DirectionMapping& from(Side source) { return source == Side::kLegacy ? to_modern : to_legacy; }
};

// A table whose changes are captured on one side, and the entities fed by it.
struct CapturedTableSpec {
  std::string table;
  std::vector<std::string> key_columns;
  std::vector<int> entities;  // indices into CompiledMapping::entities
};

struct CompiledMapping {
  std::vector<EntityMapping> entities;  // parents before children
  std::map<std::string, int> index_by_name;
  std::vector<CapturedTableSpec> captured[2];  // [0] legacy, [1] modern
  const std::vector<CapturedTableSpec>& captured_on(Side s) const { return captured[s == Side::kLegacy ? 0 : 1]; }
};

struct CompileOutcome {
  // Null when problems is not empty, unless every problem is an entity's
  // that a previous mapping covers (then those entities are `paused`).
  std::unique_ptr<CompiledMapping> mapping;
  std::vector<ConfigProblem> problems;
  // A database could not be read for a passing reason (a lost connection, a
  // server restarting): the problems may go away on a retry.
  bool retryable = false;
  std::vector<std::string> paused;  // entities taken paused from `previous`
};

// Compiles `config` against the two databases. Expressions are compiled in `expr_db`,
// which must outlive the mapping. With `previous` (the mapping a running
// engine compiled before its databases' schemas changed), an entity that no
// longer compiles is moved out of `previous` into the result, paused, so
// that the others keep flowing; the same config must have made `previous`.
// `pause_failing` (an engine starting while a table does not match the
// mapping): such an entity is in the result as a paused stub instead.
// Neither applies when a database could not be read (`retryable`).
CompileOutcome CompileMapping(const Config& config, SqlSession& legacy, SqlSession& modern, SqliteHandle& expr_db,
                              CompiledMapping* previous = nullptr, bool pause_failing = false);

// Name of a policy as written in the config ("legacy-wins", ...).
const char* PolicyName(ConflictPolicy p);
const char* PolicyName(DeletePolicy p);
const char* PolicyName(ReadOnlyEditPolicy p);

// Turns a code-table text into a typed value: "12" -> integer 12, else text.
Value CodeValue(const std::string& text);

}  // namespace tandem
