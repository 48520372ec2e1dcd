#include "config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "config/alerts_toml.hpp"
#include "domain/validate.hpp"

namespace daybreak {
namespace {

std::string where(const toml::node& n, const std::string& origin) {
  const auto& src = n.source();
  std::ostringstream o;
  o << origin;
  if (src.begin.line) o << ":" << src.begin.line;
  return o.str();
}

/// Walks a table, checks every key against the allowed set, and gives typed accessors whose
/// errors name the full dotted key and the line.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string prefix, std::string origin, std::set<std::string> allowed)
      : t_(t), prefix_(std::move(prefix)), origin_(std::move(origin)) {
    for (const auto& [k, v] : t_) {
      std::string key(k.str());
      if (!allowed.count(key)) {
        throw ConfigError(where(v, origin_) + ": unknown key \"" + full(key) + "\"");
      }
    }
  }
  std::string full(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

  template <typename T>
  std::optional<T> get(const std::string& key, const char* type_name) const {
    const toml::node* n = t_.get(key);
    if (!n) return std::nullopt;
    if constexpr (std::is_same_v<T, double>) {
      if (auto v = n->value<double>()) return *v;  // accepts integers too
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      if (n->is_integer()) return n->value<std::int64_t>();
    } else {
      if (auto v = n->value<T>()) return *v;
    }
    throw ConfigError(where(*n, origin_) + ": key \"" + full(key) + "\" must be " + type_name);
  }
  void str(const std::string& key, std::string& out) const {
    if (auto v = get<std::string>(key, "a string")) out = *v;
  }
  void integer(const std::string& key, std::int64_t& out, std::int64_t min, std::int64_t max) const {
    if (auto v = get<std::int64_t>(key, "an integer")) {
      if (*v < min || *v > max) {
        throw ConfigError(line(key) + ": key \"" + full(key) + "\" must be between " + std::to_string(min) + " and " +
                          std::to_string(max) + ", got " + std::to_string(*v));
      }
      out = *v;
    }
  }
  template <typename I>
  void integer_as(const std::string& key, I& out, std::int64_t min, std::int64_t max, std::int64_t factor = 1) const {
    std::int64_t v = static_cast<std::int64_t>(out) / factor;
    integer(key, v, min, max);
    out = static_cast<I>(v * factor);
  }
  void number(const std::string& key, double& out, double min, double max) const {
    if (auto v = get<double>(key, "a number")) {
      if (!(*v >= min && *v <= max)) {
        std::ostringstream o;
        o << line(key) << ": key \"" << full(key) << "\" must be between " << min << " and " << max << ", got " << *v;
        throw ConfigError(o.str());
      }
      out = *v;
    }
  }
  /// A secret: `key` inline, `key_env` naming an environment variable, or `key_file` naming a file.
  /// Only where it is gets recorded; the value is read when a command uses it (Secret::value).
  /// Returns true when it came inline (the file itself then holds a secret).
  bool secret(const std::string& key, Secret& out) const {
    bool inline_secret = false;
    if (auto v = get<std::string>(key, "a string")) {
      out = Secret(*v);
      inline_secret = !v->empty();
    }
    if (auto env = get<std::string>(key + "_env", "a string")) out = Secret::from_env(*env, full(key + "_env"), line(key + "_env"));
    if (auto file = get<std::string>(key + "_file", "a string")) out = Secret::from_file(*file, full(key + "_file"), line(key + "_file"));
    return inline_secret;
  }
  [[nodiscard]] bool has(const std::string& key) const { return t_.get(key) != nullptr; }
  std::string line(const std::string& key) const {
    const toml::node* n = t_.get(key);
    return n ? where(*n, origin_) : origin_;
  }
  const toml::table* table(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) throw ConfigError(where(*n, origin_) + ": key \"" + full(key) + "\" must be a table");
    return n->as_table();
  }
  const toml::array* array(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (!n->is_array()) throw ConfigError(where(*n, origin_) + ": key \"" + full(key) + "\" must be an array");
    return n->as_array();
  }

