// `sla-report --watch`: the live view of a run in the terminal, refreshed in place once a
// second, readable at a glance. It only reads: each frame opens a short
// read transaction, so it never holds up dispatch's writer. With [database] url it reads the
// PostgreSQL ledger (store::PgReportLedger, a new read snapshot each frame): dispatch's own
// figures from a fresh runs.progress there, else counted from the deliveries and attempts.
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.hpp"
#include "cli/report_watch.hpp"

#include "app/report.hpp"
#include "domain/time.hpp"
#include "engine/live.hpp"
#include "store/pg_reports.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

std::atomic<bool> g_watch_stop{false};
extern "C" void on_watch_signal(int) { g_watch_stop = true; }

// Puts the terminal in non-canonical mode (a single q quits without Enter) for the life of the object.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::string p2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", std::floor(v * 100.0 + 1e-9) / 100.0);
  return b;
}

std::string dur(Millis ms) {
  bool neg = ms < 0;
  Millis s = std::llabs(ms) / 1000;
  char b[32];
  std::snprintf(b, sizeof b, "%s%lldm%02llds", neg ? "-" : "", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return b;
}

/// Reads one frame: calls its argument with the ledger inside one read snapshot.
using FrameReader = std::function<void(const std::function<void(store::ReportLedger&)>&)>;
/// The watch loop over either ledger: a frame a second until every run is closed, q, or a signal.
int watch_frames(const Config& cfg, const Clock& clock, bool as_json, const WatchOptions& o, const FrameReader& frames);

std::string frame_text(const json& frame, const std::string& tz) {
  std::string o = "daybreak sla-report --watch   " + format_instant(frame["at"].get<Millis>(), tz) + "   (q or Ctrl-C quits)\n";
  for (const auto& l : frame["runs"]) {
    const bool closed = l.value("closed", false);
    const bool risk = l.value("deadline_at_risk", false);
    const double live = l.value("live_success_pct", 100.0);
    std::string state = closed ? "CLOSED" : risk ? "AT RISK" : live < 97.0 && l.value("live_sample", 0) >= 20 ? "LOW SUCCESS" : "OK";
    const bool urgent = l.value("run_kind", std::string()) == "urgent";  // daybreak send-now: its own deadline
    o += std::string(urgent ? "\nurgent run " : "\nrun ") + std::to_string(l.value("run_id", std::int64_t{0})) + "  " +
         l.value("date", std::string()) + "  slot " +
         format_instant(l.value("slot_at_ms", Millis{0}), tz) + "  deadline " + format_instant(l.value("deadline_at_ms", Millis{0}), tz) +
         "   [" + state + "]\n";
    const std::size_t total = l.value("total", std::size_t{0}) - l.value("cancelled", std::size_t{0});
    o += "  live success " + p2(live) + "%   SLA so far " + p2(l.value("sla_so_far_pct", 100.0)) + "%   accepted " +
         std::to_string(l.value("accepted", 0)) + "/" + std::to_string(total) + "   on time " + std::to_string(l.value("on_time", 0)) +
         "   dead " + std::to_string(l.value("dead", 0)) + "\n";
    if (l.contains("delivered_so_far_pct") && l["delivered_so_far_pct"].is_number()) {
      o += "  delivered so far " + p2(l["delivered_so_far_pct"].get<double>()) + "%   live delivered " +
           p2(l.value("live_delivered_pct", 100.0)) + "%   read " + p2(l.value("read_pct", 0.0)) + "%   status unknown " +
           std::to_string(l.value("unknown", 0)) + " (" + p2(l.value("unknown_pct", 0.0)) + "%)   failed after accept " +
           std::to_string(l.value("failed_after_accept", 0)) + "\n";
    }
    o += "  backlog " + std::to_string(l.value("backlog", 0)) + "   remaining " + std::to_string(l.value("remaining", 0)) +
         "   in flight " + std::to_string(l.value("in_flight", 0)) + "   lag ms p50 " + p2(l.value("lag_p50_ms", 0.0)) + "  p95 " +
         p2(l.value("lag_p95_ms", 0.0)) + "  p99 " + p2(l.value("lag_p99_ms", 0.0)) + "\n";
    if (!closed && l.contains("projected_finish_ms") && l["projected_finish_ms"].is_number()) {
      Millis pf = l["projected_finish_ms"].get<Millis>();
      Millis margin = l.value("deadline_at_ms", Millis{0}) - pf;
      o += "  projected finish " + format_instant(pf, tz) + " (" + (margin >= 0 ? dur(margin) + " before" : dur(-margin) + " after") +
           " the deadline) at " + p2(l.value("available_mps", 0.0)) + " msg/s" + (risk ? "   DEADLINE AT RISK" : "") + "\n";
    } else if (!closed) {
      o += "  projected finish: none (no usable sender)" + std::string(risk ? "   DEADLINE AT RISK" : "") + "\n";
    }
    o += "  figures from " + l.value("source", std::string("ledger")) + "\n";
  }
  return o;
}

}  // namespace

