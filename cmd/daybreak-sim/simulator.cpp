// The provider model of daybreak-sim. Response and error formats follow Meta's WhatsApp Cloud API
// documentation ("Send messages" response; "Error codes": the Graph API error envelope with
// error_data.details and fbtrace_id, titles carried in `message` as "(#code) Title").
#include "simulator.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <thread>
#include <variant>

namespace daybreak::sim {
namespace {

using ordered_json = nlohmann::ordered_json;
using json = nlohmann::json;

/// One error the simulator can answer, as Meta documents it: the code we classify by, the HTTP
/// status Meta pairs with it, the title-bearing message and the details sentence.
struct ApiError {
  int code;
  int http_status;
  std::string_view message;
  std::string_view details;
};

constexpr ApiError kBadToken{190, 401, "Invalid OAuth access token - Cannot parse access token",
                             "The access token could not be decrypted or is missing."};
constexpr ApiError kInvalidParameter{100, 400, "(#100) Invalid parameter", ""};
constexpr ApiError kRateLimit{130429, 400, "(#130429) Rate limit hit",
                              "Cloud API message throughput has been reached."};
constexpr ApiError kPairRateLimit{
    131056, 400, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    "Message failed to send because there were too many messages sent from this phone number to "
    "the same phone number in a short period of time."};
constexpr ApiError kUndeliverable{131026, 400, "(#131026) Message Undeliverable",
                                  "Unable to deliver message."};
constexpr ApiError kSomethingWrong{131000, 500, "(#131000) Something went wrong",
                                   "Message failed to send due to an unknown error."};
// Meta's 132000: the template's parameters do not match what it expects (a content problem).
constexpr ApiError kTemplateParams{132000, 400, "(#132000) Number of parameters does not match the expected number of params",
                                   "body: number of localizable_params does not match the expected number of params"};
// Meta's 132001: no template of that name in that language (not approved, or another language).
constexpr ApiError kTemplateMissing{132001, 404, "(#132001) Template name does not exist in the translation",
                                    "template name does not exist in the translation"};
// Meta's 132012: a parameter's format differs from the approved template's (e.g. an image header
// sent to a template approved with a text header).
constexpr ApiError kTemplateFormat{132012, 400, "(#132012) Parameter format does not match format in the created template",
                                   "header: format mismatch, expected the approved header type"};
constexpr ApiError kOutage{131000, 503, "(#131000) Something went wrong",
                           "Message failed to send due to an unknown error. (scripted outage)"};

/// Titles of the codes --fail-number is meant for, as Meta's "WhatsApp error codes" reference
/// (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes) words them; any
/// other code gets a generic title.
std::string_view scripted_title(int code) {
  switch (code) {
    case 131048: return "Spam rate limit hit";
    case 368: return "Temporarily blocked for policies violations";
    case 131031: return "Account has been locked";
    case 131042: return "Business eligibility payment issue";
    case 133010: return "Phone number Not Registered";
    case 132015: return "Template is Paused";
    case 132016: return "Template is Disabled";
    case 131053: return "Media upload error";
    case 131000: return "Something went wrong";
    case 190: return "Access token has expired";
    default: return "Simulated error";
  }
}

/// Meta caps biz_opaque_callback_data at 512 characters.
constexpr std::size_t kMaxCallbackData = 512;

/// z-score of the 99th percentile of the standard normal.
constexpr double kZ99 = 2.3263478740408408;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// FNV-1a over bytes, chained through `h`.
std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string digits_of(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c >= '0' && c <= '9') out.push_back(c);
  }
  return out;
}

std::string hex16(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[v & 0xF];
    v >>= 4;
  }
  return out;
}

/// The fields of a send request the simulator acts on, after validation.
struct ParsedSend {
  std::string to;
  std::string type;
  std::string template_text;  ///< the text parameters of a template, joined (for --template-error-match)
  std::string template_name;
  std::string template_code;
  std::string header_type = "none";  ///< the header component's parameter type, or none
  int body_params = 0;
  std::optional<std::string> callback_data;
};

