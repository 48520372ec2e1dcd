// `daybreak migrate-ledger --from sqlite:PATH --to postgresql://…`: copies a day planned with
// the SQLite tools into the PostgreSQL ledger (store::migrate_ledger_to_pg) so that dispatch
// with [database] url sends it. See man/daybreak.1.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "domain/time.hpp"
#include "store/pg_ledger.hpp"

namespace daybreak {
namespace {

struct MigrateLedgerOptions {
  std::string from;
  std::string to;
  std::string date;
};

int migrate_ledger(const GlobalOptions& g, const MigrateLedgerOptions& o) {
  if (!o.from.starts_with("sqlite:") || o.from.size() == 7) throw UsageError("--from: expected sqlite:PATH");
  if (!(o.to.starts_with("postgresql://") || o.to.starts_with("postgres://"))) {
    throw UsageError("--to: expected a postgresql:// connection URI");
  }
  if (!o.date.empty()) {
    if (auto d = parse_date(o.date); !d) throw UsageError("--date: " + d.error().message);
  }
  const std::string path = o.from.substr(7);
  auto counts = store::migrate_ledger_to_pg(path, o.to, o.date);
  nlohmann::json tables = nlohmann::json::object();
  for (const auto& [t, n] : counts.tables) tables[t] = n;
  nlohmann::json updated = nlohmann::json::object();
  for (const auto& [t, n] : counts.updated) updated[t] = n;
  if (g.json) {
    print_json({{"status", "copied"},
                {"from", path},
                {"date", o.date.empty() ? "all" : o.date},
                {"inserted", tables},
                {"updated", updated},
                {"renumbered", counts.renumbered}});
  } else {
    std::cout << "copied " << path << (o.date.empty() ? std::string(" (every day)") : " (" + o.date + ")")
              << " into PostgreSQL:\n";
    for (const auto& [t, n] : counts.tables) std::cout << "  " << t << ": " << n << " rows inserted\n";
    for (const auto& [t, n] : counts.updated) {
      if (n > 0) std::cout << "  " << t << ": " << n << " rows brought up to date\n";
    }
    if (counts.renumbered > 0) {
      std::cout << "  " << counts.renumbered << " rows inserted under a new id (theirs was another row's in PostgreSQL)\n";
    }
  }
  return kExitOk;
}

}  // namespace

void add_migrate_ledger_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<MigrateLedgerOptions>();
  auto* c = app.add_subcommand("migrate-ledger", "Copy a planned day from the SQLite ledger into the PostgreSQL ledger");
  c->add_option("--from", o->from, "sqlite:PATH of the SQLite ledger to read")->required();
  c->add_option("--to", o->to, "postgresql:// URI of the ledger to write (its schema is created or migrated first)")->required();
  c->add_option("--date", o->date, "Copy only this delivery day's runs, deliveries and assignments (default: every day)");
  c->fallthrough();
  c->callback([o, &g, &action] { action = [o, &g] { return migrate_ledger(g, *o); }; });
}

}  // namespace daybreak
