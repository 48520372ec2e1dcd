#include "domain/templates.hpp"

#include <algorithm>
#include <cctype>

namespace daybreak {

std::string_view to_string(HeaderKind h) {
  switch (h) {
    case HeaderKind::none: return "none";
    case HeaderKind::text: return "text";
    case HeaderKind::image: return "image";
    case HeaderKind::document: return "document";
    case HeaderKind::video: return "video";
  }
  return "none";
}

std::optional<HeaderKind> header_kind_from_string(std::string_view s) {
  for (auto h : {HeaderKind::none, HeaderKind::text, HeaderKind::image, HeaderKind::document, HeaderKind::video}) {
    if (s == to_string(h)) return h;
  }
  return std::nullopt;
}

HeaderKind header_kind_for_media(std::string_view url) {
  if (url.empty()) return HeaderKind::text;
  // The extension of the path: before any query or fragment, after the last '/'.
  url = url.substr(0, std::min(url.find('?'), url.find('#')));
  const auto slash = url.rfind('/');
  if (slash != std::string_view::npos) url.remove_prefix(slash + 1);
  const auto dot = url.rfind('.');
  std::string ext;
  if (dot != std::string_view::npos) {
    for (char c : url.substr(dot + 1)) ext.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (ext == "pdf") return HeaderKind::document;
  if (ext == "mp4" || ext == "3gp") return HeaderKind::video;
  return HeaderKind::image;
}

std::string_view to_string(TemplateParam p) {
  switch (p) {
    case TemplateParam::advisor_name: return "advisor_name";
    case TemplateParam::title: return "title";
    case TemplateParam::body: return "body";
  }
  return "body";
}

std::optional<TemplateParam> template_param_from_string(std::string_view s) {
  for (auto p : {TemplateParam::advisor_name, TemplateParam::title, TemplateParam::body}) {
    if (s == to_string(p)) return p;
  }
  return std::nullopt;
}

const WhatsAppTemplate* find_template(const std::vector<WhatsAppTemplate>& templates, std::string_view language,
                                      HeaderKind header) {
  const WhatsAppTemplate* headerless = nullptr;
  for (const auto& t : templates) {
    if (t.language != language) continue;
    if (t.header == header) return &t;
    if (t.header == HeaderKind::none && header == HeaderKind::text) headerless = &t;
  }
  return headerless;
}

}  // namespace daybreak
