#include "app/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <regex>

#include "app/errors.hpp"
#include "app/plan.hpp"
#include "domain/capacity.hpp"
#include "domain/sla.hpp"
#include "domain/time.hpp"
#include "store/monitoring.hpp"
#include "store/report_ledger.hpp"
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
  store::ProviderFigures provider;
};

RunLedger load_ledger(store::ReportLedger& ledger, std::int64_t run_id) {
  RunLedger l;
  l.provider = ledger.provider_figures(run_id);
  l.outcomes = ledger.outcomes(run_id, &l.sources);
  l.reasons = ledger.failure_reasons(run_id);
  l.attempts = ledger.attempt_count(run_id);
  return l;
}

// The delivery-truth figures (status callbacks) of a report object, a by_* group or a run line.
constexpr const char* kStatusFigureKeys[] = {"delivered_on_time", "delivered",   "read",
                                             "unknown",           "failed_after_accept", "delivered_sla_pct",
                                             "read_pct",          "unknown_pct", "failed_after_accept_pct",
                                             "live_delivered_pct"};

void null_status_figures(json& j) {
  for (const char* k : kStatusFigureKeys) {
    if (j.contains(k)) j[k] = nullptr;
  }
}

// Says which ledger a report was read from and shows what that ledger does not hold as absent
// (null, with a note), never as zeros: a PostgreSQL ledger has no stored reports
// (store/pg_reports.hpp); a ledger no status callback reached would have no delivery statuses.
void mark_ledger(json& j, const store::ReportLedger& ledger) {
  j["ledger"] = ledger.engine();
  json notes = json::array();
  if (!ledger.keeps_status_callbacks()) {
    null_status_figures(j);
    for (const char* g : {"by_tier", "by_channel", "by_sender"}) {
      if (j.contains(g)) {
        for (auto el : j[g].items()) null_status_figures(el.value());
      }
    }
    for (const char* g : {"runs", "urgent"}) {
      if (j.contains(g)) {
        for (auto& r : j[g]) null_status_figures(r);
      }
    }
    notes.push_back(std::string("delivery statuses (delivered, read, status unknown, failed after accept) are not kept on the ") +
                    ledger.engine() + " ledger: no status callback reaches it");
  }
  if (!ledger.keeps_stored_reports()) {
    for (const char* g : {"runs", "urgent"}) {
      if (j.contains(g)) {
        for (auto& r : j[g]) r["stored_report"] = nullptr;
      }
    }
    notes.push_back(std::string("run reports are not stored on the ") + ledger.engine() +
                    " ledger: every figure is computed from its deliveries and attempts now");
  }
  if (!notes.empty()) j["notes"] = std::move(notes);
}

bool run_closed(const store::Run& run) { return run.state == "closed" || run.state == "cancelled"; }

// An unclosed run's SLA is settled once nothing can still become on time.
bool run_decided(const store::Run& run, Millis now) {
  return run_closed(run) || now >= run.deadline_at + kDecidedGraceMs;
}

// The denominator of live_success_pct: eligible deliveries that are final or
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
    out[key] = {{"eligible", f.eligible},
                {"on_time", f.on_time},
                {"late", f.late},
                {"failed", f.failed},
                {"dead", f.dead},
                {"cancelled", f.cancelled},
                {"sla_pct", f.sla_pct},
                {"delivered_on_time", f.delivered_on_time},
                {"read", f.read},
                {"unknown", f.unknown},
                {"failed_after_accept", f.failed_after_accept},
                {"delivered_sla_pct", f.delivered_sla_pct}};
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
  // Delivery truth from status callbacks, beside the accepted headline (domain/sla.hpp).
  j["delivered_on_time"] = f.delivered_on_time;
  j["delivered"] = f.delivered;
  j["read"] = f.read;
  j["unknown"] = f.unknown;
  j["failed_after_accept"] = f.failed_after_accept;
  j["delivered_sla_pct"] = f.delivered_sla_pct;
  j["read_pct"] = f.read_pct;
  j["unknown_pct"] = f.unknown_pct;
  j["failed_after_accept_pct"] = f.failed_after_accept_pct;
  j["live_delivered_pct"] = live_delivered_pct(outcomes, now);
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

