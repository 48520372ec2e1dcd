// `daybreak content withdraw ID --reason R`: the compliance pull. The
// item is withdrawn, every assignment of it from yesterday on is replaced by a ranked fallback,
// and pending deliveries follow; both steps are audited with who and why.
//
// Deliveries left without a replacement get an emergency item (the advisor's language, else
// delivery.emergency_language) or are held, never sent (store::DeliveryResolvePulled). A running
// dispatch re-reads the withdrawn items once a second and its content guard stops any send of
// them (engine/dispatcher.cpp, content_guard).
//
// With [database] url the pull is made on the PostgreSQL ledger (ops::withdraw_content_pg, one
// transaction): the dispatch there reloads the changed rows through its PollChanges; no fallback
// is ranked there (the next night is planned on the SQLite file), so pending deliveries get an
// emergency item or are held.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "app/plan.hpp"
#include "domain/time.hpp"

namespace daybreak {
namespace {

struct WithdrawOptions {
  std::string content_id;
  std::string reason;
};

}  // namespace

void add_content_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* content = app.add_subcommand("content", "Content overrides (compliance pull)");
  content->require_subcommand(1);
  content->fallthrough();
  auto o = std::make_shared<WithdrawOptions>();
  auto* sub = content->add_subcommand("withdraw", "Withdraw an item everywhere and replace it in every pending delivery");
  sub->fallthrough();  // global flags may follow: `daybreak content withdraw C1 --reason R --json`
  sub->add_option("content_id", o->content_id, "Content id")->required();
  sub->add_option("--reason", o->reason, "Why (recorded in the audit log)")->required();
  sub->callback([o, &g, &action] {
    action = [o, &g] {
      if (o->reason.empty()) throw UsageError("--reason: must not be empty");
      auto ctx = make_context(g, "daybreak");
      nlohmann::json rep;
      if (!ctx.cfg.database_url.empty()) {
        const Millis now = ctx.clock->now();
        auto today = local_date(now, ctx.cfg.default_timezone);
        if (!today) throw ConfigError(today.error().message);
        store::PgOperator pg(ctx.cfg.database_url);
        rep = ops::withdraw_content_pg(pg, ctx.cfg.emergency_language, format_date(add_days(*today, -1)), o->content_id, o->reason, ops::cli_actor(), now);
      } else {
        store::Db db(ctx.cfg.database_path);
        rep = withdraw_content(db, ctx.cfg, o->content_id, o->reason, current_actor(), current_sudo_user(), ctx.clock->now());
      }
      if (ctx.json) {
        print_json(rep);
      } else {
        std::cout << "content " << o->content_id << (rep["already_withdrawn"].get<bool>() ? " was already withdrawn" : " withdrawn")
                  << " by " << rep["withdrawn_by"].get<std::string>() << "; " << rep["assignments_replaced"] << " assignment(s) replaced, "
                  << rep["deliveries_repointed"] << " pending deliveries re-pointed";
        if (rep["deliveries_emergency"].get<std::size_t>() > 0) std::cout << ", " << rep["deliveries_emergency"] << " given an emergency item";
        if (rep["deliveries_in_flight"].get<std::int64_t>() > 0) std::cout << ", " << rep["deliveries_in_flight"] << " already in flight";
        std::cout << "\n";
        if (rep.contains("dispatch_confirmed") && rep["dispatch_confirmed"] == false) {
          std::cout << "WARNING: a dispatch holding a run did not confirm within 10 s that it stopped the " << rep["deliveries_in_flight"]
                    << " in flight; check `daybreak status`\n";
        }
        if (rep["deliveries_held"].get<std::size_t>() > 0) {
          std::string langs;
          for (const auto& l : rep["held_languages"]) langs += (langs.empty() ? "" : ", ") + l.get<std::string>();
          std::cout << "HELD: " << rep["deliveries_held"] << " delivery(ies) will not be sent: no emergency item in " << langs
                    << " or " << rep["emergency_language"].get<std::string>()
                    << "; import one, then `daybreak dead replay --error held`\n";
        }
        if (rep["missing"].get<std::size_t>() > 0) std::cout << "SILENT DAYS: " << rep["missing"] << " advisor(s) have no replacement\n";
      }
      return rep["missing"].get<std::size_t>() == 0 && rep["deliveries_held"].get<std::size_t>() == 0 ? kExitOk : kExitCheckFailed;
    };
  });
}

}  // namespace daybreak
