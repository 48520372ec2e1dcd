// daybreak: the operator tool; see man/daybreak.1. The logic lives in core/app.
#include "cli/commands.hpp"

int main(int argc, char** argv) { return daybreak::operator_main(argc, argv); }
