// `daybreak export deliveries|attempts|reports --from D --to D --format csv|ndjson`: rows for the
// analytics platform, streamed to stdout one by one as the ledger produces them (constant memory:
// no row is kept after it is written). With [database] url, every kind is read from the
// PostgreSQL ledger (the same columns, in single-row mode; the reports dispatch stored there in
// run_reports). Reports carry the stored report JSON (a nested object in
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

// One row as the writer reads it, from either ledger: the SQLite statement (its value types) or
// a PostgreSQL result row (its column types); numbers are numbers in both, everything else text.
struct SqliteRow {
  SQLite::Statement& q;
  [[nodiscard]] int size() const { return q.getColumnCount(); }
  [[nodiscard]] std::string name(int i) const { return q.getColumnName(i); }
  [[nodiscard]] bool null(int i) const { return q.getColumn(i).isNull(); }
  [[nodiscard]] bool integer(int i) const { return q.getColumn(i).isInteger(); }
  [[nodiscard]] bool real(int i) const { return q.getColumn(i).isFloat(); }
  [[nodiscard]] std::int64_t i64(int i) const { return q.getColumn(i).getInt64(); }
  [[nodiscard]] double f64(int i) const { return q.getColumn(i).getDouble(); }
  [[nodiscard]] std::string text(int i) const { return q.getColumn(i).getString(); }
};
struct PgRow {
  const store::PgResult& r;
  [[nodiscard]] int size() const { return r.cols(); }
  [[nodiscard]] std::string name(int i) const { return r.name(i); }
  [[nodiscard]] bool null(int i) const { return r.null(0, i); }
  [[nodiscard]] bool integer(int i) const { return r.is_integer(i); }
  [[nodiscard]] bool real(int i) const { return r.is_float(i); }
  [[nodiscard]] std::int64_t i64(int i) const { return r.i64(0, i); }
  [[nodiscard]] double f64(int i) const { return std::stod(r.str(0, i)); }
  [[nodiscard]] std::string text(int i) const { return r.str(0, i); }
};

// Writes rows to stdout as CSV (a header before the first row) or NDJSON, one by one.
class RowWriter {
 public:
  explicit RowWriter(bool csv) : csv_(csv) {}
  template <class Row>
  void write(const Row& row) {
    const int n = row.size();
    line_.clear();
    if (csv_) {
      if (!header_) {
        for (int i = 0; i < n; ++i) {
          if (i) line_.push_back(',');
          csv_write_field(line_, row.name(i), false);
        }
        line_.push_back('\n');
        header_ = true;
      }
      for (int i = 0; i < n; ++i) {
        if (i) line_.push_back(',');
        // Text cells that a spreadsheet would evaluate (=, +, -, @, tab, CR first) get a
        // leading ' (domain/csv.hpp); numbers the ledger holds as numbers are written as they are.
        if (!row.null(i)) csv_write_field(line_, row.text(i), !(row.integer(i) || row.real(i)));
      }
    } else {
      nlohmann::json j = nlohmann::json::object();
      for (int i = 0; i < n; ++i) {
        std::string name = row.name(i);
        if (row.null(i)) {
          j[name] = nullptr;
        } else if (row.integer(i)) {
          j[name] = row.i64(i);
        } else if (row.real(i)) {
          j[name] = row.f64(i);
        } else if (name == "report") {
          auto r = nlohmann::json::parse(row.text(i), nullptr, false);
          j[name] = r.is_discarded() ? nlohmann::json(row.text(i)) : r;
        } else {
          j[name] = row.text(i);
        }
      }
      line_ = j.dump();
    }
    line_.push_back('\n');
    std::fwrite(line_.data(), 1, line_.size(), stdout);
    ++rows_;
  }
  [[nodiscard]] std::int64_t rows() const { return rows_; }

 private:
  bool csv_;
  bool header_ = false;
  std::string line_;
  std::int64_t rows_ = 0;
};

int run_export(const GlobalOptions& g, store::ExportKind kind, const ExportOptions& o) {
  std::string from = ops::parse_date_arg("--from", o.from);
  std::string to = ops::parse_date_arg("--to", o.to);
  if (to < from) throw UsageError("--to " + to + " is before --from " + from);
  if (o.format != "csv" && o.format != "ndjson") throw UsageError("--format \"" + o.format + "\": expected csv or ndjson");
  if (g.json && o.format == "csv") throw UsageError("--json conflicts with --format csv");
  ops::yield_cpu_to_dispatch();
  auto env = ops::open_ledger_env(g);
  RowWriter out(o.format == "csv");
  if (env.pg) {
    store::ExportRowsPg(env.pg->conn(), kind, from, to, [&](const store::PgResult& r) { out.write(PgRow{r}); });
  } else {
    // A one-pass scan gains nothing from the connection's 64 MiB page cache; 2 MiB keeps the
    // export's memory flat however many rows it streams.
    env.db->exec("PRAGMA cache_size=-2048");
    store::ExportRows(*env.db, kind, from, to, [&](SQLite::Statement& q) { out.write(SqliteRow{q}); });
  }
  std::fflush(stdout);
  env.ctx.log->info("exported {} row(s) for {} to {}{}", out.rows(), from, to, env.pg ? " from PostgreSQL" : "");
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
