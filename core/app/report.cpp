#include "app/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <regex>

#include "app/common.hpp"
#include "domain/sla.hpp"
#include "domain/time.hpp"
#include "store/reports.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

// What a report reads from the ledger for one run.
struct RunLedger {
  std::vector<DeliveryOutcome> outcomes;
  std::vector<store::FailureReason> reasons;
  std::int64_t attempts = 0;
  std::map<std::string, std::int64_t> sources;
};

RunLedger load_ledger(store::Db& db, std::int64_t run_id) {
  RunLedger l;
  l.outcomes = store::DeliveryOutcomesForRun(db, run_id, &l.sources);
  l.reasons = store::AttemptFailureReasonsForRun(db, run_id);
  l.attempts = store::AttemptCountForRun(db, run_id);
  return l;
}

bool run_closed(const store::Run& run) { return run.state == "closed" || run.state == "cancelled"; }

// An unclosed run's SLA is settled once nothing can still become on time.
bool run_decided(const store::Run& run, Millis now) {
  return run_closed(run) || now >= run.deadline_at + kDecidedGraceMs;
}

// The denominator of live_success_pct (DESIGN.md §1): eligible deliveries that are final or
// past their deadline. Only the minimum-sample rule needs it.
std::size_t live_sample(const std::vector<DeliveryOutcome>& outcomes, Millis now) {
  return static_cast<std::size_t>(std::count_if(outcomes.begin(), outcomes.end(), [&](const DeliveryOutcome& o) {
    return o.state != DeliveryState::cancelled && (is_final_state(o.state) || o.deadline_at < now);
  }));
}

json lag_json(const LagStats& s) {
  return {{"p50", s.p50}, {"p95", s.p95}, {"p99", s.p99}, {"max", s.max}, {"n", s.n}};
}

json groups_json(const std::map<std::string, SlaFigures>& groups) {
  json out = json::object();
  for (const auto& [key, f] : groups) {
    out[key] = {{"eligible", f.eligible}, {"on_time", f.on_time}, {"late", f.late}, {"failed", f.failed},
                {"dead", f.dead},         {"cancelled", f.cancelled}, {"sla_pct", f.sla_pct}};
  }
  return out;
}

json instant_or_null(const std::optional<Millis>& t) { return t ? json(format_instant(*t)) : json(nullptr); }

// Provider error details can quote the recipient ("550 <a.rao@example.com>: no such user"); a
// report is pasted into chats and tickets, so addresses are masked like in the logs.
std::string scrub_addresses(const std::string& text) {
  static const std::regex kAddress(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+|\+?[0-9]{8,15})");
  std::string out;
  std::size_t last = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kAddress); it != std::sregex_iterator(); ++it) {
    out.append(text, last, static_cast<std::size_t>(it->position()) - last);
    out += mask_address(it->str());
    last = static_cast<std::size_t>(it->position() + it->length());
  }
  out.append(text, last, std::string::npos);
  return out;
}

json reasons_json(std::vector<store::FailureReason> reasons) {
  std::stable_sort(reasons.begin(), reasons.end(), [](const auto& a, const auto& b) {
    return a.count != b.count ? a.count > b.count : a.error_code < b.error_code;
  });
  if (reasons.size() > kTopFailureReasons) reasons.resize(kTopFailureReasons);
  json out = json::array();
  for (const auto& r : reasons) {
    out.push_back({{"error_code", r.error_code}, {"count", r.count}, {"outcome", r.outcome}, {"example", scrub_addresses(r.example)}});
  }
  return out;
}

// The figures run and date reports share, written into `j`; returns the overall figures.
SlaFigures put_figures(json& j, const std::vector<DeliveryOutcome>& outcomes,
                       const std::vector<store::FailureReason>& reasons, std::int64_t attempts,
                       const std::map<std::string, std::int64_t>& sources, Millis now) {
  SlaFigures f = compute_sla(outcomes);
  j["sla_pct"] = f.sla_pct;
  j["target_pct"] = kSlaTargetPct;
  j["live_success_pct"] = live_success_pct(outcomes, now);
  j["eligible"] = f.eligible;
  j["on_time"] = f.on_time;
  j["late"] = f.late;
  j["failed"] = f.failed;
  j["dead"] = f.dead;
  j["cancelled"] = f.cancelled;
  j["possible_duplicates"] = f.possible_duplicates;
  j["deliveries"] = outcomes.size();
  j["lag_ms"] = lag_json(f.lag_ms);
  j["accept_lag_ms"] = lag_json(f.accept_lag_ms);
  j["by_tier"] = groups_json(compute_sla_by(outcomes, &DeliveryOutcome::tier));
  j["by_channel"] = groups_json(compute_sla_by(outcomes, &DeliveryOutcome::channel));
  j["by_sender"] = groups_json(compute_sla_by(outcomes, &DeliveryOutcome::sender));
  j["by_source"] = json(sources);
  j["top_failure_reasons"] = reasons_json(reasons);
  j["attempts"] = attempts;
  return f;
}

