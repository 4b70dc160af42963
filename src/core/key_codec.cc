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

namespace {
// One element's value from its type letter and payload (escapes removed).
Result<Value> DecodeElement(char type, std::string_view payload, const std::string& whole) {
  auto corrupt = [&] { return Status::Internal(fmt::format("corrupt key encoding '{}'", whole)); };
  switch (type) {
    case 'n': return Value::Null();
    case 'i': {
      int64_t i = 0;
      auto r = std::from_chars(payload.data(), payload.data() + payload.size(), i);
      if (r.ec != std::errc() || r.ptr != payload.data() + payload.size()) return corrupt();
      return Value::Integer(i);
    }
    case 'r': {
      // from_chars reads what to_chars (and the %.17g of older versions)
      // wrote, inf and nan included, whatever the locale.
      double d = 0;
      auto r = std::from_chars(payload.data(), payload.data() + payload.size(), d);
      if (r.ec != std::errc() || r.ptr != payload.data() + payload.size()) return corrupt();
      return Value::Real(d);
    }
    case 't': return Value::Text(std::string(payload));
    case 'b': {
      std::string bytes;
      bytes.reserve(payload.size() / 2);
      for (size_t k = 0; k + 1 < payload.size(); k += 2) {
        unsigned byte = 0;
        auto r = std::from_chars(payload.data() + k, payload.data() + k + 2, byte, 16);
        if (r.ec != std::errc() || r.ptr != payload.data() + k + 2) return corrupt();
        bytes.push_back(static_cast<char>(byte));
      }
      return Value::Blob(std::move(bytes));
    }
    default: return corrupt();
  }
}
}  // namespace

Result<Row> DecodeKey(const std::string& s) {
  Row out;
  if (s.empty()) return out;
  std::string unescaped;
  size_t pos = 0;
  while (pos <= s.size()) {
    const char type = pos < s.size() ? s[pos] : '\0';
    // The element ends at the next separator that no \x1e escapes.
    size_t p = pos + 1;
    bool escaped = false;
    while (p < s.size() && s[p] != kSep) {
      if (s[p] == '\x1e' && p + 1 < s.size()) {
        escaped = true;
        ++p;
      }
      ++p;
    }
    std::string_view payload = p > pos + 1 ? std::string_view(s).substr(pos + 1, p - pos - 1) : std::string_view();
    if (escaped) {
      unescaped.clear();
      for (size_t k = 0; k < payload.size(); ++k) {
        if (payload[k] == '\x1e' && k + 1 < payload.size()) ++k;
        unescaped.push_back(payload[k]);
      }
      payload = unescaped;
    }
    TANDEM_ASSIGN_OR_RETURN(Value v, DecodeElement(type, payload, s));
    out.push_back(std::move(v));
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
