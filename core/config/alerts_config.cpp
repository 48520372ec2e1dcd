#include "config/alerts_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "config/alerts_toml.hpp"
#include "config/config.hpp"

namespace daybreak {
namespace {

std::string at(const toml::node& n, const std::string& origin) {
  std::ostringstream o;
  o << origin;
  if (n.source().begin.line) o << ":" << n.source().begin.line;
  return o.str();
}

void check_keys(const toml::table& t, const std::string& prefix, const std::string& origin,
                const std::set<std::string>& allowed) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str()))) {
      throw ConfigError(at(v, origin) + ": unknown key \"" + prefix + "." + std::string(k.str()) + "\"");
    }
  }
}

std::string str(const toml::table& t, const std::string& key, const std::string& full, const std::string& origin,
                const std::string& dflt) {
  const toml::node* n = t.get(key);
  if (!n) return dflt;
  auto v = n->value<std::string>();
  if (!v) throw ConfigError(at(*n, origin) + ": key \"" + full + "\" must be a string");
  return *v;
}

double number(const toml::table& t, const std::string& key, const std::string& full, const std::string& origin,
              double dflt, double min, double max) {
  const toml::node* n = t.get(key);
  if (!n) return dflt;
  auto v = n->value<double>();
  if (!v || (n->is_integer() == false && n->is_floating_point() == false)) {
    throw ConfigError(at(*n, origin) + ": key \"" + full + "\" must be a number");
  }
  if (!(*v >= min && *v <= max)) {
    std::ostringstream o;
    o << at(*n, origin) << ": key \"" << full << "\" must be between " << min << " and " << max << ", got " << *v;
    throw ConfigError(o.str());
  }
  return *v;
}

std::int64_t integer(const toml::table& t, const std::string& key, const std::string& full, const std::string& origin,
                     std::int64_t dflt, std::int64_t min, std::int64_t max) {
  const toml::node* n = t.get(key);
  if (!n) return dflt;
  if (!n->is_integer()) throw ConfigError(at(*n, origin) + ": key \"" + full + "\" must be an integer");
  std::int64_t v = *n->value<std::int64_t>();
  if (v < min || v > max) {
    throw ConfigError(at(*n, origin) + ": key \"" + full + "\" must be between " + std::to_string(min) + " and " +
                      std::to_string(max) + ", got " + std::to_string(v));
  }
  return v;
}

std::vector<std::string> strings(const toml::table& t, const std::string& key, const std::string& full,
                                 const std::string& origin) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  if (!n->is_array()) throw ConfigError(at(*n, origin) + ": key \"" + full + "\" must be a list of strings");
  for (const auto& e : *n->as_array()) {
    auto v = e.value<std::string>();
    if (!v || v->empty()) throw ConfigError(at(e, origin) + ": key \"" + full + "\" must be a list of non-empty strings");
    out.push_back(*v);
  }
  return out;
}

// A secret from `key_env` (an environment variable) or `key_file` (first line of a file), recorded
// where it is; its value is read on use (config/secret.hpp). `fallback` when neither is given.
Secret secret_from(const toml::table& t, const std::string& key, const std::string& prefix, const std::string& origin,
                   Secret fallback) {
  Secret out = std::move(fallback);
  if (const toml::node* n = t.get(key + "_env")) {
    auto name = n->value<std::string>();
    if (!name) throw ConfigError(at(*n, origin) + ": key \"" + prefix + key + "_env\" must be a string");
    out = Secret::from_env(*name, prefix + key + "_env", at(*n, origin));
  }
  if (const toml::node* n = t.get(key + "_file")) {
    auto file = n->value<std::string>();
    if (!file) throw ConfigError(at(*n, origin) + ": key \"" + prefix + key + "_file\" must be a string");
    out = Secret::from_file(*file, prefix + key + "_file", at(*n, origin));
  }
  return out;
}

bool is_http_url(const std::string& u) { return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0; }

/// An alert webhook the configuration must refuse: http:// to a host that is not loopback.
bool insecure_webhook(const AlertsConfig& a, const std::string& u) {
  return !a.allow_insecure && u.rfind("http://", 0) == 0 && !url_is_loopback(u);
}

}  // namespace

bool AlertsConfig::rule_enabled(std::string_view rule) const {
  return std::find(disabled_rules.begin(), disabled_rules.end(), rule) == disabled_rules.end();
}

const std::vector<std::string>& alert_rule_names() {
  static const std::vector<std::string> names{"live_success_low",   "deadline_at_risk", "breaker_open",
                                              "credentials_failure", "certificate_failure", "dead_letter_growth", "silent_days",
                                              "capacity_shortfall", "store_unwritable", "plan_missing",
                                              "night_missed",       "nightly_failed",   "content_held",
                                              "whatsapp_number_blocked", "whatsapp_account_blocked",
                                              "whatsapp_account_error"};
  return names;
}

