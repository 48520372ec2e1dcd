// daybreak-sim's command line and HTTP wiring: flags → Options, routes → Simulator, signals →
// a clean stop. The provider rules themselves live in simulator.cpp.
#include <pthread.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "app/common.hpp"
#include "callbacks.hpp"
#include "simulator.hpp"

namespace daybreak::sim {
namespace {

/// Exit codes, as documented for every daybreak binary (DESIGN.md §7).
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // could not bind, listen or write the port file
constexpr int kExitUsage = 2;

/// Largest request body accepted; a template send is a few KiB, so this only stops abuse.
constexpr std::size_t kMaxBody = 1 << 20;

struct Flags {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int threads = 64;
  bool log_requests = false;
  Options options;
  CallbackOptions callbacks;
};

/// httplib::Server with access to its listening socket: the compiled libcpp-httplib 0.11.4 listens
/// with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when the .so was built), so a client that
/// opens a dozen connections at once has SYNs dropped and waits a 1 s retransmit. Calling
/// listen(2) again on the bound socket raises the backlog (Linux updates it in place).
class Server : public httplib::Server {
 public:
  bool raise_backlog() { return ::listen(svr_sock_.load(), SOMAXCONN) == 0; }
};

/// Writes the port to `path` through a temporary file and rename(2), so a script polling for the
/// file never reads a half-written number.
bool write_port_file(const std::string& path, int port, std::string& error) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    out.flush();
    if (!out) {
      error = "cannot write " + tmp + ": " + std::strerror(errno);
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

void register_routes(httplib::Server& svr, Simulator& sim, const std::shared_ptr<spdlog::logger>& log,
                     bool log_requests) {
  svr.Post(R"(/([^/]+)/([^/]+)/messages)", [&sim, log, log_requests](const httplib::Request& req,
                                                                      httplib::Response& res) {
    Reply r = sim.send(req.matches[2].str(), req.get_header_value("Authorization"), req.body,
                       SteadyClock::now());
    if (r.delay.count() > 0) std::this_thread::sleep_for(r.delay);
    if (log_requests) log->info("POST {} -> {} {}", req.path, r.http_status, r.body);
    res.status = r.http_status;
    res.set_content(r.body, "application/json");
  });
  svr.Get("/stats", [&sim](const httplib::Request& req, httplib::Response& res) {
    const bool summary = req.has_param("summary") && req.get_param_value("summary") != "0";
    res.set_content(sim.stats_json(summary), "application/json");
  });
  auto reset = [&sim](const httplib::Request&, httplib::Response& res) {
    sim.reset(SteadyClock::now());
    res.set_content(R"({"success":true})", "application/json");
  };
  svr.Post("/reset", reset);
  // httplib 0.11 answers 400 to a POST with neither Content-Length nor chunked body before any
  // route runs; `curl -X POST .../reset` sends exactly that, so take it here. Only when there is
  // no body at all: an unread body would corrupt the next request on a keep-alive connection.
  svr.set_pre_routing_handler([reset](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "POST" && req.path == "/reset" && !req.has_header("Content-Length") &&
        !req.has_header("Transfer-Encoding")) {
      reset(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.Post("/control", [&sim, log](const httplib::Request& req, httplib::Response& res) {
    Reply r = sim.control(req.body, SteadyClock::now());
    log->info("control {} -> {}", req.body, r.http_status);
    res.status = r.http_status;
    res.set_content(r.body, "application/json");
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  // Unknown paths and malformed requests get a Graph-style body too, so a client with a wrong
  // base URL or version logs something readable instead of an empty 404.
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404 ? "Unknown path components: " + req.path
                                                  : "Bad request (HTTP " + std::to_string(res.status) + ")";
    nlohmann::ordered_json body = {
        {"error", {{"message", message}, {"type", "OAuthException"}, {"code", res.status == 404 ? 2500 : 100}}}};
    res.set_content(body.dump(), "application/json");
  });
  svr.set_exception_handler([log](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log->error("{} {}: {}", req.method, req.path, what);
    nlohmann::ordered_json body = {
        {"error", {{"message", "An unknown error occurred"}, {"type", "OAuthException"}, {"code", 1}}}};
    res.status = 500;
    res.set_content(body.dump(), "application/json");
  });
}

/// `GET /{version}/{phone_number_id}`: the phone number object, which `daybreak doctor
/// --check-providers` fetches as a harmless credentials check. As the Graph API does: a bad or
/// missing bearer token → 401 with error code 190 (OAuthException); an id that is not a Graph
/// object id (not all digits) → 400 with code 100, subcode 33; else 200 with the fields Meta
/// documents for a WhatsApp Business phone number (id, display_phone_number, verified_name,
/// quality_rating). Sends are not counted or rate-limited here.
void register_phone_number_route(httplib::Server& svr, const std::string& accepted_token) {
  svr.Get(R"(/([^/]+)/([^/]+))", [accepted_token](const httplib::Request& req, httplib::Response& res) {
    const std::string auth = req.get_header_value("Authorization");
    std::string token;
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) token = auth.substr(7);
    const std::string id = req.matches[2].str();
    nlohmann::ordered_json body;
    if (token.empty() || (!accepted_token.empty() && token != accepted_token)) {
      res.status = 401;
      body = {{"error", {{"message", "Invalid OAuth access token - Cannot parse access token"}, {"type", "OAuthException"}, {"code", 190}}}};
    } else if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      res.status = 400;
      body = {{"error",
               {{"message", "Unsupported get request. Object with ID '" + id + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation"},
                {"type", "GraphMethodException"},
                {"code", 100},
                {"error_subcode", 33}}}};
    } else {
      body = {{"verified_name", "daybreak simulator"},
              {"display_phone_number", "+1 555 000 " + id.substr(id.size() > 4 ? id.size() - 4 : 0)},
              {"quality_rating", "GREEN"},
              {"id", id}};
    }
    // Every HTTP server with a clock sends Date (RFC 9110 §6.6.1); doctor compares its own clock
    // with it. cpp-httplib does not add one by itself.
    char date[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    res.set_header("Date", date);
    res.set_content(body.dump(), "application/json");
  });
}

int run(const Flags& flags) {
  auto log = spdlog::stderr_logger_mt("daybreak-sim");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l daybreak-sim: %v");

  // Block SIGINT/SIGTERM in every thread (the pool inherits this mask) and take them in one
  // thread with sigwait, where calling svr.stop() is safe, unlike in a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Simulator sim(flags.options);
  // /control's down_from_ms/down_until_ms are scenario times: the clock every daybreak binary
  // reads (DAYBREAK_CLOCK, else the system clock), so a test can say "down from S+30 s to S+120 s".
  sim.set_scenario_clock([clock = std::shared_ptr<Clock>(daybreak::make_clock_from_env())] { return clock->now(); });
  // Status callbacks (callbacks.hpp): posted from their own thread; their timestamps follow
  // DAYBREAK_CLOCK like every daybreak binary, so they line up with the ledger's times.
  std::unique_ptr<CallbackPoster> poster;
  if (!flags.callbacks.url.empty()) {
    CallbackOptions co = flags.callbacks;
    co.time_scale = flags.options.time_scale;
    co.seed = flags.options.seed;
    poster = std::make_unique<CallbackPoster>(co, daybreak::make_clock_from_env());
    sim.set_on_accept([p = poster.get()](const AcceptedMessage& m) { p->on_accept(m); });
    if (co.app_secret.empty()) log->warn("--callback-url without --app-secret: callbacks are sent unsigned");
  }
  Server svr;
  const int threads = flags.threads;
  // Each keep-alive connection holds a pool thread while open, so the pool bounds how many
  // clients are served concurrently (not serialised).
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  svr.set_keep_alive_max_count(std::size_t{1} << 30);  // the library default (5) would force reconnects
  svr.set_tcp_nodelay(true);  // small JSON answers: Nagle plus delayed ACK would add ~40 ms each
  svr.set_payload_max_length(kMaxBody);
  // httplib's default also sets SO_REUSEPORT, which lets a second simulator bind the same port
  // and silently take half the requests (and half the counts): keep only SO_REUSEADDR.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  register_routes(svr, sim, log, flags.log_requests);
  svr.Get("/stats/callbacks", [&poster](const httplib::Request&, httplib::Response& res) {
    res.set_content(poster ? poster->stats_json() : std::string(R"({"url":""})"), "application/json");
  });
  register_phone_number_route(svr, flags.options.token);

  int port = flags.port;
  if (port == 0) {
    port = svr.bind_to_any_port(flags.host);
    if (port < 0) {
      log->error("cannot bind {}: {}", flags.host, std::strerror(errno));
      return kExitFailed;
    }
  } else if (!svr.bind_to_port(flags.host, port)) {
    log->error("cannot bind {}:{}: {}", flags.host, port, std::strerror(errno));
    return kExitFailed;
  }
  if (!svr.raise_backlog()) log->warn("cannot raise the listen backlog: {}", std::strerror(errno));
  if (!flags.port_file.empty()) {
    std::string error;
    if (!write_port_file(flags.port_file, port, error)) {
      log->error("{}", error);
      return kExitFailed;
    }
  }

  std::atomic<bool> by_signal{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!by_signal.exchange(true)) {
      log->info("signal {}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    svr.stop();
  });

  const auto& o = flags.options;
  log->info("listening on {}:{} (mps={} time_scale={} latency median={}ms p99={}ms transient={} permanent={} "
            "pair_interval={}ms seed={} threads={})",
            flags.host, port, o.mps, o.time_scale, o.latency_median_ms, o.latency_p99_ms, o.transient_rate,
            o.permanent_rate, o.pair_interval_ms, o.seed, threads);
  const bool listened = svr.listen_after_bind();

  // The server stopped on its own (not by a signal): wake the signal thread so it can be joined.
  if (!by_signal.exchange(true)) pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (poster) {
    poster->stop();
    log->info("callbacks: {}", poster->stats_json());
  }
  log->info("stopped: {}", sim.stats_json(/*summary=*/true));
  if (!listened) {
    log->error("listen on {}:{} failed", flags.host, port);
    return kExitFailed;
  }
  return kExitOk;
}

/// A numeric-flag check with a readable message (CLI11 2.1's PositiveNumber prints DBL_MAX).
CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& in) -> std::string {
        std::size_t used = 0;
        double v = 0;
        try {
          v = std::stod(in, &used);
        } catch (const std::exception&) {
          return "not a number: " + in;
        }
        if (used != in.size()) return "not a number: " + in;
        if (allow_zero ? v >= 0 : v > 0) return {};
        return std::string(allow_zero ? "must be >= 0" : "must be > 0") + ", got " + in;
      },
      allow_zero ? "NONNEGATIVE" : "POSITIVE");
}

}  // namespace

int sim_main(int argc, char** argv) {
  Flags flags;
  auto& o = flags.options;
  CLI::App app{
      "daybreak-sim: a WhatsApp Cloud API compatible provider simulator for daybreak's demo, tests and bench.\n"
      "Serves POST /{version}/{phone_number_id}/messages, GET /{version}/{phone_number_id}, plus GET /stats, POST /reset, POST /control, GET /healthz."};
  app.add_option("--host", flags.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", flags.port, "TCP port; 0 picks a free one")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--port-file", flags.port_file, "Write the bound port to this file (atomically) once listening");
  app.add_option("--mps", o.mps, "Messages per second per phone_number_id (demo time); burst = one second")
      ->check(number_check(false))
      ->capture_default_str();
  app.add_option("--time-scale", o.time_scale, "Demo clock speed: real rate = mps*X, real latency = latency/X")
      ->check(number_check(false))
      ->capture_default_str();
  app.add_option("--latency-ms-median", o.latency_median_ms, "Median answer latency, demo ms (log-normal)")
      ->check(number_check(true))
      ->capture_default_str();
  app.add_option("--latency-ms-p99", o.latency_p99_ms, "99th percentile answer latency, demo ms")
      ->check(number_check(true))
      ->capture_default_str();
  app.add_option("--transient-rate", o.transient_rate, "Probability of 131000 (HTTP 500) per attempt")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--permanent-rate", o.permanent_rate, "Share of recipients answered 131026 (HTTP 400)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--pair-interval-ms", o.pair_interval_ms,
                 "Minimum demo ms between accepted messages to one recipient (131056); 0 disables")
      ->check(number_check(true))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the failure draws (reproducible per message and attempt)")
      ->capture_default_str();
  app.add_option("--token", o.token, "Accept only this bearer token (default: any non-empty token)");
  app.add_option("--template-error-match", o.template_error_match,
                 "Answer 132000 (template parameters) to template sends whose text parameters contain this");
  app.add_option("--threads", flags.threads, "Server threads = concurrent client connections served")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_flag("--log-requests", flags.log_requests, "Log every send and its answer to stderr (slow)");
  auto& cb = flags.callbacks;
  app.add_option("--callback-url", cb.url, "POST signed status callbacks (sent, delivered, read or failed) here")
      ->group("Status callbacks");
  app.add_option("--app-secret", cb.app_secret, "Sign callbacks with X-Hub-Signature-256 under this app secret")
      ->group("Status callbacks");
  app.add_option("--callback-duplicate", cb.duplicate, "POST every callback N times (webhooks are at-least-once)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str()
      ->group("Status callbacks");
  app.add_option("--callback-delay-ms", cb.delay_ms, "Demo ms from acceptance to `sent`, and between successive statuses")
      ->check(number_check(true))
      ->capture_default_str()
      ->group("Status callbacks");
  app.add_option("--callback-reorder", cb.reorder_window,
                 "Post callbacks shuffled in groups of up to N (held up to 3 delays so a message's statuses meet); 0 = in order")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str()
      ->group("Status callbacks");
  app.add_option("--callback-read-rate", cb.read_rate, "Share of delivered messages that are read")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str()
      ->group("Status callbacks");
  app.add_option("--callback-fail-rate", cb.fail_rate, "Share of accepted messages that end `failed` (131026, errors[])")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str()
      ->group("Status callbacks");

  try {
    app.parse(argc, argv);
    if (o.latency_p99_ms < o.latency_median_ms) {
      throw CLI::ValidationError("--latency-ms-p99", "must be >= --latency-ms-median");
    }
  } catch (const CLI::Error& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return run(flags);
}

}  // namespace daybreak::sim
