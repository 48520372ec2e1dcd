// The HTML report (`sla-report --html FILE`): one self-contained page for people who would
// rather look than read. Inline CSS and SVG only: no scripts, fonts or images from anywhere, so
// it opens from a mail attachment or an air-gapped laptop and renders the same everywhere.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "app/report.hpp"
#include "channels/email.hpp"
#include "domain/time.hpp"
#include "engine/live.hpp"
#include "store/reports.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

std::string f(double v, int prec = 1) { return fmt::format("{:.{}f}", v, prec); }
std::string pct2(double v) { return fmt::format("{:.2f}", std::floor(v * 100.0 + 1e-9) / 100.0); }

// Chart geometry: one viewBox for every chart so they line up.
constexpr double kW = 760, kH = 260, kL = 60, kR = 20, kT = 20, kB = 40;

// A cumulative step curve of sorted instants as an SVG polyline, x in seconds relative to `t0`.
std::string step_points(const std::vector<Millis>& sorted, Millis t0, double x0, double x1, double ymax) {
  auto X = [&](double s) { return kL + (s - x0) / (x1 - x0) * (kW - kL - kR); };
  auto Y = [&](double n) { return kH - kB - n / ymax * (kH - kT - kB); };
  std::string pts = f(X(x0)) + "," + f(Y(0));
  // At most ~600 vertices: group instants into pixel-wide steps.
  const double px = (x1 - x0) / 600.0;
  double last_x = x0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    double s = static_cast<double>(sorted[i] - t0) / 1000.0;
    s = std::clamp(s, x0, x1);
    if (s - last_x >= px || i + 1 == sorted.size()) {
      pts += " " + f(X(s)) + "," + f(Y(static_cast<double>(n)));
      n = i + 1;
      pts += " " + f(X(s)) + "," + f(Y(static_cast<double>(n)));
      last_x = s;
    } else {
      n = i + 1;
    }
  }
  pts += " " + f(X(x1)) + "," + f(Y(static_cast<double>(n)));
  return pts;
}

std::string axes(double x0, double x1, double ymax, const std::string& xlabel, const std::string& ylabel) {
  auto X = [&](double s) { return kL + (s - x0) / (x1 - x0) * (kW - kL - kR); };
  std::string o = "<line x1='" + f(kL) + "' y1='" + f(kH - kB) + "' x2='" + f(kW - kR) + "' y2='" + f(kH - kB) + "' class='axis'/>";
  o += "<line x1='" + f(kL) + "' y1='" + f(kT) + "' x2='" + f(kL) + "' y2='" + f(kH - kB) + "' class='axis'/>";
  double step = std::max(1.0, std::pow(10, std::floor(std::log10(std::max(1.0, x1 - x0)))) / 2);
  if ((x1 - x0) / step > 12) step *= 2;
  for (double s = std::ceil(x0 / step) * step; s <= x1; s += step) {
    o += "<text x='" + f(X(s)) + "' y='" + f(kH - kB + 15) + "' class='tick' text-anchor='middle'>" + f(s, 0) + "</text>";
  }
  for (int i = 0; i <= 4; ++i) {
    double v = ymax * i / 4;
    double y = kH - kB - v / ymax * (kH - kT - kB);
    o += "<text x='" + f(kL - 6) + "' y='" + f(y + 4) + "' class='tick' text-anchor='end'>" + f(v, 0) + "</text>";
  }
  o += "<text x='" + f((kL + kW - kR) / 2) + "' y='" + f(kH - 5) + "' class='label' text-anchor='middle'>" + channels::html_escape(xlabel) + "</text>";
  o += "<text x='12' y='" + f(kT + 8) + "' class='label'>" + channels::html_escape(ylabel) + "</text>";
  return o;
}

