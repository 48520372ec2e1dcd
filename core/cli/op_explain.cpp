// `daybreak explain --advisor ID [--date D]`: why an advisor gets what they get on day D — the
// assignment's source, content, score parts and reason, their segment and recent history.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "app/plan.hpp"

namespace daybreak {
namespace {

struct ExplainOptions {
  std::string advisor;
  std::string date;
  int no_repeat_days = 14;
};

void print_text(const nlohmann::json& j) {
  std::cout << "advisor " << j["advisor_id"].get<std::string>() << " on " << j["date"].get<std::string>() << ": "
            << (j["eligible"].get<bool>() ? "eligible" : "NOT eligible (opted out, paused or no opted-in channel)") << "\n"
            << "  language " << j["language"].get<std::string>() << ", topics " << j["topics"].dump() << ", segment "
            << j["segment"].get<std::string>() << "\n";
  const auto& a = j["assignment"];
  if (a.is_null()) {
    std::cout << "  no assignment for this day" << (j["eligible"].get<bool>() ? " (run assign-fallback)" : "") << "\n";
  } else {
    std::cout << "  content " << a["content_id"].get<std::string>();
    if (a.contains("title")) std::cout << " \"" << a["title"].get<std::string>() << "\"";
    std::cout << ", source " << a["source"].get<std::string>() << ", score " << a["score"].get<double>() << "\n"
              << "  reason: " << a["reason"].get<std::string>() << "\n";
    if (a.contains("sendable") && !a["sendable"].get<bool>()) std::cout << "  NOT SENDABLE: " << a["problem"].get<std::string>() << "\n";
    const auto& p = a["score_parts"];
    if (p.is_object() && p.contains("total")) {
      const auto& w = a["weights"];
      std::cout << "  score parts (value x weight):\n"
                << "    topic match        " << p["topic"].get<double>() << " x " << w["topic"].get<double>() << "\n"
                << "    engagement sample  " << p["engagement"].get<double>() << " x " << w["engagement"].get<double>()
                << "  (posterior mean " << p["engagement_mean"].get<double>() << " from " << p["reads"] << " reads of "
                << p["exposures"] << " in segment " << p["segment"].get<std::string>() << ")\n"
                << "    freshness          " << p["freshness"].get<double>() << " x " << w["freshness"].get<double>() << "\n"
                << "    diversity penalty -" << p["diversity_penalty"].get<double>() << " x " << w["diversity"].get<double>() << "\n";
      if (p.value("relaxed_no_repeat", false)) std::cout << "    no-repeat window relaxed: the pool was exhausted\n";
    }
  }
  std::cout << "  last " << j["history"].size() << " assignment(s) in the no-repeat window:\n";
  for (const auto& h : j["history"]) std::cout << "    " << h["date"].get<std::string>() << " " << h["content_id"].get<std::string>() << "\n";
}

}  // namespace

void add_explain_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<ExplainOptions>();
  auto* sub = app.add_subcommand("explain", "Show why an advisor gets what they get on a day (source, score parts, reason)");
  // Global flags may follow the subcommand too: `daybreak explain --advisor A1 --json`.
  sub->fallthrough();
  sub->add_option("--advisor", o->advisor, "Advisor id")->required();
  sub->add_option("--date", o->date, "Delivery day YYYY-MM-DD (default: the day of the next slot)");
  sub->add_option("--no-repeat-days", o->no_repeat_days, "How many days of history to show")->check(CLI::Range(0, 365));
  sub->callback([o, &g, &action] {
    action = [o, &g] {
      auto ctx = make_context(g, "daybreak");
      std::string day = resolve_date_option(o->date, ctx.cfg, ctx.clock->now());
      store::OpenOptions ro;
      ro.read_only = true;
      store::Db db(ctx.cfg.database_path, ro);
      FallbackOptions fo;
      fo.ranking.no_repeat_days = o->no_repeat_days;
      auto j = explain_assignment(db, o->advisor, day, fo);
      if (ctx.json) {
        print_json(j);
      } else {
        print_text(j);
      }
      return kExitOk;
    };
  });
}

}  // namespace daybreak
