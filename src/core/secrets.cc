#include "core/secrets.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <vector>

#include <spdlog/details/log_msg.h>

namespace tandem {

namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// RFC 3986 percent-encoding of all but unreserved characters, with upper-
// or lower-case hex digits (both forms may show up in text to scrub).
std::string PercentEncodeWith(std::string_view value, const char* hex) {
  std::string out;
  for (unsigned char c : value) {
    if (Unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Backslash before each of `specials` (and before backslash).
std::string BackslashEscape(std::string_view value, std::string_view specials) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || specials.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// How nlohmann::json::dump writes the string's characters.
std::string JsonEscape(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

class SecretRegistry {
 public:
  static SecretRegistry& Instance() {
    static SecretRegistry* registry = new SecretRegistry();  // never destroyed: logging may outlive statics
    return *registry;
  }

  void Add(std::string_view secret) {
    if (secret.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!raw_.insert(std::string(secret)).second) return;
    for (std::string form : {std::string(secret), PercentEncode(secret), PercentEncodeWith(secret, "0123456789abcdef"),
                             BackslashEscape(secret, "'"), BackslashEscape(secret, "' \t\n"), JsonEscape(secret)}) {
      if (form.size() < kMinScrubbedSecretLength) continue;
      if (std::find(forms_.begin(), forms_.end(), form) == forms_.end()) forms_.push_back(std::move(form));
    }
    // Longest first: a form containing another is replaced whole.
    std::stable_sort(forms_.begin(), forms_.end(), [](const std::string& a, const std::string& b) {
      return a.size() > b.size();
    });
  }

  std::string Scrub(std::string_view text) {
    std::string out(text);
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& form : forms_) {
      for (size_t at = out.find(form); at != std::string::npos; at = out.find(form, at + kSecretMask.size()))
        out.replace(at, form.size(), kSecretMask);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::set<std::string> raw_;       // GUARDED_BY(mu_): the values registered
  std::vector<std::string> forms_;  // GUARDED_BY(mu_): every form searched for, longest first
};

class SecretScrubbingSink final : public spdlog::sinks::sink {
 public:
  explicit SecretScrubbingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override {
    const std::string clean = ScrubSecrets(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg scrubbed(msg);
    scrubbed.payload = spdlog::string_view_t(clean.data(), clean.size());
    inner_->log(scrubbed);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void RegisterSecret(std::string_view secret) { SecretRegistry::Instance().Add(secret); }

std::string ScrubSecrets(std::string_view text) { return SecretRegistry::Instance().Scrub(text); }

std::string PercentEncode(std::string_view value) { return PercentEncodeWith(value, "0123456789ABCDEF"); }

std::string PercentDecode(std::string_view value) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && hex(value[i + 1]) >= 0 && hex(value[i + 2]) >= 0) {
      out += static_cast<char>(hex(value[i + 1]) * 16 + hex(value[i + 2]));
      i += 2;
    } else {
      out += value[i];
    }
  }
  return out;
}

std::string QuoteConninfoValue(std::string_view value) { return "'" + BackslashEscape(value, "'") + "'"; }

std::shared_ptr<spdlog::sinks::sink> MakeSecretScrubbingSink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<SecretScrubbingSink>(std::move(inner));
}

}  // namespace tandem
