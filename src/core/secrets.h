// Secrets: keeping credentials out of everything Tandem prints.
//
// A process-wide registry holds the secret values Tandem learns (database
// passwords from `${VAR}` expansion, PGPASSWORD, .pgpass via libpq).
// ScrubSecrets() replaces every registered value -- and its percent-encoded,
// conninfo-escaped and JSON-escaped forms -- in any text by "****"; the CLI
// passes all its output through it and logs through a scrubbing spdlog sink
// (MakeSecretScrubbingSink), so no log level or error path can print one.
//
// Also here: the encodings that let any password sit inside a connection
// string (PercentEncode for URIs, QuoteConninfoValue for keyword/value).
//
// Thread-safe: the registry may be read and extended from any thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <spdlog/sinks/sink.h>

namespace tandem {

// What replaces a secret in output.
inline constexpr std::string_view kSecretMask = "****";

// Secrets shorter than this are not searched for in free text: a two-letter
// password would blank every matching pair of letters in every message.
// Connection targets are masked structurally whatever the password's length.
inline constexpr size_t kMinScrubbedSecretLength = 3;

// Adds `secret` (and its encoded forms) to the process-wide registry.
// Empty values are ignored; registering a value twice is harmless.
void RegisterSecret(std::string_view secret);

// `text` with every registered secret, in any of its encoded forms,
// replaced by kSecretMask.
std::string ScrubSecrets(std::string_view text);

// RFC 3986 percent-encoding: every byte but the unreserved characters
// (ALPHA / DIGIT / "-" / "." / "_" / "~") becomes %XX (upper-case hex).
std::string PercentEncode(std::string_view value);

// The inverse of PercentEncode, for any hex case; malformed escapes are kept
// as they are.
std::string PercentDecode(std::string_view value);

// `value` as a single-quoted libpq keyword/value conninfo value: wrapped in
// single quotes, with backslash and single quote escaped by a backslash.
std::string QuoteConninfoValue(std::string_view value);

// A sink that scrubs each message's text (ScrubSecrets) before handing it to
// `inner`, which formats and writes it. Patterns and formatters set on the
// returned sink are forwarded to `inner`.
std::shared_ptr<spdlog::sinks::sink> MakeSecretScrubbingSink(std::shared_ptr<spdlog::sinks::sink> inner);

// fmt::print through ScrubSecrets: for every line the CLI writes.
template <typename... Args>
void PrintScrubbed(std::FILE* out, fmt::format_string<Args...> format, Args&&... args) {
  std::string text = ScrubSecrets(fmt::format(format, std::forward<Args>(args)...));
  std::fwrite(text.data(), 1, text.size(), out);
}
template <typename... Args>
void PrintScrubbed(fmt::format_string<Args...> format, Args&&... args) {
  PrintScrubbed(stdout, format, std::forward<Args>(args)...);
}

}  // namespace tandem
