#pragma once
// The live figures of dispatch: one plain snapshot that dispatch
// fills from memory about once a second, and that the same code also builds from the ledger for
// a run nobody is dispatching (a finished run, a test, `sla-report --watch` after a crash). The
// metrics textfile (engine/metrics.hpp), the alert rules (engine/alerts.hpp) and the watch view
// all read this one struct, so they cannot disagree.
#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "domain/breaker.hpp"
#include "domain/types.hpp"
#include "store/db.hpp"
#include "store/report_ledger.hpp"
#include "store/reports.hpp"

namespace daybreak::engine {

/// A sender's circuit breaker as monitoring sees it: the one enum the breaker code
/// (domain/breaker.hpp) uses, named here so dispatch, metrics and alerts share it.
using BreakerState = ::daybreak::BreakerState;

/// A fixed-bucket histogram of seconds, Prometheus style. `counts[i]` holds the observations
/// in (bounds[i-1], bounds[i]]; the last element holds those above every bound (+Inf).
struct Histogram {
  std::vector<double> bounds;          ///< upper bounds in seconds, ascending
  std::vector<std::uint64_t> counts;   ///< bounds.size() + 1 buckets (not cumulative)
  double sum = 0;                      ///< of every observation, seconds
  std::uint64_t count = 0;