/// Validates a send body the way the Cloud API does for the fields daybreak uses; on failure
/// returns the `details` sentence of a code-100 error.
std::variant<ParsedSend, std::string> parse_send(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::string("The request body is not a valid JSON object.");

  auto str = [&](const json& obj, const char* key) -> const std::string* {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) return nullptr;
    return it->get_ptr<const std::string*>();
  };

  const std::string* product = str(j, "messaging_product");
  if (product == nullptr) return std::string("The parameter messaging_product is required.");
  if (*product != "whatsapp") return "Param messaging_product must be \"whatsapp\", got \"" + *product + "\".";

  ParsedSend out;
  const std::string* to = str(j, "to");
  if (to == nullptr || to->empty()) return std::string("The parameter to is required.");
  if (digits_of(*to).empty()) return "Param to must be a phone number, got \"" + *to + "\".";
  out.to = *to;

  out.type = "text";  // the Cloud API's default when `type` is absent
  if (auto it = j.find("type"); it != j.end()) {
    if (!it->is_string()) return std::string("Param type must be a string.");
    out.type = it->get<std::string>();
  }
  if (out.type == "text") {
    auto t = j.find("text");
    if (t == j.end() || !t->is_object() || str(*t, "body") == nullptr) {
      return std::string("The parameter text['body'] is required.");
    }
  } else if (out.type == "template") {
    auto t = j.find("template");
    if (t == j.end() || !t->is_object()) return std::string("The parameter template is required.");
    if (str(*t, "name") == nullptr) return std::string("The parameter template['name'] is required.");
    auto lang = t->find("language");
    if (lang == t->end() || !lang->is_object() || str(*lang, "code") == nullptr) {
      return std::string("The parameter template['language']['code'] is required.");
    }
    out.template_name = *str(*t, "name");
    out.template_code = *str(*lang, "code");
    if (auto comps = t->find("components"); comps != t->end() && comps->is_array()) {
      for (const auto& c : *comps) {
        auto params = c.find("parameters");
        if (params == c.end() || !params->is_array()) continue;
        const std::string* ctype = str(c, "type");
        for (const auto& prm : *params) {
          if (const std::string* text = str(prm, "text")) out.template_text += *text + '\n';
          if (ctype && *ctype == "header") {
            if (const std::string* ptype = str(prm, "type")) out.header_type = *ptype;
          }
          if (ctype && *ctype == "body") ++out.body_params;
        }
      }
    }
  } else if (out.type.empty()) {
    return std::string("Param type must not be empty.");
  }  // other types (image, document, interactive, ...) pass: daybreak sends text and templates

  if (auto it = j.find("biz_opaque_callback_data"); it != j.end()) {
    if (!it->is_string()) return std::string("Param biz_opaque_callback_data must be a string.");
    const auto& cb = it->get_ref<const std::string&>();
    if (cb.size() > kMaxCallbackData) {
      return std::string("Param biz_opaque_callback_data must be at most 512 characters long.");
    }
    out.callback_data = cb;
  }
  return out;
}

}  // namespace

std::pair<double, double> fit_lognormal(double median, double p99) {
  if (median <= 0) return {0.0, 0.0};
  double mu = std::log(median);
  double sigma = p99 > median ? (std::log(p99) - mu) / kZ99 : 0.0;
  return {mu, sigma};
}

double uniform_draw(std::uint64_t seed, std::string_view tag, std::string_view a, std::uint64_t b) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ splitmix64(seed);
  h = fnv1a(h, tag);
  h = fnv1a(h, std::string_view("\0", 1));
  h = fnv1a(h, a);
  h = splitmix64(h ^ splitmix64(b));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

Simulator::Simulator(Options options) : initial_(options), options_(std::move(options)) {
  std::tie(mu_, sigma_) = fit_lognormal(options_.latency_median_ms, options_.latency_p99_ms);
  // Ids must not repeat across simulator restarts even with the same --seed: the store keeps
  // provider message ids, so the prefix comes from the clock, the pid and the OS entropy.
  std::random_device rd;
  nonce_ = splitmix64(static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
                      (static_cast<std::uint64_t>(::getpid()) << 32) ^ rd());
}

Simulator::Number& Simulator::number_locked(const std::string& id, SteadyClock::time_point now) {
  auto [it, inserted] = numbers_.try_emplace(id);
  if (inserted) {
    it->second.tokens = capacity(it->second);  // a fresh number starts with a full bucket
    it->second.refilled = now;
  }
  return it->second;
}

double Simulator::capacity(const Number& n) const {
  // Burst = one demo second of tokens; at least one so a fractional mps still sends.
  return std::max(1.0, n.mps.value_or(options_.mps));
}

