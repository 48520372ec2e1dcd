#pragma once
// `dispatch --supervise`: a parent process that runs dispatch as a child and restarts it at
// once when it crashes, so a run resumes in well under a second instead of waiting for the
// cron watchdog's next minute and the dead owner's lease to expire.
#include <string>
#include <vector>

#include "cli/common.hpp"

namespace daybreak {

/// argv without the supervisor's own flags (--supervise, --max-restarts N / --max-restarts=N):
/// what the child is started with.
std::vector<std::string> supervised_child_args(int argc, char** argv);

/// Whether a child that exited normally with `code` ran to a decision (0 done/idle/skipped,
/// 1 SLA missed or lease lost, 2 usage, 3 configuration, 5 provider: a restart would change
/// nothing) rather than failing in a way a restart can cure (4 database, anything undocumented).
bool supervised_exit_is_final(int code);

/// Forks and execs this binary with `supervised_child_args`, restarting it at once after it
/// dies from a signal or exits with a non-final code, at most `max_restarts` times. Before each
/// restart the dead child's run leases are expired (it was reaped, so it is certainly dead) so
/// the new child takes its runs over at once; the rows it had in flight become `uncertain` as
/// after any crash. SIGTERM/SIGINT are forwarded to the child and end supervision. Returns the
/// last child's exit code (128 + N when it died from signal N).
int supervise_dispatch(int argc, char** argv, const GlobalOptions& g, int max_restarts);

}  // namespace daybreak
