#include "app/templates_check.hpp"

#include "domain/templates.hpp"
#include "store/content_usage.hpp"

namespace daybreak {

std::vector<MissingTemplate> missing_templates(store::Db& db, const Config& cfg, const std::string& date) {
  std::vector<MissingTemplate> out;
  if (cfg.whatsapp.templates.empty() || cfg.senders_of(Channel::whatsapp).empty()) return out;
  for (const auto& use : store::ContentAssignedOnChannel(db, date, "whatsapp")) {
    const HeaderKind header = header_kind_for_media(use.media_url);
    if (find_template(cfg.whatsapp.templates, use.language, header) == nullptr) {
      out.push_back({use.content_id, use.language, std::string(to_string(header)), use.advisors});
    }
  }
  return out;
}

nlohmann::json to_json(const std::vector<MissingTemplate>& missing) {
  auto out = nlohmann::json::array();
  for (const auto& m : missing) {
    out.push_back({{"content_id", m.content_id}, {"language", m.language}, {"header", m.header}, {"advisors", m.advisors}});
  }
  return out;
}

std::string describe(const MissingTemplate& m) {
  return "content " + m.content_id + " (" + m.language + ", " + m.header + " header) for " + std::to_string(m.advisors) +
         " WhatsApp advisor(s): no [[whatsapp.templates]] entry for language " + m.language + " with a" +
         (m.header == "image" ? "n " : " ") + m.header + " header";
}

}  // namespace daybreak
