// The Prometheus textfile (core/engine/metrics.cpp) of a finished run built from the ledger
// (core/engine/live.cpp): every value is checked against the rows the test inserts, the file is
// replaced atomically, and `promtool check metrics` (Debian package prometheus) accepts it. The
// nightly jobs' textfiles (run_job_with_metrics): exit codes, a failed run keeping the previous
// success, and every textfile 0644 under umask 077 (node_exporter reads it as another user).
#include "engine/metrics.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include "db_fixture.hpp"
#include "cli/job_metrics.hpp"
#include "app/report.hpp"
#include "engine/live.hpp"
#include "store/runs.hpp"

namespace daybreak::engine {
namespace {

namespace fs = std::filesystem;

constexpr Millis kSlot = 1795825800000;  // 2026-11-28T00:30:00Z

class MetricsTest : public test_support::DbTest {
 protected:
  MetricsTest() : DbTest("metrics", "ledger.db") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('c1','t','b','en',0)");
    SenderConfig a;
    a.id = "wa-1";
    a.phone_number_id = "1";
    a.mps = 80;
    SenderConfig b = a;
    b.id = "wa-2";
    b.mps = 40;
    cfg_.senders = {a, b};
    run_ = make_finished_run();
  }
  // A closed run of 100 deliveries: advisors 0..89 accepted on time with dispatch lag i ms
  // (gold, wa-1 for even i, wa-2 for odd), 90..94 accepted late (platinum, wa-1), 95..97 dead
  // (platinum, wa-2), 98..99 cancelled. Each sent delivery has one attempt with latency 40 ms;
  // the dead ones have a second, failed attempt (outcome retryable, 2 s) before dying on a permanent one.
  std::int64_t make_finished_run() {
    store::RunUpsertParams p;
    p.date = "2026-11-28";
    p.window = window_for(kSlot, WindowPolicy{});
    p.planned_count = 100;
    std::int64_t run = store::RunUpsert(*db_, p);
    db_->write_tx([&] {
      for (int i = 0; i < 100; ++i) {
        std::string a = "A" + std::to_string(i);
        bool gold = i < 90;
        std::string tier = gold ? "gold" : "platinum";
        std::string sender = i < 90 ? (i % 2 ? "wa-2" : "wa-1") : (i < 95 ? "wa-1" : "wa-2");
        std::string state = i < 90 ? "accepted" : i < 95 ? "read" : i < 98 ? "dead" : "cancelled";
        Millis planned = kSlot + i * 1000;
        std::string sent = i < 98 ? std::to_string(planned + i) : "NULL";
        std::string acc = i < 90 ? std::to_string(planned + 500) : i < 95 ? std::to_string(p.window.deadline + 1000) : "NULL";
        db_->exec("INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, updated_at) "
                  "VALUES ('" + a + "', 'n', '" + tier + "', 'Asia/Kolkata', '06:00', 'whatsapp', 1, 'en', 0)");
        db_->exec("INSERT INTO deliveries(delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, "
                  "state, channel, sender, planned_at, deadline_at, first_sent_at, accepted_at, updated_at, order_key) VALUES (" +
                  std::to_string(i + 1) + ", " + std::to_string(run) + ", '" + a + "', '2026-11-28', " + std::to_string(kSlot) +
                  ", 'c1', 'editorial', '" + tier + "', " + (gold ? "1" : "0") + ", '" + state + "', 'whatsapp', '" + sender +
                  "', " + std::to_string(planned) + ", " + std::to_string(p.window.deadline) + ", " + sent + ", " + acc + ", 0, daybreak_order_key('" + a + "', '2026-11-28'))");
        if (i < 95) {
          db_->exec("INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
                    "latency_ms) VALUES (" + std::to_string(i + 1) + ", 1, 'whatsapp', '" + sender + "', 0, 0, 'accepted', 40)");
        } else if (i < 98) {
          db_->exec("INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
                    "error_code, latency_ms) VALUES (" + std::to_string(i + 1) + ", 1, 'whatsapp', '" + sender +
                    "', 0, 0, 'retryable', '131000', 2000), (" + std::to_string(i + 1) + ", 2, 'whatsapp', '" + sender +
                    "', 0, 0, 'permanent', '131026', 40)");
        }
      }
    });
    db_->exec("UPDATE runs SET state = 'closed' WHERE run_id = " + std::to_string(run));
    store_run_report(*db_, *store::RunGet(*db_, run), kSlot + 3'600'000);
    return run;
  }

