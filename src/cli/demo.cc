// `tandem demo`: the main job on the embedded default. Creates an example
// legacy and modern SQLite database (or, with --modern URL, the modern tables
// in a PostgreSQL database), installs capture, syncs, makes edits on both
// sides with plain SQL (as other applications would) and prints each change
// arriving on the other side with its delay; then keeps syncing so the user
// can edit either database with the sqlite3 shell or psql.
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "core/secrets.h"
#include "core/clock.h"
#include "engine/ops/installer.h"
#include "engine/ops/status_report.h"
#include "engine/sync_engine.h"
#include "examples_embedded.h"

namespace tandem {

namespace {

namespace fs = std::filesystem;

// An "application" session: a plain connection that writes with SQL.
class App {
 public:
  explicit App(std::unique_ptr<Connector> db) : db_(std::move(db)) {}
  void Sql(const std::string& sql) {
    Status st = db_->ExecScript(sql);
    if (!st.ok()) PrintScrubbed(stderr, "  (demo edit failed: {})\n", st.message());
  }
  Connector& db() { return *db_; }

 private:
  std::unique_ptr<Connector> db_;
};

Result<std::unique_ptr<Connector>> OpenApp(const std::string& url) {
  ConnectorOptions opts;
  opts.create_if_missing = true;
  return OpenConnector(url, opts);
}

// Prepares the modern PostgreSQL database: the example tables, created fresh.
// Tables a previous demo made (marked by a comment) are replaced; anything
// else of the same name is left alone and the demo stops.
Status PrepareModernPostgres(Connector& db) {
  TANDEM_ASSIGN_OR_RETURN(
      auto found, db.QueryOne("SELECT count(t.oid), count(t.oid) FILTER (WHERE obj_description(t.oid, 'pg_class') = "
                              "'tandem demo'), (SELECT count(*) FROM pg_namespace WHERE nspname = 'tandem') FROM "
                              "(SELECT to_regclass(n) AS oid FROM unnest(ARRAY['customers', 'addresses', 'orders']) n) t",
                              {}));
  const int64_t tables = (*found)[0].as_integer(), ours = (*found)[1].as_integer(),
                tandem_schema = (*found)[2].as_integer();
  if (tables != ours || (tandem_schema && tables == 0))
    return Status::InvalidArgument(fmt::format(
        "{} already has {} that the demo did not create; give it an empty database (e.g. createdb tandem_demo)",
        db.Describe(), tables != ours ? "customers/addresses/orders tables" : "Tandem installed"));
  TANDEM_RETURN_IF_ERROR(db.ExecScript("DROP TABLE IF EXISTS orders, addresses, customers CASCADE; DROP SCHEMA IF "
                                       "EXISTS tandem CASCADE"));
  TANDEM_RETURN_IF_ERROR(db.ExecScript(examples::kModernSchemaPostgres));
  return db.ExecScript("COMMENT ON TABLE customers IS 'tandem demo'; COMMENT ON TABLE addresses IS 'tandem demo'; "
                       "COMMENT ON TABLE orders IS 'tandem demo'");
}

void PrintApplied(const std::vector<AppliedRecord>& records) {
  int64_t now = Clock::Default()->NowMillis();
  for (auto& r : records) {
    std::string delay = r.captured_at_ms > 0 ? fmt::format("{:>5} ms", now - r.captured_at_ms) : " retried";
    PrintScrubbed("  {}  {} -> {}  {} {} {} -> {}\n", delay, SideName(r.source), SideName(Other(r.source)), r.op,
               r.entity, r.source_key, r.target_key);
  }
  std::fflush(stdout);
}

}  // namespace

int RunDemo(const DemoOptions& options, const std::atomic<bool>& stop) {
  fs::path dir = fs::absolute(options.directory);
  fs::create_directories(dir / "data");
  for (const char* f : {"legacy.db", "legacy.db-wal", "legacy.db-shm", "modern.db", "modern.db-wal", "modern.db-shm"})
    fs::remove(dir / "data" / f);
  fs::path config_path = dir / "tandem.yaml";
  const bool modern_pg = !options.modern_url.empty();
  std::string config = examples::kConfig;
  if (modern_pg) {
    const std::string sqlite_url = "sqlite:data/modern.db";
    config.replace(config.find(sqlite_url), sqlite_url.size(), options.modern_url);
  }
  std::ofstream(config_path) << config;
  std::ofstream(dir / "legacy_schema.sql") << examples::kLegacySchema;
  std::ofstream(dir / "modern_schema.sql") << (modern_pg ? examples::kModernSchemaPostgres : examples::kModernSchema);
  const std::string legacy_db = (dir / "data" / "legacy.db").string();
  const std::string modern_db = modern_pg ? options.modern_url : (dir / "data" / "modern.db").string();
  const std::string modern_url = modern_pg ? modern_db : "sqlite:" + modern_db;
  auto legacy_app = OpenApp("sqlite:" + legacy_db);
  auto modern_app = OpenApp(modern_url);
  for (auto* opened : {&legacy_app, &modern_app})
    if (!opened->ok()) {
      PrintScrubbed(stderr, "{}\n", opened->status().message());
      return 1;
    }
  App legacy(std::move(legacy_app).value()), modern(std::move(modern_app).value());
  legacy.Sql(examples::kLegacySchema);
  if (modern_pg) {
    if (Status st = PrepareModernPostgres(modern.db()); !st.ok()) {
      PrintScrubbed(stderr, "{}\n", st.message());
      return 1;
    }
  } else {
    modern.Sql(examples::kModernSchema);
  }
  PrintScrubbed("Tandem demo in {}\n", dir.string());
  PrintScrubbed("  legacy: {} (CUSTMAST, ORDHDR: uppercase, codes, cents, \"LAST, FIRST\", integer keys)\n", legacy_db);
  PrintScrubbed("  modern: {} (customers, addresses, orders: snake_case, UUIDs, decimals)\n", modern.db().Describe());
  PrintScrubbed("  config: {}\n\n", config_path.string());

  ParseOutcome parsed = ParseConfigFile(config_path.string());
  if (!parsed.ok()) {
    for (auto& p : parsed.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
    return 1;
  }
  {
    ConnectorOptions opts;
    auto l = OpenConnector(parsed.config.legacy.resolved, opts);
    auto m = OpenConnector(parsed.config.modern.resolved, opts);
    auto expr_db = OpenExpressionDatabase();
    CompileOutcome compiled = CompileMapping(parsed.config, **l, **m, **expr_db);
    if (!compiled.problems.empty()) {
      for (auto& p : compiled.problems) PrintScrubbed(stderr, "{}\n", p.ToString());
      return 1;
    }
    auto plan = PlanInstall(*compiled.mapping, **l, **m);
    Status st = plan.ok() ? ExecutePlan(*plan, **l, **m) : plan.status();
    if (!st.ok()) {
      PrintScrubbed(stderr, "install failed: {}\n", st.message());
      return 1;
    }
  }
  PrintScrubbed("1. capture installed on both databases (tandem install)\n");

  auto engine = SyncEngine::Open(parsed.config);
  if (!engine.ok()) {
    PrintScrubbed(stderr, "{}\n", engine.status().message());
    return 1;
  }
  (*engine)->set_applied_callback(PrintApplied);
  std::atomic<bool> engine_stop{false};
  Status engine_status;
  std::thread runner([&] { engine_status = (*engine)->Run(engine_stop); });

  auto step = [&](const std::string& title, App& app, const std::string& sql) {
    if (stop.load()) return;
    PrintScrubbed("\n{}\n  SQL> {}\n", title, sql);
    std::fflush(stdout);
    app.Sql(sql);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // pacing for a human reader only
  };
  step("2. the legacy application adds two customers and an order", legacy,
       "INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS, ADDR1, CITY) VALUES "
       "('LOVELACE, ADA', 'ada@example.com', 'A', 123456, '12 St James Sq', 'London'), "
       "('HOPPER, GRACE', 'grace@example.com', 'A', 5000, NULL, NULL); "
       "INSERT INTO ORDHDR(CUSTNO, TOTAL_CENTS) VALUES (1, 4999);");
  step("3. the modern application corrects an email (only that field travels back)", modern,
       "UPDATE customers SET email = 'ada.lovelace@example.com' WHERE last_name = 'LOVELACE';");
  step("4. the modern application signs up a customer with an address (legacy assigns CUSTNO)", modern,
       "INSERT INTO customers(id, email, status, balance, first_name, last_name) VALUES "
       "('5f0c1a9e-0000-4000-8000-000000000001', 'alan@example.com', 'active', 10.5, 'ALAN', 'TURING'); "
       "INSERT INTO addresses(id, customer_id, line1, city) VALUES "
       "('5f0c1a9e-0000-4000-8000-0000000000a1', '5f0c1a9e-0000-4000-8000-000000000001', '1 Bletchley Park', "
       "'Milton Keynes');");
  step("5. the legacy application deactivates a customer (code I -> inactive)", legacy,
       "UPDATE CUSTMAST SET STAT = 'I' WHERE CNAME = 'HOPPER, GRACE';");
  step("6. the legacy application writes a status code the mapping does not know: the change is put aside\n"
       "   (shown by 'tandem status'), later changes to that customer wait behind it, all else keeps flowing",
       legacy, "UPDATE CUSTMAST SET STAT = 'X', BAL_CENTS = 99 WHERE CUSTNO = 1;");
  step("7. someone fixes the code at the source; `tandem retry --all` then applies the customer's current state",
       legacy, "UPDATE CUSTMAST SET STAT = 'I' WHERE CUSTNO = 1;");
  if (!stop.load()) {
    auto modern_db = OpenConnector(parsed.config.modern.resolved, {});
    if (modern_db.ok()) (void)RequestRetry(**modern_db, -1);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // pacing for a human reader only
  }

  PrintScrubbed("\nNow edit either database and watch the change arrive, e.g.:\n");
  PrintScrubbed("  sqlite3 {} \"UPDATE CUSTMAST SET BAL_CENTS = BAL_CENTS + 100 WHERE CUSTNO = 1\"\n", legacy_db);
  if (modern_pg)
    PrintScrubbed("  psql {} -c \"SELECT first_name, last_name, balance, status FROM customers\"\n", modern.db().Describe());
  else
    PrintScrubbed("  sqlite3 {} \"SELECT first_name, last_name, balance, status FROM customers\"\n", modern_db);
  PrintScrubbed("  tandem status -c {}\n", config_path.string());
  PrintScrubbed("Ctrl-C to stop.\n");
  std::fflush(stdout);
  auto started = std::chrono::steady_clock::now();
  while (!stop.load()) {
    if (options.seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >= options.seconds)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  engine_stop.store(true);
  runner.join();
  if (!engine_status.ok()) {
    PrintScrubbed(stderr, "sync stopped: {}\n", engine_status.message());
    return 1;
  }
  PrintScrubbed("demo stopped; the databases stay in {}\n", (dir / "data").string());
  return 0;
}

}  // namespace tandem
