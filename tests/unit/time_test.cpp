// Tests for core/domain/time.cpp: slot instants across time zones and DST changes, windows,
// parsing and formatting. Expected UTC values were computed independently (Python zoneinfo)
// and are written out as numbers, so a wrong tz rule cannot agree with itself.
#include "domain/time.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <string>

namespace daybreak {
namespace {

Date date_of(const char* s) {
  auto d = parse_date(s);
  EXPECT_TRUE(d.ok()) << s;
  return d.ok() ? *d : Date{};
}

Millis slot(const char* day, const char* hhmm, const char* tz) {
  auto m = parse_slot(hhmm);
  EXPECT_TRUE(m.ok()) << hhmm;
  auto s = slot_instant(date_of(day), m.ok() ? *m : 0, tz);
  EXPECT_TRUE(s.ok()) << day << " " << hhmm << " " << tz << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : 0;
}

TEST(SlotInstant, KolkataSixAmIsHalfPastMidnightUtc) {
  const Millis s = slot("2026-11-28", "06:00", "Asia/Kolkata");
  EXPECT_EQ(s, 1795825800000);  // 2026-11-28T00:30:00Z
  EXPECT_EQ(format_instant(s), "2026-11-28T00:30:00Z");
  EXPECT_EQ(format_instant(s, "Asia/Kolkata"), "2026-11-28T06:00:00+05:30");
}

TEST(SlotInstant, DubaiSixAmIsTwoAmUtc) {
  EXPECT_EQ(slot("2026-11-28", "06:00", "Asia/Dubai"), 1795831200000);  // 02:00:00Z
}

TEST(SlotInstant, LondonSpringForwardGapShiftsForward) {
  // 2026-03-29: clocks go 01:00 GMT → 02:00 BST, so 01:30 does not exist. Shifted forward by
  // the gap it is 02:30 BST = 01:30Z.
  const Millis s = slot("2026-03-29", "01:30", "Europe/London");
  EXPECT_EQ(s, 1774747800000);
  EXPECT_EQ(format_instant(s), "2026-03-29T01:30:00Z");
  EXPECT_EQ(format_instant(s, "Europe/London"), "2026-03-29T02:30:00+01:00");
  // A normal slot that day is already on BST.
  EXPECT_EQ(slot("2026-03-29", "06:00", "Europe/London"), 1774760400000);  // 05:00Z
}

TEST(SlotInstant, LondonFallBackAmbiguityTakesTheEarlier) {
  // 2026-10-25: clocks go 02:00 BST → 01:00 GMT, so 01:30 happens twice: 00:30Z and 01:30Z.
  const Millis s = slot("2026-10-25", "01:30", "Europe/London");
  EXPECT_EQ(s, 1792888200000);
  EXPECT_EQ(format_instant(s), "2026-10-25T00:30:00Z");
  EXPECT_EQ(format_instant(s, "Europe/London"), "2026-10-25T01:30:00+01:00");
  EXPECT_EQ(slot("2026-10-25", "06:00", "Europe/London"), 1792908000000);  // 06:00Z, back on GMT
}

TEST(SlotInstant, UnknownTimeZoneIsAnError) {
  auto s = slot_instant(date_of("2026-11-28"), 360, "Mars/Olympus_Mons");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "bad_timezone");
  EXPECT_NE(s.error().message.find("Mars/Olympus_Mons"), std::string::npos);
  EXPECT_FALSE(local_date(0, "Mars/Olympus_Mons").ok());
  EXPECT_FALSE(parse_instant("2026-11-28T06:00", "Mars/Olympus_Mons").ok());
  EXPECT_FALSE(is_known_timezone("Mars/Olympus_Mons"));
  EXPECT_FALSE(is_known_timezone(""));
  EXPECT_TRUE(is_known_timezone("Asia/Kolkata"));
}

TEST(Window, DefaultsAreThirtySecondsBeforeToFiveMinutesAfter) {
  const Millis s = slot("2026-11-28", "06:00", "Asia/Kolkata");
  const Window w = window_for(s, WindowPolicy{});
  EXPECT_EQ(w.slot_at, s);
  EXPECT_EQ(format_instant(w.start, "Asia/Kolkata"), "2026-11-28T05:59:30+05:30");
  EXPECT_EQ(format_instant(w.end, "Asia/Kolkata"), "2026-11-28T06:04:30+05:30");
  EXPECT_EQ(format_instant(w.deadline, "Asia/Kolkata"), "2026-11-28T06:05:00+05:30");
}

TEST(ParseDate, AcceptsRealDaysAndRejectsTheRest) {
  EXPECT_EQ(date_of("2028-02-29"), (Date{2028, 2, 29}));
  EXPECT_EQ(format_date(Date{2026, 3, 9}), "2026-03-09");
  for (const char* bad :
       {"2026-02-29", "2026-02-30", "2026-13-01", "2026-00-10", "2026-04-31", "2026-4-01", "2026/04/01", "26-04-01", "",
        "abcd-ef-gh", "2026-04-01x", " 2026-04-01", "+026-04-01", "2026-04-0a"}) {
    auto d = parse_date(bad);
    EXPECT_FALSE(d.ok()) << '"' << bad << '"';
    if (!d.ok()) {
      EXPECT_EQ(d.error().code, "bad_date");
    }
  }
}

TEST(ParseDate, DayArithmetic) {
  EXPECT_EQ(days_since_epoch(Date{1970, 1, 1}), 0);
  EXPECT_EQ(days_since_epoch(Date{2026, 11, 28}), 20785);  // 1795825800000 ms ÷ 86400000, floored
  EXPECT_EQ(add_days(Date{2026, 12, 31}, 1), (Date{2027, 1, 1}));
  EXPECT_EQ(add_days(Date{2028, 3, 1}, -1), (Date{2028, 2, 29}));
}

TEST(ParseSlot, AcceptsHhMmAndRejectsTheRest) {
  EXPECT_EQ(*parse_slot("00:00"), 0);
  EXPECT_EQ(*parse_slot("06:00"), 360);
  EXPECT_EQ(*parse_slot("23:59"), 1439);
  for (const char* bad :
       {"24:00", "06:60", "6:00", "06:0", "0600", "06-00", "", " 6:00", "-1:00", "06:00 ", "ab:cd", "06:+1"}) {
    auto s = parse_slot(bad);
    EXPECT_FALSE(s.ok()) << '"' << bad << '"';
    if (!s.ok()) {
      EXPECT_EQ(s.error().code, "bad_slot");
    }
  }
}

TEST(LocalDate, IsTheCalendarDayInTheZone) {
  const Millis t = 1795809600000;  // 2026-11-27T20:00:00Z = 2026-11-28 01:30 IST
  EXPECT_EQ(*local_date(t, "Asia/Kolkata"), (Date{2026, 11, 28}));
  EXPECT_EQ(*local_date(t, "UTC"), (Date{2026, 11, 27}));
  EXPECT_EQ(*local_date(t, "America/Los_Angeles"), (Date{2026, 11, 27}));
}

TEST(ParseInstant, OffsetsZuluAndLocal) {
  EXPECT_EQ(*parse_instant("2026-11-28T00:30:00Z"), 1795825800000);
  EXPECT_EQ(*parse_instant("2026-11-28T06:00:00+05:30"), 1795825800000);
  EXPECT_EQ(*parse_instant("2026-11-27T19:00:00-05:30"), 1795825800000);
  EXPECT_EQ(*parse_instant("2026-11-28T06:00", "Asia/Kolkata"), 1795825800000);
  EXPECT_EQ(*parse_instant("2026-11-28 06:00:00", "Asia/Kolkata"), 1795825800000);
  // Local times in a DST gap or overlap follow the slot rule.
  EXPECT_EQ(*parse_instant("2026-03-29T01:30", "Europe/London"), 1774747800000);
  EXPECT_EQ(*parse_instant("2026-10-25T01:30", "Europe/London"), 1792888200000);
}

TEST(ParseInstant, RejectsMalformedText) {
  for (const char* bad : {"2026-11-28", "2026-11-28T", "2026-11-28T6:00", "2026-11-28T25:00Z", "2026-11-28T06:61Z",
                          "2026-11-28T06:00+0530", "2026-11-28T06:00:00+05:3", "2026-11-28T06:00:00+25:00",
                          "2026-11-28T06:00:00+05:60", "2026-11-28T06:00:00Q", "2026-02-30T06:00:00Z",
                          "2026-11-28T06:00:0", "2026-11-28T06:00:", "2026-11-28T06:00:0Z", "2026-11-28X06:00"}) {
    Result<Millis> r = Error{"", ""};
    ASSERT_NO_THROW(r = parse_instant(bad)) << '"' << bad << '"';
    EXPECT_FALSE(r.ok()) << '"' << bad << '"';
  }
}

RC_GTEST_PROP(InstantProps, FormatThenParseRoundTrips, ()) {
  static const std::array<const char*, 6> zones{"",           "UTC",           "Asia/Kolkata",
                                                "Asia/Dubai", "Europe/London", "America/New_York"};
  // Whole seconds between 2000 and 2100: format_instant prints seconds.
  const Millis t = *rc::gen::inRange<Millis>(946'684'800, 4'102'444'800) * 1000;
  const char* tz = *rc::gen::elementOf(zones);
  const std::string text = format_instant(t, tz);
  auto back = parse_instant(text);
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == t);
}

}  // namespace
}  // namespace daybreak
