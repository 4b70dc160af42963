// Installer: creates (and removes) Tandem's control tables and capture
// triggers on both databases, as `tandem install` / `tandem uninstall` do.
//
// Install is idempotent: running it again recreates the triggers from the
// current config and keeps table ids, positions, key maps and parked changes.
// Tables no longer captured lose their triggers.
#pragma once

#include <string>
#include <vector>

#include "connectors/connector.h"
#include "mapping/entity_mapping.h"

namespace tandem {

struct InstallPlan {
  std::vector<std::string> statements[2];  // [0] legacy, [1] modern
  // What the operator must know before (or after) it runs: capture found
  // broken, which install repairs, leaving a gap (engine/capture_health.h).
  std::vector<std::string> warnings;
};

// The SQL that install would run on each side.
Result<InstallPlan> PlanInstall(const CompiledMapping& mapping, Connector& legacy, Connector& modern);
// The SQL that uninstall would run on each side (data is kept).
Result<InstallPlan> PlanUninstall(Connector& legacy, Connector& modern);
// Runs a plan, one transaction per side.
Status ExecutePlan(const InstallPlan& plan, Connector& legacy, Connector& modern);

}  // namespace tandem