// Accepted over time against the plan curve and the deadline, for one run.
std::string accepted_chart(store::ReportLedger& ledger, std::int64_t run_id, const std::string& tz) {
  auto run = ledger.run(run_id);
  if (!run) return {};
  auto outcomes = ledger.outcomes(run_id, nullptr);
  std::vector<Millis> planned, accepted;
  std::size_t eligible = 0;
  for (const auto& o : outcomes) {
    if (o.state == DeliveryState::cancelled) continue;
    ++eligible;
    planned.push_back(o.planned_at);
    if (o.accepted_at) accepted.push_back(*o.accepted_at);
  }
  std::sort(planned.begin(), planned.end());
  std::sort(accepted.begin(), accepted.end());
  const Millis t0 = run->slot_at;
  double x0 = static_cast<double>(run->window_start - t0) / 1000.0 - 10;
  double last = accepted.empty() ? 0 : static_cast<double>(accepted.back() - t0) / 1000.0;
  double x1 = std::max(static_cast<double>(run->deadline_at - t0) / 1000.0 + 30, last + 10);
  double ymax = std::max<double>(1, static_cast<double>(eligible));
  auto X = [&](double s) { return kL + (s - x0) / (x1 - x0) * (kW - kL - kR); };
  auto Y = [&](double n) { return kH - kB - n / ymax * (kH - kT - kB); };
  const double dl = static_cast<double>(run->deadline_at - t0) / 1000.0;
  const double target = ymax * kSlaTargetPct / 100.0;
  std::string o = "<figure><figcaption>Run " + std::to_string(run_id) + " (slot " + channels::html_escape(format_instant(run->slot_at, tz)) +
                  "): accepted over time against the plan</figcaption>";
  o += "<svg id='accepted-run-" + std::to_string(run_id) + "' class='chart' viewBox='0 0 " + f(kW, 0) + " " + f(kH, 0) +
       "' role='img' aria-label='accepted deliveries over time'>";
  o += axes(x0, x1, ymax, "seconds after the slot", "deliveries");
  o += "<line x1='" + f(X(dl)) + "' y1='" + f(kT) + "' x2='" + f(X(dl)) + "' y2='" + f(kH - kB) + "' class='deadline'/>";
  o += "<text x='" + f(X(dl) + 4) + "' y='" + f(kT + 10) + "' class='tick'>deadline</text>";
  o += "<line x1='" + f(kL) + "' y1='" + f(Y(target)) + "' x2='" + f(kW - kR) + "' y2='" + f(Y(target)) + "' class='target'/>";
  o += "<polyline class='plan' points='" + step_points(planned, t0, x0, x1, ymax) + "'/>";
  o += "<polyline class='accepted' points='" + step_points(accepted, t0, x0, x1, ymax) + "'/>";
  o += "</svg><p class='legend'><span class='k plan'></span>planned <span class='k accepted'></span>accepted "
       "<span class='k deadline'></span>deadline <span class='k target'></span>99% of eligible</p></figure>";
  return o;
}

