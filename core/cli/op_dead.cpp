// Dead letters: `daybreak dead list|show|replay|dismiss`.
// A replay sends a dead delivery back to `planned`, due now (typically after `advisors update`
// fixed its address); possible_duplicate and the attempt history are kept. A dismissal leaves it
// dead and marks it dismissed so the list shows only what still needs a decision. Bulk by ids or
// by filter is one transaction: every id is checked first, and all of them change or none does.
// With [database] url every one of them reads and changes the PostgreSQL ledger (store::PgOperator).
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

struct FilterFlags {
  std::string date;
  std::int64_t run_id = 0;
  std::string channel;
  std::string error_code;
  std::string since;
  bool all = false;
  std::int64_t limit = 0;
  CLI::Option* run_opt = nullptr;
};

void add_filter_flags(CLI::App* sub, FilterFlags& f, bool with_limit) {
  sub->add_option("--date", f.date, "Delivery day YYYY-MM-DD");
  f.run_opt = sub->add_option("--run", f.run_id, "Run id");
  sub->add_option("--channel", f.channel, "Channel it died on: whatsapp, email or webhook");
  sub->add_option("--error", f.error_code, "Provider error code of any attempt (e.g. 131026), or held (content pulled or expired, never sent)");
  sub->add_option("--since", f.since, "Died at or after (YYYY-MM-DD or ISO-8601)");
  sub->add_flag("--all", f.all, "Include dismissed dead letters");
  if (with_limit) sub->add_option("--limit", f.limit, "At most this many rows")->check(CLI::NonNegativeNumber);
}

bool any_filter(const FilterFlags& f) {
  return !f.date.empty() || (f.run_opt && f.run_opt->count() > 0) || !f.channel.empty() || !f.error_code.empty() || !f.since.empty();
}

store::DeadFilter to_filter(const FilterFlags& f, const std::string& tz) {
  store::DeadFilter d;
  if (!f.date.empty()) d.date = ops::parse_date_arg("--date", f.date);
  if (f.run_opt && f.run_opt->count() > 0) d.run_id = f.run_id;
  if (!f.channel.empty()) d.channel = ops::parse_channel_arg("--channel", f.channel);
  d.error_code = f.error_code;
  if (!f.since.empty()) d.since = ops::parse_time_arg("--since", f.since, tz);
  d.include_dismissed = f.all;
  d.limit = f.limit;
  return d;
}

int run_list(const GlobalOptions& g, const FilterFlags& f) {
  auto env = ops::open_ledger_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  auto filter = to_filter(f, tz);
  if (filter.run_id && !(env.pg ? env.pg->run_get(*filter.run_id).has_value() : store::RunGet(*env.db, *filter.run_id).has_value())) {
    throw UsageError("--run " + std::to_string(*filter.run_id) + ": no such run");
  }
  std::int64_t n = 0;
  if (!env.ctx.json) std::cout << "delivery  run  date        advisor     channel   attempts  died at                    last error\n";
  auto each = [&](const store::DeliveryInfo& d) {
    ++n;
    if (env.ctx.json) {
      print_json(ops::to_json(d, tz));  // NDJSON: one line per dead letter, streamed
    } else {
      std::cout << d.delivery_id << "  " << d.run_id << "  " << d.date << "  " << d.advisor_id << "  " << d.channel << "  "
                << d.attempts << "  " << format_instant(d.updated_at, tz) << "  " << d.last_error.value_or("-")
                << (d.dismissed_at ? "  (dismissed)" : "") << "\n";
    }
  };
  if (env.pg) {
    env.pg->dead_list(filter, each);
  } else {
    store::DeadList(*env.db, filter, each);
  }
  if (!env.ctx.json) std::cout << n << " dead letter(s)\n";
  return kExitOk;
}

