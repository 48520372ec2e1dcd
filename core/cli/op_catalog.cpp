// `daybreak content list|show|replace`, added beside the existing `content withdraw`
// (op_content.cpp). `replace ID --with ID2` is the compliance pull with a chosen substitute: in
// one transaction ID is withdrawn, every assignment of it from yesterday on (advisors west of the
// default zone are still on yesterday) points at ID2 with source override, every pending delivery
// follows (noted for a running dispatch), and it is audited.
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "domain/time.hpp"
#include "store/catalog.hpp"
#include "store/withdrawal.hpp"

namespace daybreak {
namespace {

nlohmann::json content_json(const store::ContentInfo& i, const std::string& tz, bool with_body) {
  const Content& c = i.content;
  nlohmann::json j = {{"content_id", c.content_id},
                      {"title", c.title},
                      {"language", c.language},
                      {"topics", join_list(c.topics, ';')},
                      {"media_url", c.media_url},
                      {"valid_from", c.valid_from},
                      {"valid_until", c.valid_until},
                      {"fallback_eligible", c.fallback_eligible},
                      {"emergency", c.emergency},
                      {"withdrawn", c.withdrawn},
                      {"withdrawn_at", i.withdrawn_at ? nlohmann::json(format_instant(*i.withdrawn_at, tz)) : nlohmann::json(nullptr)},
                      {"withdrawn_by", i.withdrawn_by ? nlohmann::json(*i.withdrawn_by) : nlohmann::json(nullptr)}};
  if (with_body) j["body"] = c.body;
  return j;
}

int run_list(const GlobalOptions& g, const store::ContentFilter& f) {
  auto env = ops::open_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  std::int64_t n = 0;
  store::ContentListFiltered(*env.db, f, [&](const store::ContentInfo& i) {
    ++n;
    if (env.ctx.json) {
      print_json(content_json(i, tz, false));
    } else {
      const Content& c = i.content;
      std::cout << c.content_id << "  " << c.language << "  " << c.title << "  [" << (c.valid_from.empty() ? "…" : c.valid_from) << ".."
                << (c.valid_until.empty() ? "…" : c.valid_until) << "]" << (c.fallback_eligible ? "  fallback" : "")
                << (c.emergency ? "  emergency" : "") << (c.withdrawn ? "  WITHDRAWN" : "") << "\n";
    }
  });
  if (!env.ctx.json) std::cout << n << " item(s)\n";
  return kExitOk;
}

int run_catalog_show(const GlobalOptions& g, const std::string& id) {
  auto env = ops::open_env(g);
  auto i = store::ContentInfoGet(*env.db, id);
  if (!i) throw UsageError("content \"" + id + "\": no such content");
  auto j = content_json(*i, env.ctx.cfg.default_timezone, true);
  if (env.ctx.json) {
    print_json(j);
    return kExitOk;
  }
  std::cout << id << ": " << i->content.title << "\n  language " << i->content.language << ", topics " << j["topics"].get<std::string>()
            << "\n  valid " << (i->content.valid_from.empty() ? "always" : i->content.valid_from) << " to "
            << (i->content.valid_until.empty() ? "forever" : i->content.valid_until) << "\n  media " << i->content.media_url << "\n";
  if (i->content.withdrawn) std::cout << "  WITHDRAWN at " << j["withdrawn_at"].get<std::string>() << " by " << i->withdrawn_by.value_or("?") << "\n";
  std::cout << "\n" << i->content.body << "\n";
  return kExitOk;
}

struct ReplaceOptions {
  std::string content_id;
  std::string with;
  std::string reason;
  bool dry_run = false;
};

int run_replace(const GlobalOptions& g, const ReplaceOptions& o) {
  ops::require_reason(o.reason);
  if (o.content_id == o.with) throw UsageError("--with: must name another item than " + o.content_id);
  auto env = ops::open_env(g);
  auto& db = *env.db;
  const auto& tz = env.ctx.cfg.default_timezone;
  auto from = store::ContentInfoGet(db, o.content_id);
  if (!from) throw UsageError("content \"" + o.content_id + "\": no such content");
  auto to = store::ContentInfoGet(db, o.with);
  if (!to) throw UsageError("--with \"" + o.with + "\": no such content");
  if (to->content.withdrawn) throw UsageError("--with \"" + o.with + "\": withdrawn itself");
  if (to->content.language != from->content.language) {
    throw UsageError("--with \"" + o.with + "\": language " + to->content.language + " differs from " + o.content_id + "'s " +
                     from->content.language + "; advisors get content in their language");
  }
  auto today = local_date(env.now, tz);
  if (!today) throw ConfigError(today.error().message);
  const std::string since = format_date(add_days(*today, -1));
  // Every day the replacement must cover has to be inside its validity.
  for (const auto& day : store::AssignmentDatesForContent(db, o.content_id, since)) {
    if ((!to->content.valid_from.empty() && day < to->content.valid_from) || (!to->content.valid_until.empty() && day > to->content.valid_until)) {
      throw UsageError("--with \"" + o.with + "\": not valid on " + day + ", a day " + o.content_id + " is assigned");
    }
  }
  std::int64_t assignments = 0, in_flight = 0;
  std::vector<std::int64_t> repointed;
  bool newly = false;
  ops::change_tx(db, o.dry_run, [&] {
    auto w = store::ContentWithdraw(db, o.content_id, current_actor(), env.now);
    newly = w.newly_withdrawn;
    assignments = store::AssignmentReplaceContent(db, o.content_id, o.with, since, env.now);
    repointed = store::DeliveryRepointPending(db, o.content_id, since, env.now);
    // Rows whose assignment is not the item's (an operator's): the same rule as a withdrawal.
    store::DeliveryResolvePulled(db, o.content_id, since, env.ctx.cfg.emergency_language, env.now);
    in_flight = store::DeliveryCountInFlight(db, o.content_id, since);
    store::AuditAppend(db, ops::audit_entry(env.now, "content:" + o.content_id, o.reason, content_json(*from, tz, false),
                                            {{"withdrawn", true}, {"replaced_by", o.with}, {"assignments_replaced", assignments},
                                             {"deliveries_repointed", repointed.size()}, {"deliveries_in_flight", in_flight},
                                             {"from_date", since}}));
  });
  nlohmann::json out = {{"command", "content replace"}, {"content_id", o.content_id}, {"with", o.with},
                        {"already_withdrawn", !newly}, {"assignments_replaced", assignments},
                        {"deliveries_repointed", repointed.size()}, {"deliveries_in_flight", in_flight}, {"dry_run", o.dry_run}};
  std::ostringstream h;
  h << (o.dry_run ? "dry run: would replace " : "replaced ") << o.content_id << " by " << o.with << ": " << assignments
    << " assignment(s), " << repointed.size() << " pending deliveries re-pointed";
  if (in_flight) h << ", " << in_flight << " already in flight (cannot be recalled)";
  ops::emit(env, out, h.str());
  return kExitOk;
}

}  // namespace

void add_content_catalog_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  // `content` is created by add_content_commands (op_content.cpp); add ours beside withdraw.
  CLI::App* content = nullptr;
  try {
    content = app.get_subcommand("content");
  } catch (const CLI::OptionNotFound&) {
    content = app.add_subcommand("content", "Content: list, show, replace, withdraw");
    content->require_subcommand(1);
    content->fallthrough();
  }
  {
    auto f = std::make_shared<store::ContentFilter>();
    auto* sub = content->add_subcommand("list", "Content items, filtered (NDJSON with --json)");
    sub->fallthrough();
    sub->add_option("--language", f->language, "Only this language");
    sub->add_option("--search", f->search, "content_id or title contains TEXT");
    sub->add_flag("--withdrawn", f->withdrawn, "Only withdrawn items");
    sub->add_option("--limit", f->limit, "At most this many")->check(CLI::NonNegativeNumber);
    sub->callback([f, &g, &action] { action = [f, &g] { return run_list(g, *f); }; });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = content->add_subcommand("show", "One content item with its body");
    sub->fallthrough();
    sub->add_option("content_id", *id, "Content id")->required();
    sub->callback([id, &g, &action] { action = [id, &g] { return run_catalog_show(g, *id); }; });
  }
  {
    auto o = std::make_shared<ReplaceOptions>();
    auto* sub = content->add_subcommand("replace", "Withdraw an item and put another in its place everywhere (compliance)");
    sub->fallthrough();
    sub->add_option("content_id", o->content_id, "Content id to withdraw")->required();
    sub->add_option("--with", o->with, "Content id to send instead")->required();
    ops::add_change_flags(sub, o->reason, o->dry_run);
    sub->callback([o, &g, &action] { action = [o, &g] { return run_replace(g, *o); }; });
  }
}

}  // namespace daybreak
