// SQLite -> SQLite, every kind of change in each direction (tandem_bench
// --only kinds): Tandem's rate beside the raw rate of writing the same rows
// into the target and the floor with key-map rows; idle CPU of `tandem run`.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "workload.h"

namespace tandem::bench {

struct KindsOptions {
  int64_t changes = 100000;  // per kind and direction, in 1,000-change source transactions
  std::vector<benchkit::Kind> kinds;
  std::vector<benchkit::From> directions;
  double idle_seconds = 10;  // 0: no idle CPU figure
};

nlohmann::json SqliteKinds(const KindsOptions& options);

}  // namespace tandem::bench
