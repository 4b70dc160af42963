// Config: the parsed tandem.yaml (the public contract, see README).
//
// ParseConfigFile() reads YAML into these plain structs and reports every
// structural problem it finds (not only the first) with file:line, what is
// wrong and a hint. It does not touch any database: checks that need the
// databases (tables, columns, expressions) live in config_check.h.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tandem {

enum class Side { kLegacy, kModern };
inline Side Other(Side s) { return s == Side::kLegacy ? Side::kModern : Side::kLegacy; }
inline const char* SideName(Side s) { return s == Side::kLegacy ? "legacy" : "modern"; }

// Which ways an entity syncs.
enum class SyncDirection { kBoth, kLegacyToModern, kModernToLegacy, kOff };

// Who assigns the key of a row Tandem inserts on a side.
enum class NewKeys {
  kSame,      // key values are equal on both sides; no key map needed for translation
  kUuid,      // Tandem generates a version-4 UUID (text)
  kDatabase,  // the database assigns it (SQLite INTEGER PRIMARY KEY / serial)
};

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
  std::string ToString() const;  // "tandem.yaml:12:5" (or "tandem.yaml" if line unknown)
};

struct ConfigProblem {
  SourceLocation where;
  std::string message;  // what is wrong, naming the entity/field/table
  std::string hint;     // what to do (may be empty)
  std::string ToString() const;  // "file:line:col: message (hint: ...)"
};

// A database connection target. `url` is as written; `resolved` has its
// `${NAME}` references expanded and a relative sqlite path made absolute
// against the config file's folder. `resolved` may hold a password: print
// Shown(), never `resolved` itself.
struct SystemConfig {
  std::string url;        // e.g. "sqlite:data/legacy.db"
  std::string resolved;   // e.g. "sqlite:/abs/path/data/legacy.db"
  SourceLocation where;
  std::string Shown() const;  // `resolved` with the password masked
};

// A `database:` value with each `${NAME}` replaced by lookup(NAME), encoded
// so that any value (a password full of '@', '/', '%', quotes...) stays
// exactly that value where it lands: percent-encoded (RFC 3986, all but
// unreserved characters) in a postgresql:// or postgres:// URI; in
// keyword/value conninfo single-quoted with backslash escapes (or only
// escaped, inside a value the text quotes or continues); unchanged elsewhere
// (sqlite: paths, a reference standing for a whole URL).
struct ExpandedTarget {
  std::string text;                  // the expanded target
  std::vector<std::string> values;   // the values substituted, as looked up
  std::vector<std::string> missing;  // names lookup had no value for
  bool unterminated = false;         // a "${" without "}": text is incomplete
};
ExpandedTarget ExpandTargetVariables(std::string_view text,
                                     const std::function<std::optional<std::string>(const std::string&)>& lookup);

// One side of an entity: `legacy: { table: CUSTMAST, key: CUSTNO, new_keys: database }`.
// `key` may be a scalar or a list (composite key).
struct SideTableConfig {
  std::string table;
  std::vector<std::string> key;
  NewKeys new_keys = NewKeys::kSame;
  bool new_keys_given = false;  // false when the YAML omitted new_keys
  SourceLocation where;
};

enum class FieldKind {
  kCopy,        // `email: EMAIL`
  kCodeMap,     // `status: { legacy: STAT, map: { A: active } }`
  kExpression,  // `balance: { legacy: BAL_CENTS, to_modern: "...", to_legacy: "..." }`
  kLookup,      // `customer_id: { legacy: CUSTNO, lookup: customer }`
};

// One entry of `fields:` — a modern column and its legacy counterpart.
struct FieldConfig {
  std::string modern_column;  // the YAML key
  std::string legacy_column;  // the scalar value, or `legacy:`
  FieldKind kind = FieldKind::kCopy;
  // kCodeMap: legacy code text -> modern value text, in YAML order. Scalars are
  // kept as their YAML text (so `1: one` gives {"1","one"}).
  std::vector<std::pair<std::string, std::string>> code_map;
  // kExpression: SQLite expressions; either may be empty (then that way is not mapped).
  std::string to_modern;
  std::string to_legacy;
  // kLookup: the entity whose key map translates this foreign key.
  std::string lookup_entity;
  // `lossy: true`: the mapping changes values on purpose (a normalisation, a
  // rounding): a value that does not come back, an expression yielding NULL,
  // a value the column would change are written anyway, never put aside.
  bool lossy = false;
  SourceLocation where;
};

// A computed column: `to_modern: { first_name: "expr" }` / `to_legacy: { CNAME: "expr" }`.
struct ComputedColumnConfig {
  std::string column;      // the column written on the target side
  std::string expression;  // SQLite expression over the other side's columns
  SourceLocation where;
  bool lossy = false;      // `{ expr: "...", lossy: true }`: see FieldConfig::lossy
};

