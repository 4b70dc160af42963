// AppliedRecord: one record a committed batch wrote, for the demo's live view
// and tests (SyncEngine::SetAppliedCallback).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mapping/config.h"

namespace tandem {

struct AppliedRecord {
  Side source;
  std::string entity;
  std::string op;  // "insert" | "update" | "delete"
  std::string source_key;
  std::string target_key;
  int64_t captured_at_ms;  // when the source change was captured
};
// Called after each committed batch with what it wrote.
using AppliedCallback = std::function<void(const std::vector<AppliedRecord>&)>;

}  // namespace tandem