std::chrono::nanoseconds Simulator::sample_delay(double extra_ms) const {
  double ms = 0;
  if (initial_.latency_median_ms > 0) {
    if (sigma_ > 0) {
      // Per-thread engine: latency need not be reproducible, and a shared one would need the lock.
      thread_local std::mt19937_64 rng(splitmix64(initial_.seed ^ std::hash<std::thread::id>{}(std::this_thread::get_id())));
      std::lognormal_distribution<double> dist(mu_, sigma_);
      ms = dist(rng);
    } else {
      ms = initial_.latency_median_ms;
    }
  }
  ms = (ms + extra_ms) / initial_.time_scale;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6));
}

std::string Simulator::next_wamid() {
  std::uint64_t seq = sequence_.fetch_add(1, std::memory_order_relaxed);
  return "wamid.SIM" + hex16(nonce_) + hex16(seq);
}

std::string Simulator::next_trace_id() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uint64_t seq = sequence_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t a = splitmix64(nonce_ ^ seq);
  std::uint64_t b = splitmix64(a);
  std::string out(23, 'A');  // Meta's fbtrace_id values are 23 URL-safe base64 characters
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t& src = i < 10 ? a : b;
    out[i] = kAlphabet[src & 63];
    src >>= 6;
  }
  return out;
}

Reply Simulator::error_reply(int http_status, int code, std::string_view message, std::string_view details,
                             double extra_ms) {
  ordered_json body = {
      {"error",
       {{"message", message},
        {"type", "OAuthException"},
        {"code", code},
        {"error_data", {{"messaging_product", "whatsapp"}, {"details", details}}},
        {"fbtrace_id", next_trace_id()}}}};
  return Reply{http_status, body.dump(), sample_delay(extra_ms)};
}

