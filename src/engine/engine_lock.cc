#include "engine/engine_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "connectors/postgres/pg_connector.h"

namespace tandem {

Result<std::string> EngineLock::SqliteLockPath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(path, ec);
  if (ec) return Status::Unavailable(fmt::format("cannot resolve {}: {}", path, ec.message()));
  struct stat st;
  if (stat(canonical.c_str(), &st) != 0)
    return Status::Unavailable(fmt::format("cannot stat {}: {}", canonical.string(), strerror(errno)));
  return (canonical.parent_path() / fmt::format(".tandem-{}-{}.lock", static_cast<uint64_t>(st.st_dev),
                                                static_cast<uint64_t>(st.st_ino)))
      .string();
}

Result<std::unique_ptr<EngineLock>> EngineLock::Acquire(const std::string& legacy_url, ApplyTarget& legacy) {
  auto lock = std::unique_ptr<EngineLock>(new EngineLock());
  if (legacy_url.rfind("sqlite:", 0) != 0) {
    lock->name_ = fmt::format("advisory lock {} on {}", PgConnector::kEngineLockKey, legacy.session().Describe());
    Status st = legacy.LockForOneEngine();
    if (st.code() == StatusCode::kBusy)
      return Status::Busy(fmt::format("another tandem process is already syncing {} (it holds the {})",
                                      legacy.session().Describe(), lock->name_));
    TANDEM_RETURN_IF_ERROR(st);
    return lock;
  }
  const std::string path = legacy_url.substr(7);
  TANDEM_ASSIGN_OR_RETURN(std::string lock_path, SqliteLockPath(path));
  lock->name_ = "lock file " + lock_path;
  lock->fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock->fd_ < 0)
    return Status::Unavailable(fmt::format("cannot create lock file {}: {}", lock_path, strerror(errno)));
  if (flock(lock->fd_, LOCK_EX | LOCK_NB) != 0)
    return Status::Busy(fmt::format("another tandem process is already syncing {} (it holds the {})", legacy_url,
                                    lock->name_));
  // Which database the file locks, for a person who finds it.
  std::string note = fmt::format("tandem engine lock of {} (pid {})\n", path, getpid());
  if (ftruncate(lock->fd_, 0) == 0 && write(lock->fd_, note.data(), note.size()) < 0) {
    // Only a note: the lock is the flock.
  }
  return lock;
}

EngineLock::~EngineLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace tandem
