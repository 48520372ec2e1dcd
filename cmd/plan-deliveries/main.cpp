// plan-deliveries: see man/plan-deliveries.1. The logic lives in core/app.
#include "cli/commands.hpp"

int main(int argc, char** argv) { return daybreak::plan_deliveries_main(argc, argv); }