int run_show(const GlobalOptions& g, std::int64_t id) {
  auto env = ops::open_ledger_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  auto d = env.pg ? env.pg->delivery_info_get(id) : store::DeliveryInfoGet(*env.db, id);
  if (!d) throw UsageError("delivery " + std::to_string(id) + ": no such delivery");
  auto j = ops::to_json(*d, tz);
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& a : env.pg ? env.pg->attempts_for(id) : store::AttemptListForDelivery(*env.db, id)) {
    hist.push_back({{"attempt_no", a.attempt_no},
                    {"channel", a.channel},
                    {"sender", a.sender},
                    {"started_at", a.started_at},
                    {"started_at_text", format_instant(a.started_at, tz)},
                    {"finished_at", a.finished_at},
                    {"outcome", a.outcome},
                    {"error_code", a.error_code},
                    {"error_detail", a.error_detail},
                    {"provider_message_id", a.provider_message_id},
                    {"latency_ms", a.latency_ms}});
  }
  j["attempt_history"] = hist;
  if (env.ctx.json) {
    print_json(j);
    return kExitOk;
  }
  std::cout << "delivery " << d->delivery_id << " (run " << d->run_id << ", " << d->date << ", advisor " << d->advisor_id << ")\n"
            << "  state       " << d->state << (d->dismissed_at ? " (dismissed by " + d->dismissed_by.value_or("?") + ")" : "") << "\n"
            << "  content     " << d->content_id << " (" << d->source << ")\n"
            << "  channel     " << d->channel << " via " << d->sender << "\n"
            << "  planned     " << format_instant(d->planned_at, tz) << ", deadline " << format_instant(d->deadline_at, tz) << "\n"
            << "  attempts    " << d->attempts << (d->possible_duplicate ? " (possible duplicate)" : "") << "\n"
            << "  last error  " << d->last_error.value_or("-") << "\n";
  for (const auto& a : hist) {
    std::cout << "    #" << a["attempt_no"] << " " << a["started_at_text"].get<std::string>() << " " << a["channel"].get<std::string>()
              << "/" << a["sender"].get<std::string>() << " " << a["outcome"].get<std::string>();
    if (!a["error_code"].get<std::string>().empty()) std::cout << " " << a["error_code"].get<std::string>();
    if (!a["error_detail"].get<std::string>().empty()) std::cout << ": " << a["error_detail"].get<std::string>();
    std::cout << "\n";
  }
  return kExitOk;
}

struct BulkOptions {
  std::vector<std::int64_t> ids;
  FilterFlags filter;
  std::string reason;
  bool dry_run = false;
};

/// replay or dismiss, by ids or by filter, all in one transaction.
int run_bulk(const GlobalOptions& g, const BulkOptions& o, bool replay) {
  const std::string verb = replay ? "replay" : "dismiss";
  bool by_filter = any_filter(o.filter);
  if (o.ids.empty() && !by_filter) throw UsageError("dead " + verb + ": give delivery ids or at least one filter (--date, --run, --channel, --error, --since)");
  if (!o.ids.empty() && by_filter) throw UsageError("dead " + verb + ": give delivery ids or filters, not both");
  ops::require_reason(o.reason);
  auto env = ops::open_ledger_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  std::optional<store::DeadFilter> filter;
  if (by_filter) filter = to_filter(o.filter, tz);
  nlohmann::json out = env.pg ? ops::dead_change_pg(*env.pg, tz, o.ids, filter, replay, o.reason, ops::cli_actor(), env.now, o.dry_run)
                              : ops::dead_change(*env.db, tz, o.ids, filter, replay, o.reason, ops::cli_actor(), env.now, o.dry_run);
  const std::int64_t changed = out["count"].get<std::int64_t>();
  const std::size_t reopened = out["runs_reopened"].size();
  std::ostringstream human;
  human << (o.dry_run ? "dry run: would " + verb + " " : std::string(replay ? "replayed " : "dismissed ")) << changed << " dead letter(s)";
  if (replay && changed) human << "; planned for now";
  if (reopened > 0) human << "; " << reopened << " closed run(s) reopened for the next dispatch";
  ops::emit(env, out, human.str());
  return kExitOk;
}

}  // namespace

void add_dead_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* dead = app.add_subcommand("dead", "Dead letters: list, show, replay, dismiss");
  dead->require_subcommand(1);
  dead->fallthrough();
  {
    auto f = std::make_shared<FilterFlags>();
    auto* sub = dead->add_subcommand("list", "Dead deliveries not dismissed (NDJSON with --json)");
    sub->fallthrough();
    add_filter_flags(sub, *f, true);
    sub->callback([f, &g, &action] { action = [f, &g] { return run_list(g, *f); }; });
  }
  {
    auto id = std::make_shared<std::int64_t>(0);
    auto* sub = dead->add_subcommand("show", "A dead letter with its attempt history");
    sub->fallthrough();
    sub->add_option("delivery_id", *id, "Delivery id")->required();
    sub->callback([id, &g, &action] { action = [id, &g] { return run_show(g, *id); }; });
  }
  for (bool replay : {true, false}) {
    auto o = std::make_shared<BulkOptions>();
    auto* sub = dead->add_subcommand(replay ? "replay" : "dismiss",
                                     replay ? "Send dead letters again, now (by ids or by filter; all or none)"
                                            : "Mark dead letters dismissed; they stay dead (by ids or by filter; all or none)");
    sub->fallthrough();
    sub->add_option("delivery_id", o->ids, "Delivery ids");
    add_filter_flags(sub, o->filter, false);
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, replay, &g, &action] { action = [o, replay, &g] { return run_bulk(g, *o, replay); }; });
  }
}

}  // namespace daybreak
