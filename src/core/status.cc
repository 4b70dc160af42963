#include "core/status.h"

namespace tandem {

std::string Status::ToString() const {
  switch (code_) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid: " + message_;
    case StatusCode::kNotFound: return "not found: " + message_;
    case StatusCode::kConstraint: return "rejected: " + message_;
    case StatusCode::kUnavailable: return "unavailable: " + message_;
    case StatusCode::kBusy: return "busy: " + message_;
    case StatusCode::kConflict: return "conflict: " + message_;
    case StatusCode::kInternal: return "internal error: " + message_;
  }
  return message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = context + ": " + message_;
  return s;
}

}  // namespace tandem
