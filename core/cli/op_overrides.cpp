// Overrides: `daybreak pause|resume [--channel C | --run ID | --sender ID]`,
// `cancel --run ID | --delivery ID`, `resend --delivery ID`, `assign --advisor ID --date D --content ID`.
// With [database] url, assign changes the SQLite file and, in one PostgreSQL transaction inside
// the file's, the assignment and pending delivery of the day there (refused, nothing changed,
// when that delivery is already claimed or final there).
// Each validates everything first (unknown ids, bad dates and conflicting flags are usage errors,
// exit 2, nothing changed), then writes the change, the delivery_changes notes a running dispatch
// polls, and the audit row in one transaction. --dry-run runs the same transaction and rolls back.
#include <algorithm>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/catalog.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

struct PauseOptions {
  std::string channel;
  std::int64_t run_id = 0;
  std::string sender;
  std::string reason;
  bool dry_run = false;
};

int run_pause(const GlobalOptions& g, const PauseOptions& o, bool pause) {
  ops::require_reason(o.reason);
  if (!o.channel.empty()) ops::parse_channel_arg("--channel", o.channel);  // before opening anything
  auto env = ops::open_ledger_env(g);
  ops::PauseTarget t{o.channel, o.run_id, o.sender};
  std::vector<std::string> known;
  for (const auto& sc : env.ctx.cfg.senders) known.push_back(sc.id);
  nlohmann::json out = env.pg ? ops::set_pause_target_pg(*env.pg, t, known, pause, o.reason, ops::cli_actor(), env.now, o.dry_run)
                              : ops::set_pause_target(*env.db, t, known, pause, o.reason, ops::cli_actor(), env.now, o.dry_run);
  const bool was_on = out["was_paused"].get<bool>();
  std::string what = !o.channel.empty() ? "channel " + o.channel
                     : o.run_id != 0    ? "run " + std::to_string(o.run_id)
                     : !o.sender.empty() ? "sender " + o.sender
                                         : "all sending";
  std::string human = (o.dry_run ? "dry run: would " + std::string(pause ? "pause " : "resume ") : std::string(pause ? "paused " : "resumed ")) +
                      what + (was_on == pause ? " (it already was)" : "") +
                      (o.dry_run ? "" : "; a running dispatch applies it within a second");
  ops::emit(env, out, human);
  return kExitOk;
}

struct CancelOptions {
  std::int64_t run_id = 0;
  std::int64_t delivery_id = 0;
  std::string reason;
  bool dry_run = false;
};

int run_cancel(const GlobalOptions& g, const CancelOptions& o, bool has_run, bool has_delivery) {
  if (has_run == has_delivery) throw UsageError("cancel: give exactly one of --run ID or --delivery ID");
  ops::require_reason(o.reason);
  auto env = ops::open_ledger_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  nlohmann::json out = {{"command", "cancel"}, {"dry_run", o.dry_run}};
  std::ostringstream human;
  if (has_delivery) {
    out = env.pg ? ops::cancel_delivery_pg(*env.pg, tz, o.delivery_id, o.reason, ops::cli_actor(), env.now, o.dry_run)
                 : ops::cancel_delivery(*env.db, tz, o.delivery_id, o.reason, ops::cli_actor(), env.now, o.dry_run);
    human << (o.dry_run ? "dry run: would cancel" : "cancelled") << " delivery " << o.delivery_id << " (was "
          << out["before"].get<std::string>() << ")";
  } else {
    out = env.pg ? ops::cancel_run_pg(*env.pg, o.run_id, o.reason, ops::cli_actor(), env.now, o.dry_run)
                 : ops::cancel_run(*env.db, o.run_id, o.reason, ops::cli_actor(), env.now, o.dry_run);
    human << (o.dry_run ? "dry run: would cancel" : "cancelled") << " run " << o.run_id << " (" << out["date"].get<std::string>()
          << ", was " << out["before"].get<std::string>() << "): " << out["cancelled"] << " deliveries cancelled";
    if (out["in_flight"].get<std::int64_t>() > 0) {
      human << ", " << out["in_flight"] << " already at the provider (their outcome is still recorded)";
    }
  }
  ops::emit(env, out, human.str());
  return kExitOk;
}

struct ResendOptions {
  std::int64_t delivery_id = 0;
  std::string reason;
  bool dry_run = false;
};

int run_resend(const GlobalOptions& g, const ResendOptions& o) {
  ops::require_reason(o.reason);
  auto env = ops::open_ledger_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  nlohmann::json out = env.pg ? ops::resend_delivery_pg(*env.pg, tz, o.delivery_id, o.reason, ops::cli_actor(), env.now, o.dry_run)
                              : ops::resend_delivery(*env.db, tz, o.delivery_id, o.reason, ops::cli_actor(), env.now, o.dry_run);
  std::ostringstream human;
  human << (o.dry_run ? "dry run: would resend" : "resent") << " delivery " << o.delivery_id << " (was "
        << out["before"].get<std::string>() << "): planned for now";
  if (out["run_reopened"].get<bool>()) human << "; run " << out["run_id"] << " reopened for the next dispatch";
  ops::emit(env, out, human.str());
  return kExitOk;
}