 private:
  const toml::table& t_;
  std::string prefix_;
  std::string origin_;
};

/// Refuses a secret-carrying transport in clear: `url` (an http:// or smtp:// URL; `plain_smtp`
/// when smtp:// goes without STARTTLS) to a host that is not loopback, unless `allow`.
void refuse_cleartext(const std::string& url, bool plain_smtp, bool allow, const std::string& at, const std::string& key,
                      const std::string& what, const std::string& section) {
  const bool http = url.rfind("http://", 0) == 0;
  const bool smtp = url.rfind("smtp://", 0) == 0 && plain_smtp;
  if (allow || !(http || smtp) || url_is_loopback(url)) return;
  // The URL itself is not echoed: a webhook endpoint may carry a credential in its query.
  throw ConfigError(at + ": key \"" + key + "\": " + (http ? "http://" : "smtp:// without STARTTLS") + " would send " + what +
                    " in clear to a host that is not loopback; use " +
                    (http ? std::string("https://") : std::string("smtps:// or STARTTLS")) + ", or set allow_insecure = true in " +
                    section + " to accept that risk");
}

/// [[whatsapp.templates]]: language, header, name (required), language_code, body_parameters.
void read_templates(const toml::array& arr, const std::string& origin, std::vector<WhatsAppTemplate>& out) {
  std::size_t i = 0;
  for (const auto& node : arr) {
    const std::string prefix = "whatsapp.templates[" + std::to_string(i++) + "]";
    if (!node.is_table()) throw ConfigError(where(node, origin) + ": \"" + prefix + "\" must be a table");
    TableReader r(*node.as_table(), prefix, origin, {"language", "header", "name", "language_code", "body_parameters"});
    WhatsAppTemplate t;
    r.str("language", t.language);
    r.str("name", t.name);
    r.str("language_code", t.language_code);
    if (t.language.empty() || t.name.empty()) {
      throw ConfigError(where(node, origin) + ": keys \"" + prefix + ".language\" and \"" + prefix + ".name\" are required");
    }
    std::string header = "text";
    r.str("header", header);
    auto h = header_kind_from_string(header);
    if (!h) {
      throw ConfigError(r.line("header") + ": key \"" + prefix + ".header\" must be none, text, image, document or video, got \"" +
                        header + "\"");
    }
    t.header = *h;
    if (const auto* params = r.array("body_parameters")) {
      t.body.clear();
      for (const auto& p : *params) {
        auto v = p.value<std::string>();
        auto tp = v ? template_param_from_string(*v) : std::nullopt;
        if (!tp) {
          throw ConfigError(where(p, origin) + ": \"" + prefix + ".body_parameters\" holds advisor_name, title or body");
        }
        t.body.push_back(*tp);
      }
    }
    for (const auto& o : out) {
      if (o.language == t.language && o.header == t.header) {
        throw ConfigError(where(node, origin) + ": \"" + prefix + "\": a second template for language " + t.language +
                          " with a " + std::string(to_string(t.header)) + " header");
      }
    }
    out.push_back(std::move(t));
  }
}

void read_senders(const toml::array& arr, Channel channel, const std::string& key, const std::string& origin,
                  Config& cfg, bool& has_inline_secret) {
  std::size_t i = 0;
  for (const auto& node : arr) {
    std::string prefix = key + "[" + std::to_string(i++) + "]";
    if (!node.is_table()) throw ConfigError(where(node, origin) + ": \"" + prefix + "\" must be a table");
    TableReader r(*node.as_table(), prefix, origin,
                  {"id", "mps", "phone_number_id", "account", "token", "token_env", "token_file", "url", "username", "password",
                   "password_env", "password_file", "from", "endpoint", "signing_secret", "signing_secret_env",
                   "signing_secret_file", "starttls", "connect_timeout_ms", "request_timeout_ms", "allow_insecure",
                   "messaging_tier", "portfolio", "concurrency", "ca_file"});
    SenderConfig s;
    s.channel = channel;
    r.str("id", s.id);
    if (s.id.empty()) throw ConfigError(where(node, origin) + ": key \"" + prefix + ".id\" is required");
    r.number("mps", s.mps, 0.001, 1e6);
    r.str("phone_number_id", s.phone_number_id);
    r.str("account", s.account);
    {
      // WhatsApp messaging limits (domain/capacity.hpp): the tier of this number, in the portfolio
      // whose limit all its numbers share.
      std::string tier;
      r.str("messaging_tier", tier);
      r.str("portfolio", s.portfolio);
      if (!tier.empty()) {
        if (channel != Channel::whatsapp) {
          throw ConfigError(r.line("messaging_tier") + ": key \"" + prefix + ".messaging_tier\" applies to WhatsApp senders only");
        }
        s.messaging_tier = messaging_tier_from_string(tier);
        if (!s.messaging_tier) {
          throw ConfigError(r.line("messaging_tier") + ": key \"" + prefix +
                            ".messaging_tier\" must be one of \"250\", \"2k\", \"10k\", \"100k\", \"unlimited\"");
        }
      }
      if (s.portfolio.empty()) throw ConfigError(r.line("portfolio") + ": key \"" + prefix + ".portfolio\" must not be empty");
    }
    has_inline_secret |= r.secret("token", s.token);
    r.str("url", s.url);
    r.str("username", s.username);
    has_inline_secret |= r.secret("password", s.password);
    r.str("from", s.from);
    r.str("endpoint", s.endpoint);
    has_inline_secret |= r.secret("signing_secret", s.signing_secret);
    if (auto v = r.get<bool>("starttls", "true or false")) s.starttls = *v;
    if (auto v = r.get<bool>("allow_insecure", "true or false")) s.allow_insecure = *v;
    r.integer_as("connect_timeout_ms", s.connect_timeout_ms, 1, 600000);
    r.integer_as("request_timeout_ms", s.request_timeout_ms, 1, 600000);
    r.integer_as("concurrency", s.concurrency, 1, 64);
    r.str("ca_file", s.ca_file);
    if (channel != Channel::email && (r.has("concurrency") || r.has("ca_file"))) {
      throw ConfigError(where(node, origin) + ": keys \"" + prefix + ".concurrency\" and \"" + prefix +
                        ".ca_file\" are for email senders only");
    }
    if (!s.ca_file.empty() && ::access(s.ca_file.c_str(), R_OK) != 0) {
      throw ConfigError(r.line("ca_file") + ": key \"" + prefix + ".ca_file\": cannot read " + s.ca_file);
    }
    if (channel == Channel::email && !s.url.empty() && s.url.rfind("smtp://", 0) != 0 && s.url.rfind("smtps://", 0) != 0) {
      throw ConfigError(r.line("url") + ": key \"" + prefix + ".url\" must start with smtp:// or smtps://");
    }
    if (channel == Channel::webhook && !s.endpoint.empty() && s.endpoint.rfind("http://", 0) != 0 &&
        s.endpoint.rfind("https://", 0) != 0) {
      throw ConfigError(r.line("endpoint") + ": key \"" + prefix + ".endpoint\" must start with https:// (or http://)");
    }
    if (channel == Channel::webhook && !s.endpoint.empty() && !s.signing_secret.configured()) {
      // Receivers verify every payload; an unsigned webhook would be accepted by nobody careful.
      throw ConfigError(where(node, origin) + ": key \"" + prefix + ".signing_secret\" (or _env/_file) is required for a webhook sender");
    }
    if (channel == Channel::email) {
      refuse_cleartext(s.url, !s.starttls, s.allow_insecure, r.line("url"), prefix + ".url",
                       "the SMTP password and advisors' email", prefix);
    }
    if (channel == Channel::webhook) {
      refuse_cleartext(s.endpoint, false, s.allow_insecure, r.line("endpoint"), prefix + ".endpoint",
                       "signed payloads about advisors", prefix);
    }
    if (channel == Channel::whatsapp && s.phone_number_id.empty()) {
      throw ConfigError(where(node, origin) + ": key \"" + prefix + ".phone_number_id\" is required for a WhatsApp sender");
    }
    if (channel == Channel::email && (s.url.empty() || s.from.empty())) {
      throw ConfigError(where(node, origin) + ": keys \"" + prefix + ".url\" and \"" + prefix + ".from\" are required for an email sender");
    }
    if (channel == Channel::webhook && s.endpoint.empty()) {
      throw ConfigError(where(node, origin) + ": key \"" + prefix + ".endpoint\" is required for a webhook sender");
    }
    for (const auto& other : cfg.senders) {
      if (other.id == s.id) throw ConfigError(where(node, origin) + ": sender id \"" + s.id + "\" is used twice");
    }
    cfg.senders.push_back(std::move(s));
  }
}

}  // namespace