// The runs to show: one run, a day's runs, or those running now (else the most recent one).
std::vector<store::Run> watch_pick_runs(store::ReportLedger& ledger, const WatchOptions& o, Millis now) {
  std::vector<store::Run> runs;
  if (o.run_id > 0) {
    if (auto r = ledger.run(o.run_id)) runs.push_back(*r);
    else throw CheckFailed("run " + std::to_string(o.run_id) + " does not exist (see sla-report list)");
  } else if (!o.date.empty()) {
    runs = ledger.runs_for_date(o.date);
    if (runs.empty()) throw CheckFailed("no runs for delivery day " + o.date);
  } else {
    for (auto& r : ledger.runs_active(now - 3'600'000, now + 600'000)) {
      if (r.state == "running" || r.window_start <= now) runs.push_back(std::move(r));
    }
    if (runs.empty()) runs = ledger.runs_recent(1);
    if (runs.empty()) throw CheckFailed("no runs yet");
  }
  return runs;
}

std::vector<store::Run> watch_pick_runs(store::Db& db, const WatchOptions& o, Millis now) {
  store::SqliteReportLedger ledger(db);
  return watch_pick_runs(ledger, o, now);
}

// One run's live figures: dispatch's own ("live" in a fresh runs.progress) when it writes
// them, else recomputed from the ledger, with dispatch's in-flight count when it is fresh.
json watch_run_live(store::ReportLedger& ledger, const store::Run& run, const Config& cfg, Millis now,
                    const std::function<store::DeliveryTruth(std::int64_t)>& truth) {
  json progress = json::parse(run.progress, nullptr, false);
  bool fresh = progress.is_object() && progress.contains("at") && progress["at"].is_number() &&
               std::llabs(now - progress["at"].get<Millis>()) <= 5000 && run.state == "running";
  if (fresh && progress.contains("live") && progress["live"].is_object()) {
    json l = progress["live"];
    l["source"] = "dispatch";
    if (!l.contains("delivered_on_time") || l["delivered_on_time"].is_null()) {
      // Status callbacks reach the ledger, not dispatch: their figures are counted there.
      engine::RunLive st;
      st.status = truth ? truth(run.run_id) : ledger.truth_for_run(run.run_id, now);
      json sj = engine::run_live_json(st);
      for (const char* k : {"delivered_on_time", "delivered", "read", "unknown", "failed_after_accept", "delivered_so_far_pct", "read_pct",
                            "unknown_pct", "live_delivered_pct", "live_delivered_sample"}) {
        l[k] = sj[k];
      }
    }
    return l;
  }
  engine::LiveSnapshot snap = engine::snapshot_from_ledger(ledger, {run.run_id}, cfg, now);
  if (snap.runs.empty()) return json::object();
  json l = engine::run_live_json(snap.runs.front());
  l["state"] = run.state;
  l["source"] = "ledger";
  if (fresh) {
    if (progress.contains("in_flight")) l["in_flight"] = progress["in_flight"];
    l["source"] = "ledger+dispatch";
  }
  return l;
}

json watch_run_live(store::Db& db, const store::Run& run, const Config& cfg, Millis now,
                    const std::function<store::DeliveryTruth(std::int64_t)>& truth) {
  store::SqliteReportLedger ledger(db);
  return watch_run_live(ledger, run, cfg, now, truth);
}

int watch_runs(const std::string& db_path, const Config& cfg, const Clock& clock, bool as_json, const WatchOptions& o) {
  store::OpenOptions ro;
  ro.read_only = true;
  ro.migrate = false;
  store::Db db(db_path, ro);
  store::SqliteReportLedger ledger(db);
  return watch_frames(cfg, clock, as_json, o, [&](const std::function<void(store::ReportLedger&)>& read) {
    store::guarded("reading live figures", [&] {
      SQLite::Transaction tx(db.raw(), SQLite::TransactionBehavior::DEFERRED);  // one snapshot per frame
      read(ledger);
    });
  });
}

int watch_runs_pg(const std::string& url, const Config& cfg, const Clock& clock, bool as_json, const WatchOptions& o) {
  store::PgReportLedger ledger(url);
  bool first = true;
  return watch_frames(cfg, clock, as_json, o, [&](const std::function<void(store::ReportLedger&)>& read) {
    if (!first) ledger.refresh();  // one snapshot per frame
    first = false;
    read(ledger);
  });
}

namespace {

int watch_frames(const Config& cfg, const Clock& clock, bool as_json, const WatchOptions& o, const FrameReader& frames) {
  g_watch_stop = false;
  struct sigaction sa{};
  sa.sa_handler = on_watch_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int{}, old_term{};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  RawTerminal term;
  const bool tty = ::isatty(STDOUT_FILENO) && !as_json;
  int rc = kExitOk;
  while (!g_watch_stop) {
    Millis now = clock.now();
    json frame = {{"at", now}, {"runs", json::array()}};
    bool all_closed = true;
    frames([&](store::ReportLedger& ledger) {
      for (const auto& run : watch_pick_runs(ledger, o, now)) {
        json l = watch_run_live(ledger, run, cfg, now);
        all_closed = all_closed && l.value("closed", false);
        frame["runs"].push_back(std::move(l));
      }
    });
    if (as_json) {
      print_json(frame);
    } else {
      std::string text = frame_text(frame, cfg.default_timezone);
      if (tty) std::fputs("\033[H\033[2J", stdout);  // home + clear: refresh in place
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    }
    if (o.once || all_closed) break;
    // Wait a second for q (or a signal); the refresh follows the real second, whatever the clock's scale.
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    int n = ::poll(&pfd, 1, ::isatty(STDIN_FILENO) ? 1000 : 0);
    if (!::isatty(STDIN_FILENO)) ::usleep(1'000'000);
    if (n > 0 && (pfd.revents & POLLIN)) {
      char c = 0;
      if (::read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) break;
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return rc;
}

}  // namespace

}  // namespace daybreak
