// What the "kinds" benchmarks (SQLite: bench/sqlite_kinds.cc, PostgreSQL:
// bench/pg_kinds.cc) write, and the helpers both print their figures with.
//
// A workload is one kind of change (inserts, updates, deletes, or a mix of
// 70% updates / 20% inserts / 10% deletes interleaved inside each
// transaction) over numbered records: records 0..preload exist and are
// synced before the clock starts (record 0 is the warm-up record, never
// touched by the measured part), then the measured transactions run, 1,000
// changes each. Updates and deletes only touch pre-loaded records, each at
// most once; inserts make records preload+1, preload+2, ...
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tandem::benchkit {

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

enum class Kind { kInsert, kUpdate, kDelete, kMixed };
const char* KindName(Kind k);  // "insert", "update", "delete", "mixed"

// "insert,update,..." (or "all"); false with `error` set on an unknown name.
bool ParseKinds(const std::string& text, std::vector<Kind>* out, std::string* error);

// The side the workload writes: "legacy" (legacy -> modern), "modern" (modern -> legacy).
enum class From { kLegacy, kModern };
const char* DirectionName(From f);  // "legacy->modern" or "modern->legacy"
const char* DirectionKey(From f);   // the same for JSON: "legacy_to_modern" or "modern_to_legacy"
// "legacy,modern" (also "legacy-to-modern", "modern-to-legacy", "both").
bool ParseDirections(const std::string& text, std::vector<From>* out, std::string* error);

enum class Op : char { kInsert, kUpdate, kDelete };
struct Step {
  Op op;
  int64_t n;  // the record
};

struct Workload {
  Kind kind;
  int64_t preload = 0;  // records 1..preload (and 0) exist before the measured part
  std::vector<std::vector<Step>> txns;
  int64_t inserts = 0, updates = 0, deletes = 0;
  int64_t changes() const { return inserts + updates + deletes; }
  // Records present once every change arrived (record 0 included).
  int64_t final_rows() const { return preload + 1 + inserts - deletes; }
  // The last change written: when its effect shows on the other side, every
  // change before it has (both Tandem and the peers apply in commit order).
  // The mixed workload always ends with an update.
  const Step& last() const { return txns.back().back(); }
};

// `changes` (a positive multiple of `per_tx`, itself a multiple of 10) changes of `kind`.
Workload MakeWorkload(Kind kind, int64_t changes, int per_tx = 1000);

// A plain-text table: columns sized to their widest cell, numbers right-aligned.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "12,345" (rounded); "-" for a negative value (not measured).
std::string Rate(double per_s);
// "0.63x"; "-" when either side is not positive.
std::string Ratio(double a, double b);

// CPU time (user + system) of a process so far, from /proc/PID/stat; -1 when it is gone.
double ProcessCpuSeconds(int pid);

}  // namespace tandem::benchkit
