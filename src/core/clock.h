// Clock: wall time and monotonic time behind an interface so tests can
// inject time. Tandem's timestamps are Unix epoch milliseconds.
#pragma once

#include <cstdint>
#include <string>

namespace tandem {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMillis() = 0;   // wall clock, epoch ms
  virtual int64_t NowMicros() = 0;   // wall clock, epoch us
  static Clock* Default();
};

// A random version-4 UUID in its canonical lower-case text form.
std::string NewUuid();

}  // namespace tandem
