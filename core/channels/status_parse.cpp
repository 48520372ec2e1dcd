#include "channels/status_parse.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace daybreak::channels {
namespace {

using json = nlohmann::json;

Error bad(const std::string& path, const std::string& what) { return Error{"bad_webhook", path + ": " + what}; }

/// A short, safe rendering of a value for an error message.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// The latest timestamp accepted, 9999-12-31T23:59:59Z: far past any real callback, and small
// enough that it cannot overflow in milliseconds (18 digits of seconds, which all_digits lets
// through, would: the fuzzer found that signed overflow).
constexpr std::int64_t kMaxUnixSeconds = 253'402'300'799;

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 18) return false;  // 18 digits always fit an int64
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::int64_t to_int64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

/// Optional string member: "" when absent; an Error when present and not a string.
std::optional<Error> opt_string(const json& obj, const char* key, const std::string& path, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return bad(path + "." + key, "expected a string, got " + shown(*it));
  out = it->get<std::string>();
  return std::nullopt;
}

/// Parses one element of statuses[]. Returns nullopt-with-skip through `skipped` for statuses
/// daybreak does not track.
Result<std::optional<StatusUpdate>> parse_status(const json& st, const std::string& path, const std::string& phone_number_id) {
  if (!st.is_object()) return bad(path, "expected an object, got " + shown(st));
  StatusUpdate u;
  u.phone_number_id = phone_number_id;

  auto id = st.find("id");
  if (id == st.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    return bad(path + ".id", id == st.end() ? "missing" : "expected a non-empty string, got " + shown(*id));
  }
  u.provider_message_id = id->get<std::string>();

  auto status = st.find("status");
  if (status == st.end() || !status->is_string()) {
    return bad(path + ".status", status == st.end() ? "missing" : "expected a string, got " + shown(*status));
  }
  auto s = message_status_from_string(status->get_ref<const std::string&>());
  if (!s) return std::optional<StatusUpdate>{};  // a status daybreak does not track
  u.status = *s;

  // Meta sends the timestamp as a string of unix seconds; accept a JSON number too.
  auto ts = st.find("timestamp");
  if (ts == st.end()) return bad(path + ".timestamp", "missing");
  std::optional<std::int64_t> seconds;
  if (ts->is_string() && all_digits(ts->get_ref<const std::string&>())) {
    seconds = to_int64(ts->get_ref<const std::string&>());
  } else if (ts->is_number_unsigned()) {
    if (auto v = ts->get<std::uint64_t>(); v <= static_cast<std::uint64_t>(kMaxUnixSeconds)) seconds = static_cast<std::int64_t>(v);
  } else if (ts->is_number_integer() && ts->get<std::int64_t>() >= 0) {
    seconds = ts->get<std::int64_t>();
  }
  if (!seconds || *seconds > kMaxUnixSeconds) return bad(path + ".timestamp", "expected unix seconds, got " + shown(*ts));
  u.provider_at = *seconds * 1000;

  if (auto e = opt_string(st, "recipient_id", path, u.recipient_id)) return *e;
  std::string callback;
  if (auto e = opt_string(st, "biz_opaque_callback_data", path, callback)) return *e;
  // Only daybreak's own ids (decimal delivery ids) name a delivery; anything else is kept out.
  if (all_digits(callback)) u.delivery_id = to_int64(callback);

  if (auto errs = st.find("errors"); errs != st.end() && !errs->is_null()) {
    if (!errs->is_array()) return bad(path + ".errors", "expected an array, got " + shown(*errs));
    if (!errs->empty()) {
      const json& e0 = (*errs)[0];
      const std::string epath = path + ".errors[0]";
      if (!e0.is_object()) return bad(epath, "expected an object, got " + shown(e0));
      auto code = e0.find("code");
      if (code != e0.end()) {
        if (!code->is_number_integer()) return bad(epath + ".code", "expected an integer, got " + shown(*code));
        u.error_code = code->get<long>();
      }
      if (auto e = opt_string(e0, "title", epath, u.error_title)) return *e;
      if (u.error_title.empty()) {
        if (auto e = opt_string(e0, "message", epath, u.error_title)) return *e;
      }
      if (auto data = e0.find("error_data"); data != e0.end() && data->is_object()) {
        if (auto e = opt_string(*data, "details", epath + ".error_data", u.error_details)) return *e;
      }
    }
  }
  return std::optional<StatusUpdate>{std::move(u)};
}

}  // namespace

