#include "channels/graph_api.hpp"

#include <array>

namespace daybreak::channels {
namespace {

// Meta's Graph API changelog, "Available Graph API versions" (version, date introduced,
// available until): https://developers.facebook.com/docs/graph-api/changelog/versions
// v26.0's end is "TBD" there (to be announced).
constexpr std::array kGraphApiVersions{
    GraphApiVersion{"v26.0", "2026-07-29", ""},
    GraphApiVersion{"v25.0", "2026-02-18", "2028-07-29"},
    GraphApiVersion{"v24.0", "2025-10-08", "2028-02-18"},
    GraphApiVersion{"v23.0", "2025-05-29", "2027-10-08"},
    GraphApiVersion{"v22.0", "2025-01-21", "2027-05-20"},
    GraphApiVersion{"v21.0", "2024-10-02", "2027-01-21"},
    GraphApiVersion{"v20.0", "2024-05-21", "2026-09-24"},
    GraphApiVersion{"v19.0", "2024-01-23", "2026-05-21"},
    GraphApiVersion{"v18.0", "2023-09-12", "2026-01-26"},
    GraphApiVersion{"v17.0", "2023-05-23", "2025-09-12"},
    GraphApiVersion{"v16.0", "2023-02-02", "2025-05-14"},
};

}  // namespace

std::span<const GraphApiVersion> graph_api_versions() { return kGraphApiVersions; }

std::string_view newest_graph_api_version() { return kGraphApiVersions.front().version; }

GraphApiVersionCheck check_graph_api_version(std::string_view version, const Date& today, int warn_days) {
  GraphApiVersionCheck out;
  const std::string v(version);
  for (const auto& row : kGraphApiVersions) {
    if (row.version != version) continue;
    if (row.available_until.empty()) {
      out.message = "whatsapp.api_version " + v + ": no end date announced (Meta's Graph API changelog)";
      return out;
    }
    auto end = parse_date(row.available_until);
    out.end = *end;
    out.days_left = days_since_epoch(*end) - days_since_epoch(today);
    const std::string until(row.available_until);
    if (out.days_left < 0) {
      out.level = GraphApiVersionCheck::Level::expired;
      out.message = "whatsapp.api_version " + v + " was available until " + until + " (" + std::to_string(-out.days_left) +
                    " day(s) ago): Meta no longer serves it; set api_version = \"" + std::string(newest_graph_api_version()) + "\"";
    } else if (out.days_left <= warn_days) {
      out.level = GraphApiVersionCheck::Level::warn;
      out.message = "whatsapp.api_version " + v + " is available until " + until + " (" + std::to_string(out.days_left) +
                    " day(s) left): move to " + std::string(newest_graph_api_version()) + " before then";
    } else {
      out.message = "whatsapp.api_version " + v + " is available until " + until + " (" + std::to_string(out.days_left) +
                    " days left)";
    }
    return out;
  }
  out.level = GraphApiVersionCheck::Level::unknown;
  out.message = "whatsapp.api_version " + v + " is not in this release's table of Graph API versions (newest known " +
                std::string(newest_graph_api_version()) + "); its end date is not checked";
  return out;
}

}  // namespace daybreak::channels
