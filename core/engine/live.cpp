#include "engine/live.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "channels/channel.hpp"
#include "domain/sla.hpp"
#include "store/alerts.hpp"
#include "store/monitoring.hpp"
#include "store/report_ledger.hpp"
#include "store/runs.hpp"

namespace daybreak::engine {
namespace {

Histogram with_bounds(std::vector<double> b) {
  Histogram h;
  h.bounds = std::move(b);
  h.counts.assign(h.bounds.size() + 1, 0);
  return h;
}

}  // namespace

Histogram Histogram::lag() {
  // 5 ms … 5 min: below 100 ms is the goal, seconds are trouble, minutes are a missed deadline.
  return with_bounds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
}

Histogram Histogram::latency() {
  // Provider round trips: tens of ms when healthy, the request timeout (10 s) when not.
  return with_bounds({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
}

void Histogram::observe(double seconds) {
  if (counts.size() != bounds.size() + 1) counts.assign(bounds.size() + 1, 0);
  auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);  // first bound >= value: le semantics
  ++counts[static_cast<std::size_t>(it - bounds.begin())];
  sum += seconds;
  ++count;
}

void Histogram::merge(const Histogram& o) {
  if (counts.size() != bounds.size() + 1) counts.assign(bounds.size() + 1, 0);
  for (std::size_t i = 0; i < counts.size() && i < o.counts.size(); ++i) counts[i] += o.counts[i];
  sum += o.sum;
  count += o.count;
}

double Histogram::quantile(double q) const {
  if (count == 0 || bounds.empty()) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return i < bounds.size() ? bounds[i] : bounds.back();
  }
  return bounds.back();
}

void add_delivery_figures(RunLive& run, DeliveryState state, Millis planned_at, Millis deadline_at,
                          Millis first_sent_at, Millis accepted_at, Millis now) {
  ++run.total;
  if (state == DeliveryState::cancelled) {
    ++run.cancelled;
    return;
  }
  const bool accepted = is_accepted_state(state);
  if (accepted) {
    ++run.accepted;
    // An acceptance without a recorded time cannot be shown on time: it counts late (as in domain/sla).
    if (accepted_at > 0 && accepted_at <= deadline_at) ++run.on_time; else ++run.late;
  }
  if (state == DeliveryState::dead) ++run.dead;
  if (!is_final_state(state)) {
    ++run.remaining;
    if (planned_at <= now) ++run.backlog;
    run.last_planned_at = std::max(run.last_planned_at, planned_at);
  }
  if (is_final_state(state) || deadline_at < now) ++run.live_sample;
  if (first_sent_at > 0) run.lag.observe(static_cast<double>(first_sent_at - planned_at) / 1000.0);
}

void finish_run_figures(RunLive& run) {
  const std::size_t eligible = run.total - run.cancelled;
  run.sla_so_far_pct = eligible ? 100.0 * static_cast<double>(run.on_time) / static_cast<double>(eligible) : 100.0;
  run.live_success_pct =
      run.live_sample ? 100.0 * static_cast<double>(run.on_time) / static_cast<double>(run.live_sample) : 100.0;
}

void add_delivery(RunLive& run, DeliveryState state, const std::string& channel, const std::string& tier,
                  const std::string& sender, Millis planned_at, Millis deadline_at, Millis first_sent_at,
                  Millis accepted_at, Millis now) {
  ++run.counts[{std::string(to_string(state)), channel, tier, sender}];
  if (is_accepted_state(state) && accepted_at > 0 && accepted_at <= deadline_at) ++run.on_time_by[{tier, channel, sender}];
  add_delivery_figures(run, state, planned_at, deadline_at, first_sent_at, accepted_at, now);
  finish_run_figures(run);
}

void finish_run_projection(RunLive& run, const std::vector<SenderLive>& senders, Millis now) {
  run.available_mps = 0;
  for (const auto& s : senders) {
    if (s.breaker != BreakerState::open && !s.credentials_failed) run.available_mps += s.mps;
  }
  run.projected_finish.reset();
  run.deadline_at_risk = false;
  if (run.remaining == 0) {
    run.projected_finish = now;
    return;
  }
  if (run.available_mps <= 0) {
    run.deadline_at_risk = now < run.deadline_at;  // nothing can send: at risk until it is simply late
    return;
  }
  auto drain_ms = static_cast<Millis>(std::ceil(1000.0 * static_cast<double>(run.remaining) / run.available_mps));
  Millis finish = std::max(now + drain_ms, run.last_planned_at);
  run.projected_finish = finish;
  // "backlog ÷ available rate > time left", with the backlog taken as all
  // remaining work: what is not due yet still has to go through the same senders.
  run.deadline_at_risk = now < run.deadline_at && now + drain_ms > run.deadline_at;
}

LiveSnapshot snapshot_from_ledger(store::Db& db, const std::vector<std::int64_t>& run_ids, const Config& cfg, Millis now) {
  store::SqliteReportLedger ledger(db);
  LiveSnapshot snap = snapshot_from_ledger(ledger, run_ids, cfg, now);
  fill_store_figures(db, snap);
  return snap;
}

LiveSnapshot snapshot_from_ledger(store::ReportLedger& ledger, const std::vector<std::int64_t>& run_ids, const Config& cfg,
                                  Millis now) {
  LiveSnapshot snap;
  snap.at = now;
  for (const auto& s : cfg.senders) {
    SenderLive sl;
    sl.id = s.id;
    sl.channel = std::string(to_string(s.channel));
    sl.mps = s.mps;
    snap.senders.push_back(std::move(sl));
  }
  struct LatestAnswer {
    std::int64_t attempt_id = -1;
    bool credentials = false, certificate = false;
  };
  std::map<std::string, LatestAnswer> latest;  // sender → its latest answer
  for (std::int64_t id : run_ids) {
    auto row = ledger.run(id);
    if (!row) continue;
    RunLive r;
    r.run_id = row->run_id;
    r.kind = ledger.run_kind(id);  // "morning" on a ledger that has no kinds
    r.date = row->date;
    r.slot_at = row->slot_at;
    r.deadline_at = row->deadline_at;
    r.closed = row->state == "closed" || row->state == "cancelled";
    std::vector<Millis> lags;
    std::uint64_t dead_recent = 0;
    ledger.each_delivery_brief(id, [&](const store::DeliveryBrief& d) {
      add_delivery(r, d.state, d.channel, d.tier, d.sender, d.planned_at, d.deadline_at, d.first_sent_at, d.accepted_at, now);
      if (d.state != DeliveryState::cancelled && d.first_sent_at > 0) lags.push_back(d.first_sent_at - d.planned_at);
      if (d.state == DeliveryState::dead && d.updated_at >= now - cfg.alerts.dead_letter_window_ms) ++dead_recent;
    });
    r.dead_recent = dead_recent;
    r.status = ledger.truth_for_run(id, now);
    LagStats ls = percentiles(std::move(lags));
    if (ls.n > 0) {
      r.lag_p50_ms = ls.p50;
      r.lag_p95_ms = ls.p95;
      r.lag_p99_ms = ls.p99;
    }
    ledger.each_attempt_brief(id, [&](const store::AttemptBrief& a) {
      ++r.requests[{a.channel, a.sender, a.outcome}];
      if (a.latency_ms) r.latency.observe(static_cast<double>(*a.latency_ms) / 1000.0);
      auto& l = latest[a.sender];
      if (a.attempt_id >= l.attempt_id) {
        l = {a.attempt_id, a.outcome == "credentials", false};
        // A server certificate that did not verify is stored as a credentials outcome with the
        // transport's code (channels/channel.cpp): told apart here as dispatch tells it apart live.
        if (l.credentials && a.error_code.rfind("curl:", 0) == 0) {
          try {
            l.certificate = channels::is_certificate_failure(std::stoi(a.error_code.substr(5)));
          } catch (const std::exception&) {
          }
        }
      }
    });
    snap.dead_letters += r.dead;
    snap.runs.push_back(std::move(r));
  }
  for (auto& s : snap.senders) {
    if (auto it = latest.find(s.id); it != latest.end()) {
      s.credentials_failed = it->second.credentials;
      s.certificate_failed = it->second.certificate;
    }
  }
  for (auto& r : snap.runs) finish_run_projection(r, snap.senders, now);
  return snap;
}

void fill_store_figures(store::Db& db, LiveSnapshot& snap) {
  if (auto last = store::SlaReportLatestClosed(db)) {
    snap.last_run_id = last->first;
    snap.last_run_sla_pct = last->second;
  }
  snap.alerts_firing = static_cast<std::size_t>(store::AlertCountFiring(db));
}

double live_delivered_pct(const RunLive& run) {
  if (!run.status || run.status->delivered_decided == 0) return 100.0;
  return 100.0 * static_cast<double>(run.status->delivered_decided_on_time) /
         static_cast<double>(run.status->delivered_decided);
}

nlohmann::json breakdown_json(const RunLive& r) {
  struct Row {
    std::uint64_t total = 0, accepted = 0, delivered = 0, dead = 0, pending = 0;
  };
  std::map<GroupKey, Row> rows;
  for (const auto& [k, n] : r.counts) {
    const auto st = delivery_state_from_string(k.state);
    if (!st || *st == DeliveryState::cancelled) continue;
    Row& row = rows[{k.tier, k.channel, k.sender}];
    row.total += n;
    if (is_accepted_state(*st)) row.accepted += n;
    if (*st == DeliveryState::delivered || *st == DeliveryState::read) row.delivered += n;
    if (*st == DeliveryState::dead) row.dead += n;
    if (!is_final_state(*st)) row.pending += n;
  }
  auto out = nlohmann::json::array();
  for (const auto& [k, row] : rows) {
    const auto ot = r.on_time_by.find(k);
    out.push_back({{"tier", k.tier}, {"channel", k.channel}, {"sender", k.sender}, {"total", row.total},
                   {"accepted", row.accepted}, {"on_time", ot == r.on_time_by.end() ? 0 : ot->second},
                   // Status callbacks reach the ledger, not dispatch's memory: unknown there.
                   {"delivered", r.status ? nlohmann::json(row.delivered) : nlohmann::json(nullptr)},
                   {"dead", row.dead}, {"pending", row.pending}});
  }
  return out;
}

nlohmann::json run_live_json(const RunLive& r) {
  auto opt = [](const std::optional<double>& v, double fallback) { return v ? *v : fallback; };
  nlohmann::json j = {{"run_id", r.run_id},
                      {"run_kind", r.kind},
                      {"date", r.date},
                      {"slot_at_ms", r.slot_at},
                      {"deadline_at_ms", r.deadline_at},
                      {"closed", r.closed},
                      {"total", r.total},
                      {"cancelled", r.cancelled},
                      {"accepted", r.accepted},
                      {"on_time", r.on_time},
                      {"late", r.late},
                      {"dead", r.dead},
                      {"remaining", r.remaining},
                      {"backlog", r.backlog},
                      {"in_flight", r.in_flight},
                      {"live_success_pct", r.live_success_pct},
                      {"live_sample", r.live_sample},
                      {"sla_so_far_pct", r.sla_so_far_pct},
                      {"lag_p50_ms", opt(r.lag_p50_ms, 1000.0 * r.lag.quantile(0.50))},
                      {"lag_p95_ms", opt(r.lag_p95_ms, 1000.0 * r.lag.quantile(0.95))},
                      {"lag_p99_ms", opt(r.lag_p99_ms, 1000.0 * r.lag.quantile(0.99))},
                      {"available_mps", r.available_mps},
                      {"projected_finish_ms", r.projected_finish ? nlohmann::json(*r.projected_finish) : nlohmann::json(nullptr)},
                      {"deadline_at_risk", r.deadline_at_risk}};
  // Status-callback figures: null when this snapshot has none (dispatch's, unless it watches them).
  const auto* st = r.status ? &*r.status : nullptr;
  auto share = [&](std::int64_t n) -> nlohmann::json {
    if (!st) return nullptr;
    return st->eligible ? 100.0 * static_cast<double>(n) / static_cast<double>(st->eligible) : (n ? 100.0 : 0.0);
  };
  j["delivered_on_time"] = st ? nlohmann::json(st->delivered_on_time) : nlohmann::json(nullptr);
  j["delivered"] = st ? nlohmann::json(st->delivered) : nlohmann::json(nullptr);
  j["read"] = st ? nlohmann::json(st->read) : nlohmann::json(nullptr);
  j["unknown"] = st ? nlohmann::json(st->unknown) : nlohmann::json(nullptr);
  j["failed_after_accept"] = st ? nlohmann::json(st->failed_after_accept) : nlohmann::json(nullptr);
  j["delivered_so_far_pct"] = st ? (st->eligible ? share(st->delivered_on_time) : nlohmann::json(100.0)) : nlohmann::json(nullptr);
  j["read_pct"] = share(st ? st->read : 0);
  j["unknown_pct"] = share(st ? st->unknown : 0);
  j["live_delivered_pct"] = st ? nlohmann::json(live_delivered_pct(r)) : nlohmann::json(nullptr);
  j["live_delivered_sample"] = st ? nlohmann::json(st->delivered_decided) : nlohmann::json(nullptr);
  j["breakdown"] = breakdown_json(r);
  return j;
}

}  // namespace daybreak::engine
