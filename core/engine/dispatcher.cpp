#include "engine/dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <set>
#include <limits>
#include <unordered_map>

#include "domain/breaker.hpp"
#include "domain/emergency.hpp"
#include "domain/retry.hpp"
#include "domain/status_event.hpp"
#include "engine/alerts.hpp"
#include "engine/host_store.hpp"
#include "engine/live.hpp"
#include "engine/metrics.hpp"
#include "engine/send_schedule.hpp"
#include "engine/sender_pool.hpp"
#include "engine/string_pool.hpp"
#include "engine/writer.hpp"
#include "store/alerts.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

namespace daybreak::engine {

std::string make_owner_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08x", rd());
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + buf;
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string_view failure_name(FailureKind k) {
  switch (k) {
    case FailureKind::retryable: return "retryable";
    case FailureKind::sender_rate_limited: return "rate_limited";
    case FailureKind::recipient_throttled: return "throttled";
    case FailureKind::permanent: return "permanent";
    case FailureKind::credentials: return "credentials";
    case FailureKind::uncertain: return "uncertain";
    case FailureKind::sender_blocked: return "blocked";
  }
  return "unknown";
}

using store::ContentRow;

/// Usable on delivery day `date`: the content guard's rule (domain/emergency.hpp), the one place it is written.
bool usable_on(const ContentRow& c, const std::string& date) {
  return !content_pull_problem(c.content_id, c.withdrawn, c.valid_from, c.valid_until, date);
}

/// Writer operations queued past which no new rows are claimed (claim_due). At 4,000 sends/s
/// with two or three operations each, a writer keeping up holds a few hundred.
constexpr std::size_t kClaimWriterBacklogMax = 20'000;

/// How long a sender whose server's certificate did not verify stays paused between probes
/// (steady time): it does not mend by itself; someone fixes the CA file, the certificate or the
/// path (an email relay's ca_file; for https:// senders the CA bundle, or an intercepting proxy).
constexpr Millis kCertificatePauseMs = 300'000;

/// Failures that say the sender (not one recipient or message) is unwell: they feed its breaker.
bool is_sender_failure(FailureKind k) {
  return k == FailureKind::retryable || k == FailureKind::uncertain || k == FailureKind::credentials;
}

struct RunState {
  store::Run row;
  std::size_t total = 0;
  std::size_t remaining = 0;  ///< not final
  bool closed = false;
  // Deliveries already final when this dispatch loaded the run (a resume): counted once here.
  std::size_t pre_accepted = 0, pre_on_time = 0, pre_dead = 0, pre_cancelled = 0;
  /// The same rows, compact, for the live snapshot's breakdowns (empty on a fresh run).
  struct PreFinal {
    DeliveryState state;
    std::uint8_t chan, tier;
    std::int16_t sender;
    Millis planned_at, deadline, first_sent_at, accepted_at;
  };
  std::vector<PreFinal> pre_final;
  /// Requests this process made, by sender × outcome (index kOutcomes * sender + outcome, where
  /// outcome 0 is accepted and 1 + FailureKind a failure), and their provider latency. Integer
  /// keyed: a response costs no string work; the snapshot names them.
  std::vector<std::uint64_t> requests;
  /// Kept open until this wall-clock instant after a WhatsApp acceptance
  /// (dispatch.status_wait_seconds), so a `failed` status can still move the delivery.
  Millis status_wait_until = 0;
  static constexpr std::size_t kOutcomes = 1 + static_cast<std::size_t>(FailureKind::sender_blocked) + 1;
  engine::Histogram latency = engine::Histogram::latency();
  /// The run's first requests' lag to the transport (note_first_send_lag), scheduler thread only.
  LagHistogram lag_us;
};

/// Events handed to the scheduler thread by the transport and writer threads.
struct Event {
  enum class Kind { response, claimed, changed, adopted } kind = Kind::response;
  std::uint32_t idx = 0;
  std::uint32_t gen = 0;
  int sender = -1;  ///< the sender the request went through
  Millis started_at = 0;
  channels::Response response;
  struct Claim {
    std::uint32_t idx = 0;
    bool ok = false;
    std::optional<store::DeliveryStateRow> now_row;  ///< the row as it is, when the claim failed
  };
  std::vector<Claim> claims;
  bool claim_dropped = false;  ///< the writer dropped the claim operation: none of `claims` was made
  store::OperatorChanges changes;  ///< rows an operator changed, their content, every withdrawn item
  std::vector<store::Run> adopted;  ///< urgent runs leased to this dispatch while it runs (AdoptUrgent)
};

/// How much later a response may be seen by the scheduler to save it a wake-up (push_event).
/// Nothing waits on a response to send on time unless its sender is at its concurrency limit;
/// the limited sender then sends at most this much later (another sender's pacing keeps the
/// scheduler's wake near), or at once when nothing else would wake it soon.
constexpr auto kResponseWakeSlack = std::chrono::milliseconds(2);

/// How often (steady time) a running dispatch looks for urgent runs created since it started
/// (`daybreak send-now`): one small query on `runs` every two seconds.
constexpr Millis kAdoptIntervalMs = 2000;
/// How far ahead of now an urgent run's window may open and still be adopted (dispatch's default
/// --lookahead).
constexpr Millis kAdoptLookaheadMs = 120'000;

/// The run and sender pauses the heartbeat read (writer thread), until the scheduler takes them.
class ScopedPauses {
 public:
  void offer(const store::Controls& c) {
    std::lock_guard lk(mu_);
    if (seen_ && c.paused_runs == last_.paused_runs && c.paused_senders == last_.paused_senders) return;
    last_ = c;
    seen_ = true;
    fresh_ = true;
  }
  /// The switches when they changed since the last take.
  /// Makes the last switches count as changed (the runs they apply to changed).
  void refresh() {
    std::lock_guard lk(mu_);
    fresh_ = seen_;
  }
  std::optional<store::Controls> take() {
    std::lock_guard lk(mu_);
    if (!fresh_) return std::nullopt;
    fresh_ = false;
    return last_;
  }

 private:
  std::mutex mu_;
  store::Controls last_;
  bool seen_ = false;
  bool fresh_ = false;
};

}  // namespace

struct Dispatcher::Impl {
  const Config& cfg;
  const Clock& clock;
  StopToken stop;
  store::LedgerFactory open_ledger;
  /// The steady clock's reading with the latest wall-clock `now` (scheduler thread): what paces
  /// the process (buckets, breakers, sender pauses, heartbeat and polling cadence).
  Millis steady = 0;
  /// The wall clock and the steady clock in microseconds, read back to back at the top of each
  /// loop pass with `now` and `steady`: the pair note_first_send_lag places a send by.
  Micros tick_wall_us = 0;
  Micros tick_steady_us = 0;
  StepDetector steps;
  /// Forward wall-clock steps seen so far, summed: time a step skipped does not count against
  /// a delivery's drain period (give-up is judged on now - skipped_ms).
  Millis skipped_ms = 0;
  channels::Transport& transport;
  std::shared_ptr<spdlog::logger> log;
  std::string owner;

  SendSchedule sched;                  ///< the items and their queues (engine/send_schedule.hpp)
  StringPool strings;                  ///< the items' advisor ids, names and addresses
  std::vector<std::string> languages;  ///< Item::language indexes this
  std::vector<ContentRow> contents;
  std::unordered_map<std::string, std::uint32_t> content_index;
  SenderPool senders;                  ///< engine/sender_pool.hpp
  std::vector<RunState> runs;
  std::int64_t change_seq = 0;  ///< last delivery_changes row seen
  bool adopt_pending = false;    ///< an AdoptUrgent is queued or committing (the loop waits for its answer)
  bool claims_held_for_writer = false;  ///< claim_due is holding back for the writer's backlog
  Millis last_adopt_steady = 0;  ///< when the last AdoptUrgent was queued, steady time
  std::size_t claims_pending = 0;
  std::size_t foreign_rows = 0;  ///< claims refused because another process owns the row or the run
  int in_flight = 0;
  DispatchSummary summary;

  std::mutex ev_mu;
  std::condition_variable ev_cv;
  WakeWindow ev_window;  ///< the scheduler's wait on ev_cv, under ev_mu (push_event)
  std::deque<Event> events;
  std::atomic<bool> paused_all{false};
  std::array<std::atomic<bool>, 3> paused_channel{};
  std::atomic<bool> lease_lost{false};
  ScopedPauses scoped;  ///< `daybreak pause --run ID | --sender ID`: see apply_scoped_pauses
  std::vector<char> run_paused;       ///< by runs index (scheduler thread)
  std::vector<char> sender_paused;    ///< by sender index (scheduler thread)
  std::vector<Millis> sender_op_until;  ///< the paused_until an operator's pause last set, steady time
  bool releasing = false;  ///< a graceful stop handed claimed rows back; later claims go back too

  std::shared_ptr<LiveSnapshot> last_snap;  ///< the newest live snapshot (heartbeat)
  Millis last_snap_steady = 0;              ///< when it was taken, steady time
  std::vector<std::pair<std::int64_t, Millis>> deferred_reports;  ///< (run, closed at): see close_finished_runs
  /// WhatsApp holds (sql/012: advisor id → held until), loaded with the runs and merged from
  /// each poll: a held advisor's delivery goes to its next channel instead (skip_held_whatsapp).
  std::unordered_map<std::string, Millis> wa_holds;
  Millis holds_polled_at = 0;  ///< wall time of the latest poll asking for holds
  Millis writer_failing_since = 0;          ///< steady time, while writer_failing
  bool writer_failing = false;              ///< the ledger's writes are failing (as last seen)
  bool store_alert_fired = false;           ///< the direct store_unwritable alert is out
  std::unique_ptr<BatchWriter> writer;
  std::unique_ptr<AlertEngine> alert_engine;  ///< used on the writer thread only (the host store's, with host_mon)
  std::optional<HostMonitoring> host_mon;      ///< monitoring against this host's SQLite file (PostgreSQL ledger)
  store::RunReportBuilder ledger_reports;      ///< set: closed runs' reports stored by the ledger (StoreRunReport)
  std::unique_ptr<AlertNotifier> notifier;     ///< posts alert notifications from its own thread
  std::unique_ptr<HostStore> host_store;       ///< host_mon's thread, while run() runs
  bool last_report_failed = false;             ///< host_mon's last_closed_report failed last time (warned once)

  Impl(const Config& c, const Clock& k, channels::Transport& t, store::LedgerFactory f, StopToken st,
       std::shared_ptr<spdlog::logger> l)
      : cfg(c), clock(k), stop(st), open_ledger(std::move(f)), transport(t), log(std::move(l)) {}
  /// A run() that threw leaves the host store's thread running jobs that use this object's
  /// members: it stops before any of them is destroyed.
  ~Impl() {
    if (host_store) host_store->stop();
  }

  /// Hands an event to the scheduler thread. A response does not wake it when its own timeout
  /// wakes it within kResponseWakeSlack anyway: while sends are paced that is nearly always
  /// (the next send is under a millisecond away), and a wake-up per response was a futex wake
  /// on the transport's thread and a context switch and loop pass on the scheduler's, for each
  /// request. Every other event (claims committed, operator changes, adopted runs) wakes it at
  /// once, since a claimed row may be due already.
  void push_event(Event e) {
    bool wake = true;
    {
      std::lock_guard lk(ev_mu);
      if (e.kind == Event::Kind::response) wake = ev_window.worth_waking(kResponseWakeSlack);
      events.push_back(std::move(e));
    }
    if (wake) ev_cv.notify_one();
  }

