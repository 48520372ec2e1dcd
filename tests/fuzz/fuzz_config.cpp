// Fuzz harness for the configuration parser (core/config/config.hpp): arbitrary bytes as
// daybreak.toml. parse_config either returns a Config or throws ConfigError whose message starts
// with the file name (every error names the file, and the key and line where it has them); any
// other exception, a crash or a sanitizer report is a finding.
//
// Secrets may come from `*_file` keys, which parse_config opens and reads a line of. Inputs that
// point one at something other than a small regular file (/dev/zero, a FIFO, /proc/kmsg) are
// skipped: reading those would hang or exhaust memory in the harness, not in the parser, and the
// operator who writes such a path owns the machine anyway.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <toml++/toml.h>

#include "config/config.hpp"
#include "fuzz_check.hpp"

namespace {

using daybreak::Config;
using daybreak::ConfigError;

const std::string kOrigin = "fuzz.toml";

// True when `path` is safe to open and read a line of: missing, or a small regular file
// outside the kernel's pseudo file systems.
bool harmless_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) return true;
  fs::path canon = fs::weakly_canonical(fs::path(path), ec);
  if (ec) return false;
  for (std::string_view top : {"/dev", "/proc", "/sys", "/run"}) {
    if (canon.string().rfind(top, 0) == 0) return false;
  }
  auto st = fs::status(canon, ec);
  if (ec || !fs::exists(st)) return true;
  if (!fs::is_regular_file(st)) return false;
  return fs::file_size(canon, ec) < (1U << 20U) && !ec;
}

// True when no `*_file` key anywhere in `node` names a file harmless_file rejects.
bool file_keys_harmless(const toml::node& node) {
  if (const auto* t = node.as_table()) {
    for (const auto& [k, v] : *t) {
      std::string_view key = k.str();
      if (key.size() >= 5 && key.substr(key.size() - 5) == "_file") {
        if (auto s = v.value<std::string>(); s && !harmless_file(*s)) return false;
      }
      if (!file_keys_harmless(v)) return false;
    }
  } else if (const auto* a = node.as_array()) {
    for (const auto& v : *a) {
      if (!file_keys_harmless(v)) return false;
    }
  }
  return true;
}

// What a Config that parse_config returned must satisfy.
void check_config(const Config& c) {
  FUZZ_CHECK(c.source == kOrigin, c.source);
  FUZZ_CHECK(!c.database_path.empty(), "empty database path accepted");
  FUZZ_CHECK(!c.tiers.empty(), "empty tier list accepted");
  FUZZ_CHECK(c.window.deadline_ms >= c.window.tail_ms, "deadline before the window tail accepted");
  FUZZ_CHECK(c.breaker.max_open_ms >= c.breaker.open_ms, "max_open below open accepted");
  FUZZ_CHECK(c.utilisation >= 0.05 && c.utilisation <= 1.0, "utilisation out of range accepted");
  std::set<std::string> ids;
  for (const auto& s : c.senders) {
    FUZZ_CHECK(!s.id.empty(), "sender without id accepted");
    FUZZ_CHECK(ids.insert(s.id).second, s.id);
    FUZZ_CHECK(s.mps > 0, s.id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    toml::table pre = toml::parse(text, kOrigin);
    if (!file_keys_harmless(pre)) return 0;
  } catch (const toml::parse_error&) {
    // parse_config must turn this into a ConfigError; checked below.
  }
  try {
    check_config(daybreak::parse_config(text, kOrigin));
  } catch (const ConfigError& e) {
    std::string_view msg = e.what();
    FUZZ_CHECK(msg.rfind(kOrigin, 0) == 0, msg);
    FUZZ_CHECK(msg.size() > kOrigin.size() + 2, msg);
  } catch (const std::exception& e) {
    daybreak::fuzz::fail(__FILE__, __LINE__, "parse_config threw something other than ConfigError", e.what());
  }
  return 0;
}