void put_run_identity(json& j, const store::Run& run) {
  j["run_id"] = run.run_id;
  j["date"] = run.date;
  j["slot_at"] = format_instant(run.slot_at);
  j["slot_at_ms"] = run.slot_at;
  j["deadline_at"] = format_instant(run.deadline_at);
  j["deadline_at_ms"] = run.deadline_at;
  j["state"] = run.state;
  j["closed"] = run_closed(run);
}

json run_report_from(const store::Run& run, const RunLedger& l, Millis now) {
  json j = json::object();
  j["kind"] = "run";
  put_run_identity(j, run);
  j["started_at"] = instant_or_null(run.started_at);
  j["finished_at"] = instant_or_null(run.finished_at);
  j["generated_at"] = format_instant(now);
  j["generated_at_ms"] = now;
  SlaFigures f = put_figures(j, l.outcomes, l.reasons, l.attempts, l.sources, now);
  j["met"] = f.sla_pct >= kSlaTargetPct;
  j["verdict"] = run_verdict(run_decided(run, now), f.sla_pct, j["live_success_pct"].get<double>(),
                             live_sample(l.outcomes, now));
  return j;
}

// Higher is worse: a date's verdict is its worst run's.
int verdict_rank(const std::string& v) {
  if (v == "missed") return 3;
  if (v == "at_risk") return 2;
  if (v == "in_progress") return 1;
  return 0;
}

// ---- text rendering ----

// Percentages are cut, not rounded, to two decimals: 98.996% must not print as a "99.00%" that missed.
std::string pct(double v) { return fmt::format("{:.2f}", std::floor(v * 100.0 + 1e-9) / 100.0); }

// A count or a millisecond figure from a report, "-" when a stored report lacks it.
std::string num(const json& j, const char* key) {
  if (!j.contains(key) || !j.at(key).is_number()) return "-";
  const json& v = j.at(key);
  return v.is_number_float() ? fmt::format("{:.0f}", v.get<double>()) : std::to_string(v.get<std::int64_t>());
}

std::string verdict_word(const std::string& v) {
  if (v == "met") return "MET";
  if (v == "missed") return "MISSED";
  if (v == "at_risk") return "AT RISK";
  return "IN PROGRESS";
}

std::string pad(std::string s, std::size_t width, bool right = true) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

std::string lag_line(const char* label, const json& lag) {
  if (num(lag, "n") == "0") return std::string("  ") + pad(label, 18, false) + "none yet\n";
  return std::string("  ") + pad(label, 18, false) + "p50 " + num(lag, "p50") + "  p95 " + num(lag, "p95") + "  p99 " +
         num(lag, "p99") + "  max " + num(lag, "max") + "  (n " + num(lag, "n") + ")\n";
}

std::string group_table(const char* title, const json& groups, const std::vector<std::string>& order) {
  if (!groups.is_object() || groups.empty()) return {};
  std::vector<std::string> keys;
  for (const auto& [k, v] : groups.items()) keys.push_back(k);
  auto rank = [&](const std::string& k) {
    auto it = std::find(order.begin(), order.end(), k);
    return static_cast<std::size_t>(it - order.begin());  // order.size() when unknown: after the known ones
  };
  std::stable_sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
    auto ra = rank(a), rb = rank(b);
    return ra != rb ? ra < rb : a < b;
  });
  std::size_t w = 12;
  for (const auto& k : keys) w = std::max(w, k.size() + 2);
  std::string out = std::string("\n") + pad(title, w + 2, false) + pad("eligible", 9) + pad("on time", 9) +
                    pad("late", 7) + pad("failed", 8) + pad("dead", 7) + pad("SLA %", 9) + "\n";
  for (const auto& k : keys) {
    const json& g = groups.at(k);
    out += "  " + pad(k, w, false) + pad(num(g, "eligible"), 9) + pad(num(g, "on_time"), 9) + pad(num(g, "late"), 7) +
           pad(num(g, "failed"), 8) + pad(num(g, "dead"), 7) + pad(pct(g.value("sla_pct", 100.0)), 9) + "\n";
  }
  return out;
}

