#include "domain/emergency.hpp"

namespace daybreak {
namespace {

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::optional<EmergencyPick> pick_in(const std::vector<EmergencyCandidate>& candidates, const std::string& language,
                                     std::uint64_t seed) {
  std::vector<std::size_t> pool;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].usable && candidates[i].language == language) pool.push_back(i);
  }
  if (pool.empty()) return std::nullopt;
  return EmergencyPick{pool[mix(seed) % pool.size()], language};
}

}  // namespace

std::optional<std::string> content_pull_problem(std::string_view content_id, bool withdrawn, std::string_view valid_from,
                                                std::string_view valid_until, std::string_view date) {
  if (content_id.empty()) return std::string("content missing");
  const std::string c = "content " + std::string(content_id);
  if (withdrawn) return c + " withdrawn";
  if (!valid_until.empty() && date > valid_until) return c + " expired on " + std::string(valid_until);
  if (!valid_from.empty() && date < valid_from) return c + " not valid until " + std::string(valid_from);
  return std::nullopt;
}

std::optional<EmergencyPick> pick_emergency(const std::vector<EmergencyCandidate>& candidates,
                                            const std::string& advisor_language, const std::string& emergency_language,
                                            std::uint64_t seed) {
  if (auto p = pick_in(candidates, advisor_language, seed)) return p;
  if (emergency_language.empty() || emergency_language == advisor_language) return std::nullopt;
  return pick_in(candidates, emergency_language, seed);
}

std::string held_reason(const std::string& why, const std::string& advisor_language, const std::string& emergency_language) {
  std::string langs = advisor_language;
  if (!emergency_language.empty() && emergency_language != advisor_language) langs += " or " + emergency_language;
  return std::string(kHeldPrefix) + why + "; no emergency item in " + langs;
}

bool is_held_error(std::string_view last_error) { return last_error.substr(0, kHeldPrefix.size()) == kHeldPrefix; }

}  // namespace daybreak