std::optional<int> Config::tier_rank(const std::string& tier) const {
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    if (tiers[i] == tier) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::vector<const SenderConfig*> Config::senders_of(Channel c) const {
  std::vector<const SenderConfig*> out;
  for (const auto& s : senders) {
    if (s.channel == c) out.push_back(&s);
  }
  return out;
}

Config parse_config(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream o;
    o << origin << ":" << e.source().begin.line << ": " << e.description();
    throw ConfigError(o.str());
  }
  Config cfg;
  cfg.source = origin;
  bool inline_secret = false;
  TableReader top(root, "", origin, {"database", "logging", "delivery", "retry", "dispatch", "breaker", "whatsapp", "email", "webhook", "alerts", "schedule", "callbacks", "retention"});

  if (const auto* t = top.table("database")) {
    TableReader r(*t, "database", origin, {"path", "url"});
    // With url, path names this host's own SQLite file (planning, alerts, a dispatch's
    // monitoring on PostgreSQL); both may be set.
    r.str("path", cfg.database_path);
    if (cfg.database_path.empty()) throw ConfigError(r.line("path") + ": key \"database.path\" must not be empty");
    r.str("url", cfg.database_url);
    if (t->contains("url") && !(cfg.database_url.starts_with("postgresql://") || cfg.database_url.starts_with("postgres://"))) {
      throw ConfigError(r.line("url") + ": key \"database.url\" must be a postgresql:// connection URI");
    }
  }
  if (const auto* t = top.table("logging")) {
    TableReader r(*t, "logging", origin, {"level"});
    r.str("level", cfg.log_level);
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!levels.count(cfg.log_level)) throw ConfigError(r.line("level") + ": key \"logging.level\" must be one of trace, debug, info, warn, error, critical, off");
  }
  if (const auto* t = top.table("delivery")) {
    TableReader r(*t, "delivery", origin,
                  {"timezone", "slot", "window_lead_seconds", "window_tail_seconds", "deadline_seconds", "tiers", "utilisation",
                   "emergency_language"});
    r.str("timezone", cfg.default_timezone);
    if (!is_known_timezone(cfg.default_timezone)) throw ConfigError(r.line("timezone") + ": key \"delivery.timezone\": unknown time zone \"" + cfg.default_timezone + "\"");
    r.str("slot", cfg.default_slot);
    if (!parse_slot(cfg.default_slot)) throw ConfigError(r.line("slot") + ": key \"delivery.slot\": expected HH:MM, got \"" + cfg.default_slot + "\"");
    r.integer_as("window_lead_seconds", cfg.window.lead_ms, 0, 3600, 1000);
    r.integer_as("window_tail_seconds", cfg.window.tail_ms, 1, 3600, 1000);
    r.integer_as("deadline_seconds", cfg.window.deadline_ms, 1, 3600, 1000);
    r.number("utilisation", cfg.utilisation, 0.05, 1.0);
    r.str("emergency_language", cfg.emergency_language);
    if (!is_language_tag(cfg.emergency_language)) {
      throw ConfigError(r.line("emergency_language") + ": key \"delivery.emergency_language\": expected a language tag such as \"en\", got \"" +
                        cfg.emergency_language + "\"");
    }
    if (const auto* arr = r.array("tiers")) {
      cfg.tiers.clear();
      for (const auto& n : *arr) {
        auto v = n.value<std::string>();
        if (!v || v->empty()) throw ConfigError(where(n, origin) + ": key \"delivery.tiers\" must be a list of non-empty strings");
        for (const auto& existing : cfg.tiers) {
          if (existing == *v) throw ConfigError(where(n, origin) + ": key \"delivery.tiers\": tier \"" + *v + "\" listed twice");
        }
        cfg.tiers.push_back(*v);
      }
      if (cfg.tiers.empty()) throw ConfigError(r.line("tiers") + ": key \"delivery.tiers\" must not be empty");
    }
    if (cfg.window.deadline_ms < cfg.window.tail_ms) {
      throw ConfigError(r.line("deadline_seconds") + ": key \"delivery.deadline_seconds\" must be at least window_tail_seconds");
    }
  }
  if (const auto* t = top.table("retry")) {
    TableReader r(*t, "retry", origin, {"base_ms", "max_backoff_ms", "max_attempts", "expected_latency_ms"});
    r.integer_as("base_ms", cfg.retry.base_ms, 1, 600000);
    r.integer_as("max_backoff_ms", cfg.retry.max_backoff_ms, 1, 3600000);
    r.integer_as("max_attempts", cfg.retry.max_attempts, 1, 100);
    r.integer_as("expected_latency_ms", cfg.retry.expected_latency_ms, 0, 600000);
  }
  bool status_wait_given = false;
  if (const auto* t = top.table("dispatch")) {
    TableReader r(*t, "dispatch", origin,
                  {"workers", "max_in_flight", "claim_lead_ms", "commit_interval_ms", "lease_seconds",
                   "uncertain_grace_seconds", "drain_after_deadline_seconds", "metrics_dir", "status_wait_seconds", "transport"});
    r.integer_as("workers", cfg.dispatch.workers, 1, 64);
    r.integer_as("max_in_flight", cfg.dispatch.max_in_flight, 1, 100000);
    r.integer_as("claim_lead_ms", cfg.dispatch.claim_lead_ms, 10, 60000);
    r.integer_as("commit_interval_ms", cfg.dispatch.commit_interval_ms, 1, 10000);
    r.integer_as("lease_seconds", cfg.dispatch.lease_ms, 2, 3600, 1000);
    r.integer_as("uncertain_grace_seconds", cfg.dispatch.uncertain_grace_ms, 0, 86400, 1000);
    r.integer_as("drain_after_deadline_seconds", cfg.dispatch.drain_after_deadline_ms, 0, 86400, 1000);
    r.integer_as("status_wait_seconds", cfg.dispatch.status_wait_ms, 0, 3600, 1000);
    status_wait_given = t->contains("status_wait_seconds");
    r.str("metrics_dir", cfg.dispatch.metrics_dir);
    r.str("transport", cfg.dispatch.transport);
    if (cfg.dispatch.transport != "curl" && cfg.dispatch.transport != "epoll") {
      throw ConfigError(r.line("transport") + ": key \"dispatch.transport\" must be \"curl\" or \"epoll\"");
    }
    // Not in the file: one epoll loop (it measured less CPU per send than two, at the same drain),
    // two libcurl threads (one gained nothing there): docs/performance.md.
    if (!t->contains("workers") && cfg.dispatch.transport == "curl") cfg.dispatch.workers = 2;
  }
  if (const auto* t = top.table("schedule")) {
    TableReader r(*t, "schedule", origin,
                  {"timezone", "nightly", "dispatch", "plan_deadline", "plan_recheck", "catch_up_minutes", "deadman_lead_minutes",
                   "systemd_dirs", "crontabs"});
    r.str("timezone", cfg.schedule.timezone);
    if (!is_known_timezone(cfg.schedule.timezone)) {
      throw ConfigError(r.line("timezone") + ": key \"schedule.timezone\": unknown time zone \"" + cfg.schedule.timezone + "\"");
    }
    auto hhmm = [&](const char* key, int& out) {
      std::string v;
      r.str(key, v);
      if (v.empty()) return;
      auto m = parse_slot(v);
      if (!m) throw ConfigError(r.line(key) + ": key \"" + r.full(key) + "\": expected HH:MM, got \"" + v + "\"");
      out = *m;
    };
    hhmm("nightly", cfg.schedule.nightly_minutes);
    hhmm("dispatch", cfg.schedule.dispatch_minutes);
    hhmm("plan_deadline", cfg.schedule.plan_deadline_minutes);
    hhmm("plan_recheck", cfg.schedule.plan_recheck_minutes);
    r.integer_as("catch_up_minutes", cfg.schedule.catch_up_ms, 0, 24 * 60, 60'000);
    r.integer_as("deadman_lead_minutes", cfg.schedule.deadman_lead_ms, 0, 12 * 60, 60'000);
    auto paths = [&](const char* key, std::vector<std::string>& out) {
      if (const auto* arr = r.array(key)) {
        out.clear();
        for (const auto& n : *arr) {
          auto v = n.value<std::string>();
          if (!v || v->empty()) throw ConfigError(where(n, origin) + ": key \"" + r.full(key) + "\" must be a list of paths");
          out.push_back(*v);
        }
      }
    };
    paths("systemd_dirs", cfg.schedule.systemd_dirs);
    paths("crontabs", cfg.schedule.crontabs);
  }
  if (const auto* t = top.table("retention")) {
    TableReader r(*t, "retention", origin, {"runs_days", "status_days", "status_pending_expiry_hours"});
    r.integer_as("runs_days", cfg.retention.runs_days, 0, 36500);
    r.integer_as("status_days", cfg.retention.status_days, 1, 3650);
    r.integer_as("status_pending_expiry_hours", cfg.retention.status_pending_expiry_ms, 1, 24 * 365, 3'600'000);
  }
  if (const auto* t = top.table("breaker")) {
    TableReader r(*t, "breaker", origin,
                  {"window_seconds", "min_requests", "failure_ratio", "open_seconds", "max_open_seconds", "half_open_probes"});
    r.integer_as("window_seconds", cfg.breaker.window_ms, 1, 3600, 1000);
    r.integer_as("min_requests", cfg.breaker.min_requests, 1, 100000);
    r.number("failure_ratio", cfg.breaker.failure_ratio, 0.01, 1.0);
    r.integer_as("open_seconds", cfg.breaker.open_ms, 1, 3600, 1000);
    r.integer_as("max_open_seconds", cfg.breaker.max_open_ms, 1, 86400, 1000);
    r.integer_as("half_open_probes", cfg.breaker.half_open_probes, 1, 1000);
    if (cfg.breaker.max_open_ms < cfg.breaker.open_ms) cfg.breaker.max_open_ms = cfg.breaker.open_ms;
  }
  if (const auto* t = top.table("whatsapp")) {
    TableReader r(*t, "whatsapp", origin,
                  {"graph_base", "api_version", "template_name", "connect_timeout_ms", "request_timeout_ms", "app_secret",
                   "app_secret_env", "app_secret_file", "verify_token", "verify_token_env", "verify_token_file", "senders",
                   "allow_insecure", "templates", "number_pause_seconds", "account_pause_seconds"});
    r.str("graph_base", cfg.whatsapp.graph_base);
    if (cfg.whatsapp.graph_base.rfind("http://", 0) != 0 && cfg.whatsapp.graph_base.rfind("https://", 0) != 0) {
      throw ConfigError(r.line("graph_base") + ": key \"whatsapp.graph_base\" must start with http:// or https://");
    }
    while (!cfg.whatsapp.graph_base.empty() && cfg.whatsapp.graph_base.back() == '/') cfg.whatsapp.graph_base.pop_back();
    r.str("api_version", cfg.whatsapp.api_version);
    r.str("template_name", cfg.whatsapp.template_name);
    r.integer_as("connect_timeout_ms", cfg.whatsapp.connect_timeout_ms, 1, 600000);
    r.integer_as("request_timeout_ms", cfg.whatsapp.request_timeout_ms, 1, 600000);
    r.integer_as("number_pause_seconds", cfg.whatsapp.number_pause_ms, 1, 7 * 86400, 1000);
    r.integer_as("account_pause_seconds", cfg.whatsapp.account_pause_ms, 1, 7 * 86400, 1000);
    inline_secret |= r.secret("app_secret", cfg.whatsapp.app_secret);
    inline_secret |= r.secret("verify_token", cfg.whatsapp.verify_token);
    if (auto v = r.get<bool>("allow_insecure", "true or false")) cfg.whatsapp.allow_insecure = *v;
    if (const auto* arr = r.array("senders")) read_senders(*arr, Channel::whatsapp, "whatsapp.senders", origin, cfg, inline_secret);
    if (const auto* arr = r.array("templates")) read_templates(*arr, origin, cfg.whatsapp.templates);
    if (!cfg.senders_of(Channel::whatsapp).empty()) {
      refuse_cleartext(cfg.whatsapp.graph_base, false, cfg.whatsapp.allow_insecure, r.line("graph_base"), "whatsapp.graph_base",
                       "every sender's access token", "[whatsapp]");
    }
  }
  if (const auto* t = top.table("callbacks")) {
    TableReader r(*t, "callbacks", origin, {"max_body_bytes", "header_timeout_seconds", "request_timeout_seconds", "max_connections"});
    r.integer_as("max_body_bytes", cfg.callbacks.max_body_bytes, 1024, 64 << 20);
    r.integer_as("header_timeout_seconds", cfg.callbacks.header_timeout_ms, 1, 300, 1000);
    r.integer_as("request_timeout_seconds", cfg.callbacks.request_timeout_ms, 1, 3600, 1000);
    r.integer_as("max_connections", cfg.callbacks.max_connections, 1, 10000);
    if (cfg.callbacks.request_timeout_ms < cfg.callbacks.header_timeout_ms) {
      throw ConfigError(r.line("request_timeout_seconds") + ": key \"callbacks.request_timeout_seconds\" must be at least header_timeout_seconds");
    }
  }
  if (const auto* t = top.table("email")) {
    TableReader r(*t, "email", origin,
                  {"senders", "unsubscribe_url", "unsubscribe_mailto", "unsubscribe_secret", "unsubscribe_secret_env",
                   "unsubscribe_secret_file", "allow_insecure"});
    if (const auto* arr = r.array("senders")) read_senders(*arr, Channel::email, "email.senders", origin, cfg, inline_secret);
    auto& u = cfg.unsubscribe;
    r.str("unsubscribe_url", u.url_template);
    r.str("unsubscribe_mailto", u.mailto);
    inline_secret |= r.secret("unsubscribe_secret", u.secret);
    bool allow_insecure = false;
    if (auto v = r.get<bool>("allow_insecure", "true or false")) allow_insecure = *v;
    if (!u.url_template.empty()) {
      if (u.url_template.find("{token}") == std::string::npos) {
        throw ConfigError(r.line("unsubscribe_url") + ": key \"email.unsubscribe_url\" must contain {token} (where the signed token goes)");
      }
      if (u.url_template.rfind("https://", 0) != 0 && u.url_template.rfind("http://", 0) != 0) {
        throw ConfigError(r.line("unsubscribe_url") + ": key \"email.unsubscribe_url\" must be an https:// URL");
      }
      if (u.url_template.find_first_of(" <>\"\t\r\n") != std::string::npos) {
        throw ConfigError(r.line("unsubscribe_url") + ": key \"email.unsubscribe_url\" must not contain spaces, quotes or angle brackets");
      }
      refuse_cleartext(u.url_template, false, allow_insecure, r.line("unsubscribe_url"), "email.unsubscribe_url",
                       "unsubscribe tokens", "[email]");
    }
    if (!u.mailto.empty() && (u.mailto.find('@') == std::string::npos || u.mailto.find_first_of(" <>,\"\r\n") != std::string::npos)) {
      throw ConfigError(r.line("unsubscribe_mailto") + ": key \"email.unsubscribe_mailto\" must be a bare address (user@example.org)");
    }
    if (u.enabled() && !u.secret.configured()) {
      throw ConfigError(r.line(u.url_template.empty() ? "unsubscribe_mailto" : "unsubscribe_url") +
                        ": [email] unsubscribe_url/unsubscribe_mailto need unsubscribe_secret (or unsubscribe_secret_env, "
                        "unsubscribe_secret_file): the HMAC key that signs the tokens");
    }
  }
  if (const auto* t = top.table("webhook")) {
    TableReader r(*t, "webhook", origin, {"senders"});
    if (const auto* arr = r.array("senders")) read_senders(*arr, Channel::webhook, "webhook.senders", origin, cfg, inline_secret);
  }
  if (const auto* t = top.table("alerts")) read_alerts_config(*t, origin, cfg.alerts, inline_secret);
  // A configured app secret means daybreak-callbacks receives WhatsApp's statuses: unless the
  // file says otherwise, a run then stays open 30 s after its last WhatsApp acceptance so that a
  // `failed` status arriving meanwhile still moves the delivery to the advisor's next channel.
  if (!status_wait_given && cfg.whatsapp.app_secret.configured()) cfg.dispatch.status_wait_ms = kStatusWaitWithReceiverMs;
  if (inline_secret && !origin.empty()) {
    struct stat st{};
    if (::stat(origin.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
      throw ConfigError(origin + ": holds secrets inline but is readable by others (mode " +
                        [&] { std::ostringstream o; o << std::oct << (st.st_mode & 0777); return o.str(); }() +
                        "); run chmod 600 " + origin + " or move the secrets to *_env / *_file keys");
    }
  }
  return cfg;
}

bool url_is_loopback(const std::string& url) {
  auto p = url.find("://");
  std::string rest = p == std::string::npos ? url : url.substr(p + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  std::string host;
  if (!rest.empty() && rest.front() == '[') {
    host = rest.substr(1, rest.find(']') == std::string::npos ? std::string::npos : rest.find(']') - 1);
  } else {
    host = rest.substr(0, rest.find(':'));
  }
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8, written as a dotted quad of digits only.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3 && host.back() != '.';
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read configuration file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

std::string resolve_config_path(const std::string& cli_value) {
  if (!cli_value.empty()) return cli_value;
  if (const char* env = std::getenv("DAYBREAK_CONFIG"); env && *env) return env;
  return "/etc/daybreak/daybreak.toml";
}

}  // namespace daybreak
