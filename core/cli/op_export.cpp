// `daybreak export deliveries|attempts|reports --from D --to D --format csv|ndjson`: rows for the
// analytics platform, streamed to stdout one by one as SQLite produces them (constant memory: no
// row is kept after it is written). Reports carry the stored report JSON (a nested object in
// NDJSON, one quoted field in CSV). CSV text cells beginning with =, +, -, @, a tab or a carriage
// return are neutralised with a leading single quote (formula injection, domain/csv.hpp).
#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "domain/csv.hpp"
#include "store/exports.hpp"

namespace daybreak {
namespace {

struct ExportOptions {
  std::string from, to, format = "ndjson";
};

int run_export(const GlobalOptions& g, store::ExportKind kind, const ExportOptions& o) {
  std::string from = ops::parse_date_arg("--from", o.from);
  std::string to = ops::parse_date_arg("--to", o.to);
  if (to < from) throw UsageError("--to " + to + " is before --from " + from);
  if (o.format != "csv" && o.format != "ndjson") throw UsageError("--format \"" + o.format + "\": expected csv or ndjson");
  if (g.json && o.format == "csv") throw UsageError("--json conflicts with --format csv");
  ops::yield_cpu_to_dispatch();
  auto env = ops::open_env(g);
  // A one-pass scan gains nothing from the connection's 64 MiB page cache; 2 MiB keeps the
  // export's memory flat however many rows it streams.
  env.db->exec("PRAGMA cache_size=-2048");
  const bool csv = o.format == "csv";
  bool header = false;
  std::string line;
  std::int64_t rows = 0;
  store::ExportRows(*env.db, kind, from, to, [&](SQLite::Statement& q) {
    const int n = q.getColumnCount();
    line.clear();
    if (csv) {
      if (!header) {
        for (int i = 0; i < n; ++i) {
          if (i) line.push_back(',');
          csv_write_field(line, q.getColumnName(i), false);
        }
        line.push_back('\n');
        header = true;
      }
      for (int i = 0; i < n; ++i) {
        if (i) line.push_back(',');
        auto c = q.getColumn(i);
        // Text cells that a spreadsheet would evaluate (=, +, -, @, tab, CR first) get a
        // leading ' (domain/csv.hpp); numbers SQLite holds as numbers are written as they are.
        if (!c.isNull()) csv_write_field(line, c.getString(), !(c.isInteger() || c.isFloat()));
      }
    } else {
      nlohmann::json j = nlohmann::json::object();
      for (int i = 0; i < n; ++i) {
        auto c = q.getColumn(i);
        std::string name = q.getColumnName(i);
        if (c.isNull()) {
          j[name] = nullptr;
        } else if (c.isInteger()) {
          j[name] = c.getInt64();
        } else if (c.isFloat()) {
          j[name] = c.getDouble();
        } else if (name == "report") {
          auto r = nlohmann::json::parse(c.getString(), nullptr, false);
          j[name] = r.is_discarded() ? nlohmann::json(c.getString()) : r;
        } else {
          j[name] = c.getString();
        }
      }
      line = j.dump();
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    ++rows;
  });
  std::fflush(stdout);
  env.ctx.log->info("exported {} row(s) for {} to {}", rows, from, to);
  return kExitOk;
}

}  // namespace

void add_export_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* ex = app.add_subcommand("export", "Stream deliveries, attempts or run reports for a date range (CSV or NDJSON)");
  ex->require_subcommand(1);
  ex->fallthrough();
  const std::pair<const char*, store::ExportKind> kinds[] = {
      {"deliveries", store::ExportKind::deliveries}, {"attempts", store::ExportKind::attempts}, {"reports", store::ExportKind::reports}};
  for (const auto& [name, kind] : kinds) {
    auto o = std::make_shared<ExportOptions>();
    auto* sub = ex->add_subcommand(name, std::string("Stream ") + name + " of delivery days in [--from, --to]");
    sub->fallthrough();
    sub->add_option("--from", o->from, "First delivery day YYYY-MM-DD")->required();
    sub->add_option("--to", o->to, "Last delivery day YYYY-MM-DD (inclusive)")->required();
    sub->add_option("--format", o->format, "csv or ndjson (default ndjson)");
    store::ExportKind k = kind;
    sub->callback([o, k, &g, &action] { action = [o, k, &g] { return run_export(g, k, *o); }; });
  }
}

}  // namespace daybreak
