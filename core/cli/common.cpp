#include "cli/common.hpp"

#include <pwd.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "domain/time.hpp"
#include "store/db.hpp"

namespace daybreak {

void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.add_option("--config", g.config_path, "Configuration file (default: $DAYBREAK_CONFIG, else /etc/daybreak/daybreak.toml)");
  app.add_option("--database", g.database, "SQLite database file (overrides database.path)");
  app.add_flag("--json", g.json, "Print one JSON object (or NDJSON for streams) on stdout");
  app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error, critical or off");
}

namespace {

/// `%*` in a pattern: the sd-daemon(3) priority prefix "<N>" of the message's level.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char* p = "<6>";
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: p = "<7>"; break;
      case spdlog::level::info: p = "<6>"; break;
      case spdlog::level::warn: p = "<4>"; break;
      case spdlog::level::err: p = "<3>"; break;
      case spdlog::level::critical: p = "<2>"; break;
      default: break;
    }
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriorityFlag>(); }
};

}  // namespace

bool is_journal_stream(const char* journal_stream, int fd) {
  if (!journal_stream || !*journal_stream) return false;
  unsigned long long dev = 0, ino = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2) return false;
  struct stat st{};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

void set_log_format(spdlog::logger& log, const std::string& program, bool journal) {
  if (journal) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%v");
    log.set_formatter(std::move(f));
  } else {
    log.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + program + "[%P]: %v");
  }
}

std::unique_ptr<Clock> make_clock_from_env() {
  const char* spec = std::getenv("DAYBREAK_CLOCK");
  if (!spec || !*spec) return std::make_unique<SystemClock>();
  std::string s(spec);
  auto at = s.find('@');
  auto star = s.find('*', at == std::string::npos ? 0 : at);
  if (at == std::string::npos) throw ConfigError("DAYBREAK_CLOCK=\"" + s + "\": expected SIM_TIME@REAL_MS[*SCALE]");
  auto sim = parse_instant(s.substr(0, at));
  if (!sim) throw ConfigError("DAYBREAK_CLOCK: " + sim.error().message);
  Millis real = 0;
  double scale = 1.0;
  try {
    real = std::stoll(s.substr(at + 1, star == std::string::npos ? std::string::npos : star - at - 1));
    if (star != std::string::npos) scale = std::stod(s.substr(star + 1));
  } catch (const std::exception&) {
    throw ConfigError("DAYBREAK_CLOCK=\"" + s + "\": REAL_MS and SCALE must be numbers");
  }
  if (scale <= 0 || scale > 10000) throw ConfigError("DAYBREAK_CLOCK: SCALE must be in (0, 10000]");
  return std::make_unique<ScaledClock>(*sim, real, scale);
}

AppContext make_context(const GlobalOptions& g, const std::string& program) {
  AppContext ctx;
  std::string path = resolve_config_path(g.config_path);
  struct stat st{};
  bool explicit_path = !g.config_path.empty() || std::getenv("DAYBREAK_CONFIG");
  if (::stat(path.c_str(), &st) == 0 || explicit_path) {
    ctx.cfg = load_config(path);
  } else {
    ctx.cfg = Config{};  // built-in defaults: no file at the default location
  }
  if (!g.database.empty()) {
    ctx.cfg.database_path = g.database;
    ctx.cfg.database_url.clear();  // --database names a SQLite file: it wins over [database] url
  }
  if (!g.log_level.empty()) {
    static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(std::begin(levels), std::end(levels), g.log_level) == std::end(levels)) {
      throw UsageError("--log-level \"" + g.log_level + "\": expected trace, debug, info, warn, error, critical or off");
    }
    ctx.cfg.log_level = g.log_level;
  }

  ctx.log = spdlog::get("daybreak");
  if (!ctx.log) {
    ctx.log = spdlog::stderr_color_mt("daybreak");
    spdlog::set_default_logger(ctx.log);
  }
  set_log_format(*ctx.log, program, is_journal_stream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO));
  auto level = spdlog::level::from_str(ctx.cfg.log_level);
  ctx.log->set_level(level);
  ctx.clock = make_clock_from_env();
  ctx.json = g.json;
  return ctx;
}

int exit_code_for(const std::exception_ptr& error, std::string* message) {
  auto out = [&](int code, const std::string& msg) {
    if (message) *message = msg;
    return code;
  };
  try {
    std::rethrow_exception(error);
  } catch (const CLI::Error& e) {
    return out(kExitUsage, e.what());
  } catch (const UsageError& e) {
    return out(kExitUsage, e.what());
  } catch (const ConfigError& e) {
    return out(kExitConfig, e.what());
  } catch (const PublishError& e) {
    return out(kExitNotPublished, e.what());
  } catch (const store::StoreError& e) {
    return out(kExitDatabase, e.what());
  } catch (const ProviderError& e) {
    return out(kExitProvider, e.what());
  } catch (const CheckFailed& e) {
    return out(kExitCheckFailed, e.what());
  } catch (const std::exception& e) {
    return out(kExitCheckFailed, std::string("unexpected: ") + e.what());
  } catch (...) {
    return out(kExitCheckFailed, "unexpected: unknown error");
  }
}

int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (...) {
    std::string msg;
    int code = exit_code_for(std::current_exception(), &msg);
    std::cerr << program << ": error: " << msg << "\n";
    return code;
  }
}

int parse_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return -1;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << "\n" << std::flush; }

std::string current_actor() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* u = std::getenv("USER")) return u;
  return "uid:" + std::to_string(::geteuid());
}

std::string current_sudo_user() {
  const char* s = std::getenv("SUDO_USER");
  return s ? s : "";
}


}  // namespace daybreak