  // Parses the sample lines of a textfile into "name{labels}" → value.
  static std::map<std::string, double> samples(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
  }

  Config cfg_;
  std::int64_t run_ = 0;
};

TEST_F(MetricsTest, TheLedgersLatestAnswerTellsACertificateFailureFromRejectedCredentials) {
  // What `daybreak alerts check` (cron, no dispatch running) sees: the latest answer of each
  // sender, read back from delivery_attempts. A relay certificate that did not verify is stored
  // as a credentials outcome with libcurl's code (60: the peer's certificate failed verification).
  const Millis now = kSlot + 3'600'000;
  db_->exec("INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
            "error_code, latency_ms) VALUES (1, 2, 'whatsapp', 'wa-1', 0, 0, 'credentials', 'curl:60', 5), "
            "(2, 2, 'whatsapp', 'wa-2', 0, 0, 'credentials', '190', 5)");
  LiveSnapshot snap = snapshot_from_ledger(*db_, {run_}, cfg_, now);
  ASSERT_EQ(snap.senders.size(), 2u);
  EXPECT_TRUE(snap.senders[0].credentials_failed);
  EXPECT_TRUE(snap.senders[0].certificate_failed);
  EXPECT_TRUE(snap.senders[1].credentials_failed);
  EXPECT_FALSE(snap.senders[1].certificate_failed) << "a rejected token is not a certificate failure";
  // A later accepted answer clears both.
  db_->exec("INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
            "latency_ms) VALUES (1, 3, 'whatsapp', 'wa-1', 0, 0, 'accepted', 5)");
  snap = snapshot_from_ledger(*db_, {run_}, cfg_, now);
  EXPECT_FALSE(snap.senders[0].credentials_failed);
  EXPECT_FALSE(snap.senders[0].certificate_failed);
}

TEST_F(MetricsTest, TextfileValuesMatchTheLedgerOfAFinishedRun) {
  const Millis now = kSlot + 3'600'000;
  LiveSnapshot snap = snapshot_from_ledger(*db_, {run_}, cfg_, now);
  write_metrics_textfile(dir_.string(), snap);
  ASSERT_TRUE(fs::exists(dir_ / "daybreak.prom"));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "temporary file left: " << e.path();
  }
  std::ifstream f(dir_ / "daybreak.prom");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  auto s = samples(text);