  /// Deliveries waiting on each sender (claimed or due): the pool's load measure.
  std::function<std::size_t(std::size_t)> queued() const {
    return [this](std::size_t i) { return sched.queued_on(i); };
  }
  int pick_sender(Channel ch, int preferred, int exclude = -1) const {
    return senders.pick(ch, preferred, steady, queued(), exclude);
  }
  std::pair<int, int> next_usable_channel(const Item& it) const {
    return senders.next_usable_channel(it.reach(), steady, queued());
  }

  std::uint32_t add_content(ContentRow c) {
    auto it = content_index.find(c.content_id);
    if (it != content_index.end()) {
      contents[it->second] = std::move(c);  // a reload: the row may have been withdrawn meanwhile
      return it->second;
    }
    auto idx = static_cast<std::uint32_t>(contents.size());
    content_index[c.content_id] = idx;
    contents.push_back(std::move(c));
    return idx;
  }

  std::uint8_t language_index(const std::string& lang) {
    for (std::size_t i = 0; i < languages.size(); ++i) {
      if (languages[i] == lang) return static_cast<std::uint8_t>(i);
    }
    if (languages.size() == 255) return 0;  // validation allows far fewer languages than this
    languages.push_back(lang);
    return static_cast<std::uint8_t>(languages.size() - 1);
  }

  /// An in-memory item from a row that is not final.
  Item make_item(store::DeliveryRow&& d, std::uint32_t run_idx, Millis now) {
    Item it;
    it.delivery_id = d.delivery_id;
    it.planned_at = d.planned_at;
    it.deadline = d.deadline_at;
    // A resend or replay long after the deadline gets a fresh drain period from the resend
    // (the SLA still counts it late: deadline_at is unchanged).
    it.give_up_after = std::max(d.deadline_at, d.resent_at.value_or(0) + cfg.window.deadline_ms) +
                       cfg.dispatch.drain_after_deadline_ms;
    it.first_sent_at = d.first_sent_at.value_or(0);
    it.advisor_id = strings.add(d.advisor_id);
    it.name = strings.add(d.advisor_name);
    it.language = language_index(d.language);
    it.phone = strings.add(d.phone);
    it.email = strings.add(d.email);
    it.run = run_idx;
    it.urgent = run_idx < runs.size() && runs[run_idx].row.kind == "urgent";  // sql/014: before routine rows
    auto ci = content_index.find(d.content_id);
    it.content = ci == content_index.end() ? 0 : ci->second;
    it.emergency = d.source == "emergency";
    for (const auto& c : split_list(d.channels, '|')) {
      if (auto ch = channel_from_string(c); ch && it.nchans < it.chans.size()) it.chans[it.nchans++] = *ch;
    }
    if (it.nchans == 0) it.chans[it.nchans++] = channel_from_string(d.channel).value_or(Channel::whatsapp);
    it.chan_idx = static_cast<std::uint8_t>(std::min<int>(d.channel_index, it.nchans - 1));
    it.sender = static_cast<std::int16_t>(senders.index_of(d.sender));
    it.tier_rank = static_cast<std::uint8_t>(std::clamp(d.tier_rank, 0, 255));
    it.attempts = static_cast<std::uint16_t>(d.attempts);
    it.possible_dup = d.possible_duplicate;
    it.state = d.state;
    switch (d.state) {
      case DeliveryState::planned: it.due = d.planned_at; break;
      case DeliveryState::retry_wait: it.due = d.next_attempt_at.value_or(now); break;
      case DeliveryState::uncertain: {
        // Wait for a status event naming it (reconciliation), but never past the point
        // where a resend could still land before the deadline.
        Millis slack = std::max<Millis>(0, d.deadline_at - cfg.retry.expected_latency_ms - now);
        it.due = now + std::min(cfg.dispatch.uncertain_grace_ms, slack);
        it.possible_dup = true;
        break;
      }
      default: it.due = now; break;
    }
    return it;
  }

  /// Swaps the item's content for an emergency-pool item valid on its day: of the advisor's
  /// language, else of delivery.emergency_language (domain/emergency.hpp: no advisor is skipped
  /// because their content failed). Persists the change (delivery and
  /// assignment, source `emergency`). False when there is none to use.
  bool substitute_emergency(Item& it, const std::string& why, Millis now) {
    const std::string& date = runs[it.run].row.date;
    std::vector<EmergencyCandidate> candidates(contents.size());
    for (std::uint32_t i = 1; i < contents.size(); ++i) {
      const auto& c = contents[i];
      candidates[i] = {c.language, c.emergency && usable_on(c, date) && i != it.content};
    }
    auto pick = pick_emergency(candidates, languages[it.language], cfg.emergency_language,
                               static_cast<std::uint64_t>(it.delivery_id));
    if (!pick) return false;
    const auto chosen = static_cast<std::uint32_t>(pick->index);
    log->warn("delivery {}: {}; sending emergency content {} ({}) instead of {}", it.delivery_id, why,
              contents[chosen].content_id, pick->language, contents[it.content].content_id);
    it.content = chosen;
    it.emergency = true;
    ++summary.emergency_substitutions;
    writer->enqueue(store::ledger_op::Substitute{it.delivery_id, contents[chosen].content_id, why, now});
    return true;
  }

  /// THE content guard: every path to a provider (first send, retry, channel fallback, an
  /// emergency item chosen earlier, a resend or replay) passes here right before send_one, and
  /// loading or reloading a row runs it too. An item withdrawn or not valid on the delivery's
  /// day is never sent: it is replaced by an emergency item (substitute_emergency), else the
  /// delivery is held (made final, unsent). True when the item may be sent now.
  bool content_guard(std::uint32_t idx, Millis now) {
    Item& it = sched.items[idx];
    const auto& c = contents[it.content];
    const std::string& date = runs[it.run].row.date;
    auto why = content_pull_problem(c.content_id, c.withdrawn, c.valid_from, c.valid_until, date);
    if (!why) return true;
    if (substitute_emergency(it, *why, now)) return true;
    hold(idx, now, held_reason(*why, languages[it.language], cfg.emergency_language));
    return false;
  }

  /// Makes the delivery final without a send: state `dead` with last_error "held: …" (eligible,
  /// not on time; `daybreak dead list --error held`; the content_held alert names it). A row we
  /// have claimed is updated under our claim; any other is claimed and updated in one writer op.
  void hold(std::uint32_t idx, Millis now, const std::string& reason) {
    ++summary.held;
    mark_dead(idx, now, reason);
    log->error("delivery {} {}", sched.items[idx].delivery_id, reason);
  }

  /// Makes a delivery final `dead` with `why` (given up, or held), in memory and in the ledger:
  /// a row this process holds `sending` is updated as it is; any other is claimed first in the
  /// same operation, since only rows held `sending` can be moved by DeliveryUpdate.
  void mark_dead(std::uint32_t idx, Millis now, const std::string& why) {
    Item& it = sched.items[idx];
    const bool claimed_by_us = it.state == DeliveryState::sending;
    it.state = DeliveryState::dead;
    ++it.gen;
    finish(idx);
    ++summary.dead;
    store::DeliveryUpdateParams p;
    p.delivery_id = it.delivery_id;
    p.state = DeliveryState::dead;
    p.channel = std::string(to_string(it.chans[it.chan_idx]));
    p.channel_index = it.chan_idx;
    p.sender = it.sender >= 0 ? senders[it.sender].cfg->id : "";
    p.attempts = it.attempts;
    p.last_error = why;
    p.possible_duplicate = it.possible_dup;
    p.now = now;
    writer->enqueue(store::ledger_op::Outcome{std::move(p), !claimed_by_us, now + cfg.dispatch.lease_ms});
  }

  void load(const std::vector<std::int64_t>& run_ids) {
    auto ledger = open_ledger();
    owner = ledger->owner();
    Millis now = clock.now();
    steady = clock.steady_ms();
    steps.observe(now, steady);
    senders = SenderPool(cfg, steady);
    sched = SendSchedule(senders.size());
    // Changes noted from here on are replayed by the poll; earlier ones are in the rows below.
    change_seq = ledger->change_mark();
    wa_holds = ledger->load_whatsapp_holds(now);
    holds_polled_at = now;
    contents.push_back({});  // index 0: "unknown content", never chosen for substitution
    for (auto& c : ledger->load_emergency_content()) add_content(std::move(c));
    std::vector<store::Run> rows;
    {
      // Sized once: a vector doubling its way to a million items would hold 1.5x for a moment.
      std::size_t expected = 0;
      for (auto run_id : run_ids) {
        if (auto row = ledger->load_run(run_id)) {
          expected += static_cast<std::size_t>(std::max<std::int64_t>(0, row->planned_count));
          rows.push_back(std::move(*row));
        }
      }
      sched.items.reserve(expected);
    }
    for (auto& row : rows) {
      add_run(*ledger, std::move(row), now, [&](Item&& it) { sched.items.push_back(std::move(it)); });
    }
    sched.finish_load([&](std::uint32_t i) { return content_guard(i, now); });  // held: final, never queued
    // The rows read above were freed; hand that memory back (peak RSS is measured: docs/performance.md).
    ::malloc_trim(0);
  }

  /// One run's rows into memory (a dispatch's start, or an adopted urgent run): a dead owner's
  /// `sending` rows become uncertain, the run's content is read, final rows are counted and the
  /// others handed to `sink` as items.
  void add_run(store::DispatchLedger& ledger, store::Run row, Millis now, const std::function<void(Item&&)>& sink) {
    {
      const auto run_id = row.run_id;
      RunState rs;
      rs.row = std::move(row);
      auto run_idx = static_cast<std::uint32_t>(runs.size());
      // Rows a dead owner left `sending` may have reached the provider: uncertain (settled at
      // once when the provider's statuses already name them).
      const auto rec = ledger.reconcile_crashed(run_id, now);
      if (rec.reconciled > 0) {
        log->info("run {}: {} uncertain deliveries settled by status callbacks that arrived meanwhile", run_id,
                  rec.reconciled);
        summary.reconciled += rec.reconciled;
      }
      if (rec.uncertain > 0) {
        log->warn("run {}: {} deliveries were mid-send when the previous dispatch died; they are uncertain and wait {} ms before a resend",
                  run_id, rec.uncertain, cfg.dispatch.uncertain_grace_ms);
      }
      summary.uncertain_found += rec.uncertain;
      for (auto& c : ledger.load_run_content(run_id)) {
        if (!content_index.count(c.content_id)) add_content(std::move(c));
      }
      runs.push_back(std::move(rs));
      auto& rsr = runs.back();
      ledger.for_each_delivery(run_id, [&](store::DeliveryRow&& d) {
        ++rsr.total;
        ++summary.deliveries;
        if (is_final_state(d.state)) {
          {
            auto ch = channel_from_string(d.channel).value_or(Channel::whatsapp);
            rsr.pre_final.push_back({d.state, static_cast<std::uint8_t>(ch),
                                     static_cast<std::uint8_t>(std::clamp(d.tier_rank, 0, 255)),
                                     static_cast<std::int16_t>(senders.index_of(d.sender)), d.planned_at,
                                     d.deadline_at, d.first_sent_at.value_or(0), d.accepted_at.value_or(0)});
          }
          if (is_accepted_state(d.state)) {
            ++rsr.pre_accepted;
            if (d.accepted_at && *d.accepted_at <= d.deadline_at) ++rsr.pre_on_time;
          } else if (d.state == DeliveryState::dead) {
            ++rsr.pre_dead;
          } else {
            ++rsr.pre_cancelled;
          }
          return;
        }
        ++rsr.remaining;
        sink(make_item(std::move(d), run_idx, now));
      });
    }
  }

