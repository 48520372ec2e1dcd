#pragma once
// The last line of defence for content (pulled or expired items are never sent): what a
// delivery carries when its item may not go out on its day. Pure: no I/O, no clock. Used by the
// dispatcher right before every send and by the withdrawal path at pull time, so both apply
// one rule:
//
//   the item as it is, when it is not withdrawn and valid on the day; else
//   an emergency item of the advisor's language valid on the day; else
//   an emergency item of `delivery.emergency_language` valid on the day; else
//   held: the delivery is made final without a send ("held: content C withdrawn; no emergency
//   item in hi or en"), counted against the SLA, listed with the dead letters, alerted
//   (content_held) and resendable once the content is fixed.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daybreak {

/// Prefix of `deliveries.last_error` for a held delivery (state `dead`, never sent).
inline constexpr std::string_view kHeldPrefix = "held: ";

/// Why the item may not go out on delivery day `date` ("YYYY-MM-DD"), or nullopt when it may:
/// "content C withdrawn", "content C expired on 2026-12-07", "content C not valid until …".
/// An empty `content_id` (the row names no known item) is "content missing".
std::optional<std::string> content_pull_problem(std::string_view content_id, bool withdrawn, std::string_view valid_from,
                                                std::string_view valid_until, std::string_view date);

/// One emergency-pool item as the rule sees it.
struct EmergencyCandidate {
  std::string language;
  bool usable = false;  ///< emergency, not withdrawn, valid on the day, not the item being replaced
};

/// The chosen candidate (index into the list) and the language it was chosen for.
struct EmergencyPick {
  std::size_t index = 0;
  std::string language;
};

/// The emergency item for an advisor of `advisor_language`: a usable candidate of that language,
/// else one of `emergency_language`, else nullopt (hold). Among several of the chosen language
/// one is picked by `seed` (the delivery id: stable across restarts, spread over the pool).
std::optional<EmergencyPick> pick_emergency(const std::vector<EmergencyCandidate>& candidates,
                                            const std::string& advisor_language, const std::string& emergency_language,
                                            std::uint64_t seed);

/// The `last_error` of a held delivery: "held: <why>; no emergency item in hi or en" (one
/// language when both are the same).
std::string held_reason(const std::string& why, const std::string& advisor_language, const std::string& emergency_language);

/// True when `last_error` marks a held delivery.
bool is_held_error(std::string_view last_error);

}  // namespace daybreak
