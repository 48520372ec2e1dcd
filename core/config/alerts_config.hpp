#pragma once
// The [alerts] section of the configuration: rule thresholds, the on-call
// chain and its sinks. Kept apart from config.hpp so the alerting keys are read in one place
// (config/alerts_config.cpp) and the rest of the configuration does not depend on them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/secret.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// One level of the on-call chain: who is told when an alert reaches it.
struct AlertLevel {
  std::string name;                   ///< e.g. "oncall", "backup", "manager"
  /// Slack-compatible incoming-webhook URLs (credentials: never logged): `webhooks` inline, then
  /// `webhook_env`/`webhook_file`, read on use.
  std::vector<Secret> webhooks;
  std::vector<std::string> emails;    ///< recipients, sent through smtp_url
};

/// Alert rules, sinks and escalation. Every default is listed in docs/daybreak.example.toml.
struct AlertsConfig {
  /// Decided deliveries live success needs before it can fire: with fewer, one early dead
  /// letter would read as a 0% morning.
  std::size_t min_sample = 20;
  double live_success_pct = 97.0;      ///< fire below this live success %
  /// Which measure live_success_low watches: "accepted" (a provider accepted the request by the
  /// deadline; the default, the headline SLA) or "delivered" (a delivered/read status callback
  /// with a provider time by the deadline; domain/sla.hpp live_delivered_pct).
  std::string success_measure = "accepted";
  Millis escalate_after_ms = 5 * 60'000;  ///< unacknowledged this long → the next level, and again
  /// Dead letters added within dead_letter_window_ms that fire dead_letter_growth: a handful is
  /// normal (bad numbers), a burst means a template or account problem.
  std::int64_t dead_letter_growth = 10;
  Millis dead_letter_window_ms = 5 * 60'000;
  std::vector<std::string> disabled_rules;  ///< rule names switched off
  std::vector<AlertLevel> chain;            ///< ordered on-call chain; level 0 is told first
  // Email sink (libcurl SMTP).
  std::string smtp_url;       ///< smtp://host:port or smtps://host:port; empty = no email
  std::string smtp_from;
  std::string smtp_username;
  Secret smtp_password;       ///< smtp_password, _env or _file; read on use
  bool smtp_starttls = false; ///< smtp:// only: require STARTTLS
  /// PEM CA certificates that verify the relay (a private CA); empty = CURL_CA_BUNDLE, else
  /// SSL_CERT_FILE from the environment, else the system store (as for email senders' ca_file).
  std::string smtp_ca_file;
  /// Accept alert webhooks over http:// and SMTP without TLS to hosts that are not loopback.
  bool allow_insecure = false;
  // Delivery of notifications.
  int notify_max_attempts = 8;        ///< then the notification is marked failed (and logged)
  Millis notify_retry_base_ms = 15'000;  ///< backoff base, doubling per attempt, capped at 5 minutes
  long notify_timeout_ms = 5000;      ///< per request; a slow sink never holds a delivery

  /// False when `rule` is listed in disabled_rules.
  [[nodiscard]] bool rule_enabled(std::string_view rule) const;
};

/// Reads every secret the alert sinks use (the SMTP password, webhook URLs from *_env/*_file)
/// and checks each URL, so a command that sends notifications (dispatch, `daybreak alerts
/// check`) stops at start (ConfigError, exit 3) naming the key and variable, not at the first
/// alert. Commands that only read alerts never call it.
void check_alert_secrets(const AlertsConfig& a);

/// The rule names [alerts] disabled_rules may list.
const std::vector<std::string>& alert_rule_names();

}  // namespace daybreak
