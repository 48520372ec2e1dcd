// daybreak-callbacks' command line and HTTP wiring: flags, routes → CallbackReceiver
// (core/app/callbacks.cpp), a thread that applies pending statuses, signals → a clean stop.
// It lives next to the main, like daybreak-sim's, because cpp-httplib must be compiled with the
// same definitions as the shared library Debian ships (cmd/CMakeLists.txt).
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include "app/callbacks.hpp"
#include "app/common.hpp"

namespace daybreak {
namespace {

/// Largest body accepted: Meta batches at most a few statuses per request (a few KiB); this
/// only stops abuse before the signature is checked.
constexpr std::size_t kMaxBody = 1 << 20;

struct Flags {
  std::string listen = "127.0.0.1:8089";
  std::string port_file;
  std::string spool_dir;
  long pending_interval_ms = 5000;  // statuses that named no known delivery wait at most this long after it appears
  int threads = 8;                  // concurrent connections; requests serialise on the database anyway
};

/// Writes the port through a temporary file and rename(2), so a test polling for it never
/// reads half a number.
void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) throw CheckFailed("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw CheckFailed("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
}

std::pair<std::string, int> split_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("--listen \"" + s + "\": expected HOST:PORT");
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) throw UsageError("--listen \"" + s + "\": port must be 0..65535");
  return {s.substr(0, colon), port};
}

nlohmann::json error_body(const std::string& message) { return {{"error", message}}; }

int serve(const Flags& flags, AppContext& ctx) {
  auto& log = ctx.log;
  auto [host, port] = split_listen(flags.listen);
  if (!flags.spool_dir.empty() && !std::filesystem::is_directory(flags.spool_dir)) {
    throw UsageError("--spool-dir \"" + flags.spool_dir + "\": not a directory");
  }
  // Both secrets are read here, before anything is opened: one that is configured but cannot be
  // read (its variable unset, its file unreadable) stops the receiver with exit 3, naming it.
  const bool has_app_secret = !ctx.cfg.whatsapp.app_secret.value().empty();
  const bool has_verify_token = !ctx.cfg.whatsapp.verify_token.value().empty();
  if (!has_app_secret) {
    log->warn("whatsapp.app_secret is not set: every callback POST will be rejected with 401");
  }
  if (!has_verify_token) {
    log->warn("whatsapp.verify_token is not set: the GET verification handshake will be refused (403)");
  }

  // Block SIGINT/SIGTERM in every thread (the server's pool inherits the mask) and take them in
  // one thread with sigwait, where stopping the server is safe.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Spool mode never opens the database: the web front may run where the database is not.
  std::unique_ptr<store::Db> db;
  if (flags.spool_dir.empty()) db = std::make_unique<store::Db>(ctx.cfg.database_path);
  store::Db* dbp = db.get();
  CallbackReceiver receiver(dbp, ctx.cfg, *ctx.clock, log, flags.spool_dir);
  if (dbp) receiver.apply_pending();  // events a crash left unapplied, statuses whose delivery appeared

  httplib::Server svr;
  const int threads = flags.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  svr.set_payload_max_length(kMaxBody);
  svr.set_tcp_nodelay(true);
  svr.set_socket_options([](socket_t sock) {  // SO_REUSEADDR only: never share the port with a second receiver
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  svr.Get(".*", [&receiver](const httplib::Request& req, httplib::Response& res) {
    auto r = receiver.get(req.get_param_value("hub.mode"), req.get_param_value("hub.verify_token"),
                          req.get_param_value("hub.challenge"));
    res.status = r.http_status;
    res.set_content(r.body, "text/plain");
  });
  svr.Post(".*", [&receiver](const httplib::Request& req, httplib::Response& res) {
    // req.body is the raw body as received: the signature covers exactly these bytes.
    auto out = receiver.post(req.get_header_value("X-Hub-Signature-256"), req.body);
    res.status = out.http_status;
    if (out.http_status == 200) {
      res.set_content(nlohmann::json{{"ok", true}, {"event_id", out.event_id}, {"duplicate", out.duplicate}}.dump(),
                      "application/json");
    } else {
      res.set_content(error_body(out.reason).dump(), "application/json");
    }
  });
  svr.set_exception_handler([log](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    // Not stored: 500 makes Meta (and the simulator) retry the request later.
    log->error("{} {}: {} (answered 500; the sender retries)", req.method, req.path, what);
    res.status = 500;
    res.set_content(error_body("internal error").dump(), "application/json");
  });

  if (port == 0) {
    port = svr.bind_to_any_port(host);
    if (port < 0) throw CheckFailed("cannot bind " + host + ": " + std::strerror(errno));
  } else if (!svr.bind_to_port(host, port)) {
    throw CheckFailed("cannot bind " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
  if (!flags.port_file.empty()) write_port_file(flags.port_file, port);

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::atomic<bool> by_signal{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!by_signal.exchange(true)) log->info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    svr.stop();  // finishes the requests in flight: an answered 200 was already stored
  });
  std::thread pending_thread([&] {
    if (!dbp) return;
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(flags.pending_interval_ms), [&] { return stopping; })) {
      lock.unlock();
      try {
        receiver.apply_pending();
      } catch (const std::exception& e) {
        log->warn("applying pending statuses failed, will retry: {}", e.what());
      }
      lock.lock();
    }
  });

  log->info("listening on {}:{} ({} mode{}{})", host, port, flags.spool_dir.empty() ? "database" : "spool",
            flags.spool_dir.empty() ? ", database " + ctx.cfg.database_path : ", spool " + flags.spool_dir,
            !has_app_secret ? ", NO APP SECRET: rejecting every POST" : "");
  const bool listened = svr.listen_after_bind();

  if (!by_signal.exchange(true)) pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  cv.notify_all();
  pending_thread.join();
  if (dbp) receiver.apply_pending();
  auto stats = receiver.stats();
  log->info("stopped: {}", stats.dump());
  if (ctx.json) print_json(stats);
  if (!listened) throw CheckFailed("listening on " + host + ":" + std::to_string(port) + " failed");
  return kExitOk;
}

}  // namespace

int callbacks_main(int argc, char** argv) {
  return run_main("daybreak-callbacks", [&]() -> int {
    CLI::App app{
        "daybreak-callbacks: receives WhatsApp status callbacks. GET answers Meta's verification handshake\n"
        "(hub.mode, hub.verify_token, hub.challenge); POST verifies X-Hub-Signature-256 over the raw body with\n"
        "whatsapp.app_secret (401 when missing or wrong, or when no secret is configured), stores the raw event\n"
        "durably, answers 200, and applies its statuses to the delivery ledger. Any path; GET /healthz."};
    GlobalOptions g;
    add_global_options(app, g);
    Flags flags;
    app.add_option("--listen", flags.listen, "HOST:PORT to listen on; port 0 picks a free one")->capture_default_str();
    app.add_option("--port-file", flags.port_file, "Write the bound port to this file (atomically) once bound");
    app.add_option("--spool-dir", flags.spool_dir,
                   "Write each verified request to this directory (for `daybreak ingest --spool`) instead of the database");
    app.add_option("--pending-interval-ms", flags.pending_interval_ms,
                   "How often statuses that matched no delivery yet are retried")
        ->check(CLI::Range(10L, 3'600'000L))
        ->capture_default_str();
    app.add_option("--threads", flags.threads, "Server threads (concurrent connections)")->check(CLI::Range(1, 256))->capture_default_str();
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = make_context(g, "daybreak-callbacks");
    return serve(flags, ctx);
  });
}

}  // namespace daybreak