// How a field changed on both sides since their last agreed version is settled.
enum class ConflictPolicy {
  kMerge,       // as `default`: per field, changed on one side -> kept; on both -> `fallback`.
                // As a per-field override (`conflicts.fields`): follow the entity's default.
  kLegacyWins,  // legacy's value ends on both sides
  kModernWins,  // modern's value ends on both sides
  kNewest,      // the later change wins, by `newest_by` columns or else capture time (ties: primary)
  kManual,      // neither is applied; the record waits in the conflict queue for `tandem conflicts resolve`
};
// A delete on one side while the other side updated the record.
enum class DeletePolicy {
  kPrimary,     // (no `on_delete`) the primary side's action wins
  kKeepUpdate,  // the update wins: the record is re-created where it was deleted
  kDeleteWins,  // the delete wins on both sides
  kManual,      // neither; the record waits in the conflict queue
};
// Edits of the read-only side of a one-way entity.
enum class ReadOnlyEditPolicy {
  kRevert,  // report a conflict and write the owning side's values back
  kPark,    // report a conflict and put the edit aside for an operator
};

// `conflicts:` of an entity. Absent: merge with the primary side as fallback.
struct ConflictConfig {
  ConflictPolicy default_policy = ConflictPolicy::kMerge;
  // What `merge` does for a field changed on both sides. Never kMerge.
  // Unset (fallback_given false): the side named by `primary`.
  ConflictPolicy fallback = ConflictPolicy::kLegacyWins;
  bool fallback_given = false;
  // Timestamp columns for `newest` (empty: capture time).
  std::string newest_by_legacy;
  std::string newest_by_modern;
  // Per-field overrides, keyed by the field's name as written in `fields:`,
  // `to_modern:` or `to_legacy:` (YAML order, each field once).
  struct FieldOverride {
    std::string field;
    // kMerge: follow the entity's default (only when the YAML says `merge`).
    ConflictPolicy policy = ConflictPolicy::kMerge;
    SourceLocation where;
  };
  std::vector<FieldOverride> fields;
  DeletePolicy on_delete = DeletePolicy::kPrimary;
  ReadOnlyEditPolicy read_only_edits = ReadOnlyEditPolicy::kRevert;
  bool given = false;  // the entity has a `conflicts:` block
  SourceLocation where;
};

struct EntityConfig {
  std::string name;
  SyncDirection direction = SyncDirection::kBoth;
  SideTableConfig legacy;
  SideTableConfig modern;
  std::vector<FieldConfig> fields;                  // YAML order
  std::vector<ComputedColumnConfig> to_modern;      // computed modern columns
  std::vector<ComputedColumnConfig> to_legacy;      // computed legacy columns
  ConflictConfig conflicts;
  SourceLocation where;

  const SideTableConfig& side(Side s) const { return s == Side::kLegacy ? legacy : modern; }
};

// Engine tuning (`sync:` section, all optional).
struct SyncOptions {
  int poll_interval_ms = 1;      // how often to check for new commits
  int batch_size = 10000;        // changes per target transaction (it ends at the next commit boundary)
  int busy_timeout_ms = 5000;    // SQLite busy timeout for Tandem's connections
  int purge_interval_ms = 1000;  // how often applied changes are purged from the source log
  bool sample_commit_boundaries = true;  // sample where source transactions end (keeps batches short)
  // false: no conflict detection at all -- a change always overwrites the
  // other side's mapped values (what the benchmark compares `merge` with).
  bool detect_conflicts = true;
  // Bounds on one target transaction (how long it holds the target's write
  // lock): a larger source transaction or backlog is applied in several,
  // each committed with its exact position. -1 = the target's default (500 ms
  // on SQLite, where a write transaction excludes every other writer; none on
  // PostgreSQL); 0 = no bound.
  int max_txn_ms = -1;
  int max_txn_changes = 0;
  // false: a source transaction is never split to honour the bounds (the
  // target's other writers wait instead); its end is found by the commit
  // boundaries, or the end of what is pending.
  bool split_transactions = true;
};

struct Config {
  int version = 1;
  std::string path;       // the config file as given
  std::string directory;  // its folder (absolute)
  SystemConfig legacy;
  SystemConfig modern;
  Side primary = Side::kLegacy;
  std::vector<EntityConfig> entities;  // YAML order
  SyncOptions sync;

  const SystemConfig& system(Side s) const { return s == Side::kLegacy ? legacy : modern; }
  const EntityConfig* FindEntity(const std::string& name) const;
};

// Parses and structurally validates a config file. On failure returns every
// problem found (never an empty list). Structural checks include: required
// keys, unknown keys (with a "did you mean" hint), bad enum values, `map` not
// one-to-one, lookup naming an unknown entity, cycles among lookups, a field or
// computed column written twice on the same side.
struct ParseOutcome {
  Config config;
  std::vector<ConfigProblem> problems;  // empty = ok
  bool ok() const { return problems.empty(); }
};
ParseOutcome ParseConfigFile(const std::string& path);
ParseOutcome ParseConfigText(const std::string& text, const std::string& path_for_messages,
                             const std::string& directory);

}  // namespace tandem
