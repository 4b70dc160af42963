#include "workload.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

namespace tandem::benchkit {
namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

template <typename T>
void AddOnce(std::vector<T>* out, T v) {
  if (std::find(out->begin(), out->end(), v) == out->end()) out->push_back(v);
}

}  // namespace

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kInsert: return "insert";
    case Kind::kUpdate: return "update";
    case Kind::kDelete: return "delete";
    case Kind::kMixed: return "mixed";
  }
  return "?";
}

bool ParseKinds(const std::string& text, std::vector<Kind>* out, std::string* error) {
  out->clear();
  for (const std::string& name : SplitList(text)) {
    if (name == "all") {
      for (Kind k : {Kind::kInsert, Kind::kUpdate, Kind::kDelete, Kind::kMixed}) AddOnce(out, k);
      continue;
    }
    bool found = false;
    for (Kind k : {Kind::kInsert, Kind::kUpdate, Kind::kDelete, Kind::kMixed}) {
      if (name == KindName(k) || name == std::string(KindName(k)) + "s") {
        AddOnce(out, k);
        found = true;
      }
    }
    if (!found) {
      *error = fmt::format("unknown kind '{}' (insert, update, delete, mixed or all)", name);
      return false;
    }
  }
  if (out->empty()) *error = "no kind given (insert, update, delete, mixed or all)";
  return !out->empty();
}

const char* DirectionName(From f) { return f == From::kLegacy ? "legacy->modern" : "modern->legacy"; }
const char* DirectionKey(From f) { return f == From::kLegacy ? "legacy_to_modern" : "modern_to_legacy"; }

bool ParseDirections(const std::string& text, std::vector<From>* out, std::string* error) {
  out->clear();
  for (const std::string& name : SplitList(text)) {
    if (name == "legacy" || name == "legacy-to-modern" || name == "legacy->modern") AddOnce(out, From::kLegacy);
    else if (name == "modern" || name == "modern-to-legacy" || name == "modern->legacy") AddOnce(out, From::kModern);
    else if (name == "both") {
      AddOnce(out, From::kLegacy);
      AddOnce(out, From::kModern);
    } else {
      *error = fmt::format("unknown direction '{}' (legacy = legacy->modern, modern = modern->legacy, or both)", name);
      return false;
    }
  }
  if (out->empty()) *error = "no direction given (legacy, modern or both)";
  return !out->empty();
}

Workload MakeWorkload(Kind kind, int64_t changes, int per_tx) {
  Workload w;
  w.kind = kind;
  w.preload = kind == Kind::kInsert ? 0 : changes;
  const int64_t txns = changes / per_tx;
  // Mixed: the records deleted come first (1..D), then the ones updated.
  const int64_t deletes_total = kind == Kind::kMixed ? changes / 10 : 0;
  int64_t next_insert = w.preload + 1, next_delete = 1, next_update = deletes_total + 1;
  std::mt19937 rng(13);  // the same interleaving in every run and for every system
  for (int64_t t = 0; t < txns; ++t) {
    std::vector<Op> ops;
    switch (kind) {
      case Kind::kInsert: ops.assign(per_tx, Op::kInsert); break;
      case Kind::kUpdate: ops.assign(per_tx, Op::kUpdate); break;
      case Kind::kDelete: ops.assign(per_tx, Op::kDelete); break;
      case Kind::kMixed:
        for (int g = 0; g < per_tx / 10; ++g) {
          for (int i = 0; i < 7; ++i) ops.push_back(Op::kUpdate);
          ops.push_back(Op::kInsert);
          ops.push_back(Op::kInsert);
          ops.push_back(Op::kDelete);
        }
        std::shuffle(ops.begin(), ops.end(), rng);
        break;
    }
    std::vector<Step>& txn = w.txns.emplace_back();
    txn.reserve(ops.size());
    for (Op op : ops) {
      if (op == Op::kInsert) txn.push_back({op, next_insert++});
      else if (op == Op::kDelete) txn.push_back({op, kind == Kind::kMixed ? next_delete++ : next_update++});
      else txn.push_back({op, next_update++});
    }
  }
  if (kind == Kind::kMixed) {  // end on an update: its record is known on both sides
    auto& last = w.txns.back();
    auto it = std::find_if(last.rbegin(), last.rend(), [](const Step& s) { return s.op == Op::kUpdate; });
    std::iter_swap(it, last.rbegin());
  }
  for (auto& txn : w.txns)
    for (const Step& s : txn) (s.op == Op::kInsert ? w.inserts : s.op == Op::kUpdate ? w.updates : w.deletes)++;
  return w;
}

std::string TextTable::Render() const {
  std::vector<size_t> width;
  for (auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto numeric = [](const std::string& s) {
    return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s == "-");
  };
  std::string out;
  for (size_t r = 0; r < rows_.size(); ++r) {
    std::string line;
    for (size_t c = 0; c < rows_[r].size(); ++c) {
      const std::string& cell = rows_[r][c];
      std::string pad(width[c] - cell.size(), ' ');
      line += c ? "  " : "";
      line += (r > 0 && c > 0 && numeric(cell)) ? pad + cell : cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t c = 0; c < width.size(); ++c) total += width[c] + (c ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

std::string Rate(double per_s) {
  if (per_s < 0) return "-";
  std::string digits = fmt::format("{:.0f}", per_s), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Ratio(double a, double b) { return a > 0 && b > 0 ? fmt::format("{:.2f}x", a / b) : "-"; }

double ProcessCpuSeconds(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  std::vector<std::string> f;
  size_t pos = close + 2;
  while (pos < stat.size() && f.size() < 13) {
    size_t sp = stat.find(' ', pos);
    f.push_back(stat.substr(pos, sp - pos));
    pos = sp == std::string::npos ? stat.size() : sp + 1;
  }
  if (f.size() < 13) return -1;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace tandem::benchkit
