// KeyCodec: a record key (one or more values) <-> one canonical string.
//
// The string is what Tandem stores in its control tables (key maps, parked
// changes, conflicts). It is unambiguous (type-tagged) and stable: equal keys
// encode to equal strings, whatever their storage class, as long as integers
// stay integers. Values are separated by \x1f.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/value.h"

namespace tandem {

std::string EncodeKey(const Row& key);
Result<Row> DecodeKey(const std::string& encoded);
// Appends one value's encoding (no separator) to `out`.
void AppendEncodedValue(const Value& v, std::string* out);
inline constexpr char kKeySeparator = '\x1f';
// "5" or "(5, 'x')" for messages.
std::string DisplayKey(const Row& key);

// A stable 64-bit hash (FNV-1a) of an entity name and an encoded key, for
// compact key-map indexes. Equal inputs hash equal on every platform and
// version; different inputs may collide, so a hit must be confirmed.
int64_t KeyHash(std::string_view entity, std::string_view encoded_key);

// The same codec for a whole list of values (used for base versions).
inline std::string EncodeValues(const Row& values) { return EncodeKey(values); }
inline Result<Row> DecodeValues(const std::string& s) { return DecodeKey(s); }

}  // namespace tandem
