// EpochTicker: keeps capture epochs short on one source database.
//
// SQLite gives triggers no transaction id, so capture stamps every log row
// with the current epoch (_tandem_epoch.n) and the ticker starts a new epoch
// shortly after each commit that added log rows. All rows of one source
// transaction share an epoch, so the engine can end a target transaction
// wherever the epoch changes without splitting a source transaction, and its
// write transactions stay short even while it works through a backlog.
//
// Runs its own thread and connection; Stop() (or the destructor) joins it.
// Failures are logged and retried: an epoch that is not bumped only makes
// batches larger, never wrong.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "connectors/connector.h"

namespace tandem {

class EpochTicker {
 public:
  EpochTicker(std::string url, int busy_timeout_ms, int poll_interval_ms);
  ~EpochTicker();
  void Stop();
  int64_t bumps() const { return bumps_.load(); }

 private:
  void Loop();
  std::string url_;
  int busy_timeout_ms_;
  int poll_interval_ms_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bumps_{0};
  std::thread thread_;
};

}  // namespace tandem
