#pragma once
// The Graph API versions the WhatsApp Cloud API is called through, and when each stops being
// available: a dated table, from Meta's Graph API changelog ("Available Graph API versions",
// https://developers.facebook.com/docs/graph-api/changelog/versions). `daybreak doctor` and the
// nightly plan-deliveries warn from 60 days before the configured [whatsapp] api_version's end
// and fail after it.
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "domain/time.hpp"

namespace daybreak::channels {

struct GraphApiVersion {
  std::string_view version;   ///< "v26.0"
  std::string_view released;  ///< YYYY-MM-DD
  std::string_view available_until;  ///< YYYY-MM-DD; empty = not announced yet
};

/// The table, newest first.
std::span<const GraphApiVersion> graph_api_versions();
/// The newest version of the table (the default api_version).
std::string_view newest_graph_api_version();

/// How the configured version stands on `today`.
struct GraphApiVersionCheck {
  enum class Level { ok, warn, expired, unknown } level = Level::ok;
  std::optional<Date> end;  ///< its last available day, when announced
  long days_left = 0;       ///< end - today (negative once past)
  std::string message;      ///< one line for doctor and the plan report
};

/// ok: no end announced, or more than `warn_days` away; warn: within `warn_days` of its end;
/// expired: after its end date; unknown: not in the table (a typo, or a version newer than this
/// release: said so, not failed).
GraphApiVersionCheck check_graph_api_version(std::string_view version, const Date& today, int warn_days = 60);

}  // namespace daybreak::channels