// Lag distribution (first request − planned) over every run of the report, in the metrics' buckets.
std::string lag_chart(store::ReportLedger& ledger, const std::vector<std::int64_t>& run_ids) {
  engine::Histogram h = engine::Histogram::lag();
  for (auto id : run_ids) {
    for (const auto& o : ledger.outcomes(id, nullptr)) {
      if (o.state != DeliveryState::cancelled && o.first_sent_at) h.observe(static_cast<double>(*o.first_sent_at - o.planned_at) / 1000.0);
    }
  }
  std::uint64_t ymax = 1;
  for (auto c : h.counts) ymax = std::max(ymax, c);
  const std::size_t nb = h.counts.size();
  const double bw = (kW - kL - kR) / static_cast<double>(nb);
  std::string o = "<figure><figcaption>Dispatch lag (first request minus planned time), " + std::to_string(h.count) +
                  " deliveries</figcaption><svg id='lag-chart' class='chart' viewBox='0 0 " + f(kW, 0) + " " + f(kH, 0) +
                  "' role='img' aria-label='dispatch lag distribution'>";
  o += "<line x1='" + f(kL) + "' y1='" + f(kH - kB) + "' x2='" + f(kW - kR) + "' y2='" + f(kH - kB) + "' class='axis'/>";
  for (std::size_t i = 0; i < nb; ++i) {
    double hgt = static_cast<double>(h.counts[i]) / static_cast<double>(ymax) * (kH - kT - kB);
    double x = kL + static_cast<double>(i) * bw;
    o += "<rect class='bar' x='" + f(x + 2) + "' y='" + f(kH - kB - hgt) + "' width='" + f(bw - 4) + "' height='" + f(hgt) + "'><title>" +
         std::to_string(h.counts[i]) + "</title></rect>";
    std::string label = i < h.bounds.size() ? (h.bounds[i] < 1 ? f(h.bounds[i] * 1000, 0) + "ms" : f(h.bounds[i], 0) + "s") : "more";
    o += "<text x='" + f(x + bw / 2) + "' y='" + f(kH - kB + 15) + "' class='tick' text-anchor='middle'>&#8804;" + label + "</text>";
    if (h.counts[i] > 0) {
      o += "<text x='" + f(x + bw / 2) + "' y='" + f(kH - kB - hgt - 3) + "' class='tick' text-anchor='middle'>" +
           std::to_string(h.counts[i]) + "</text>";
    }
  }
  o += "</svg></figure>";
  return o;
}

// Outcomes of each group as a stacked horizontal bar: on time, late, failed, dead.
std::string outcome_bars(const std::string& id, const std::string& title, const json& groups) {
  if (!groups.is_object() || groups.empty()) return {};
  const double row = 26, h = kT + row * static_cast<double>(groups.size()) + 30;
  const double left = 140, width = kW - left - kR;
  std::string o = "<figure><figcaption>" + channels::html_escape(title) + "</figcaption><svg id='" + id + "' class='chart' viewBox='0 0 " + f(kW, 0) +
                  " " + f(h, 0) + "' role='img' aria-label='" + channels::html_escape(title) + "'>";
  double y = kT;
  for (const auto& [k, g] : groups.items()) {
    double total = std::max<double>(1, g.value("eligible", 0));
    double x = left;
    o += "<text x='" + f(left - 6) + "' y='" + f(y + 15) + "' class='tick' text-anchor='end'>" + channels::html_escape(k) + "</text>";
    for (const char* part : {"on_time", "late", "failed", "dead"}) {
      double w = g.value(part, 0) / total * width;
      if (w > 0) {
        o += "<rect class='seg " + std::string(part) + "' x='" + f(x) + "' y='" + f(y) + "' width='" + f(w) + "' height='" + f(row - 6) +
             "'><title>" + channels::html_escape(k) + " " + part + ": " + std::to_string(g.value(part, 0)) + "</title></rect>";
      }
      x += w;
    }
    o += "<text x='" + f(kW - kR) + "' y='" + f(y + 15) + "' class='tick' text-anchor='end'>" + pct2(g.value("sla_pct", 100.0)) + "%</text>";
    y += row;
  }
  o += "</svg><p class='legend'><span class='k on_time'></span>on time <span class='k late'></span>late "
       "<span class='k failed'></span>not accepted <span class='k dead'></span>dead</p></figure>";
  return o;
}

