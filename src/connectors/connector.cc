#include "connectors/connector.h"

#include <fmt/format.h>

#include "connectors/postgres/pg_connector.h"
#include "connectors/postgres/pg_target.h"
#include "connectors/sqlite/sqlite_connector.h"

namespace tandem {

Result<std::unique_ptr<Connector>> OpenConnector(const std::string& url, const ConnectorOptions& options) {
  if (url.rfind("sqlite:", 0) == 0) {
    auto r = SqliteConnector::Open(url.substr(7), options);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Connector>(std::move(r).value());
  }
  if (IsPostgresTarget(url)) {
    auto r = PgConnector::Open(url, options);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Connector>(std::move(r).value());
  }
  return Status::InvalidArgument(fmt::format(
      "database '{}' is not supported (use sqlite:PATH, postgresql://USER@HOST:PORT/DB or 'host=HOST dbname=DB'; "
      "MariaDB is planned)",
      MaskConnectionTarget(url)));
}

}  // namespace tandem
