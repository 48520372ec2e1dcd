#pragma once
// WhatsApp message templates: Meta approves a template per language and per header format
// (none, text, image, document, video), with a fixed number of body parameters. A content item
// needs the template of its language whose header fits its media; this is the one rule that
// picks it, shared by the WhatsApp adapter (what it sends), the night-before check and `doctor`
// (what has none). Pure.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daybreak {

enum class HeaderKind { none, text, image, document, video };
std::string_view to_string(HeaderKind h);
std::optional<HeaderKind> header_kind_from_string(std::string_view s);

/// The header an item's media calls for: a .pdf is a document; .mp4 or .3gp a video; any other
/// media URL an image; no media a text header (the title).
HeaderKind header_kind_for_media(std::string_view media_url);

/// What fills a body parameter, in order.
enum class TemplateParam { advisor_name, title, body };
std::string_view to_string(TemplateParam p);
std::optional<TemplateParam> template_param_from_string(std::string_view s);

/// One approved template ([[whatsapp.templates]]).
struct WhatsAppTemplate {
  std::string language;       ///< the content language it serves ("en", "hi")
  HeaderKind header = HeaderKind::text;
  std::string name;           ///< the approved template's name
  std::string language_code;  ///< Meta's language code ("en_US", "hi"); the content language when empty
  std::vector<TemplateParam> body{TemplateParam::advisor_name, TemplateParam::title, TemplateParam::body};
};

/// The template for content of `language` whose media calls for `header`: the one configured for
/// exactly that pair; an item without media (text header) may also go through a template without
/// a header. Null when none fits.
const WhatsAppTemplate* find_template(const std::vector<WhatsAppTemplate>& templates, std::string_view language,
                                      HeaderKind header);

}  // namespace daybreak
