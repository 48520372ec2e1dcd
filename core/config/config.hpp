#pragma once
// One TOML file configures every binary. It is validated at start against one
// table of known keys; every error names the key (and line) so an operator can fix it at once.
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/alerts_config.hpp"
#include "config/secret.hpp"
#include "domain/breaker.hpp"
#include "domain/retry.hpp"
#include "domain/time.hpp"
#include "domain/templates.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// A configuration problem: mapped to exit code 3.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One provider account.
struct SenderConfig {
  std::string id;               ///< daybreak's name for it, e.g. "wa-1"
  Channel channel = Channel::whatsapp;
  double mps = 80;              ///< provider rate limit, messages per second
  // WhatsApp
  std::string phone_number_id;
  Secret token;                 ///< token, token_env or token_file; read on use (config/secret.hpp)
  // Email (SMTP)
  std::string url;              ///< smtp://host:port or smtps://host:port
  std::string username;
  Secret password;              ///< password, password_env or password_file; read on use
  std::string from;
  bool starttls = true;         ///< smtp:// only: require STARTTLS (`starttls = false` for a plain local relay)
  /// Accept sending in clear (an http:// endpoint, or smtp:// without STARTTLS) to a host that is
  /// not loopback: refused at load unless set (config_transport_risk).
  bool allow_insecure = false;
  // Email and webhook: explicit timeouts (WhatsApp has its own under [whatsapp])
  long connect_timeout_ms = 2000;
  long request_timeout_ms = 10000;
  // Webhook
  std::string endpoint;
  Secret signing_secret;        ///< signing_secret, _env or _file; read on use
};

struct WhatsAppConfig {
  std::string graph_base = "https://graph.facebook.com";
  std::string api_version = "v21.0";
  std::string template_name = "daily_content";  ///< used when `templates` is empty: every item, any header
  /// [[whatsapp.templates]]: the approved template per (content language, header). When any is
  /// configured, an item is sent only through the one that fits it (domain/templates.hpp), and
  /// the night-before check and `doctor` name the items that have none.
  std::vector<WhatsAppTemplate> templates;
  long connect_timeout_ms = 2000;
  long request_timeout_ms = 10000;
  Secret app_secret;          ///< verifies X-Hub-Signature-256; read on use
  Secret verify_token;        ///< GET handshake; read on use
  bool allow_insecure = false;  ///< accept an http:// graph_base that is not loopback (tokens in clear)
};

/// [callbacks]: the status receiver's (daybreak-callbacks) bounds on what it will read. Every
/// request is judged on its headers before a byte of its body is read.
struct CallbacksConfig {
  std::size_t max_body_bytes = 1 << 20;  ///< a POST must declare Content-Length up to this (413 above; 411 without)
  long header_timeout_ms = 5000;         ///< a request's headers must arrive whole within this, else the connection is closed
  long request_timeout_ms = 30000;       ///< the whole request (headers and body) within this, else closed
  int max_connections = 128;             ///< connections open at once; further ones wait in the listen queue
};

struct DispatchConfig {
  int workers = 2;                  ///< transport threads, each with its own curl multi handle
  int max_in_flight = 512;          ///< concurrent requests across all senders
  Millis claim_lead_ms = 400;       ///< rows are claimed (committed `sending`) this far ahead of their time
  Millis commit_interval_ms = 25;   ///< the writer thread commits a batch at least this often
  Millis lease_ms = 15000;          ///< a lease not renewed for this long belongs to a dead owner
  Millis uncertain_grace_ms = 60000;///< how long an uncertain send waits for a status event before a resend
  Millis drain_after_deadline_ms = 600000; ///< keep retrying past the deadline at most this long
  std::string metrics_dir;          ///< Prometheus textfile directory; empty = none
};

