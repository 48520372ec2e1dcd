#pragma once
// A small expected-style result for pure functions (GCC 12 has no std::expected): domain code
// returns errors as values and leaves exceptions to the I/O boundaries.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace daybreak {

/// An error a pure function reports: a stable machine code plus a message naming what and where.
struct Error {
  std::string code;
  std::string message;
};

/// Either a value or an Error.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { assert(ok()); return std::get<0>(v_); }
  const T& value() const { assert(ok()); return std::get<0>(v_); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace daybreak
