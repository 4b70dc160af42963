// Multi-row statements ("INSERT ... VALUES (?, ?), (?, ?), ..."): many rows in
// one statement and one round trip. Row counts come from a small fixed set
// (a full run of kMaxRows, then powers of two), so each count's statement is
// prepared once per session and reused.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace tandem {

// Rows per multi-row statement, at most (a few thousand parameters).
constexpr size_t kMultiRowMaxRows = 256;

// The row counts of the statements that send `n` rows, in order: as many
// kMultiRowMaxRows as fit, then the powers of two of the rest, largest first.
// With `width` > 0 (parameters per row), a statement holds at most
// kMultiRowMaxParams parameters (PostgreSQL takes 65,535), so rows of a wide
// table go in smaller statements.
constexpr size_t kMultiRowMaxParams = 32768;
inline std::vector<size_t> MultiRowCounts(size_t n, size_t width = 0) {
  size_t most = kMultiRowMaxRows;
  while (width > 0 && most > 1 && most * width > kMultiRowMaxParams) most /= 2;
  std::vector<size_t> out;
  for (; n >= most; n -= most) out.push_back(most);
  for (size_t p = most / 2; p > 0; p /= 2)
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

// IN-list reads of many keys: a list is padded (its last key repeated) to the
// next of a few lengths, so each length's statement is prepared once, and a
// few keys do not pay for planning a list of a hundred (PostgreSQL plans a
// statement with its parameters' values each time).
inline constexpr std::array<size_t, 4> kInListLengths = {1, 8, 32, 128};
// The statements of one IN-list read, one per length.
using InListSql = std::array<std::string, kInListLengths.size()>;

// Index into kInListLengths of the list that takes `remaining` keys (the
// longest when more remain).
inline size_t InListShape(size_t remaining) {
  size_t i = 0;
  while (i + 1 < kInListLengths.size() && kInListLengths[i] < remaining) ++i;
  return i;
}

}  // namespace tandem