void check_alert_secrets(const AlertsConfig& a) {
  bool emails = false;
  for (const auto& level : a.chain) emails |= !level.emails.empty();
  if (emails && !a.smtp_username.empty()) (void)a.smtp_password.value();
  for (const auto& level : a.chain) {
    for (const auto& w : level.webhooks) {
      if (w.source() == Secret::Source::inline_value) continue;  // checked at load
      const std::string url = w.value();
      if (!is_http_url(url)) {
        throw ConfigError("alerts.levels." + level.name + ": the webhook URL from " + w.describe() +
                          " must start with https:// (or http://)");
      }
      if (insecure_webhook(a, url)) {
        throw ConfigError("alerts.levels." + level.name + ": the webhook URL from " + w.describe() +
                          " is http:// to a host that is not loopback (its credential and alerts in clear); use https://, or set "
                          "allow_insecure = true in [alerts] to accept that risk");
      }
    }
  }
}

void read_alerts_config(const toml::table& t, const std::string& origin, AlertsConfig& a, bool& inline_secret) {
  check_keys(t, "alerts", origin,
             {"min_sample", "live_success_pct", "success_measure", "escalate_after_minutes", "dead_letter_growth",
              "dead_letter_window_minutes", "disabled_rules", "chain", "levels", "smtp_url", "smtp_from",
              "smtp_username", "smtp_password", "smtp_password_env", "smtp_password_file", "smtp_starttls", "smtp_ca_file",
              "notify_max_attempts", "notify_retry_base_seconds", "notify_timeout_ms", "allow_insecure"});
  a.min_sample = static_cast<std::size_t>(integer(t, "min_sample", "alerts.min_sample", origin, 20, 1, 1'000'000));
  a.live_success_pct = number(t, "live_success_pct", "alerts.live_success_pct", origin, 97.0, 0.0, 100.0);
  a.success_measure = str(t, "success_measure", "alerts.success_measure", origin, "accepted");
  if (a.success_measure != "accepted" && a.success_measure != "delivered") {
    throw ConfigError(at(*t.get("success_measure"), origin) +
                      ": key \"alerts.success_measure\" must be \"accepted\" or \"delivered\"");
  }
  a.escalate_after_ms = integer(t, "escalate_after_minutes", "alerts.escalate_after_minutes", origin, 5, 1, 1440) * 60'000;
  a.dead_letter_growth = integer(t, "dead_letter_growth", "alerts.dead_letter_growth", origin, 10, 1, 100'000'000);
  a.dead_letter_window_ms =
      integer(t, "dead_letter_window_minutes", "alerts.dead_letter_window_minutes", origin, 5, 1, 1440) * 60'000;
  a.disabled_rules = strings(t, "disabled_rules", "alerts.disabled_rules", origin);
  for (const auto& r : a.disabled_rules) {
    const auto& names = alert_rule_names();
    if (std::find(names.begin(), names.end(), r) == names.end()) {
      throw ConfigError(at(*t.get("disabled_rules"), origin) + ": key \"alerts.disabled_rules\": unknown rule \"" + r +
                        "\" (known: live_success_low, deadline_at_risk, breaker_open, credentials_failure, certificate_failure, "
                        "dead_letter_growth, silent_days, capacity_shortfall, store_unwritable, plan_missing, night_missed, "
                        "nightly_failed, content_held, whatsapp_number_blocked, whatsapp_account_blocked, whatsapp_account_error)");
    }
  }
  a.smtp_url = str(t, "smtp_url", "alerts.smtp_url", origin, "");
  if (!a.smtp_url.empty() && a.smtp_url.rfind("smtp://", 0) != 0 && a.smtp_url.rfind("smtps://", 0) != 0) {
    throw ConfigError(at(*t.get("smtp_url"), origin) + ": key \"alerts.smtp_url\" must start with smtp:// or smtps://");
  }
  a.smtp_from = str(t, "smtp_from", "alerts.smtp_from", origin, "");
  a.smtp_username = str(t, "smtp_username", "alerts.smtp_username", origin, "");
  std::string smtp_password = str(t, "smtp_password", "alerts.smtp_password", origin, "");
  if (!smtp_password.empty()) inline_secret = true;
  a.smtp_password = secret_from(t, "smtp_password", "alerts.", origin, Secret(smtp_password));
  a.smtp_ca_file = str(t, "smtp_ca_file", "alerts.smtp_ca_file", origin, "");
  if (!a.smtp_ca_file.empty() && ::access(a.smtp_ca_file.c_str(), R_OK) != 0) {
    throw ConfigError(at(*t.get("smtp_ca_file"), origin) + ": key \"alerts.smtp_ca_file\": cannot read " + a.smtp_ca_file);
  }
  if (const toml::node* n = t.get("smtp_starttls")) {
    auto v = n->value<bool>();
    if (!v) throw ConfigError(at(*n, origin) + ": key \"alerts.smtp_starttls\" must be true or false");
    a.smtp_starttls = *v;
  }
  if (const toml::node* n = t.get("allow_insecure")) {
    auto v = n->value<bool>();
    if (!v) throw ConfigError(at(*n, origin) + ": key \"alerts.allow_insecure\" must be true or false");
    a.allow_insecure = *v;
  }
  // The SMTP password and the alert text go in clear over smtp:// without STARTTLS.
  if (!a.allow_insecure && a.smtp_url.rfind("smtp://", 0) == 0 && !a.smtp_starttls && !url_is_loopback(a.smtp_url)) {
    throw ConfigError(at(*t.get("smtp_url"), origin) + ": key \"alerts.smtp_url\": smtp://"
                      " without smtp_starttls = true would send the SMTP password and alerts in clear to a host that is not "
                      "loopback; use smtps://, set smtp_starttls = true, or set allow_insecure = true in [alerts] to accept that risk");
  }
  a.notify_max_attempts = static_cast<int>(integer(t, "notify_max_attempts", "alerts.notify_max_attempts", origin, 8, 1, 100));
  a.notify_retry_base_ms =
      integer(t, "notify_retry_base_seconds", "alerts.notify_retry_base_seconds", origin, 15, 1, 3600) * 1000;
  a.notify_timeout_ms = static_cast<long>(integer(t, "notify_timeout_ms", "alerts.notify_timeout_ms", origin, 5000, 100, 120'000));

  // The chain names levels; each named level has a table under [alerts.levels.NAME].
  std::vector<std::string> chain = strings(t, "chain", "alerts.chain", origin);
  const toml::table* levels = nullptr;
  if (const toml::node* n = t.get("levels")) {
    if (!n->is_table()) throw ConfigError(at(*n, origin) + ": key \"alerts.levels\" must be a table");
    levels = n->as_table();
    for (const auto& [k, v] : *levels) {
      if (std::find(chain.begin(), chain.end(), std::string(k.str())) == chain.end()) {
        throw ConfigError(at(v, origin) + ": key \"alerts.levels." + std::string(k.str()) +
                          "\": level is not listed in alerts.chain");
      }
    }
  }
  a.chain.clear();
  std::set<std::string> seen;
  for (const auto& name : chain) {
    if (!seen.insert(name).second) {
      throw ConfigError(at(*t.get("chain"), origin) + ": key \"alerts.chain\": level \"" + name + "\" listed twice");
    }
    const toml::node* ln = levels ? levels->get(name) : nullptr;
    if (!ln || !ln->is_table()) {
      throw ConfigError(at(*t.get("chain"), origin) + ": key \"alerts.chain\": level \"" + name +
                        "\" needs a table [alerts.levels." + name + "]");
    }
    const toml::table& lt = *ln->as_table();
    const std::string prefix = "alerts.levels." + name;
    check_keys(lt, prefix, origin, {"webhooks", "webhook_env", "webhook_file", "emails"});
    AlertLevel level;
    level.name = name;
    const auto inline_urls = strings(lt, "webhooks", prefix + ".webhooks", origin);
    if (!inline_urls.empty()) inline_secret = true;  // a Slack webhook URL is a credential
    for (const auto& u : inline_urls) {
      if (!is_http_url(u)) {
        throw ConfigError(at(lt, origin) + ": key \"" + prefix + ".webhooks\": every URL must start with https:// (or http://)");
      }
      if (insecure_webhook(a, u)) {
        throw ConfigError(at(lt, origin) + ": key \"" + prefix + ".webhooks\": an http:// URL to a host that is not loopback would "
                          "send the webhook's credential and alerts in clear; use https://, or set allow_insecure = true in [alerts] "
                          "to accept that risk");
      }
      level.webhooks.emplace_back(u);
    }
    // webhook_env / webhook_file: checked by check_alert_secrets when a command sends.
    if (Secret s = secret_from(lt, "webhook", prefix + ".", origin, Secret()); s.configured()) level.webhooks.push_back(std::move(s));
    level.emails = strings(lt, "emails", prefix + ".emails", origin);
    for (const auto& e : level.emails) {
      if (e.find('@') == std::string::npos || e.find_first_of("\r\n<> ") != std::string::npos) {
        throw ConfigError(at(lt, origin) + ": key \"" + prefix + ".emails\": \"" + e + "\" is not an email address");
      }
    }
    if (!level.emails.empty() && (a.smtp_url.empty() || a.smtp_from.empty())) {
      throw ConfigError(at(lt, origin) + ": key \"" + prefix + ".emails\" needs alerts.smtp_url and alerts.smtp_from");
    }
    a.chain.push_back(std::move(level));
  }
}

}  // namespace daybreak