  /// Buckets for dispatch lag (first request − planned time): daybreak's own delay, where the
  /// goal is p99 < 100 ms, so the fine buckets sit below a second.
  static Histogram lag();
  /// Buckets for provider send latency (request → response).
  static Histogram latency();
  /// Adds one observation. Negative values (a request sent before its planned time, which the
  /// claim lead allows) count in the first bucket.
  void observe(double seconds);
  /// Adds every bucket of `o` (same bounds) into this one.
  void merge(const Histogram& o);
  /// The upper bound of the bucket holding the q-quantile (0 < q ≤ 1) by nearest rank, in
  /// seconds; the largest bound when it falls in +Inf; 0 when empty. An estimate good to one bucket.
  [[nodiscard]] double quantile(double q) const;
};

/// Deliveries counted by (state, channel, tier, sender).
struct CountKey {
  std::string state, channel, tier, sender;
  auto operator<=>(const CountKey&) const = default;
};

/// A (tier, channel, sender) group of a run's deliveries: a row of the console's breakdown.
struct GroupKey {
  std::string tier, channel, sender;
  auto operator<=>(const GroupKey&) const = default;
};

/// Requests made, by (channel, sender, outcome) where outcome is `accepted` or a failure kind
/// (retryable, rate_limited, throttled, permanent, credentials, uncertain).
struct RequestKey {
  std::string channel, sender, outcome;
  auto operator<=>(const RequestKey&) const = default;
};

/// The live figures of one run.
struct RunLive {
  std::int64_t run_id = 0;
  std::string kind = "morning";  ///< the run's kind (sql/014): morning or urgent (daybreak send-now)
  std::string date;
  Millis slot_at = 0;
  Millis deadline_at = 0;
  bool closed = false;
  std::size_t total = 0;      ///< deliveries of the run, cancelled included
  std::size_t cancelled = 0;
  std::map<CountKey, std::uint64_t> counts;
  /// Deliveries accepted by their deadline, per (tier, channel, sender): with `counts`, the
  /// per-group rows run_live_json publishes as "breakdown".
  std::map<GroupKey, std::uint64_t> on_time_by;
  std::map<RequestKey, std::uint64_t> requests;
  Histogram lag = Histogram::lag();          ///< first request − planned, over sent deliveries
  Histogram latency = Histogram::latency();  ///< request → response, over requests
  /// Exact lag percentiles in ms when the builder knows every lag (the ledger does); when
  /// absent, readers use lag.quantile().
  std::optional<double> lag_p50_ms, lag_p95_ms, lag_p99_ms;
  std::size_t accepted = 0, on_time = 0, late = 0, dead = 0;
  std::size_t remaining = 0;    ///< not final yet (planned, sending, retry_wait, uncertain)
  std::size_t backlog = 0;      ///< not final and due (planned time passed): waiting for capacity
  std::size_t in_flight = 0;    ///< requests out now
  Millis last_planned_at = 0;   ///< latest planned time among the remaining deliveries
  double live_success_pct = 100;  ///< on-time share of the decided eligible deliveries, % (domain/sla.hpp)
  std::size_t live_sample = 0;    ///< its denominator: eligible deliveries final or past their deadline
  double sla_so_far_pct = 100;    ///< on time ÷ eligible (cancelled excluded) so far
  /// Delivery truth from status callbacks (store::DeliveryTruthForRun): the ledger builder always
  /// fills it; dispatch fills it from the ledger (at most every 15 s) only when
  /// alerts.success_measure is "delivered", since callbacks reach the ledger, not its memory.
  std::optional<store::DeliveryTruth> status;
  /// Dead letters added in the last dead-letter window, when the builder can tell (the ledger
  /// can, from updated_at); dispatch leaves it empty and the alert engine tracks growth itself.
  std::optional<std::uint64_t> dead_recent;
  // Filled by finish_run_projection():
  double available_mps = 0;                ///< sum of the rates of senders with a usable breaker
  std::optional<Millis> projected_finish;  ///< when the remaining work ends at that rate
  bool deadline_at_risk = false;           ///< remaining ÷ available rate > time left to the deadline
};

/// One sender as monitoring sees it.
struct SenderLive {
  std::string id;
  std::string channel;
  double mps = 0;
  BreakerState breaker = BreakerState::closed;
  bool credentials_failed = false;  ///< the provider rejected its credentials (WhatsApp code 190, SMTP 535)
  bool certificate_failed = false;  ///< its relay's TLS certificate did not verify (credentials_failed is set too)
  std::size_t in_flight = 0;
  std::string account{};      ///< its provider account (SenderState::account)
  std::string blocked{};      ///< "phone_number" or "account" while a provider block pauses it, else empty
  std::string blocked_reason{}; ///< the block's code and message
};

/// Everything monitoring needs at one instant.
struct LiveSnapshot {
  Millis at = 0;
  std::vector<RunLive> runs;
  std::vector<SenderLive> senders;
  std::uint64_t dead_letters = 0;  ///< dead deliveries of these runs (the dead-letter queue)
  std::size_t in_flight = 0;
  std::size_t writer_backlog = 0;
  bool writer_failing = false;
  // From the store (fill_store_figures), for the metrics textfile:
  std::optional<double> last_run_sla_pct;      ///< SLA % of the most recently closed run
  std::optional<std::int64_t> last_run_id;
  std::size_t alerts_firing = 0;
};

/// Sets available_mps, projected_finish and deadline_at_risk of `run` at `now` from the
/// senders' rates and breakers: only senders whose breaker is not open count, and the finish is
/// no earlier than the last remaining planned time. At risk when work remains and it cannot end
/// by the deadline at that rate (or no sender is usable). Pure; dispatch calls it too.
void finish_run_projection(RunLive& run, const std::vector<SenderLive>& senders, Millis now);

/// Adds one delivery's outcome to `run` (counts, SLA figures, lag): the one place both builders
/// turn a delivery into figures. `first_sent_at`/`accepted_at` are 0 when unknown.
void add_delivery(RunLive& run, DeliveryState state, const std::string& channel, const std::string& tier,
                  const std::string& sender, Millis planned_at, Millis deadline_at, Millis first_sent_at,
                  Millis accepted_at, Millis now);

/// add_delivery without the (state, channel, tier, sender) count and without recomputing the
/// percentages: dispatch counts under integer keys itself and calls finish_run_figures once a
/// pass, so a million deliveries a second cost no string work. Same rules, same code.
void add_delivery_figures(RunLive& run, DeliveryState state, Millis planned_at, Millis deadline_at,
                          Millis first_sent_at, Millis accepted_at, Millis now);
/// Sets sla_so_far_pct and live_success_pct from the counts.
void finish_run_figures(RunLive& run);

/// Builds the snapshot of `run_ids` from the ledger at `now`: every delivery and request of
/// those runs, senders from `cfg` (breakers read as closed: only dispatch knows them; a sender
/// whose latest request failed on credentials is marked so), dead letters added within
/// `cfg.alerts.dead_letter_window_ms`, and the store figures. Unknown run ids are skipped.
LiveSnapshot snapshot_from_ledger(store::Db& db, const std::vector<std::int64_t>& run_ids, const Config& cfg, Millis now);
/// The same from either ledger's read interface (store::ReportLedger: the SQLite file or the
/// PostgreSQL ledger), without the store figures (no stored report, no alerts: the caller adds
/// them where it has them).
LiveSnapshot snapshot_from_ledger(store::ReportLedger& ledger, const std::vector<std::int64_t>& run_ids, const Config& cfg,
                                  Millis now);

/// Sets last_run_sla_pct/last_run_id (the newest stored run report) and alerts_firing from the
/// store; dispatch calls it on its writer connection before writing the metrics textfile.
void fill_store_figures(store::Db& db, LiveSnapshot& snap);

/// Live delivered success % of `run`: status->delivered_decided_on_time ÷ delivered_decided
/// (100 when none, or no status figures).
double live_delivered_pct(const RunLive& run);

/// The run's deliveries per (tier, channel, sender), cancelled excluded, ordered by name:
/// total, accepted, on_time, delivered (null when the snapshot has no status figures: dispatch's),
/// dead, pending (not final). run_live_json publishes it as "breakdown".
nlohmann::json breakdown_json(const RunLive& r);

/// The run's live figures as JSON, for runs.progress ("live" key) and `sla-report --watch --json`.
nlohmann::json run_live_json(const RunLive& r);

}  // namespace daybreak::engine