  // Deliveries by state/channel/tier/sender, as SELECT … GROUP BY would count them.
  EXPECT_EQ(s["daybreak_deliveries{state=\"accepted\",channel=\"whatsapp\",tier=\"gold\",sender=\"wa-1\"}"], 45);
  EXPECT_EQ(s["daybreak_deliveries{state=\"accepted\",channel=\"whatsapp\",tier=\"gold\",sender=\"wa-2\"}"], 45);
  EXPECT_EQ(s["daybreak_deliveries{state=\"read\",channel=\"whatsapp\",tier=\"platinum\",sender=\"wa-1\"}"], 5);
  EXPECT_EQ(s["daybreak_deliveries{state=\"dead\",channel=\"whatsapp\",tier=\"platinum\",sender=\"wa-2\"}"], 3);
  auto& q = db_->stmt("SELECT state, tier, sender, COUNT(*) FROM deliveries WHERE run_id = ? GROUP BY 1, 2, 3");
  q.bind(1, run_);
  while (q.executeStep()) {
    std::string key = "daybreak_deliveries{state=\"" + q.getColumn(0).getString() + "\",channel=\"whatsapp\",tier=\"" +
                      q.getColumn(1).getString() + "\",sender=\"" + q.getColumn(2).getString() + "\"}";
    EXPECT_EQ(s[key], q.getColumn(3).getInt64()) << key;
  }
  // Requests by outcome: 95 accepted, 3 retryable, 3 permanent.
  EXPECT_EQ(s["daybreak_requests_total{channel=\"whatsapp\",sender=\"wa-1\",outcome=\"accepted\"}"], 50);
  EXPECT_EQ(s["daybreak_requests_total{channel=\"whatsapp\",sender=\"wa-2\",outcome=\"accepted\"}"], 45);
  EXPECT_EQ(s["daybreak_requests_total{channel=\"whatsapp\",sender=\"wa-2\",outcome=\"retryable\"}"], 3);
  EXPECT_EQ(s["daybreak_requests_total{channel=\"whatsapp\",sender=\"wa-2\",outcome=\"permanent\"}"], 3);
  // Lag histogram: 98 sent with lags 0..97 ms; ≤ 5 ms: 0..5 (6), ≤ 10 ms: 11, ≤ 25: 26, ≤ 50: 51, ≤ 100: 98.
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_count"], 98);
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_bucket{le=\"0.005\"}"], 6);
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_bucket{le=\"0.01\"}"], 11);
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_bucket{le=\"0.05\"}"], 51);
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_bucket{le=\"0.1\"}"], 98);
  EXPECT_EQ(s["daybreak_dispatch_lag_seconds_bucket{le=\"+Inf\"}"], 98);
  EXPECT_NEAR(s["daybreak_dispatch_lag_seconds_sum"], (97.0 * 98 / 2) / 1000.0, 1e-9);
  // Latency: 98 at 40 ms, 3 at 2 s.
  EXPECT_EQ(s["daybreak_send_latency_seconds_count"], 101);
  EXPECT_EQ(s["daybreak_send_latency_seconds_bucket{le=\"0.05\"}"], 98);
  EXPECT_EQ(s["daybreak_send_latency_seconds_bucket{le=\"2.5\"}"], 101);
  // The run's ratios: 90 on time of 98 eligible, every one decided.
  const std::string rl = "{run_id=\"" + std::to_string(run_) + "\",date=\"2026-11-28\"}";
  EXPECT_NEAR(s["daybreak_live_success_ratio" + rl], 90.0 / 98.0, 1e-12);
  EXPECT_NEAR(s["daybreak_sla_so_far_ratio" + rl], 90.0 / 98.0, 1e-12);
  EXPECT_EQ(s["daybreak_backlog_deliveries" + rl], 0);
  EXPECT_EQ(s["daybreak_deadline_at_risk" + rl], 0);
  EXPECT_EQ(s["daybreak_dead_letters"], 3);
  EXPECT_EQ(s["daybreak_available_send_rate" + rl], 120);
  // The stored report's SLA, as a ratio; no alert firing.
  EXPECT_NEAR(s["daybreak_last_run_sla_ratio{run_id=\"" + std::to_string(run_) + "\"}"], 90.0 / 98.0, 1e-12);
  EXPECT_EQ(s["daybreak_alerts_firing"], 0);
  EXPECT_EQ(s["daybreak_breaker_state{sender=\"wa-1\",channel=\"whatsapp\",state=\"closed\"}"], 1);
  EXPECT_EQ(s["daybreak_breaker_state{sender=\"wa-1\",channel=\"whatsapp\",state=\"open\"}"], 0);
  // Every family says what it is.
  for (const char* fam : {"daybreak_deliveries", "daybreak_requests_total", "daybreak_dispatch_lag_seconds",
                          "daybreak_send_latency_seconds", "daybreak_live_success_ratio", "daybreak_breaker_state",
                          "daybreak_backlog_deliveries", "daybreak_dead_letters", "daybreak_alerts_firing",
                          "daybreak_last_run_sla_ratio"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + fam + " "), std::string::npos) << fam;
    EXPECT_NE(text.find(std::string("# TYPE ") + fam + " "), std::string::npos) << fam;
  }
  // Rewritten in place: a second write replaces the file.
  snap.alerts_firing = 2;
  write_metrics_textfile(dir_.string(), snap);
  std::ifstream g(dir_ / "daybreak.prom");
  std::stringstream s2;
  s2 << g.rdbuf();
  EXPECT_EQ(samples(s2.str())["daybreak_alerts_firing"], 2);
}

TEST_F(MetricsTest, PromtoolAcceptsTheTextfile) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not found: install the Debian package prometheus to run this check";
  }
  LiveSnapshot snap = snapshot_from_ledger(*db_, {run_}, cfg_, kSlot + 3'600'000);
  snap.senders[1].breaker = BreakerState::open;
  write_metrics_textfile(dir_.string(), snap);
  const std::string cmd = "promtool check metrics < '" + (dir_ / "daybreak.prom").string() + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
}

