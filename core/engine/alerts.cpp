#include "engine/alerts.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "channels/email.hpp"
#include "channels/smtp_reply.hpp"
#include "domain/time.hpp"
#include "store/alerts.hpp"
#include "store/monitoring.hpp"
#include "store/runs.hpp"
#include "store/withdrawal.hpp"  // store::AuditAppend (moving to store/audit.hpp, which it includes)

namespace daybreak::engine {
namespace {

using nlohmann::json;

const std::set<std::string>& live_rules() {
  static const std::set<std::string> r{"live_success_low",        "deadline_at_risk",        "breaker_open",
                                       "credentials_failure",     "certificate_failure",     "dead_letter_growth",
                                       "whatsapp_number_blocked", "whatsapp_account_blocked"};
  return r;
}
const std::set<std::string>& store_rules() {
  static const std::set<std::string> r{"silent_days", "capacity_shortfall"};
  return r;
}

std::string fmt2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", std::floor(v * 100.0 + 1e-9) / 100.0);  // cut, not rounded, like the reports
  return b;
}

// Runs `fn` atomically: in a SAVEPOINT inside an open transaction (dispatch's writer batch), else
// in its own BEGIN IMMEDIATE so reading and writing see one state.
void atomically(store::Db& db, const std::function<void()>& fn) {
  if (sqlite3_get_autocommit(db.raw().getHandle()) != 0) {
    db.write_tx(fn);
    return;
  }
  db.exec("SAVEPOINT daybreak_alerts");
  try {
    fn();
    db.exec("RELEASE daybreak_alerts");
  } catch (...) {
    try {
      db.exec("ROLLBACK TO daybreak_alerts");
      db.exec("RELEASE daybreak_alerts");
    } catch (...) {
    }
    throw;
  }
}

std::string level_name(const AlertsConfig& cfg, int level) {
  if (level >= 0 && static_cast<std::size_t>(level) < cfg.chain.size()) return cfg.chain[static_cast<std::size_t>(level)].name;
  return "level " + std::to_string(level);
}

std::string email_subject(const std::string& event, std::int64_t id, const std::string& rule, const std::string& subject) {
  std::string ev = event;
  std::transform(ev.begin(), ev.end(), ev.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (event == "fired") ev = "FIRING";
  return "[daybreak] " + ev + " #" + std::to_string(id) + " " + rule + " " + subject;
}

std::string email_text(const std::string& event, std::int64_t id, const std::string& rule, const std::string& subject,
                       const std::string& message, int level, const std::string& lname, Millis fired_at) {
  return email_subject(event, id, rule, subject) + "\n\n" + message + "\n\nrule: " + rule + "\nsubject: " + subject +
         "\nlevel: " + std::to_string(level) + " (" + lname + ")\nfired at: " + format_instant(fired_at) +
         "\n\nAcknowledge (stops escalation): daybreak alerts ack " + std::to_string(id) +
         " --reason \"...\"\nDetails: daybreak alerts show " + std::to_string(id) + "\n";
}

// Queues the notifications of one event for every sink of `level`.
void enqueue_level(store::Db& db, const AlertsConfig& cfg, const std::string& event, std::int64_t id,
                   const std::string& rule, const std::string& subject, const std::string& message, int level,
                   Millis fired_at, Millis now) {
  if (level < 0 || static_cast<std::size_t>(level) >= cfg.chain.size()) return;
  const AlertLevel& l = cfg.chain[static_cast<std::size_t>(level)];
  store::AlertNotification n;
  n.alert_id = id;
  n.event = event;
  n.level = level;
  n.next_attempt_at = now;
  n.created_at = now;
  for (std::size_t i = 0; i < l.webhooks.size(); ++i) {
    n.sink = "webhook";
    n.target = l.name + "#" + std::to_string(i);
    n.body = slack_body(event, id, rule, subject, message, level, l.name, fired_at);
    store::NotificationEnqueue(db, n);
  }
  for (const auto& to : l.emails) {
    n.sink = "email";
    n.target = to;
    n.body = json{{"subject", email_subject(event, id, rule, subject)},
                  {"text", email_text(event, id, rule, subject, message, level, l.name, fired_at)}}
                 .dump();
    store::NotificationEnqueue(db, n);
  }
}

// Reconciles the firing alerts of `rules` (limited to subjects `in_scope` accepts) with the
// conditions that hold now.
std::vector<AlertChange> reconcile(store::Db& db, const AlertsConfig& cfg, const std::set<std::string>& rules,
                                   const std::function<bool(const std::string&)>& in_scope,
                                   const std::vector<AlertCondition>& conditions, Millis now) {
  std::vector<AlertChange> changes;
  atomically(db, [&] {
    std::map<std::pair<std::string, std::string>, store::Alert> firing;
    for (auto& a : store::AlertListFiring(db)) {
      if (rules.count(a.rule)) firing.emplace(std::make_pair(a.rule, a.subject), std::move(a));
    }
    std::set<std::pair<std::string, std::string>> holding;
    for (const auto& c : conditions) {
      if (!rules.count(c.rule) || !cfg.rule_enabled(c.rule)) continue;
      auto key = std::make_pair(c.rule, c.subject);
      if (!holding.insert(key).second) continue;
      auto it = firing.find(key);
      if (it == firing.end()) {
        std::int64_t id = store::AlertInsert(db, c.rule, c.subject, c.message, now);
        // A critical condition tells every level of the on-call chain at once (no waiting for
        // escalation); others start at the first level.
        const int top = c.critical && !cfg.chain.empty() ? static_cast<int>(cfg.chain.size()) - 1 : 0;
        for (int l = 0; l <= top; ++l) enqueue_level(db, cfg, "fired", id, c.rule, c.subject, c.message, l, now, now);
        if (top > 0) store::AlertSetLevel(db, id, top, now);
        changes.push_back({AlertChange::Kind::fired, id, c.rule, c.subject, c.message, top});
      } else if (it->second.message != c.message) {
        store::AlertUpdateMessage(db, it->second.alert_id, c.message, now);
        changes.push_back({AlertChange::Kind::updated, it->second.alert_id, c.rule, c.subject, c.message, it->second.level});
      }
    }
    for (const auto& [key, a] : firing) {
      if (holding.count(key) || !in_scope(a.subject)) continue;
      std::string msg = "cleared: " + a.message;
      store::AlertResolve(db, a.alert_id, msg, now);
      for (int l = 0; l <= a.level; ++l) enqueue_level(db, cfg, "resolved", a.alert_id, a.rule, a.subject, msg, l, a.fired_at, now);
      changes.push_back({AlertChange::Kind::resolved, a.alert_id, a.rule, a.subject, msg, a.level});
    }
  });
  return changes;
}

std::string run_subject(std::int64_t id) { return "run:" + std::to_string(id); }

}  // namespace

std::string_view to_string(AlertChange::Kind k) {
  switch (k) {
    case AlertChange::Kind::fired: return "fired";
    case AlertChange::Kind::updated: return "updated";
    case AlertChange::Kind::escalated: return "escalated";
    case AlertChange::Kind::acknowledged: return "acknowledged";
    case AlertChange::Kind::resolved: return "resolved";
  }
  return "unknown";
}

AlertEngine::AlertEngine(AlertsConfig cfg) : cfg_(std::move(cfg)) {}

std::vector<AlertCondition> AlertEngine::live_conditions(const LiveSnapshot& snap, Millis now) {
  std::vector<AlertCondition> out;
  for (const auto& r : snap.runs) {
    if (r.closed) {
      dead_history_.erase(r.run_id);
      continue;
    }
    const std::string subj = run_subject(r.run_id);
    const std::string what = "run " + std::to_string(r.run_id) + " (" + r.date + ", slot " + format_instant(r.slot_at) + ")";
    if (cfg_.success_measure == "delivered") {
      // The delivered measure needs the status figures; a snapshot without them says nothing
      // (dispatch fills them when this measure is chosen).
      if (r.status && static_cast<std::size_t>(r.status->delivered_decided) >= cfg_.min_sample &&
          live_delivered_pct(r) < cfg_.live_success_pct) {
        const auto& st = *r.status;
        out.push_back({"live_success_low", subj,
                       what + ": live delivered success " + fmt2(live_delivered_pct(r)) + "% is below " +
                           fmt2(cfg_.live_success_pct) + "% (" + std::to_string(st.delivered_decided_on_time) +
                           " delivered on time of " + std::to_string(st.delivered_decided) + " decided; " +
                           std::to_string(st.failed_after_accept) + " failed after accept, " +
                           std::to_string(st.unknown) + " status unknown, " + std::to_string(r.dead) + " dead)"});
      }
    } else if (r.live_sample >= cfg_.min_sample && r.live_success_pct < cfg_.live_success_pct) {
      out.push_back({"live_success_low", subj,
                     what + ": live success " + fmt2(r.live_success_pct) + "% is below " + fmt2(cfg_.live_success_pct) +
                         "% (" + std::to_string(r.on_time) + " on time of " + std::to_string(r.live_sample) +
                         " decided; " + std::to_string(r.dead) + " dead, " + std::to_string(r.remaining) + " remaining)"});
    }
    if (r.deadline_at_risk) {
      std::string msg = what + ": deadline at risk: " + std::to_string(r.remaining) + " deliveries left, ";
      if (r.available_mps <= 0) {
        msg += "no usable sender (every breaker open or credentials failing)";
      } else {
        msg += "need " + fmt2(static_cast<double>(r.remaining) / r.available_mps) + " s at " + fmt2(r.available_mps) +
               " msg/s, " + fmt2(static_cast<double>(r.deadline_at - now) / 1000.0) + " s to the deadline " +
               format_instant(r.deadline_at);
      }
      out.push_back({"deadline_at_risk", subj, msg});
    }
    std::uint64_t growth = 0;
    if (r.dead_recent) {
      growth = *r.dead_recent;
    } else {
      auto& h = dead_history_[r.run_id];
      h.emplace_back(now, r.dead);
      while (h.size() > 1 && h.front().first < now - cfg_.dead_letter_window_ms) h.pop_front();
      growth = r.dead >= h.front().second ? r.dead - h.front().second : 0;
    }
    if (growth >= static_cast<std::uint64_t>(cfg_.dead_letter_growth)) {
      out.push_back({"dead_letter_growth", subj,
                     what + ": " + std::to_string(growth) + " deliveries dead-lettered in the last " +
                         std::to_string(cfg_.dead_letter_window_ms / 60'000) + " min (" + std::to_string(r.dead) +
                         " in all); see daybreak dead list"});
    }
  }
  for (const auto& s : snap.senders) {
    const std::string subj = "sender:" + s.id;
    if (s.breaker == BreakerState::open) {
      out.push_back({"breaker_open", subj,
                     "sender " + s.id + " (" + s.channel + ", " + fmt2(s.mps) +
                         " msg/s): circuit breaker open; its traffic moves to other senders or the next channel"});
    }
    if (s.certificate_failed) {
      // An email relay may have a private CA (the sender's ca_file); an https:// provider has a
      // public one, so a failure there is a missing or stale CA bundle, or someone in the path.
      out.push_back({"certificate_failure", subj,
                     s.channel == "email"
                         ? "sender " + s.id + " (email): the relay's TLS certificate did not verify (or the CA file "
                           "cannot be read); the sender is paused with its breaker open; set ca_file to the CA that "
                           "signed it, or fix the relay's certificate"
                         : "sender " + s.id + " (" + s.channel + "): the server's TLS certificate did not verify (or "
                           "the CA bundle cannot be read); the sender is paused with its breaker open and probed one "
                           "message at a time; check the CA bundle (CURL_CA_BUNDLE or SSL_CERT_FILE, else the system's "
                           "ca-certificates) and any proxy that intercepts TLS"});
    } else if (s.credentials_failed) {
      out.push_back({"credentials_failure", subj,
                     "sender " + s.id + " (" + s.channel + "): the provider rejected its credentials; renew the token"});
    }
    if (s.blocked == "phone_number") {
      out.push_back({"whatsapp_number_blocked", subj,
                     "sender " + s.id + ": the provider blocked the number (" + s.blocked_reason +
                         "); paused, its traffic goes through the other WhatsApp numbers (docs/whatsapp-errors.md)"});
    }
  }
  // One critical alert per blocked account, naming every sender it stopped.
  std::map<std::string, std::pair<std::string, std::string>> accounts;  // account → (sender ids, reason)
  for (const auto& s : snap.senders) {
    if (s.blocked != "account") continue;
    auto& a = accounts[s.account];
    a.first += (a.first.empty() ? "" : ", ") + s.id;
    a.second = s.blocked_reason;
  }
  for (const auto& [account, a] : accounts) {
    out.push_back({"whatsapp_account_blocked", "account:" + account,
                   "CRITICAL: the provider blocked WhatsApp account " + account + " (" + a.second +
                       "); every sender of it is stopped: " + a.first + " (docs/whatsapp-errors.md)",
                   true});
  }
  return out;
}

std::vector<AlertChange> AlertEngine::evaluate(store::Db& db, const LiveSnapshot& snap, Millis now) {
  std::set<std::string> subjects;
  for (const auto& r : snap.runs) subjects.insert(run_subject(r.run_id));
  for (const auto& s : snap.senders) {
    subjects.insert("sender:" + s.id);
    if (!s.account.empty()) subjects.insert("account:" + s.account);
  }
  auto changes = reconcile(db, cfg_, live_rules(), [&](const std::string& s) { return subjects.count(s) > 0; },
                           live_conditions(snap, now), now);
  auto esc = escalate(db, now);
  changes.insert(changes.end(), esc.begin(), esc.end());
  return changes;
}

std::vector<AlertChange> AlertEngine::evaluate_store(store::Db& db, const std::vector<std::string>& dates, Millis now) {
  std::vector<AlertCondition> conds;
  for (const auto& d : dates) {
    if (store::RunListForDate(db, d).empty()) continue;  // not planned yet: nothing to prove
    auto [n, sample] = store::AdvisorListSilent(db, d, 10);
    if (n == 0) continue;
    std::string ids;
    for (const auto& id : sample) ids += (ids.empty() ? "" : ", ") + id;
    conds.push_back({"silent_days", "date:" + d,
                     std::to_string(n) + " eligible advisor(s) have no content for " + d + " (e.g. " + ids +
                         "); run assign-fallback --date " + d});
  }
  for (const auto& run : store::RunListActive(db, now, now + 2 * 86'400'000LL)) {
    if (run.feasible) continue;
    json rep = json::parse(run.plan_report, nullptr, false);
    std::string msg = "run " + std::to_string(run.run_id) + " (" + run.date + ", slot " + format_instant(run.slot_at) +
                      "): " + std::to_string(run.planned_count) + " deliveries do not fit the senders";
    if (rep.is_object()) {
      if (rep.contains("shortfall")) msg += "; shortfall " + rep["shortfall"].dump();
      if (rep.contains("required_peak_mps") && rep["required_peak_mps"].is_number()) {
        msg += "; needs " + fmt2(rep["required_peak_mps"].get<double>()) + " msg/s";
      }
      if (rep.contains("recommendation") && rep["recommendation"].is_string() && !rep["recommendation"].get<std::string>().empty()) {
        msg += "; " + rep["recommendation"].get<std::string>();
      }
    }
    conds.push_back({"capacity_shortfall", run_subject(run.run_id), msg});
  }
  auto changes = reconcile(db, cfg_, store_rules(), [](const std::string&) { return true; }, conds, now);
  return changes;
}

std::vector<AlertChange> AlertEngine::evaluate_plan_missing(store::Db& db, const std::vector<AlertCondition>& conds, Millis now) {
  static const std::set<std::string> rules{"plan_missing"};
  return reconcile(db, cfg_, rules, [](const std::string&) { return true; }, conds, now);
}

namespace {
bool is_event_rule(const std::string& rule) {
  return rule == "night_missed" || rule == "nightly_failed" || rule == "whatsapp_account_error";
}
}  // namespace

AlertChange AlertEngine::raise_event(store::Db& db, const AlertCondition& c, Millis now) {
  if (!is_event_rule(c.rule)) throw std::invalid_argument("\"" + c.rule + "\" is not an event rule (night_missed, nightly_failed, whatsapp_account_error)");
  AlertChange change{AlertChange::Kind::updated, 0, c.rule, c.subject, c.message, 0};
  if (!cfg_.rule_enabled(c.rule)) return change;
  atomically(db, [&] {
    for (const auto& a : store::AlertListFiring(db)) {
      if (a.rule == c.rule && a.subject == c.subject) {
        store::AlertUpdateMessage(db, a.alert_id, c.message, now);
        change = {AlertChange::Kind::updated, a.alert_id, c.rule, c.subject, c.message, a.level};
        return;
      }
    }
    std::int64_t id = store::AlertInsert(db, c.rule, c.subject, c.message, now);
    enqueue_level(db, cfg_, "fired", id, c.rule, c.subject, c.message, 0, now, now);
    change = {AlertChange::Kind::fired, id, c.rule, c.subject, c.message, 0};
  });
  return change;
}

std::optional<AlertChange> AlertEngine::clear_event(store::Db& db, const std::string& rule, const std::string& subject,
                                                    const std::string& message, Millis now) {
  if (!is_event_rule(rule)) throw std::invalid_argument("\"" + rule + "\" is not an event rule (night_missed, nightly_failed, whatsapp_account_error)");
  std::optional<AlertChange> change;
  atomically(db, [&] {
    for (const auto& a : store::AlertListFiring(db)) {
      if (a.rule != rule || a.subject != subject) continue;
      std::string msg = message.empty() ? "cleared: " + a.message : message;
      store::AlertResolve(db, a.alert_id, msg, now);
      for (int l = 0; l <= a.level; ++l) enqueue_level(db, cfg_, "resolved", a.alert_id, a.rule, a.subject, msg, l, a.fired_at, now);
      change = AlertChange{AlertChange::Kind::resolved, a.alert_id, a.rule, a.subject, msg, a.level};
    }
  });
  return change;
}

std::vector<AlertChange> AlertEngine::expire_events(store::Db& db, const std::string& today, Millis now) {
  std::vector<AlertChange> changes;
  atomically(db, [&] {
    for (const auto& a : store::AlertListFiring(db)) {
      if (!is_event_rule(a.rule) || a.subject.rfind("date:", 0) != 0) continue;
      const std::string day = a.subject.substr(5, 10);
      if (!(day < today)) continue;
      std::string msg = "day " + day + " is over: " + a.message;
      store::AlertResolve(db, a.alert_id, msg, now);
      for (int l = 0; l <= a.level; ++l) enqueue_level(db, cfg_, "resolved", a.alert_id, a.rule, a.subject, msg, l, a.fired_at, now);
      changes.push_back({AlertChange::Kind::resolved, a.alert_id, a.rule, a.subject, msg, a.level});
    }
  });
  return changes;
}

std::vector<AlertChange> AlertEngine::evaluate_held(store::Db& db, const std::string& from_date, Millis now) {
  return evaluate_held(db, store::HeldDeliveryGroups(db, from_date), now);
}

std::vector<AlertChange> AlertEngine::evaluate_held(store::Db& db, const std::vector<store::HeldGroup>& groups, Millis now) {
  static const std::set<std::string> rules{"content_held"};
  std::vector<AlertCondition> conds;
  std::map<std::string, std::pair<std::int64_t, std::string>> by_content;  // content → (count, "hi: 300 on D; …")
  for (const auto& g : groups) {
    auto& [n, parts] = by_content[g.content_id];
    n += g.count;
    parts += (parts.empty() ? "" : "; ") + g.language + ": " + std::to_string(g.count) + " on " + g.date;
  }
  for (const auto& [content, v] : by_content) {
    conds.push_back({"content_held", "content:" + content,
                     "content " + content + " is withdrawn or expired and no emergency item could replace it: " +
                         std::to_string(v.first) + " delivery(ies) held, never sent (" + v.second +
                         "); import an emergency item for the language or `daybreak content replace " + content +
                         " --with C2`, then `daybreak dead replay --error held`"});
  }
  return reconcile(db, cfg_, rules, [](const std::string& s) { return s.rfind("content:", 0) == 0; }, conds, now);
}

std::vector<AlertChange> AlertEngine::escalate(store::Db& db, Millis now) {
  std::vector<AlertChange> changes;
  if (cfg_.chain.size() < 2) return changes;
  const int last = static_cast<int>(cfg_.chain.size()) - 1;
  atomically(db, [&] {
    for (const auto& a : store::AlertListFiring(db)) {
      if (a.acknowledged_at) continue;
      int due = static_cast<int>(std::min<Millis>((now - a.fired_at) / cfg_.escalate_after_ms, last));
      for (int l = a.level + 1; l <= due; ++l) {
        store::AlertSetLevel(db, a.alert_id, l, now);
        std::string msg = "not acknowledged after " + std::to_string((now - a.fired_at) / 60'000) +
                          " min, escalated to " + level_name(cfg_, l) + ": " + a.message;
        enqueue_level(db, cfg_, "escalated", a.alert_id, a.rule, a.subject, msg, l, a.fired_at, now);
        changes.push_back({AlertChange::Kind::escalated, a.alert_id, a.rule, a.subject, msg, l});
      }
    }
  });
  return changes;
}

AlertChange acknowledge_alert(store::Db& db, const AlertsConfig& cfg, std::int64_t alert_id, const std::string& actor,
                              const std::string& sudo_user, const std::string& reason, Millis now) {
  AlertChange change;
  atomically(db, [&] {
    auto a = store::AlertGet(db, alert_id);
    if (!a) throw std::invalid_argument("alert " + std::to_string(alert_id) + " does not exist (see daybreak alerts list)");
    if (a->state != "firing") {
      throw std::invalid_argument("alert " + std::to_string(alert_id) + " is " + a->state + " (at " +
                                  format_instant(a->resolved_at.value_or(a->updated_at)) + "); nothing to acknowledge");
    }
    if (a->acknowledged_at) {
      throw std::invalid_argument("alert " + std::to_string(alert_id) + " was already acknowledged by " +
                                  a->acknowledged_by.value_or("?") + " at " + format_instant(*a->acknowledged_at));
    }
    const std::string who = sudo_user.empty() ? actor : sudo_user + " (as " + actor + ")";
    store::AlertAcknowledge(db, alert_id, who, now);
    store::AuditEntry e;
    e.at = now;
    e.actor = actor;
    e.sudo_user = sudo_user;
    e.command = "alerts ack";
    e.reason = reason;
    e.target = "alert:" + std::to_string(alert_id);
    e.before = json{{"state", a->state}, {"level", a->level}, {"acknowledged_by", nullptr}}.dump();
    e.after = json{{"state", a->state}, {"level", a->level}, {"acknowledged_by", who}, {"acknowledged_at", now}}.dump();
    store::AuditAppend(db, e);
    std::string msg = "acknowledged by " + who + ": " + reason + " (" + a->message + ")";
    for (int l = 0; l <= a->level; ++l) enqueue_level(db, cfg, "acknowledged", alert_id, a->rule, a->subject, msg, l, a->fired_at, now);
    change = {AlertChange::Kind::acknowledged, alert_id, a->rule, a->subject, msg, a->level};
  });
  return change;
}

std::string slack_body(const std::string& event, std::int64_t alert_id, const std::string& rule,
                       const std::string& subject, const std::string& message, int level, const std::string& lname,
                       Millis fired_at) {
  // Slack incoming webhooks take {"text": ...} with optional legacy "attachments" (color bar +
  // fields); Mattermost, Rocket.Chat and Teams' Slack-compatible endpoints accept the same.
  std::string head = event == "fired" ? "FIRING" : event == "escalated" ? "ESCALATED" : event == "acknowledged" ? "ACKNOWLEDGED" : "RESOLVED";
  std::string color = event == "resolved" ? "#2eb886" : event == "acknowledged" ? "#439fe0" : event == "escalated" ? "#a30200" : "#e01e5a";
  json fields = json::array({{{"title", "rule"}, {"value", rule}, {"short", true}},
                             {{"title", "subject"}, {"value", subject}, {"short", true}},
                             {{"title", "level"}, {"value", std::to_string(level) + " (" + lname + ")"}, {"short", true}},
                             {{"title", "fired at"}, {"value", format_instant(fired_at)}, {"short", true}}});
  json j = {{"text", "[daybreak] " + head + " #" + std::to_string(alert_id) + " " + rule + " " + subject + ": " + message},
            {"attachments", json::array({{{"color", color},
                                          {"fallback", head + " " + rule + " " + subject},
                                          {"fields", fields},
                                          {"footer", "daybreak alerts ack " + std::to_string(alert_id) + " --reason \"...\""},
                                          {"ts", fired_at / 1000}}})}};
  return j.dump();
}

// ---- sending ----

namespace {

std::size_t keep_body(char* ptr, std::size_t size, std::size_t n, void* userdata) {
  auto* s = static_cast<std::string*>(userdata);
  if (s->size() < 300) s->append(ptr, std::min<std::size_t>(size * n, 300 - s->size()));
  return size * n;
}

int keep_reply(CURL*, curl_infotype type, char* data, std::size_t size, void* user) {
  if (type == CURLINFO_HEADER_IN && user != nullptr) {
    static_cast<channels::SmtpReplyCapture*>(user)->feed(std::string_view(data, size));
  }
  return 0;
}

struct Upload {
  std::string data;
  std::size_t off = 0;
};

std::size_t read_upload(char* buf, std::size_t size, std::size_t n, void* userdata) {
  auto* u = static_cast<Upload*>(userdata);
  std::size_t len = std::min(size * n, u->data.size() - u->off);
  std::memcpy(buf, u->data.data() + u->off, len);
  u->off += len;
  return len;
}

std::string crlf(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') out += "\r\n"; else out += c;
  }
  return out;
}

class CurlAlertSink final : public AlertSink {
 public:
  explicit CurlAlertSink(AlertsConfig cfg) : cfg_(std::move(cfg)) {}

  PostResult post_webhook(const std::string& url, const std::string& body) override {
    CURL* c = curl_easy_init();
    if (!c) return {false, false, "curl_easy_init failed"};
    std::string resp;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg_.notify_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(cfg_.notify_timeout_ms, 3000L));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) return {false, false, std::string("webhook: ") + curl_easy_strerror(rc)};
    if (status >= 200 && status < 300) return {true, false, ""};
    // 4xx other than 408/429: the URL or the payload is wrong (Slack: 404 no_service, 410
    // channel_is_archived); retrying cannot help.
    bool permanent = status >= 400 && status < 500 && status != 408 && status != 429;
    return {false, permanent, "webhook: HTTP " + std::to_string(status) + (resp.empty() ? "" : ": " + resp)};
  }

  PostResult send_email(const std::string& to, const std::string& subject, const std::string& text, Millis now,
                        const std::string& message_id) override {
    if (cfg_.smtp_url.empty() || cfg_.smtp_from.empty()) return {false, true, "email: alerts.smtp_url/smtp_from not set"};
    std::string password;
    if (!cfg_.smtp_username.empty()) {
      try {
        password = cfg_.smtp_password.value();  // commands that send check it at start (check_alert_secrets)
      } catch (const std::exception& e) {
        return {false, false, std::string("email: ") + e.what()};
      }
    }
    // One connection for the pass: the handle (and the connection it caches) is kept while its
    // sessions end cleanly; curl_easy_reset keeps the connection, only the options go.
    if (smtp_ == nullptr) smtp_ = curl_easy_init();
    if (smtp_ == nullptr) return {false, false, "curl_easy_init failed"};
    CURL* c = smtp_;
    curl_easy_reset(c);
    Upload up;
    up.data = alert_email_message(cfg_.smtp_from, to, subject, text, now, message_id);
    curl_slist* rcpt = curl_slist_append(nullptr, ("<" + to + ">").c_str());
    std::string from = "<" + cfg_.smtp_from + ">";
    channels::SmtpReplyCapture replies;
    curl_easy_setopt(c, CURLOPT_URL, cfg_.smtp_url.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg_.notify_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(cfg_.notify_timeout_ms, 3000L));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);  // the debug callback gets the server's replies
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, keep_reply);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &replies);
    const std::string ca = channels::resolve_ca_file(cfg_.smtp_ca_file);
    if (!ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
    if (!cfg_.smtp_username.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, cfg_.smtp_username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
    }
    if (cfg_.smtp_starttls && cfg_.smtp_url.rfind("smtp://", 0) == 0) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, nullptr);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, nullptr);
    curl_slist_free_all(rcpt);
    if (rc == CURLE_OK) return {true, false, ""};
    // A session that failed may have left the server mid-transaction: never reuse it.
    end_pass();
    std::string err = "email: " + std::string(curl_easy_strerror(rc)) + (status ? " (SMTP " + std::to_string(status) + ")" : "");
    if (!replies.explaining(status).empty()) err += "; reply: " + replies.explaining(status);
    if (channels::is_certificate_failure(static_cast<int>(rc))) {
      err += "; the relay's certificate did not verify: set alerts.smtp_ca_file to the CA that signed it";
    }
    // SMTP 5xx replies are permanent (RFC 5321 section 4.2.1), 4xx transient.
    return {false, status >= 500 && status < 600, err};
  }

  void end_pass() override {
    if (smtp_ != nullptr) curl_easy_cleanup(smtp_);  // QUIT, then the connection closes
    smtp_ = nullptr;
  }

  ~CurlAlertSink() override { end_pass(); }
  CurlAlertSink(const CurlAlertSink&) = delete;
  CurlAlertSink& operator=(const CurlAlertSink&) = delete;

 private:
  AlertsConfig cfg_;
  CURL* smtp_ = nullptr;  ///< kept for one pass (end_pass)
};

}  // namespace

