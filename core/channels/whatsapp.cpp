#include "channels/whatsapp.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>

#include "channels/whatsapp_errors.hpp"

namespace daybreak::channels {
namespace {


}  // namespace

WhatsAppAdapter::WhatsAppAdapter(const WhatsAppConfig& wa, const SenderConfig& sender)
    : wa_(wa),
      sender_(sender),
      url_(wa.graph_base + "/" + wa.api_version + "/" + sender.phone_number_id + "/messages"),
      auth_header_("Authorization: Bearer " + sender.token.value()) {}  // the token is read here, once

namespace {

/// Appends `v` as a JSON string (quotes, backslash and control characters escaped; UTF-8 passed
/// through as it is, which JSON allows).
void append_json_string(std::string& out, std::string_view v) {
  static constexpr char kJsonHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kJsonHex[(static_cast<unsigned char>(c) >> 4) & 0xF]);
          out.push_back(kJsonHex[static_cast<unsigned char>(c) & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

/// `"key":"value"` with the value escaped.
void append_field(std::string& out, std::string_view key, std::string_view value) {
  out.push_back('"');
  out += key;
  out += "\":";
  append_json_string(out, value);
}

}  // namespace

Request WhatsAppAdapter::build(const Message& m) const {
  // Template message (Meta: "Send messages", template object): the template approved for the
  // item's language and header format ([[whatsapp.templates]], domain/templates.hpp), else the
  // one `template_name` for everything; its header from the media (image, document, video) or
  // the title; its body parameters in the template's order. Written directly rather than
  // through a JSON tree: at 3,500 sends a second the tree's allocations were 40% of the dispatch
  // loop's CPU (docs/performance.md, profile).
  const HeaderKind header = header_kind_for_media(m.media_url);
  const std::string& lang = m.content_language.empty() ? m.language : m.content_language;
  const WhatsAppTemplate* t = wa_.templates.empty() ? nullptr : find_template(wa_.templates, lang, header);
  static const std::vector<TemplateParam> kDefaultBody{TemplateParam::advisor_name, TemplateParam::title, TemplateParam::body};
  const std::string_view name = t ? std::string_view(t->name) : std::string_view(wa_.template_name);
  const std::string_view code = t && !t->language_code.empty() ? std::string_view(t->language_code) : std::string_view(lang);
  const HeaderKind sent_header = t ? t->header : header;
  const auto& body = t ? t->body : kDefaultBody;
  std::string out;
  out.reserve(320 + m.to.size() + m.advisor_name.size() + 2 * m.title.size() + m.body.size() + m.media_url.size());
  out += "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",";
  append_field(out, "to", m.to);
  out += ",\"type\":\"template\",\"template\":{";
  append_field(out, "name", name);
  out += ",\"language\":{";
  append_field(out, "code", code);
  out += "},\"components\":[";
  if (sent_header != HeaderKind::none) {
    out += "{\"type\":\"header\",\"parameters\":[{";
    switch (sent_header) {
      case HeaderKind::document:
        out += "\"type\":\"document\",\"document\":{";
        append_field(out, "link", m.media_url);
        out.push_back(',');
        append_field(out, "filename", m.title + ".pdf");
        out.push_back('}');
        break;
      case HeaderKind::image:
      case HeaderKind::video: {
        const std::string_view kind = sent_header == HeaderKind::image ? "image" : "video";
        out += "\"type\":\"";
        out += kind;
        out += "\",\"";
        out += kind;
        out += "\":{";
        append_field(out, "link", m.media_url);
        out.push_back('}');
        break;
      }
      default:
        out += "\"type\":\"text\",";
        append_field(out, "text", m.title);
    }
    out += "}]},";
  }
  out += "{\"type\":\"body\",\"parameters\":[";
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (i) out.push_back(',');
    out += "{\"type\":\"text\",";
    append_field(out, "text", body[i] == TemplateParam::advisor_name ? std::string_view(m.advisor_name)
                                  : body[i] == TemplateParam::title  ? std::string_view(m.title)
                                                                     : std::string_view(m.body));
    out.push_back('}');
  }
  out += "]}]},";
  // The delivery id travels with the message and comes back in status webhooks: how an
  // uncertain send is reconciled without an idempotency key.
  append_field(out, "biz_opaque_callback_data", std::to_string(m.delivery_id));
  out.push_back('}');
  Request r;
  r.kind = Request::Kind::http;
  r.url = url_;
  r.headers = {auth_header_, "Content-Type: application/json"};
  r.body = std::move(out);
  r.connect_timeout_ms = wa_.connect_timeout_ms;
  r.timeout_ms = wa_.request_timeout_ms;
  return r;
}

FailureKind classify_whatsapp_error(long code, long subcode) {
  const auto* rule = find_whatsapp_error(code, subcode);
  return (rule ? *rule : whatsapp_unknown_error_rule()).kind;
}

namespace {

/// The accepted answer read by nlohmann's SAX parser, without building a document (the success
/// path of every send: a DOM per answer was about 5% of dispatch's CPU in scenario d). `ok()`
/// only when the body is valid JSON whose top-level object's "messages" (the last such key, as
/// the DOM keeps it) is an array whose first element is an object with a string "id"; then `id`
/// and `status` are that element's last "id" and "message_status", as the DOM would give them.
/// Anything else goes to the DOM path, which decides it as it always has.
class AcceptedSax {
 public:
  using json = nlohmann::json;
  bool ok() const { return messages_array_ && first_is_object_ && id_is_string_; }
  std::string id, status;
  bool status_is_string = false;

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(json::number_integer_t) { return scalar(); }
  bool number_unsigned(json::number_unsigned_t) { return scalar(); }
  bool number_float(json::number_float_t, const json::string_t&) { return scalar(); }
  bool binary(json::binary_t&) { return scalar(); }
  bool string(json::string_t& v) {
    value_starts(false);
    if (in_first_object_level()) {
      if (key_ == "id") {
        id = v;
        id_is_string_ = true;
      } else if (key_ == "message_status") {
        status = v;
        status_is_string = true;
      }
    }
    return after_value();
  }
  bool start_object(std::size_t) {
    if (depth_ == 0) top_is_object_ = true;
    value_starts(true);
    ++depth_;
    return true;
  }
  bool key(json::string_t& k) {
    if (depth_ == 1 && top_is_object_) {
      top_key_ = k;
      if (k == "messages") messages_array_ = first_seen_ = first_is_object_ = id_is_string_ = status_is_string = false;
    }
    if (in_first_object_level()) key_ = k;
    return true;
  }
  bool end_object() {
    --depth_;
    return after_value();
  }
  bool start_array(std::size_t) {
    if (depth_ == 1 && top_is_object_ && top_key_ == "messages") {
      messages_array_ = true;
      array_depth_ = depth_ + 1;
    } else {
      value_starts(false);
    }
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return after_value();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  // The array element directly inside "messages" at depth array_depth_.
  void value_starts(bool object) {
    if (messages_array_ && depth_ == array_depth_ && top_key_ == "messages" && !first_seen_) {
      first_seen_ = true;
      first_is_object_ = object;
      in_first_ = object;
    } else if (in_first_object_level()) {
      // A nested value under a key of the first element: "id"/"message_status" not strings.
      if (key_ == "id") id_is_string_ = false;
      if (key_ == "message_status") status_is_string = false;
    }
  }
  bool scalar() {
    value_starts(false);
    return after_value();
  }
  bool after_value() {
    if (depth_ == array_depth_ && in_first_) in_first_ = false;  // the first element closed
    return true;
  }
  bool in_first_object_level() const { return in_first_ && depth_ == array_depth_ + 1; }

  int depth_ = 0;
  int array_depth_ = -1;
  bool top_is_object_ = false;
  bool messages_array_ = false, first_seen_ = false, first_is_object_ = false, in_first_ = false;
  bool id_is_string_ = false;
  std::string top_key_, key_;
};

}  // namespace

SendResult WhatsAppAdapter::classify(const Response& r) const {
  if (!r.transport_ok) return classify_transport_failure(r);
  SendResult out;
  {
    AcceptedSax sax;
    if (nlohmann::json::sax_parse(r.body, &sax) && sax.ok()) {
      out.accepted = true;
      out.provider_message_id = std::move(sax.id);
      out.held_for_quality = sax.status_is_string && sax.status == "held_for_quality_assessment";
      return out;
    }
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (auto msgs = j.find("messages"); msgs != j.end() && msgs->is_array() && !msgs->empty()) {
      const auto& m0 = (*msgs)[0];
      if (m0.is_object() && m0.contains("id") && m0["id"].is_string()) {
        out.accepted = true;
        out.provider_message_id = m0["id"].get<std::string>();
        // Meta's "Send messages" answer: message_status "held_for_quality_assessment" says the
        // message is accepted but held while Meta judges its quality (it may still not go out).
        if (auto st = m0.find("message_status"); st != m0.end() && st->is_string() &&
            st->get<std::string>() == "held_for_quality_assessment")
          out.held_for_quality = true;
        return out;
      }
    }
    if (auto err = j.find("error"); err != j.end() && err->is_object()) {
      long code = -1;
      if (auto c = err->find("code"); c != err->end()) {
        // Meta sends a number; some relays pass it on as a string.
        if (c->is_number_integer()) code = c->get<long>();
        else if (c->is_string()) code = std::strtol(c->get<std::string>().c_str(), nullptr, 10);
      }
      long sub = err->value("error_subcode", 0L);
      const WhatsAppErrorRule* rule = find_whatsapp_error(code, sub);
      out.unknown_code = rule == nullptr;
      if (!rule) rule = &whatsapp_unknown_error_rule();
      out.kind = rule->kind;
      out.scope = rule->scope;
      out.retry_after_ms = rule->retry_after_ms;
      if (rule->action == WhatsAppAction::pause_number) out.pause_ms = wa_.number_pause_ms;
      if (rule->action == WhatsAppAction::stop_account) out.pause_ms = wa_.account_pause_ms;
      out.trace_id = err->value("fbtrace_id", std::string());
      out.error_code = std::to_string(code);
      out.error_detail = err->value("message", std::string());
      if (auto ed = err->find("error_data"); ed != err->end() && ed->is_object()) {
        std::string details = ed->value("details", std::string());
        if (!details.empty()) out.error_detail += ": " + details;
      }
      return out;
    }
  }
  // A reply that is neither success nor a documented error: the request arrived, its fate is
  // unknown. 5xx without a body is the provider failing before acting: retry.
  out.error_code = "http:" + std::to_string(r.status);
  out.error_detail = "unexpected response body";
  out.kind = r.status >= 500 ? FailureKind::retryable : FailureKind::uncertain;
  return out;
}

}  // namespace daybreak::channels
