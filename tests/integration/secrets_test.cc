// Credentials never show: a PostgreSQL role whose password is full of URI and
// conninfo metacharacters, reached through `${VAR}` in a URI or in keyword/value
// conninfo, through PGPASSWORD and through a password file (PGPASSFILE), and
// every tandem command at --log-level trace. No command's stdout or stderr may
// hold the password, in clear or encoded; the commands that should work do
// (which proves the encoded password reaches the server intact).
//
// The test server trusts every connection (scripts/pg-cluster.sh), which would
// accept any password: members of the group role kPasswordGroup are made to
// authenticate with scram-sha-256 by a pg_hba.conf line added once (idempotent;
// it concerns only that group's members, so other tests are unaffected).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/secrets.h"
#include "support/pg_test_server.h"
#include "support/process.h"
#include "support/test_env.h"

namespace tandem {
namespace {

using testing::PgConnPtr;
using testing::PgResultPtr;
using testing::TestEnv;

constexpr char kPasswordGroup[] = "tandem_password_auth";

// Every URI and conninfo metacharacter, both quotes and a backslash; the
// marker in the middle finds partial leaks too.
constexpr char kPassword[] = "p@ss:w/rd?#%+= Kq9vXw 'x\"\\&[]{}$";
constexpr char kPasswordMarker[] = "Kq9vXw";
constexpr char kWrongPassword[] = "wr@ng:p/w?#%+= Zt4mQy 'y\"\\";
constexpr char kWrongPasswordMarker[] = "Zt4mQy";

std::string SqlLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// The forms a leaked password could take in output.
std::vector<std::string> LeakForms(const std::string& password, const std::string& marker) {
  std::string lower_hex = PercentEncode(password);
  for (char& c : lower_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string json;
  for (char c : password) json += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return {password, PercentEncode(password), lower_hex, json, QuoteConninfoValue(password), marker};
}

// A login role with kPassword that must authenticate by password.
class PasswordRole {
 public:
  PasswordRole() : name_(UniqueName()) {
    Admin("DO $$ BEGIN CREATE ROLE " + std::string(kPasswordGroup) + " NOLOGIN; "
          "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$");
    RequirePasswordForGroup();
    Admin("CREATE ROLE " + name_ + " LOGIN SUPERUSER IN ROLE " + kPasswordGroup + " PASSWORD " +
          SqlLiteral(kPassword));
    WaitUntilPasswordRequired();
  }
  // Kept with TANDEM_KEEP_TEST_DIRS, like the databases it owns objects in.
  ~PasswordRole() {
    if (!getenv("TANDEM_KEEP_TEST_DIRS")) Admin("DROP ROLE IF EXISTS " + name_);
  }
  const std::string& name() const { return name_; }

 private:
  static std::string UniqueName() {
    static int counter = 0;
    return "tandem_secret_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
           std::to_string(std::random_device()() % 1000000);
  }

  std::string AdminQuery(const std::string& sql) {
    std::string error;
    PgConnPtr conn = testing::PgConnect(*testing::PgBaseUrl() + "/postgres", &error);
    if (conn == nullptr) {
      ADD_FAILURE() << error;
      return "";
    }
    PgResultPtr res(PQexec(conn.get(), sql.c_str()));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK && PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql << ": " << PQerrorMessage(conn.get());
      return "";
    }
    return PQresultStatus(res.get()) == PGRES_TUPLES_OK && PQntuples(res.get()) > 0 ? PQgetvalue(res.get(), 0, 0)
                                                                                    : "";
  }
  void Admin(const std::string& sql) { AdminQuery(sql); }

  // Puts "host all +GROUP 127.0.0.1/32 scram-sha-256" first in pg_hba.conf
  // (through the server, which owns the file) unless it is there already.
  void RequirePasswordForGroup() {
    const std::string line = std::string("host all +") + kPasswordGroup + " 127.0.0.1/32 scram-sha-256";
    const std::string file = AdminQuery("SHOW hba_file");
    const std::string hba = AdminQuery("SELECT pg_read_file(current_setting('hba_file'))");
    if (hba.find(line) != std::string::npos) return;
    std::string lines = "ARRAY[" + SqlLiteral(line);
    for (size_t at = 0; at < hba.size();) {
      size_t end = hba.find('\n', at);
      if (end == std::string::npos) end = hba.size();
      lines += ", " + SqlLiteral(hba.substr(at, end - at));
      at = end + 1;
    }
    lines += "]";
    Admin("COPY (SELECT l FROM unnest(" + lines + ") WITH ORDINALITY AS t(l, n) ORDER BY n) TO " + SqlLiteral(file));
    Admin("SELECT pg_reload_conf()");
  }

  // A reload takes effect asynchronously: wait until a wrong password is refused.
  void WaitUntilPasswordRequired() {
    const std::string url = "postgresql://" + name_ + ":" + PercentEncode(kWrongPassword) + "@" +
                            testing::PgBaseUrl()->substr(testing::PgBaseUrl()->find('@') + 1) + "/postgres";
    for (int i = 0; i < 500; ++i) {
      std::string error;
      if (testing::PgConnect(url, &error) == nullptr) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the server still accepts any password for " << name_;
  }

  std::string name_;
};

// Sets an environment variable for the tandem processes this test starts;
// restores the previous state when destroyed.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TANDEM_REQUIRE_PG();
    role_ = std::make_unique<PasswordRole>();
    env_ = std::make_unique<TestEnv>("", testing::Backends{false, true, "", ""});
    const std::string base = *testing::PgBaseUrl();
    host_port_ = base.substr(base.find('@') + 1);
    port_ = host_port_.substr(host_port_.find(':') + 1);
    config_ = testing::ReadFile(env_->config_path());
  }
  void TearDown() override {
    if (env_) std::ofstream(env_->dir() + "/all-commands.log") << output_;  // kept with TANDEM_KEEP_TEST_DIRS
    env_.reset();  // drops the database, so the role owns nothing when dropped
    role_.reset();
  }

