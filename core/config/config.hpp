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
#include "domain/capacity.hpp"
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
  /// The WhatsApp Business Account (WABA) the number belongs to: an account-level block (368,
  /// 131031, 131042: docs/whatsapp-errors.md) stops every sender with the same account. Empty:
  /// senders sharing the same access token are one account.
  std::string account;
  /// Meta's messaging limit tier of this number (domain/capacity.hpp): unique recipients per
  /// moving 24 h, shared across its business portfolio; nullopt = not configured (not checked).
  std::optional<MessagingTier> messaging_tier;
  std::string portfolio = "default";  ///< the business portfolio whose messaging limit it shares
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
  // Email only
  /// SMTP sessions open at once for this sender, each on its own thread and connection
  /// (channels/smtp_lane.cpp): its throughput is at most concurrency ÷ the relay's reply time.
  int concurrency = 4;
  /// PEM file of the CA certificates that verify the relay (a private CA); empty = CURL_CA_BUNDLE,
  /// else SSL_CERT_FILE from the environment, else the system store.
  std::string ca_file;
  // Webhook
  std::string endpoint;
  Secret signing_secret;        ///< signing_secret, _env or _file; read on use
};

struct WhatsAppConfig {
  std::string graph_base = "https://graph.facebook.com";
  std::string api_version = "v26.0";  ///< Graph API version; channels/graph_api.hpp dates its end
  /// A number-level block (131048 spam rate limit, 133010 not registered ...) opens that number's
  /// breaker for this long (number_pause_seconds); its traffic moves to the other numbers.
  Millis number_pause_ms = 3'600'000;
  /// An account-level block (368, 131031, 131042) stops every sender of the account this long.
  Millis account_pause_ms = 86'400'000;
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
  /// A POST must declare Content-Length up to this (413 above; 411 without). 3 MiB: Meta's
  /// WhatsApp Cloud API "Webhooks" page says "Webhooks payloads can be up to 3MB"
  /// (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks), so none is refused.
  std::size_t max_body_bytes = 3 << 20;
  long header_timeout_ms = 5000;         ///< a request's headers must arrive whole within this, else the connection is closed
  long request_timeout_ms = 30000;       ///< the whole request (headers and body) within this, else closed
  int max_connections = 128;             ///< connections open at once; further ones wait in the listen queue
};

/// [email] unsubscribe_*: the List-Unsubscribe headers of email deliveries (RFC 2369, RFC 8058)
/// and the token daybreak-callbacks' `POST /unsubscribe` checks. Off when neither the URL nor
/// the mailto address is set.
struct UnsubscribeConfig {
  std::string url_template;  ///< unsubscribe_url: https URL with "{token}", e.g. https://example.org/unsubscribe?a={token}
  std::string mailto;        ///< unsubscribe_mailto: an address; the mailto: URI's subject carries the token
  Secret secret;             ///< unsubscribe_secret(_env|_file): HMAC key of the tokens; read on use
  [[nodiscard]] bool enabled() const { return !url_template.empty() || !mailto.empty(); }
};

struct DispatchConfig {
  /// Transport threads, each with its own event loop and connections. Not in the file: 1 with the
  /// epoll transport, 2 with curl.
  int workers = 1;
  int max_in_flight = 512;          ///< concurrent requests across all senders
  Millis claim_lead_ms = 400;       ///< rows are claimed (committed `sending`) this far ahead of their time
  Millis commit_interval_ms = 25;   ///< the writer thread commits a batch at least this often
  Millis lease_ms = 15000;          ///< a lease not renewed for this long belongs to a dead owner
  Millis uncertain_grace_ms = 60000;///< how long an uncertain send waits for a status event before a resend
  Millis drain_after_deadline_ms = 600000; ///< keep retrying past the deadline at most this long
  /// After a run's last WhatsApp acceptance, keep the run open this long (never past the point
  /// where a send could still land by the deadline) so that a `failed` status arriving meanwhile
  /// moves the delivery to the advisor's next channel; 0 = close as soon as every row is final.
  /// Not in the file: kStatusWaitWithReceiverMs when [whatsapp] app_secret is configured (the
  /// status receiver runs), else 0.
  Millis status_wait_ms = 0;
  std::string metrics_dir;          ///< Prometheus textfile directory; empty = none
  /// The HTTP transport: "epoll" (daybreak's own HTTP/1.1 client, TLS through OpenSSL) or "curl"
  /// (libcurl's multi interface): channels/transport.hpp
  std::string transport = "epoll";
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
  int runs_days = 90;  ///< runs of delivery days older than this go (`retention purge` with no --older-than); 0 keeps them
  int status_days = 30;                          ///< status_events/status_updates older than this go
  Millis status_pending_expiry_ms = 72 * 3'600'000LL;  ///< a status still unmatched after this is expired
};

/// dispatch.status_wait_seconds when the file does not set it and [whatsapp] app_secret is set.
inline constexpr Millis kStatusWaitWithReceiverMs = 30'000;

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
  UnsubscribeConfig unsubscribe;      ///< [email] unsubscribe_*: List-Unsubscribe headers and tokens
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