std::string trend_chart(const json& trend) {
  if (!trend.is_object() || !trend.contains("dates")) return {};
  const auto& days = trend.at("dates");
  const std::size_t n = days.size();
  if (n == 0) return {};
  double ymin = 100;
  for (const auto& d : days) {
    if (d.contains("sla_pct")) ymin = std::min(ymin, d.at("sla_pct").get<double>());
  }
  ymin = std::max(0.0, std::min(95.0, std::floor(ymin - 1)));
  auto X = [&](std::size_t i) { return kL + (n == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(n - 1)) * (kW - kL - kR); };
  auto Y = [&](double v) { return kH - kB - (v - ymin) / (100 - ymin) * (kH - kT - kB); };
  std::string o = "<figure><figcaption>SLA trend, " + channels::html_escape(trend.value("from", std::string())) + " to " +
                  channels::html_escape(trend.value("to", std::string())) + " (target " + f(kSlaTargetPct, 0) +
                  "%)</figcaption><svg id='trend-chart' class='chart' viewBox='0 0 " + f(kW, 0) + " " + f(kH, 0) +
                  "' role='img' aria-label='SLA trend'>";
  o += "<line x1='" + f(kL) + "' y1='" + f(kH - kB) + "' x2='" + f(kW - kR) + "' y2='" + f(kH - kB) + "' class='axis'/>";
  for (double v : {ymin, (ymin + 100) / 2, 100.0}) {
    o += "<text x='" + f(kL - 6) + "' y='" + f(Y(v) + 4) + "' class='tick' text-anchor='end'>" + f(v, 1) + "</text>";
  }
  o += "<line x1='" + f(kL) + "' y1='" + f(Y(kSlaTargetPct)) + "' x2='" + f(kW - kR) + "' y2='" + f(Y(kSlaTargetPct)) + "' class='target'/>";
  std::string pts;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& d = days[i];
    if (i % std::max<std::size_t>(1, n / 8) == 0 || i + 1 == n) {
      o += "<text x='" + f(X(i)) + "' y='" + f(kH - kB + 15) + "' class='tick' text-anchor='middle'>" +
           channels::html_escape(d.value("date", std::string()).substr(5)) + "</text>";
    }
    if (!d.contains("sla_pct")) continue;
    double v = d.at("sla_pct").get<double>();
    pts += (pts.empty() ? "" : " ") + f(X(i)) + "," + f(Y(v));
    o += "<circle class='" + std::string(d.value("met", false) ? "met" : "missed") + "' cx='" + f(X(i)) + "' cy='" + f(Y(v)) +
         "' r='3.5'><title>" + channels::html_escape(d.value("date", std::string())) + ": " + pct2(v) + "%</title></circle>";
  }
  if (!pts.empty()) o += "<polyline class='trend' points='" + pts + "'/>";
  o += "</svg></figure>";
  return o;
}

}  // namespace

std::string render_html_report(store::Db& db, const nlohmann::json& r, const std::vector<std::int64_t>& run_ids,
                               const nlohmann::json& trend, std::string_view tz_view) {
  store::SqliteReportLedger ledger(db);
  return render_html_report(ledger, r, run_ids, trend, tz_view);
}