namespace {

std::string reject_text_cut(std::string s) {
  if (s.size() > kRejectTextMax) {
    s.resize(kRejectTextMax - 3);
    // Never end inside a UTF-8 sequence: drop continuation bytes and the lead byte they follow.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80) != 0) s.pop_back();
    s += "...";
  }
  return s;
}

void add_reject(ParsedStatusWebhook& out, const std::string& path, const Error& e, const json& element) {
  ++out.rejected_total;
  if (out.rejected.size() >= kRejectsPerBodyMax) return;
  StatusReject r;
  r.path = reject_text_cut(path);
  r.reason = reject_text_cut(e.message);
  if (element.is_object()) {
    if (auto id = element.find("id"); id != element.end() && id->is_string()) r.provider_message_id = reject_text_cut(id->get<std::string>());
  }
  r.excerpt = reject_text_cut(element.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace));
  out.rejected.push_back(std::move(r));
}

/// value.errors of one change: each readable element becomes an AccountError, the others rejects.
void parse_account_errors(ParsedStatusWebhook& out, const json& errs, const std::string& path, const std::string& waba_id,
                          const std::string& phone_number_id) {
  if (!errs.is_array()) return add_reject(out, path, bad(path, "expected an array, got " + shown(errs)), errs);
  for (std::size_t i = 0; i < errs.size(); ++i) {
    const json& e = errs[i];
    const std::string epath = path + "[" + std::to_string(i) + "]";
    if (!e.is_object()) {
      add_reject(out, epath, bad(epath, "expected an object, got " + shown(e)), e);
      continue;
    }
    AccountError a;
    a.waba_id = waba_id;
    a.phone_number_id = phone_number_id;
    auto code = e.find("code");
    if (code != e.end() && !code->is_null()) {
      if (!code->is_number_integer()) {
        add_reject(out, epath + ".code", bad(epath + ".code", "expected an integer, got " + shown(*code)), e);
        continue;
      }
      a.code = code->get<long>();
    }
    std::optional<Error> err = opt_string(e, "title", epath, a.title);
    if (!err && a.title.empty()) err = opt_string(e, "message", epath, a.title);
    if (!err) {
      if (auto data = e.find("error_data"); data != e.end() && data->is_object()) err = opt_string(*data, "details", epath + ".error_data", a.details);
    }
    if (err) {
      add_reject(out, epath, *err, e);
      continue;
    }
    a.title = reject_text_cut(a.title);
    a.details = reject_text_cut(a.details);
    if (out.account_errors.size() < kRejectsPerBodyMax) out.account_errors.push_back(std::move(a));
  }
}