  /// Looks for urgent runs created while this dispatch runs (`daybreak send-now`) and leases
  /// them (writer thread, one small query); the scheduler loads them when the answer comes
  /// (load_adopted). Not while stopping, after a lost lease, or once every run is closed (the
  /// dispatch is about to exit; the run is then another dispatch's: send-now starts one).
  void adopt_urgent(Millis now) {
    if (adopt_pending || releasing || lease_lost || stop.stage() > 0) return;
    if (steady - last_adopt_steady < kAdoptIntervalMs && last_adopt_steady != 0) return;
    if (std::all_of(runs.begin(), runs.end(), [](const RunState& r) { return r.closed; })) return;
    last_adopt_steady = steady;
    adopt_pending = true;
    std::vector<std::int64_t> known;
    for (const auto& rs : runs) known.push_back(rs.row.run_id);
    writer->enqueue(store::ledger_op::AdoptUrgent{std::move(known), now - cfg.dispatch.drain_after_deadline_ms,
                                                  now + kAdoptLookaheadMs, now, cfg.dispatch.lease_ms},
                    [this](bool committed, store::LedgerResult&& r) {
                      Event ev;
                      ev.kind = Event::Kind::adopted;
                      if (auto* a = std::get_if<store::AdoptedRuns>(&r); committed && a) ev.adopted = std::move(a->runs);
                      push_event(std::move(ev));
                    });
  }

  /// Scheduler side of adopt_urgent: each leased run's rows join the schedule at once (an
  /// urgent run's rows go first on their sender: EEntry). Stopping meanwhile: the leases go back.
  void load_adopted(Event& ev) {
    adopt_pending = false;
    if (ev.adopted.empty()) return;
    if (releasing || lease_lost || stop.stage() > 0) {
      for (const auto& r : ev.adopted) writer->enqueue(store::ledger_op::ReleaseLease{r.run_id});
      return;
    }
    const Millis now = clock.now();
    auto ledger = open_ledger();
    for (auto& row : ev.adopted) {
      const auto run_id = row.run_id;
      const auto first = sched.items.size();
      log->info("run {} ({} run, {} deliveries, deadline {}) created while dispatching: taken and sending on the same senders",
                run_id, row.kind, row.planned_count, format_instant(row.deadline_at, cfg.default_timezone));
      add_run(*ledger, std::move(row), now, [&](Item&& it) { sched.add(std::move(it)); });
      for (auto i = static_cast<std::uint32_t>(first); i < sched.items.size(); ++i) {
        if (content_guard(i, now)) sched.queue(i);
      }
      summary.runs_adopted.push_back(run_id);
    }
    scoped.refresh();  // a pause already set on an adopted run applies to it too
  }

  // ---- writer operations -------------------------------------------------------------

  void write_outcome(const Item& it, Millis sent_at, Millis now, const std::optional<std::string>& pmid,
                     const std::optional<std::string>& err) {
    store::DeliveryUpdateParams p;
    p.delivery_id = it.delivery_id;
    p.state = it.state;
    p.channel = std::string(to_string(it.chans[it.chan_idx]));
    p.channel_index = it.chan_idx;
    p.sender = it.sender >= 0 ? senders[it.sender].cfg->id : "";
    p.attempts = it.attempts;
    if (it.state == DeliveryState::retry_wait) p.next_attempt_at = it.due;
    p.sent_at = sent_at;
    p.provider_message_id = pmid;
    if (is_accepted_state(it.state)) p.accepted_at = it.accepted_at;
    p.last_error = err;
    p.possible_duplicate = it.possible_dup;
    p.now = now;
    writer->enqueue(store::ledger_op::Outcome{std::move(p), false, 0});
  }

  // ---- one run's or one sender's pause (`daybreak pause --run ID | --sender ID`) ----------
  // The heartbeat reads the switches (writer thread) and offers them; the scheduler applies them
  // at the top of each loop. A paused run's unclaimed rows stay unclaimed and its claimed rows go
  // back to their sender's claimed queue a second at a time; a paused sender is held paused
  // (paused_until, steady time, renewed while the switch is on), so the pool picks the channel's
  // other senders for new claims and the rows already claimed on it wait. Nothing is released:
  // every row stays this dispatch's and goes out after the resume.

  [[nodiscard]] bool run_held(const Item& it) const { return it.run < run_paused.size() && run_paused[it.run] != 0; }
  [[nodiscard]] bool sender_held(int s) const {
    return s >= 0 && static_cast<std::size_t>(s) < sender_paused.size() && sender_paused[s] != 0;
  }

  void apply_scoped_pauses(Millis now) {
    if (auto c = scoped.take()) {
      run_paused.assign(runs.size(), 0);
      for (std::uint32_t r = 0; r < runs.size(); ++r) {
        if (std::find(c->paused_runs.begin(), c->paused_runs.end(), runs[r].row.run_id) != c->paused_runs.end()) run_paused[r] = 1;
      }
      std::vector<char> was = sender_paused;
      sender_paused.assign(senders.size(), 0);
      sender_op_until.resize(senders.size(), 0);
      for (std::size_t i = 0; i < senders.size(); ++i) {
        const auto& id = senders[i].cfg->id;
        if (std::find(c->paused_senders.begin(), c->paused_senders.end(), id) != c->paused_senders.end()) sender_paused[i] = 1;
        const bool before = i < was.size() && was[i] != 0;
        if (before != (sender_paused[i] != 0)) log->info("sender {}: {} by the operator", id, sender_paused[i] ? "paused" : "resumed");
        // A resume ends only the pause we set (not a rate-limit or credentials pause).
        if (before && !sender_paused[i] && senders[i].paused_until == sender_op_until[i]) senders[i].paused_until = steady;
      }
      for (std::uint32_t r = 0; r < runs.size(); ++r) {
        if (run_paused[r]) hold_eligible_of_run(r, now);
      }
    }
    for (std::size_t i = 0; i < sender_paused.size(); ++i) {
      if (!sender_paused[i] || senders[i].paused_until > steady + 500) continue;
      senders[i].paused_until = sender_op_until[i] = steady + 1000;
    }
  }

  /// Rows of run `r` already due on a sender go back to its claimed queue for a second.
  void hold_eligible_of_run(std::uint32_t r, Millis now) {
    for (std::size_t s = 0; s < senders.size(); ++s) {
      auto& eq = sched.eligible[s];
      std::vector<EEntry> keep;
      while (!eq.empty()) {
        auto e = eq.top();
        eq.pop();
        const Item& it = sched.items[e.idx];
        if (it.run == r) {
          sched.claimed[s].push({now + 1000, it.tier_rank, e.idx, it.gen});
        } else {
          keep.push_back(e);
        }
      }
      for (auto& e : keep) eq.push(e);
    }
  }

  // ---- the loop ----------------------------------------------------------------------

  void claim_due(Millis now) {
    if (paused_all || stop.stage() > 0 || lease_lost) return;
    // Back-pressure: a writer that has fallen far behind the sends (a slow disk, a database
    // server far away) gets no new claims until it catches up; the rows already claimed are
    // still sent. Otherwise outcomes pile up in memory, and a heartbeat can wait behind them
    // long enough for the lease to lapse while this process is still sending.
    if (writer->backlog() >= kClaimWriterBacklogMax) {
      if (!claims_held_for_writer) log->warn("the ledger writer is {} operations behind: no new claims until it catches up",
                                             writer->backlog());
      claims_held_for_writer = true;
      return;
    }
    claims_held_for_writer = false;
    // Bound the claimed-but-unsent pipeline: a claim is a promise to send soon.
    const std::size_t max_batch = 20000;
    std::vector<std::uint32_t> batch;
    std::vector<QEntry> held;
    while (!sched.waiting.empty() && sched.waiting.top().due <= now + cfg.dispatch.claim_lead_ms && batch.size() < max_batch &&
           claims_pending < 50000) {
      QEntry e = sched.waiting.top();
      sched.waiting.pop();
      Item& it = sched.items[e.idx];
      if (e.gen != it.gen || is_final_state(it.state)) continue;
      if (skip_held_whatsapp(e, now, held)) continue;
      Channel ch = it.chans[it.chan_idx];
      if (paused_channel[static_cast<int>(ch)] || run_held(it)) {
        held.push_back({now + 1000, e.tier, e.idx, e.gen});
        continue;
      }
      // Judged without the time a forward wall-clock step skipped: a row is never given up
      // unattempted because the clock jumped past its drain period (docs/reliability.md).
      if (now - skipped_ms > it.give_up_after) {
        give_up(e.idx, now, "gave up: no acceptance by deadline + drain period");
        continue;
      }
      int s = pick_sender(ch, it.sender);
      if (s < 0) {
        if (senders.has_channel(ch)) {
          // Every sender of the channel has an open breaker: move to the next channel now,
          // while it can still land before the deadline, or wait for the first half-open.
          auto [nc, ns] = next_usable_channel(it);
          if (nc >= 0) {
            log->debug("delivery {}: every {} sender is open; moving to {}", it.delivery_id, to_string(ch),
                       to_string(it.chans[nc]));
            it.chan_idx = static_cast<std::uint8_t>(nc);
            it.attempts_on_channel = 0;
            it.sender = static_cast<std::int16_t>(ns);
            batch.push_back(e.idx);
          } else {
            held.push_back({senders.channel_reopens_at(ch, now, steady), e.tier, e.idx, e.gen});
          }
          continue;
        }
        int nc = senders.next_channel(it.reach());
        if (nc >= 0) {
          it.chan_idx = static_cast<std::uint8_t>(nc);
          it.attempts_on_channel = 0;
          held.push_back({now, e.tier, e.idx, e.gen});
        } else {
          give_up(e.idx, now, "no sender configured for channel " + std::string(to_string(ch)));
        }
        continue;
      }
      if (sender_held(s)) {  // the channel's only usable sender is paused by the operator
        held.push_back({now + 1000, e.tier, e.idx, e.gen});
        continue;
      }
      it.sender = static_cast<std::int16_t>(s);
      it.claiming = true;
      batch.push_back(e.idx);
    }
    for (auto& h : held) sched.waiting.push(h);
    if (batch.empty()) return;
    enqueue_claims(std::move(batch), now);
  }

  /// One writer operation claiming `batch` (their `claiming` set); on_claimed gets the results
  /// once they are committed, or on_claim_dropped when the writer dropped the operation.
  void enqueue_claims(std::vector<std::uint32_t> batch, Millis now) {
    claims_pending += batch.size();
    store::ledger_op::Claim op;
    op.ids.reserve(batch.size());
    for (auto idx : batch) op.ids.push_back(sched.items[idx].delivery_id);
    op.now = now;
    op.claim_until = now + cfg.dispatch.lease_ms;
    writer->enqueue(std::move(op), [this, batch = std::move(batch)](bool committed, store::LedgerResult&& r) {
      Event ev;
      ev.kind = Event::Kind::claimed;
      auto* results = std::get_if<std::vector<store::ClaimResult>>(&r);
      if (committed && results && results->size() == batch.size()) {
        for (std::size_t i = 0; i < batch.size(); ++i) {
          ev.claims.push_back({batch[i], (*results)[i].ok, std::move((*results)[i].now_row)});
        }
      } else {
        ev.claim_dropped = true;
        for (auto idx : batch) ev.claims.push_back({idx, false, std::nullopt});
      }
      push_event(std::move(ev));
    });
  }

  /// The writer dropped a claim operation (it failed on every attempt): none of its rows is
  /// claimed. Each row of a larger batch is claimed again on its own, so one row that cannot be
  /// written does not hold the others back; a row that cannot be claimed even alone is given up
  /// (dead if that write succeeds, else its run is not closed and goes to the next dispatch).
  void on_claim_dropped(const Event& ev) {
    claims_pending -= std::min(claims_pending, ev.claims.size());
    const Millis now = clock.now();
    for (const auto& c : ev.claims) {
      Item& it = sched.items[c.idx];
      it.claiming = false;
      if (is_final_state(it.state) || releasing || lease_lost) continue;  // not ours to send any more
      if (ev.claims.size() == 1) {
        give_up(c.idx, now, "gave up: its claim cannot be written to the ledger");
        continue;
      }
      it.claiming = true;
      enqueue_claims({c.idx}, now);
    }
  }