TEST(HistogramTest, BucketsAndQuantiles) {
  Histogram h = Histogram::lag();
  for (int i = 1; i <= 100; ++i) h.observe(i / 1000.0);  // 1..100 ms
  EXPECT_EQ(h.count, 100u);
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 0.05);
  EXPECT_DOUBLE_EQ(h.quantile(0.99), 0.1);
  h.observe(-0.2);  // sent before its planned time: first bucket
  EXPECT_EQ(h.counts[0], 6u);
  h.observe(1e6);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_DOUBLE_EQ(Histogram::latency().quantile(0.5), 0);
}

TEST(ProjectionTest, DeadlineAtRiskWhenTheRemainingWorkCannotFinish) {
  RunLive r;
  r.deadline_at = 100'000;
  r.remaining = 8000;
  r.last_planned_at = 50'000;
  std::vector<SenderLive> senders(2);
  senders[0].mps = 80;
  senders[1].mps = 80;
  finish_run_projection(r, senders, 0);  // 8000 / 160 = 50 s < 100 s
  EXPECT_FALSE(r.deadline_at_risk);
  EXPECT_EQ(r.projected_finish, 50'000);
  senders[1].breaker = BreakerState::open;  // 8000 / 80 = 100 s: ends at 100 s, not after
  finish_run_projection(r, senders, 0);
  EXPECT_FALSE(r.deadline_at_risk);
  finish_run_projection(r, senders, 1);
  EXPECT_TRUE(r.deadline_at_risk);
  EXPECT_DOUBLE_EQ(r.available_mps, 80);
  senders[0].credentials_failed = true;  // nothing can send
  finish_run_projection(r, senders, 1);
  EXPECT_TRUE(r.deadline_at_risk);
  EXPECT_FALSE(r.projected_finish.has_value());
}

// A temporary directory for textfiles, and the file helpers the textfile tests share.
class MetricsTextfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "daybreak-textfile-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "kept " << dir_ << " for inspection\n";
    } else {
      fs::remove_all(dir_);
    }
  }
  static std::string read(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static unsigned mode_of(const fs::path& p) {
    struct stat st{};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  // Every name in the directory: a temporary file left behind would show here.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::map<std::string, double> samples(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
  }
  fs::path dir_;
};

// Restores the process umask when the test ends, passed or not.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

TEST_F(MetricsTextfileTest, TextfilesAre0644UnderUmask077) {
  UmaskGuard guard(077);  // the cron wrapper's and the systemd units' umask
  LiveSnapshot snap;
  snap.at = 1'795'825'800'000;
  write_metrics_textfile(dir_.string(), snap);
  JobRunMetrics job;
  job.program = "plan-deliveries";
  job.started_at = snap.at;
  job.finished_at = snap.at + 1500;
  write_job_metrics_textfile(dir_.string(), job);
  EXPECT_EQ(mode_of(dir_ / "daybreak.prom"), 0644u);
  EXPECT_EQ(mode_of(dir_ / "daybreak_job_plan-deliveries.prom"), 0644u);
  // Rewritten (the rename replaces a file that exists): still 0644, and no temporary file left.
  write_metrics_textfile(dir_.string(), snap);
  write_job_metrics_textfile(dir_.string(), job);
  EXPECT_EQ(mode_of(dir_ / "daybreak.prom"), 0644u);
  EXPECT_EQ(names(), (std::vector<std::string>{"daybreak.prom", "daybreak_job_plan-deliveries.prom"}));
}