Reply Simulator::send(std::string_view phone_number_id, std::string_view authorization, std::string_view body,
                      SteadyClock::time_point now) {
  const std::string number_id(phone_number_id);

  // 1. Credentials (190), then the body (100): both before any bucket is touched.
  std::string_view token;
  if (iequals_prefix(authorization, "bearer ")) token = trim(authorization.substr(7));
  const bool token_ok = !token.empty() && (initial_.token.empty() || token == initial_.token);
  std::variant<ParsedSend, std::string> parsed;
  if (token_ok) parsed = parse_send(body);  // parse outside the lock: it is the costly part

  // 2. Decide and count under the lock; build the answer after releasing it.
  const ApiError* failure = nullptr;
  int scripted = 0;  ///< a --fail-number code, when one answers this send
  std::string invalid_details;
  double extra_ms = 0;
  const std::int64_t scenario_ms = scenario_now_ ? scenario_now_() : 0;
  {
    std::lock_guard lock(lock_);
    ++requests_;
    Number& n = number_locked(number_id, now);
    ++n.requests;
    extra_ms = n.slow_ms;
    if (!token_ok) {
      failure = &kBadToken;
    } else if (auto* err = std::get_if<std::string>(&parsed)) {
      failure = &kInvalidParameter;
      invalid_details = std::move(*err);
    } else if ([&] {
                 const double demo_ms =
                     std::chrono::duration<double, std::milli>(now - started_).count() * initial_.time_scale;
                 for (const auto& f : initial_.fail_numbers) {
                   if (f.phone_number_id == number_id && demo_ms >= f.from_demo_ms) scripted = f.code;
                 }
                 return scripted != 0;
               }()) {
      ++rejected_[scripted];
    } else if (n.down || (n.down_window && scenario_ms >= n.down_window->first && scenario_ms < n.down_window->second)) {
      failure = &kOutage;
    } else {
      const auto& msg = std::get<ParsedSend>(parsed);
      // Token bucket: refills at mps*time_scale per real second, holds one demo second.
      const double rate = n.mps.value_or(options_.mps) * options_.time_scale;
      const double elapsed = std::chrono::duration<double>(now - n.refilled).count();
      n.tokens = std::min(capacity(n), n.tokens + std::max(0.0, elapsed) * rate);
      n.refilled = now;
      std::string pair_key;
      if (n.tokens < 1.0) {
        failure = &kRateLimit;  // a rejected request does not consume a token
      } else {
        n.tokens -= 1.0;
        if (options_.pair_interval_ms > 0) {
          pair_key = number_id + '\0' + msg.to;
          auto it = pair_last_.find(pair_key);
          auto interval = std::chrono::duration<double, std::milli>(options_.pair_interval_ms / options_.time_scale);
          if (it != pair_last_.end() && now - it->second < interval) failure = &kPairRateLimit;
        }
      }
      if (failure == nullptr && msg.type == "template" && !options_.templates.empty()) {
        const Options::Template* tpl = nullptr;
        for (const auto& t : options_.templates) {
          if (t.name == msg.template_name && t.code == msg.template_code) tpl = &t;
        }
        if (tpl == nullptr) {
          failure = &kTemplateMissing;
        } else if (tpl->header != msg.header_type) {
          failure = &kTemplateFormat;
        } else if (tpl->body_params != msg.body_params) {
          failure = &kTemplateParams;
        } else {
          ++template_accepted_[msg.template_name + "/" + msg.template_code];
        }
      }
      if (failure == nullptr && !options_.template_error_match.empty() &&
          msg.template_text.find(options_.template_error_match) != std::string::npos) {
        failure = &kTemplateParams;
      }
      if (failure == nullptr) {
        // Reproducible draws: an undeliverable recipient stays undeliverable; a transient failure
        // is drawn per attempt of the same message, so a retry gets a fresh chance.
        const std::string key = msg.callback_data ? 'c' + *msg.callback_data : 't' + msg.to;
        KeyCount& kc = keys_[key];
        const std::uint32_t attempt = kc.attempts++;
        if (options_.permanent_rate > 0 &&
            uniform_draw(options_.seed, "permanent", msg.to, 0) < options_.permanent_rate) {
          failure = &kUndeliverable;
        } else if (options_.transient_rate > 0 &&
                   uniform_draw(options_.seed, "transient", key, attempt) < options_.transient_rate) {
          failure = &kSomethingWrong;
        } else {
          ++accepted_;
          ++n.accepted;
          ++kc.accepted;
          if (msg.callback_data && kc.accepted > 1) {
            ++duplicates_;
            if (kc.accepted == 2) ++duplicate_keys_;
          }
          if (!pair_key.empty()) pair_last_[pair_key] = now;
        }
      }
    }
    if (failure != nullptr) ++rejected_[failure->code];
  }

  if (scripted != 0) {
    const std::string message = "(#" + std::to_string(scripted) + ") " + std::string(scripted_title(scripted));
    // HTTP 400 as Meta answers these (an error of the request's account or number, not a 5xx).
    return error_reply(400, scripted, message, "scripted by --fail-number", extra_ms);
  }
  if (failure != nullptr) {
    std::string_view details = failure == &kInvalidParameter ? std::string_view(invalid_details) : failure->details;
    return error_reply(failure->http_status, failure->code, failure->message, details, extra_ms);
  }
  const auto& msg = std::get<ParsedSend>(parsed);
  const std::string wamid = next_wamid();
  if (on_accept_) on_accept_(AcceptedMessage{number_id, msg.to, wamid, msg.callback_data});
  ordered_json message = {{"id", wamid}};
  if (msg.type == "template") {
    // Meta adds it for templates; "held_for_quality_assessment" when it holds the message while
    // it judges its quality (Meta's "Send messages" reference, message_status).
    const bool held = initial_.held_for_quality_rate > 0 &&
                      uniform_draw(initial_.seed, "held", msg.to, 0) < initial_.held_for_quality_rate;
    message["message_status"] = held ? "held_for_quality_assessment" : "accepted";
  }
  ordered_json ok = {{"messaging_product", "whatsapp"},
                     {"contacts", ordered_json::array({{{"input", msg.to}, {"wa_id", digits_of(msg.to)}}})},
                     {"messages", ordered_json::array({message})}};
  return Reply{200, ok.dump(), sample_delay(extra_ms)};
}

