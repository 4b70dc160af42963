// EngineLock: one sync engine per pair of databases.
//
// Versions and positions assume a single writer of Tandem's state, so the
// engine holds this lock while it lives, and `tandem uninstall` takes it
// before dropping anything. It is keyed by the identity of the legacy
// database, never by the path or URL that reached it:
//   - SQLite: flock(2) on `.tandem-DEV-INO.lock` in the directory of the
//     file's canonical path (symlinks and `..` resolved), DEV:INO being the
//     file's device and inode. A symlink, a relative path, a bind mount or a
//     hard link in the same directory all lead to the one lock file. The
//     directory is writable wherever SQLite can write the database (it keeps
//     its -wal/-journal files there). Not the database file itself: closing
//     any other descriptor of it would drop SQLite's own POSIX locks held by
//     this process. (A hard link in another directory is not covered.)
//   - PostgreSQL: a session advisory lock (ApplyTarget::LockForOneEngine). The
//     server scopes advisory locks to the database, so every URL reaching it
//     (localhost, 127.0.0.1, a socket) meets the same lock. It lives as long
//     as the legacy connector's session (and is taken again on reconnect).
#pragma once

#include <memory>
#include <string>

#include "connectors/apply_target.h"

namespace tandem {

class EngineLock {
 public:
  // Takes the lock of the pair whose legacy database is `legacy_url`
  // (resolved, as in Config), open as `legacy`. Busy, naming the database and
  // the lock, when another process holds it; the caller adds what to do.
  // REQUIRES: `legacy` outlives the returned lock.
  static Result<std::unique_ptr<EngineLock>> Acquire(const std::string& legacy_url, ApplyTarget& legacy);
  ~EngineLock();
  EngineLock(const EngineLock&) = delete;
  EngineLock& operator=(const EngineLock&) = delete;

  // "lock file /data/.tandem-2049-131.lock" or "advisory lock 128039... on DB", for messages.
  const std::string& name() const { return name_; }

  // The lock file of a SQLite database at `path` (which must exist).
  static Result<std::string> SqliteLockPath(const std::string& path);

 private:
  EngineLock() = default;
  int fd_ = -1;  // the flock'ed file (SQLite); -1 for a server's session lock
  std::string name_;
};

}  // namespace tandem