struct AssignOptions {
  std::string advisor_id;
  std::string date;
  std::string content_id;
  std::string reason;
  bool dry_run = false;
};

int run_assign(const GlobalOptions& g, const AssignOptions& o) {
  ops::require_reason(o.reason);
  std::string date = ops::parse_date_arg("--date", o.date);
  auto env = ops::open_env(g);
  auto& db = *env.db;
  const auto& tz = env.ctx.cfg.default_timezone;
  // With [database] url: PostgreSQL is reached before anything is written (nothing changes when
  // it does not answer), and the advisor's delivery of the day there follows as on the file.
  auto pg = ops::connect_pg_first(env.ctx.cfg, "assign");
  auto adv = store::AdvisorGet(db, o.advisor_id);
  if (!adv) throw UsageError("--advisor \"" + o.advisor_id + "\": no such advisor");
  auto c = store::ContentInfoGet(db, o.content_id);
  if (!c) throw UsageError("--content \"" + o.content_id + "\": no such content");
  if (c->content.withdrawn) throw UsageError("--content \"" + o.content_id + "\": withdrawn; it cannot be assigned");
  if ((!c->content.valid_from.empty() && date < c->content.valid_from) || (!c->content.valid_until.empty() && date > c->content.valid_until)) {
    throw UsageError("--content \"" + o.content_id + "\": not valid on " + date + " (valid " +
                     (c->content.valid_from.empty() ? "always" : c->content.valid_from) + " to " +
                     (c->content.valid_until.empty() ? "forever" : c->content.valid_until) + ")");
  }
  auto before_a = store::AssignmentGet(db, o.advisor_id, date);
  auto before_d = store::DeliveryInfoForAdvisorDate(db, o.advisor_id, date);
  if (before_d && (before_d->state == "sending" || is_final_state(*delivery_state_from_string(before_d->state)))) {
    throw UsageError("--advisor \"" + o.advisor_id + "\" --date " + date + ": delivery " + std::to_string(before_d->delivery_id) +
                     " is already " + before_d->state + "; use resend after the assignment, or choose another day");
  }
  // On PostgreSQL the day's delivery is the one dispatch sends: the same rule, checked there.
  std::optional<store::DeliveryInfo> before_pg;
  if (pg) {
    before_pg = pg->delivery_info_for_advisor_date(o.advisor_id, date);
    if (before_pg && (before_pg->state == "sending" || is_final_state(*delivery_state_from_string(before_pg->state)))) {
      throw UsageError("--advisor \"" + o.advisor_id + "\" --date " + date + ": delivery " + std::to_string(before_pg->delivery_id) +
                       " on the PostgreSQL ledger is already " + before_pg->state +
                       "; nothing changed; use resend after the assignment, or choose another day");
    }
    if (auto pc = pg->content_info_get(o.content_id); pc && pc->content.withdrawn) {
      throw UsageError("--content \"" + o.content_id + "\": withdrawn on the PostgreSQL ledger; it cannot be assigned");
    }
  }
  std::optional<std::int64_t> repointed, repointed_pg;
  store::AuditEntry audit;
  ops::change_both(db, pg.get(), o.dry_run, "assign", [&] {
    store::AssignmentUpsertParams p;
    p.assignment.advisor_id = o.advisor_id;
    p.assignment.date = date;
    p.assignment.content_id = o.content_id;
    p.assignment.source = Source::override_;
    p.assignment.reason = "operator override: " + o.reason;
    p.created_at = env.now;
    store::AssignmentUpsert(db, p);
    repointed = store::DeliveryRepointAdvisor(db, o.advisor_id, date, o.content_id, env.now);
    nlohmann::json before = {{"content_id", before_a ? nlohmann::json(before_a->content_id) : nlohmann::json(nullptr)},
                             {"source", before_a ? nlohmann::json(std::string(to_string(before_a->source))) : nlohmann::json(nullptr)}};
    nlohmann::json after = {{"content_id", o.content_id}, {"source", "override"}};
    if (before_d) before["delivery"] = ops::to_json(*before_d, tz);
    if (repointed) after["delivery"] = ops::to_json(*store::DeliveryInfoGet(db, *repointed), tz);
    audit = ops::audit_entry(env.now, "assignment:" + o.advisor_id + "/" + date, o.reason, before, after);
    store::AuditAppend(db, audit);
  }, [&] {
    // The same change on PostgreSQL (AssignmentUpsert, DeliveryRepointAdvisor), with the item
    // added there when the last publish did not have it yet.
    repointed_pg.reset();
    store::AuditEntry e = audit;
    nlohmann::json before = e.before.empty() ? nlohmann::json::object() : nlohmann::json::parse(e.before);
    nlohmann::json after = e.after.empty() ? nlohmann::json::object() : nlohmann::json::parse(e.after);
    before.erase("delivery");
    after.erase("delivery");
    if (pg->advisor_exists(o.advisor_id)) {
      pg->content_add_missing(*c);
      Assignment a;
      a.advisor_id = o.advisor_id;
      a.date = date;
      a.content_id = o.content_id;
      a.reason = "operator override: " + o.reason;
      pg->assignment_override(a, env.now);
      repointed_pg = pg->delivery_repoint_advisor(o.advisor_id, date, o.content_id, env.now);
    }
    // Pending when checked, claimed by a dispatch since: nothing changes anywhere.
    if (before_pg && !repointed_pg) {
      throw CheckFailed("delivery " + std::to_string(before_pg->delivery_id) +
                        " on the PostgreSQL ledger was claimed by dispatch meanwhile; nothing changed");
    }
    if (before_pg) before["delivery"] = ops::to_json(*before_pg, tz);
    if (repointed_pg) after["delivery"] = ops::to_json(*pg->delivery_info_get(*repointed_pg), tz);
    e.before = before.dump();
    e.after = after.dump();
    pg->audit_append(e);
  });
  nlohmann::json out = {{"command", "assign"},
                        {"advisor_id", o.advisor_id},
                        {"date", date},
                        {"content_id", o.content_id},
                        {"previous_content_id", before_a ? nlohmann::json(before_a->content_id) : nlohmann::json(nullptr)},
                        {"delivery_id", repointed ? nlohmann::json(*repointed) : nlohmann::json(nullptr)},
                        {"dry_run", o.dry_run}};
  std::ostringstream human;
  human << (o.dry_run ? "dry run: would assign " : "assigned ") << o.content_id << " to " << o.advisor_id << " for " << date
        << " (was " << (before_a ? before_a->content_id : std::string("nothing")) << ")";
  if (pg) {
    // Like send-now: delivery_id is PostgreSQL's (what dispatch sends), sqlite_delivery_id the file's.
    std::optional<bool> confirmed;
    if (repointed_pg && !o.dry_run) confirmed = ops::await_dispatch_polls(*pg, env.now);
    out["ledger"] = "postgresql";
    out["sqlite_delivery_id"] = out["delivery_id"];
    out["delivery_id"] = repointed_pg ? nlohmann::json(*repointed_pg) : nlohmann::json(nullptr);
    out["dispatch_confirmed"] = confirmed ? nlohmann::json(*confirmed) : nlohmann::json(nullptr);
    human << (repointed_pg ? "; pending delivery " + std::to_string(*repointed_pg) + " on PostgreSQL re-pointed"
                           : "; no delivery of the day on PostgreSQL yet (the day's publish carries the assignment)");
    if (confirmed == false) human << "\nWARNING: a dispatch holding a run did not confirm within 10 s that it reloaded the delivery; check `daybreak status`";
  } else {
    human << (repointed ? "; pending delivery " + std::to_string(*repointed) + " re-pointed" : "; no delivery planned yet");
  }
  ops::emit(env, out, human.str());
  return kExitOk;
}

}  // namespace