std::string Simulator::stats_json(bool summary) const {
  json out;
  std::lock_guard lock(lock_);
  out["requests"] = requests_;
  out["accepted"] = accepted_;
  if (!template_accepted_.empty()) out["by_template"] = template_accepted_;
  json rejected = json::object();
  for (const auto& [code, count] : rejected_) rejected[std::to_string(code)] = count;
  out["rejected"] = std::move(rejected);
  out["duplicates"] = duplicates_;
  out["duplicate_keys"] = duplicate_keys_;
  json numbers = json::object();
  for (const auto& [id, n] : numbers_) {
    numbers[id] = {{"requests", n.requests},
                   {"accepted", n.accepted},
                   {"down", n.down},
                   {"down_window", n.down_window ? json::array({n.down_window->first, n.down_window->second}) : json()},
                   {"slow_ms", n.slow_ms},
                   {"mps", n.mps.value_or(options_.mps)}};
  }
  out["by_phone_number_id"] = std::move(numbers);
  if (!summary) {
    json by_cb = json::object();
    for (const auto& [key, kc] : keys_) {
      if (kc.accepted > 0 && !key.empty() && key.front() == 'c') by_cb[key.substr(1)] = kc.accepted;
    }
    out["by_callback_data"] = std::move(by_cb);
  }
  return out.dump();
}

void Simulator::reset(SteadyClock::time_point /*now*/) {
  std::lock_guard lock(lock_);
  options_ = initial_;
  requests_ = accepted_ = duplicates_ = duplicate_keys_ = 0;
  template_accepted_.clear();
  rejected_.clear();
  numbers_.clear();  // buckets come back full on the next request
  keys_.clear();
  pair_last_.clear();
}

Reply Simulator::control(std::string_view body, SteadyClock::time_point now) {
  auto bad = [this](const std::string& details) {
    Reply r = error_reply(400, 100, kInvalidParameter.message, details, 0);
    r.delay = std::chrono::nanoseconds(0);  // control answers at once: tests script with it
    return r;
  };
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("The request body is not a valid JSON object.");

  // Validate everything before changing anything, so a bad request changes nothing.
  std::optional<std::string> id;
  std::optional<bool> down;
  std::optional<double> slow_ms, mps, transient, permanent, down_from, down_until;
  for (const auto& [key, value] : j.items()) {
    auto number_in = [&value](std::optional<double>& out, double lo, double hi) {
      if (!value.is_number() || !(value.get<double>() >= lo && value.get<double>() <= hi)) return false;
      out = value.get<double>();
      return true;
    };
    bool ok = false;
    if (key == "phone_number_id") {
      ok = value.is_string() && !value.get_ref<const std::string&>().empty();
      if (ok) id = value.get<std::string>();
    } else if (key == "down") {
      ok = value.is_boolean();
      if (ok) down = value.get<bool>();
    } else if (key == "down_from_ms") {
      ok = number_in(down_from, 0, 1e15);  // scenario epoch ms (DAYBREAK_CLOCK)
    } else if (key == "down_until_ms") {
      ok = number_in(down_until, 0, 1e15);
    } else if (key == "slow_ms") {
      ok = number_in(slow_ms, 0, 3'600'000);  // up to an hour: enough to outlast any deadline
    } else if (key == "mps") {
      ok = number_in(mps, 1e-6, 1e9);
    } else if (key == "transient_rate") {
      ok = number_in(transient, 0, 1);
    } else if (key == "permanent_rate") {
      ok = number_in(permanent, 0, 1);
    }
    if (!ok) return bad("Param " + key + " is unknown or has an invalid value (" + value.dump() + ").");
  }
  if ((down || slow_ms || mps || down_from || down_until) && !id) {
    return bad("The parameter phone_number_id is required for down, down_from_ms, down_until_ms, slow_ms and mps.");
  }
  if (down_from.has_value() != down_until.has_value() || (down_from && *down_until <= *down_from)) {
    return bad("Params down_from_ms and down_until_ms go together, with down_until_ms > down_from_ms.");
  }
  if (down_from && !scenario_now_) return bad("No scenario clock: down_from_ms/down_until_ms need one.");

  std::lock_guard lock(lock_);
  if (transient) options_.transient_rate = *transient;
  if (permanent) options_.permanent_rate = *permanent;
  if (id) {
    Number& n = number_locked(*id, now);
    if (down) n.down = *down;
    if (down_from) {
      n.down_window = std::make_pair(static_cast<std::int64_t>(*down_from), static_cast<std::int64_t>(*down_until));
    } else if (down && !*down) {
      n.down_window.reset();  // "down":false ends a scheduled outage too
    }
    if (slow_ms) n.slow_ms = *slow_ms;
    if (mps) {
      n.mps = *mps;
      n.tokens = std::min(n.tokens, capacity(n));
    }
  }
  return Reply{200, R"({"success":true})", std::chrono::nanoseconds(0)};
}

}  // namespace daybreak::sim
