#pragma once
// Calendar and time-zone rules: slot instants, send windows, local dates. Time zones come from
// the system tz database through Howard Hinnant's date/tz (GCC 12 has no <chrono> tzdb).
#include <string>
#include <string_view>

#include "domain/result.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// A civil date, validated.
struct Date {
  int year = 1970;
  unsigned month = 1;
  unsigned day = 1;
  friend auto operator<=>(const Date&, const Date&) = default;
};

/// Parses "YYYY-MM-DD"; rejects impossible dates such as 2026-02-30.
Result<Date> parse_date(std::string_view s);
std::string format_date(const Date& d);
/// d + n days (n may be negative).
Date add_days(const Date& d, int n);
/// Days since 1970-01-01.
long days_since_epoch(const Date& d);

/// Parses "HH:MM" (00:00–23:59) into minutes after midnight.
Result<int> parse_slot(std::string_view s);

/// True when the IANA time zone name is known to the system tz database.
bool is_known_timezone(std::string_view tz);

/// The slot instant S: local date `d` at `slot_minutes` in zone `tz`. A nonexistent local time
/// (spring-forward gap) shifts forward by the gap; an ambiguous one (fall-back) takes the earlier.
Result<Millis> slot_instant(const Date& d, int slot_minutes, std::string_view tz);

/// The local calendar date of instant `t` in zone `tz`.
Result<Date> local_date(Millis t, std::string_view tz);

/// "2026-11-28T06:00:00+05:30" style rendering of `t` in zone `tz` (UTC "Z" when tz is empty).
std::string format_instant(Millis t, std::string_view tz = {});
/// Parses an ISO-8601 instant with an offset or Z ("2026-11-28T00:30:00Z", "...+05:30"),
/// or a local "YYYY-MM-DDTHH:MM[:SS]" in zone `tz` when no offset is given.
Result<Millis> parse_instant(std::string_view s, std::string_view tz = "UTC");

/// The send window and deadline around a slot instant.
struct Window {
  Millis slot_at = 0;
  Millis start = 0;     ///< S − lead
  Millis end = 0;       ///< S + tail: every planned send lies in [start, end]
  Millis deadline = 0;  ///< S + deadline: accepted at or before it is on time
};

/// Window widths, in ms; defaults 30 s before the slot / 270 s after it / deadline 5 min after it.
struct WindowPolicy {
  Millis lead_ms = 30'000;
  Millis tail_ms = 270'000;
  Millis deadline_ms = 300'000;
};

Window window_for(Millis slot_at, const WindowPolicy& p);

}  // namespace daybreak
