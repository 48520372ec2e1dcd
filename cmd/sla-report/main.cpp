// sla-report: see man/sla-report.1. The logic lives in core/app.
#include "cli/commands.hpp"

int main(int argc, char** argv) { return daybreak::sla_report_main(argc, argv); }
