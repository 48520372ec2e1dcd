#include "cli/supervise.hpp"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "store/db.hpp"

namespace daybreak {
namespace {

// The child being supervised, for the signal handler; 0 while none is running.
volatile std::sig_atomic_t g_child = 0;
// Set once SIGTERM/SIGINT arrived: the operator wants dispatch to stop, so no more restarts.
volatile std::sig_atomic_t g_stopping = 0;

extern "C" void forward_signal(int sig) {
  g_stopping = 1;
  pid_t child = static_cast<pid_t>(g_child);
  if (child > 0) ::kill(child, sig);  // async-signal-safe; a second signal is forwarded too
}

std::string hostname() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return host;
}

// The dead child owned its runs as "host:pid:random" (engine::make_owner_id). Clearing
// lease_until (and keeping the owner, so the new child sees a take-over and marks that owner's
// in-flight rows uncertain) lets the restarted child take the runs at once. Safe because we
// reaped the pid ourselves: nothing of that owner is alive.
// This is a statement on `runs` outside store/runs.cpp only because it exists for this one
// caller; it belongs there as RunExpireLeasesOfOwnerPrefix if a second caller appears.
std::int64_t expire_leases_of(const Config& cfg, pid_t child) {
  std::string prefix = hostname() + ":" + std::to_string(child) + ":";
  store::Db db(cfg.database_path);
  std::int64_t n = 0;
  db.write_tx([&] {
    n = store::guarded("expire dead child's leases", [&] {
      auto& q = db.stmt(
          "UPDATE runs SET lease_until = NULL WHERE substr(owner, 1, length(?1)) = ?1 "
          "AND state NOT IN ('closed', 'cancelled')");
      q.bind(1, prefix);
      return static_cast<std::int64_t>(q.exec());
    });
  });
  return n;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exit " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

std::vector<std::string> supervised_child_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a == "--supervise") continue;
    if (i > 0 && a == "--max-restarts") {
      ++i;  // and its value
      continue;
    }
    if (i > 0 && a.rfind("--max-restarts=", 0) == 0) continue;
    out.push_back(std::move(a));
  }
  return out;
}

bool supervised_exit_is_final(int code) {
  return code == kExitOk || code == kExitCheckFailed || code == kExitUsage || code == kExitConfig ||
         code == kExitProvider;
}

int supervise_dispatch(int argc, char** argv, const GlobalOptions& g, int max_restarts) {
  auto ctx = make_context(g, "dispatch-supervisor");
  auto args = supervised_child_args(argc, argv);
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  struct sigaction sa{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);

  for (int restarts = 0;; ++restarts) {
    // Block the forwarded signals across fork so one cannot arrive before g_child is set (it
    // would be lost) or reach the child before it has reset its handlers.
    ::sigprocmask(SIG_BLOCK, &block, &old);
    pid_t pid = ::fork();
    if (pid < 0) {
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // Its own process group: a terminal's Ctrl-C reaches only the supervisor, which forwards
      // it once. In the same group the child would get it twice, and a second signal makes
      // dispatch leave at once instead of stopping gracefully.
      ::setpgid(0, 0);
      ::signal(SIGTERM, SIG_DFL);
      ::signal(SIGINT, SIG_DFL);
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      ::execv("/proc/self/exe", cargv.data());
      ::execvp(cargv[0], cargv.data());  // no /proc: fall back to argv[0]
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so it holds before either side goes on (the usual race)
    g_child = pid;
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ctx.log->info("supervising dispatch pid {} (restart {} of at most {})", pid, restarts, max_restarts);

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
    g_child = 0;
    int code = exit_code_of(status);

    if (g_stopping) {
      ctx.log->info("dispatch pid {} {} after a stop signal; not restarting", pid, describe(status));
      return code;
    }
    if (WIFEXITED(status) && supervised_exit_is_final(code)) return code;
    if (restarts >= max_restarts) {
      ctx.log->error("dispatch pid {} {}; giving up after {} restart(s) (--max-restarts)", pid, describe(status), restarts);
      return code;
    }
    ctx.log->warn("dispatch pid {} {}; restarting it now", pid, describe(status));
    try {
      auto n = expire_leases_of(ctx.cfg, pid);
      if (n > 0) ctx.log->info("expired {} lease(s) of the dead child so its runs resume at once", n);
    } catch (const std::exception& e) {
      if (WIFSIGNALED(status)) {
        // A killed child left its leases behind; the new child would skip those runs until the
        // leases lapse, so wait them out rather than restart into a no-op.
        ctx.log->warn("could not expire the dead child's leases ({}); waiting {} ms for them to lapse", e.what(),
                      ctx.cfg.dispatch.lease_ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(ctx.cfg.dispatch.lease_ms + 500));
      } else {
        // A child that exited ran its own clean-up (leases released); the failure is likely the
        // same one it died of, and the restart will show it.
        ctx.log->warn("could not expire the dead child's leases ({})", e.what());
      }
    }
    if (g_stopping) return code;
  }
}

}  // namespace daybreak
