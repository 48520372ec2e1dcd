#pragma once
// The dispatch loop: loads the due runs into memory, claims each
// delivery (committed `sending`) just before its planned time, sends it under its sender's
// rate limit, and applies the retry policy to every outcome until every delivery is final.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "channels/transport.hpp"
#include "config/config.hpp"
#include "domain/clock.hpp"
#include "domain/lag_histogram.hpp"
#include "store/db.hpp"
#include "store/dispatch_ledger.hpp"
#include "store/reports.hpp"
#include "store/withdrawal.hpp"

namespace spdlog {
class logger;
}

namespace daybreak::engine {

/// What a dispatch did, for its JSON summary and exit code.
struct DispatchSummary {
  std::vector<std::int64_t> runs_closed;
  std::vector<std::int64_t> runs_left_open;  ///< stopped early (signal, lost lease)
  std::vector<std::int64_t> runs_adopted;    ///< urgent runs created while dispatching and taken then (send-now)
  std::int64_t deliveries = 0;
  std::int64_t sent_requests = 0;
  std::int64_t accepted = 0;
  std::int64_t on_time = 0;
  std::int64_t dead = 0;
  std::int64_t uncertain_found = 0;  ///< rows left `sending` by a dead owner
  std::int64_t possible_duplicates = 0;
  std::int64_t reconciled = 0;               ///< uncertain sends settled by a status event, not resent
  std::int64_t emergency_substitutions = 0;  ///< content swapped for an emergency item at send time
  std::int64_t held = 0;  ///< content pulled or expired, no emergency item: made final unsent (also counted in dead)
  std::int64_t breaker_opened = 0;           ///< times a sender's breaker opened
  std::int64_t numbers_paused = 0;    ///< senders paused by a number-level provider block (131048, 133010 ...)
  std::int64_t accounts_stopped = 0;  ///< account-level provider blocks (368, 131031, 131042) that stopped an account
  std::int64_t unknown_error_codes = 0;  ///< error answers with a code the adapter's table does not know
  std::int64_t held_for_quality = 0;  ///< accepted sends Meta held for quality assessment
  std::int64_t operator_changes = 0;         ///< deliveries reloaded after an operator change
  std::int64_t writes_dropped = 0;  ///< ledger writes dropped because they failed on every attempt
  std::int64_t rerouted_after_failed = 0;  ///< accepted on WhatsApp, then a failed status: moved to the next channel
  std::int64_t failed_after_accept = 0;    ///< the same, recorded only (run closing, no channel, deadline passed)
  std::int64_t whatsapp_held = 0;          ///< deliveries moved off WhatsApp (or given up) by a 131049 hold
  bool stopped_by_signal = false;
  bool lost_lease = false;
  /// lag_us: for every delivery this dispatch sent a first request for, the time from its
  /// planned instant to the moment that request was handed to the transport, in microseconds
  /// (Dispatcher::Impl::note_first_send_lag says how it is read). All runs together, and per run
  /// in the order the runs were taken (a run with no first send here has an empty histogram).
  LagHistogram lag_us;
  std::vector<std::pair<std::int64_t, LagHistogram>> lag_us_by_run;
};

/// How a dispatch is asked to stop, in stages: 1 = stop claiming, finish what is in flight and
/// exit; 2 = exit now. `request` is lock-free: a signal handler may call it.
class StopSource {
 public:
  void request() noexcept { stage_.fetch_add(1); }
  [[nodiscard]] int stage() const noexcept { return stage_.load(); }

 private:
  std::atomic<int> stage_{0};
};
/// What the dispatcher reads its stop stage from (nothing: never asked to stop).
class StopToken {
 public:
  StopToken() = default;
  explicit StopToken(const StopSource& s) : source_(&s) {}
  [[nodiscard]] int stage() const noexcept { return source_ ? source_->stage() : 0; }

 private:
  const StopSource* source_ = nullptr;
};

/// Monitoring for a ledger on another database (PostgreSQL): the alert rules dispatch evaluates
/// from its live snapshot (their alerts and notification outbox in this host's SQLite file) and
/// the metrics textfile run on a thread of their own against `store_path` (engine/host_store.hpp),
/// never in the ledger's transaction. content_held reads the held deliveries in the other
/// database (held_groups), on one host of those sharing it; the textfile's
/// daybreak_last_run_sla_ratio is the ledger's last closed run's stored report, whichever host
/// closed it (last_closed_report; the reports are stored in the ledger, with
/// Dispatcher::store_reports_in_ledger) and its daybreak_alerts_firing counts this host's file.
/// docs/architecture.md.
struct HostMonitoring {
  std::string store_path;  ///< this host's SQLite file ([database] path): created and migrated when missing
  /// A run's status-callback figures from the ledger's database, for alerts.success_measure =
  /// "delivered" (called at most every 15 s per run, on the monitoring thread). Unset: the
  /// delivered measure has no figures and live_success_low is judged on none (dispatch_on_pg
  /// always sets it).
  std::function<store::DeliveryTruth(std::int64_t run_id, Millis now)> status_figures;
  /// The held deliveries (store::HeldDeliveryGroups) on days from `from_date` on, read from the
  /// ledger's database, for the content_held rule (on the monitoring thread, once a second);
  /// nullopt when another host raises the rule (store::PgContentHeldReader: the host holding its
  /// lock): this host then neither raises nor resolves its alerts. Unset: content_held is not
  /// evaluated.
  std::function<std::optional<std::vector<store::HeldGroup>>(const std::string& from_date)> held_groups;
  /// (run id, SLA %) of the stored report of the ledger's most recently closed run
  /// (store::pg_run_report_latest_closed), for the textfile's daybreak_last_run_sla_ratio, on
  /// the monitoring thread once a second. Unset, nullopt or throwing: the textfile has no
  /// last-run SLA that second (never one from this host's file, whose runs are not the ledger's).
  std::function<std::optional<std::pair<std::int64_t, double>>()> last_closed_report;
};

class Dispatcher {
 public:
  /// `ledger` opens the dispatch's ledger connections (store/dispatch_ledger.hpp): one to load the
  /// runs, one for the writer thread; its owner() names this process in leases and claims.
  Dispatcher(const Config& cfg, const Clock& clock, channels::Transport& transport, store::LedgerFactory ledger,
             StopToken stop, std::shared_ptr<spdlog::logger> log);
  ~Dispatcher();
  /// Called on the writer thread, inside the transaction that closes a run (stores its report).
  /// Not called with monitor_on_host (the run is not in this host's file): see
  /// store_reports_in_ledger.
  using RunClosedHook = std::function<void(store::Db&, std::int64_t run_id, Millis now)>;
  /// Runs monitoring against this host's SQLite file instead of in the ledger's transaction
  /// (a ledger on another database). Call before run().
  void monitor_on_host(HostMonitoring m);
  /// Each run this dispatch closes has its report built by `build` and stored by the ledger
  /// itself (store::ledger_op::StoreRunReport, on the writer thread, after the run's CloseRun;
  /// the last run's after the deliveries are freed, as the hook's): for a ledger on another
  /// database (PostgreSQL's run_reports). Call before run(); the hook is then not used.
  void store_reports_in_ledger(store::RunReportBuilder build);
  /// Runs the given runs (whose leases the caller acquired) to completion or until stopped.
  DispatchSummary run(const std::vector<std::int64_t>& run_ids, const RunClosedHook& on_run_closed = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// "host:pid:random": names this process in leases and claims.
std::string make_owner_id();

}  // namespace daybreak::engine
