// `daybreak alerts list|show ID|ack ID --reason R|check`.
//
// `check` is what cron runs every minute (cron/daybreak.crontab): it evaluates the planning
// rules (silent days, capacity shortfall), evaluates the live rules from the ledger for runs no
// live dispatch owns (a dispatch evaluates its own runs every second), escalates unacknowledged
// alerts, and posts queued notifications with bounded retries, so alerts keep escalating and
// reaching people after dispatch has exited or died. With [database] url, plan_missing asks the
// PostgreSQL ledger whether the next day is published (app/schedule.hpp) and content_held is
// left to the dispatch host evaluating it there (store::PgContentHeldReader).
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/commands.hpp"
#include "app/plan.hpp"
#include "app/schedule.hpp"
#include "domain/time.hpp"
#include "engine/alerts.hpp"
#include "engine/live.hpp"
#include "store/alerts.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

json alert_json(const store::Alert& a, const AlertsConfig& cfg) {
  std::string lname = a.level >= 0 && static_cast<std::size_t>(a.level) < cfg.chain.size()
                          ? cfg.chain[static_cast<std::size_t>(a.level)].name
                          : "";
  return {{"alert_id", a.alert_id},
          {"rule", a.rule},
          {"subject", a.subject},
          {"state", a.state},
          {"level", a.level},
          {"level_name", lname},
          {"message", a.message},
          {"fired_at", format_instant(a.fired_at)},
          {"fired_at_ms", a.fired_at},
          {"updated_at", format_instant(a.updated_at)},
          {"resolved_at", a.resolved_at ? json(format_instant(*a.resolved_at)) : json(nullptr)},
          {"acknowledged_by", a.acknowledged_by ? json(*a.acknowledged_by) : json(nullptr)},
          {"acknowledged_at", a.acknowledged_at ? json(format_instant(*a.acknowledged_at)) : json(nullptr)}};
}

json notification_json(const store::AlertNotification& n) {
  return {{"notification_id", n.notification_id},
          {"event", n.event},
          {"level", n.level},
          {"sink", n.sink},
          {"target", n.sink == "email" ? mask_address(n.target) : n.target},
          {"attempts", n.attempts},
          {"created_at", format_instant(n.created_at)},
          {"sent_at", n.sent_at ? json(format_instant(*n.sent_at)) : json(nullptr)},
          {"failed_at", n.failed_at ? json(format_instant(*n.failed_at)) : json(nullptr)},
          {"next_attempt_at", format_instant(n.next_attempt_at)},
          {"last_error", n.last_error ? json(*n.last_error) : json(nullptr)}};
}

void print_alert_line(const store::Alert& a, const std::string& tz) {
  std::string ack = a.acknowledged_by ? "ack " + *a.acknowledged_by : "-";
  std::printf("%6lld  %-8s  %5d  %-19s  %-16s  %-25s  %-14s  %s\n", static_cast<long long>(a.alert_id), a.state.c_str(), a.level,
              a.rule.c_str(), a.subject.c_str(), format_instant(a.fired_at, tz).c_str(), ack.c_str(), a.message.c_str());
}

