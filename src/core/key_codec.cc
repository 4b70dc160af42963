#include "core/key_codec.h"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace tandem {

namespace {
constexpr char kSep = '\x1f';
}

// Encoding per value: type letter then payload. n | i<digits> | r<%.17g> |
// t<bytes> | b<hex>. Text containing \x1f is escaped as \x1e\x1f; \x1e as \x1e\x1e.
namespace {
void AppendEncoded(const Value& v, std::string* out) {
  switch (v.type()) {
    case ValueType::kNull: out->push_back('n'); break;
    case ValueType::kInteger: {
      out->push_back('i');
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.as_integer());
      out->append(buf, r.ptr);
      break;
    }
    case ValueType::kReal: {
      out->push_back('r');
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, v.as_real());  // shortest form that round-trips
      out->append(buf, r.ptr);
      break;
    }
    case ValueType::kText: {
      out->push_back('t');
      const std::string& s = v.as_bytes();
      bool plain = true;
      for (char c : s) plain &= (c != kSep && c != '\x1e');
      if (plain) {
        out->append(s);
      } else {
        for (char c : s) {
          if (c == kSep || c == '\x1e') out->push_back('\x1e');
          out->push_back(c);
        }
      }
      break;
    }
    case ValueType::kBlob: {
      static const char* hex = "0123456789abcdef";
      out->push_back('b');
      for (unsigned char c : v.as_bytes()) {
        out->push_back(hex[c >> 4]);
        out->push_back(hex[c & 15]);
      }
      break;
    }
  }
}
}  // namespace

// Encoding per value: type letter then payload. n | i<digits> | r<shortest round-trip> |
// t<bytes> | b<hex>. Text containing \x1f is escaped as \x1e\x1f; \x1e as \x1e\x1e.
std::string EncodeKey(const Row& key) {
  std::string out;
  out.reserve(16 * key.size());
  for (size_t k = 0; k < key.size(); ++k) {
    if (k) out.push_back(kSep);
    AppendEncoded(key[k], &out);
  }
  return out;
}

void AppendEncodedValue(const Value& v, std::string* out) { AppendEncoded(v, out); }

Result<Row> DecodeKey(const std::string& s) {
  Row out;
  if (s.empty()) return out;
  size_t pos = 0;
  while (pos <= s.size()) {
    // Find the end of this element, honouring escapes.
    std::string payload;
    char type = pos < s.size() ? s[pos] : '\0';
    size_t p = pos + 1;
    while (p < s.size() && s[p] != kSep) {
      if (s[p] == '\x1e' && p + 1 < s.size()) ++p;
      payload += s[p];
      ++p;
    }
    switch (type) {
      case 'n': out.push_back(Value::Null()); break;
      case 'i': out.push_back(Value::Integer(std::stoll(payload))); break;
      case 'r': out.push_back(Value::Real(std::stod(payload))); break;
      case 't': out.push_back(Value::Text(payload)); break;
      case 'b': {
        std::string bytes;
        for (size_t k = 0; k + 1 < payload.size(); k += 2)
          bytes += static_cast<char>(std::stoi(payload.substr(k, 2), nullptr, 16));
        out.push_back(Value::Blob(bytes));
        break;
      }
      default: return Status::Internal(fmt::format("corrupt key encoding '{}'", s));
    }
    if (p >= s.size()) break;
    pos = p + 1;
  }
  return out;
}

std::string DisplayKey(const Row& key) {
  if (key.size() == 1) return key[0].ToDisplay();
  std::string out = "(";
  for (size_t k = 0; k < key.size(); ++k) {
    if (k) out += ", ";
    out += key[k].ToDisplay();
  }
  return out + ")";
}

int64_t KeyHash(std::string_view entity, std::string_view encoded_key) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(entity);
  mix(std::string_view("\x1d", 1));
  mix(encoded_key);
  return static_cast<int64_t>(h);
}

}  // namespace tandem