  // Writes the config with the modern database `target` (YAML-quoted).
  void UseModernTarget(const std::string& target) {
    std::string cfg = config_;
    const std::string url = env_->pg(Side::kModern)->url();
    std::string quoted = "'";
    for (char c : target) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    quoted += "'";
    cfg.replace(cfg.find("\"" + url + "\""), url.size() + 2, quoted);
    std::ofstream(env_->config_path()) << cfg;
  }
  std::string UriWithoutPassword() const {
    return "postgresql://" + role_->name() + "@" + host_port_ + "/" + env_->pg(Side::kModern)->name();
  }

  // Runs `tandem ARGS --log-level trace -c CONFIG`; returns its exit code, its
  // output appended to output_.
  int Tandem(std::vector<std::string> args) {
    std::vector<std::string> argv = {TANDEM_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--log-level", "trace", "-c", env_->config_path()});
    const std::string log = env_->dir() + "/command.log";
    std::remove(log.c_str());
    const int rc = testing::Wait(testing::Spawn(argv, log));
    const std::string out = testing::ReadFile(log);
    std::string line = "$ tandem";
    for (auto& a : args) line += " " + a;
    output_ += line + " -> " + std::to_string(rc) + "\n" + out;
    return rc;
  }

  // `tandem run` until it has logged that it syncs, then SIGTERM.
  int TandemRunUntilSyncing() {
    const std::string log = env_->dir() + "/run.log";
    std::remove(log.c_str());
    pid_t pid = testing::Spawn({TANDEM_BINARY, "run", "--log-level", "trace", "-c", env_->config_path()}, log);
    for (int i = 0; i < 1000 && testing::ReadFile(log).find("syncing") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few passes at trace level
    kill(pid, SIGTERM);
    const int rc = testing::Wait(pid);
    output_ += "$ tandem run -> " + std::to_string(rc) + "\n" + testing::ReadFile(log);
    return rc;
  }

  // Every command, in the order a user meets them; each must succeed (or, for
  // the ones naming nothing that exists, fail politely).
  void RunEveryCommand() {
    EXPECT_EQ(Tandem({"check"}), 0);
    EXPECT_EQ(Tandem({"install", "--dry-run"}), 0);
    EXPECT_EQ(Tandem({"install"}), 0);
    env_->Sh(Side::kLegacy, "INSERT INTO CUSTMAST(CUSTNO, CNAME, EMAIL, STAT, BAL_CENTS) VALUES "
                            "(1, 'A, B', 'a@b', 'A', 1), (2, 'C, D', 'c@d', 'Q', 2);");
    EXPECT_EQ(Tandem({"run", "--once"}), 0);
    EXPECT_EQ(env_->Count(Side::kModern, "customers"), 1) << "one customer synced, one put aside";
    EXPECT_EQ(Tandem({"status"}), 0);
    EXPECT_EQ(Tandem({"status", "--json"}), 0);
    env_->Sh(Side::kLegacy, "UPDATE CUSTMAST SET STAT = 'A' WHERE CUSTNO = 2;");
    EXPECT_EQ(Tandem({"retry", "--all"}), 0);
    EXPECT_EQ(env_->Count(Side::kModern, "customers"), 2) << "the put-aside customer retried";
    EXPECT_EQ(Tandem({"conflicts", "list"}), 0);
    EXPECT_EQ(Tandem({"conflicts", "list", "--json"}), 0);
    EXPECT_EQ(Tandem({"conflicts", "show", "modern:999"}), 1);
    EXPECT_EQ(Tandem({"discard", "modern:999"}), 1);
    EXPECT_EQ(TandemRunUntilSyncing(), 0);
    EXPECT_EQ(Tandem({"uninstall", "--dry-run"}), 0);
    EXPECT_NE(output_.find("syncing"), std::string::npos) << output_;
    EXPECT_NE(output_.find("postgresql://" + role_->name()), std::string::npos) << "targets are shown, masked";
  }

  // Neither the password in any form nor any 5 characters of it in a row.
  void ExpectNoLeakOf(const std::string& password, const std::string& marker) {
    std::vector<std::string> forms = LeakForms(password, marker);
    for (size_t i = 0; i + 5 <= password.size(); ++i) forms.push_back(password.substr(i, 5));
    for (const std::string& form : forms)
      EXPECT_EQ(output_.find(form), std::string::npos) << "the output shows '" << form << "':\n" << output_;
  }

  std::unique_ptr<PasswordRole> role_;
  std::unique_ptr<TestEnv> env_;
  std::string host_port_, port_, config_;
  std::string output_;  // every command's stdout and stderr
};

TEST_F(SecretsTest, PasswordFromAVariableInAUriWorksAndNeverShows) {
  ScopedEnv password("TANDEM_TEST_SECRET", kPassword);
  UseModernTarget("postgresql://" + role_->name() + ":${TANDEM_TEST_SECRET}@" + host_port_ + "/" +
                  env_->pg(Side::kModern)->name() + "?sslmode=disable");
  RunEveryCommand();
  EXPECT_NE(output_.find("postgresql://" + role_->name() + ":****@"), std::string::npos) << output_;
  ExpectNoLeakOf(kPassword, kPasswordMarker);
}

TEST_F(SecretsTest, PasswordFromAVariableInConninfoWorksAndNeverShows) {
  ScopedEnv password("TANDEM_TEST_SECRET", kPassword);
  UseModernTarget("host=127.0.0.1 port=" + port_ + " dbname=" + env_->pg(Side::kModern)->name() +
                  " user=" + role_->name() + " password=${TANDEM_TEST_SECRET}");
  EXPECT_EQ(Tandem({"check"}), 0);
  EXPECT_EQ(Tandem({"install", "--dry-run"}), 0);
  EXPECT_EQ(Tandem({"install"}), 0);
  EXPECT_EQ(Tandem({"run", "--once"}), 0);
  EXPECT_EQ(Tandem({"status", "--json"}), 0);
  EXPECT_NE(output_.find("password=****"), std::string::npos) << output_;
  ExpectNoLeakOf(kPassword, kPasswordMarker);
}

TEST_F(SecretsTest, PgpasswordWorksAndNeverShows) {
  ScopedEnv password("PGPASSWORD", kPassword);
  UseModernTarget(UriWithoutPassword());
  RunEveryCommand();
  ExpectNoLeakOf(kPassword, kPasswordMarker);
}

TEST_F(SecretsTest, PasswordFileWorksAndNeverShows) {
  // .pgpass: host:port:database:user:password, ':' and '\' escaped.
  std::string escaped;
  for (char c : std::string(kPassword)) escaped += c == ':' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  const std::string file = env_->dir() + "/pgpass";
  std::ofstream(file) << "127.0.0.1:" << port_ << ":*:" << role_->name() << ":" << escaped << "\n";
  ASSERT_EQ(chmod(file.c_str(), 0600), 0);
  ScopedEnv passfile("PGPASSFILE", file);
  UseModernTarget(UriWithoutPassword());
  RunEveryCommand();
  ExpectNoLeakOf(kPassword, kPasswordMarker);
  ExpectNoLeakOf(escaped, kPasswordMarker);
}

TEST_F(SecretsTest, WrongPasswordIsRefusedWithoutShowingIt) {
  ScopedEnv password("TANDEM_TEST_SECRET", kWrongPassword);
  UseModernTarget("postgresql://" + role_->name() + ":${TANDEM_TEST_SECRET}@" + host_port_ + "/" +
                  env_->pg(Side::kModern)->name());
  EXPECT_EQ(Tandem({"check"}), 1);
  EXPECT_EQ(Tandem({"install", "--dry-run"}), 1);
  EXPECT_EQ(Tandem({"run", "--once"}), 1);
  EXPECT_EQ(Tandem({"status", "--json"}), 1);
  EXPECT_NE(output_.find("password authentication failed"), std::string::npos) << output_;
  ExpectNoLeakOf(kWrongPassword, kWrongPasswordMarker);
  ExpectNoLeakOf(kPassword, kPasswordMarker);
}

TEST_F(SecretsTest, MalformedTargetsAreReportedWithoutShowingThePassword) {
  ScopedEnv password("TANDEM_TEST_SECRET", kPassword);
  const std::string db = env_->pg(Side::kModern)->name();
  for (const std::string& target : {
           // An unclosed IPv6 bracket: libpq echoes the whole URI in its error.
           "postgresql://" + role_->name() + ":${TANDEM_TEST_SECRET}@[127.0.0.1:" + port_ + "/" + db,
           // A bad query parameter.
           "postgresql://" + role_->name() + ":${TANDEM_TEST_SECRET}@" + host_port_ + "/" + db + "?x=1=2",
           // The password written into the config, unencoded and unquoted.
           "postgresql://" + role_->name() + ":" + kPassword + "@" + host_port_ + "/" + db,
           "host=127.0.0.1 port=" + port_ + " password=" + kPassword + " dbname=" + db,
           "host=127.0.0.1 port=" + port_ + " password='" + kPassword,
       }) {
    UseModernTarget(target);
    EXPECT_NE(Tandem({"check"}), 0) << target;
    EXPECT_NE(Tandem({"run", "--once"}), 0) << target;
    EXPECT_NE(Tandem({"status", "--json"}), 0) << target;
  }
  ExpectNoLeakOf(kPassword, kPasswordMarker);
}

}  // namespace
}  // namespace tandem
