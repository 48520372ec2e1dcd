#pragma once
// The binaries' entry points and the operator tool's subcommand registrars. Each registrar adds
// its subcommands to the operator app and, when one is chosen, stores the work in `action`,
// which the operator main runs inside the one top-level catch.
#include <CLI/CLI.hpp>

#include <functional>

#include "cli/common.hpp"

namespace daybreak {

int assign_fallback_main(int argc, char** argv);
int plan_deliveries_main(int argc, char** argv);
int dispatch_main(int argc, char** argv);
int sla_report_main(int argc, char** argv);
int operator_main(int argc, char** argv);

/// The work a chosen operator subcommand will do.
using Action = std::function<int()>;

void add_import_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_generate_command(CLI::App& app, GlobalOptions& g, Action& action);
void add_explain_command(CLI::App& app, GlobalOptions& g, Action& action);
void add_content_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_doctor_command(CLI::App& app, GlobalOptions& g, Action& action);
// Operator subcommands (op_status, op_audit, op_advisors, op_catalog, op_overrides,
// op_dead, op_export, op_retention). add_content_catalog_commands must follow add_content_commands.
void add_status_command(CLI::App& app, GlobalOptions& g, Action& action);
void add_audit_command(CLI::App& app, GlobalOptions& g, Action& action);
void add_advisor_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_content_catalog_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_override_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_dead_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_export_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_retention_commands(CLI::App& app, GlobalOptions& g, Action& action);
void add_ingest_command(CLI::App& app, GlobalOptions& g, Action& action);
void add_backup_commands(CLI::App& app, GlobalOptions& g, Action& action);
// `daybreak migrate-ledger`: a SQLite day into the PostgreSQL ledger (op_migrate_ledger.cpp).
void add_migrate_ledger_command(CLI::App& app, GlobalOptions& g, Action& action);

// Monitoring: `daybreak alerts list|show|ack|check` (op_alerts.cpp).
void add_alerts_commands(CLI::App& app, GlobalOptions& g, Action& action);
// The schedule: `daybreak schedule show|fire JOB` (op_schedule.cpp).
void add_schedule_commands(CLI::App& app, GlobalOptions& g, Action& action);
// `daybreak send-now`: one item to a segment now, as an urgent run (op_send_now.cpp).
void add_send_now_command(CLI::App& app, GlobalOptions& g, Action& action);
// The operator console: `daybreak serve` (op_serve.cpp).
void add_serve_command(CLI::App& app, GlobalOptions& g, Action& action);

}  // namespace daybreak
