// Commands implemented outside main.cc.
#pragma once

#include <atomic>
#include <string>

namespace tandem {

struct DemoOptions {
  std::string directory = "tandem-demo";
  double seconds = 0;  // 0 = until interrupted
  std::string modern_url;  // a PostgreSQL database for the modern side; empty = SQLite
};

// `tandem demo`: creates example databases and config in options.directory,
// installs capture, syncs, makes edits on both sides and shows each arrive.
int RunDemo(const DemoOptions& options, const std::atomic<bool>& stop);

}  // namespace tandem
