#pragma once
// Shared by the fuzz harnesses: an invariant check that stays on in release builds (assert is
// compiled out under NDEBUG, and RelWithDebInfo defines it), and that aborts so both libFuzzer
// and the replay runner report the input as a crash.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace daybreak::fuzz {

/// Prints what was violated and aborts; `detail` is the offending message or value, if any.
[[noreturn]] inline void fail(const char* file, int line, const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "  detail: %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace daybreak::fuzz

/// FUZZ_CHECK(cond, detail): aborts with the condition's text when `cond` is false.
#define FUZZ_CHECK(cond, detail) \
  do { \
    if (!(cond)) ::daybreak::fuzz::fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (false)
