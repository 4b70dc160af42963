// PostgreSQL -> PostgreSQL, every kind of change in each direction against
// the peers (tandem_pg_bench --only kinds; issue 13): Tandem, native logical
// replication, Bucardo and the raw rate of the same statements into the
// target, on one table
//   customers(id bigint PRIMARY KEY, name text, email text, balance numeric(12,2), updated_at timestamptz)
// in two databases of one cluster, Tandem with an identity mapping
// (new_keys: same). Every figure is first source write -> last change visible
// in the target database, for the same workload (bench/workload.h) written by
// the same client code. pg_kinds.cc: the workload, Tandem, the raw rate, the
// table; pg_peers.cc: logical replication and Bucardo.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pg_support.h"
#include "workload.h"

namespace tandem::pgbench {

struct PgKindsOptions {
  int64_t changes = 100000;  // per kind and direction, in 1,000-change source transactions
  std::vector<benchkit::Kind> kinds;
  std::vector<benchkit::From> directions;
  double idle_seconds = 10;  // idle CPU of `tandem run` and its sessions; 0: not measured
  bool logical = true;       // measure native logical replication
  bool bucardo = true;       // measure Bucardo
  std::string bucardo_skipped;  // why Bucardo is not measured (set by --no-bucardo or the environment)
};

nlohmann::json PgKinds(const PgKindsOptions& options);

// --- shared by pg_kinds.cc and pg_peers.cc ---

// Two fresh databases, each with an empty customers table.
struct KindsPair {
  BenchDatabase legacy, modern;
  explicit KindsPair(const std::string& what);
  const BenchDatabase& source(benchkit::From f) const { return f == benchkit::From::kLegacy ? legacy : modern; }
  const BenchDatabase& target(benchkit::From f) const { return f == benchkit::From::kLegacy ? modern : legacy; }
};

// A short name for database and slot names: "l_update" (legacy->modern, updates).
std::string MeasurementName(benchkit::From from, benchkit::Kind kind);

// The application writes records 0..preload, 10,000 rows per transaction.
void WritePreload(PgConn& db, int64_t preload);
// Updates record 0 on `source`, waits until the target shows it (the
// replicator is connected and applying); `alive` as in TimeWorkload. False
// when it did not arrive within `timeout_s`.
bool WarmUp(PgConn& source, const std::string& target_url, const std::function<void()>& alive, double timeout_s);

struct Timing {
  double seconds = -1;         // first source write -> every change visible in the target
  double source_seconds = -1;  // the source writes alone
};
// Writes `w` with `source` while a second session polls the target every 2 ms
// for the last change, then checks every change arrived (row count, updated
// rows). `alive` is called every 200 ms or so while waiting: it fails the
// benchmark when the replicator died or put changes aside.
Timing TimeWorkload(PgConn& source, const std::string& target_url, const benchkit::Workload& w,
                    const std::function<void()>& alive, const std::string& what);
// The same workload's statements straight into `db` (the raw rate).
double WriteWorkload(PgConn& db, const benchkit::Workload& w);

// Native logical replication source -> target (a publication, a slot made
// beforehand, a subscription), the same workload.
Timing MeasureLogical(const benchkit::Workload& w, benchkit::From from);
// Bucardo: a two-way (source/source) sync of customers between the two
// databases, its daemon started for the measurement, then stopped and its
// control database dropped. `skipped` gets why, when Bucardo cannot be set up
// here (not installed, no PL/Perl, ...); the Timing is then empty.
Timing MeasureBucardo(const benchkit::Workload& w, benchkit::From from, std::string* skipped);

}  // namespace tandem::pgbench
