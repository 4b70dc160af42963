#include "connectors/postgres/pg_target.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "core/secrets.h"

namespace tandem {

namespace {

// A target with its passwords cut out, and the cut-out text (raw and decoded).
struct Masked {
  std::string text;
  std::vector<std::string> hidden;
};

bool IsSqlite(std::string_view target) { return target.starts_with("sqlite:"); }

bool IsUri(std::string_view target) {
  return target.starts_with("postgresql://") || target.starts_with("postgres://");
}

// A keyword or query parameter whose value is a password ("password",
// "PASSWORD", typos like "passwd"); a file of passwords is no secret.
bool NamesPassword(std::string_view key) {
  std::string lower;
  for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("pass") != std::string::npos && lower != "passfile";
}

// libpq's reading of `target`, or nullopt when it cannot parse it.
struct Parsed {
  std::optional<std::string> password;
};
std::optional<Parsed> ParseWithLibpq(std::string_view target) {
  char* err = nullptr;
  const std::string text(target);
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return std::nullopt;
  Parsed parsed;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val && std::string_view(o->keyword) == "password") parsed.password = o->val;
  PQconninfoFree(opts);
  return parsed;
}

// A URI. `lenient` (libpq cannot parse it): the userinfo is taken to end at
// the last '@', since an unencoded password may hold '@', '/' or '?'. Else
// it ends where libpq ends it: at the first '@' unless a '/' comes first.
Masked MaskUri(std::string_view target, bool lenient) {
  Masked m;
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return {std::string(target), {}};
  m.text = std::string(target.substr(0, scheme + 3));
  std::string_view rest = target.substr(scheme + 3);
  size_t at = std::string_view::npos;
  if (lenient) {
    at = rest.rfind('@');
  } else {
    // The userinfo ends at the last '@' before any query: a password with an
    // unencoded '/' or '@' (which libpq reads as host and port) is masked whole.
    at = rest.substr(0, rest.find('?')).rfind('@');
  }
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      m.text += std::string(userinfo.substr(0, colon + 1)) + std::string(kSecretMask);
      m.hidden.emplace_back(userinfo.substr(colon + 1));
    } else {
      m.text += std::string(userinfo);
    }
    m.text += '@';
    rest = rest.substr(at + 1);
  }
  const size_t query = rest.find('?');
  m.text += std::string(rest.substr(0, query));
  if (query == std::string_view::npos) return m;
  m.text += '?';
  std::string_view params = rest.substr(query + 1);
  for (bool first = true;; first = false) {
    const size_t amp = params.find('&');
    const std::string_view param = params.substr(0, amp);
    if (!first) m.text += '&';
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos && NamesPassword(PercentDecode(param.substr(0, eq)))) {
      m.text += std::string(param.substr(0, eq + 1)) + std::string(kSecretMask);
      m.hidden.emplace_back(param.substr(eq + 1));
    } else {
      m.text += std::string(param);
    }
    if (amp == std::string_view::npos) break;
    params = params.substr(amp + 1);
  }
  return m;
}