std::unique_ptr<AlertSink> make_curl_alert_sink(const AlertsConfig& cfg) { return std::make_unique<CurlAlertSink>(cfg); }

std::string alert_message_id(std::int64_t notification_id, const std::string& from, Millis now) {
  auto at = from.rfind('@');
  std::string domain = at == std::string::npos || at + 1 == from.size() ? "daybreak.invalid" : from.substr(at + 1);
  domain.erase(std::remove_if(domain.begin(), domain.end(),
                              [](char ch) { return static_cast<unsigned char>(ch) <= 0x20 || ch == '<' || ch == '>'; }),
               domain.end());
  if (notification_id > 0) return "<daybreak-alert." + std::to_string(notification_id) + "@" + domain + ">";
  static std::atomic<std::uint64_t> counter{0};
  return "<daybreak-alert.direct." + std::to_string(now) + "." + std::to_string(::getpid()) + "." +
         std::to_string(++counter) + "@" + domain + ">";
}

std::string alert_email_message(const std::string& from, const std::string& to, const std::string& subject,
                                const std::string& text, Millis now, const std::string& message_id) {
  return "Date: " + channels::rfc5322_date(now) + "\r\nFrom: <" + from + ">\r\nTo: <" + to +
         ">\r\nSubject: " + channels::encode_header_text(subject, 9) + "\r\nMessage-ID: " + message_id +
         "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
         crlf(text);
}

