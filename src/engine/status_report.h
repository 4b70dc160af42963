// StatusReport: what `tandem status` shows, read from both databases' control
// tables (works whether or not `tandem run` is running).
#pragma once

#include <nlohmann/json.hpp>

#include "connectors/connector.h"
#include "mapping/config.h"

namespace tandem {

// Per entity and direction: pending changes, last applied, lag, put-aside
// changes, conflicts; plus the put-aside changes and recent conflicts.
Result<nlohmann::json> BuildStatusReport(const Config& config, Connector& legacy, Connector& modern);
std::string RenderStatusText(const nlohmann::json& report);

// Asks the running engine to retry put-aside changes (id, or all when id < 0)
// stored in `db`. Returns how many were marked.
Result<int64_t> RequestRetry(SqlSession& db, int64_t id);

// Removes a put-aside change for good (recorded in the audit table).
Status DiscardParked(ApplyTarget& stored_in, int64_t id);

}  // namespace tandem