  void give_up(std::uint32_t idx, Millis now, const std::string& why) {
    mark_dead(idx, now, why);
    log->warn("delivery {} dead: {}", sched.items[idx].delivery_id, why);
  }

  void finish(std::uint32_t idx) {
    auto& rs = runs[sched.items[idx].run];
    if (rs.remaining > 0) --rs.remaining;
  }

  void on_claimed(const Event& ev) {
    if (ev.claim_dropped) {
      on_claim_dropped(ev);
      return;
    }
    claims_pending -= std::min(claims_pending, ev.claims.size());
    std::vector<std::int64_t> late_claims;
    for (const auto& c : ev.claims) {
      auto idx = c.idx;
      Item& it = sched.items[idx];
      it.claiming = false;
      if (!c.ok) {
        // The row moved under us: an operator cancelled it, or a status event settled an
        // uncertain send (reconciliation). Either way it is no longer ours to send.
        settle_from_row(idx, c.now_row);
        continue;
      }
      it.state = DeliveryState::sending;
      if (releasing) {
        // Committed after a graceful stop began: hand it straight back, never send it.
        late_claims.push_back(it.delivery_id);
        continue;
      }
      sched.claimed[it.sender].push({it.due, it.tier_rank, idx, it.gen});
    }
    if (!late_claims.empty()) release_ids(std::move(late_claims), clock.now());
  }

  /// A claim failed because the row moved: take its state as the store has it.
  void settle_from_row(std::uint32_t idx, const std::optional<store::DeliveryStateRow>& row) {
    Item& it = sched.items[idx];
    if (is_final_state(it.state)) return;
    if (row && !is_final_state(row->state)) {
      if (row->state == DeliveryState::sending && row->claim_owner == owner) {
        // Our own earlier claim of it (a re-queued copy lost the race): the first one sends it.
        return;
      }
      // Not final and not ours: this process no longer owns the run (a claim only succeeds
      // while it does) or another process holds the row. Leave it to its owner: it is not
      // cancelled, not counted as finished, and this process never closes its run.
      if (!foreign_rows++) {
        log->error("delivery {} could not be claimed: it is {} {}; this dispatch has lost its run (lease) and sends "
                   "nothing more of it",
                   it.delivery_id, to_string(row->state), row->claim_owner ? "under " + *row->claim_owner : "");
      }
      ++it.gen;
      return;
    }
    ++it.gen;
    finish(idx);
    if (row && is_accepted_state(row->state)) {
      it.state = row->state;
      it.accepted_at = row->accepted_at.value_or(clock.now());
      ++summary.accepted;
      if (it.accepted_at <= it.deadline) ++summary.on_time;
      if (it.possible_dup) ++summary.reconciled;
      log->info("delivery {} was settled by a status event ({}); not resending", it.delivery_id,
                row->provider_message_id.value_or("?"));
    } else if (row && row->state == DeliveryState::dead) {
      it.state = DeliveryState::dead;
      ++summary.dead;
    } else {
      it.state = DeliveryState::cancelled;
    }
  }

  /// Items queued on a sender whose breaker stopped letting traffic through go to another
  /// sender of the channel, else to the advisor's next channel that can send; else they wait.
  /// `shun_self`: even a healthy-looking breaker of `s` is not a destination (an email sender
  /// paused after a certificate failure, whose breaker turns half-open long before its pause ends).
  void reroute_from(std::size_t s, bool shun_self = false) {
    auto& eq = sched.eligible[s];
    std::vector<EEntry> keep;
    while (!eq.empty()) {
      auto e = eq.top();
      eq.pop();
      Item& it = sched.items[e.idx];
      Channel ch = it.chans[it.chan_idx];
      int alt = pick_sender(ch, -1, shun_self ? static_cast<int>(s) : -1);
      if (alt < 0) {
        auto [nc, ns] = next_usable_channel(it);
        if (nc >= 0) {
          it.chan_idx = static_cast<std::uint8_t>(nc);
          it.attempts_on_channel = 0;
          alt = ns;
        }
      }
      if (alt < 0 || static_cast<std::size_t>(alt) == s) {
        keep.push_back(e);
        continue;
      }
      it.sender = static_cast<std::int16_t>(alt);
      sched.eligible[alt].push(e);
    }
    for (auto& e : keep) eq.push(e);
  }

  /// Rows claimed for sender `s` that wait in its queue while it cannot send (paused, breaker
  /// open) and have nowhere else to go still end at deadline + drain, as rows waiting for their
  /// next attempt do when they come due: a sender paused for minutes between single probes (a
  /// certificate that does not verify) would otherwise hold them, and their run open, until each
  /// had had its turn.
  void expire_queued(std::size_t s, Millis now) {
    auto& eq = sched.eligible[s];
    std::vector<EEntry> keep;
    keep.reserve(eq.size());
    while (!eq.empty()) {
      auto e = eq.top();
      eq.pop();
      const Item& it = sched.items[e.idx];
      if (it.state == DeliveryState::sending && now - skipped_ms > it.give_up_after) {
        give_up(e.idx, now, "gave up: no acceptance by deadline + drain period (its sender could not send)");
        continue;
      }
      keep.push_back(e);
    }
    for (auto& e : keep) eq.push(e);
  }

  void send_due(Millis now) {
    if (lease_lost || stop.stage() >= 2) return;
    std::vector<QEntry> run_wait;  // claimed rows of a paused run: back to the claimed queue for a second
    for (std::size_t s = 0; s < senders.size(); ++s) {
      auto& cq = sched.claimed[s];
      auto& eq = sched.eligible[s];
      while (!cq.empty() && cq.top().due <= now) {
        auto e = cq.top();
        cq.pop();
        const Item& it = sched.items[e.idx];
        if (e.gen != it.gen || it.state != DeliveryState::sending) continue;  // cancelled meanwhile
        if (run_held(it)) {
          run_wait.push_back({now + 1000, e.tier, e.idx, e.gen});
          continue;
        }
        eq.push({it.deadline, it.tier_rank, it.planned_at, it.attempts > 0, e.idx, it.urgent});
      }
      for (auto& w : run_wait) cq.push(w);
      run_wait.clear();
      auto& st = senders[s];
      if (!eq.empty() && !st.breaker.usable(steady)) {
        reroute_from(s);
      } else if (!eq.empty() && st.certificate_failed && st.paused_until > steady) {
        reroute_from(s, true);
      }
      if (!eq.empty() && (st.paused_until > steady || !st.breaker.usable(steady)) && steady - st.queue_swept_at >= 1000) {
        st.queue_swept_at = steady;
        expire_queued(s, now);
      }
      while (!eq.empty() && in_flight < cfg.dispatch.max_in_flight && !st.at_concurrency_limit() && st.paused_until <= steady &&
             st.breaker.usable(steady) && st.bucket.try_take(steady)) {
        auto e = eq.top();
        eq.pop();
        if (sched.items[e.idx].state != DeliveryState::sending) continue;  // cancelled meanwhile
        if (!content_guard(e.idx, now)) continue;                     // pulled or expired: held
        st.breaker.allow(steady);
        send_one(e.idx, static_cast<int>(s), now);
      }
    }
  }

  void send_one(std::uint32_t idx, int s, Millis now) {
    Item& it = sched.items[idx];
    const ContentRow& c = contents[it.content];
    channels::Message m;
    m.delivery_id = it.delivery_id;
    m.attempt = it.attempts + 1;
    m.now = now;
    Channel ch = it.chans[it.chan_idx];
    m.to = strings.get(ch == Channel::whatsapp ? it.phone : ch == Channel::email ? it.email : it.advisor_id);
    m.advisor_id = strings.get(it.advisor_id);
    m.advisor_name = strings.get(it.name);
    m.language = languages[it.language];
    m.content_id = c.content_id;
    m.content_language = c.language;
    m.title = c.title;
    m.body = c.body;
    m.media_url = c.media_url;
    auto req = senders[s].adapter->build(m);
    ++it.attempts;
    ++it.attempts_on_channel;
    const bool first = it.first_sent_at == 0;
    if (first) it.first_sent_at = now;
    ++in_flight;
    ++senders[s].in_flight;
    ++senders[s].sent;
    ++summary.sent_requests;
    std::uint32_t gen = it.gen;
    if (first) note_first_send_lag(it);  // last, so the request's building counts in the lag
    transport.submit(std::move(req), [this, idx, gen, s, now](channels::Response r) {
      Event ev;
      ev.kind = Event::Kind::response;
      ev.idx = idx;
      ev.gen = gen;
      ev.sender = s;
      ev.started_at = now;
      ev.response = std::move(r);
      push_event(std::move(ev));
    });
  }

  /// Records lag_us for a delivery's first request, about to be handed to the transport: from
  /// its planned instant (planned_at, where the ledger's lag_ms starts: first_sent_at −
  /// planned_at, domain/sla.cpp) to now, in microseconds. "Now" is the loop pass's wall-clock
  /// reading plus the steady time since it (tick_wall_us + steady_us() − tick_steady_us), not a
  /// fresh wall-clock reading:
  /// - planned_at is a wall-clock instant, so the end point must be on the wall clock too; the
  ///   pass's wall reading is the one the ledger stamps first_sent_at with (`now`, in ms), so
  ///   lag_us differs from the ledger's lag by what a millisecond hides plus the time this pass
  ///   spent before this send (claiming, building earlier requests): what lag_ms cannot see.
  /// - the time since the pass began is measured on the steady clock, so a wall-clock step in
  ///   the middle of a pass (NTP, `date -s`) cannot show up as minutes of lag or a negative one;
  ///   the next pass's pair re-anchors on the stepped wall clock, as the ledger's `now` does.
  /// - one steady-clock read (a vDSO call, tens of ns) per first send; the histogram is the
  ///   run's own, touched only here on the scheduler thread: no lock, no allocation.
  void note_first_send_lag(const Item& it) {
    const Micros handed_at = tick_wall_us + (clock.steady_us() - tick_steady_us);
    runs[it.run].lag_us.record(handed_at - it.planned_at * 1000);
  }

  /// Feeds a sender's breaker and logs its transitions (a breaker opening is an operator's concern).
  void note_breaker(std::size_t i, bool failure) {
    auto changed = senders.record(i, failure, steady);
    if (!changed) return;
    const auto& st = senders[i];
    if (*changed == BreakerState::open) {
      ++summary.breaker_opened;
      log->error("sender {}: breaker open (failure ratio {:.0f}% over the window); rerouting its traffic", st.cfg->id,
                 100.0 * st.breaker.failure_ratio(steady));
    } else if (*changed == BreakerState::closed) {
      log->warn("sender {}: breaker closed again; traffic returns", st.cfg->id);
    }
  }

  std::set<std::string> unknown_codes_logged;  ///< unknown provider codes already logged (once each)

  /// A number- or account-level block from the provider (docs/whatsapp-errors.md): the number's
  /// breaker, or every breaker of its account, opens for the long pause the adapter named.
  void block_sender(std::size_t i, const channels::SendResult& res) {
    const std::string reason = res.error_code + " " + res.error_detail;
    auto fresh = senders.block(i, res.scope, res.pause_ms, reason, steady);
    if (fresh.empty()) return;
    const auto& st = senders[i];
    summary.breaker_opened += static_cast<std::int64_t>(fresh.size());
    if (res.scope == ErrorScope::account) {
      ++summary.accounts_stopped;
      std::string ids;
      for (auto k : fresh) ids += (ids.empty() ? "" : ", ") + senders[k].cfg->id;
      log->critical("account {}: blocked by the provider ({}); every sender of the account stopped for {} s: {}{}",
                    st.account, reason, res.pause_ms / 1000, ids, res.trace_id.empty() ? "" : " (fbtrace_id " + res.trace_id + ")");
    } else {
      summary.numbers_paused += static_cast<std::int64_t>(fresh.size());
      log->error("sender {}: number blocked by the provider ({}); breaker open for {} s, its traffic moves to the other "
                 "{} senders{}",
                 st.cfg->id, reason, res.pause_ms / 1000, to_string(st.cfg->channel),
                 res.trace_id.empty() ? "" : " (fbtrace_id " + res.trace_id + ")");
    }
  }