std::string instant_text(const json& j, const char* ms_key, std::string_view tz) {
  if (!j.contains(ms_key) || !j.at(ms_key).is_number()) return "-";
  return format_instant(j.at(ms_key).get<Millis>(), tz);
}

}  // namespace

std::string run_verdict(bool decided, double sla_pct, double live_pct, std::size_t live_sample_n) {
  if (decided) return sla_pct >= kSlaTargetPct ? "met" : "missed";
  if (live_sample_n >= kLiveMinSample && live_pct < kLiveAlertPct) return "at_risk";
  return "in_progress";
}

nlohmann::json build_run_report(store::Db& db, const store::Run& run, Millis now) {
  return run_report_from(run, load_ledger(db, run.run_id), now);
}

nlohmann::json build_date_report(store::Db& db, const std::string& date, Millis now) {
  std::vector<store::Run> runs = store::RunListForDate(db, date);
  if (runs.empty()) throw CheckFailed("no runs for delivery day " + date);

  std::vector<DeliveryOutcome> all;
  std::map<std::string, store::FailureReason> reasons;  // merged by code across runs
  std::map<std::string, std::int64_t> sources;
  std::int64_t attempts = 0;
  json runs_json = json::array();
  bool all_closed = true;
  std::string worst = "met";
  for (const store::Run& run : runs) {
    RunLedger l = load_ledger(db, run.run_id);
    SlaFigures f = compute_sla(l.outcomes);
    std::string verdict = run_verdict(run_decided(run, now), f.sla_pct, live_success_pct(l.outcomes, now),
                                      live_sample(l.outcomes, now));
    json r = json::object();
    put_run_identity(r, run);
    r["sla_pct"] = f.sla_pct;
    r["met"] = f.sla_pct >= kSlaTargetPct;
    r["verdict"] = verdict;
    r["eligible"] = f.eligible;
    r["on_time"] = f.on_time;
    r["late"] = f.late;
    r["failed"] = f.failed;
    r["dead"] = f.dead;
    r["cancelled"] = f.cancelled;
    r["lag_p99_ms"] = f.lag_ms.p99;
    r["stored_report"] = store::SlaReportGetSummary(db, run.run_id).has_value();
    runs_json.push_back(std::move(r));

    all_closed = all_closed && run_closed(run);
    if (verdict_rank(verdict) > verdict_rank(worst)) worst = verdict;
    attempts += l.attempts;
    for (const auto& [k, n] : l.sources) sources[k] += n;
    // Runs come in slot order, so a later run's example replaces an earlier one: the most recent wins.
    for (auto& fr : l.reasons) {
      auto& m = reasons[fr.error_code];
      m.error_code = fr.error_code;
      m.count += fr.count;
      m.outcome = fr.outcome;
      m.example = fr.example;
    }
    all.insert(all.end(), std::make_move_iterator(l.outcomes.begin()), std::make_move_iterator(l.outcomes.end()));
  }

  std::vector<store::FailureReason> merged;
  merged.reserve(reasons.size());
  for (auto& [code, r] : reasons) merged.push_back(std::move(r));

  json j = json::object();
  j["kind"] = "date";
  j["date"] = date;
  j["generated_at"] = format_instant(now);
  j["generated_at_ms"] = now;
  j["closed"] = all_closed;
  put_figures(j, all, merged, attempts, sources, now);
  j["met"] = worst == "met";
  j["verdict"] = worst;
  j["runs"] = std::move(runs_json);
  return j;
}

void store_run_report(store::Db& db, const store::Run& run, Millis now) {
  std::optional<store::Run> fresh = store::RunGet(db, run.run_id);
  const store::Run& r = fresh ? *fresh : run;
  json report = build_run_report(db, r, now);
  store::SlaReportUpsert(db, r.run_id, r.date, now, report.at("sla_pct").get<double>(), report.dump());
}

