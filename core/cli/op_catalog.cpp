// `daybreak content list|show|replace`, added beside the existing `content withdraw`
// (op_content.cpp). `replace ID --with ID2` is the compliance pull with a chosen substitute: in
// one transaction ID is withdrawn, every assignment of it from yesterday on (advisors west of the
// default zone are still on yesterday) points at ID2 with source override, every pending delivery
// follows (noted for a running dispatch), and it is audited (ops::replace_content). With
// [database] url the same transaction runs on the PostgreSQL ledger (ops::replace_content_pg),
// which then waits, like `content withdraw` there, until every dispatch holding a run has polled
// the change when rows of the item were in flight.
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "store/catalog.hpp"

namespace daybreak {
namespace {

int run_list(const GlobalOptions& g, const store::ContentFilter& f) {
  auto env = ops::open_env(g);
  const auto& tz = env.ctx.cfg.default_timezone;
  std::int64_t n = 0;
  store::ContentListFiltered(*env.db, f, [&](const store::ContentInfo& i) {
    ++n;
    if (env.ctx.json) {
      print_json(ops::to_json(i, tz, false));
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
  auto j = ops::to_json(*i, env.ctx.cfg.default_timezone, true);
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
  auto env = ops::open_ledger_env(g);
  const auto& cfg = env.ctx.cfg;
  nlohmann::json out = env.pg ? ops::replace_content_pg(*env.pg, cfg.default_timezone, cfg.emergency_language, o.content_id, o.with,
                                                        o.reason, ops::cli_actor(), env.now, o.dry_run)
                              : ops::replace_content(*env.db, cfg.default_timezone, cfg.emergency_language, o.content_id, o.with,
                                                     o.reason, ops::cli_actor(), env.now, o.dry_run);
  const auto assignments = out["assignments_replaced"].get<std::int64_t>();
  const auto in_flight = out["deliveries_in_flight"].get<std::int64_t>();
  std::ostringstream h;
  h << (o.dry_run ? "dry run: would replace " : "replaced ") << o.content_id << " by " << o.with << ": " << assignments
    << " assignment(s), " << out["deliveries_repointed"] << " pending deliveries re-pointed";
  if (in_flight) h << ", " << in_flight << " already in flight (cannot be recalled)";
  if (out.contains("dispatch_confirmed") && out["dispatch_confirmed"] == false) {
    h << "\nWARNING: a dispatch holding a run did not confirm within 10 s that it stopped the " << in_flight
      << " in flight; check `daybreak status`";
  }
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
