#include "connectors/connector.h"

#include <fmt/format.h>

#include "connectors/postgres/pg_connector.h"
#include "connectors/sqlite/sqlite_connector.h"

namespace tandem {

Result<std::unique_ptr<Connector>> OpenConnector(const std::string& url, const ConnectorOptions& options) {
  if (url.rfind("sqlite:", 0) == 0) {
    auto r = SqliteConnector::Open(url.substr(7), options);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Connector>(std::move(r).value());
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    auto r = PgConnector::Open(url, options);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Connector>(std::move(r).value());
  }
  return Status::InvalidArgument(fmt::format(
      "database '{}' is not supported (use sqlite:PATH or postgresql://USER@HOST:PORT/DB; MariaDB is planned)", url));
}

}  // namespace tandem
