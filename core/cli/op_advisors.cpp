// `daybreak advisors list|show|add|update|pause|resume|opt-in|opt-out`. add/update
// build an advisors.csv record from the flags and run it through the import's validator
// (domain/validate.hpp AdvisorValidator), so a hand edit obeys exactly the rules an import does
// and errors name the flag's field the same way. Changes are audited (addresses masked) in the
// same transaction. A pause also cancels the advisor's pending deliveries on the paused days, and
// an address change is what a dead-letter replay then uses.
//
// With [database] url (README "What speaks PostgreSQL, precisely") the change is made to the
// SQLite file exactly as without it, and to PostgreSQL in one transaction inside the file's (so
// either both change or neither; PostgreSQL is reached before anything is written): the advisor's
// rows there become the file's (PgOperator::advisor_put), a pause cancels its pending deliveries
// there on the paused days, its other pending deliveries there follow its channels and opt-ins
// (PgOperator::advisor_follow: kept, moved to the next opted-in channel, or cancelled when none
// is left), each noted for a running dispatch, which the command then waits for (at most 10 s),
// and the audit row goes to both ledgers.
#include <iostream>
#include <map>
#include <sstream>

#include "app/publish.hpp"
#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "domain/time.hpp"
#include "domain/validate.hpp"
#include "store/advisors.hpp"
#include "store/catalog.hpp"
#include "store/overrides.hpp"

