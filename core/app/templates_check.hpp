#pragma once
// The night-before WhatsApp template check: every item a day sends over WhatsApp must have an
// approved template for its language and header ([[whatsapp.templates]], domain/templates.hpp).
// plan-deliveries reports what has none (exit 1) and `daybreak doctor` fails on it, at 21:30,
// not at 06:00 when Meta would answer 132001 for each of those advisors.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "store/db.hpp"

namespace daybreak {

struct MissingTemplate {
  std::string content_id;
  std::string language;
  std::string header;  ///< the header its media calls for
  std::int64_t advisors = 0;
};

/// Items assigned on `date` to WhatsApp advisors without a fitting template; empty when
/// [[whatsapp.templates]] is not configured (the single template_name serves every item).
std::vector<MissingTemplate> missing_templates(store::Db& db, const Config& cfg, const std::string& date);

nlohmann::json to_json(const std::vector<MissingTemplate>& missing);
/// "content C (hi, image header) for 120 advisors: no [[whatsapp.templates]] entry for language hi with an image header"
std::string describe(const MissingTemplate& m);

}  // namespace daybreak
