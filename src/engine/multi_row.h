// Multi-row statements ("INSERT ... VALUES (?, ?), (?, ?), ..."): many rows in
// one statement and one round trip. Row counts come from a small fixed set
// (a full run of kMaxRows, then powers of two), so each count's statement is
// prepared once per session and reused.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tandem {

// Rows per multi-row statement, at most (a few thousand parameters).
constexpr size_t kMultiRowMaxRows = 256;

// The row counts of the statements that send `n` rows, in order: as many
// kMultiRowMaxRows as fit, then the powers of two of the rest, largest first.
inline std::vector<size_t> MultiRowCounts(size_t n) {
  std::vector<size_t> out;
  for (; n >= kMultiRowMaxRows; n -= kMultiRowMaxRows) out.push_back(kMultiRowMaxRows);
  for (size_t p = kMultiRowMaxRows / 2; p > 0; p /= 2)
    if (n & p) out.push_back(p);
  return out;
}

// "(?, ?), (?, ?)" for `rows` rows of `columns` placeholders.
inline std::string MultiRowValues(size_t rows, size_t columns) {
  std::string one = "(";
  for (size_t c = 0; c < columns; ++c) one += c ? ", ?" : "?";
  one += ")";
  std::string out;
  out.reserve(rows * (one.size() + 2));
  for (size_t r = 0; r < rows; ++r) {
    if (r) out += ", ";
    out += one;
  }
  return out;
}

}  // namespace tandem