  void on_response(Event& ev) {
    Item& it = sched.items[ev.idx];
    --in_flight;
    auto& st = senders[ev.sender];
    --st.in_flight;
    Millis now = clock.now();
    steady = clock.steady_ms();
    auto res = st.adapter->classify(ev.response);
    // A provider block opens the breaker itself (block_sender, below), for its long pause.
    if (res.accepted || res.kind != FailureKind::sender_blocked)
      note_breaker(static_cast<std::size_t>(ev.sender), !res.accepted && is_sender_failure(res.kind));
    {
      auto& rs = runs[it.run];
      if (rs.requests.empty()) rs.requests.assign(senders.size() * RunState::kOutcomes, 0);
      ++rs.requests[static_cast<std::size_t>(ev.sender) * RunState::kOutcomes +
                    (res.accepted ? 0 : 1 + static_cast<std::size_t>(res.kind))];
      rs.latency.observe(static_cast<double>(ev.response.latency_ms) / 1000.0);
      if (!res.accepted && res.kind == FailureKind::credentials) st.credentials_failed = true;
      if (!res.accepted && res.certificate_failure) st.certificate_failed = true;
      if (res.accepted) st.credentials_failed = st.certificate_failed = false;
    }
    store::AttemptInsertParams a;
    a.delivery_id = it.delivery_id;
    a.attempt_no = it.attempts;
    a.channel = std::string(to_string(it.chans[it.chan_idx]));
    a.sender = st.cfg->id;
    a.started_at = ev.started_at;
    a.finished_at = now;
    a.outcome = res.accepted ? "accepted" : std::string(failure_name(res.kind));
    a.error_code = res.error_code;
    a.error_detail = res.error_detail;
    a.provider_message_id = res.provider_message_id;
    a.latency_ms = ev.response.latency_ms;
    a.fbtrace_id = res.trace_id;
    a.held_for_quality = res.accepted && res.held_for_quality;
    if (!res.accepted && !res.error_code.empty() && it.chans[it.chan_idx] == Channel::whatsapp && ev.response.transport_ok)
      a.error_scope = res.unknown_code ? "unknown" : std::string(to_string(res.scope));
    writer->enqueue(store::ledger_op::Attempt{std::move(a)});
    if (res.accepted && res.held_for_quality) {
      ++summary.held_for_quality;
      log->info("delivery {}: accepted but held for quality assessment by the provider ({})", it.delivery_id,
                res.provider_message_id);
    }
    if (!res.accepted && res.unknown_code) {
      ++summary.unknown_error_codes;
      if (unknown_codes_logged.insert(res.error_code).second)
        log->warn("sender {}: unknown provider error code {} ({}); treated as retryable with bounded attempts "
                  "(docs/whatsapp-errors.md)", st.cfg->id, res.error_code, res.error_detail);
    }
    if (!res.accepted && res.kind == FailureKind::sender_blocked) block_sender(static_cast<std::size_t>(ev.sender), res);

    if (ev.gen != it.gen || is_final_state(it.state)) {
      // An operator cancelled it while the request was out: the cancel stands; the attempt
      // is in the history.
      log->info("delivery {}: response after an operator change ({}); the change stands", it.delivery_id,
                res.accepted ? "accepted" : res.error_code);
      return;
    }
    if (res.accepted) {
      it.state = DeliveryState::accepted;
      it.accepted_at = now;
      ++it.gen;
      finish(ev.idx);
      ++summary.accepted;
      if (now <= it.deadline) ++summary.on_time;
      if (it.possible_dup) ++summary.possible_duplicates;
      await_status(it, now);
      write_outcome(it, ev.started_at, now, res.provider_message_id, std::nullopt);
      return;
    }
    if (res.kind == FailureKind::sender_rate_limited) {
      st.paused_until = std::max(st.paused_until, steady + std::max<Millis>(res.retry_after_ms, 200));
    } else if (res.certificate_failure) {
      // Every message through this sender would fail the same way: pause it with its breaker
      // open (traffic moves to other senders or the next channel; certificate_failure alert)
      // rather than spend each delivery's retries on it. After each pause one message at a
      // time tests it again (SenderState::at_concurrency_limit).
      if (st.paused_until <= steady) {
        log->error("sender {}: the server's TLS certificate did not verify ({}); pausing it, breaker open", st.cfg->id,
                   res.error_detail);
      }
      st.paused_until = std::max(st.paused_until, steady + kCertificatePauseMs);
      if (st.breaker.state(steady) != BreakerState::open) {
        st.breaker.force_open(steady);
        if (auto changed = senders.record(static_cast<std::size_t>(ev.sender), true, steady);
            changed && *changed == BreakerState::open) {
          ++summary.breaker_opened;
        }
      }
    } else if (res.kind == FailureKind::credentials) {
      if (st.paused_until <= steady) log->error("sender {}: credentials rejected ({}); pausing it", st.cfg->id, res.error_detail);
      st.paused_until = std::max(st.paused_until, steady + 30000);
    }
    // A template/content error (docs/whatsapp-errors.md, scope template): emergency content at
    // once, no retry. An emergency item rejected so is the last resort already: no second swap.
    if (!res.accepted && res.scope == ErrorScope::template_ && !(it.emergency && contents[it.content].emergency) &&
        substitute_emergency(it, "template error " + res.error_code + " from the provider", now)) {
      // Same channel, at once: the provider rejected the content, not the advisor.
      ++it.gen;
      it.state = DeliveryState::retry_wait;
      it.due = now;
      sched.queue(ev.idx);
      write_outcome(it, ev.started_at, now, std::nullopt,
                    res.error_code + " " + res.error_detail + " (template error: emergency content substituted)");
      return;
    }
    if (res.kind == FailureKind::sender_blocked) {
      // The number (or its account) is restricted, not the message: another healthy sender of
      // the same channel takes it now, before any channel fallback.
      int alt = pick_sender(it.chans[it.chan_idx], -1, ev.sender);
      if (alt >= 0) {
        ++it.gen;
        it.state = DeliveryState::retry_wait;
        it.due = now;
        it.sender = static_cast<std::int16_t>(alt);
        sched.queue(ev.idx);
        write_outcome(it, ev.started_at, now, std::nullopt,
                      res.error_code + " " + res.error_detail + " (sender " + st.cfg->id + " blocked: moved to sender " +
                          senders[alt].cfg->id + ")");
        return;
      }
    }
    int nc = senders.next_channel(it.reach());
    // Exponential backoff protects a provider that is struggling. A sender whose recent answers
    // are almost all successes is not: a transient failure there is that message's bad luck, and
    // doubling its wait only builds a tail after the last first attempt (a 100,000 burst with 1%
    // transient failures drained at 0.87 of the ideal, one row waiting 1 + 2 + 4 s). Its retries
    // keep the first backoff's ceiling; once failures pass 10% of the breaker's window the
    // doubling is back.
    RetryPolicy policy = cfg.retry;
    if (res.kind == FailureKind::retryable && st.breaker.failure_ratio(steady) < 0.10)
      policy.max_backoff_ms = std::min(policy.max_backoff_ms, policy.base_ms);
    RetryDecision decision;
    if (res.certificate_failure) {
      // The sender, not this message, is broken: the attempt does not count against the
      // delivery's retries. It moves to the next channel, or to another sender of this one
      // (below), or waits for this sender's next probe; deadline + drain still ends it.
      if (it.attempts_on_channel > 0) --it.attempts_on_channel;
      // Waiting past deadline + drain only keeps the run open: the wait ends there at the latest,
      // and the row is given up when it comes due.
      decision = nc >= 0 ? RetryDecision{RetryDecision::next_channel, now, "certificate failure: next channel"}
                         : RetryDecision{RetryDecision::retry,
                                         std::min(now + std::max<Millis>(0, st.paused_until - steady),
                                                  it.give_up_after + skipped_ms + 1),
                                         "certificate failure: waits for the sender's certificate to verify"};
    } else {
      decision = decide_after_failure(policy, res.kind, it.attempts_on_channel, now, it.deadline, nc >= 0,
                                      res.retry_after_ms, splitmix64(static_cast<std::uint64_t>(it.delivery_id) * 131 + it.attempts));
    }
    if (decision.action == RetryDecision::retry && nc >= 0 && pick_sender(it.chans[it.chan_idx], -1) < 0) {
      // Every sender of this channel is open: waiting for one to recover gambles the deadline.
      decision = {RetryDecision::next_channel, now, decision.reason + "; every sender of the channel is open: next channel"};
    }
    std::string err = res.error_code + (res.error_detail.empty() ? "" : " " + res.error_detail);
    ++it.gen;
    switch (decision.action) {
      case RetryDecision::retry: {
        it.state = DeliveryState::retry_wait;
        it.due = decision.next_attempt_at;
        if (res.kind == FailureKind::uncertain) {
          // The request may have arrived: give the provider's status event a chance first.
          Millis slack = std::max<Millis>(0, it.deadline - cfg.retry.expected_latency_ms - now);
          it.due = std::max(it.due, now + std::min(cfg.dispatch.uncertain_grace_ms, slack));
          it.possible_dup = true;
        }
        if (is_sender_failure(res.kind)) {
          // The sender may be what is failing: retry through another healthy sender of the
          // channel when there is one, so a retry budget is not spent on one sick account
          // before its breaker has seen enough to open.
          int alt = pick_sender(it.chans[it.chan_idx], -1, ev.sender);
          if (alt >= 0 && senders[alt].paused_until <= steady) it.sender = static_cast<std::int16_t>(alt);
        }
        sched.queue(ev.idx);
        break;
      }
      case RetryDecision::next_channel: {
        it.state = DeliveryState::retry_wait;
        it.chan_idx = static_cast<std::uint8_t>(nc);
        it.attempts_on_channel = 0;
        it.sender = static_cast<std::int16_t>(std::max(0, pick_sender(it.chans[nc], -1)));
        it.due = now;
        if (res.kind == FailureKind::uncertain) it.possible_dup = true;
        sched.queue(ev.idx);
        log->debug("delivery {} moves to {}: {}", it.delivery_id, to_string(it.chans[nc]), decision.reason);
        break;
      }
      case RetryDecision::dead:
        it.state = DeliveryState::dead;
        finish(ev.idx);
        ++summary.dead;
        break;
    }
    write_outcome(it, ev.started_at, now, std::nullopt, err + " (" + decision.reason + ")");
  }

  /// A run's progress row (runs.progress, the heartbeat log line) from its live figures.
  nlohmann::json progress(const RunState& rs, const RunLive& live, Millis now) const {
    return {{"run_id", rs.row.run_id},
            {"at", now},
            {"total", rs.total},
            {"remaining", rs.remaining},
            {"accepted", live.accepted},
            {"on_time", live.on_time},
            {"late", live.late},
            {"dead", live.dead},
            {"sending", sending_count(live)},
            {"backlog", live.backlog},
            {"live_success_pct", live.live_success_pct},
            {"sla_so_far_pct", live.sla_so_far_pct},
            {"in_flight", in_flight},
            {"writer_backlog", writer->backlog()},
            {"writer_failing", writer->failing()},
            {"writer_dropped", writer->dropped()},
            {"breakers", breakers_json()}};
  }

