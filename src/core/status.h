// Status and Result<T>: expected failures as values.
//
// A Status carries a code, a message that names the object concerned (entity,
// table, key, file:line) and whether retrying the same operation later may
// succeed (a database that is down: yes; a row the target rejects: no).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tandem {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // bad config, bad usage
  kNotFound,
  kConstraint,       // the target rejected a row (constraint, type, unmapped code)
  kUnavailable,      // database unreachable / busy: retryable
  kBusy,             // another process holds what we need (e.g. another tandem is running)
  kConflict,         // both sides changed a record and its policy leaves the decision to a person
  kInternal,
};

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(StatusCode::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status Constraint(std::string msg) { return Status(StatusCode::kConstraint, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(StatusCode::kUnavailable, std::move(msg), true); }
  static Status Busy(std::string msg) { return Status(StatusCode::kBusy, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(StatusCode::kConflict, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool retryable() const { return retryable_; }
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const;

 private:
  Status(StatusCode code, std::string msg, bool retryable = false)
      : code_(code), message_(std::move(msg)), retryable_(retryable) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  bool retryable_ = false;
};

// Either a value or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

#define TANDEM_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::tandem::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)

#define TANDEM_CONCAT_INNER(a, b) a##b
#define TANDEM_CONCAT(a, b) TANDEM_CONCAT_INNER(a, b)
#define TANDEM_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto TANDEM_CONCAT(_res_, __LINE__) = (expr);                     \
  if (!TANDEM_CONCAT(_res_, __LINE__).ok())                         \
    return TANDEM_CONCAT(_res_, __LINE__).status();                 \
  lhs = std::move(TANDEM_CONCAT(_res_, __LINE__)).value()

}  // namespace tandem
