#pragma once
// Private to core/config: reads the [alerts] TOML table into AlertsConfig. Only config.cpp and
// alerts_config.cpp include it, so toml++ stays out of every other translation unit.
#include <string>
#include <toml++/toml.h>

#include "config/alerts_config.hpp"

namespace daybreak {

/// Validates and reads [alerts]; throws ConfigError naming the key and line. Sets
/// `inline_secret` when a secret (webhook URL, SMTP password) is written in the file itself.
void read_alerts_config(const toml::table& t, const std::string& origin, AlertsConfig& out, bool& inline_secret);

}  // namespace daybreak
