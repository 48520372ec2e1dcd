// dispatch: see man/dispatch.1. The logic lives in core/app.
#include "cli/commands.hpp"

int main(int argc, char** argv) { return daybreak::dispatch_main(argc, argv); }
