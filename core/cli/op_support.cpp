#include "cli/op_support.hpp"

#include "cli/op_actions.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <fstream>
#include <iostream>
#include <iterator>

#include "domain/time.hpp"

namespace daybreak::ops {

OpEnv open_env(const GlobalOptions& g) {
  OpEnv env;
  env.ctx = make_context(g, "daybreak");
  env.db = std::make_unique<store::Db>(env.ctx.cfg.database_path);
  env.now = env.ctx.clock->now();
  return env;
}

OpEnv open_ledger_env(const GlobalOptions& g) {
  OpEnv env;
  env.ctx = make_context(g, "daybreak");
  if (env.ctx.cfg.database_url.empty()) {
    env.db = std::make_unique<store::Db>(env.ctx.cfg.database_path);
  } else {
    env.pg = std::make_unique<store::PgOperator>(env.ctx.cfg.database_url);
  }
  env.now = env.ctx.clock->now();
  return env;
}

void add_change_flags(CLI::App* sub, std::string& reason, bool& dry_run) {
  sub->add_option("--reason", reason, "Why (required; recorded in the audit log)")->required();
  sub->add_flag("--dry-run", dry_run, "Validate and show what would change; change nothing");
}

void require_reason(const std::string& reason) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) throw UsageError("--reason: must say why (it is recorded in the audit log)");
}

std::string command_line() {
  // /proc/self/cmdline: NUL-separated argv; the operator tool runs on Linux only.
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  // Read in chunks: GCC 12 -O2 reports a false null dereference inside istreambuf_iterator.
  std::string raw;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) raw.append(buf, static_cast<std::size_t>(in.gcount()));
  std::string out;
  std::size_t start = 0;
  bool first = true;
  bool mask_next = false;
  while (start < raw.size()) {
    auto end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    std::string arg = raw.substr(start, end - start);
    // Addresses typed on the command line are masked like in logs: the audit log is read widely.
    if (mask_next) {
      arg = mask_address(arg);
    } else if (arg.rfind("--phone=", 0) == 0 || arg.rfind("--email=", 0) == 0) {
      auto eq = arg.find('=');
      arg = arg.substr(0, eq + 1) + mask_address(arg.substr(eq + 1));
    }
    mask_next = arg == "--phone" || arg == "--email";
    if (first) {
      auto slash = arg.rfind('/');
      if (slash != std::string::npos) arg = arg.substr(slash + 1);
      first = false;
    } else {
      out.push_back(' ');
    }
    if (arg.empty() || arg.find_first_of(" \t\n'\"") != std::string::npos) {
      std::string q = "'";
      for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      arg = q + "'";
    }
    out += arg;
    start = end + 1;
  }
  return out.empty() ? "daybreak" : out;
}

store::AuditEntry audit_entry(Millis now, const std::string& target, const std::string& reason, const nlohmann::json& before,
                              const nlohmann::json& after) {
  return audit_entry_as(cli_actor(), now, target, reason, before, after);
}

std::string parse_date_arg(const std::string& flag, const std::string& value) {
  auto d = parse_date(value);
  if (!d) throw UsageError(flag + " \"" + value + "\": " + d.error().message);
  return format_date(*d);
}

Millis parse_time_arg(const std::string& flag, const std::string& value, const std::string& tz) {
  if (value.size() == 10) {
    auto d = parse_date(value);
    if (!d) throw UsageError(flag + " \"" + value + "\": " + d.error().message);
    auto t = slot_instant(*d, 0, tz);
    if (!t) throw UsageError(flag + " \"" + value + "\": " + t.error().message);
    return *t;
  }
  auto t = parse_instant(value, tz);
  if (!t) throw UsageError(flag + " \"" + value + "\": expected YYYY-MM-DD or an ISO-8601 time (" + t.error().message + ")");
  return *t;
}

std::string parse_channel_arg(const std::string& flag, const std::string& value) {
  if (!channel_from_string(value)) throw UsageError(flag + " \"" + value + "\": expected whatsapp, email or webhook");
  return value;
}

std::string show_time(const std::optional<Millis>& t, const std::string& tz) { return t ? format_instant(*t, tz) : "-"; }

namespace {
nlohmann::json opt_time(const std::optional<Millis>& t) { return t ? nlohmann::json(*t) : nlohmann::json(nullptr); }
nlohmann::json opt_text(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }
nlohmann::json parsed(const std::string& text) {
  if (text.empty()) return nullptr;
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}
}  // namespace

nlohmann::json to_json(const store::ContentInfo& i, const std::string& tz, bool with_body) {
  const Content& c = i.content;
  nlohmann::json j = {{"content_id", c.content_id},
                      {"title", c.title},
                      {"language", c.language},
                      {"topics", join_list(c.topics, ';')},
                      {"media_url", c.media_url},
                      {"valid_from", c.valid_from},
                      {"valid_until", c.valid_until},
                      {"fallback_eligible", c.fallback_eligible},
                      {"emergency", c.emergency},
                      {"withdrawn", c.withdrawn},
                      {"withdrawn_at", i.withdrawn_at ? nlohmann::json(format_instant(*i.withdrawn_at, tz)) : nlohmann::json(nullptr)},
                      {"withdrawn_by", i.withdrawn_by ? nlohmann::json(*i.withdrawn_by) : nlohmann::json(nullptr)}};
  if (with_body) j["body"] = c.body;
  return j;
}

nlohmann::json to_json(const store::DeliveryInfo& d, const std::string& tz) {
  return {{"delivery_id", d.delivery_id},
          {"run_id", d.run_id},
          {"advisor_id", d.advisor_id},
          {"date", d.date},
          {"content_id", d.content_id},
          {"source", d.source},
          {"tier", d.tier},
          {"state", d.state},
          {"channel", d.channel},
          {"sender", d.sender},
          {"planned_at", d.planned_at},
          {"planned_at_text", format_instant(d.planned_at, tz)},
          {"deadline_at", d.deadline_at},
          {"next_attempt_at", opt_time(d.next_attempt_at)},
          {"attempts", d.attempts},
          {"first_sent_at", opt_time(d.first_sent_at)},
          {"provider_message_id", opt_text(d.provider_message_id)},
          {"accepted_at", opt_time(d.accepted_at)},
          {"last_error", opt_text(d.last_error)},
          {"possible_duplicate", d.possible_duplicate},
          {"dismissed", d.dismissed_at.has_value()},
          {"dismissed_at", opt_time(d.dismissed_at)},
          {"dismissed_by", opt_text(d.dismissed_by)},
          {"resent_at", opt_time(d.resent_at)},
          {"updated_at", d.updated_at}};
}

nlohmann::json to_json(const store::AuditRow& r, const std::string& tz) {
  const auto& e = r.entry;
  return {{"audit_id", r.audit_id},
          {"at", e.at},
          {"at_text", format_instant(e.at, tz)},
          {"actor", e.actor},
          {"sudo_user", e.sudo_user.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.sudo_user)},
          {"command", e.command},
          {"reason", e.reason},
          {"target", e.target},
          {"before", parsed(e.before)},
          {"after", parsed(e.after)}};
}

void emit(const OpEnv& env, const nlohmann::json& j, const std::string& human) {
  if (env.ctx.json) {
    print_json(j);
  } else {
    std::cout << human;
    if (!human.empty() && human.back() != '\n') std::cout << "\n";
    std::cout << std::flush;
  }
}

void yield_cpu_to_dispatch() {
  errno = 0;
  // Best effort: an unprivileged process may always lower its own priority.
  if (::nice(10) == -1 && errno != 0) std::perror("daybreak: nice");
}

}  // namespace daybreak::ops