void add_override_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  for (bool pause : {true, false}) {
    auto o = std::make_shared<PauseOptions>();
    auto* sub = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Pause all sending, or one channel, run or sender (a running dispatch stops within a second)"
                                         : "Resume all sending, or one channel, run or sender");
    sub->fallthrough();
    sub->add_option("--channel", o->channel, "Only this channel: whatsapp, email or webhook");
    sub->add_option("--run", o->run_id, "Only this run (its claimed but unsent rows wait too)");
    sub->add_option("--sender", o->sender, "Only this sender (a [[senders]] id; its rows move to the channel's other senders)");
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, pause, &g, &action] { action = [o, pause, &g] { return run_pause(g, *o, pause); }; });
  }
  {
    auto o = std::make_shared<CancelOptions>();
    auto* sub = app.add_subcommand("cancel", "Cancel a run (every delivery not yet at the provider) or one delivery");
    sub->fallthrough();
    auto* r = sub->add_option("--run", o->run_id, "Run id");
    auto* d = sub->add_option("--delivery", o->delivery_id, "Delivery id");
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, r, d, &g, &action] {
      bool has_run = r->count() > 0, has_delivery = d->count() > 0;
      action = [o, has_run, has_delivery, &g] { return run_cancel(g, *o, has_run, has_delivery); };
    });
  }
  {
    auto o = std::make_shared<ResendOptions>();
    auto* sub = app.add_subcommand("resend", "Send a final or dead delivery again, now (reopens its run when closed)");
    sub->fallthrough();
    sub->add_option("--delivery", o->delivery_id, "Delivery id")->required();
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, &g, &action] { action = [o, &g] { return run_resend(g, *o); }; });
  }
  {
    auto o = std::make_shared<AssignOptions>();
    auto* sub = app.add_subcommand("assign", "Change one advisor's content for a day (source override; a pending delivery follows)");
    sub->fallthrough();
    sub->add_option("--advisor", o->advisor_id, "Advisor id")->required();
    sub->add_option("--date", o->date, "Delivery day YYYY-MM-DD")->required();
    sub->add_option("--content", o->content_id, "Content id")->required();
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, &g, &action] { action = [o, &g] { return run_assign(g, *o); }; });
  }
}

}  // namespace daybreak