int report_exit_code(const nlohmann::json& report) {
  std::string v = report.value("verdict", std::string("met"));
  return (v == "missed" || v == "at_risk") ? kExitCheckFailed : kExitOk;
}

std::string format_report_text(const nlohmann::json& report, const std::vector<std::string>& tier_order,
                               std::string_view tz) {
  const json& j = report;
  const bool is_date = j.value("kind", std::string("run")) == "date";
  const std::string verdict = j.value("verdict", std::string("in_progress"));
  std::string out;

  if (is_date) {
    std::size_t n = j.contains("runs") ? j.at("runs").size() : 0;
    out += "Delivery day " + j.value("date", std::string("?")) + ": " + std::to_string(n) + (n == 1 ? " run" : " runs") +
           (j.value("closed", false) ? ", all closed" : ", not all closed") + "\n";
  } else {
    out += "Run " + num(j, "run_id") + ", delivery day " + j.value("date", std::string("?")) + ", slot " +
           instant_text(j, "slot_at_ms", tz) + ", deadline " + instant_text(j, "deadline_at_ms", tz) + ", " +
           j.value("state", std::string("?")) + "\n";
  }
  out += "SLA " + pct(j.value("sla_pct", 100.0)) + "%" + (verdict == "in_progress" ? " so far" : "") + " vs target " +
         pct(j.value("target_pct", kSlaTargetPct)) + "%: " + verdict_word(verdict);
  if (!j.value("closed", false)) out += "  (live success " + pct(j.value("live_success_pct", 100.0)) + "%)";
  if (is_date && j.contains("runs") && j.at("runs").size() > 1 && (verdict == "missed" || verdict == "at_risk")) {
    out += "  (the target applies to each run; see Runs)";
  }
  out += "\n";
  out += "  eligible " + num(j, "eligible") + "  on time " + num(j, "on_time") + "  late " + num(j, "late") +
         "  failed " + num(j, "failed") + "  dead " + num(j, "dead") + "  cancelled " + num(j, "cancelled") +
         "  possible duplicates " + num(j, "possible_duplicates") + "\n";
  if (j.contains("lag_ms")) out += lag_line("dispatch lag ms", j.at("lag_ms"));
  if (j.contains("accept_lag_ms")) out += lag_line("accept lag ms", j.at("accept_lag_ms"));
  out += "  attempts " + num(j, "attempts");
  if (j.contains("by_source") && j.at("by_source").is_object() && !j.at("by_source").empty()) {
    out += "  sources:";
    bool first = true;
    for (const auto& [k, v] : j.at("by_source").items()) {
      out += std::string(first ? " " : ", ") + k + " " + std::to_string(v.get<std::int64_t>());
      first = false;
    }
  }
  out += "\n";

  if (is_date && j.contains("runs")) {
    out += "\nRuns    slot                        state      eligible  on time    SLA %  verdict\n";
    for (const auto& r : j.at("runs")) {
      out += "  " + pad(num(r, "run_id"), 4, false) + "  " + pad(instant_text(r, "slot_at_ms", tz), 26, false) + "  " +
             pad(r.value("state", std::string("?")), 9, false) + pad(num(r, "eligible"), 9) + pad(num(r, "on_time"), 9) +
             pad(pct(r.value("sla_pct", 100.0)), 9) + "  " + verdict_word(r.value("verdict", std::string())) + "\n";
    }
  }
  if (j.contains("by_tier")) out += group_table("By tier", j.at("by_tier"), tier_order);
  if (j.contains("by_channel")) out += group_table("By channel", j.at("by_channel"), {});
  if (j.contains("by_sender")) out += group_table("By sender", j.at("by_sender"), {});

  if (j.contains("top_failure_reasons") && !j.at("top_failure_reasons").empty()) {
    out += "\nTop failure reasons\n    count  code          outcome        example\n";
    for (const auto& r : j.at("top_failure_reasons")) {
      out += "  " + pad(num(r, "count"), 7) + "  " + pad(r.value("error_code", std::string()), 12, false) + "  " +
             pad(r.value("outcome", std::string()), 13, false) + "  " + r.value("example", std::string()) + "\n";
    }
  } else {
    out += "\nNo failed attempts.\n";
  }
  return out;
}

}  // namespace daybreak
