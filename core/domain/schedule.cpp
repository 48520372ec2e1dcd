#include "domain/schedule.hpp"

#include <cctype>
#include <sstream>

#include "domain/time.hpp"

namespace daybreak {

Result<Millis> latest_daily_at_or_before(Millis now, int minutes, std::string_view tz) {
  auto today = local_date(now, tz);
  if (!today) return today.error();
  // Today's instant, else yesterday's (two days back covers any DST oddity).
  for (int back = 0; back <= 2; ++back) {
    auto t = slot_instant(add_days(*today, -back), minutes, tz);
    if (!t) return t.error();
    if (*t <= now) return *t;
  }
  return Error{"schedule", "no daily instant at or before now"};
}

Result<Millis> next_daily_after(Millis now, int minutes, std::string_view tz) {
  auto today = local_date(now, tz);
  if (!today) return today.error();
  for (int add = 0; add <= 2; ++add) {
    auto t = slot_instant(add_days(*today, add), minutes, tz);
    if (!t) return t.error();
    if (*t > now) return *t;
  }
  return Error{"schedule", "no daily instant after now"};
}

std::optional<Millis> daily_job_due(Millis now, int minutes, std::string_view tz, std::optional<Millis> last_fired_for,
                                    Millis catch_up_ms) {
  auto at = latest_daily_at_or_before(now, minutes, tz);
  if (!at) return std::nullopt;
  if (last_fired_for && *last_fired_for >= *at) return std::nullopt;
  if (now - *at > catch_up_ms) return std::nullopt;
  return *at;
}

namespace {

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

Result<DailyCalendar> parse_daily_calendar(std::string_view spec) {
  auto w = words(spec);
  std::size_t i = 0;
  if (i < w.size() && w[i] == "*-*-*") ++i;
  if (i >= w.size()) return Error{"calendar", "no time of day in \"" + std::string(spec) + "\""};
  const std::string& hms = w[i++];
  DailyCalendar c;
  int h = -1, m = -1, s = 0;
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : hms) {
    if (ch == ':') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  parts.push_back(cur);
  if (parts.size() < 2 || parts.size() > 3) return Error{"calendar", "\"" + hms + "\" is not HH:MM[:SS]"};
  for (const auto& p : parts) {
    if (!all_digits(p)) return Error{"calendar", "\"" + hms + "\" is not a fixed daily time (daybreak ships HH:MM:SS)"};
  }
  h = std::stoi(parts[0]);
  m = std::stoi(parts[1]);
  if (parts.size() == 3) s = std::stoi(parts[2]);
  if (h > 23 || m > 59 || s > 59) return Error{"calendar", "\"" + hms + "\" is out of range"};
  c.minutes = h * 60 + m;
  c.seconds = s;
  if (i < w.size()) c.zone = w[i++];
  if (i < w.size()) return Error{"calendar", "unexpected \"" + w[i] + "\" in \"" + std::string(spec) + "\""};
  if (!c.zone.empty() && c.zone != "UTC" && !is_known_timezone(c.zone)) {
    return Error{"calendar", "unknown time zone \"" + c.zone + "\""};
  }
  return c;
}

std::vector<CrontabEntry> parse_crontab(std::string_view text, bool with_user) {
  std::vector<CrontabEntry> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::size_t p = line.find_first_not_of(" \t");
    if (p == std::string::npos || line[p] == '#') continue;
    std::string rest = line.substr(p);
    // VAR=value lines: the first word holds '=' and is not a time field.
    std::string first = rest.substr(0, rest.find_first_of(" \t"));
    if (first.find('=') != std::string::npos) continue;
    if (rest[0] == '@') continue;  // @reboot, @daily: not daybreak's form
    std::istringstream f(rest);
    CrontabEntry e;
    std::string user;
    if (!(f >> e.minute >> e.hour >> e.dom >> e.month >> e.dow)) continue;
    if (with_user && !(f >> user)) continue;
    std::getline(f, e.command);
    std::size_t c = e.command.find_first_not_of(" \t");
    e.command = c == std::string::npos ? "" : e.command.substr(c);
    if (all_digits(e.minute) && all_digits(e.hour) && e.dom == "*" && e.month == "*" && e.dow == "*") {
      int h = std::stoi(e.hour), m = std::stoi(e.minute);
      if (h <= 23 && m <= 59) e.daily_minutes = h * 60 + m;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string format_minutes(int minutes) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d:%02d", (minutes / 60) % 24, minutes % 60);
  return b;
}

}  // namespace daybreak
