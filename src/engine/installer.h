// Installer: creates (and removes) Tandem's control tables and capture
// triggers on both databases, as `tandem install` / `tandem uninstall` do.
//
// Install is idempotent: running it again recreates the triggers from the
// current config and keeps table ids, positions, key maps and parked changes.
// Tables no longer captured lose their triggers.
//
// Uninstall keeps what makes a reinstall safe: the key map with its versions
// and bases (_tandem_records) and the audit trail stay unless `purge`; the
// triggers, the change log, positions, statistics, put-aside changes and
// conflicts go. A reinstall over a kept key map starts a fresh log at
// position 0 (edits made while uninstalled were not captured; they sync
// when next edited), and every record it maps stays one record.
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
Result<InstallPlan> PlanInstall(const CompiledMapping& mapping, CaptureDdl& legacy, CaptureDdl& modern);
// The SQL that uninstall would run on each side (data is kept; the key map
// too unless `purge`).
Result<InstallPlan> PlanUninstall(CaptureDdl& legacy, CaptureDdl& modern, bool purge);

// An entity whose tables hold rows on both sides while the key map (in
// either database) has no entry for it: rows synced before whose key map was
// dropped, or a populated pair never linked. Syncing it would duplicate every
// record edited later. An entity with one side empty is not listed.
struct UnlinkedEntity {
  std::string entity;
  std::string legacy_table, modern_table;
};
Result<std::vector<UnlinkedEntity>> FindUnlinkedEntities(const CompiledMapping& mapping, SqlSession& legacy,
                                                         SqlSession& modern);
// Runs a plan, one transaction per side (a captured write transaction:
// SqlSession::BeginWrite, rolled back with ApplyTarget::RollbackApply).
Status ExecutePlan(const InstallPlan& plan, Connector& legacy, Connector& modern);

}  // namespace tandem
