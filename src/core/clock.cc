#include "core/clock.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

namespace tandem {

namespace {
class SystemClock : public Clock {
 public:
  int64_t NowMillis() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
};
}  // namespace

Clock* Clock::Default() {
  static SystemClock clock;
  return &clock;
}

std::string NewUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  // 8-4-4-4-12 hex digits, written directly (this runs once per inserted record).
  static const char* hex = "0123456789abcdef";
  char out[36];
  int pos = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int d = digits - 1; d >= 0; --d) out[pos++] = hex[(v >> (4 * d)) & 15];
  };
  put(hi >> 32, 8);
  out[pos++] = '-';
  put((hi >> 16) & 0xffff, 4);
  out[pos++] = '-';
  put(hi & 0xffff, 4);
  out[pos++] = '-';
  put(lo >> 48, 4);
  out[pos++] = '-';
  put(lo & 0xffffffffffffULL, 12);
  return std::string(out, sizeof out);
}

}  // namespace tandem
