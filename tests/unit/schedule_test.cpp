// Tests for the schedule: core/domain/schedule.cpp (when a daily job is due in its own zone,
// catch-up, OnCalendar and crontab parsing), the cron guard's record in the ledger
// (store/schedule.cpp), the installed-schedule check (app/schedule.cpp) against crontabs and
// timers written to a temporary directory, and the plan_missing conditions.
#include "domain/schedule.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "cli/common.hpp"
#include "app/plan.hpp"
#include "app/schedule.hpp"
#include "db_fixture.hpp"
#include "domain/time.hpp"
#include "store/schedule.hpp"

namespace daybreak {
namespace {

constexpr const char* kIst = "Asia/Kolkata";

Millis at(const char* iso) {
  auto t = parse_instant(iso);
  EXPECT_TRUE(t.ok()) << iso;
  return t.ok() ? *t : 0;
}

constexpr int k2130 = 21 * 60 + 30;
constexpr Millis k8h = 8 * 3'600'000LL;

TEST(DailyJobDue, NotBeforeItsMinuteInIst) {
  EXPECT_FALSE(daily_job_due(at("2026-12-06T21:29:59+05:30"), k2130, kIst, std::nullopt, k8h));
}

TEST(DailyJobDue, DueAtItsMinuteForThatInstant) {
  auto due = daily_job_due(at("2026-12-06T21:30:00+05:30"), k2130, kIst, std::nullopt, k8h);
  ASSERT_TRUE(due);
  EXPECT_EQ(*due, at("2026-12-06T16:00:00Z"));
}

TEST(DailyJobDue, OncePerScheduledInstant) {
  const Millis fired = at("2026-12-06T16:00:00Z");
  EXPECT_FALSE(daily_job_due(at("2026-12-06T21:31:00+05:30"), k2130, kIst, fired, k8h));
  EXPECT_FALSE(daily_job_due(at("2026-12-07T21:29:00+05:30"), k2130, kIst, fired, k8h));
  auto next = daily_job_due(at("2026-12-07T21:30:05+05:30"), k2130, kIst, fired, k8h);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, at("2026-12-07T16:00:00Z"));
}

TEST(DailyJobDue, CatchesUpAMissedInstantWithinTheWindowOnly) {
  const Millis yesterday = at("2026-12-05T16:00:00Z");
  // Host down at 21:30, back at 23:10: the job runs then, for 21:30.
  auto late = daily_job_due(at("2026-12-06T23:10:00+05:30"), k2130, kIst, yesterday, k8h);
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, at("2026-12-06T16:00:00Z"));
  // Back at 05:31 the next morning: more than 8 h after 21:30, too late to be the nightly.
  EXPECT_FALSE(daily_job_due(at("2026-12-07T05:31:00+05:30"), k2130, kIst, yesterday, k8h));
}

TEST(DailyJobDue, TheHostZoneDoesNotMatter) {
  // 16:00 UTC is 21:30 IST whatever zone the host runs in: the rule only sees instants.
  EXPECT_TRUE(daily_job_due(at("2026-12-06T11:00:00-05:00"), k2130, kIst, std::nullopt, k8h));
  EXPECT_FALSE(daily_job_due(at("2026-12-06T21:30:00-05:00"), k2130, kIst, at("2026-12-06T16:00:00Z"), k8h));
}

TEST(DailyCalendar, ParsesTheShippedForm) {
  auto c = parse_daily_calendar("*-*-* 21:30:00 Asia/Kolkata");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->minutes, k2130);
  EXPECT_EQ(c->seconds, 0);
  EXPECT_EQ(c->zone, "Asia/Kolkata");
  auto bare = parse_daily_calendar("05:59");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->minutes, 5 * 60 + 59);
  EXPECT_EQ(bare->zone, "");
}

TEST(DailyCalendar, RejectsWhatIsNotAFixedDailyTime) {
  EXPECT_FALSE(parse_daily_calendar("Mon *-*-* 21:30:00").ok());
  EXPECT_FALSE(parse_daily_calendar("*-*-* *:*:00").ok());
  EXPECT_FALSE(parse_daily_calendar("*-*-* 25:00:00").ok());
  EXPECT_FALSE(parse_daily_calendar("*-*-* 21:30:00 Mars/Olympus").ok());
  EXPECT_FALSE(parse_daily_calendar("").ok());
}