  static std::uint64_t sending_count(const RunLive& live) {
    std::uint64_t n = 0;
    for (const auto& [k, v] : live.counts) {
      if (k.state == "sending") n += v;
    }
    return n;
  }

  /// The live figures of every run from memory (engine/live.hpp), in one pass over the items
  /// with the rules of add_delivery_figures: the (state, channel, tier, sender) counts are
  /// gathered under small integer keys first, so a million deliveries cost a few milliseconds
  /// a second, not a million map lookups with strings. Progress rows are derived from it.
  LiveSnapshot snapshot(Millis now) const {
    LiveSnapshot snap;
    snap.at = now;
    for (const auto& st : senders) {
      snap.senders.push_back({st.cfg->id, std::string(to_string(st.cfg->channel)), st.cfg->mps, st.breaker.state(steady),
                              st.credentials_failed, st.certificate_failed,
                              static_cast<std::size_t>(std::max(0, st.in_flight)), st.account,
                              st.blocked_until > steady ? std::string(to_string(st.blocked_scope)) : std::string(),
                              st.blocked_until > steady ? st.blocked_reason : std::string()});
    }
    const std::size_t nsend = senders.size() + 1, ntier = cfg.tiers.size() + 1, nstate = 9;
    const std::size_t nkeys = nstate * 3 * ntier * nsend;
    auto key_of = [&](DeliveryState stt, std::uint8_t ch, std::uint8_t tier, std::int16_t snd) {
      return ((static_cast<std::size_t>(stt) * 3 + ch) * ntier + std::min<std::size_t>(tier, ntier - 1)) * nsend +
             static_cast<std::size_t>(snd + 1);
    };
    std::vector<RunLive> lives(runs.size());
    std::vector<std::uint64_t> counts(runs.size() * nkeys, 0);
    // Accepted by the deadline, per (channel, tier, sender) group: the low part of a count key.
    const std::size_t ngroups = 3 * ntier * nsend;
    std::vector<std::uint64_t> on_time(runs.size() * ngroups, 0);
    auto one = [&](std::uint32_t r, DeliveryState stt, std::uint8_t ch, std::uint8_t tier, std::int16_t snd,
                   Millis planned, Millis deadline, Millis first_sent, Millis accepted_at) {
      const std::size_t key = key_of(stt, ch, tier, snd);
      ++counts[r * nkeys + key];
      if (is_accepted_state(stt) && accepted_at > 0 && accepted_at <= deadline) ++on_time[r * ngroups + key % ngroups];
      add_delivery_figures(lives[r], stt, planned, deadline, first_sent, accepted_at, now);
    };
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      for (const auto& p : runs[r].pre_final)
        one(r, p.state, p.chan, p.tier, p.sender, p.planned_at, p.deadline, p.first_sent_at, p.accepted_at);
    }
    for (const auto& it : sched.items) {
      one(it.run, it.state, static_cast<std::uint8_t>(it.chans[it.chan_idx]), it.tier_rank, it.sender, it.planned_at,
          it.deadline, it.first_sent_at, it.accepted_at);
    }
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      const auto& rs = runs[r];
      RunLive& live = lives[r];
      live.run_id = rs.row.run_id;
      live.kind = rs.row.kind;
      live.date = rs.row.date;
      live.slot_at = rs.row.slot_at;
      live.deadline_at = rs.row.deadline_at;
      live.closed = rs.closed;
      for (std::size_t k = 0; k < rs.requests.size(); ++k) {
        if (rs.requests[k] == 0) continue;
        const auto& sc = *senders[k / RunState::kOutcomes].cfg;
        const std::size_t o = k % RunState::kOutcomes;
        live.requests[{std::string(to_string(sc.channel)), sc.id,
                       o == 0 ? std::string("accepted") : std::string(failure_name(static_cast<FailureKind>(o - 1)))}] =
            rs.requests[k];
      }
      live.latency = rs.latency;
      for (std::size_t k = 0; k < nkeys; ++k) {
        const auto n = counts[r * nkeys + k];
        if (n == 0) continue;
        std::size_t rest = k;
        auto snd = static_cast<int>(rest % nsend) - 1;
        rest /= nsend;
        auto tier = rest % ntier;
        rest /= ntier;
        auto ch = static_cast<Channel>(rest % 3);
        auto stt = static_cast<DeliveryState>(rest / 3);
        live.counts[{std::string(to_string(stt)), std::string(to_string(ch)),
                     tier < cfg.tiers.size() ? cfg.tiers[tier] : std::string("?"),
                     snd >= 0 ? senders[static_cast<std::size_t>(snd)].cfg->id : std::string()}] = n;
      }
      for (std::size_t g = 0; g < ngroups; ++g) {
        const auto n = on_time[r * ngroups + g];
        if (n == 0) continue;
        const auto snd = static_cast<int>(g % nsend) - 1;
        const auto tier = (g / nsend) % ntier;
        const auto ch = static_cast<Channel>(g / nsend / ntier);
        live.on_time_by[{tier < cfg.tiers.size() ? cfg.tiers[tier] : std::string("?"), std::string(to_string(ch)),
                         snd >= 0 ? senders[static_cast<std::size_t>(snd)].cfg->id : std::string()}] = n;
      }
      finish_run_figures(live);
      live.in_flight = static_cast<std::size_t>(std::max(0, in_flight));
      finish_run_projection(live, snap.senders, now);
      snap.dead_letters += live.dead;
      snap.runs.push_back(std::move(live));
    }
    snap.in_flight = static_cast<std::size_t>(std::max(0, in_flight));
    snap.writer_backlog = writer->backlog();
    snap.writer_failing = writer->failing();
    return snap;
  }

  /// Status-callback figures per run, for alerts.success_measure = "delivered": callbacks reach
  /// the ledger, not dispatch's memory, so they are counted there (one aggregate query per run),
  /// at most every 15 s per run; between counts the last one is reused. Writer thread only.
  std::map<std::int64_t, std::pair<Millis, store::DeliveryTruth>> status_cache;
  /// With host_mon the figures come from the ledger's database (host_mon->status_figures), not
  /// from this host's file; a read that fails keeps the last count (or none) and is logged.
  void fill_status_figures(store::Db& db, LiveSnapshot& snap, Millis now) {
    for (auto& r : snap.runs) {
      if (r.closed) continue;
      auto it = status_cache.find(r.run_id);
      if (it == status_cache.end() || now - it->second.first >= 15'000) {
        if (!host_mon) {
          it = status_cache.insert_or_assign(r.run_id, std::make_pair(now, store::DeliveryTruthForRun(db, r.run_id, now))).first;
        } else if (host_mon->status_figures) {
          try {
            it = status_cache.insert_or_assign(r.run_id, std::make_pair(now, host_mon->status_figures(r.run_id, now))).first;
          } catch (const std::exception& e) {
            log->warn("monitoring: status figures of run {}: {}", r.run_id, e.what());
          }
        }
      }
      if (it != status_cache.end()) r.status = it->second.second;
    }
  }

  /// Once a second: alert rules and the metrics textfile, off the send path: on the writer
  /// thread in the ledger's transaction (SQLite), or with host_mon on the host store's thread
  /// against this host's file, where a newer tick replaces one not yet started.
  void monitor_tick(Millis now, std::shared_ptr<LiveSnapshot> snap = nullptr) {
    if (!alert_engine && cfg.dispatch.metrics_dir.empty()) return;
    if (!snap) snap = std::make_shared<LiveSnapshot>(snapshot(now));
    auto job = [this, snap, now](store::Db& db) { monitor(db, *snap, now); };
    if (host_store) {
      host_store->post(std::move(job));
    } else {
      writer->enqueue(store::ledger_op::Local{std::move(job)});
    }
  }

  void monitor(store::Db& db, LiveSnapshot& snap, Millis now) {
    try {
      if (alert_engine) {
        if (cfg.alerts.success_measure == "delivered") fill_status_figures(db, snap, now);
        auto changes = alert_engine->evaluate(db, snap, now);
        // content_held reads the held deliveries from the ledger: with host_mon they are in the
        // other database, read there (held_groups), and the alert goes to this host's file, on
        // the one host that raises it (nullopt on the others: the rule is left alone here).
        if (auto today = local_date(now, cfg.default_timezone); today && (!host_mon || host_mon->held_groups)) {
          const std::string from = format_date(add_days(*today, -1));
          std::vector<AlertChange> held;
          if (!host_mon) {
            held = alert_engine->evaluate_held(db, from, now);  // content_held
          } else if (auto groups = host_mon->held_groups(from)) {
            held = alert_engine->evaluate_held(db, *groups, now);
          }
          changes.insert(changes.end(), held.begin(), held.end());
        }
        if (!changes.empty() && notifier) notifier->wake();
      }
      if (!cfg.dispatch.metrics_dir.empty()) {
        if (host_mon) {
          // Not the host file's last stored report: a run on the other database has its report
          // stored there, and the last run may have closed on another host.
          snap.alerts_firing = static_cast<std::size_t>(store::AlertCountFiring(db));
          if (host_mon->last_closed_report) {
            try {
              if (auto last = host_mon->last_closed_report()) {
                snap.last_run_id = last->first;
                snap.last_run_sla_pct = last->second;
              }
              last_report_failed = false;
            } catch (const std::exception& e) {
              // The textfile is still written, without the figure this second.
              if (!last_report_failed) log->warn("monitoring: the last closed run's report could not be read: {}", e.what());
              last_report_failed = true;
            }
          }
        } else {
          fill_store_figures(db, snap);
        }
        write_metrics_textfile(cfg.dispatch.metrics_dir, snap);
      }
    } catch (const std::exception& e) {
      // Monitoring must never stop deliveries: log, and try again next second.
      log->warn("monitoring: {}", e.what());
    }
  }

  nlohmann::json breakers_json() const {
    const Millis now = steady;
    auto out = nlohmann::json::array();
    for (const auto& st : senders) {
      out.push_back({{"sender", st.cfg->id},
                     {"channel", to_string(st.cfg->channel)},
                     {"state", to_string(st.breaker.state(now))},
                     {"failure_ratio", st.breaker.failure_ratio(now)},
                     {"opened", st.breaker.opened_count()},
                     {"sent", st.sent},
                     {"failed", st.failed}});
    }
    return out;
  }

  /// How often the live snapshot is rebuilt: every second up to 250,000 loaded deliveries, then
  /// one more second per 250,000 (4 s at a million), so the pass over every item stays near 2%
  /// of the scheduler thread (profiled at 1M: a pass each second took 18% of it).
  Millis snapshot_interval() const {
    return 1000 * static_cast<Millis>(1 + sched.items.size() / 250001);
  }

  /// The ledger cannot be written (full disk, a lock held too long): the outbox that carries
  /// every other alert is in that ledger, so this one goes out directly from memory once the
  /// writes have failed for 10 s, and resolves when they succeed again. Claims already stop
  /// while the writer fails (no claim can commit), so nothing new is sent meanwhile.
  void watch_store() {
    const Millis now = steady;
    constexpr Millis kAfter = 10'000;
    if (writer->failing()) {
      if (!writer_failing) writer_failing_since = now;
      writer_failing = true;
      if (!store_alert_fired && now - writer_failing_since >= kAfter) {
        store_alert_fired = true;
        std::string msg = "dispatch cannot write the ledger for " + std::to_string((now - writer_failing_since) / 1000) +
                          " s (" + writer->last_error() + "); " + std::to_string(writer->backlog()) +
                          " outcomes are held in memory and no new deliveries are claimed until writes succeed";
        log->error("store_unwritable: {}", msg);
        if (notifier && cfg.alerts.rule_enabled("store_unwritable")) notifier->post_direct("fired", "store_unwritable", "database", msg);
      }
    } else if (writer_failing) {
      if (store_alert_fired) {
        std::string msg = "ledger writes succeed again after " + std::to_string((now - writer_failing_since) / 1000) +
                          " s; held outcomes are committed and claiming resumes";
        log->warn("store_unwritable resolved: {}", msg);
        if (notifier && cfg.alerts.rule_enabled("store_unwritable")) notifier->post_direct("resolved", "store_unwritable", "database", msg);
      }
      writer_failing = false;
      store_alert_fired = false;
    }
  }

  void heartbeat(Millis now, bool print) {
    watch_store();
    std::vector<std::pair<std::int64_t, std::string>> beats;
    const bool fresh =
        !last_snap || steady - last_snap_steady >= snapshot_interval() || last_snap->runs.size() != runs.size();
    if (fresh) {
      last_snap = std::make_shared<LiveSnapshot>(snapshot(now));
      last_snap_steady = steady;
    }
    auto snap = last_snap;
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      if (runs[r].closed) continue;
      auto p = progress(runs[r], snap->runs[r], now);
      // The breakdowns `sla-report --watch` shows (engine/live.hpp), from the same snapshot the
      // alert rules and the metrics textfile read.
      p["live"] = run_live_json(snap->runs[r]);
      if (print) {
        log->info("run {}: {}/{} accepted ({} on time), {} dead, {} in flight, backlog {}, live success {:.2f}%",
                  runs[r].row.run_id, p["accepted"].get<std::size_t>(), runs[r].total, p["on_time"].get<std::size_t>(),
                  p["dead"].get<std::size_t>(), in_flight, p["backlog"].get<std::size_t>(),
                  p["live_success_pct"].get<double>());
      }
      beats.emplace_back(runs[r].row.run_id, p.dump());
    }
    writer->enqueue(store::ledger_op::Heartbeat{std::move(beats), now, cfg.dispatch.lease_ms},
                    [this](bool committed, store::LedgerResult&& r) {
                      auto* hb = std::get_if<store::HeartbeatResult>(&r);
                      if (!committed || !hb) return;
                      if (!hb->lease_ok) lease_lost = true;
                      paused_all = hb->controls.paused_all;
                      for (int i = 0; i < 3; ++i) paused_channel[i] = hb->controls.paused_channel[i];
                      scoped.offer(hb->controls);
                    });
    // Statuses that arrived before our acceptance was recorded wait as pending: daybreak-callbacks'
    // own writer applies them (every --pending-interval-ms), and `daybreak ingest` for a spool,
    // never this writer: its transactions carry claims and outcomes only.
    poll_changes();
    adopt_urgent(now);
    if (fresh) monitor_tick(now, snap);
  }

  /// Operator changes to deliveries of our runs (sql/006): reload those rows and hand them to
  /// the scheduler thread, so a cancel, resend, content change or pull applies within a second.
  void poll_changes() {
    std::vector<std::int64_t> run_ids;
    for (const auto& rs : runs) {
      if (!rs.closed) run_ids.push_back(rs.row.run_id);
    }
    const Millis now = clock.now();
    // Holds written since the previous poll (with a minute's slack for a commit that came
    // after its timestamp; a hold seen twice is merged the same way).
    const Millis since = holds_polled_at - 60'000;
    holds_polled_at = now;
    writer->enqueue(store::ledger_op::PollChanges{std::move(run_ids), change_seq, now, since},
                    [this](bool committed, store::LedgerResult&& r) {
                      auto* ch = std::get_if<store::OperatorChanges>(&r);
                      if (!committed || !ch) return;  // the next poll starts from the same mark
                      Event ev;
                      ev.kind = Event::Kind::changed;
                      ev.changes = std::move(*ch);
                      push_event(std::move(ev));
                    });
  }

  /// Scheduler side of poll_changes: the rows as the operator left them replace our copies.
  void apply_changes(Event& ev) {
    change_seq = std::max(change_seq, ev.changes.mark);
    for (const auto& [advisor, until] : ev.changes.holds) {
      auto& h = wa_holds[advisor];
      h = std::max(h, until);
    }
    for (auto& c : ev.changes.content) add_content(std::move(c));
    for (const auto& id : ev.changes.withdrawn) {
      if (auto ci = content_index.find(id); ci != content_index.end() && !contents[ci->second].withdrawn) {
        contents[ci->second].withdrawn = true;
        log->warn("content {} was withdrawn while dispatch runs; no delivery sends it from now on", id);
      }
    }
    Millis now = clock.now();
    std::unordered_map<std::int64_t, std::uint32_t> run_by_id;
    for (std::uint32_t r = 0; r < runs.size(); ++r) run_by_id[runs[r].row.run_id] = r;
    for (auto& row : ev.changes.rows) {
      auto ri = run_by_id.find(row.run_id);
      if (ri == run_by_id.end() || runs[ri->second].closed) continue;
      ++summary.operator_changes;
      const std::int64_t found = sched.find(row.delivery_id);
      if (found < 0) {
        // Final when we loaded the run (counted in pre_*), now back to be sent: resend or replay.
        if (row.state != DeliveryState::planned && row.state != DeliveryState::retry_wait) continue;
        auto& rs = runs[ri->second];
        if (rs.pre_dead > 0) --rs.pre_dead;  // replay of a dead letter is the common case
        ++rs.remaining;
        const auto idx = sched.add(make_item(std::move(row), ri->second, now));
        if (content_guard(idx, now)) sched.queue(idx);
        continue;
      }
      auto idx = static_cast<std::uint32_t>(found);
      Item& it = sched.items[idx];
      auto ci = content_index.find(row.content_id);
      if (ci != content_index.end()) it.content = ci->second;
      it.emergency = row.source == "emergency";
      if (it.state == DeliveryState::sending || it.claiming) {
        // Claimed or in flight, or its claim is committing: a cancel stops it before the send
        // (send_due checks the state); a content change applies to the next attempt. Re-queuing
        // a row whose claim is committing would claim it twice: the second claim fails and must
        // not be mistaken for a cancel while the first copy's request is out.
        if (row.state == DeliveryState::cancelled) {
          it.state = DeliveryState::cancelled;
          ++it.gen;
          finish(idx);
        }
        continue;
      }
      bool was_final = is_final_state(it.state);
      if (!was_final && is_accepted_state(row.state)) {
        // A status callback settled it (kind `status`): accepted without a resend from us.
        settle_from_row(idx, store::DeliveryStateRow{row.state, row.accepted_at, row.provider_message_id, std::nullopt});
        continue;
      }
      if (was_final && on_failed_after_accept(idx, row, now)) continue;
      if (row.state == DeliveryState::cancelled || is_final_state(row.state)) {
        if (!was_final) finish(idx);
        it.state = row.state;
        ++it.gen;
        continue;
      }
      if (row.state != DeliveryState::planned && row.state != DeliveryState::retry_wait) continue;
      if (was_final) {
        ++runs[it.run].remaining;
        if (it.state == DeliveryState::dead && summary.dead > 0) --summary.dead;
      }
      auto fresh = make_item(std::move(row), it.run, now);
      fresh.gen = it.gen + 1;
      it = std::move(fresh);
      if (content_guard(idx, now)) sched.queue(idx);
    }
  }

  // ---- failed statuses after acceptance, and WhatsApp holds (docs/state_machine.md) ----------

  /// A WhatsApp acceptance keeps its run open for dispatch.status_wait_seconds (never past the
  /// last moment a send on another channel could still land by the deadline), so a `failed`
  /// status arriving meanwhile finds the run open and can move the delivery.
  void await_status(const Item& it, Millis now) {
    if (cfg.dispatch.status_wait_ms <= 0 || it.channel() != Channel::whatsapp) return;
    auto& rs = runs[it.run];
    const Millis until = std::min(now + cfg.dispatch.status_wait_ms, it.deadline - cfg.retry.expected_latency_ms);
    rs.status_wait_until = std::max(rs.status_wait_until, until);
  }

  /// A status change note about a row this process saw accepted: when the row is still accepted
  /// on WhatsApp with a `failed` status recorded, decide_after_failed_status says whether it
  /// moves to the advisor's next channel (a new attempt there, due now; never a second send on
  /// WhatsApp) or stays accepted with the error recorded (failed-after-accept in the SLA).
  /// True when the row was such a failure (handled either way).
  bool on_failed_after_accept(std::uint32_t idx, const store::DeliveryRow& row, Millis now) {
    Item& it = sched.items[idx];
    static constexpr std::string_view kFailedStatus = "status failed: ";
    if (row.state != DeliveryState::accepted || it.state != DeliveryState::accepted || row.channel != "whatsapp" ||
        !row.last_error || row.last_error->rfind(kFailedStatus, 0) != 0) {
      return false;
    }
    const int nc = senders.next_channel(it.reach());
    const auto d = decide_after_failed_status(row.state, it.channel() == Channel::whatsapp, !runs[it.run].closed, nc >= 0,
                                              now, it.deadline, cfg.retry.expected_latency_ms);
    const std::string what = row.last_error->substr(kFailedStatus.size());
    if (d.action == FailedAfterAccept::record_only) {
      ++summary.failed_after_accept;
      log->warn("delivery {}: WhatsApp status failed after acceptance ({}); recorded only: {}", it.delivery_id, what,
                d.reason);
      return true;
    }
    // Counted again when the next channel accepts it.
    if (summary.accepted > 0) --summary.accepted;
    if (it.accepted_at <= it.deadline && summary.on_time > 0) --summary.on_time;
    ++summary.rerouted_after_failed;
    const Channel next = it.chans[static_cast<std::size_t>(nc)];
    it.state = DeliveryState::retry_wait;
    it.chan_idx = static_cast<std::uint8_t>(nc);
    it.attempts_on_channel = 0;
    it.sender = static_cast<std::int16_t>(std::max(0, pick_sender(next, -1)));
    it.accepted_at = 0;
    it.due = now;
    ++it.gen;
    ++runs[it.run].remaining;
    store::RerouteAfterFailedParams p;
    p.delivery_id = it.delivery_id;
    p.channel = std::string(to_string(next));
    p.channel_index = nc;
    p.sender = senders[static_cast<std::size_t>(it.sender)].cfg->id;
    p.last_error = "rerouted after status failed: " + what + " -> " + p.channel;
    p.now = now;
    writer->enqueue(store::ledger_op::RerouteAfterFailed{std::move(p)});
    log->warn("delivery {}: WhatsApp status failed after acceptance ({}); moving to {}", it.delivery_id, what,
              to_string(next));
    if (content_guard(idx, now)) sched.queue(idx);
    return true;
  }

  /// Before a claim: a delivery about to go out on WhatsApp for an advisor whose WhatsApp is
  /// held (sql/012, a 131049 within 24 h) goes to its next channel instead, without a send; with
  /// no other channel it is given up (dead, "whatsapp held ..."). True when it did either; the
  /// moved item is re-examined on the next loop.
  bool skip_held_whatsapp(const QEntry& e, Millis now, std::vector<QEntry>& held) {
    Item& it = sched.items[e.idx];
    if (wa_holds.empty() || it.channel() != Channel::whatsapp) return false;
    auto h = wa_holds.find(std::string(strings.get(it.advisor_id)));
    if (h == wa_holds.end() || !whatsapp_held(h->second, now)) return false;
    ++summary.whatsapp_held;
    const std::string why = "whatsapp held until " + format_instant(h->second) + " (131049: per-user marketing limit)";
    const int nc = senders.next_channel(it.reach());
    if (nc < 0) {
      give_up(e.idx, now, why + "; no other channel");
      return true;
    }
    const Channel next = it.chans[static_cast<std::size_t>(nc)];
    it.chan_idx = static_cast<std::uint8_t>(nc);
    it.attempts_on_channel = 0;
    it.sender = static_cast<std::int16_t>(std::max(0, pick_sender(next, -1)));
    held.push_back({now, e.tier, e.idx, e.gen});
    log->info("delivery {}: {}; sending on {}", it.delivery_id, why, to_string(next));
    return true;
  }

  void close_finished_runs(Millis now, const std::function<void(store::Db&, std::int64_t, Millis)>& on_closed) {
    std::optional<LiveSnapshot> closing_snap;  // taken once, only when a run closes
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      auto& rs = runs[r];
      if (rs.closed || rs.remaining > 0) continue;
      if (now < rs.status_wait_until && !releasing && !lease_lost) continue;  // a failed status may still come
      summary.runs_closed.push_back(rs.row.run_id);
      if (!closing_snap) closing_snap = snapshot(now);
      rs.closed = true;
      auto p = progress(rs, closing_snap->runs[r], now).dump();
      auto run_id = rs.row.run_id;
      // The last run to close has its report built after the items are freed (release_items):
      // building a 1M run's report while a million items are still held doubled peak memory.
      const bool last = std::all_of(runs.begin(), runs.end(), [](const RunState& x) { return x.closed; });
      const bool report = on_closed || ledger_reports;
      if (last && report) deferred_reports.emplace_back(run_id, now);
      writer->enqueue(store::ledger_op::CloseRun{run_id, now, std::move(p)},
                      [lg = log, run_id](bool committed, store::LedgerResult&& res) {
                        auto* c = std::get_if<store::CloseResult>(&res);
                        if (committed && c && !c->closed) {
                          lg->error("run {} not closed: {} deliveries are not final in the ledger; released it for the "
                                    "next dispatch",
                                    run_id, c->open_rows);
                        }
                      });
      if (report && !last) enqueue_report(run_id, now, on_closed);
      log->info("run {} closed: every delivery is final", run_id);
    }
  }

  /// Stores a closed run's report (the hook) once the ledger says the run is closed: nothing is
  /// reported for a run whose close the ledger refused. With ledger_reports the ledger stores it
  /// itself (StoreRunReport: only a run this dispatch closed, at `at`).
  void enqueue_report(std::int64_t run_id, Millis at, const std::function<void(store::Db&, std::int64_t, Millis)>& on_closed) {
    if (ledger_reports) {
      writer->enqueue(store::ledger_op::StoreRunReport{run_id, at, ledger_reports});
      return;
    }
    writer->enqueue(store::ledger_op::Local{[run_id, at, &on_closed](store::Db& db) {
      auto row = store::RunGet(db, run_id);
      if (row && (row->state == "closed" || row->state == "cancelled")) on_closed(db, run_id, at);
    }});
  }

  /// Frees the in-memory deliveries once nothing can refer to them again (every run closed and
  /// nothing in flight), so the reports built after them do not stack on top.
  void release_items() {
    sched.clear();
    strings = StringPool();
    last_snap.reset();
    ::malloc_trim(0);
  }

  /// Hands claimed-but-unsent rows back (graceful stop), so a restart sends them without
  /// treating them as uncertain.
  void release_unsent(Millis now) {
    releasing = true;
    release_ids(sched.drain_claimed(), now);
  }

  void release_ids(std::vector<std::int64_t> ids, Millis now) {
    if (ids.empty()) return;
    writer->enqueue(store::ledger_op::Release{std::move(ids), now});
  }

  /// The wall-clock instant to wake at (the wait is bounded on steady time as well); sender
  /// pacing is steady time, turned into a wait from now.
  Millis next_wake(Millis now) { return sched.next_wake(now, steady, cfg.dispatch.claim_lead_ms, senders); }

  /// The wall clock moved `step` ms (positive: forward) against the steady clock since the last
  /// loop. Planned times and deadlines stay where they are on the wall clock. The waits this
  /// process set itself (retry backoff, the uncertain grace, a held row's re-check) keep their
  /// steady length, so they move with the step. A claimed row is a promise to send within the
  /// claim lead: it goes out now rather than wait for the wall clock to come back. A forward
  /// step's skipped time does not count against any delivery's drain period (skipped_ms).
  void on_wall_step(Millis step, Millis now) {
    if (step > 0) skipped_ms += step;
    const std::size_t moved = sched.shift_after_step(step, now);
    log->warn("wall clock stepped {}{:.1f} s against the steady clock (now {}): pacing, heartbeat and polling keep "
              "the steady clock, {} retry waits keep their length, planned times and deadlines stay on the wall "
              "clock{}",
              step > 0 ? "+" : "", static_cast<double>(step) / 1000.0, format_instant(now), moved,
              step > 0 ? "; the skipped time does not count against any delivery's drain period" : "");
  }

  DispatchSummary run_loop(const std::function<void(store::Db&, std::int64_t, Millis)>& on_closed) {
    // Cadences on the steady clock: a backward wall-clock step must not stop the heartbeat (the
    // lease, pause and operator-change polling) until the wall clock catches up.
    bool beaten = false;
    Millis last_beat = 0;
    Millis last_print = 0;
    bool released = false;
    while (true) {
      std::deque<Event> evs;
      {
        std::lock_guard lk(ev_mu);
        evs.swap(events);
      }
      for (auto& ev : evs) {
        if (ev.kind == Event::Kind::response) {
          on_response(ev);
        } else if (ev.kind == Event::Kind::claimed) {
          on_claimed(ev);
        } else if (ev.kind == Event::Kind::changed) {
          apply_changes(ev);
        } else if (ev.kind == Event::Kind::adopted) {
          load_adopted(ev);
        }
      }
      Millis now = clock.now();
      steady = clock.steady_ms();
      tick_wall_us = clock.now_us();
      tick_steady_us = clock.steady_us();
      if (Millis step = steps.observe(now, steady); step != 0) on_wall_step(step, now);
      int stage = stop.stage();
      if (lease_lost && !summary.lost_lease) {
        summary.lost_lease = true;
        log->error("lost the lease: another dispatch owns the run now; stopping without sending more");
      }
      apply_scoped_pauses(now);
      claim_due(now);
      send_due(now);
      close_finished_runs(now, on_closed);
      if (!beaten || steady - last_beat >= 1000) {
        bool print = !beaten || steady - last_print >= 5000;
        heartbeat(now, print);
        beaten = true;
        last_beat = steady;
        if (print) last_print = steady;
      }
      bool all_closed = std::all_of(runs.begin(), runs.end(), [](const RunState& r) { return r.closed; });
      if (all_closed && in_flight == 0 && !adopt_pending) break;
      if ((stage >= 1 || summary.lost_lease) && !released) {
        summary.stopped_by_signal = stage >= 1;
        if (!summary.lost_lease) release_unsent(now);
        released = true;
      }
      if (released && (in_flight == 0 || stage >= 2 || summary.lost_lease) && claims_pending == 0 && !adopt_pending) break;
      if (released && stage >= 2) break;
      // A first-stage stop while the ledger cannot be written (store_unwritable is out: writes
      // have failed for 10 s): the claims still queued can never commit, and a claim commits
      // before its request leaves, so none of them was sent. Once nothing is in flight, stop
      // instead of waiting for the ledger for ever; the rows stay resumable there.
      if (released && stage >= 1 && in_flight == 0 && store_alert_fired) break;
      std::unique_lock lk(ev_mu);
      clock.wait_until(
          lk, ev_cv, next_wake(now), [&] { return !events.empty() || stop.stage() != stage; }, &ev_window);
    }
    for (const auto& rs : runs) {
      if (!rs.closed) summary.runs_left_open.push_back(rs.row.run_id);
      summary.lag_us.merge(rs.lag_us);
      summary.lag_us_by_run.emplace_back(rs.row.run_id, rs.lag_us);
    }
    return summary;
  }
};

