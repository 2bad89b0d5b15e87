// Status and Result<T>: how every daxfs call reports success or an errno-coded error.
// Public API; knows nothing about devices or formats. OK costs one null pointer.
#pragma once

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace daxfs {

// The error space is errno: codes map one-to-one to what the CLI and FUSE report.
// Corruption is EUCLEAN ("Structure needs cleaning"), as in Linux filesystems.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(const Status& other) { *this = other; }
  Status& operator=(const Status& other) {
    if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status Error(int err, std::string message) { return Status(err, std::move(message)); }
  static Status NotFound(std::string m) { return Status(ENOENT, std::move(m)); }
  static Status Exists(std::string m) { return Status(EEXIST, std::move(m)); }
  static Status NoSpace(std::string m) { return Status(ENOSPC, std::move(m)); }
  static Status IoError(std::string m) { return Status(EIO, std::move(m)); }
  static Status Invalid(std::string m) { return Status(EINVAL, std::move(m)); }
  static Status Corruption(std::string m) { return Status(EUCLEAN, std::move(m)); }
  static Status Busy(std::string m) { return Status(EBUSY, std::move(m)); }
  static Status ReadOnly(std::string m) { return Status(EROFS, std::move(m)); }
  static Status NotSupported(std::string m) { return Status(EOPNOTSUPP, std::move(m)); }
  static Status TooBig(std::string m) { return Status(EFBIG, std::move(m)); }

  bool ok() const { return state_ == nullptr; }
  // errno value; 0 when ok.
  int code() const { return state_ ? state_->code : 0; }
  bool IsNotFound() const { return code() == ENOENT; }
  bool IsCorruption() const { return code() == EUCLEAN; }
  const std::string& message() const;
  // "message (strerror)" or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message"; the code is kept.
  Status WithContext(std::string_view prefix) const;

  // Explicitly ignores a status (for best-effort cleanup paths).
  void IgnoreError() const {}

 private:
  struct State {
    int code;
    std::string message;
  };
  Status(int code, std::string message)
      : state_(std::make_unique<State>(State{code == 0 ? EIO : code, std::move(message)})) {}
  std::unique_ptr<State> state_;
};

// A value or an error. Holds exactly one of them.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status::Error(EIO, "Result built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  Status TakeStatus() { return std::move(status_); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace daxfs

#define DAXFS_CONCAT_INNER_(a, b) a##b
#define DAXFS_CONCAT_(a, b) DAXFS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::daxfs::Status daxfs_status_ = (expr);            \
    if (!daxfs_status_.ok()) return daxfs_status_;     \
  } while (0)

// ASSIGN_OR_RETURN(auto x, FunctionReturningResult()): binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(DAXFS_CONCAT_(daxfs_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.TakeStatus();      \
  lhs = std::move(tmp).value()
