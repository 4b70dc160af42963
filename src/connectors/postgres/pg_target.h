// Connection targets that can be shown: a PostgreSQL URI
// (postgresql://user:password@host:port/db?password=...) or keyword/value
// conninfo (host=... password='...') with the password masked, and libpq's
// messages about a target made safe to print.
//
// Nothing here ever returns a secret, also for input libpq cannot parse: the
// masking is then wider (everything that might hold a password). SQLite
// targets ("sqlite:PATH") hold no secret and pass unchanged.
// Thread-safe (pure functions, plus the registry of core/secrets.h).
#pragma once

#include <string>
#include <string_view>

namespace tandem {

// True for a target PostgreSQL's connector opens: a postgresql:// or
// postgres:// URI, or keyword/value conninfo ("host=... dbname=...").
bool IsPostgresTarget(std::string_view target);

// `target` with every password replaced by "****": the URI's userinfo
// password, URI query parameters and conninfo keywords naming a password
// (quoted values too). A target without one is returned as it is.
//   postgresql://app:s%40cret@db/x  ->  postgresql://app:****@db/x
//   host=db password='a b' dbname=x ->  host=db password=**** dbname=x
std::string MaskConnectionTarget(std::string_view target);

// Registers the password of `target` with RegisterSecret (core/secrets.h):
// the one libpq parses, or, when libpq cannot parse the target, every part
// MaskConnectionTarget hides. Returns whether libpq parses `target` (true
// for SQLite targets, which register nothing).
bool RegisterTargetSecrets(std::string_view target);

// `message` (from libpq, about `target`) fit to print: `target` itself
// masked, any double-quoted excerpt overlapping its password masked, and
// registered secrets scrubbed.
std::string ScrubConnectionMessage(std::string_view message, std::string_view target);

}  // namespace tandem