TEST_F(MetricsTextfileTest, WriteFailureNamesThePathAndLeavesNothing) {
  fs::path missing = dir_ / "no-such-dir";
  try {
    write_textfile_atomically((missing / "x.prom").string(), "x 1\n");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(names().empty());
}

TEST_F(MetricsTextfileTest, JobTextfileKeepsThePreviousSuccessAfterAFailedRun) {
  const Millis t1 = 1'795'795'200'000;  // 2026-11-27T21:30:00+05:30
  const Millis t2 = t1 + 86'400'000;
  const fs::path file = dir_ / "daybreak_job_assign-fallback.prom";
  JobRunMetrics ok;
  ok.program = "assign-fallback";
  ok.started_at = t1;
  ok.finished_at = t1 + 2'250;
  ok.date = "2026-11-28";
  ok.figures = {{"daybreak_fallback_missing_advisors", "h", {{{}, 0}}},
                {"daybreak_fallback_assigned_advisors", "h", {{{{"source", "editorial"}}, 7}, {{{"source", "fallback"}}, 3}}}};
  write_job_metrics_textfile(dir_.string(), ok);
  auto s = samples(read(file));
  const std::string p = "{program=\"assign-fallback\"}";
  EXPECT_EQ(s["daybreak_job_last_run_timestamp_seconds" + p], t1 / 1000.0);
  EXPECT_EQ(s["daybreak_job_last_success_timestamp_seconds" + p], t1 / 1000.0);
  EXPECT_EQ(s["daybreak_job_last_exit_code" + p], 0);
  EXPECT_EQ(s["daybreak_job_duration_seconds" + p], 2.25);
  EXPECT_EQ(s["daybreak_job_target_day_timestamp_seconds{program=\"assign-fallback\",date=\"2026-11-28\"}"], 1'795'824'000);
  EXPECT_EQ(s["daybreak_fallback_assigned_advisors{program=\"assign-fallback\",source=\"fallback\"}"], 3);
  EXPECT_EQ(s["daybreak_fallback_missing_advisors" + p], 0);

  // The next night fails (exit 4, before any count): last run moves, last success stays.
  JobRunMetrics failed;
  failed.program = "assign-fallback";
  failed.started_at = t2;
  failed.finished_at = t2 + 10;
  failed.exit_code = 4;
  write_job_metrics_textfile(dir_.string(), failed);
  s = samples(read(file));
  EXPECT_EQ(s["daybreak_job_last_run_timestamp_seconds" + p], t2 / 1000.0);
  EXPECT_EQ(s["daybreak_job_last_success_timestamp_seconds" + p], t1 / 1000.0);
  EXPECT_EQ(s["daybreak_job_last_exit_code" + p], 4);
  EXPECT_EQ(s.count("daybreak_fallback_missing_advisors" + p), 0u) << "no counts from a run that had none";
  // And again: still the success of the first night (read back from a file a failed run wrote).
  failed.started_at = t2 + 600'000;
  write_job_metrics_textfile(dir_.string(), failed);
  EXPECT_EQ(samples(read(file))["daybreak_job_last_success_timestamp_seconds" + p], t1 / 1000.0);

  // No earlier file: no success known, written as 0 (so "no success for 25 h" fires).
  fs::remove(file);
  write_job_metrics_textfile(dir_.string(), failed);
  EXPECT_EQ(samples(read(file))["daybreak_job_last_success_timestamp_seconds" + p], 0);
}

TEST(MetricsJobParseTest, LastSuccessIsReadForTheProgramOnly) {
  const std::string text =
      "# HELP daybreak_job_last_success_timestamp_seconds x\n"
      "daybreak_job_last_success_timestamp_seconds{program=\"plan-deliveries\"} 17\n"
      "daybreak_job_last_success_timestamp_seconds{program=\"assign-fallback\"} 1795795200.5\n";
  EXPECT_EQ(parse_job_last_success(text, "assign-fallback"), 1'795'795'200'500);
  EXPECT_EQ(parse_job_last_success(text, "plan-deliveries"), 17'000);
  EXPECT_EQ(parse_job_last_success(text, "dispatch"), std::nullopt);
  EXPECT_EQ(parse_job_last_success("daybreak_job_last_success_timestamp_seconds{program=\"x\"} junk\n", "x"), std::nullopt);
}

// run_job_with_metrics (core/cli/job_metrics.cpp): the exit code in the file is the one the
// process exits with, for a returned code and for each error type run_main maps.
TEST_F(MetricsTextfileTest, JobRunRecordsTheExitCodeTheProcessWillHave) {
  AppContext ctx;
  ctx.cfg.dispatch.metrics_dir = dir_.string();
  auto clock = std::make_unique<ManualClock>(1'795'795'200'000);
  ManualClock* manual = clock.get();
  ctx.clock = std::move(clock);
  ctx.log = std::make_shared<spdlog::logger>("metrics-test", std::make_shared<spdlog::sinks::null_sink_mt>());
  const fs::path file = dir_ / "daybreak_job_plan-deliveries.prom";
  const std::string p = "{program=\"plan-deliveries\"}";

  int rc = run_job_with_metrics(ctx, "plan-deliveries", true, [&](JobFigures& f) {
    f.date = "2026-11-28";
    DayPlanResult r;
    r.eligible = 5;
    r.planned = 4;
    r.inserted = 4;
    r.unreachable = 1;
    r.runs = 1;
    f.gauges = plan_job_gauges(r);
    manual->advance(3'000);
    return 1;
  });
  EXPECT_EQ(rc, 1);
  auto s = samples(read(file));
  EXPECT_EQ(s["daybreak_job_last_exit_code" + p], 1);
  EXPECT_EQ(s["daybreak_job_duration_seconds" + p], 3);
  EXPECT_EQ(s["daybreak_job_last_success_timestamp_seconds" + p], 0);
  EXPECT_EQ(s["daybreak_plan_planned_deliveries" + p], 4);
  EXPECT_EQ(s["daybreak_plan_unreachable_advisors" + p], 1);
  EXPECT_EQ(s["daybreak_plan_feasible" + p], 1);

  const std::vector<std::pair<std::function<void()>, int>> errors = {
      {[] { throw store::StoreError("database is locked"); }, kExitDatabase},
      {[] { throw ConfigError("bad key"); }, kExitConfig},
      {[] { throw UsageError("--date"); }, kExitUsage},
      {[] { throw std::runtime_error("boom"); }, kExitCheckFailed},
  };
  for (const auto& [thrower, code] : errors) {
    manual->advance(60'000);
    EXPECT_ANY_THROW(run_job_with_metrics(ctx, "plan-deliveries", true, [&](JobFigures&) -> int {
      thrower();
      return 0;
    }));
    EXPECT_EQ(samples(read(file))["daybreak_job_last_exit_code" + p], code);
    EXPECT_EQ(samples(read(file))["daybreak_job_last_run_timestamp_seconds" + p], manual->now() / 1000.0);
  }

  const Millis good = manual->now();
  EXPECT_EQ(run_job_with_metrics(ctx, "plan-deliveries", true, [](JobFigures&) { return 0; }), 0);
  EXPECT_EQ(samples(read(file))["daybreak_job_last_success_timestamp_seconds" + p], good / 1000.0);
  // A dry run (record = false) leaves the file as it was.
  manual->advance(60'000);
  EXPECT_EQ(run_job_with_metrics(ctx, "plan-deliveries", false, [](JobFigures&) { return 1; }), 1);
  EXPECT_EQ(samples(read(file))["daybreak_job_last_exit_code" + p], 0);
  EXPECT_EQ(samples(read(file))["daybreak_job_last_run_timestamp_seconds" + p], good / 1000.0);
}

TEST_F(MetricsTextfileTest, PromtoolAcceptsTheJobTextfiles) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not found: install the Debian package prometheus to run this check";
  }
  JobRunMetrics fb;
  fb.program = "assign-fallback";
  fb.started_at = 1'795'795'200'000;
  fb.finished_at = fb.started_at + 1234;
  fb.date = "2026-11-28";
  FallbackResult fr;
  fr.eligible = 10;
  fr.by_source = {{"editorial", 6}, {"fallback", 3}};
  fr.fallback_assigned = 3;
  fr.missing = {{"A1", "en", "no candidate"}};
  fb.figures = fallback_job_gauges(fr);
  JobRunMetrics plan = fb;
  plan.program = "plan-deliveries";
  DayPlanResult pr;
  pr.eligible = 10;
  pr.planned = 9;
  pr.inserted = 9;
  pr.runs = 2;
  pr.feasible = false;
  plan.figures = plan_job_gauges(pr);
  for (const auto& m : {fb, plan}) {
    write_job_metrics_textfile(dir_.string(), m);
    const std::string path = (dir_ / job_metrics_file_name(m.program)).string();
    FILE* pipe = ::popen(("promtool check metrics < '" + path + "' 2>&1").c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    EXPECT_EQ(::pclose(pipe), 0) << out;
    EXPECT_EQ(out, "") << m.program << ": promtool lint findings:\n" << out;
  }
  auto s = samples(read(dir_ / "daybreak_job_assign-fallback.prom"));
  EXPECT_EQ(s["daybreak_fallback_assigned_advisors{program=\"assign-fallback\",source=\"override\"}"], 0);
  EXPECT_EQ(s["daybreak_fallback_assigned_advisors{program=\"assign-fallback\",source=\"editorial\"}"], 6);
  EXPECT_EQ(s["daybreak_fallback_missing_advisors{program=\"assign-fallback\"}"], 1);
  EXPECT_EQ(samples(read(dir_ / "daybreak_job_plan-deliveries.prom"))["daybreak_plan_runs{program=\"plan-deliveries\"}"], 2);
}

}  // namespace
}  // namespace daybreak::engine