std::int64_t parse_id(const std::string& s) {
  try {
    std::size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos == s.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw UsageError("expected an alert id (a positive number), got \"" + s + "\"");
}

int run_check(const AppContext& ctx) {
  check_alert_secrets(ctx.cfg.alerts);  // it sends: an unreadable webhook/SMTP secret is exit 3, at once
  store::Db db(ctx.cfg.database_path);
  const Millis now = ctx.clock->now();
  engine::AlertEngine eng(ctx.cfg.alerts);
  std::vector<engine::AlertChange> changes;

  // Planning rules: the next delivery day (21:30 IST on D-1 until the 06:00 slot of D).
  auto add = [&](std::vector<engine::AlertChange> c) { changes.insert(changes.end(), c.begin(), c.end()); };
  add(eng.evaluate_store(db, {default_delivery_date(ctx.cfg, now)}, now));
  // The schedule's rule: the next day not planned by schedule.plan_deadline, and again at
  // schedule.plan_recheck; event alerts (night_missed, nightly_failed) of days that are over.
  // With [database] url it asks PostgreSQL whether the day is published; when PostgreSQL does
  // not answer, the rule's alerts stay as they are this minute (neither raised nor resolved).
  std::optional<std::string> plan_missing_unknown;
  try {
    add(eng.evaluate_plan_missing(db, plan_missing_conditions(db, ctx.cfg, now), now));
  } catch (const PlanMissingUnknown& e) {
    plan_missing_unknown = e.what();
    ctx.log->warn("{}", e.what());
  }
  if (auto today = local_date(now, ctx.cfg.default_timezone)) {
    add(eng.expire_events(db, format_date(*today), now));
    // content_held: yesterday on. With [database] url the held rows are in PostgreSQL, not in
    // this file (its deliveries are only the plan), and the rule is a dispatch's there (the host
    // holding its lock): evaluated here it would resolve that alert every minute.
    if (ctx.cfg.database_url.empty()) add(eng.evaluate_held(db, format_date(add_days(*today, -1)), now));
  }

  // Live rules for runs nobody is dispatching. A live dispatch (an unexpired lease on any run)
  // evaluates its runs itself every second, with breaker states only it knows: leave it alone.
  // With [database] url the runs are dispatched from PostgreSQL, and their live alerts in this
  // file are a dispatch there's: this file's runs (the plan, never sent from here) would resolve
  // them at once, so only escalation runs.
  const bool ledger_elsewhere = !ctx.cfg.database_url.empty();
  bool dispatch_alive = false;
  std::set<std::int64_t> ids;
  for (const auto& r : store::RunListActive(db, now - 6 * 3'600'000LL, now + 600'000)) {
    if (r.lease_until && *r.lease_until > now && r.owner) dispatch_alive = true;
    if (r.state == "running" || r.window_start <= now) ids.insert(r.run_id);
  }
  std::size_t live_runs = 0;
  if (!dispatch_alive && !ledger_elsewhere) {
    // Runs of firing alerts too, so an alert on a run that has since closed resolves.
    for (const auto& a : store::AlertListFiring(db)) {
      if (a.subject.rfind("run:", 0) == 0) {
        try {
          ids.insert(std::stoll(a.subject.substr(4)));
        } catch (const std::exception&) {
        }
      }
    }
    std::vector<std::int64_t> v(ids.begin(), ids.end());
    live_runs = v.size();
    engine::LiveSnapshot snap = engine::snapshot_from_ledger(db, v, ctx.cfg, now);
    add(eng.evaluate(db, snap, now));  // escalates too
  } else {
    add(eng.escalate(db, now));
  }

  auto sink = engine::make_curl_alert_sink(ctx.cfg.alerts);
  // Up to 3 tries each now; what still fails is retried by the next minute's check.
  engine::NotifyStats st = engine::deliver_notifications(db, ctx.cfg.alerts, *sink, now, 3, ctx.log.get());
  std::int64_t pending = store::NotificationCountPending(db);
  std::int64_t firing = store::AlertCountFiring(db);

  if (ctx.json) {
    json cj = json::array();
    for (const auto& c : changes) {
      cj.push_back({{"change", std::string(engine::to_string(c.kind))}, {"alert_id", c.alert_id}, {"rule", c.rule},
                    {"subject", c.subject}, {"level", c.level}, {"message", c.message}});
    }
    print_json({{"at", format_instant(now)},
                {"dispatch_alive", dispatch_alive},
                {"live_runs_evaluated", live_runs},
                {"changes", cj},
                {"firing", firing},
                {"plan_missing_unknown", plan_missing_unknown ? json(*plan_missing_unknown) : json(nullptr)},
                {"notifications", {{"sent", st.sent}, {"retry_later", st.retry_later}, {"gave_up", st.gave_up}, {"pending", pending}}}});
  } else {
    for (const auto& c : changes) {
      if (c.kind == engine::AlertChange::Kind::updated) continue;
      std::cout << "alert #" << c.alert_id << " " << engine::to_string(c.kind) << ": " << c.rule << " " << c.subject << ": "
                << c.message << "\n";
    }
    std::cout << firing << " alert(s) firing; notifications: " << st.sent << " sent, " << st.retry_later << " to retry, "
              << st.gave_up << " given up, " << pending << " pending\n";
  }
  return kExitOk;
}

int raise_or_clear(const AppContext& ctx, bool raise, const std::string& rule, const std::string& subject,
                   const std::string& message) {
  if (rule != "nightly_failed" && rule != "night_missed" && rule != "whatsapp_account_error") {
    throw UsageError("rule: \"" + rule + "\" is not an event rule (nightly_failed, night_missed, whatsapp_account_error)");
  }
  const Millis now = ctx.clock->now();
  engine::AlertEngine eng(ctx.cfg.alerts);
  auto sink = engine::make_curl_alert_sink(ctx.cfg.alerts);
  std::optional<engine::AlertChange> change;
  try {
    store::Db db(ctx.cfg.database_path);
    if (raise) {
      change = eng.raise_event(db, {rule, subject, message}, now);
    } else {
      change = eng.clear_event(db, rule, subject, message, now);
    }
    engine::deliver_notifications(db, ctx.cfg.alerts, *sink, now, 3, ctx.log.get());
  } catch (const store::StoreError& e) {
    if (!raise) throw;
    // The ledger cannot hold the alert (the failure may be why the night failed): tell the first
    // level of the chain directly, once, and still fail with the database's exit code.
    ctx.log->error("cannot record alert {} {}: {}; notifying the first level directly", rule, subject, e.what());
    if (!ctx.cfg.alerts.chain.empty()) {
      const auto& l = ctx.cfg.alerts.chain.front();
      const std::string body = engine::slack_body("fired", 0, rule, subject, message + " (not recorded: " + e.what() + ")", 0, l.name, now);
      for (const auto& url : l.webhooks) sink->post_webhook(url.value(), body);
      for (const auto& to : l.emails) {
        sink->send_email(to, "[daybreak] " + rule + " " + subject, message, now, engine::alert_message_id(0, ctx.cfg.alerts.smtp_from, now));
      }
      sink->end_pass();
    }
    throw;
  }
  if (ctx.json) {
    print_json({{"rule", rule},
                {"subject", subject},
                {"change", change ? nlohmann::json(std::string(engine::to_string(change->kind))) : nlohmann::json(nullptr)},
                {"alert_id", change ? nlohmann::json(change->alert_id) : nlohmann::json(nullptr)}});
  } else if (change) {
    std::cout << "alert #" << change->alert_id << " " << engine::to_string(change->kind) << ": " << rule << " " << subject << "\n";
  } else {
    std::cout << "no firing " << rule << " alert for " << subject << "\n";
  }
  return kExitOk;
}

}  // namespace

void add_alerts_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* alerts = app.add_subcommand("alerts", "Alerts: list, show, acknowledge, and the cron check (escalation, sending)");
  alerts->require_subcommand(1);
  alerts->fallthrough();

  auto all = std::make_shared<bool>(false);
  auto limit = std::make_shared<int>(50);
  auto* list = alerts->add_subcommand("list", "Firing alerts (--all: the most recent in any state)");
  list->fallthrough();
  list->add_flag("--all", *all, "Include resolved alerts");
  list->add_option("--limit", *limit, "With --all: how many (default 50)")->check(CLI::Range(1, 100000));
  list->callback([all, limit, &g, &action] {
    action = [all, limit, &g] {
      auto ctx = make_context(g, "daybreak");
      store::Db db(ctx.cfg.database_path);
      auto rows = *all ? store::AlertListRecent(db, *limit) : store::AlertListFiring(db);
      if (ctx.json) {
        for (const auto& a : rows) print_json(alert_json(a, ctx.cfg.alerts));
        return kExitOk;
      }
      if (rows.empty()) {
        std::cout << (*all ? "no alerts\n" : "no alerts firing\n");
        return kExitOk;
      }
      std::printf("%6s  %-8s  %5s  %-19s  %-16s  %-25s  %-14s  %s\n", "id", "state", "level", "rule", "subject", "fired",
                  "acknowledged", "message");
      for (const auto& a : rows) print_alert_line(a, ctx.cfg.default_timezone);
      std::fflush(stdout);
      return kExitOk;
    };
  });

  auto show_id = std::make_shared<std::string>();
  auto* show = alerts->add_subcommand("show", "One alert with its notifications");
  show->fallthrough();
  show->add_option("alert_id", *show_id, "Alert id")->required();
  show->callback([show_id, &g, &action] {
    action = [show_id, &g] {
      std::int64_t id = parse_id(*show_id);
      auto ctx = make_context(g, "daybreak");
      store::Db db(ctx.cfg.database_path);
      auto a = store::AlertGet(db, id);
      if (!a) throw CheckFailed("alert " + std::to_string(id) + " does not exist (see daybreak alerts list --all)");
      json j = alert_json(*a, ctx.cfg.alerts);
      j["notifications"] = json::array();
      for (const auto& n : store::NotificationListForAlert(db, id)) j["notifications"].push_back(notification_json(n));
      if (ctx.json) {
        print_json(j);
        return kExitOk;
      }
      std::cout << "alert #" << id << "  " << a->rule << "  " << a->subject << "  " << a->state << ", level " << a->level
                << (j["level_name"].get<std::string>().empty() ? "" : " (" + j["level_name"].get<std::string>() + ")") << "\n"
                << "  " << a->message << "\n"
                << "  fired " << format_instant(a->fired_at, ctx.cfg.default_timezone) << ", updated "
                << format_instant(a->updated_at, ctx.cfg.default_timezone);
      if (a->resolved_at) std::cout << ", resolved " << format_instant(*a->resolved_at, ctx.cfg.default_timezone);
      if (a->acknowledged_by) {
        std::cout << "\n  acknowledged by " << *a->acknowledged_by << " at "
                  << format_instant(a->acknowledged_at.value_or(0), ctx.cfg.default_timezone);
      }
      std::cout << "\n  notifications:\n";
      for (const auto& n : j["notifications"]) {
        std::cout << "    " << n["event"].get<std::string>() << " level " << n["level"] << " " << n["sink"].get<std::string>()
                  << " " << n["target"].get<std::string>() << ": "
                  << (n["sent_at"].is_string() ? "sent " + n["sent_at"].get<std::string>()
                      : n["failed_at"].is_string() ? "gave up (" + n["last_error"].get<std::string>() + ")"
                                                    : "pending, " + std::to_string(n["attempts"].get<int>()) + " attempt(s)")
                  << "\n";
      }
      return kExitOk;
    };
  });

  auto ack_id = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  auto* ack = alerts->add_subcommand("ack", "Acknowledge a firing alert: stops its escalation (audited)");
  ack->fallthrough();
  ack->add_option("alert_id", *ack_id, "Alert id")->required();
  ack->add_option("--reason", *reason, "What you are doing about it (recorded)")->required();
  ack->callback([ack_id, reason, &g, &action] {
    action = [ack_id, reason, &g] {
      std::int64_t id = parse_id(*ack_id);
      if (reason->empty()) throw UsageError("--reason: must not be empty");
      auto ctx = make_context(g, "daybreak");
      store::Db db(ctx.cfg.database_path);
      engine::AlertChange c;
      try {
        c = engine::acknowledge_alert(db, ctx.cfg.alerts, id, current_actor(), current_sudo_user(), *reason, ctx.clock->now());
      } catch (const std::invalid_argument& e) {
        throw CheckFailed(e.what());
      }
      auto a = store::AlertGet(db, id);
      if (ctx.json) {
        print_json(alert_json(*a, ctx.cfg.alerts));
      } else {
        std::cout << "alert #" << id << " (" << c.rule << " " << c.subject << ") acknowledged by "
                  << a->acknowledged_by.value_or("?") << "; escalation stopped at level " << a->level << "\n";
      }
      return kExitOk;
    };
  });

  // raise / clear: event alerts from scripts (daybreak-nightly raises nightly_failed when a step
  // fails and clears it when the night succeeds). Notifications go out at once, as in check.
  auto ev_rule = std::make_shared<std::string>();
  auto ev_subject = std::make_shared<std::string>();
  auto ev_message = std::make_shared<std::string>();
  auto* raise = alerts->add_subcommand("raise", "Fire an event alert (night_missed, nightly_failed, whatsapp_account_error) and notify at once");
  raise->fallthrough();
  raise->add_option("rule", *ev_rule, "nightly_failed, night_missed or whatsapp_account_error")->required();
  raise->add_option("--subject", *ev_subject, "What it is about, e.g. date:2026-12-07")->required();
  raise->add_option("--message", *ev_message, "One line saying what happened and what to do")->required();
  raise->callback([ev_rule, ev_subject, ev_message, &g, &action] {
    action = [ev_rule, ev_subject, ev_message, &g] {
      auto ctx = make_context(g, "daybreak");
      return raise_or_clear(ctx, true, *ev_rule, *ev_subject, *ev_message);
    };
  });
  auto* clear = alerts->add_subcommand("clear", "Resolve a firing event alert (nightly_failed, night_missed, whatsapp_account_error) and notify at once");
  clear->fallthrough();
  clear->add_option("rule", *ev_rule, "nightly_failed, night_missed or whatsapp_account_error")->required();
  clear->add_option("--subject", *ev_subject, "What it is about, e.g. date:2026-12-07")->required();
  clear->add_option("--message", *ev_message, "Why it is over (default: cleared: <its message>)");
  clear->callback([ev_rule, ev_subject, ev_message, &g, &action] {
    action = [ev_rule, ev_subject, ev_message, &g] {
      auto ctx = make_context(g, "daybreak");
      return raise_or_clear(ctx, false, *ev_rule, *ev_subject, *ev_message);
    };
  });

  auto* check = alerts->add_subcommand("check", "Cron, every minute: planning rules, live rules without a dispatch, escalation, sending");
  check->fallthrough();
  check->callback([&g, &action] {
    action = [&g] {
      auto ctx = make_context(g, "daybreak");
      return run_check(ctx);
    };
  });
}

}  // namespace daybreak
