#include "domain/time.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <charconv>
#include <chrono>
#include <cstdio>

namespace daybreak {
namespace {

bool parse_uint(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

const date::time_zone* find_zone(std::string_view tz) {
  try {
    return date::locate_zone(std::string(tz));
  } catch (const std::exception&) {
    return nullptr;
  }
}

date::sys_days to_sys(const Date& d) {
  return date::sys_days(date::year(d.year) / date::month(d.month) / date::day(d.day));
}

}  // namespace

Result<Date> parse_date(std::string_view s) {
  unsigned y = 0, m = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !parse_uint(s.substr(0, 4), y) ||
      !parse_uint(s.substr(5, 2), m) || !parse_uint(s.substr(8, 2), d)) {
    return Error{"bad_date", "date \"" + std::string(s) + "\": expected YYYY-MM-DD"};
  }
  date::year_month_day ymd{date::year(static_cast<int>(y)), date::month(m), date::day(d)};
  if (!ymd.ok()) return Error{"bad_date", "date \"" + std::string(s) + "\": no such day"};
  return Date{static_cast<int>(y), m, d};
}

std::string format_date(const Date& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", d.year, d.month, d.day);
  return buf;
}

Date add_days(const Date& d, int n) {
  date::year_month_day ymd{to_sys(d) + date::days(n)};
  return Date{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day())};
}

long days_since_epoch(const Date& d) { return to_sys(d).time_since_epoch().count(); }

Result<int> parse_slot(std::string_view s) {
  unsigned h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || !parse_uint(s.substr(0, 2), h) || !parse_uint(s.substr(3, 2), m) || h > 23 ||
      m > 59) {
    return Error{"bad_slot", "slot \"" + std::string(s) + "\": expected HH:MM between 00:00 and 23:59"};
  }
  return static_cast<int>(h * 60 + m);
}

bool is_known_timezone(std::string_view tz) { return !tz.empty() && find_zone(tz) != nullptr; }

Result<Millis> slot_instant(const Date& d, int slot_minutes, std::string_view tz) {
  const date::time_zone* zone = find_zone(tz);
  if (!zone) return Error{"bad_timezone", "time zone \"" + std::string(tz) + "\": unknown"};
  auto local = date::local_days(date::year(d.year) / date::month(d.month) / date::day(d.day)) +
               std::chrono::minutes(slot_minutes);
  auto info = zone->get_info(local);
  std::chrono::sys_seconds sys{};
  switch (info.result) {
    case date::local_info::unique:
      sys = std::chrono::sys_seconds(local.time_since_epoch()) - info.first.offset;
      break;
    case date::local_info::ambiguous:
      // Fall-back: the same wall time happens twice; take the earlier (the first offset).
      sys = std::chrono::sys_seconds(local.time_since_epoch()) - info.first.offset;
      break;
    case date::local_info::nonexistent:
      // Spring-forward gap: shift forward by the gap, i.e. interpret with the offset before it.
      sys = std::chrono::sys_seconds(local.time_since_epoch()) - info.first.offset;
      break;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(sys.time_since_epoch()).count();
}

Result<Date> local_date(Millis t, std::string_view tz) {
  const date::time_zone* zone = find_zone(tz);
  if (!zone) return Error{"bad_timezone", "time zone \"" + std::string(tz) + "\": unknown"};
  auto sys = date::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(t));
  auto local = zone->to_local(sys);
  date::year_month_day ymd{date::floor<date::days>(local)};
  return Date{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day())};
}

std::string format_instant(Millis t, std::string_view tz) {
  auto sys = date::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(t));
  auto secs = date::floor<std::chrono::seconds>(sys);
  if (tz.empty() || tz == "UTC") return date::format("%FT%TZ", secs);
  const date::time_zone* zone = find_zone(tz);
  if (!zone) return date::format("%FT%TZ", secs);
  date::zoned_time<std::chrono::seconds> z(zone, secs);
  std::string s = date::format("%FT%T%z", z);
  // date prints +0530; ISO-8601 extended form wants +05:30.
  if (s.size() >= 5) s.insert(s.size() - 2, ":");
  return s;
}

Result<Millis> parse_instant(std::string_view s, std::string_view tz) {
  std::string str(s);
  auto bad = [&] {
    return Error{"bad_instant", "time \"" + str + "\": expected YYYY-MM-DDTHH:MM[:SS] with optional Z or ±HH:MM"};
  };
  if (str.size() < 16 || (str[10] != 'T' && str[10] != ' ')) return bad();
  auto date_r = parse_date(std::string_view(str).substr(0, 10));
  if (!date_r) return date_r.error();
  std::size_t pos = 11;
  unsigned h = 0, m = 0, sec = 0;
  if (!parse_uint(std::string_view(str).substr(pos, 2), h) || str[pos + 2] != ':' ||
      !parse_uint(std::string_view(str).substr(pos + 3, 2), m)) {
    return bad();
  }
  pos += 5;
  if (pos < str.size() && str[pos] == ':') {
    // Exactly two digits: a short "…:5" must be an error, not a read past the end.
    if (pos + 3 > str.size() || !parse_uint(std::string_view(str).substr(pos + 1, 2), sec)) return bad();
    pos += 3;
  }
  if (h > 23 || m > 59 || sec > 60) return bad();
  std::string_view rest = std::string_view(str).substr(pos);
  auto local_ms = (days_since_epoch(*date_r) * 86400LL + h * 3600LL + m * 60LL + sec) * 1000LL;
  if (rest.empty()) {
    const date::time_zone* zone = find_zone(tz);
    if (!zone) return Error{"bad_timezone", "time zone \"" + std::string(tz) + "\": unknown"};
    auto local = date::local_time<std::chrono::milliseconds>(std::chrono::milliseconds(local_ms));
    auto info = zone->get_info(date::floor<std::chrono::seconds>(local));
    auto offset_ms = std::chrono::duration_cast<std::chrono::milliseconds>(info.first.offset).count();
    return local_ms - offset_ms;
  }
  if (rest == "Z") return local_ms;
  unsigned oh = 0, om = 0;
  if (rest.size() != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' ||
      !parse_uint(rest.substr(1, 2), oh) || !parse_uint(rest.substr(4, 2), om) || oh > 23 || om > 59) {
    return bad();
  }
  Millis off = (oh * 3600LL + om * 60LL) * 1000LL;
  return rest[0] == '+' ? local_ms - off : local_ms + off;
}

Window window_for(Millis slot_at, const WindowPolicy& p) {
  return Window{slot_at, slot_at - p.lead_ms, slot_at + p.tail_ms, slot_at + p.deadline_ms};
}

}  // namespace daybreak