Dispatcher::Dispatcher(const Config& cfg, const Clock& clock, channels::Transport& transport, store::LedgerFactory ledger,
                       StopToken stop, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(cfg, clock, transport, std::move(ledger), stop, std::move(log))) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::monitor_on_host(HostMonitoring m) { impl_->host_mon = std::move(m); }

void Dispatcher::store_reports_in_ledger(store::RunReportBuilder build) { impl_->ledger_reports = std::move(build); }

DispatchSummary Dispatcher::run(const std::vector<std::int64_t>& run_ids, const RunClosedHook& on_run_closed) {
  auto& d = *impl_;
  d.writer = std::make_unique<BatchWriter>(d.open_ledger, d.cfg.dispatch.commit_interval_ms, d.log);
  d.alert_engine = std::make_unique<AlertEngine>(d.cfg.alerts);
  if (d.host_mon) {
    // The notifier opens the file without migrating it: create and migrate it first, here. An
    // up-to-date file is only read; a locked one is waited for 200 ms at most, then logged
    // (the host store migrates it on a later tick; sending goes on meanwhile).
    try {
      store::Db create(d.host_mon->store_path, store::OpenOptions{false, true, 200, 1024});
    } catch (const std::exception& e) {
      d.log->warn("host store {}: {} (alerts and the metrics textfile are not written until it opens)",
                  d.host_mon->store_path, e.what());
    }
    d.host_store = std::make_unique<HostStore>(d.host_mon->store_path, d.log);
  }
  if (!d.cfg.alerts.chain.empty()) {
    d.notifier = std::make_unique<AlertNotifier>(d.host_mon ? d.host_mon->store_path : d.cfg.database_path, d.cfg.alerts,
                                                 d.clock, d.log);
    d.notifier->start();
  }
  d.load(run_ids);
  // With host_mon the hook stores no report (the run is in the other database: HostMonitoring);
  // the ledger stores it itself when store_reports_in_ledger gave the builder.
  const RunClosedHook no_hook;
  const RunClosedHook& closed_hook = d.host_mon ? no_hook : on_run_closed;
  auto summary = d.run_loop(closed_hook);
  // The final figures are taken before the items are freed: a closed run's alerts resolve on
  // them and the metrics textfile keeps them.
  std::shared_ptr<LiveSnapshot> final_snap;
  if (!summary.runs_closed.empty() || !summary.runs_left_open.empty()) {
    final_snap = std::make_shared<LiveSnapshot>(d.snapshot(d.clock.now()));
  }
  if (!d.deferred_reports.empty() && d.in_flight == 0) d.release_items();
  for (const auto& [run_id, at] : d.deferred_reports) d.enqueue_report(run_id, at, closed_hook);
  if (d.in_flight > 0) {
    // Second-stage stop: abandon what is in flight; those rows stay `sending` and the next
    // dispatch treats them as uncertain.
    d.transport.shutdown();
  }
  if (!summary.lost_lease) {
    for (auto run_id : summary.runs_left_open) d.writer->enqueue(store::ledger_op::ReleaseLease{run_id});
  }
  // A last evaluation with the final figures: on SQLite queued behind the closing writes; with
  // host_mon after the writer has stored the closed runs' reports in the ledger, so that the
  // textfile's last-run SLA is theirs.
  if (final_snap && !d.host_store) d.monitor_tick(final_snap->at, final_snap);
  // Stopping on a second signal, or with the ledger unwritable for 10 s already: 3 s more for
  // the queued writes, then what is left is dropped (its rows settle as after a crash).
  d.writer->stop(d.stop.stage() >= 2 || d.store_alert_fired ? 3000 : 30000);
  summary.writes_dropped = static_cast<std::int64_t>(d.writer->dropped());
  if (final_snap && d.host_store) d.monitor_tick(final_snap->at, final_snap);
  if (d.host_store) {
    d.host_store->stop();  // the last evaluation, then the thread ends
    d.host_store.reset();
  }
  if (d.notifier) d.notifier->stop();
  return summary;
}

}  // namespace daybreak::engine