std::string render_html_report(store::ReportLedger& ledger, const nlohmann::json& r, const std::vector<std::int64_t>& run_ids,
                               const nlohmann::json& trend, std::string_view tz_view) {
  // Null: the ledger keeps no delivery statuses (the report's notes say why).
  const bool status = r.contains("delivered_sla_pct") && r["delivered_sla_pct"].is_number();
  const std::string tz(tz_view);
  const bool is_date = r.value("kind", std::string("run")) == "date";
  const std::string title = is_date ? "daybreak SLA report, delivery day " + r.value("date", std::string())
                                    : "daybreak SLA report, run " + std::to_string(r.value("run_id", std::int64_t{0})) + " (" +
                                          r.value("date", std::string()) + ")";
  const std::string verdict = r.value("verdict", std::string("in_progress"));
  std::string o;
  o += "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" + channels::html_escape(title) + "</title>";
  o += "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">";
  o += R"(<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:820px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.met{background:#1f8a4c;fill:#1f8a4c}.missed{background:#c62828;fill:#c62828}.at_risk{background:#e08a00}.in_progress{background:#5b6b85}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}.kpi{border:1px solid #dde1e8;border-radius:6px;padding:8px 12px;min-width:100px}
.kpi b{display:block;font-size:20px}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4}
td.n,th.n{text-align:right}figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:4px}
.chart{width:100%;height:auto}.axis{stroke:#8a93a6;stroke-width:1}.tick{font-size:10px;fill:#5b6b85}.label{font-size:11px;fill:#5b6b85}
.plan{fill:none;stroke:#8a93a6;stroke-width:2;stroke-dasharray:5 3}.accepted{fill:none;stroke:#1f6feb;stroke-width:2}
.deadline{stroke:#c62828;stroke-width:1.5;stroke-dasharray:4 3}.target{stroke:#e08a00;stroke-width:1;stroke-dasharray:2 3}
.bar{fill:#1f6feb}.seg.on_time{fill:#1f8a4c}.seg.late{fill:#e08a00}.seg.failed{fill:#8a93a6}.seg.dead{fill:#c62828}
.trend{fill:none;stroke:#1f6feb;stroke-width:1.5}.legend{font-size:12px;color:#5b6b85}
.k{display:inline-block;width:12px;height:4px;margin:0 4px 2px 10px;vertical-align:middle;background:#8a93a6}
.k.accepted{background:#1f6feb}.k.deadline{background:#c62828}.k.target{background:#e08a00}.k.on_time{background:#1f8a4c}
.k.late{background:#e08a00}.k.dead{background:#c62828}.small{color:#5b6b85;font-size:12px}
</style></head><body>
)";
  o += "<h1>" + channels::html_escape(title) + "</h1>";
  o += "<p><span class='verdict " + channels::html_escape(verdict) + "'>" + channels::html_escape(verdict) + "</span> SLA <b>" + pct2(r.value("sla_pct", 100.0)) +
       "%</b> against a target of " + pct2(r.value("target_pct", kSlaTargetPct)) +
       "% (accepted by the provider within the deadline)";
  if (status) {
    o += "; delivered within the deadline (status callbacks) <b>" + pct2(r.value("delivered_sla_pct", 100.0)) + "%</b>";
  }
  o += "</p>";
  o += "<div class='kpis'>";
  auto kpi = [&](const std::string& label, const std::string& value) {
    o += "<div class='kpi'>" + channels::html_escape(label) + "<b>" + channels::html_escape(value) + "</b></div>";
  };
  kpi("eligible", std::to_string(r.value("eligible", 0)));
  kpi("on time", std::to_string(r.value("on_time", 0)));
  kpi("late", std::to_string(r.value("late", 0)));
  kpi("not accepted", std::to_string(r.value("failed", 0)));
  kpi("dead", std::to_string(r.value("dead", 0)));
  if (r.contains("lag_ms")) kpi("lag p99", f(r["lag_ms"].value("p99", 0.0), 0) + " ms");
  if (status) {  // delivery truth from status callbacks
    kpi("delivered on time", pct2(r.value("delivered_sla_pct", 100.0)) + "% (" + std::to_string(r.value("delivered_on_time", 0)) + ")");
    kpi("read", pct2(r.value("read_pct", 0.0)) + "% (" + std::to_string(r.value("read", 0)) + ")");
    kpi("status unknown", pct2(r.value("unknown_pct", 0.0)) + "% (" + std::to_string(r.value("unknown", 0)) + ")");
    kpi("failed after accept", std::to_string(r.value("failed_after_accept", 0)));
  }
  o += "</div>";
  if (r.contains("notes") && r["notes"].is_array()) {
    for (const auto& n : r["notes"]) o += "<p class='small note'>Note: " + channels::html_escape(n.get<std::string>()) + ".</p>";
  }
  if (!is_date && r.value("run_kind", std::string()) == "urgent") {
    o += "<p class='small'>An urgent run (daybreak send-now), judged against its own deadline.</p>";
  }
  if (is_date && r.contains("urgent") && !r["urgent"].empty()) {
    // Urgent runs (daybreak send-now): their own lines, not in the day's figures above.
    o += "<h2>Urgent runs</h2><p class='small'>Sent with daybreak send-now; each judged against its own deadline and "
         "not counted in the day's figures above.</p><table><tr><th>run</th><th>deadline</th><th class='n'>eligible</th>"
         "<th class='n'>on time</th><th class='n'>SLA %</th><th>verdict</th></tr>";
    for (const auto& u : r["urgent"]) {
      const auto id = u.value("run_id", std::int64_t{0});
      o += "<tr><td>urgent run " + std::to_string(id) + "</td><td>" +
           channels::html_escape(format_instant(u.value("deadline_at_ms", Millis{0}), tz)) + "</td><td class='n'>" +
           std::to_string(u.value("eligible", 0)) + "</td><td class='n'>" + std::to_string(u.value("on_time", 0)) +
           "</td><td class='n'>" + pct2(u.value("sla_pct", 100.0)) + "</td><td>" + channels::html_escape(u.value("verdict", std::string())) +
           "</td></tr>";
    }
    o += "</table>";
  }

  o += "<h2>Accepted over time</h2>";
  for (auto id : run_ids) o += accepted_chart(ledger, id, tz);
  o += "<h2>Dispatch lag</h2>" + lag_chart(ledger, run_ids);
  if (r.contains("lag_ms")) {
    const json& l = r["lag_ms"];
    o += "<p class='small'>p50 " + f(l.value("p50", 0.0), 0) + " ms, p95 " + f(l.value("p95", 0.0), 0) + " ms, p99 " +
         f(l.value("p99", 0.0), 0) + " ms, max " + f(l.value("max", 0.0), 0) + " ms</p>";
  }
  o += "<h2>Outcomes</h2>";
  o += outcome_bars("by-tier", "By tier", r.value("by_tier", json::object()));
  o += outcome_bars("by-channel", "By channel", r.value("by_channel", json::object()));
  o += outcome_bars("by-sender", "By sender", r.value("by_sender", json::object()));

  o += "<h2>Top failure reasons</h2>";
  const json reasons = r.value("top_failure_reasons", json::array());
  if (reasons.empty()) {
    o += "<p>No failed attempts.</p>";
  } else {
    std::int64_t maxc = 1;
    for (const auto& x : reasons) maxc = std::max(maxc, x.value("count", std::int64_t{0}));
    o += "<table id='failure-reasons'><tr><th class='n'>count</th><th></th><th>code</th><th>outcome</th><th>example</th></tr>";
    for (const auto& x : reasons) {
      double w = 100.0 * static_cast<double>(x.value("count", std::int64_t{0})) / static_cast<double>(maxc);
      o += "<tr><td class='n'>" + std::to_string(x.value("count", std::int64_t{0})) +
           "</td><td style='width:120px'><svg viewBox='0 0 100 8' width='100' height='8'><rect class='bar' x='0' y='0' width='" +
           f(w) + "' height='8'/></svg></td><td>" + channels::html_escape(x.value("error_code", std::string())) + "</td><td>" +
           channels::html_escape(x.value("outcome", std::string())) + "</td><td>" + channels::html_escape(x.value("example", std::string())) + "</td></tr>";
    }
    o += "</table>";
  }

  o += "<h2>SLA trend</h2>" + trend_chart(trend);
  if (trend.is_object() && trend.contains("notes") && trend["notes"].is_array()) {
    for (const auto& n : trend["notes"]) o += "<p class='small note'>Trend note: " + channels::html_escape(n.get<std::string>()) + ".</p>";
  }
  if (trend.is_object() && trend.contains("summary")) {
    const json& s = trend["summary"];
    o += "<p class='small'>" + std::to_string(s.value("days_met", 0)) + " of " + std::to_string(s.value("days_reported", 0)) +
         " reported days met the target";
    if (s.contains("overall_sla_pct") && s["overall_sla_pct"].is_number()) o += "; overall " + pct2(s["overall_sla_pct"].get<double>()) + "%";
    o += ".</p>";
  }
  o += "<p class='small'>Generated " + channels::html_escape(format_instant(r.value("generated_at_ms", Millis{0}), tz)) +
       " by sla-report from the " + channels::html_escape(r.value("ledger", std::string("delivery"))) + " ledger.</p>";
  o += "</body></html>\n";
  return o;
}

}  // namespace daybreak
