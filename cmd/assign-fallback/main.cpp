// assign-fallback: see man/assign-fallback.1. The logic lives in core/app.
#include "cli/commands.hpp"

int main(int argc, char** argv) { return daybreak::assign_fallback_main(argc, argv); }
