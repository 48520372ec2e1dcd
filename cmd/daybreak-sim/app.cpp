// daybreak-sim's command line and HTTP wiring: flags → Options, routes → Simulator, signals →
// a clean stop. The provider rules themselves live in simulator.cpp.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/common.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"
#include "domain/templates.hpp"
#include "domain/types.hpp"
#include "callbacks.hpp"
#include "http_server.hpp"
#include "simulator.hpp"

namespace daybreak::sim {
namespace {

/// The environment variable the simulator reads its app secret from (no --app-secret-file).
constexpr const char* kAppSecretEnv = "DAYBREAK_SIM_APP_SECRET";

/// Exit codes, as documented for every daybreak binary.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // could not bind, listen or write the port file
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;  // the app secret's file or variable is refused (open mode, empty)

/// Largest request body accepted; a template send is a few KiB, so this only stops abuse.
constexpr std::size_t kMaxBody = 1 << 20;

struct Flags {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int threads = 1;
  bool log_requests = false;
  std::string request_log;  ///< append every message POST (status and request body) here, one line each
  std::string tls_cert, tls_key;  ///< both set: serve https:// with this PEM certificate chain and key
  Options options;
  CallbackOptions callbacks;
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

/// A Graph-style error body, as the Graph API wraps every error.
std::string graph_error(std::string_view message, std::string_view type, int code) {
  nlohmann::ordered_json body = {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
  return body.dump();
}

/// `/{a}/{b}` or `/{a}/{b}/{c}`: the path's segments, if it has exactly `n` non-empty ones.
bool split_path(std::string_view path, std::size_t n, std::string_view* out) {
  std::size_t k = 0;
  while (!path.empty()) {
    if (path.front() != '/') return false;
    path.remove_prefix(1);
    std::size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (seg.empty() || k == n) return false;
    out[k++] = seg;
    path.remove_prefix(seg.size());
  }
  return k == n;
}

/// `GET /{version}/{phone_number_id}`: the phone number object, which `daybreak doctor
/// --check-providers` fetches as a harmless credentials check. As the Graph API does: a bad or
/// missing bearer token → 401 with error code 190 (OAuthException); an id that is not a Graph
/// object id (not all digits) → 400 with code 100, subcode 33; else 200 with the fields Meta
/// documents for a WhatsApp Business phone number (id, display_phone_number, verified_name,
/// quality_rating). Sends are not counted or rate-limited here. Every answer carries Date
/// (RFC 9110 §6.6.1): doctor compares its own clock with it.
http::Response phone_number(std::string_view authorization, std::string_view id_view, const std::string& accepted_token) {
  std::string_view token;
  if (authorization.size() > 7 &&
      (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer ")) {
    token = authorization.substr(7);
  }
  const std::string id(id_view);
  http::Response res;
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
  res.body = body.dump();
  return res;
}

/// Routes a request to the provider model. Runs on the server's event loops: nothing here may
/// block (the simulated latency is returned as `delay`, not slept).
class Router {
 public:
  Router(Simulator& sim, const std::shared_ptr<spdlog::logger>& log, bool log_requests, std::string token,
         std::function<std::string()> callback_stats)
      : sim_(sim), log_(log), log_requests_(log_requests), token_(std::move(token)),
        callback_stats_(std::move(callback_stats)) {}

  /// --request-log: every message POST is appended as "<status> <path> <request body>" and
  /// flushed, so a test can read what the provider received (bodies are one-line JSON).
  void set_request_log(std::ofstream* out) { request_log_ = out; }

  http::Response operator()(const http::Request& req) {
    std::string_view seg[3];
    http::Response res;
    if (req.method == "POST" && split_path(req.path, 3, seg) && seg[2] == "messages") {
      Reply r = sim_.send(seg[1], req.header("Authorization"), req.body, SteadyClock::now());
      if (log_requests_) log_->info("POST {} -> {} {}", req.path, r.http_status, r.body);
      if (request_log_) {
        std::lock_guard lk(request_log_mu_);
        *request_log_ << r.http_status << ' ' << req.path << ' ' << req.body << '\n' << std::flush;
      }
      res.status = r.http_status;
      res.body = std::move(r.body);
      res.delay = r.delay;
      return res;
    }
    if (req.method == "GET" && req.path == "/stats") {
      auto summary = req.query_param("summary");
      res.body = sim_.stats_json(summary.has_value() && *summary != "0");
      return res;
    }
    if (req.method == "GET" && req.path == "/stats/callbacks") {
      res.body = callback_stats_();
      return res;
    }
    if (req.method == "POST" && req.path == "/reset") {
      sim_.reset(SteadyClock::now());
      res.body = R"({"success":true})";
      return res;
    }
    if (req.method == "POST" && req.path == "/control") {
      Reply r = sim_.control(req.body, SteadyClock::now());
      log_->info("control {} -> {}", req.body, r.http_status);
      res.status = r.http_status;
      res.body = std::move(r.body);
      return res;
    }
    if (req.method == "GET" && req.path == "/healthz") {
      res.content_type = "text/plain";
      res.body = "ok\n";
      return res;
    }
    if (req.method == "GET" && split_path(req.path, 2, seg)) {
      return phone_number(req.header("Authorization"), seg[1], token_);
    }
    // Unknown paths get a Graph-style body too, so a client with a wrong base URL or version
    // logs something readable instead of an empty 404.
    res.status = 404;
    res.body = graph_error("Unknown path components: " + std::string(req.path), "OAuthException", 2500);
    return res;
  }

 private:
  Simulator& sim_;
  std::shared_ptr<spdlog::logger> log_;
  bool log_requests_;
  std::ofstream* request_log_ = nullptr;
  std::mutex request_log_mu_;
  std::string token_;
  std::function<std::string()> callback_stats_;
};

int run(const Flags& flags) {
  auto log = spdlog::stderr_logger_mt("daybreak-sim");
  if (is_journal_stream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO)) {
    set_log_format(*log, "daybreak-sim", true);  // under systemd: "<N>message", levels to journald
  } else {
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l daybreak-sim: %v");
  }

  // Block SIGINT/SIGTERM in every thread (the pool inherits this mask) and take them in one
  // thread with sigwait, where calling svr.stop() is safe, unlike in a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // --tls-cert: OpenSSL writes with write(2), so a client gone away would raise SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

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
    if (co.app_secret.empty()) {
      log->warn("--callback-url without --app-secret-file or {}: callbacks are sent unsigned", kAppSecretEnv);
    }
  }
  Router router(sim, log, flags.log_requests, flags.options.token,
                [&poster] { return poster ? poster->stats_json() : std::string(R"({"url":""})"); });
  std::ofstream request_log;
  if (!flags.request_log.empty()) {
    request_log.open(flags.request_log, std::ios::app);
    if (!request_log) {
      log->error("--request-log {}: cannot open for appending", flags.request_log);
      return 3;
    }
    router.set_request_log(&request_log);
  }
  http::Server svr(
      [&router, log](const http::Request& req) {
        try {
          return router(req);
        } catch (const std::exception& e) {
          log->error("{} {}: {}", req.method, req.path, e.what());
          http::Response res;
          res.status = 500;
          res.body = graph_error("An unknown error occurred", "OAuthException", 1);
          return res;
        }
      },
      kMaxBody);
  if (!flags.tls_cert.empty() || !flags.tls_key.empty()) {
    std::string tls_error;
    if (flags.tls_cert.empty() || flags.tls_key.empty()) {
      log->error("--tls-cert and --tls-key go together");
      return 3;
    }
    if (!svr.enable_tls(flags.tls_cert, flags.tls_key, tls_error)) {
      log->error("{}", tls_error);
      return 3;
    }
  }
  std::string bind_error;
  const int port = svr.bind(flags.host, flags.port, bind_error);
  if (port < 0) {
    log->error("{}", bind_error);
    return kExitFailed;
  }
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
  log->info("listening on {}{}:{} (mps={} time_scale={} latency median={}ms p99={}ms transient={} permanent={} "
            "pair_interval={}ms seed={} threads={})",
            flags.tls_cert.empty() ? "" : "https://", flags.host, port, o.mps, o.time_scale, o.latency_median_ms, o.latency_p99_ms, o.transient_rate,
            o.permanent_rate, o.pair_interval_ms, o.seed, flags.threads);
  bool served = true;
  try {
    svr.run(flags.threads);
  } catch (const std::exception& e) {
    log->error("serving on {}:{} failed: {}", flags.host, port, e.what());
    served = false;
  }

  // The server stopped on its own (not by a signal): wake the signal thread so it can be joined.
  if (!by_signal.exchange(true)) pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (poster) {
    poster->stop();
    log->info("callbacks: {}", poster->stats_json());
  }
  log->info("stopped: {}", sim.stats_json(/*summary=*/true));
  if (!served) return kExitFailed;
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
  std::vector<std::string> fail_numbers;
  app.add_option("--fail-number", fail_numbers,
                 "PHONE_NUMBER_ID:CODE:FROM_SECONDS: from FROM_SECONDS of demo time after start on, answer every send "
                 "through that number with WhatsApp error CODE (e.g. 131048 spam rate limit, 368 account blocked; "
                 "repeatable)");
  app.add_option("--held-for-quality-rate", o.held_for_quality_rate,
                 "Share of recipients whose accepted template sends say message_status held_for_quality_assessment")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  std::vector<std::string> templates;
  app.add_option("--template", templates,
                 "An approved template NAME:LANGUAGE_CODE:HEADER:BODY_PARAMS (header none, text, image, document or "
                 "video; repeatable). With any, template sends must match one: else 132001 (no such template in that "
                 "language), 132012 (header format) or 132000 (parameter count)");
  app.add_option("--threads", flags.threads,
                 "Event-loop threads; each serves any number of connections (answers are timers, not sleeps)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--tls-cert", flags.tls_cert, "Serve https:// with this PEM certificate chain (with --tls-key)");
  app.add_option("--tls-key", flags.tls_key, "The PEM private key of --tls-cert");
  app.add_flag("--log-requests", flags.log_requests, "Log every send and its answer to stderr (slow)");
  app.add_option("--request-log", flags.request_log,
                 "Append every message request to FILE, one line each: HTTP status, path, request body (tests)");
  auto& cb = flags.callbacks;
  app.add_option("--callback-url", cb.url, "POST signed status callbacks (sent, delivered, read or failed) here")
      ->group("Status callbacks");
  // The app secret never goes on the command line (ps(1) and /proc/PID/cmdline show it to every
  // local user): from a file (owner-only, its first line) or the environment.
  std::string app_secret_file;
  app.add_option("--app-secret-file", app_secret_file,
                 "Sign callbacks with X-Hub-Signature-256 under the app secret on the first line of this owner-only "
                 "file (default: the environment variable " + std::string(kAppSecretEnv) + "; neither = unsigned)")
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
  app.add_option("--callback-fail-rate", cb.fail_rate, "Share of accepted messages that end `failed` (errors[] with --callback-fail-code)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str()
      ->group("Status callbacks");
  app.add_option("--callback-fail-code", cb.fail_code,
                 "Error code of those failed statuses: 131026 (message undeliverable) or 131049 (per-user marketing limit)")
      ->check(CLI::IsMember({131026, 131049}))
      ->capture_default_str()
      ->group("Status callbacks");

  try {
    app.parse(argc, argv);
    if (o.latency_p99_ms < o.latency_median_ms) {
      throw CLI::ValidationError("--latency-ms-p99", "must be >= --latency-ms-median");
    }
    for (const auto& spec : templates) {
      // NAME:CODE:HEADER:BODY_PARAMS; the header names are daybreak's own (domain/templates.hpp).
      const auto f = split_list(spec, ':');
      if (f.size() != 4 || !header_kind_from_string(f[2]) || f[3].find_first_not_of("0123456789") != std::string::npos ||
          f[3].size() > 2) {
        throw CLI::ValidationError("--template", "expected NAME:LANGUAGE_CODE:HEADER:BODY_PARAMS, got \"" + spec + "\"");
      }
      o.templates.push_back({f[0], f[1], f[2], std::stoi(f[3])});
    }
    for (const auto& spec : fail_numbers) {
      // PHONE_NUMBER_ID:CODE:FROM_SECONDS (seconds of demo time after the simulator started).
      const auto f = split_list(spec, ':');
      auto digits = [](const std::string& v, std::size_t max) {
        return !v.empty() && v.size() <= max && v.find_first_not_of("0123456789") == std::string::npos;
      };
      if (f.size() != 3 || f[0].empty() || !digits(f[1], 7) || !digits(f[2], 9)) {
        throw CLI::ValidationError("--fail-number", "expected PHONE_NUMBER_ID:CODE:FROM_SECONDS, got \"" + spec + "\"");
      }
      o.fail_numbers.push_back({f[0], std::stoi(f[1]), std::stod(f[2]) * 1000.0});
    }
  } catch (const CLI::Error& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    if (!app_secret_file.empty()) {
      cb.app_secret = Secret::from_file(app_secret_file, "--app-secret-file", "daybreak-sim").value();
    } else if (const char* v = std::getenv(kAppSecretEnv); v != nullptr) {
      cb.app_secret = Secret::from_env(kAppSecretEnv, kAppSecretEnv, "daybreak-sim").value();
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "daybreak-sim: %s\n", e.what());
    return kExitConfig;
  }
  return run(flags);
}

}  // namespace daybreak::sim
