#pragma once
// What every binary's main shares: the one top-level catch that maps errors to the documented
// exit codes, global flags, configuration + logging + clock set-up, and JSON output.
#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>
#include <spdlog/logger.h>

#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "app/errors.hpp"
#include "config/config.hpp"
#include "domain/clock.hpp"

namespace daybreak {

/// Flags every binary takes.
struct GlobalOptions {
  std::string config_path;
  std::string database;   ///< overrides database.path
  bool json = false;
  std::string log_level;  ///< overrides logging.level
};

/// Adds --config, --database, --json and --log-level to an app.
void add_global_options(CLI::App& app, GlobalOptions& g);

/// What a command needs to run: the configuration, a logger and the clock.
struct AppContext {
  Config cfg;
  std::unique_ptr<Clock> clock;
  std::shared_ptr<spdlog::logger> log;
  bool json = false;
};

/// Loads configuration (built-in defaults when the resolved file does not exist and no path was
/// given explicitly), sets up stderr logging (journal format when stderr is the journal's
/// stream, see is_journal_stream), and builds the clock (see make_clock_from_env).
AppContext make_context(const GlobalOptions& g, const std::string& program);

/// True when `journal_stream` (the JOURNAL_STREAM value systemd sets for a service whose
/// stdout/stderr go to the journal: "DEVICE:INODE") names the file `fd` is open on. A service
/// whose output a wrapper redirects to a file (daybreak-job) keeps the variable but fails the
/// comparison, as systemd.exec(5) intends. False for null or a malformed value.
bool is_journal_stream(const char* journal_stream, int fd);

/// Sets the line format of `log`. For the journal: "<N>" + the message, N the syslog priority of
/// the level (sd-daemon(3): 2 critical, 3 error, 4 warning, 6 info, 7 debug and trace), no
/// timestamp (journald stamps each line) and no program name (journald records it). Otherwise:
/// "2026-11-28T05:59:30.125 info PROGRAM[PID]: message".
void set_log_format(spdlog::logger& log, const std::string& program, bool journal);

/// The clock: the system clock, unless DAYBREAK_CLOCK="SIM_ISO@REAL_MS*SCALE" asks for a
/// compressed or shifted one (the demo's simulated night), e.g. "2026-11-28T05:59:00+05:30@1764300000000*10".
std::unique_ptr<Clock> make_clock_from_env();

/// Runs a binary's body inside the one top-level catch: prints "PROGRAM: error: …" on stderr
/// and returns the exit code for the error's type (exit_code_for).
int run_main(const std::string& program, const std::function<int()>& body);

/// The exit code run_main gives an error: 2 usage (CLI11 and UsageError), 3 configuration,
/// 4 database, 5 provider, 1 anything else (CheckFailed, unexpected errors). `message`, when
/// given, receives what run_main prints after "error: ".
int exit_code_for(const std::exception_ptr& error, std::string* message = nullptr);

/// Parses argv with CLI11, printing help/usage errors the CLI11 way; returns -1 to go on, or an exit code.
int parse_cli(CLI::App& app, int argc, char** argv);

/// Prints a JSON value as one line on stdout.
void print_json(const nlohmann::json& j);

/// The OS user running the command, and SUDO_USER when set, for the audit log.
std::string current_actor();
std::string current_sudo_user();


}  // namespace daybreak