NotifyStats deliver_notifications(store::Db& db, const AlertsConfig& cfg, AlertSink& sink, Millis now, int tries_now,
                                  spdlog::logger* log, int limit) {
  NotifyStats st;
  for (const auto& n : store::NotificationListDue(db, now, limit)) {
    PostResult res;
    int attempts = n.attempts;
    for (int t = 0; t < std::max(1, tries_now); ++t) {
      ++attempts;
      if (n.sink == "webhook") {
        auto hash = n.target.rfind('#');
        std::string lname = hash == std::string::npos ? n.target : n.target.substr(0, hash);
        std::size_t idx = hash == std::string::npos ? 0 : static_cast<std::size_t>(std::strtoul(n.target.c_str() + hash + 1, nullptr, 10));
        auto lit = std::find_if(cfg.chain.begin(), cfg.chain.end(), [&](const AlertLevel& l) { return l.name == lname; });
        if (lit == cfg.chain.end() || idx >= lit->webhooks.size()) {
          res = {false, true, "webhook " + n.target + " is no longer configured"};
        } else {
          try {
            res = sink.post_webhook(lit->webhooks[idx].value(), n.body);
          } catch (const std::exception& e) {  // webhook_env unset or webhook_file unreadable: retry later
            res = {false, false, "webhook " + n.target + ": " + e.what()};
          }
        }
      } else {
        json b = json::parse(n.body, nullptr, false);
        if (!b.is_object()) {
          res = {false, true, "email body is not JSON"};
        } else {
          res = sink.send_email(n.target, b.value("subject", std::string("[daybreak] alert")), b.value("text", std::string()), now,
                                alert_message_id(n.notification_id, cfg.smtp_from, now));
        }
      }
      if (res.ok || res.permanent) break;
      if (t + 1 < tries_now) std::this_thread::sleep_for(std::chrono::milliseconds(200 * (t + 1)));  // short pause between immediate retries
    }
    if (res.ok) {
      db.write_tx([&] { store::NotificationMarkSent(db, n.notification_id, attempts, now); });
      ++st.sent;
      if (log) log->info("alert #{} {}: {} notification to {} sent", n.alert_id, n.event, n.sink, n.sink == "email" ? n.target : n.target);
      continue;
    }
    bool give_up = res.permanent || attempts >= cfg.notify_max_attempts;
    Millis backoff = std::min<Millis>(cfg.notify_retry_base_ms << std::min(attempts - 1, 20), 300'000);
    db.write_tx([&] { store::NotificationMarkFailed(db, n.notification_id, attempts, res.error, now + backoff, give_up, now); });
    if (give_up) {
      ++st.gave_up;
      if (log) log->error("alert #{} {}: gave up on the {} notification to {} after {} attempt(s): {}", n.alert_id, n.event, n.sink, n.target, attempts, res.error);
    } else {
      ++st.retry_later;
      if (log) log->warn("alert #{} {}: {} notification to {} failed ({}); retrying in {} s", n.alert_id, n.event, n.sink, n.target, res.error, backoff / 1000);
    }
  }
  sink.end_pass();
  return st;
}

struct AlertNotifier::Impl {
  std::string db_path;
  AlertsConfig cfg;
  const Clock& clock;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<AlertSink> sink;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool woken = false;
  std::thread thread;
  struct Direct {
    std::string event, rule, subject, message;
    Millis at = 0;
    int attempts = 0;
  };
  std::deque<Direct> direct;  ///< under mu

  /// Posts the queued direct notifications; failed ones stay for the next second.
  void post_direct_pending() {
    std::deque<Direct> todo;
    {
      std::lock_guard g(mu);
      todo.swap(direct);
    }
    if (cfg.chain.empty()) return;
    const auto& level = cfg.chain.front();
    std::deque<Direct> again;
    for (auto& d : todo) {
      ++d.attempts;
      bool ok = true;
      std::string error;
      for (const auto& url : level.webhooks) {
        PostResult r;
        try {
          r = sink->post_webhook(url.value(), slack_body(d.event, 0, d.rule, d.subject, d.message, 0, level.name, d.at));
        } catch (const std::exception& e) {
          r = {false, false, e.what()};
        }
        if (!r.ok) ok = false, error = r.error;
      }
      for (const auto& to : level.emails) {
        auto r = sink->send_email(to, email_subject(d.event, 0, d.rule, d.subject),
                                  email_text(d.event, 0, d.rule, d.subject, d.message, 0, level.name, d.at), clock.now(),
                                  alert_message_id(0, cfg.smtp_from, clock.now()));
        if (!r.ok) ok = false, error = r.error;
      }
      if (ok) {
        if (log) log->info("direct alert {} {} {}: sent to level {}", d.event, d.rule, d.subject, level.name);
      } else if (d.attempts < cfg.notify_max_attempts) {
        again.push_back(d);
      } else if (log) {
        log->error("direct alert {} {} {}: gave up after {} attempt(s): {}", d.event, d.rule, d.subject, d.attempts, error);
      }
    }
    sink->end_pass();
    std::lock_guard g(mu);
    for (auto& d : again) direct.push_front(std::move(d));
  }

  Impl(std::string p, AlertsConfig c, const Clock& cl, std::shared_ptr<spdlog::logger> l, std::unique_ptr<AlertSink> s)
      : db_path(std::move(p)), cfg(std::move(c)), clock(cl), log(std::move(l)), sink(std::move(s)) {}

  void loop() {
    std::unique_ptr<store::Db> db;
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      post_direct_pending();  // first, and without the database: it may be what is failing
      try {
        if (!db) db = std::make_unique<store::Db>(db_path, store::OpenOptions{false, false, 5000});
        deliver_notifications(*db, cfg, *sink, clock.now(), 1, log.get());
      } catch (const std::exception& e) {
        if (log) log->warn("alert sender: {}", e.what());
        db.reset();  // reopen next time: the failure may have been the connection
      }
      lock.lock();
      clock.wait_until(lock, cv, clock.now() + 1000, [&] { return stopping || woken; });
      woken = false;
    }
  }
};

AlertNotifier::AlertNotifier(std::string db_path, AlertsConfig cfg, const Clock& clock, std::shared_ptr<spdlog::logger> log,
                             std::unique_ptr<AlertSink> sink) {
  if (!sink) sink = make_curl_alert_sink(cfg);
  impl_ = std::make_unique<Impl>(std::move(db_path), std::move(cfg), clock, std::move(log), std::move(sink));
}

AlertNotifier::~AlertNotifier() { stop(); }

void AlertNotifier::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void AlertNotifier::wake() {
  std::lock_guard g(impl_->mu);
  impl_->woken = true;
  impl_->cv.notify_all();
}

void AlertNotifier::post_direct(const std::string& event, const std::string& rule, const std::string& subject,
                                const std::string& message) {
  {
    std::lock_guard g(impl_->mu);
    impl_->direct.push_back({event, rule, subject, message, impl_->clock.now(), 0});
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

void AlertNotifier::stop() {
  {
    std::lock_guard g(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace daybreak::engine