/// [schedule]: when the nightly and dispatch jobs run, in the schedule's own zone whatever the
/// host's (cron/daybreak-at and the systemd timers), when a day not yet planned is an alert, and
/// where doctor looks for the installed schedule.
struct ScheduleConfig {
  std::string timezone = "Asia/Kolkata";
  int nightly_minutes = 21 * 60 + 30;   ///< assign-fallback + plan-deliveries for the next day
  int dispatch_minutes = 5 * 60 + 59;   ///< dispatch of the morning's runs
  int plan_deadline_minutes = 22 * 60;  ///< day D not planned by this time on D-1: plan_missing alert
  int plan_recheck_minutes = 5 * 60;    ///< and again at this time on D
  Millis catch_up_ms = 8 * 3'600'000LL; ///< a job missed while the host was down still runs this long after its time
  Millis deadman_lead_ms = 15 * 60'000; ///< dispatch's dead-man's switch looks at the day from this long before the slot
  /// Where doctor and status look for the installed systemd units and crontabs.
  std::vector<std::string> systemd_dirs = {"/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                                           "/lib/systemd/system"};
  std::vector<std::string> crontabs = {"/etc/cron.d/daybreak", "/var/spool/cron/crontabs/daybreak"};
};

/// [retention]: how long the status tables keep what providers told us. Raw callback bodies hold
/// advisors' phone numbers; `daybreak retention purge|archive` deletes them by age.
struct RetentionConfig {
  int status_days = 30;                          ///< status_events/status_updates older than this go
  Millis status_pending_expiry_ms = 72 * 3'600'000LL;  ///< a status still unmatched after this is expired
};

/// The whole validated configuration.
struct Config {
  std::string source;               ///< file it came from ("" = built-in defaults)
  std::string database_path = "/var/lib/daybreak/daybreak.db";
  /// [database] url = "postgresql://…": dispatch's ledger on PostgreSQL instead of the SQLite
  /// file (docs/architecture.md "The PostgreSQL ledger"). Empty = SQLite. Exactly one of `path`
  /// and `url` may be set.
  std::string database_url;
  std::string log_level = "info";
  std::string default_timezone = "Asia/Kolkata";
  std::string default_slot = "06:00";
  std::vector<std::string> tiers = {"platinum", "gold", "silver", "standard"};
  WindowPolicy window;
  double utilisation = 0.7;
  /// delivery.emergency_language: whose emergency items serve an advisor whose own language has
  /// none when their content is pulled, expired or rejected (domain/emergency.hpp).
  std::string emergency_language = "en";
  RetryPolicy retry;
  BreakerPolicy breaker;             ///< [breaker]: one circuit breaker per sender
  DispatchConfig dispatch;
  ScheduleConfig schedule;
  RetentionConfig retention;
  WhatsAppConfig whatsapp;
  CallbacksConfig callbacks;          ///< [callbacks]: daybreak-callbacks' request bounds
  std::vector<SenderConfig> senders;  ///< all channels, in file order
  AlertsConfig alerts;                ///< [alerts]: rules, on-call chain, sinks (config/alerts_config.hpp)

  /// 0-based rank of a tier (0 = highest), or nullopt when unknown.
  [[nodiscard]] std::optional<int> tier_rank(const std::string& tier) const;
  /// Senders of one channel.
  [[nodiscard]] std::vector<const SenderConfig*> senders_of(Channel c) const;
};

/// True when the host of `url` (scheme://[user@]host[:port]/…) is loopback: localhost,
/// 127.0.0.0/8 or ::1. Plain http:// and SMTP without TLS are accepted only there unless the
/// section sets allow_insecure = true.
bool url_is_loopback(const std::string& url);

/// Loads and validates a TOML file. Throws ConfigError naming the key and line.
Config load_config(const std::string& path);
/// Parses TOML text (for tests); `origin` names it in errors.
Config parse_config(const std::string& toml_text, const std::string& origin);
/// Resolves the config path: --config, else $DAYBREAK_CONFIG, else /etc/daybreak/daybreak.toml.
std::string resolve_config_path(const std::string& cli_value);

}  // namespace daybreak
