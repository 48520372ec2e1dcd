// The operator tool `daybreak`: subcommands that operators run by hand, each wired in its own
// file (op_*.cpp) and calling the core.
#include "cli/commands.hpp"
#include "cli/op_support.hpp"

namespace daybreak {

int operator_main(int argc, char** argv) {
  return run_main("daybreak", [&]() -> int {
    CLI::App app{"daybreak: operator tool for the daybreak delivery ledger"};
    app.require_subcommand(1);
    GlobalOptions g;
    add_global_options(app, g);
    Action action;
    add_import_commands(app, g, action);
    add_generate_command(app, g, action);
    add_explain_command(app, g, action);
    add_content_commands(app, g, action);
    add_doctor_command(app, g, action);
    add_content_catalog_commands(app, g, action);  // after add_content_commands: joins `content`
    add_status_command(app, g, action);
    add_audit_command(app, g, action);
    add_advisor_commands(app, g, action);
    add_override_commands(app, g, action);
    add_dead_commands(app, g, action);
    add_export_commands(app, g, action);
    add_retention_commands(app, g, action);
    add_ingest_command(app, g, action);
    add_backup_commands(app, g, action);
    add_migrate_ledger_command(app, g, action);
    add_alerts_commands(app, g, action);
    add_schedule_commands(app, g, action);
    add_send_now_command(app, g, action);
    add_serve_command(app, g, action);
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    if (!action) throw UsageError("no subcommand chosen; see daybreak --help");
    // With [database] url every subcommand either speaks the PostgreSQL ledger or works on the
    // SQLite file by design (README "What speaks PostgreSQL, precisely"): none is refused.
    return action();
  });
}

}  // namespace daybreak