namespace daybreak {
namespace {

nlohmann::json advisor_json(const store::AdvisorRow& r, bool mask) {
  const Advisor& a = r.advisor;
  nlohmann::json chans = nlohmann::json::array();
  for (const auto& c : r.channels) {
    chans.push_back({{"channel", std::string(to_string(c.channel))},
                     {"address", mask ? mask_address(c.address) : c.address},
                     {"opted_in", c.opted_in}});
  }
  std::vector<std::string> names;
  for (auto c : a.channels) names.emplace_back(to_string(c));
  return {{"advisor_id", a.advisor_id},
          {"name", a.name},
          {"tier", a.tier},
          {"timezone", a.timezone},
          {"slot", a.slot},
          {"channels", join_list(names, '|')},
          {"channel_rows", chans},
          {"opted_in", a.opted_in},
          {"language", a.language},
          {"topics", join_list(a.topics, ';')},
          {"paused_from", a.paused_from ? nlohmann::json(*a.paused_from) : nlohmann::json(nullptr)},
          {"paused_until", a.paused_until ? nlohmann::json(*a.paused_until) : nlohmann::json(nullptr)},
          {"updated_at", r.updated_at}};
}

store::AdvisorRow require_advisor(store::Db& db, const std::string& id) {
  auto a = store::AdvisorGet(db, id);
  if (!a) throw UsageError("advisor \"" + id + "\": no such advisor");
  return *a;
}

/// The file's pending deliveries of the advisor made to follow its channels as they are now
/// (store::DeliveryFollowAdvisorChannels), into the command's JSON and words.
void report_follow(const store::AdvisorFollowCounts& f, nlohmann::json& out, std::ostringstream& human) {
  out["deliveries_moved"] = f.moved;
  out["deliveries_cancelled_unreachable"] = f.cancelled;
  out["deliveries_reloaded"] = f.reloaded;
  if (!f.moved.empty()) human << "; " << f.moved.size() << " pending deliveries moved to another opted-in channel";
  if (!f.cancelled.empty()) human << "; " << f.cancelled.size() << " pending deliveries cancelled (no opted-in channel left)";
}

/// After the file's change: the advisor's pending deliveries there follow its channels (off a
/// channel it left, onto its new addresses: store::DeliveryFollowAdvisorChannels), and the audit
/// row (`before` → the advisor as it is now, with what moved) is written. Inside the file's
/// transaction; `after` and `audit` are what PostgreSQL's part then takes.
void follow_and_audit(store::Db& db, const std::string& advisor_id, const std::string& reason, Millis now, nlohmann::json before,
                      store::AdvisorFollowCounts& follow, std::optional<store::AdvisorRow>& after, store::AuditEntry& audit) {
  follow = store::DeliveryFollowAdvisorChannels(db, advisor_id, now);
  after = store::AdvisorGet(db, advisor_id);
  auto a = advisor_json(*after, true);
  a["deliveries_moved"] = follow.moved;
  a["deliveries_cancelled_unreachable"] = follow.cancelled;
  audit = ops::audit_entry(now, "advisor:" + advisor_id, reason, std::move(before), std::move(a));
  store::AuditAppend(db, audit);
}

/// What PostgreSQL's pending deliveries of the advisor did (with url): `cancelled` by the pause,
/// and the rest following the advisor's channels (PgOperator::advisor_follow).
struct PgDeliveries {
  std::vector<std::int64_t> cancelled;
  store::PgOperator::AdvisorFollow follow;
  std::optional<bool> confirmed;  ///< await_dispatch_polls, when something changed and this was not a dry run
};

/// The advisor as the SQLite file has it now, with its deliveries on PostgreSQL made to follow,
/// and the audit row there (the one the file got). Inside change_both's PostgreSQL transaction.
void follow_on_pg(store::PgOperator& pg, const store::AdvisorRow& after, const store::AuditEntry& audit, PgDeliveries& out,
                  const std::function<std::vector<std::int64_t>()>& cancel, Millis now) {
  out = PgDeliveries{};  // afresh when the transaction is run again (PgOperator::tx)
  auto done = follow_advisor_on_pg(pg, after, audit, now, cancel);
  out.cancelled = std::move(done.cancelled);
  out.follow = std::move(done.follow);
}

/// The JSON and words of PostgreSQL's part; waits for running dispatches when a delivery changed.
void finish_pg(store::PgOperator& pg, PgDeliveries& d, bool dry_run, Millis now, nlohmann::json& out, std::ostringstream& human) {
  const auto& f = d.follow;
  const bool changed = !d.cancelled.empty() || !f.moved.empty() || !f.cancelled.empty() || !f.reloaded.empty();
  if (changed && !dry_run) d.confirmed = ops::await_dispatch_polls(pg, now);
  out["ledger"] = "postgresql";
  out["postgresql"] = {{"deliveries_cancelled", d.cancelled},
                       {"deliveries_moved", f.moved},
                       {"deliveries_cancelled_unreachable", f.cancelled},
                       {"deliveries_reloaded", f.reloaded},
                       {"dispatch_confirmed", d.confirmed ? nlohmann::json(*d.confirmed) : nlohmann::json(nullptr)}};
  human << "; PostgreSQL: advisor " << (dry_run ? "would be " : "") << "updated";
  if (!d.cancelled.empty()) human << ", " << d.cancelled.size() << " pending deliveries cancelled (paused days)";
  if (!f.moved.empty()) human << ", " << f.moved.size() << " pending deliveries moved to another opted-in channel";
  if (!f.cancelled.empty()) human << ", " << f.cancelled.size() << " pending deliveries cancelled (no opted-in channel left)";
  if (!f.reloaded.empty()) human << ", " << f.reloaded.size() << " pending deliveries reloaded";
  if (d.confirmed == false) human << "\nWARNING: a dispatch holding a run did not confirm within 10 s that it reloaded them; check `daybreak status`";
}

// ---- list / show ------------------------------------------------------------------------

struct ListOptions {
  store::AdvisorFilter filter;
};

int run_list(const GlobalOptions& g, const ListOptions& o) {
  auto env = ops::open_env(g);
  auto f = o.filter;
  if (!f.channel.empty()) ops::parse_channel_arg("--channel", f.channel);
  if (!f.tier.empty() && !env.ctx.cfg.tier_rank(f.tier)) throw UsageError("--tier \"" + f.tier + "\": not a configured tier");
  std::int64_t n = 0;
  store::AdvisorListIds(*env.db, f, [&](const std::string& id) {
    auto a = store::AdvisorGet(*env.db, id);
    if (!a) return;
    ++n;
    if (env.ctx.json) {
      print_json(advisor_json(*a, false));  // NDJSON, streamed
    } else {
      const Advisor& v = a->advisor;
      std::vector<std::string> names;
      for (auto c : v.channels) names.emplace_back(to_string(c));
      std::cout << v.advisor_id << "  " << v.name << "  " << v.tier << "  " << join_list(names, '|') << "  " << v.timezone << " "
                << v.slot << (v.opted_in ? "" : "  opted out")
                << (v.paused_from || v.paused_until ? "  paused " + v.paused_from.value_or("…") + ".." + v.paused_until.value_or("…") : "")
                << "\n";
    }
  });
  if (!env.ctx.json) std::cout << n << " advisor(s)\n";
  return kExitOk;
}

int run_show(const GlobalOptions& g, const std::string& id) {
  auto env = ops::open_env(g);
  auto a = require_advisor(*env.db, id);
  auto j = advisor_json(a, false);
  if (env.ctx.json) {
    print_json(j);
    return kExitOk;
  }
  std::cout << j["advisor_id"].get<std::string>() << ": " << j["name"].get<std::string>() << "\n"
            << "  tier      " << j["tier"].get<std::string>() << "\n"
            << "  slot      " << j["slot"].get<std::string>() << " " << j["timezone"].get<std::string>() << "\n"
            << "  language  " << j["language"].get<std::string>() << ", topics " << j["topics"].get<std::string>() << "\n"
            << "  opted in  " << (a.advisor.opted_in ? "yes" : "no") << "\n";
  if (a.advisor.paused_from || a.advisor.paused_until) {
    std::cout << "  paused    " << a.advisor.paused_from.value_or("(open)") << " to " << a.advisor.paused_until.value_or("(open)") << "\n";
  }
  for (const auto& c : a.channels) {
    std::cout << "  " << to_string(c.channel) << "  " << c.address << (c.opted_in ? "" : "  (opted out)") << "\n";
  }
  return kExitOk;
}

// ---- add / update ------------------------------------------------------------------------

struct EditOptions {
  std::string advisor_id;
  std::string name, tier, phone, email, timezone, slot, channels, language, topics;
  std::map<std::string, CLI::Option*> given;
  std::string reason;
  bool dry_run = false;
  bool is_given(const std::string& f) const { auto it = given.find(f); return it != given.end() && it->second->count() > 0; }
};

int run_edit(const GlobalOptions& g, const EditOptions& o, bool add) {
  ops::require_reason(o.reason);
  auto env = ops::open_env(g);
  auto& db = *env.db;
  const std::string command = add ? "advisors add" : "advisors update";
  auto pg = ops::connect_pg_first(env.ctx.cfg, command);
  std::optional<store::AdvisorRow> before = store::AdvisorGet(db, o.advisor_id);
  if (add && before) throw UsageError("advisors add \"" + o.advisor_id + "\": already exists; use advisors update");
  if (!add && !before) throw UsageError("advisors update \"" + o.advisor_id + "\": no such advisor; use advisors add");
  bool any = false;
  for (const auto& [k, opt] : o.given) any = any || opt->count() > 0;
  if (!add && !any) throw UsageError("advisors update: nothing to change; give at least one of --name --tier --phone --email --timezone --slot --channels --language --topics");

  // advisors.csv columns in their documented order (domain/validate.hpp expected_columns).
  std::vector<std::string> f(11);
  f[0] = o.advisor_id;
  f[8] = "yes";
  if (before) {
    const Advisor& a = before->advisor;
    std::vector<std::string> names;
    for (auto c : a.channels) names.emplace_back(to_string(c));
    f = {a.advisor_id, a.name, a.tier, a.phone, a.email, a.timezone, a.slot, join_list(names, '|'), a.opted_in ? "yes" : "no",
         a.language, join_list(a.topics, ';')};
  }
  const std::pair<const char*, std::pair<int, const std::string*>> flags[] = {
      {"--name", {1, &o.name}},         {"--tier", {2, &o.tier}},   {"--phone", {3, &o.phone}},
      {"--email", {4, &o.email}},       {"--timezone", {5, &o.timezone}}, {"--slot", {6, &o.slot}},
      {"--channels", {7, &o.channels}}, {"--language", {9, &o.language}}, {"--topics", {10, &o.topics}}};
  for (const auto& [flag, where] : flags) {
    if (o.is_given(flag)) f[static_cast<std::size_t>(where.first)] = *where.second;
  }
  ImportRules rules;
  rules.tiers = env.ctx.cfg.tiers;
  rules.default_timezone = env.ctx.cfg.default_timezone;
  rules.default_slot = env.ctx.cfg.default_slot;
  ColumnMap cols;
  for (std::size_t i = 0; i < 11; ++i) cols.pos.push_back(i);
  cols.width = 11;
  AdvisorValidator v(rules, add ? "advisors add" : "advisors update", cols);
  CsvRecord rec;
  rec.fields = f;
  std::vector<Problem> problems;
  auto adv = v.validate(rec, problems);
  if (!adv) {
    std::string msg = "nothing changed:";
    for (const auto& p : problems) {
      // Name the flag the operator typed, not the CSV column.
      std::string t = p.text();
      msg += "\n  " + t;
    }
    throw UsageError(msg);
  }
  std::optional<store::AdvisorRow> after;
  store::AuditEntry audit;
  store::AdvisorFollowCounts follow;
  PgDeliveries pgd;
  ops::change_both(
      db, pg.get(), o.dry_run, command,
      [&] {
        store::AdvisorUpsert(db, {*adv, env.now});
        // AdvisorUpsert sets every channel row to the advisor's opt-in but the sticky opt-outs: keep
        // the other per-channel opt-outs too, as they were (not made sticky by this update).
        if (before) {
          for (const auto& c : before->channels) {
            if (!c.opted_in)
              store::AdvisorChannelSetOptIn(db, o.advisor_id, std::string(to_string(c.channel)), false, env.now, false);
          }
        }
        follow_and_audit(db, o.advisor_id, o.reason, env.now, before ? advisor_json(*before, true) : nlohmann::json(nullptr), follow,
                         after, audit);
      },
      [&] { follow_on_pg(*pg, *after, audit, pgd, nullptr, env.now); });
  nlohmann::json out = {{"command", command}, {"advisor_id", o.advisor_id}, {"dry_run", o.dry_run},
                        {"advisor", advisor_json(*after, false)}};
  std::ostringstream human;
  human << (o.dry_run ? "dry run: would " : "") << (add ? (o.dry_run ? "add" : "added") : (o.dry_run ? "update" : "updated")) << " advisor "
        << o.advisor_id;
  report_follow(follow, out, human);
  if (pg) finish_pg(*pg, pgd, o.dry_run, env.now, out, human);
  ops::emit(env, out, human.str());
  return kExitOk;
}

// ---- pause / resume / opt-in / opt-out ----------------------------------------------------

struct SimpleOptions {
  std::string advisor_id;
  std::string from, until, channel;
  std::string reason;
  bool dry_run = false;
};

int run_pause(const GlobalOptions& g, const SimpleOptions& o, bool pause) {
  ops::require_reason(o.reason);
  std::optional<std::string> from, until;
  if (pause) {
    if (o.from.empty() && o.until.empty()) throw UsageError("advisors pause: give --from D, --until D or both");
    if (!o.from.empty()) from = ops::parse_date_arg("--from", o.from);
    if (!o.until.empty()) until = ops::parse_date_arg("--until", o.until);
    if (from && until && *until < *from) throw UsageError("--until " + *until + " is before --from " + *from);
  }
  auto env = ops::open_env(g);
  auto& db = *env.db;
  const std::string command = pause ? "advisors pause" : "advisors resume";
  auto pg = ops::connect_pg_first(env.ctx.cfg, command);
  auto before = require_advisor(db, o.advisor_id);
  if (!pause && !before.advisor.paused_from && !before.advisor.paused_until) {
    throw UsageError("advisors resume \"" + o.advisor_id + "\": not paused");
  }
  std::vector<std::int64_t> cancelled;
  std::optional<store::AdvisorRow> after;
  store::AuditEntry audit;
  PgDeliveries pgd;
  ops::change_both(
      db, pg.get(), o.dry_run, command,
      [&] {
        store::AdvisorSetAbsence(db, o.advisor_id, from, until, env.now);
        if (pause) cancelled = store::DeliveryCancelForAdvisorDays(db, o.advisor_id, from.value_or(""), until.value_or(""), env.now);
        after = store::AdvisorGet(db, o.advisor_id);
        auto a = advisor_json(*after, true);
        a["deliveries_cancelled"] = cancelled;
        audit = ops::audit_entry(env.now, "advisor:" + o.advisor_id, o.reason, advisor_json(before, true), a);
        store::AuditAppend(db, audit);
      },
      [&] {
        std::function<std::vector<std::int64_t>()> cancel;
        if (pause) cancel = [&] { return pg->delivery_cancel_for_advisor_days(o.advisor_id, from.value_or(""), until.value_or(""), env.now); };
        follow_on_pg(*pg, *after, audit, pgd, cancel, env.now);
      });
  nlohmann::json out = {{"command", command}, {"advisor_id", o.advisor_id},
                        {"paused_from", from ? nlohmann::json(*from) : nlohmann::json(nullptr)},
                        {"paused_until", until ? nlohmann::json(*until) : nlohmann::json(nullptr)},
                        {"deliveries_cancelled", cancelled}, {"dry_run", o.dry_run}};
  std::ostringstream h;
  h << (o.dry_run ? "dry run: would " : "") << (pause ? (o.dry_run ? "pause " : "paused ") : (o.dry_run ? "resume " : "resumed ")) << o.advisor_id;
  if (pause) {
    h << " from " << from.value_or("(open)") << " to " << until.value_or("(open)") << "; " << cancelled.size() << " pending deliveries cancelled"
      << (pg ? " in the SQLite file" : "");
  }
  if (!pause) h << " (cancelled deliveries stay cancelled; resend them if needed)";
  if (pg) finish_pg(*pg, pgd, o.dry_run, env.now, out, h);
  ops::emit(env, out, h.str());
  return kExitOk;
}

int run_opt(const GlobalOptions& g, const SimpleOptions& o, bool in) {
  ops::require_reason(o.reason);
  std::string ch = ops::parse_channel_arg("--channel", o.channel);
  auto env = ops::open_env(g);
  auto& db = *env.db;
  const std::string command = in ? "advisors opt-in" : "advisors opt-out";
  auto pg = ops::connect_pg_first(env.ctx.cfg, command);
  auto before = require_advisor(db, o.advisor_id);
  const store::AdvisorChannel* row = nullptr;
  for (const auto& c : before.channels) {
    if (to_string(c.channel) == ch) row = &c;
  }
  if (!row) throw UsageError("--channel " + ch + ": advisor " + o.advisor_id + " has no " + ch + " channel; add it with advisors update --channels");
  if (row->opted_in == in) throw UsageError("advisor " + o.advisor_id + " is already opted " + (in ? "in to " : "out of ") + ch);
  std::optional<store::AdvisorRow> after;
  store::AuditEntry audit;
  store::AdvisorFollowCounts follow;
  PgDeliveries pgd;
  ops::change_both(
      db, pg.get(), o.dry_run, command,
      [&] {
        store::AdvisorChannelSetOptIn(db, o.advisor_id, ch, in, env.now);
        follow_and_audit(db, o.advisor_id, o.reason, env.now, advisor_json(before, true), follow, after, audit);
      },
      [&] { follow_on_pg(*pg, *after, audit, pgd, nullptr, env.now); });
  nlohmann::json out = {{"command", command}, {"advisor_id", o.advisor_id}, {"channel", ch},
                        {"opted_in", in}, {"dry_run", o.dry_run}};
  std::ostringstream human;
  human << (o.dry_run ? "dry run: would opt " : "opted ") << o.advisor_id << (in ? " in to " : " out of ") << ch;
  report_follow(follow, out, human);
  if (pg) finish_pg(*pg, pgd, o.dry_run, env.now, out, human);
  ops::emit(env, out, human.str());
  return kExitOk;
}

}  // namespace

void add_advisor_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* adv = app.add_subcommand("advisors", "Advisors: list, show, add, update, pause, resume, opt-in, opt-out");
  adv->require_subcommand(1);
  adv->fallthrough();
  {
    auto o = std::make_shared<ListOptions>();
    auto* sub = adv->add_subcommand("list", "Advisors, filtered (NDJSON with --json, streamed)");
    sub->fallthrough();
    sub->add_option("--tier", o->filter.tier, "Only this tier");
    sub->add_option("--channel", o->filter.channel, "Only advisors with this channel");
    sub->add_flag("--paused", o->filter.paused, "Only advisors with an absence set");
    sub->add_option("--search", o->filter.search, "advisor_id or name contains TEXT");
    sub->add_option("--limit", o->filter.limit, "At most this many")->check(CLI::NonNegativeNumber);
    sub->callback([o, &g, &action] { action = [o, &g] { return run_list(g, *o); }; });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = adv->add_subcommand("show", "One advisor with its channels");
    sub->fallthrough();
    sub->add_option("advisor_id", *id, "Advisor id")->required();
    sub->callback([id, &g, &action] { action = [id, &g] { return run_show(g, *id); }; });
  }
  for (bool add : {true, false}) {
    auto o = std::make_shared<EditOptions>();
    auto* sub = adv->add_subcommand(add ? "add" : "update", add ? "Add one advisor (validated like an import row)"
                                                                : "Change fields of one advisor (validated like an import row)");
    sub->fallthrough();
    sub->add_option("advisor_id", o->advisor_id, "Advisor id")->required();
    o->given["--name"] = sub->add_option("--name", o->name, "Name");
    o->given["--tier"] = sub->add_option("--tier", o->tier, "Tier");
    o->given["--phone"] = sub->add_option("--phone", o->phone, "WhatsApp number, E.164");
    o->given["--email"] = sub->add_option("--email", o->email, "Email address");
    o->given["--timezone"] = sub->add_option("--timezone", o->timezone, "IANA time zone (empty: the default)");
    o->given["--slot"] = sub->add_option("--slot", o->slot, "Local HH:MM (empty: the default)");
    o->given["--channels"] = sub->add_option("--channels", o->channels, "Preference order, e.g. whatsapp|email");
    o->given["--language"] = sub->add_option("--language", o->language, "Language tag, e.g. en");
    o->given["--topics"] = sub->add_option("--topics", o->topics, "Topics, e.g. tax;equity");
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, add, &g, &action] { action = [o, add, &g] { return run_edit(g, *o, add); }; });
  }
  for (bool pause : {true, false}) {
    auto o = std::make_shared<SimpleOptions>();
    auto* sub = adv->add_subcommand(pause ? "pause" : "resume", pause ? "Set an absence (no deliveries on those days)" : "Clear the absence");
    sub->fallthrough();
    sub->add_option("advisor_id", o->advisor_id, "Advisor id")->required();
    if (pause) {
      sub->add_option("--from", o->from, "First paused day YYYY-MM-DD");
      sub->add_option("--until", o->until, "Last paused day YYYY-MM-DD (inclusive)");
    }
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, pause, &g, &action] { action = [o, pause, &g] { return run_pause(g, *o, pause); }; });
  }
  for (bool in : {true, false}) {
    auto o = std::make_shared<SimpleOptions>();
    auto* sub = adv->add_subcommand(in ? "opt-in" : "opt-out", in ? "Opt one channel back in" : "Opt one channel out");
    sub->fallthrough();
    sub->add_option("advisor_id", o->advisor_id, "Advisor id")->required();
    sub->add_option("--channel", o->channel, "whatsapp, email or webhook")->required();
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, in, &g, &action] { action = [o, in, &g] { return run_opt(g, *o, in); }; });
  }
}

}  // namespace daybreak