TEST(Crontab, EntriesWithAndWithoutTheUserField) {
  const char* text =
      "# comment\nCRON_TZ=Asia/Kolkata\nPATH=/usr/bin\n30 21 * * * daybreak-job nightly -- daybreak-nightly\n"
      "* * * * *  daybreak-at dispatch -- daybreak-job dispatch -- dispatch --supervise\n@reboot something\n";
  auto e = parse_crontab(text, false);
  ASSERT_EQ(e.size(), 2U);
  ASSERT_TRUE(e[0].daily_minutes);
  EXPECT_EQ(*e[0].daily_minutes, k2130);
  EXPECT_EQ(e[0].command, "daybreak-job nightly -- daybreak-nightly");
  EXPECT_FALSE(e[1].daily_minutes);
  EXPECT_EQ(e[1].command, "daybreak-at dispatch -- daybreak-job dispatch -- dispatch --supervise");
  auto u = parse_crontab("59 5 * * * daybreak daybreak-job dispatch -- dispatch\n", true);
  ASSERT_EQ(u.size(), 1U);
  EXPECT_EQ(u[0].command, "daybreak-job dispatch -- dispatch");
}

TEST(ScheduleConfig, KeysAreValidatedAndNamed) {
  auto cfg = parse_config("[schedule]\ntimezone = \"Asia/Dubai\"\nnightly = \"20:15\"\ndispatch = \"05:50\"\n"
                          "plan_deadline = \"21:00\"\nplan_recheck = \"04:30\"\ncatch_up_minutes = 90\n"
                          "crontabs = [\"/x/cron\"]\nsystemd_dirs = []\n",
                          "t.toml");
  EXPECT_EQ(cfg.schedule.timezone, "Asia/Dubai");
  EXPECT_EQ(cfg.schedule.nightly_minutes, 20 * 60 + 15);
  EXPECT_EQ(cfg.schedule.dispatch_minutes, 5 * 60 + 50);
  EXPECT_EQ(cfg.schedule.plan_deadline_minutes, 21 * 60);
  EXPECT_EQ(cfg.schedule.plan_recheck_minutes, 4 * 60 + 30);
  EXPECT_EQ(cfg.schedule.catch_up_ms, 90 * 60'000);
  EXPECT_EQ(cfg.schedule.crontabs, std::vector<std::string>{"/x/cron"});
  EXPECT_TRUE(cfg.schedule.systemd_dirs.empty());
  auto error_of = [](const std::string& toml) {
    try {
      parse_config(toml, "t.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("[schedule]\nnightly = \"25:00\"\n").find("t.toml:2: key \"schedule.nightly\": expected HH:MM"), std::string::npos);
  EXPECT_NE(error_of("[schedule]\ntimezone = \"IST\"\n").find("schedule.timezone"), std::string::npos);
  EXPECT_NE(error_of("[schedule]\nwhen = \"now\"\n").find("unknown key \"schedule.when\""), std::string::npos);
}

// The installed-schedule check against files in a temporary directory.
class InstalledSchedule : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "daybreak-sched-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    cfg_.schedule.crontabs = {(dir_ / "crontab").string()};
    cfg_.schedule.systemd_dirs = {(dir_ / "systemd").string()};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  std::vector<ScheduleRow> check(const std::string& host_tz, Millis now) {
    std::vector<ScheduleRow> rows;
    inspect_installed_schedule(cfg_, now, host_tz, rows);
    return rows;
  }
  std::filesystem::path dir_;
  Config cfg_;
};

TEST_F(InstalledSchedule, NothingInstalledFails) {
  auto rows = check("UTC", at("2026-12-06T12:00:00Z"));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_FALSE(rows[0].ok);
  EXPECT_NE(rows[0].message.find("nothing installed"), std::string::npos) << rows[0].message;
}

TEST_F(InstalledSchedule, EveryMinuteGuardIsRightOnAnyHost) {
  write("crontab", "* * * * * daybreak-at nightly -- daybreak-job nightly -- daybreak-nightly\n"
                   "* * * * * daybreak-at dispatch -- daybreak-job dispatch -- dispatch --supervise\n");
  for (const char* tz : {"UTC", "America/New_York", "Asia/Kolkata"}) {
    for (const auto& r : check(tz, at("2026-12-06T12:00:00Z"))) EXPECT_TRUE(r.ok) << tz << ": " << r.message;
  }
}

TEST_F(InstalledSchedule, FixedHoursAreReadInTheHostsZone) {
  write("crontab", "CRON_TZ=Asia/Kolkata\n30 21 * * * daybreak-job nightly -- daybreak-nightly\n"
                   "59 5 * * * daybreak-job dispatch -- dispatch --supervise\n");
  auto utc = check("UTC", at("2026-12-06T12:00:00Z"));
  EXPECT_FALSE(utc[0].ok);
  EXPECT_NE(utc[0].message.find("ignores CRON_TZ"), std::string::npos) << utc[0].message;
  for (const auto& r : check("Asia/Kolkata", at("2026-12-06T12:00:00Z"))) EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(InstalledSchedule, AHostZoneWithDaylightSavingIsWrongForPartOfTheYear) {
  // 16:00 in London is 21:30 IST in winter (GMT) but 20:30 IST in summer (BST): checked in
  // December, the check still looks at the whole coming year.
  write("crontab", "0 16 * * * daybreak-job nightly -- daybreak-nightly\n29 0 * * * daybreak-job dispatch -- dispatch\n");
  auto rows = check("Europe/London", at("2026-12-06T12:00:00Z"));
  EXPECT_FALSE(rows[0].ok) << rows[0].message;
  EXPECT_FALSE(rows[1].ok) << rows[1].message;
}

TEST_F(InstalledSchedule, TimersNeedAZoneOrAnIstHostAndMustBeEnabled) {
  write("systemd/daybreak-nightly.timer", "[Timer]\nOnCalendar=*-*-* 21:30:00 Asia/Kolkata\n");
  write("systemd/daybreak-dispatch.timer", "[Timer]\nOnCalendar=*-*-* 05:59:00\n");
  // Installed but not enabled: nothing starts them.
  for (const auto& r : check("UTC", at("2026-12-06T12:00:00Z"))) EXPECT_FALSE(r.ok) << r.message;
  write("systemd/timers.target.wants/daybreak-nightly.timer", "");
  write("systemd/timers.target.wants/daybreak-dispatch.timer", "");
  auto utc = check("UTC", at("2026-12-06T12:00:00Z"));
  EXPECT_TRUE(utc[0].ok) << utc[0].message;
  EXPECT_FALSE(utc[1].ok) << "a zone-less 05:59 on a UTC host is 11:29 IST";
  EXPECT_TRUE(check("Asia/Kolkata", at("2026-12-06T12:00:00Z"))[1].ok);
  // A drop-in that resets the calendar to another time wins over the unit.
  write("systemd/daybreak-nightly.timer.d/late.conf", "[Timer]\nOnCalendar=\nOnCalendar=*-*-* 22:30:00 Asia/Kolkata\n");
  EXPECT_FALSE(check("UTC", at("2026-12-06T12:00:00Z"))[0].ok);
}

class ScheduleStore : public test_support::DbTest {
 protected:
  ScheduleStore() : DbTest("schedule") {}
};

TEST_F(ScheduleStore, TheGuardRecordsEachInstantOnce) {
  const Millis i1 = at("2026-12-06T16:00:00Z"), i2 = at("2026-12-07T16:00:00Z");
  EXPECT_FALSE(store::ScheduleLastFired(*db_, "nightly"));
  EXPECT_TRUE(store::ScheduleTryFire(*db_, "nightly", i1, i1 + 1000));
  EXPECT_FALSE(store::ScheduleTryFire(*db_, "nightly", i1, i1 + 2000)) << "a second tick for the same instant";
  EXPECT_EQ(store::ScheduleLastFired(*db_, "nightly").value_or(0), i1);
  EXPECT_TRUE(store::ScheduleTryFire(*db_, "nightly", i2, i2 + 1000));
  EXPECT_FALSE(store::ScheduleTryFire(*db_, "nightly", i1, i2 + 2000)) << "an older instant never goes back";
  EXPECT_EQ(store::ScheduleLastFired(*db_, "nightly").value_or(0), i2);
  EXPECT_FALSE(store::ScheduleLastFired(*db_, "dispatch"));
}

TEST_F(ScheduleStore, FireUsesTheConfiguredTimeAndZone) {
  Config cfg;
  cfg.schedule.timezone = "Asia/Dubai";
  cfg.schedule.nightly_minutes = 20 * 60;
  EXPECT_FALSE(fire_scheduled_job(*db_, cfg, "nightly", at("2026-12-06T19:59:00+04:00")).fire);
  auto d = fire_scheduled_job(*db_, cfg, "nightly", at("2026-12-06T20:00:10+04:00"));
  EXPECT_TRUE(d.fire);
  EXPECT_EQ(d.scheduled_for.value_or(0), at("2026-12-06T16:00:00Z"));
  EXPECT_FALSE(fire_scheduled_job(*db_, cfg, "nightly", at("2026-12-06T20:01:00+04:00")).fire);
  EXPECT_THROW(fire_scheduled_job(*db_, cfg, "weekly", at("2026-12-06T20:01:00+04:00")), UsageError);
}

TEST_F(ScheduleStore, PlanMissingAfterTheDeadlineAndAgainAtTheRecheck) {
  Config cfg;  // 06:00 IST slot; plan by 22:00 the day before, again at 05:00
  EXPECT_TRUE(plan_missing_conditions(*db_, cfg, at("2026-12-06T21:59:00+05:30")).empty());
  auto c1 = plan_missing_conditions(*db_, cfg, at("2026-12-06T22:00:30+05:30"));
  ASSERT_EQ(c1.size(), 1U);
  EXPECT_EQ(c1[0].rule, "plan_missing");
  EXPECT_EQ(c1[0].subject, "date:2026-12-07");
  auto c2 = plan_missing_conditions(*db_, cfg, at("2026-12-07T05:00:30+05:30"));
  ASSERT_EQ(c2.size(), 2U);
  EXPECT_EQ(c2[1].subject, "date:2026-12-07@05:00");
  // Planned: nothing holds.
  store::RunUpsertParams rp;
  rp.date = "2026-12-07";
  rp.window = window_for(at("2026-12-07T06:00:00+05:30"), WindowPolicy{});
  store::RunUpsert(*db_, rp);
  EXPECT_TRUE(plan_missing_conditions(*db_, cfg, at("2026-12-07T05:00:30+05:30")).empty());
}

TEST_F(ScheduleStore, DeadmanLooksFromItsLeadUntilTheDrainEnds) {
  Config cfg;  // 06:00 IST slot, lead 15 min, deadline 5 min, drain 10 min
  spdlog::logger quiet("deadman-test");
  auto checked = [&](const char* at_iso) {
    const auto r = morning_deadman(*db_, cfg, at(at_iso), 120'000, quiet);
    return r.at("checked").get<bool>();
  };
  EXPECT_FALSE(checked("2026-12-07T05:44:59+05:30"));
  EXPECT_TRUE(checked("2026-12-07T05:45:00+05:30"));
  EXPECT_TRUE(checked("2026-12-07T06:14:59+05:30"));
  EXPECT_FALSE(checked("2026-12-07T06:15:01+05:30"));
  cfg.schedule.deadman_lead_ms = 0;  // then the lookahead alone
  EXPECT_FALSE(checked("2026-12-07T05:57:59+05:30"));
  EXPECT_TRUE(checked("2026-12-07T05:58:00+05:30"));
  // An empty ledger has nobody to plan: checked, nothing missing, no alert.
  auto r = morning_deadman(*db_, cfg, at("2026-12-07T05:59:00+05:30"), 120'000, quiet);
  EXPECT_EQ(r.at("missing").get<int>(), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alerts"), 0);
}

}  // namespace
}  // namespace daybreak
