// WhatsApp templates per (language, header) (domain/templates.hpp): the header an item's media
// calls for, the choice of template, the adapter's request through the chosen one, and the
// configuration that declares them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "channels/whatsapp.hpp"
#include "config/config.hpp"
#include "domain/templates.hpp"

namespace daybreak {
namespace {

TEST(HeaderKindForMedia, FollowsTheMediaExtension) {
  EXPECT_EQ(header_kind_for_media(""), HeaderKind::text);
  EXPECT_EQ(header_kind_for_media("https://cdn.example.com/brief.PDF?sig=1"), HeaderKind::document);
  EXPECT_EQ(header_kind_for_media("https://cdn.example.com/clip.mp4#t=3"), HeaderKind::video);
  EXPECT_EQ(header_kind_for_media("https://cdn.example.com/chart.png"), HeaderKind::image);
  EXPECT_EQ(header_kind_for_media("https://cdn.example.com/v1.2/chart"), HeaderKind::image);  // a dot in a directory is no extension
}

std::vector<WhatsAppTemplate> catalogue() {
  return {{"en", HeaderKind::text, "brief_text_en", "en_US", {TemplateParam::advisor_name, TemplateParam::title, TemplateParam::body}},
          {"en", HeaderKind::image, "brief_image_en", "en_US", {TemplateParam::advisor_name, TemplateParam::body}},
          {"hi", HeaderKind::none, "brief_plain_hi", "hi", {TemplateParam::body}}};
}

TEST(FindTemplate, ExactLanguageAndHeaderElseAHeaderlessOneForText) {
  const auto t = catalogue();
  ASSERT_NE(find_template(t, "en", HeaderKind::image), nullptr);
  EXPECT_EQ(find_template(t, "en", HeaderKind::image)->name, "brief_image_en");
  EXPECT_EQ(find_template(t, "en", HeaderKind::text)->name, "brief_text_en");
  EXPECT_EQ(find_template(t, "en", HeaderKind::document), nullptr);  // no document template in en
  EXPECT_EQ(find_template(t, "hi", HeaderKind::text)->name, "brief_plain_hi");  // text item, header-less template
  EXPECT_EQ(find_template(t, "hi", HeaderKind::image), nullptr);  // an image cannot go through a header-less one
  EXPECT_EQ(find_template(t, "ta", HeaderKind::text), nullptr);
}

TEST(TemplatedRequest, UsesTheTemplateOfTheItemsLanguageAndHeaderWithItsParameters) {
  WhatsAppConfig wa;
  wa.graph_base = "http://127.0.0.1:8080";
  wa.templates = catalogue();
  SenderConfig sender;
  sender.id = "wa-1";
  sender.phone_number_id = "1";
  sender.token = "t";
  channels::Message m;
  m.delivery_id = 7;
  m.to = "+919812345678";
  m.advisor_name = "Asha";
  m.language = "hi";          // the advisor's language
  m.content_language = "en";  // an English item (the default-language emergency item, say)
  m.title = "Brief";
  m.body = "Body";
  m.media_url = "https://cdn.example.com/chart.jpg";
  channels::WhatsAppAdapter a(wa, sender);
  auto j = nlohmann::json::parse(a.build(m).body);
  EXPECT_EQ(j["template"]["name"], "brief_image_en");
  EXPECT_EQ(j["template"]["language"]["code"], "en_US");
  const auto& comps = j["template"]["components"];
  ASSERT_EQ(comps.size(), 2U);
  EXPECT_EQ(comps[0]["type"], "header");
  EXPECT_EQ(comps[0]["parameters"][0]["type"], "image");
  EXPECT_EQ(comps[0]["parameters"][0]["image"]["link"], m.media_url);
  ASSERT_EQ(comps[1]["parameters"].size(), 2U);  // advisor_name, body: the template's layout
  EXPECT_EQ(comps[1]["parameters"][0]["text"], "Asha");
  EXPECT_EQ(comps[1]["parameters"][1]["text"], "Body");

  // A Hindi text item goes through the header-less Hindi template: no header component.
  m.content_language = "hi";
  m.media_url.clear();
  j = nlohmann::json::parse(a.build(m).body);
  EXPECT_EQ(j["template"]["name"], "brief_plain_hi");
  ASSERT_EQ(j["template"]["components"].size(), 1U);
  EXPECT_EQ(j["template"]["components"][0]["type"], "body");
  EXPECT_EQ(j["template"]["components"][0]["parameters"][0]["text"], "Body");
}

TEST(TemplatesConfig, ReadsTheTableAndRefusesAmbiguityAndUnknownHeaders) {
  Config cfg = parse_config(R"(
[[whatsapp.templates]]
language = "en"
header = "document"
name = "brief_doc_en"
language_code = "en_GB"
body_parameters = ["advisor_name", "title"]
[[whatsapp.templates]]
language = "hi"
name = "brief_text_hi"
)",
                            "");
  ASSERT_EQ(cfg.whatsapp.templates.size(), 2U);
  EXPECT_EQ(cfg.whatsapp.templates[0].header, HeaderKind::document);
  EXPECT_EQ(cfg.whatsapp.templates[0].language_code, "en_GB");
  EXPECT_EQ(cfg.whatsapp.templates[0].body.size(), 2U);
  EXPECT_EQ(cfg.whatsapp.templates[1].header, HeaderKind::text);  // the default
  EXPECT_EQ(cfg.whatsapp.templates[1].body.size(), 3U);           // advisor_name, title, body
  EXPECT_THROW(parse_config("[[whatsapp.templates]]\nlanguage = \"en\"\nname = \"a\"\nheader = \"gif\"\n", ""), ConfigError);
  EXPECT_THROW(parse_config("[[whatsapp.templates]]\nlanguage = \"en\"\nname = \"a\"\n[[whatsapp.templates]]\nlanguage = \"en\"\nname = \"b\"\n", ""),
               ConfigError);
  EXPECT_THROW(parse_config("[[whatsapp.templates]]\nlanguage = \"en\"\nname = \"a\"\nbody_parameters = [\"phone\"]\n", ""), ConfigError);
  EXPECT_THROW(parse_config("[[whatsapp.templates]]\nname = \"a\"\n", ""), ConfigError);
}

}  // namespace
}  // namespace daybreak