/// The provider figures (docs/whatsapp-errors.md): held for quality assessment, unknown error codes, blocks.
void put_provider_figures(json& j, const store::ProviderFigures& p) {
  j["held_for_quality"] = p.held_for_quality;
  j["unknown_error_codes"] = p.unknown_error_codes;
  j["unknown_codes"] = json(p.unknown_codes);
  j["number_blocked_attempts"] = p.number_blocked;
  j["account_blocked_attempts"] = p.account_blocked;
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
  put_provider_figures(j, l.provider);
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
                    pad("late", 7) + pad("failed", 8) + pad("dead", 7) + pad("SLA %", 9) + pad("deliv. %", 10) + pad("unknown", 9) + "\n";
  for (const auto& k : keys) {
    const json& g = groups.at(k);
    out += "  " + pad(k, w, false) + pad(num(g, "eligible"), 9) + pad(num(g, "on_time"), 9) + pad(num(g, "late"), 7) +
           pad(num(g, "failed"), 8) + pad(num(g, "dead"), 7) + pad(pct(g.value("sla_pct", 100.0)), 9) +
           pad(g.contains("delivered_sla_pct") && g.at("delivered_sla_pct").is_number() ? pct(g.value("delivered_sla_pct", 100.0))
                                                                                           : std::string("-"),
               10) +
           pad(num(g, "unknown"), 9) + "\n";
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

std::string run_kind_of(store::Db& db, std::int64_t run_id) {
  store::SqliteReportLedger ledger(db);
  return ledger.run_kind(run_id);
}

nlohmann::json build_run_report(store::ReportLedger& ledger, const store::Run& run, Millis now) {
  auto j = run_report_from(run, load_ledger(ledger, run.run_id), now);
  j["run_kind"] = ledger.run_kind(run.run_id);
  mark_ledger(j, ledger);
  return j;
}

nlohmann::json build_run_report(store::Db& db, const store::Run& run, Millis now) {
  store::SqliteReportLedger ledger(db);
  return build_run_report(ledger, run, now);
}

nlohmann::json build_date_report(store::Db& db, const std::string& date, Millis now) {
  store::SqliteReportLedger ledger(db);
  return build_date_report(ledger, date, now);
}

nlohmann::json build_date_report(store::ReportLedger& ledger, const std::string& date, Millis now) {
  std::vector<store::Run> runs = ledger.runs_for_date(date);
  if (runs.empty()) throw CheckFailed("no runs for delivery day " + date);

  std::vector<DeliveryOutcome> all;
  std::map<std::string, store::FailureReason> reasons;  // merged by code across runs
  std::map<std::string, std::int64_t> sources;
  std::int64_t attempts = 0;
  store::ProviderFigures provider;
  json runs_json = json::array();
  bool all_closed = true;
  std::string worst = "met";
  json urgent_json = json::array();
  for (const store::Run& run : runs) {
    RunLedger l = load_ledger(ledger, run.run_id);
    SlaFigures f = compute_sla(l.outcomes);
    const std::string run_kind = ledger.run_kind(run.run_id);
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
    r["delivered_on_time"] = f.delivered_on_time;
    r["read"] = f.read;
    r["unknown"] = f.unknown;
    r["failed_after_accept"] = f.failed_after_accept;
    r["delivered_sla_pct"] = f.delivered_sla_pct;
    r["lag_p99_ms"] = f.lag_ms.p99;
    r["stored_report"] = ledger.stored_summary(run.run_id).has_value();
    r["run_kind"] = run_kind;
    all_closed = all_closed && run_closed(run);
    if (verdict_rank(verdict) > verdict_rank(worst)) worst = verdict;
    if (run_kind == "urgent") {
      // An urgent run (daybreak send-now) has its own line, judged against its own deadline;
      // the day's totals, percentiles and breakdowns stay the morning's.
      urgent_json.push_back(r);
      runs_json.push_back(std::move(r));
      continue;
    }
    runs_json.push_back(std::move(r));

    attempts += l.attempts;
    provider.held_for_quality += l.provider.held_for_quality;
    provider.unknown_error_codes += l.provider.unknown_error_codes;
    provider.number_blocked += l.provider.number_blocked;
    provider.account_blocked += l.provider.account_blocked;
    for (const auto& [code, n] : l.provider.unknown_codes) provider.unknown_codes[code] += n;
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
  put_provider_figures(j, provider);
  j["met"] = worst == "met";
  j["verdict"] = worst;
  j["runs"] = std::move(runs_json);
  j["urgent"] = std::move(urgent_json);
  mark_ledger(j, ledger);
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
    out += std::string(j.value("run_kind", std::string()) == "urgent" ? "Urgent run " : "Run ") + num(j, "run_id") + ", delivery day " + j.value("date", std::string("?")) + ", slot " +
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
  if (j.contains("delivered_sla_pct") && j.at("delivered_sla_pct").is_number()) {  // stored reports from before status figures lack it; null: the ledger keeps no statuses
    out += "  delivered within deadline " + pct(j.value("delivered_sla_pct", 100.0)) + "% (" + num(j, "delivered_on_time") +
           ")  read " + pct(j.value("read_pct", 0.0)) + "% (" + num(j, "read") + ")  status unknown " +
           pct(j.value("unknown_pct", 0.0)) + "% (" + num(j, "unknown") + ")  failed after accept " +
           pct(j.value("failed_after_accept_pct", 0.0)) + "% (" + num(j, "failed_after_accept") + ")\n";
    if (j.value("unknown", 0) > 0 && j.value("delivered", 0) == 0 && j.value("read", 0) == 0 &&
        j.value("failed_after_accept", 0) == 0) {
      // Not one status for any accepted message: the receiver is not running or not reached,
      // not a provider that delivered nothing.
      out += "  no delivery status has reached the ledger for these deliveries: is daybreak-callbacks receiving "
             "(and the provider's webhook pointing at it)?\n";
    }
  }
  if (j.contains("notes") && j.at("notes").is_array()) {
    for (const auto& n : j.at("notes")) out += "  note: " + n.get<std::string>() + "\n";
  }
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
  if (j.contains("held_for_quality")) {  // stored reports from before these figures lack them
    out += "  held for quality assessment " + num(j, "held_for_quality") + "  unknown error codes " +
           num(j, "unknown_error_codes");
    if (j.value("unknown_error_codes", 0) > 0 && j.contains("unknown_codes")) {
      out += " (";
      bool first = true;
      for (const auto& [code, n] : j.at("unknown_codes").items()) {
        out += std::string(first ? "" : ", ") + code + " x" + std::to_string(n.get<std::int64_t>());
        first = false;
      }
      out += ")";
    }
    out += "  number blocked " + num(j, "number_blocked_attempts") + "  account blocked " +
           num(j, "account_blocked_attempts") + " (attempts)\n";
  }

  if (is_date && j.contains("runs")) {
    out += "\nRuns    slot                        state      eligible  on time    SLA %  verdict\n";
    for (const auto& r : j.at("runs")) {
      out += "  " + pad(num(r, "run_id"), 4, false) + "  " + pad(instant_text(r, "slot_at_ms", tz), 26, false) + "  " +
             pad(r.value("state", std::string("?")), 9, false) + pad(num(r, "eligible"), 9) + pad(num(r, "on_time"), 9) +
             pad(pct(r.value("sla_pct", 100.0)), 9) + "  " + verdict_word(r.value("verdict", std::string())) +
             (r.value("run_kind", std::string()) == "urgent" ? "  (urgent)" : "") + "\n";
    }
  }
  if (is_date && j.contains("urgent") && !j.at("urgent").empty()) {
    out += "\nUrgent runs (daybreak send-now; not in the day's figures above, each against its own deadline)\n";
    for (const auto& r : j.at("urgent")) {
      out += "urgent run " + num(r, "run_id") + " slot " + instant_text(r, "slot_at_ms", tz) + " deadline " +
             instant_text(r, "deadline_at_ms", tz) + ": SLA " + pct(r.value("sla_pct", 100.0)) + "% (" + num(r, "on_time") +
             " of " + num(r, "eligible") + " on time, " + num(r, "late") + " late, " + num(r, "dead") + " dead), " +
             verdict_word(r.value("verdict", std::string())) + "\n";
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


// ---- trend ----

nlohmann::json build_trend(store::Db& db, const std::string& to_date, int days) {
  store::SqliteReportLedger ledger(db);
  return build_trend(ledger, to_date, days);
}

nlohmann::json build_trend(store::ReportLedger& ledger, const std::string& to_date, int days) {
  auto to = parse_date(to_date);
  if (!to) throw UsageError("trend: " + to.error().message);
  if (days < 1) throw UsageError("trend: --days must be at least 1");
  const std::string from = format_date(add_days(*to, -(days - 1)));

  struct Day {
    int runs = 0, reported = 0;
    std::int64_t eligible = 0, on_time = 0;
    bool all_met = true;
    double worst = 100;
  };
  std::map<std::string, Day> by;
  for (const auto& [id, date, state] : ledger.run_ids_between(from, to_date)) {
    if (state != "cancelled") ++by[date].runs;
  }
  int counted_now = 0;  // closed runs without a stored report, counted from their deliveries
  for (const auto& r : ledger.run_headlines_between(from, to_date)) {
    auto& d = by[r.date];
    ++d.reported;
    if (!r.stored) ++counted_now;
    d.eligible += r.eligible;
    d.on_time += r.on_time;
    d.all_met = d.all_met && r.sla_pct >= kSlaTargetPct;
    d.worst = std::min(d.worst, r.sla_pct);
  }

  // Delivery truth from the ledger, not the stored reports: status callbacks (read receipts
  // above all) keep arriving after a run closes and its report is stored.
  const std::map<std::string, store::DeliveryTruth> status = ledger.truth_by_date(from, to_date, 0);
  std::int64_t st_eligible = 0, st_delivered = 0, st_read = 0, st_unknown = 0, st_failed = 0;

  json out_days = json::array();
  int with_runs = 0, met = 0, missed = 0, unreported = 0;
  std::int64_t eligible = 0, on_time = 0;
  double sum_daily = 0, worst = 101;
  std::string worst_date;
  for (int i = 0; i < days; ++i) {
    std::string date = format_date(add_days(*to, -(days - 1 - i)));
    auto it = by.find(date);
    if (it == by.end() || it->second.runs == 0) {
      out_days.push_back({{"date", date}, {"runs", 0}});
      continue;
    }
    const Day& d = it->second;
    ++with_runs;
    unreported += std::max(0, d.runs - d.reported);
    json e = {{"date", date}, {"runs", d.runs}, {"reported_runs", d.reported}};
    if (auto st = status.find(date); st != status.end() && st->second.eligible > 0) {
      const store::DeliveryTruth& c = st->second;
      const auto of = [&](std::int64_t n) { return 100.0 * static_cast<double>(n) / static_cast<double>(c.eligible); };
      e["delivered_on_time"] = c.delivered_on_time;
      e["delivered_sla_pct"] = of(c.delivered_on_time);
      e["read"] = c.read;
      e["read_pct"] = of(c.read);
      e["unknown"] = c.unknown;
      e["unknown_pct"] = of(c.unknown);
      e["failed_after_accept"] = c.failed_after_accept;
      st_eligible += c.eligible;
      st_delivered += c.delivered_on_time;
      st_read += c.read;
      st_unknown += c.unknown;
      st_failed += c.failed_after_accept;
    }
    if (d.reported > 0) {
      double pct = d.eligible ? 100.0 * static_cast<double>(d.on_time) / static_cast<double>(d.eligible) : 100.0;
      e["eligible"] = d.eligible;
      e["on_time"] = d.on_time;
      e["sla_pct"] = pct;
      e["met"] = d.all_met;
      e["worst_run_sla_pct"] = d.worst;
      (d.all_met ? met : missed)++;
      eligible += d.eligible;
      on_time += d.on_time;
      sum_daily += pct;
      if (pct < worst) {
        worst = pct;
        worst_date = date;
      }
    }
    out_days.push_back(std::move(e));
  }
  const int reported_days = met + missed;
  json summary = {{"days_with_runs", with_runs},
                  {"days_reported", reported_days},
                  {"days_met", met},
                  {"days_missed", missed},
                  {"runs_without_report", unreported},
                  {"eligible", eligible},
                  {"on_time", on_time},
                  {"overall_sla_pct", eligible ? json(100.0 * static_cast<double>(on_time) / static_cast<double>(eligible)) : json(nullptr)},
                  {"mean_daily_sla_pct", reported_days ? json(sum_daily / reported_days) : json(nullptr)},
                  {"delivered_on_time", st_delivered},
                  {"read", st_read},
                  {"unknown", st_unknown},
                  {"failed_after_accept", st_failed},
                  {"overall_delivered_sla_pct", st_eligible ? json(100.0 * static_cast<double>(st_delivered) / static_cast<double>(st_eligible)) : json(nullptr)},
                  {"overall_read_pct", st_eligible ? json(100.0 * static_cast<double>(st_read) / static_cast<double>(st_eligible)) : json(nullptr)},
                  {"worst_day", worst_date.empty() ? json(nullptr) : json({{"date", worst_date}, {"sla_pct", worst}})}};
  json notes = json::array();
  if (!ledger.keeps_status_callbacks()) {
    for (const char* k : {"delivered_on_time", "read", "unknown", "failed_after_accept"}) summary[k] = nullptr;
    notes.push_back(std::string("delivery statuses (delivered, read, status unknown) are not kept on the ") + ledger.engine() +
                    " ledger: no status callback reaches it");
  }
  if (!ledger.keeps_stored_reports()) {
    notes.push_back(std::string("run reports are not stored on the ") + ledger.engine() +
                    " ledger: each closed run counts as reported, its figures counted from its deliveries now");
  } else if (counted_now > 0) {
    notes.push_back(std::to_string(counted_now) + (counted_now == 1 ? " closed run has" : " closed runs have") +
                    " no stored report on the " + ledger.engine() +
                    " ledger (closed before reports were stored there): counted as reported, from " +
                    (counted_now == 1 ? "its" : "their") + " deliveries now");
  }
  json t = {{"kind", "trend"}, {"from", from}, {"to", to_date}, {"days", days}, {"target_pct", kSlaTargetPct},
            {"dates", std::move(out_days)}, {"summary", std::move(summary)}, {"ledger", ledger.engine()}};
  if (!notes.empty()) t["notes"] = std::move(notes);
  return t;
}

std::string format_trend_text(const nlohmann::json& t) {
  std::string out = "SLA trend " + t.value("from", std::string()) + " .. " + t.value("to", std::string()) + " (" +
                    std::to_string(t.value("days", 0)) + " days, target " + pct(t.value("target_pct", kSlaTargetPct)) + "%)\n";
  out += "  date        runs  eligible   on time    SLA %  verdict   deliv. %   read %  unknown\n";
  for (const auto& d : t.at("dates")) {
    if (d.value("runs", 0) == 0) continue;
    out += "  " + d.value("date", std::string()) + pad(std::to_string(d.value("runs", 0)), 6);
    if (!d.contains("sla_pct")) {
      out += "         -         -        -  no stored report\n";
      continue;
    }
    out += pad(num(d, "eligible"), 10) + pad(num(d, "on_time"), 10) + pad(pct(d.value("sla_pct", 100.0)), 9) + "  " +
           (d.value("met", false) ? "met   " : "MISSED");
    if (d.contains("delivered_sla_pct")) {
      out += pad(pct(d.value("delivered_sla_pct", 100.0)), 11) + pad(pct(d.value("read_pct", 0.0)), 9) + pad(num(d, "unknown"), 9);
    }
    out += "\n";
  }
  const json& s = t.at("summary");
  out += "\n  days with runs " + num(s, "days_with_runs") + ", met " + num(s, "days_met") + ", missed " + num(s, "days_missed");
  if (s.value("runs_without_report", 0) > 0) out += ", runs without a stored report " + num(s, "runs_without_report");
  out += "\n";
  if (s.at("overall_sla_pct").is_number()) {
    out += "  overall SLA " + pct(s.at("overall_sla_pct").get<double>()) + "% (" + num(s, "on_time") + " of " +
           num(s, "eligible") + "), mean daily " + pct(s.at("mean_daily_sla_pct").get<double>()) + "%";
    if (s.contains("overall_delivered_sla_pct") && s.at("overall_delivered_sla_pct").is_number()) {
      out += ", delivered " + pct(s.at("overall_delivered_sla_pct").get<double>()) + "%, read " +
             pct(s.value("overall_read_pct", 0.0)) + "%";
    }
    if (s.at("worst_day").is_object()) {
      out += ", worst day " + s.at("worst_day").value("date", std::string()) + " at " +
             pct(s.at("worst_day").value("sla_pct", 0.0)) + "%";
    }
    out += "\n";
  } else {
    out += "  no stored reports in this period\n";
  }
  if (t.contains("notes") && t.at("notes").is_array()) {
    for (const auto& n : t.at("notes")) out += "  note: " + n.get<std::string>() + "\n";
  }
  return out;
}

// ---- capacity ----

namespace {

json capacity_json(const CapacityReport& rep) {
  json channels = json::array();
  for (const auto& c : rep.channels) {
    auto finite = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    channels.push_back({{"channel", c.channel},
                        {"deliveries", c.deliveries},
                        {"senders", c.senders},
                        {"sender_mps", c.sender_mps},
                        {"required_mps", c.required_mps},
                        {"capacity_in_window", c.capacity_in_window},
                        {"window_utilisation_pct", finite(c.window_utilisation_pct)},
                        {"cap_utilisation_pct", finite(c.cap_utilisation_pct)},
                        {"drain_seconds", finite(c.drain_seconds)},
                        {"retry_headroom", c.retry_headroom},
                        {"feasible", c.feasible},
                        {"shortfall", c.shortfall},
                        {"add_senders", c.add_senders},
                        {"add_sender_mps", c.add_sender_mps},
                        {"move_tiers", c.move_tiers},
                        {"move_to", c.move_to},
                        {"move_count", c.move_count},
                        {"recommendation", c.recommendation}});
  }
  return {{"feasible", rep.feasible}, {"deliveries", rep.deliveries}, {"required_mps", rep.required_mps},
          {"sender_mps", rep.sender_mps}, {"channels", std::move(channels)}};
}

std::vector<CapacitySender> config_senders(const Config& cfg) {
  std::vector<CapacitySender> out;
  for (const auto& s : cfg.senders) out.push_back({s.id, std::string(to_string(s.channel)), s.mps});
  return out;
}

}  // namespace

nlohmann::json build_capacity_report(store::Db& db, const Config& cfg, Millis now, double growth, double new_sender_mps) {
  json runs = json::array();
  bool feasible = true;
  const Millis window_ms = cfg.window.lead_ms + cfg.window.tail_ms;
  for (const auto& run : store::RunListActive(db, now, now + 2 * 86'400'000LL)) {
    CapacityInput in;
    in.senders = config_senders(cfg);
    in.window_ms = run.window_end - run.window_start;
    in.utilisation = cfg.utilisation;
    in.growth = growth;
    in.new_sender_mps = new_sender_mps;
    for (const auto& [k, n] : store::DeliveryCountByChannelTier(db, run.run_id)) {
      in.demand.push_back({std::get<0>(k), std::get<2>(k), std::get<1>(k), n});
    }
    json r = capacity_json(plan_capacity(in));
    r["run_id"] = run.run_id;
    r["date"] = run.date;
    r["slot_at"] = format_instant(run.slot_at);
    r["slot_at_ms"] = run.slot_at;
    feasible = feasible && r["feasible"].get<bool>();
    runs.push_back(std::move(r));
  }
  // Meta's messaging limits per business portfolio, per planned day (app/plan.hpp).
  json tiers = json::array();
  {
    std::map<std::string, Millis> last_deadline;
    for (const auto& r : runs) {
      auto run = store::RunGet(db, r["run_id"].get<std::int64_t>());
      if (run) last_deadline[run->date] = std::max(last_deadline[run->date], run->deadline_at);
    }
    for (const auto& [date, deadline] : last_deadline) {
      json t = check_whatsapp_tiers(db, cfg, date, deadline, [&, d = date](const auto& add) {
        store::DeliveryWhatsAppRecipients(db, d, true, d, d, 0, add);
      });
      if (t["portfolios"].empty()) continue;
      feasible = feasible && t["feasible"].get<bool>();
      tiers.push_back(std::move(t));
    }
  }
  std::string basis = "planned runs";
  if (runs.empty()) {
    // Nothing planned: every opted-in advisor on their first channel, as if all shared one slot.
    basis = "opted-in advisors (nothing planned yet; all taken as one run)";
    CapacityInput in;
    in.senders = config_senders(cfg);
    in.window_ms = window_ms;
    in.utilisation = cfg.utilisation;
    in.growth = growth;
    in.new_sender_mps = new_sender_mps;
    for (const auto& [k, n] : store::AdvisorCountByChannelTier(db)) {
      auto rank = cfg.tier_rank(k.second);
      in.demand.push_back({k.first, k.second, rank ? *rank : static_cast<int>(cfg.tiers.size()), n});
    }
    json r = capacity_json(plan_capacity(in));
    feasible = r["feasible"].get<bool>();
    runs.push_back(std::move(r));
  }
  return {{"kind", "capacity"}, {"basis", basis}, {"growth", growth}, {"utilisation", cfg.utilisation},
          {"window_seconds", static_cast<double>(window_ms) / 1000.0}, {"feasible", feasible}, {"runs", std::move(runs)},
          {"messaging_tiers", std::move(tiers)}};
}

nlohmann::json build_capacity_hypothetical(std::int64_t advisors, int senders, double mps, const std::string& channel,
                                           const Config& cfg, double growth, double new_sender_mps,
                                           const std::string& messaging_tier) {
  CapacityInput in;
  for (int i = 0; i < senders; ++i) in.senders.push_back({channel + "-" + std::to_string(i + 1), channel, mps});
  in.demand.push_back({channel, "all", 0, advisors});
  in.window_ms = cfg.window.lead_ms + cfg.window.tail_ms;
  in.utilisation = cfg.utilisation;
  in.growth = growth;
  in.new_sender_mps = new_sender_mps;
  json r = capacity_json(plan_capacity(in));
  bool feasible = r["feasible"].get<bool>();
  json tiers = json::array();
  if (!messaging_tier.empty() && channel == "whatsapp") {
    auto tier = messaging_tier_from_string(messaging_tier);
    if (!tier) throw UsageError("--messaging-tier: expected 250, 2k, 10k, 100k or unlimited, got " + messaging_tier);
    std::vector<TierSender> ts;
    for (const auto& s : in.senders) ts.push_back({s.id, "default", tier});
    const auto n = static_cast<std::int64_t>(std::ceil(static_cast<double>(advisors) * growth - 1e-9));
    json portfolios = json::array();
    bool fits = true;
    for (const auto& c : check_messaging_tiers(ts, {{"default", n}})) {
      fits = fits && c.feasible;
      portfolios.push_back({{"portfolio", c.portfolio},
                            {"senders", c.senders},
                            {"tier", c.tier ? json(std::string(to_string(*c.tier))) : json(nullptr)},
                            {"limit", c.limit ? json(*c.limit) : json(nullptr)},
                            {"unique_recipients", c.unique_recipients},
                            {"over", c.over},
                            {"checked", c.checked},
                            {"feasible", c.feasible},
                            {"recommendation", c.recommendation}});
    }
    feasible = feasible && fits;
    tiers.push_back({{"date", "hypothetical"}, {"feasible", fits}, {"window_from", "-"}, {"window_to", "-"},
                     {"portfolios", std::move(portfolios)}});
  }
  return {{"kind", "capacity"},
          {"messaging_tiers", std::move(tiers)},
          {"basis", "hypothetical: " + std::to_string(advisors) + " advisors, " + std::to_string(senders) + " " + channel +
                        " sender(s) of " + fmt::format("{:g}", mps) + " msg/s"},
          {"growth", growth}, {"utilisation", cfg.utilisation},
          {"window_seconds", static_cast<double>(in.window_ms) / 1000.0}, {"feasible", feasible},
          {"runs", json::array({std::move(r)})}};
}

std::string format_capacity_text(const nlohmann::json& cap) {
  std::string out = "Capacity (" + cap.value("basis", std::string()) + "), window " +
                    fmt::format("{:g}", cap.value("window_seconds", 300.0)) + " s, utilisation " +
                    fmt::format("{:g}", cap.value("utilisation", 0.7)) + ", growth x" + fmt::format("{:g}", cap.value("growth", 1.0)) +
                    ": " + (cap.value("feasible", true) ? "FITS" : "DOES NOT FIT") + "\n";
  for (const auto& r : cap.at("runs")) {
    out += "\n";
    if (r.contains("run_id")) out += "Run " + num(r, "run_id") + ", " + r.value("date", std::string()) + ", slot " + r.value("slot_at", std::string()) + "\n";
    out += "  channel     deliveries  senders   msg/s  needed msg/s  fit in window  window use  headroom\n";
    for (const auto& c : r.at("channels")) {
      auto pctv = [&](const char* k) { return c.at(k).is_number() ? fmt::format("{:.2f}%", c.at(k).get<double>()) : std::string("-"); };
      out += "  " + pad(c.value("channel", std::string()), 10, false) + pad(num(c, "deliveries"), 12) + pad(num(c, "senders"), 9) +
             pad(fmt::format("{:g}", c.value("sender_mps", 0.0)), 8) + pad(fmt::format("{:.2f}", c.value("required_mps", 0.0)), 14) +
             pad(num(c, "capacity_in_window"), 15) + pad(pctv("window_utilisation_pct"), 12) +
             pad(fmt::format("{:.1f}", c.value("retry_headroom", 0.0)), 10) + "\n";
    }
    for (const auto& c : r.at("channels")) out += "  - " + c.value("recommendation", std::string()) + "\n";
  }
  if (cap.contains("messaging_tiers")) {
    for (const auto& t : cap.at("messaging_tiers")) {
      const std::string from = t.value("window_from", std::string("-")), to = t.value("window_to", std::string("-"));
      out += "\nWhatsApp messaging limits, " + t.value("date", std::string()) +
             (from == "-" ? std::string(" (unique recipients in 24 h)")
                          : " (unique recipients in the 24 h from " + from + " to " + to + ")") +
             ": " + (t.value("feasible", true) ? "FITS" : "DOES NOT FIT") + "\n";
      out += "  " + pad("portfolio", 12, false) + pad("tier", 10) + pad("limit", 12) + pad("recipients", 12) + pad("over", 8) +
             "  senders\n";
      for (const auto& p : t.at("portfolios")) {
        std::string who;
        for (const auto& id : p.at("senders")) who += (who.empty() ? "" : ",") + id.get<std::string>();
        out += "  " + pad(p.value("portfolio", std::string()), 12, false) +
               pad(p.at("tier").is_string() ? p.at("tier").get<std::string>() : std::string("-"), 10) +
               pad(p.at("limit").is_number() ? num(p, "limit") : std::string(p.at("tier").is_string() ? "unlimited" : "-"), 12) +
               pad(num(p, "unique_recipients"), 12) + pad(num(p, "over"), 8) + "  " + who + "\n";
      }
      for (const auto& p : t.at("portfolios")) out += "  - " + p.value("recommendation", std::string()) + "\n";
    }
  }
  return out;
}

}  // namespace daybreak
