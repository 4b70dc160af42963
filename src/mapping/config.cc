// Parses tandem.yaml into Config and checks its structure.
//
// The parser never stops at the first problem: every section is read as far
// as it can be and each problem is recorded with the location of the offending
// node, so a user can fix a whole config in one round. Checks that span
// entities (lookup targets, lookup cycles) run once all entities are read.
#include "mapping/config.h"

#include <yaml-cpp/yaml.h>

#include "connectors/postgres/pg_target.h"
#include "core/secrets.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem {
namespace {

namespace fs = std::filesystem;

using KeyNames = std::span<const std::string_view>;

// The keys each section accepts; anything else is reported as unknown.
constexpr std::string_view kTopLevelKeys[] = {"version", "systems", "primary", "sync", "entities"};
constexpr std::string_view kSystemsKeys[] = {"legacy", "modern"};
constexpr std::string_view kSystemKeys[] = {"database"};
constexpr std::string_view kSyncKeys[] = {"poll_interval_ms", "batch_size", "busy_timeout_ms",
                                          "purge_interval_ms", "sample_commit_boundaries",
                                          "detect_conflicts",   "max_txn_ms",
                                          "max_txn_changes",    "split_transactions"};
constexpr std::string_view kEntityKeys[] = {"direction", "legacy",    "modern",   "fields",
                                            "to_modern", "to_legacy", "conflicts"};
constexpr std::string_view kSideKeys[] = {"table", "key", "new_keys"};
constexpr std::string_view kFieldKeys[] = {"legacy", "map", "to_modern", "to_legacy", "lookup", "lossy"};
constexpr std::string_view kComputedKeys[] = {"expr", "lossy"};
constexpr std::string_view kConflictKeys[] = {"default", "fallback",  "newest_by",
                                              "fields",  "on_delete", "read_only_edits"};
constexpr std::string_view kNewestByKeys[] = {"legacy", "modern"};
// Sections whose keys are user-chosen names (entities, columns).
constexpr KeyNames kAnyKey{};

constexpr int kMaxSuggestionDistance = 2;
constexpr std::string_view kSqlitePrefix = "sqlite:";

template <typename T>
struct Choice {
  std::string_view name;
  T value;
};
constexpr Choice<Side> kSideChoices[] = {{"legacy", Side::kLegacy}, {"modern", Side::kModern}};
constexpr Choice<SyncDirection> kDirectionChoices[] = {
    {"both", SyncDirection::kBoth},
    {"legacy-to-modern", SyncDirection::kLegacyToModern},
    {"modern-to-legacy", SyncDirection::kModernToLegacy},
    {"off", SyncDirection::kOff},
};
constexpr Choice<NewKeys> kNewKeysChoices[] = {
    {"uuid", NewKeys::kUuid}, {"database", NewKeys::kDatabase}, {"same", NewKeys::kSame}};
// `conflicts: { default: ... }` and each `conflicts.fields` entry. As a field
// override, merge means "follow the entity's default".
constexpr Choice<ConflictPolicy> kConflictPolicyChoices[] = {
    {"merge", ConflictPolicy::kMerge},
    {"legacy-wins", ConflictPolicy::kLegacyWins},
    {"modern-wins", ConflictPolicy::kModernWins},
    {"newest", ConflictPolicy::kNewest},
    {"manual", ConflictPolicy::kManual},
};
// `conflicts: { fallback: ... }`: never merge (it is what merge falls back to);
// `legacy` / `modern` are accepted for legacy-wins / modern-wins, like `primary`.
constexpr Choice<ConflictPolicy> kFallbackChoices[] = {
    {"legacy-wins", ConflictPolicy::kLegacyWins}, {"modern-wins", ConflictPolicy::kModernWins},
    {"newest", ConflictPolicy::kNewest},          {"manual", ConflictPolicy::kManual},
    {"legacy", ConflictPolicy::kLegacyWins},      {"modern", ConflictPolicy::kModernWins},
};
constexpr Choice<DeletePolicy> kDeletePolicyChoices[] = {
    {"keep-update", DeletePolicy::kKeepUpdate},
    {"delete-wins", DeletePolicy::kDeleteWins},
    {"manual", DeletePolicy::kManual},
};
constexpr Choice<ReadOnlyEditPolicy> kReadOnlyEditChoices[] = {
    {"revert", ReadOnlyEditPolicy::kRevert}, {"park", ReadOnlyEditPolicy::kPark}};

// Levenshtein distance, used to suggest the key a typo was meant to be.
int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

// The candidate closest to `word` if it is a plausible typo of it, else "".
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  int best_distance = kMaxSuggestionDistance + 1;
  for (const std::string& candidate : candidates) {
    int distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// "'a'", "'a' and 'b'", "'a', 'b' and 'c'".
std::string JoinWithAnd(std::vector<std::string> items) {
  if (items.size() < 2) return Join(items);
  std::string last = std::move(items.back());
  items.pop_back();
  return Join(items) + " and " + last;
}

std::vector<std::string> Names(KeyNames keys) { return {keys.begin(), keys.end()}; }

template <typename T>
std::vector<std::string> Names(std::span<const Choice<T>> choices) {
  std::vector<std::string> names;
  for (const Choice<T>& choice : choices) names.emplace_back(choice.name);
  return names;
}

// "did you mean 'x'?" when one name is close, otherwise the full list.
std::string SuggestionHint(std::string_view word, const std::vector<std::string>& valid,
                           std::string_view list_label) {
  std::string closest = ClosestMatch(word, valid);
  if (!closest.empty()) return "did you mean '" + closest + "'?";
  return std::string(list_label) + ": " + Join(valid);
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

// "context: detail", or just the detail for top-level problems.
std::string In(const std::string& context, const std::string& detail) {
  return context.empty() ? detail : context + ": " + detail;
}

// How a node that has the wrong type looks, for messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return Quote(node.Scalar());
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

// SQL folds unquoted identifiers, so `CNAME` and `cname` are the same column.
std::string FoldCase(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The absolute, normalized form of a folder ("" = the current directory).
std::string AbsoluteFolder(const std::string& directory) {
  std::error_code error;
  fs::path folder = fs::absolute(directory.empty() ? fs::path(".") : fs::path(directory), error);
  if (error) folder = directory;
  folder = folder.lexically_normal();
  // lexically_normal keeps a trailing separator ("/srv/x/"); drop it so the
  // folder reads like one in messages.
  if (!folder.has_filename() && folder.has_relative_path()) folder = folder.parent_path();
  return folder.string();
}

// Makes a relative sqlite path absolute against the config folder, so the
// config means the same thing whatever directory Tandem is started from.
// Server URLs (postgresql://, mysql://) carry no file path and are kept.
std::string ResolveDatabaseUrl(const std::string& url, const std::string& directory) {
  if (!url.starts_with(kSqlitePrefix)) return url;
  std::string_view file = std::string_view(url).substr(kSqlitePrefix.size());
  if (file.empty() || file == ":memory:" || file.front() == '/') return url;
  return std::string(kSqlitePrefix) + (fs::path(directory) / file).lexically_normal().string();
}

Result<std::string> ReadFileText(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) {
    return Status::NotFound("config file '" + path + "' does not exist");
  }
  if (fs::is_directory(path, error)) {
    return Status::InvalidArgument("'" + path + "' is a directory, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("cannot open config file '" + path +
                                   "': " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument("cannot read config file '" + path + "'");
  return text.str();
}

// One `key: value` pair of a YAML map.
struct Entry {
  std::string name;
  YAML::Node key;
  YAML::Node value;
};

// The entries of one YAML map, in document order, each key at most once.
struct Section {
  std::string context;   // names the section in messages, e.g. "entity 'customer'"
  SourceLocation where;  // where "missing key" problems point
  bool is_map = true;    // false when the node was not a map (already reported)
  std::vector<Entry> entries;

  const Entry* Find(std::string_view name) const {
    for (const Entry& entry : entries) {
      if (entry.name == name) return &entry;
    }
    return nullptr;
  }
};

// A mapping that writes a column, for the "written twice" check.
struct ColumnWriter {
  std::string column;
  std::string writer;  // e.g. "field 'email'" or "to_modern 'first_name'"
  SourceLocation where;
};

class Parser {
 public:
  Parser(std::string file, std::string directory)
      : file_(std::move(file)), directory_(std::move(directory)) {}

  void Parse(const std::string& text, Config& config);
  std::vector<ConfigProblem> TakeProblems();

 private:
  // Locations and reporting.
  SourceLocation Where(const YAML::Mark& mark) const;
  SourceLocation Where(const YAML::Node& node) const { return Where(node.Mark()); }
  // A null value's mark points past it, so null values are located by their key.
  SourceLocation Where(const Entry& entry) const {
    return entry.value.IsNull() ? Where(entry.key) : Where(entry.value);
  }
  void Report(SourceLocation where, std::string message, std::string hint = "");

  // Generic readers.
  Section ReadSection(const YAML::Node& node, SourceLocation where, std::string context,
                      KeyNames allowed);
  Section ReadSection(const Entry& entry, std::string context, KeyNames allowed) {
    return ReadSection(entry.value, Where(entry.key), std::move(context), allowed);
  }
  const Entry* Require(const Section& section, std::string_view key, std::string hint);
  std::optional<std::string> ReadText(const Entry& entry, const std::string& context);
  template <typename T>
  std::optional<T> ReadChoice(const Entry& entry, const std::string& context,
                              std::span<const Choice<T>> choices);

  // Top-level sections.
  void ReadTopLevel(const YAML::Node& root, Config& config);
  void ReadVersion(const Section& top, Config& config);
  void ReadSystems(const Section& top, Config& config);
  SystemConfig ReadSystem(const Section& systems, Side side);
  std::optional<std::string> ExpandEnvironment(const Entry& entry, const std::string& context);
  void ReadSync(const Section& section, SyncOptions& sync);
  void ReadEntities(const Section& top, Config& config);

  // Entities.
  EntityConfig ReadEntity(const Entry& entry);
  SideTableConfig ReadSide(const Section& entity, Side side);
  std::vector<std::string> ReadKeyColumns(const Entry& entry, const std::string& context);
  void CheckNewKeysFitKey(const Section& side_section, const SideTableConfig& side);
  std::vector<FieldConfig> ReadFields(const Entry& entry, const std::string& entity_context);
  std::optional<FieldConfig> ReadField(const Entry& entry, const std::string& entity_context);
  void ReadFieldOptions(const Section& section, FieldConfig& field);
  std::vector<std::pair<std::string, std::string>> ReadCodeMap(const Entry& entry,
                                                               const std::string& context);
  std::vector<ComputedColumnConfig> ReadComputed(const Entry& entry,
                                                 const std::string& entity_context);
  bool ReadLossy(const Entry& entry, const std::string& context);
  ConflictConfig ReadConflicts(const Entry& entry, const Section& entity,
                               const std::vector<FieldConfig>& fields);
  void ReadConflictFallback(const Entry& entry, const std::string& context,
                            ConflictConfig& conflicts);
  void ReadNewestBy(const Entry& entry, const std::string& context, ConflictConfig& conflicts);
  void ReadConflictFields(const Entry& entry, const Section& entity,
                          const std::vector<FieldConfig>& fields, const std::string& context,
                          ConflictConfig& conflicts);

  // Consistency checks.
  void CheckColumnsWrittenOnce(const EntityConfig& entity, const std::string& context);
  void CheckWriters(const std::string& context, Side side,
                    const std::vector<std::string>& key_columns,
                    const std::vector<ColumnWriter>& writers);
  void CheckLookupTargets(const Config& config);
  void CheckLookupCycles(const Config& config);
  enum class Visit { kNotYet, kOnPath, kDone };
  void VisitLookups(const Config& config, size_t entity, std::vector<Visit>& state,
                    std::vector<size_t>& path);

  std::string file_;
  std::string directory_;
  std::vector<ConfigProblem> problems_;
};

SourceLocation Parser::Where(const YAML::Mark& mark) const {
  if (mark.is_null()) return SourceLocation{file_};
  return SourceLocation{file_, mark.line + 1, mark.column + 1};
}

void Parser::Report(SourceLocation where, std::string message, std::string hint) {
  problems_.push_back(ConfigProblem{std::move(where), std::move(message), std::move(hint)});
}

std::vector<ConfigProblem> Parser::TakeProblems() {
  // Problems are found section by section; list them in file order.
  std::stable_sort(
      problems_.begin(), problems_.end(), [](const ConfigProblem& a, const ConfigProblem& b) {
        return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
      });
  return std::move(problems_);
}

void Parser::Parse(const std::string& text, Config& config) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    Report(Where(e.mark), "YAML syntax error: " + e.msg,
           "check indentation, colons and quotes on this line and the one before");
    return;
  }
  if (root.IsNull()) {
    Report(SourceLocation{file_}, "the config is empty",
           "start with `version: 1`, then `systems:` and `entities:`");
    return;
  }
  try {
    ReadTopLevel(root, config);
  } catch (const YAML::Exception& e) {
    // The readers check node types before converting, so this should not
    // happen; if it does, report it like any problem instead of crashing.
    Report(Where(e.mark), "cannot read the config: " + e.msg);
  }
}

void Parser::ReadTopLevel(const YAML::Node& root, Config& config) {
  Section top = ReadSection(root, Where(root), "", kTopLevelKeys);
  if (!top.is_map) return;
  ReadVersion(top, config);
  ReadSystems(top, config);
  if (const Entry* primary = top.Find("primary")) {
    config.primary = ReadChoice<Side>(*primary, "", kSideChoices).value_or(Side::kLegacy);
  }
  if (const Entry* sync = top.Find("sync")) {
    ReadSync(ReadSection(*sync, "sync", kSyncKeys), config.sync);
  }
  ReadEntities(top, config);
  CheckLookupTargets(config);
  CheckLookupCycles(config);
}

Section Parser::ReadSection(const YAML::Node& node, SourceLocation where, std::string context,
                            KeyNames allowed) {
  Section section;
  section.context = std::move(context);
  section.where = std::move(where);
  if (node.IsNull()) return section;  // `fields:` with nothing under it: no entries
  if (!node.IsMap()) {
    section.is_map = false;
    std::string what = section.context.empty() ? "the config" : section.context;
    Report(Where(node), what + " must be a map of `key: value` lines, got " + Describe(node));
    return section;
  }
  const std::vector<std::string> valid = Names(allowed);
  for (const auto& pair : node) {
    Entry entry{pair.first.Scalar(), pair.first, pair.second};
    if (!pair.first.IsScalar()) {
      Report(Where(entry.key),
             In(section.context, "keys must be names, got " + Describe(entry.key)));
    } else if (!allowed.empty() &&
               std::find(valid.begin(), valid.end(), entry.name) == valid.end()) {
      Report(Where(entry.key), In(section.context, "unknown key " + Quote(entry.name)),
             SuggestionHint(entry.name, valid, "valid keys"));
    } else if (section.Find(entry.name) != nullptr) {
      // yaml-cpp keeps both copies of a repeated key; silently using one
      // would hide the other's settings.
      Report(Where(entry.key), In(section.context, "key " + Quote(entry.name) + " appears twice"),
             "remove or merge one of them");
    } else {
      section.entries.push_back(std::move(entry));
    }
  }
  return section;
}

const Entry* Parser::Require(const Section& section, std::string_view key, std::string hint) {
  const Entry* entry = section.Find(key);
  if (entry == nullptr && section.is_map) {
    Report(section.where, In(section.context, "missing " + Quote(key)), std::move(hint));
  }
  return entry;
}

// A non-empty scalar: a name, a URL or an expression.
std::optional<std::string> Parser::ReadText(const Entry& entry, const std::string& context) {
  if (!entry.value.IsScalar()) {
    Report(Where(entry),
           In(context, Quote(entry.name) + " must be text, got " + Describe(entry.value)));
    return std::nullopt;
  }
  if (entry.value.Scalar().empty()) {
    Report(Where(entry), In(context, Quote(entry.name) + " is empty"));
    return std::nullopt;
  }
  return entry.value.Scalar();
}

template <typename T>
std::optional<T> Parser::ReadChoice(const Entry& entry, const std::string& context,
                                    std::span<const Choice<T>> choices) {
  std::optional<std::string> text = ReadText(entry, context);
  if (!text) return std::nullopt;
  for (const Choice<T>& choice : choices) {
    if (choice.name == *text) return choice.value;
  }
  std::vector<std::string> valid = Names(choices);
  std::string hint = "valid values: " + Join(valid);
  std::string closest = ClosestMatch(*text, valid);
  if (!closest.empty()) hint = "did you mean '" + closest + "'? " + hint;
  Report(Where(entry), In(context, entry.name + " " + Quote(*text) + " is not valid"), hint);
  return std::nullopt;
}

void Parser::ReadVersion(const Section& top, Config& config) {
  const Entry* entry = Require(top, "version", "add `version: 1` as the first line");
  if (entry == nullptr) return;
  int version = 0;
  if (!YAML::convert<int>::decode(entry->value, version) || version != 1) {
    Report(Where(*entry), "unsupported version " + Describe(entry->value),
           "this Tandem reads `version: 1`");
    return;
  }
  config.version = version;
}

void Parser::ReadSystems(const Section& top, Config& config) {
  const Entry* entry =
      Require(top, "systems", "add `systems:` with `legacy:` and `modern:` databases");
  if (entry == nullptr) return;
  Section systems = ReadSection(*entry, "systems", kSystemsKeys);
  config.legacy = ReadSystem(systems, Side::kLegacy);
  config.modern = ReadSystem(systems, Side::kModern);
}

SystemConfig Parser::ReadSystem(const Section& systems, Side side) {
  SystemConfig system;
  const std::string name = SideName(side);
  const std::string example = "`" + name + ": { database: \"sqlite:" + name + ".db\" }`";
  const Entry* entry = Require(systems, name, "add " + example);
  if (entry == nullptr) return system;
  system.where = Where(entry->key);
  Section section = ReadSection(*entry, "systems." + name, kSystemKeys);
  const Entry* database = Require(section, "database", "write it as " + example);
  if (database == nullptr) return system;
  std::optional<std::string> url = ReadText(*database, section.context);
  if (!url) return system;
  system.url = *url;
  std::optional<std::string> expanded = ExpandEnvironment(*database, section.context);
  if (!expanded) return system;
  if (*expanded == kSqlitePrefix) {
    Report(Where(*database), In(section.context, "database " + Quote(*url) + " names no file"),
           "write `sqlite:path/to/file.db`");
    return system;
  }
  system.resolved = ResolveDatabaseUrl(*expanded, directory_);
  return system;
}

// Expands `${NAME}` from the environment so secrets (passwords in server
// URLs) need not be written into the config. Each value is encoded for where
// it lands (ExpandTargetVariables), so any password works.
std::optional<std::string> Parser::ExpandEnvironment(const Entry& entry,
                                                     const std::string& context) {
  const std::string& text = entry.value.Scalar();
  ExpandedTarget expanded = ExpandTargetVariables(text, [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
  if (expanded.unterminated) {
    Report(Where(entry), In(context, "unterminated '${' in " + Quote(MaskConnectionTarget(text))),
           "write environment variables as ${NAME}");
    return std::nullopt;
  }
  for (const std::string& name : expanded.missing)
    Report(Where(entry), In(context, "environment variable " + Quote(name) + " is not set"),
           "export " + name + " before starting Tandem, or write the value directly");
  if (!expanded.missing.empty()) return std::nullopt;
  // The password is now known: nothing printed from here on may show it.
  // When libpq cannot read the target, any substituted value may be one.
  if (!RegisterTargetSecrets(expanded.text))
    for (const std::string& value : expanded.values) RegisterSecret(value);
  return expanded.text;
}

// Returns the member a `sync:` key sets (keys are already checked).
int& SyncOption(SyncOptions& sync, std::string_view name) {
  if (name == "poll_interval_ms") return sync.poll_interval_ms;
  if (name == "batch_size") return sync.batch_size;
  if (name == "busy_timeout_ms") return sync.busy_timeout_ms;
  if (name == "max_txn_ms") return sync.max_txn_ms;
  if (name == "max_txn_changes") return sync.max_txn_changes;
  return sync.purge_interval_ms;
}

void Parser::ReadSync(const Section& section, SyncOptions& sync) {
  for (const Entry& entry : section.entries) {
    if (entry.name == "sample_commit_boundaries" || entry.name == "detect_conflicts" ||
        entry.name == "split_transactions") {
      bool on = true;
      if (!YAML::convert<bool>::decode(entry.value, on))
        Report(Where(entry), In("sync", Quote(entry.name) + " must be true or false, got " + Describe(entry.value)));
      else if (entry.name == "sample_commit_boundaries")
        sync.sample_commit_boundaries = on;
      else if (entry.name == "detect_conflicts")
        sync.detect_conflicts = on;
      else
        sync.split_transactions = on;
      continue;
    }
    // The transaction bounds take 0 for "no bound".
    const bool zero_ok = entry.name == "max_txn_ms" || entry.name == "max_txn_changes";
    int value = 0;
    if (!YAML::convert<int>::decode(entry.value, value) || value < 0 || (value == 0 && !zero_ok)) {
      Report(Where(entry),
             In("sync", Quote(entry.name) + " must be a " + (zero_ok ? "whole number >= 0 (0: no bound)" : "positive whole number") + ", got " +
                            Describe(entry.value)),
             "remove it to use the default");
      continue;
    }
    SyncOption(sync, entry.name) = value;
  }
}

void Parser::ReadEntities(const Section& top, Config& config) {
  const Entry* entry = Require(top, "entities", "add `entities:` with at least one entity");
  if (entry == nullptr) return;
  Section entities = ReadSection(*entry, "entities", kAnyKey);
  if (entities.is_map && entities.entries.empty()) {
    Report(Where(*entry), "'entities' is empty", "define at least one entity to sync");
  }
  for (const Entry& entity : entities.entries) config.entities.push_back(ReadEntity(entity));
}

EntityConfig Parser::ReadEntity(const Entry& entry) {
  EntityConfig entity;
  entity.name = entry.name;
  entity.where = Where(entry.key);
  const std::string context = "entity " + Quote(entry.name);
  Section section = ReadSection(entry, context, kEntityKeys);
  if (const Entry* direction = section.Find("direction")) {
    entity.direction = ReadChoice<SyncDirection>(*direction, context, kDirectionChoices)
                           .value_or(SyncDirection::kBoth);
  }
  entity.legacy = ReadSide(section, Side::kLegacy);
  entity.modern = ReadSide(section, Side::kModern);
  if (const Entry* fields = section.Find("fields")) entity.fields = ReadFields(*fields, context);
  if (const Entry* computed = section.Find("to_modern")) {
    entity.to_modern = ReadComputed(*computed, context);
  }
  if (const Entry* computed = section.Find("to_legacy")) {
    entity.to_legacy = ReadComputed(*computed, context);
  }
  // Read after fields/to_modern/to_legacy, whatever the YAML order: its
  // `fields:` names must be among theirs.
  if (const Entry* conflicts = section.Find("conflicts")) {
    entity.conflicts = ReadConflicts(*conflicts, section, entity.fields);
  }
  CheckColumnsWrittenOnce(entity, context);
  return entity;
}

SideTableConfig Parser::ReadSide(const Section& entity, Side side) {
  SideTableConfig table;
  const std::string name = SideName(side);
  const Entry* entry = Require(entity, name, "add `" + name + ": { table: ..., key: ... }`");
  if (entry == nullptr) return table;
  table.where = Where(entry->key);
  Section section = ReadSection(*entry, entity.context + ", " + name, kSideKeys);
  if (const Entry* t = Require(section, "table", "name the " + name + " table: `table: NAME`")) {
    table.table = ReadText(*t, section.context).value_or("");
  }
  if (const Entry* key =
          Require(section, "key", "name its key column(s): `key: ID` or `key: [A, B]`")) {
    table.key = ReadKeyColumns(*key, section.context);
  }
  if (const Entry* new_keys = section.Find("new_keys")) {
    std::optional<NewKeys> value = ReadChoice<NewKeys>(*new_keys, section.context, kNewKeysChoices);
    table.new_keys = value.value_or(NewKeys::kSame);
    table.new_keys_given = value.has_value();
  }
  CheckNewKeysFitKey(section, table);
  return table;
}

// `key: ID` or `key: [A, B]` (a composite key).
std::vector<std::string> Parser::ReadKeyColumns(const Entry& entry, const std::string& context) {
  if (entry.value.IsScalar()) {
    std::optional<std::string> column = ReadText(entry, context);
    return column ? std::vector<std::string>{*column} : std::vector<std::string>{};
  }
  if (!entry.value.IsSequence() || entry.value.size() == 0) {
    Report(Where(entry),
           In(context, "'key' must be a column name or a non-empty list of column names, got " +
                           Describe(entry.value)));
    return {};
  }
  std::vector<std::string> columns;
  for (const YAML::Node& item : entry.value) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      Report(Where(item), In(context, "key columns must be column names, got " + Describe(item)));
    } else if (std::find(columns.begin(), columns.end(), item.Scalar()) != columns.end()) {
      Report(Where(item), In(context, "key column " + Quote(item.Scalar()) + " is listed twice"));
    } else {
      columns.push_back(item.Scalar());
    }
  }
  return columns;
}

// A database assigns one value per insert (an INTEGER PRIMARY KEY, a serial),
// so it cannot fill a key of several columns.
void Parser::CheckNewKeysFitKey(const Section& side_section, const SideTableConfig& side) {
  if (side.new_keys != NewKeys::kDatabase || side.key.size() <= 1) return;
  const Entry* new_keys = side_section.Find("new_keys");
  Report(Where(*new_keys),
         In(side_section.context, "new_keys: database needs a single-column key, but the key has " +
                                      std::to_string(side.key.size()) + " columns"),
         "use new_keys: uuid or same, or a single-column key");
}

std::vector<FieldConfig> Parser::ReadFields(const Entry& entry, const std::string& entity_context) {
  Section section = ReadSection(entry, entity_context + ", fields", kAnyKey);
  std::vector<FieldConfig> fields;
  for (const Entry& field_entry : section.entries) {
    if (std::optional<FieldConfig> field = ReadField(field_entry, entity_context)) {
      fields.push_back(std::move(*field));
    }
  }
  return fields;
}

// `modern_column: LEGACY_COLUMN` (a copy) or `modern_column: { legacy: ..., ... }`.
std::optional<FieldConfig> Parser::ReadField(const Entry& entry,
                                             const std::string& entity_context) {
  FieldConfig field;
  field.modern_column = entry.name;
  field.where = Where(entry.key);
  const std::string context = entity_context + ", field " + Quote(entry.name);
  if (entry.value.IsScalar()) {
    std::optional<std::string> legacy = ReadText(entry, context);
    if (!legacy) return std::nullopt;
    field.legacy_column = *legacy;
    return field;
  }
  if (!entry.value.IsMap()) {
    Report(Where(entry),
           In(context, "expected a legacy column name or a map, got " + Describe(entry.value)),
           "write `" + entry.name + ": LEGACY_COLUMN` or `" + entry.name +
               ": { legacy: LEGACY_COLUMN, ... }`");
    return std::nullopt;
  }
  ReadFieldOptions(ReadSection(entry, context, kFieldKeys), field);
  return field;
}

// Decides the field's kind from which keys are present: `map` (a code map),
// `lookup`, `to_modern`/`to_legacy` (expressions), or none (a plain copy).
void Parser::ReadFieldOptions(const Section& section, FieldConfig& field) {
  if (const Entry* legacy =
          Require(section, "legacy", "name the legacy column: `legacy: COLUMN`")) {
    field.legacy_column = ReadText(*legacy, section.context).value_or("");
  }
  const Entry* map = section.Find("map");
  const Entry* lookup = section.Find("lookup");
  const Entry* to_modern = section.Find("to_modern");
  const Entry* to_legacy = section.Find("to_legacy");
  std::vector<std::string> kinds;
  for (const Entry* given : {map, lookup, to_modern, to_legacy}) {
    if (given != nullptr) kinds.push_back(Quote(given->name));
  }
  bool is_expression = to_modern != nullptr || to_legacy != nullptr;
  int kind_count = int{map != nullptr} + int{lookup != nullptr} + int{is_expression};
  if (kind_count > 1) {
    Report(field.where,
           In(section.context, "ambiguous mapping: " + JoinWithAnd(kinds) + " cannot be combined"),
           "a field is one of: a code map (map), an expression (to_modern/to_legacy) or a lookup");
  }
  if (const Entry* lossy = section.Find("lossy")) field.lossy = ReadLossy(*lossy, section.context);
  if (map != nullptr) {
    field.kind = FieldKind::kCodeMap;
    field.code_map = ReadCodeMap(*map, section.context);
  } else if (lookup != nullptr) {
    field.kind = FieldKind::kLookup;
    field.lookup_entity = ReadText(*lookup, section.context).value_or("");
  } else if (is_expression) {
    field.kind = FieldKind::kExpression;
    if (to_modern != nullptr) field.to_modern = ReadText(*to_modern, section.context).value_or("");
    if (to_legacy != nullptr) field.to_legacy = ReadText(*to_legacy, section.context).value_or("");
  }
}

// `map: { A: active, I: inactive }`. It must be one-to-one because changes
// flow both ways: the reverse map must also give exactly one code per value.
std::vector<std::pair<std::string, std::string>> Parser::ReadCodeMap(const Entry& entry,
                                                                     const std::string& context) {
  const std::string hint =
      "each legacy code must map to its own modern value; use to_modern/to_legacy "
      "expressions for many-to-one mappings";
  if (!entry.value.IsMap() || entry.value.size() == 0) {
    Report(Where(entry),
           In(context, "map must list `legacy code: modern value` pairs, got " +
                           (entry.value.IsMap() ? "an empty map" : Describe(entry.value))));
    return {};
  }
  std::vector<std::pair<std::string, std::string>> code_map;
  std::map<std::string, std::string> code_of_value;
  for (const auto& pair : entry.value) {
    if (!pair.first.IsScalar() || !pair.second.IsScalar()) {
      Report(Where(pair.first.IsScalar() ? pair.second : pair.first),
             In(context, "map entries must be `legacy code: modern value` text, got " +
                             Describe(pair.first) + ": " + Describe(pair.second)),
             "quote codes that YAML would read otherwise, e.g. '~'");
      continue;
    }
    const std::string& code = pair.first.Scalar();
    const std::string& value = pair.second.Scalar();
    auto same_code = std::find_if(code_map.begin(), code_map.end(),
                                  [&](const auto& mapped) { return mapped.first == code; });
    if (same_code != code_map.end()) {
      Report(Where(pair.first),
             In(context, "map is not one-to-one: legacy code " + Quote(code) + " appears twice"),
             hint);
      continue;
    }
    auto [previous, inserted] = code_of_value.emplace(value, code);
    if (!inserted) {
      Report(Where(pair.second),
             In(context, "map is not one-to-one: modern value " + Quote(value) +
                             " comes from both " + Quote(previous->second) + " and " + Quote(code)),
             hint);
      continue;
    }
    code_map.emplace_back(code, value);
  }
  return code_map;
}

// `lossy: true|false`.
bool Parser::ReadLossy(const Entry& entry, const std::string& context) {
  bool on = false;
  if (!YAML::convert<bool>::decode(entry.value, on)) {
    Report(Where(entry), In(context, "'lossy' must be true or false, got " + Describe(entry.value)),
           "lossy: true lets this mapping change values on purpose (see docs/configuration.md)");
    return false;
  }
  return on;
}

// `to_modern: { first_name: "expr" }` or `to_legacy: { CNAME: "expr" }`.
std::vector<ComputedColumnConfig> Parser::ReadComputed(const Entry& entry,
                                                       const std::string& entity_context) {
  Section section = ReadSection(entry, entity_context + ", " + entry.name, kAnyKey);
  std::vector<ComputedColumnConfig> columns;
  for (const Entry& column : section.entries) {
    std::string context = entity_context + ", " + entry.name + " " + Quote(column.name);
    if (column.value.IsMap()) {  // { expr: "...", lossy: true }
      Section options = ReadSection(column, context, kComputedKeys);
      const Entry* expr = Require(options, "expr", "write the expression as `expr: \"...\"`");
      std::optional<std::string> expression = expr ? ReadText(*expr, context) : std::nullopt;
      if (!expression) continue;
      ComputedColumnConfig computed{column.name, *expression, Where(column.key)};
      if (const Entry* lossy = options.Find("lossy")) computed.lossy = ReadLossy(*lossy, context);
      columns.push_back(std::move(computed));
      continue;
    }
    std::optional<std::string> expression = ReadText(column, context);
    if (!expression) continue;
    columns.push_back(ComputedColumnConfig{column.name, *expression, Where(column.key)});
  }
  return columns;
}

// The names `conflicts.fields` may use: the keys of the entity's `fields:`,
// `to_modern:` and `to_legacy:` maps, in YAML order, each once. Read from the
// YAML rather than the parsed fields so that a field with a problem of its own
// is still a known name (and not reported a second time).
std::vector<std::string> MappedFieldNames(const Section& entity) {
  std::vector<std::string> names;
  for (std::string_view key : {"fields", "to_modern", "to_legacy"}) {
    const Entry* entry = entity.Find(key);
    if (entry == nullptr || !entry->value.IsMap()) continue;
    for (const auto& pair : entry->value) {
      if (!pair.first.IsScalar()) continue;
      const std::string& name = pair.first.Scalar();
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

// `conflicts: { default, fallback, newest_by, fields, on_delete, read_only_edits }`.
ConflictConfig Parser::ReadConflicts(const Entry& entry, const Section& entity,
                                     const std::vector<FieldConfig>& fields) {
  ConflictConfig conflicts;
  conflicts.given = true;
  conflicts.where = Where(entry.key);
  Section section = ReadSection(entry, entity.context + ", conflicts", kConflictKeys);
  const std::string& context = section.context;
  if (const Entry* value = section.Find("default")) {
    conflicts.default_policy = ReadChoice<ConflictPolicy>(*value, context, kConflictPolicyChoices)
                                   .value_or(ConflictPolicy::kMerge);
  }
  if (const Entry* value = section.Find("fallback")) {
    ReadConflictFallback(*value, context, conflicts);
  }
  if (const Entry* value = section.Find("newest_by")) ReadNewestBy(*value, context, conflicts);
  if (const Entry* value = section.Find("fields")) {
    ReadConflictFields(*value, entity, fields, context, conflicts);
  }
  if (const Entry* value = section.Find("on_delete")) {
    conflicts.on_delete = ReadChoice<DeletePolicy>(*value, context, kDeletePolicyChoices)
                              .value_or(DeletePolicy::kPrimary);
  }
  if (const Entry* value = section.Find("read_only_edits")) {
    conflicts.read_only_edits =
        ReadChoice<ReadOnlyEditPolicy>(*value, context, kReadOnlyEditChoices)
            .value_or(ReadOnlyEditPolicy::kRevert);
  }
  return conflicts;
}

// `fallback:` settles a field merge found changed on both sides, so it cannot
// be merge itself. Left unset (fallback_given false) when absent or invalid.
void Parser::ReadConflictFallback(const Entry& entry, const std::string& context,
                                  ConflictConfig& conflicts) {
  if (entry.value.IsScalar() && entry.value.Scalar() == "merge") {
    Report(Where(entry),
           In(context, "fallback 'merge' is not valid: merge cannot be its own fallback"),
           "name what merge does for a field changed on both sides: " +
               Join(Names<ConflictPolicy>(kFallbackChoices)) +
               "; or remove fallback to use the primary side");
    return;
  }
  std::optional<ConflictPolicy> fallback =
      ReadChoice<ConflictPolicy>(entry, context, kFallbackChoices);
  if (!fallback) return;
  conflicts.fallback = *fallback;
  conflicts.fallback_given = true;
}

// `newest_by: { legacy: UPDTS, modern: updated_at }`: both sides or neither
// (then `newest` compares capture times).
void Parser::ReadNewestBy(const Entry& entry, const std::string& context,
                          ConflictConfig& conflicts) {
  Section section = ReadSection(entry, context + ".newest_by", kNewestByKeys);
  const Entry* legacy = section.Find("legacy");
  const Entry* modern = section.Find("modern");
  if (legacy != nullptr) {
    conflicts.newest_by_legacy = ReadText(*legacy, section.context).value_or("");
  }
  if (modern != nullptr) {
    conflicts.newest_by_modern = ReadText(*modern, section.context).value_or("");
  }
  if ((legacy == nullptr) != (modern == nullptr)) {
    const std::string given = legacy != nullptr ? "legacy" : "modern";
    const std::string missing = legacy != nullptr ? "modern" : "legacy";
    Report(Where(entry.key),
           In(context, "newest_by names a " + given + " column but no " + missing +
                           " column: newest needs a timestamp column on both sides"),
           "give both `legacy:` and `modern:` columns, or remove newest_by to compare capture "
           "times");
  }
}

// `fields: { email: modern-wins, ... }`: per-field overrides of the default.
// A field named twice is reported by ReadSection ("appears twice").
void Parser::ReadConflictFields(const Entry& entry, const Section& entity,
                                const std::vector<FieldConfig>& fields, const std::string& context,
                                ConflictConfig& conflicts) {
  Section section = ReadSection(entry, context + ".fields", kAnyKey);
  const std::vector<std::string> known = MappedFieldNames(entity);
  for (const Entry& field : section.entries) {
    bool is_known = std::find(known.begin(), known.end(), field.name) != known.end();
    if (!is_known) {
      std::string hint;
      if (known.empty()) {
        hint =
            "the entity maps no fields; name fields from its `fields:`, `to_modern:` or "
            "`to_legacy:`";
      } else {
        hint = SuggestionHint(field.name, known, "its fields");
        // Names are matched exactly; point out a spelling that differs only in
        // case, or a legacy column of `fields:` written instead of its field.
        for (const std::string& name : known) {
          if (FoldCase(name) == FoldCase(field.name)) hint = "did you mean '" + name + "'?";
        }
        for (const FieldConfig& mapped : fields) {
          if (mapped.legacy_column.empty() ||
              FoldCase(mapped.legacy_column) != FoldCase(field.name)) {
            continue;
          }
          hint = "did you mean '" + mapped.modern_column + "'? (" + Quote(mapped.legacy_column) +
                 " is its legacy column; name fields by their `fields:` key)";
          break;
        }
      }
      Report(Where(field.key),
             In(section.context, "unknown field " + Quote(field.name) +
                                     ": not a key of the entity's `fields:`, `to_modern:` or "
                                     "`to_legacy:`"),
             hint);
    }
    std::optional<ConflictPolicy> policy =
        ReadChoice<ConflictPolicy>(field, section.context, kConflictPolicyChoices);
    if (!is_known || !policy) continue;
    conflicts.fields.push_back({field.name, *policy, Where(field.key)});
  }
}

// Two mappings writing one column would race: the row would end up with
// whichever value was applied last. Key columns are left out: the engine sets
// them from the key logic, never from fields (a lookup whose legacy column is
// the legacy key is how a split entity shares its parent's row).
void Parser::CheckColumnsWrittenOnce(const EntityConfig& entity, const std::string& context) {
  std::vector<ColumnWriter> modern;
  std::vector<ColumnWriter> legacy;
  for (const FieldConfig& field : entity.fields) {
    const std::string writer = "field " + Quote(field.modern_column);
    // A one-way expression only reads the column on the side it does not map
    // to, so several may share a legacy column (e.g. splitting a name).
    bool expression = field.kind == FieldKind::kExpression;
    if (!expression || !field.to_modern.empty()) {
      modern.push_back({field.modern_column, writer, field.where});
    }
    if ((!expression || !field.to_legacy.empty()) && !field.legacy_column.empty()) {
      legacy.push_back({field.legacy_column, writer, field.where});
    }
  }
  for (const ComputedColumnConfig& c : entity.to_modern) {
    modern.push_back({c.column, "to_modern " + Quote(c.column), c.where});
  }
  for (const ComputedColumnConfig& c : entity.to_legacy) {
    legacy.push_back({c.column, "to_legacy " + Quote(c.column), c.where});
  }
  CheckWriters(context, Side::kModern, entity.modern.key, modern);
  CheckWriters(context, Side::kLegacy, entity.legacy.key, legacy);
}

void Parser::CheckWriters(const std::string& context, Side side,
                          const std::vector<std::string>& key_columns,
                          const std::vector<ColumnWriter>& writers) {
  std::map<std::string, const ColumnWriter*> first_writer;  // by case-folded column
  for (const std::string& key : key_columns) first_writer.emplace(FoldCase(key), nullptr);
  for (const ColumnWriter& writer : writers) {
    auto [first, inserted] = first_writer.emplace(FoldCase(writer.column), &writer);
    if (inserted || first->second == nullptr) continue;  // first writer, or a key column
    Report(writer.where,
           In(context, std::string(SideName(side)) + " column " + Quote(writer.column) +
                           " is written twice: by " + first->second->writer + " (line " +
                           std::to_string(first->second->where.line) + ") and by " + writer.writer),
           "each column may be written by only one field or computed column");
  }
}

void Parser::CheckLookupTargets(const Config& config) {
  std::vector<std::string> known;
  for (const EntityConfig& entity : config.entities) known.push_back(entity.name);
  for (const EntityConfig& entity : config.entities) {
    for (const FieldConfig& field : entity.fields) {
      if (field.kind != FieldKind::kLookup || field.lookup_entity.empty()) continue;
      if (config.FindEntity(field.lookup_entity) != nullptr) continue;
      std::string hint = "known entities: " + Join(known);
      std::string closest = ClosestMatch(field.lookup_entity, known);
      if (!closest.empty()) hint = "did you mean '" + closest + "'? " + hint;
      Report(field.where,
             "entity " + Quote(entity.name) + ", field " + Quote(field.modern_column) +
                 ": lookup names unknown entity " + Quote(field.lookup_entity),
             hint);
    }
  }
}

// A lookup means "translate through that entity's key map", which needs the
// looked-up row synced first; a cycle leaves no entity that can go first.
void Parser::CheckLookupCycles(const Config& config) {
  std::vector<Visit> state(config.entities.size(), Visit::kNotYet);
  std::vector<size_t> path;
  for (size_t i = 0; i < config.entities.size(); ++i) {
    if (state[i] == Visit::kNotYet) VisitLookups(config, i, state, path);
  }
}

// Depth-first search; a lookup back to an entity on the current path closes a cycle.
void Parser::VisitLookups(const Config& config, size_t entity, std::vector<Visit>& state,
                          std::vector<size_t>& path) {
  state[entity] = Visit::kOnPath;
  path.push_back(entity);
  for (const FieldConfig& field : config.entities[entity].fields) {
    if (field.kind != FieldKind::kLookup) continue;
    const EntityConfig* target_entity = config.FindEntity(field.lookup_entity);
    if (target_entity == nullptr) continue;  // reported by CheckLookupTargets
    size_t target = static_cast<size_t>(target_entity - config.entities.data());
    if (state[target] == Visit::kNotYet) {
      VisitLookups(config, target, state, path);
    } else if (state[target] == Visit::kOnPath) {
      std::vector<std::string> cycle;
      for (auto it = std::find(path.begin(), path.end(), target); it != path.end(); ++it) {
        cycle.push_back(config.entities[*it].name);
      }
      cycle.push_back(target_entity->name);
      Report(field.where,
             "entity " + Quote(config.entities[entity].name) + ", field " +
                 Quote(field.modern_column) + ": lookups form a cycle: " + Join(cycle, " -> "),
             "lookups must point from child to parent entities; make one of them a plain copy");
    }
  }
  path.pop_back();
  state[entity] = Visit::kDone;
}

}  // namespace

std::string SourceLocation::ToString() const {
  if (line == 0) return file;
  std::string out = file + ":" + std::to_string(line);
  if (column > 0) out += ":" + std::to_string(column);
  return out;
}

std::string SystemConfig::Shown() const { return MaskConnectionTarget(resolved); }

namespace {

enum class TargetForm { kUri, kConninfo, kOther };

TargetForm FormOf(std::string_view text) {
  if (text.starts_with("postgresql://") || text.starts_with("postgres://")) return TargetForm::kUri;
  if (text.starts_with(kSqlitePrefix)) return TargetForm::kOther;
  // Keyword/value conninfo: an '=' outside the references.
  for (size_t pos = 0; pos < text.size();) {
    size_t start = text.find("${", pos);
    std::string_view literal = text.substr(pos, start == std::string_view::npos ? std::string_view::npos : start - pos);
    if (literal.find('=') != std::string_view::npos) return TargetForm::kConninfo;
    if (start == std::string_view::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return TargetForm::kOther;
}

// Where a reference sits in keyword/value conninfo, from the literal text
// before it (libpq's syntax: a value is single-quoted or runs to whitespace,
// a backslash escapes the next character).
struct ConninfoPosition {
  bool in_quotes = false;
  bool value_start = false;  // right after `key =`: nothing of the value yet
  void Read(std::string_view literal) {
    for (size_t i = 0; i < literal.size(); ++i) {
      const char c = literal[i];
      if (in_quotes) {
        if (c == '\\') ++i;
        else if (c == '\'') in_quotes = false;
      } else if (c == '=') {
        value_start = true;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        // whitespace after '=' keeps the value to come
      } else {
        if (c == '\'' && value_start) in_quotes = true;
        if (c == '\\') ++i;
        value_start = false;
      }
    }
  }
};

std::string EscapeConninfoUnquoted(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '\'' || std::isspace(static_cast<unsigned char>(c))) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

ExpandedTarget ExpandTargetVariables(std::string_view text,
                                     const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  ExpandedTarget out;
  const TargetForm form = FormOf(text);
  ConninfoPosition conninfo;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find("${", pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string_view::npos) {
      out.unterminated = true;
      break;
    }
    const std::string_view literal = text.substr(pos, start - pos);
    out.text += literal;
    conninfo.Read(literal);
    const std::string name(text.substr(start + 2, end - start - 2));
    std::optional<std::string> value = lookup(name);
    pos = end + 1;
    if (!value) {
      out.missing.push_back(name);
      continue;
    }
    out.values.push_back(*value);
    switch (form) {
      case TargetForm::kUri:
        out.text += PercentEncode(*value);
        break;
      case TargetForm::kConninfo: {
        const bool whole_value = conninfo.value_start && !conninfo.in_quotes &&
                                 (pos == text.size() || std::isspace(static_cast<unsigned char>(text[pos])));
        const std::string quoted = QuoteConninfoValue(*value);
        if (whole_value) out.text += quoted;
        else if (conninfo.in_quotes) out.text += quoted.substr(1, quoted.size() - 2);  // the text's own quotes
        else out.text += EscapeConninfoUnquoted(*value);
        conninfo.value_start = false;
        break;
      }
      case TargetForm::kOther:
        out.text += *value;
        break;
    }
  }
  out.text += text.substr(std::min(pos, text.size()));
  return out;
}

std::string ConfigProblem::ToString() const {
  std::string out = where.ToString() + ": " + message;
  if (!hint.empty()) out += " (hint: " + hint + ")";
  return out;
}

const EntityConfig* Config::FindEntity(const std::string& name) const {
  for (const EntityConfig& entity : entities) {
    if (entity.name == name) return &entity;
  }
  return nullptr;
}

ParseOutcome ParseConfigText(const std::string& text, const std::string& path_for_messages,
                             const std::string& directory) {
  ParseOutcome outcome;
  outcome.config.path = path_for_messages;
  outcome.config.directory = AbsoluteFolder(directory);
  Parser parser(path_for_messages, outcome.config.directory);
  parser.Parse(text, outcome.config);
  outcome.problems = parser.TakeProblems();
  return outcome;
}

ParseOutcome ParseConfigFile(const std::string& path) {
  const std::string directory = AbsoluteFolder(fs::path(path).parent_path().string());
  Result<std::string> text = ReadFileText(path);
  if (!text.ok()) {
    ParseOutcome outcome;
    outcome.config.path = path;
    outcome.config.directory = directory;
    std::string hint = text.status().code() == StatusCode::kNotFound
                           ? "check the path; a relative path is taken from the current directory"
                           : "check that the file is readable";
    outcome.problems.push_back(ConfigProblem{SourceLocation{path}, text.status().message(), hint});
    return outcome;
  }
  return ParseConfigText(*text, path, directory);
}

}  // namespace tandem