// Keyword/value conninfo, read as libpq reads it: `key = value` pairs apart
// by whitespace; a value is single-quoted or ends at whitespace; a backslash
// escapes the next character. Where the syntax breaks, everything from the
// broken pair on is masked.
Masked MaskConninfo(std::string_view target) {
  Masked m;
  size_t i = 0;
  auto space = [&](size_t at) { return at < target.size() && std::isspace(static_cast<unsigned char>(target[at])); };
  auto broken = [&](size_t from) {
    m.text += std::string(kSecretMask);
    m.hidden.emplace_back(target.substr(from));
    return m;
  };
  while (i < target.size()) {
    const size_t pair = i;
    while (space(i)) ++i;
    if (i >= target.size()) {
      m.text += std::string(target.substr(pair));
      break;
    }
    const size_t key_start = i;
    while (i < target.size() && target[i] != '=' && !space(i)) ++i;
    const std::string_view key = target.substr(key_start, i - key_start);
    while (space(i)) ++i;
    if (i >= target.size() || target[i] != '=') {
      m.text += std::string(target.substr(pair, key_start - pair));
      return broken(key_start);
    }
    ++i;
    while (space(i)) ++i;
    const size_t value_start = i;
    std::string value;
    if (i < target.size() && target[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < target.size()) {
        if (target[i] == '\\' && i + 1 < target.size()) {
          value += target[i + 1];
          i += 2;
        } else if (target[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          value += target[i++];
        }
      }
      if (!closed) {
        m.text += std::string(target.substr(pair, value_start - pair));
        return broken(value_start);
      }
    } else {
      while (i < target.size() && !space(i)) {
        if (target[i] == '\\' && i + 1 < target.size()) ++i;
        value += target[i++];
      }
    }
    m.text += std::string(target.substr(pair, value_start - pair));
    if (NamesPassword(key)) {
      m.text += std::string(kSecretMask);
      m.hidden.emplace_back(target.substr(value_start, i - value_start));
      m.hidden.push_back(value);
    } else {
      m.text += std::string(target.substr(value_start, i - value_start));
    }
  }
  return m;
}

Masked Mask(std::string_view target) {
  if (IsSqlite(target)) return {std::string(target), {}};
  std::optional<Parsed> parsed = ParseWithLibpq(target);
  Masked m = target.find("://") != std::string_view::npos ? MaskUri(target, !parsed) : MaskConninfo(target);
  std::vector<std::string> decoded;
  for (const std::string& h : m.hidden) decoded.push_back(PercentDecode(h));
  m.hidden.insert(m.hidden.end(), decoded.begin(), decoded.end());
  // Belt and braces: the password libpq reads must not survive the masking.
  if (parsed && parsed->password && !parsed->password->empty()) {
    const std::string& pw = *parsed->password;
    m.hidden.push_back(pw);
    if (pw.size() >= kMinScrubbedSecretLength) {
      for (const std::string& form : {pw, PercentEncode(pw)})
        for (size_t at = m.text.find(form); at != std::string::npos; at = m.text.find(form, at + kSecretMask.size()))
          m.text.replace(at, form.size(), kSecretMask);
    }
  }
  std::erase_if(m.hidden, [](const std::string& h) { return h.empty(); });
  return m;
}

}  // namespace

bool IsPostgresTarget(std::string_view target) {
  if (IsSqlite(target)) return false;
  if (IsUri(target)) return true;
  return target.find("://") == std::string_view::npos && target.find('=') != std::string_view::npos;
}

std::string MaskConnectionTarget(std::string_view target) { return Mask(target).text; }

bool RegisterTargetSecrets(std::string_view target) {
  if (IsSqlite(target)) return true;
  std::optional<Parsed> parsed = ParseWithLibpq(target);
  // What masking hides is a secret too, even where libpq reads the target
  // otherwise (a password with an unencoded '/' read as host and port).
  for (const std::string& hidden : Mask(target).hidden) RegisterSecret(hidden);
  if (parsed) {
    if (parsed->password) RegisterSecret(*parsed->password);
    return true;
  }
  return false;
}

std::string ScrubConnectionMessage(std::string_view message, std::string_view target) {
  std::string out(message);
  auto replace_all = [&out](std::string_view what, std::string_view with) {
    for (size_t at = out.find(what); at != std::string::npos; at = out.find(what, at + with.size()))
      out.replace(at, what.size(), with);
  };
  if (!target.empty()) replace_all(target, MaskConnectionTarget(target));
  std::vector<std::string> hidden = Mask(target).hidden;
  std::sort(hidden.begin(), hidden.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& h : hidden)
    if (h.size() >= kMinScrubbedSecretLength) replace_all(h, kSecretMask);
  out = ScrubSecrets(out);
  // libpq quotes what it could not read ("invalid percent-encoded token:
  // \"...\"", "missing \"=\" after \"...\""): a piece of a password, maybe.
  auto piece_of_password = [&](std::string_view quoted) {
    return std::any_of(hidden.begin(), hidden.end(), [&](const std::string& h) {
      return h == quoted || (quoted.size() >= kMinScrubbedSecretLength && h.find(quoted) != std::string::npos);
    });
  };
  for (size_t open = out.find('"'); open != std::string::npos;) {
    const size_t close = out.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string_view quoted = std::string_view(out).substr(open + 1, close - open - 1);
    if (!quoted.empty() && piece_of_password(quoted)) {
      out.replace(open + 1, quoted.size(), kSecretMask);
      open = out.find('"', open + 1 + kSecretMask.size() + 1);
    } else {
      open = out.find('"', close + 1);
    }
  }
  return out;
}

}  // namespace tandem