/// One element of changes[]: its statuses and errors into `out`, or a reject naming the field.
void parse_webhook_change(ParsedStatusWebhook& out, const json& c, const std::string& cpath, const std::string& waba_id) {
  if (!c.is_object()) return add_reject(out, cpath, bad(cpath, "expected an object, got " + shown(c)), c);
  std::string field;
  if (auto err = opt_string(c, "field", cpath, field)) return add_reject(out, cpath, *err, c);
  if (field != "messages") {  // other subscriptions (templates, account updates): not ours
    ++out.ignored;
    return;
  }
  auto value = c.find("value");
  if (value == c.end() || !value->is_object()) {
    return add_reject(out, cpath + ".value", bad(cpath + ".value", value == c.end() ? "missing" : "expected an object"), c);
  }
  std::string phone_number_id;
  if (auto md = value->find("metadata"); md != value->end() && md->is_object()) {
    if (auto err = opt_string(*md, "phone_number_id", cpath + ".value.metadata", phone_number_id)) {
      return add_reject(out, cpath + ".value.metadata", *err, *md);
    }
  }
  if (auto errs = value->find("errors"); errs != value->end() && !errs->is_null()) {
    parse_account_errors(out, *errs, cpath + ".value.errors", waba_id, phone_number_id);
  }
  auto statuses = value->find("statuses");
  if (statuses == value->end() || statuses->is_null()) return;  // inbound messages, errors: no statuses
  if (!statuses->is_array()) {
    return add_reject(out, cpath + ".value.statuses", bad(cpath + ".value.statuses", "expected an array"), *statuses);
  }
  for (std::size_t n = 0; n < statuses->size(); ++n) {
    const std::string spath = cpath + ".value.statuses[" + std::to_string(n) + "]";
    auto r = parse_status((*statuses)[n], spath, phone_number_id);
    if (!r) {
      add_reject(out, spath, r.error(), (*statuses)[n]);
    } else if (*r) {
      out.updates.push_back(std::move(**r));
    } else {
      ++out.ignored;
    }
  }
}

}  // namespace

Result<ParsedStatusWebhook> parse_status_webhook(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"bad_webhook", "body: not valid JSON"};
  if (!j.is_object()) return bad("body", "expected a JSON object, got " + shown(j));
  auto object = j.find("object");
  if (object == j.end() || !object->is_string()) return bad("object", object == j.end() ? "missing" : "expected a string");
  if (object->get_ref<const std::string&>() != "whatsapp_business_account") {
    return bad("object", "expected \"whatsapp_business_account\", got " + shown(*object));
  }
  auto entry = j.find("entry");
  if (entry == j.end() || !entry->is_array()) return bad("entry", entry == j.end() ? "missing" : "expected an array");

  ParsedStatusWebhook out;
  for (std::size_t i = 0; i < entry->size(); ++i) {
    const json& e = (*entry)[i];
    const std::string epath = "entry[" + std::to_string(i) + "]";
    if (!e.is_object()) {
      add_reject(out, epath, bad(epath, "expected an object, got " + shown(e)), e);
      continue;
    }
    std::string waba_id;
    if (auto id = e.find("id"); id != e.end() && id->is_string()) waba_id = id->get<std::string>();
    auto changes = e.find("changes");
    if (changes == e.end() || !changes->is_array()) {
      add_reject(out, epath + ".changes", bad(epath + ".changes", changes == e.end() ? "missing" : "expected an array"), e);
      continue;
    }
    for (std::size_t k = 0; k < changes->size(); ++k) {
      parse_webhook_change(out, (*changes)[k], epath + ".changes[" + std::to_string(k) + "]", waba_id);
    }
  }
  return out;
}

Result<SpoolRequest> parse_spool_request(std::string_view text) {
  SpoolRequest out;
  std::size_t pos = 0;
  int line_no = 0;
  while (true) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      return Error{"bad_spool", "no empty line after the headers (line " + std::to_string(line_no + 1) + ")"};
    }
    ++line_no;
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) break;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Error{"bad_spool", "line " + std::to_string(line_no) + ": expected \"Name: value\""};
    }
    std::string name(line.substr(0, colon));
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (name == "x-hub-signature-256") out.signature = std::string(value);
  }
  out.body = std::string(text.substr(pos));
  return out;
}

std::string format_spool_request(std::string_view signature, std::string_view body) {
  std::string out;
  out.reserve(signature.size() + body.size() + 40);
  if (!signature.empty()) {
    out += "X-Hub-Signature-256: ";
    out += signature;
    out += '\n';
  }
  out += '\n';
  out += body;
  return out;
}

}  // namespace daybreak::channels
