#pragma once
// The daily schedule of the nightly and dispatch jobs, decided in the schedule's own time zone
// (Asia/Kolkata by default) whatever the host's zone: pure rules, no I/O.
//
// Debian 12's cron ignores CRON_TZ, so daybreak's crontab runs its guard every minute and the
// guard decides from these rules; the systemd timers carry the zone in their calendar spec.
// Both are checked against the configuration here (doctor's schedule row).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// The most recent instant at or before `now` whose local time in `tz` is `minutes` past
/// midnight (a local time skipped by a DST change counts at the first instant after the gap).
Result<Millis> latest_daily_at_or_before(Millis now, int minutes, std::string_view tz);

/// The first instant after `now` whose local time in `tz` is `minutes` past midnight.
Result<Millis> next_daily_after(Millis now, int minutes, std::string_view tz);

/// When a daily job scheduled at local `minutes` in `tz` is due at `now`: the scheduled instant
/// it is due for, or nullopt. Due means: the latest scheduled instant at or before `now` has not
/// been fired yet (`last_fired_for` is older), and `now` is within `catch_up_ms` of it. A host
/// that was down at the scheduled minute therefore runs the job when it is back (once, however
/// many days it missed), unless the catch-up window has passed.
std::optional<Millis> daily_job_due(Millis now, int minutes, std::string_view tz, std::optional<Millis> last_fired_for,
                                    Millis catch_up_ms);

/// A systemd OnCalendar= value of the daily form daybreak ships: `*-*-* HH:MM[:SS] [ZONE]`
/// (also `daily`-less forms like `HH:MM` alone). zone is empty when none is given: the host's
/// zone applies.
struct DailyCalendar {
  int minutes = 0;  ///< past local midnight
  int seconds = 0;
  std::string zone;
};
Result<DailyCalendar> parse_daily_calendar(std::string_view spec);

/// A crontab entry, as far as the schedule check needs it.
struct CrontabEntry {
  std::string minute, hour, dom, month, dow;
  std::string command;
  /// Fixed daily HH:MM (numeric minute and hour, `*` for the rest); nullopt otherwise.
  std::optional<int> daily_minutes;
};
/// The entries of a crontab text (VAR=value lines and comments skipped). `with_user`: the
/// /etc/cron.d form, whose sixth field is the user.
std::vector<CrontabEntry> parse_crontab(std::string_view text, bool with_user);

/// "HH:MM" of `minutes` past midnight.
std::string format_minutes(int minutes);

}  // namespace daybreak
