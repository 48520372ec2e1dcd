#include "engine/dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <unordered_map>

#include "domain/retry.hpp"
#include "engine/token_bucket.hpp"
#include "engine/writer.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

namespace daybreak::engine {

std::atomic<int> g_stop_stage{0};

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
  }
  return "unknown";
}

struct ContentRow {
  std::string content_id, title, body, media_url;
};

/// One delivery held in memory for the length of the dispatch.
struct Item {
  std::int64_t delivery_id = 0;
  Millis planned_at = 0;
  Millis deadline = 0;
  Millis due = 0;
  Millis first_sent_at = 0;
  Millis accepted_at = 0;
  std::string advisor_id, name, language, phone, email;
  std::uint32_t run = 0;
  std::uint32_t content = 0;
  std::array<Channel, 3> chans{};
  std::uint8_t nchans = 0;
  std::uint8_t chan_idx = 0;  ///< position in chans (== the row's channel_index)
  std::int16_t sender = -1;
  std::uint8_t tier_rank = 0;
  DeliveryState state = DeliveryState::planned;
  std::uint16_t attempts = 0;
  std::uint8_t attempts_on_channel = 0;
  bool possible_dup = false;
  std::uint32_t gen = 0;  ///< bumps whenever the item is re-queued; stale heap entries are skipped
};

struct SenderState {
  const SenderConfig* cfg = nullptr;
  std::unique_ptr<channels::Adapter> adapter;
  TokenBucket bucket;
  Millis paused_until = 0;
  int in_flight = 0;
  std::int64_t sent = 0;
};

struct RunState {
  store::Run row;
  std::size_t total = 0;
  std::size_t remaining = 0;  ///< not final
  bool closed = false;
  // Deliveries already final when this dispatch loaded the run (a resume): counted once here.
  std::size_t pre_accepted = 0, pre_on_time = 0, pre_dead = 0, pre_cancelled = 0;
};

struct QEntry {
  Millis due;
  std::uint8_t tier;
  std::uint32_t idx;
  std::uint32_t gen;
  bool operator>(const QEntry& o) const { return due != o.due ? due > o.due : (tier != o.tier ? tier > o.tier : idx > o.idx); }
};
/// Among deliveries whose time has come: earliest deadline first, then highest tier.
struct EEntry {
  Millis deadline;
  std::uint8_t tier;
  Millis due;
  std::uint32_t idx;
  bool operator>(const EEntry& o) const {
    if (deadline != o.deadline) return deadline > o.deadline;
    if (tier != o.tier) return tier > o.tier;
    return due > o.due;
  }
};
template <typename T>
using MinHeap = std::priority_queue<T, std::vector<T>, std::greater<T>>;

/// Events handed to the scheduler thread by the transport and writer threads.
struct Event {
  enum class Kind { response, claimed, lease_lost } kind = Kind::response;
  std::uint32_t idx = 0;
  std::uint32_t gen = 0;
  Millis started_at = 0;
  channels::Response response;
  std::vector<std::pair<std::uint32_t, bool>> claims;
};

}  // namespace

struct Dispatcher::Impl {
  const Config& cfg;
  const Clock& clock;
  channels::Transport& transport;
  std::shared_ptr<spdlog::logger> log;
  std::string owner;

  std::vector<Item> items;
  std::vector<ContentRow> contents;
  std::vector<SenderState> senders;
  std::vector<RunState> runs;
  MinHeap<QEntry> waiting;                 // not claimed yet, by due time
  std::vector<MinHeap<QEntry>> claimed;    // per sender: claimed, by due time
  std::vector<MinHeap<EEntry>> eligible;   // per sender: due now, by deadline then tier
  std::size_t claims_pending = 0;
  int in_flight = 0;
  DispatchSummary summary;

  std::mutex ev_mu;
  std::condition_variable ev_cv;
  std::deque<Event> events;
  std::atomic<bool> paused_all{false};
  std::array<std::atomic<bool>, 3> paused_channel{};
  std::atomic<bool> lease_lost{false};
  bool releasing = false;  ///< a graceful stop handed claimed rows back; later claims go back too

  std::unique_ptr<BatchWriter> writer;

  Impl(const Config& c, const Clock& k, channels::Transport& t, std::shared_ptr<spdlog::logger> l, std::string o)
      : cfg(c), clock(k), transport(t), log(std::move(l)), owner(std::move(o)) {}

  void push_event(Event e) {
    {
      std::lock_guard lk(ev_mu);
      events.push_back(std::move(e));
    }
    ev_cv.notify_one();
  }

  int pick_sender(Channel ch, int preferred, Millis now) {
    if (preferred >= 0 && senders[preferred].cfg->channel == ch && senders[preferred].paused_until <= now) return preferred;
    int best = -1;
    double best_load = 1e300;
    for (std::size_t i = 0; i < senders.size(); ++i) {
      auto& s = senders[i];
      if (s.cfg->channel != ch) continue;
      // Prefer healthy senders, then the least loaded relative to its rate.
      double load = static_cast<double>(s.in_flight + static_cast<int>(claimed[i].size() + eligible[i].size())) / s.cfg->mps;
      if (s.paused_until > now) load += 1e9;
      if (load < best_load) {
        best_load = load;
        best = static_cast<int>(i);
      }
    }
    return best;
  }

  bool has_sender(Channel ch) const {
    return std::any_of(senders.begin(), senders.end(), [&](const SenderState& s) { return s.cfg->channel == ch; });
  }
  bool addressable(const Item& it, Channel ch) const {
    if (!has_sender(ch)) return false;
    switch (ch) {
      case Channel::whatsapp: return !it.phone.empty();
      case Channel::email: return !it.email.empty();
      case Channel::webhook: return true;
    }
    return false;
  }
  /// Index of the next usable channel after the current one, or -1.
  int next_channel(const Item& it) const {
    for (int i = it.chan_idx + 1; i < it.nchans; ++i) {
      if (addressable(it, it.chans[i])) return i;
    }
    return -1;
  }

  void load(const std::vector<std::int64_t>& run_ids) {
    store::OpenOptions o;
    o.migrate = false;
    store::Db db(cfg.database_path, o);
    std::unordered_map<std::string, std::uint32_t> content_index;
    std::unordered_map<std::string, int> sender_index;
    Millis now = clock.now();
    for (const auto& s : cfg.senders) {
      SenderState st{&s, channels::make_adapter(cfg, s), TokenBucket(s.mps, std::max(2.0, s.mps * 0.05), now), 0, 0, 0};
      sender_index[s.id] = static_cast<int>(senders.size());
      senders.push_back(std::move(st));
    }
    claimed.resize(senders.size());
    eligible.resize(senders.size());
    for (auto run_id : run_ids) {
      auto row = store::RunGet(db, run_id);
      if (!row) continue;
      RunState rs;
      rs.row = *row;
      auto run_idx = static_cast<std::uint32_t>(runs.size());
      // Rows a dead owner left `sending` may have reached the provider: uncertain.
      std::int64_t uncertain = 0;
      db.write_tx([&] { uncertain = store::DeliveryMarkUncertain(db, run_id, owner, now); });
      if (uncertain > 0) {
        log->warn("run {}: {} deliveries were mid-send when the previous dispatch died; they are uncertain and wait {} ms before a resend",
                  run_id, uncertain, cfg.dispatch.uncertain_grace_ms);
      }
      summary.uncertain_found += uncertain;
      auto& cq = db.stmt(
          "SELECT content_id, title, body, media_url FROM content WHERE content_id IN "
          "(SELECT DISTINCT content_id FROM deliveries WHERE run_id = ?)");
      cq.bind(1, run_id);
      while (cq.executeStep()) {
        std::string id = cq.getColumn(0).getString();
        if (content_index.count(id)) continue;
        content_index[id] = static_cast<std::uint32_t>(contents.size());
        contents.push_back({id, cq.getColumn(1).getString(), cq.getColumn(2).getString(), cq.getColumn(3).getString()});
      }
      for (auto& d : store::DeliveryListForRun(db, run_id)) {
        ++rs.total;
        ++summary.deliveries;
        if (is_final_state(d.state)) {
          if (is_accepted_state(d.state)) {
            ++rs.pre_accepted;
            if (d.accepted_at && *d.accepted_at <= d.deadline_at) ++rs.pre_on_time;
          } else if (d.state == DeliveryState::dead) {
            ++rs.pre_dead;
          } else {
            ++rs.pre_cancelled;
          }
          continue;
        }
        Item it;
        it.delivery_id = d.delivery_id;
        it.planned_at = d.planned_at;
        it.deadline = d.deadline_at;
        it.first_sent_at = d.first_sent_at.value_or(0);
        it.advisor_id = std::move(d.advisor_id);
        it.name = std::move(d.advisor_name);
        it.language = std::move(d.language);
        it.phone = std::move(d.phone);
        it.email = std::move(d.email);
        it.run = run_idx;
        it.content = content_index.count(d.content_id) ? content_index[d.content_id] : 0;
        for (const auto& c : split_list(d.channels, '|')) {
          if (auto ch = channel_from_string(c); ch && it.nchans < it.chans.size()) it.chans[it.nchans++] = *ch;
        }
        if (it.nchans == 0) it.chans[it.nchans++] = channel_from_string(d.channel).value_or(Channel::whatsapp);
        it.chan_idx = static_cast<std::uint8_t>(std::min<int>(d.channel_index, it.nchans - 1));
        auto si = sender_index.find(d.sender);
        it.sender = static_cast<std::int16_t>(si == sender_index.end() ? -1 : si->second);
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
        ++rs.remaining;
        items.push_back(std::move(it));
      }
      runs.push_back(std::move(rs));
    }
    if (contents.empty()) contents.push_back({});
    for (std::uint32_t i = 0; i < items.size(); ++i) waiting.push({items[i].due, items[i].tier_rank, i, 0});
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
    std::string own = owner;
    writer->enqueue([p, own](store::Db& db) { store::DeliveryUpdate(db, p, own); });
  }

  // ---- the loop ----------------------------------------------------------------------

  void claim_due(Millis now) {
    if (paused_all || g_stop_stage.load() > 0 || lease_lost) return;
    // Bound the claimed-but-unsent pipeline: a claim is a promise to send soon.
    const std::size_t max_batch = 20000;
    std::vector<std::uint32_t> batch;
    std::vector<QEntry> held;
    while (!waiting.empty() && waiting.top().due <= now + cfg.dispatch.claim_lead_ms && batch.size() < max_batch &&
           claims_pending < 50000) {
      QEntry e = waiting.top();
      waiting.pop();
      Item& it = items[e.idx];
      if (e.gen != it.gen || is_final_state(it.state)) continue;
      Channel ch = it.chans[it.chan_idx];
      if (paused_channel[static_cast<int>(ch)]) {
        held.push_back({now + 1000, e.tier, e.idx, e.gen});
        continue;
      }
      if (now > it.deadline + cfg.dispatch.drain_after_deadline_ms) {
        give_up(e.idx, now, "gave up: no acceptance by deadline + drain period");
        continue;
      }
      int s = pick_sender(ch, it.sender, now);
      if (s < 0) {
        int nc = next_channel(it);
        if (nc >= 0) {
          it.chan_idx = static_cast<std::uint8_t>(nc);
          it.attempts_on_channel = 0;
          held.push_back({now, e.tier, e.idx, e.gen});
        } else {
          give_up(e.idx, now, "no sender configured for channel " + std::string(to_string(ch)));
        }
        continue;
      }
      it.sender = static_cast<std::int16_t>(s);
      batch.push_back(e.idx);
    }
    for (auto& h : held) waiting.push(h);
    if (batch.empty()) return;
    claims_pending += batch.size();
    struct ClaimRow {
      std::uint32_t idx;
      std::int64_t id;
    };
    std::vector<ClaimRow> rows;
    rows.reserve(batch.size());
    for (auto idx : batch) rows.push_back({idx, items[idx].delivery_id});
    auto results = std::make_shared<std::vector<std::pair<std::uint32_t, bool>>>();
    std::string own = owner;
    Millis lease = cfg.dispatch.lease_ms;
    writer->enqueue(
        [rows = std::move(rows), results, own, now, lease](store::Db& db) {
          results->clear();
          for (const auto& r : rows) results->emplace_back(r.idx, store::DeliveryClaim(db, r.id, own, now + lease, now));
        },
        [this, results] {
          Event ev;
          ev.kind = Event::Kind::claimed;
          ev.claims = std::move(*results);
          push_event(std::move(ev));
        });
  }

  void give_up(std::uint32_t idx, Millis now, const std::string& why) {
    Item& it = items[idx];
    // Only rows we hold in `sending` can be moved by DeliveryUpdate; claim first in the same op.
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
    std::string own = owner;
    Millis lease = cfg.dispatch.lease_ms;
    writer->enqueue([p, own, lease, now](store::Db& db) {
      if (store::DeliveryClaim(db, p.delivery_id, own, now + lease, now)) store::DeliveryUpdate(db, p, own);
    });
    log->warn("delivery {} dead: {}", it.delivery_id, why);
  }

  void finish(std::uint32_t idx) {
    auto& rs = runs[items[idx].run];
    if (rs.remaining > 0) --rs.remaining;
  }

  void on_claimed(const Event& ev) {
    claims_pending -= std::min(claims_pending, ev.claims.size());
    std::vector<std::int64_t> late_claims;
    for (auto [idx, ok] : ev.claims) {
      Item& it = items[idx];
      if (!ok) {
        // The row moved under us (an operator cancelled it): it is no longer ours to send.
        it.state = DeliveryState::cancelled;
        ++it.gen;
        finish(idx);
        continue;
      }
      it.state = DeliveryState::sending;
      if (releasing) {
        // Committed after a graceful stop began: hand it straight back, never send it.
        late_claims.push_back(it.delivery_id);
        continue;
      }
      claimed[it.sender].push({it.due, it.tier_rank, idx, it.gen});
    }
    if (!late_claims.empty()) release_ids(std::move(late_claims), clock.now());
  }

  void send_due(Millis now) {
    if (lease_lost || g_stop_stage.load() >= 2) return;
    for (std::size_t s = 0; s < senders.size(); ++s) {
      auto& cq = claimed[s];
      auto& eq = eligible[s];
      while (!cq.empty() && cq.top().due <= now) {
        auto e = cq.top();
        cq.pop();
        const Item& it = items[e.idx];
        eq.push({it.deadline, it.tier_rank, it.due, e.idx});
      }
      auto& st = senders[s];
      while (!eq.empty() && in_flight < cfg.dispatch.max_in_flight && st.paused_until <= now && st.bucket.try_take(now)) {
        auto e = eq.top();
        eq.pop();
        send_one(e.idx, static_cast<int>(s), now);
      }
    }
  }

  void send_one(std::uint32_t idx, int s, Millis now) {
    Item& it = items[idx];
    const ContentRow& c = contents[it.content];
    channels::Message m;
    m.delivery_id = it.delivery_id;
    m.attempt = it.attempts + 1;
    Channel ch = it.chans[it.chan_idx];
    m.to = ch == Channel::whatsapp ? it.phone : ch == Channel::email ? it.email : it.advisor_id;
    m.advisor_id = it.advisor_id;
    m.advisor_name = it.name;
    m.language = it.language;
    m.content_id = c.content_id;
    m.title = c.title;
    m.body = c.body;
    m.media_url = c.media_url;
    auto req = senders[s].adapter->build(m);
    ++it.attempts;
    ++it.attempts_on_channel;
    if (it.first_sent_at == 0) it.first_sent_at = now;
    ++in_flight;
    ++senders[s].in_flight;
    ++senders[s].sent;
    ++summary.sent_requests;
    std::uint32_t gen = it.gen;
    transport.submit(std::move(req), [this, idx, gen, now](channels::Response r) {
      Event ev;
      ev.kind = Event::Kind::response;
      ev.idx = idx;
      ev.gen = gen;
      ev.started_at = now;
      ev.response = std::move(r);
      push_event(std::move(ev));
    });
  }

  void on_response(Event& ev) {
    Item& it = items[ev.idx];
    --in_flight;
    auto& st = senders[it.sender];
    --st.in_flight;
    Millis now = clock.now();
    auto res = st.adapter->classify(ev.response);
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
    writer->enqueue([a](store::Db& db) { store::AttemptInsert(db, a); });

    if (res.accepted) {
      it.state = DeliveryState::accepted;
      it.accepted_at = now;
      ++it.gen;
      finish(ev.idx);
      ++summary.accepted;
      if (now <= it.deadline) ++summary.on_time;
      if (it.possible_dup) ++summary.possible_duplicates;
      write_outcome(it, ev.started_at, now, res.provider_message_id, std::nullopt);
      return;
    }
    if (res.kind == FailureKind::sender_rate_limited) {
      st.paused_until = std::max(st.paused_until, now + std::max<Millis>(res.retry_after_ms, 200));
    } else if (res.kind == FailureKind::credentials) {
      if (st.paused_until <= now) log->error("sender {}: credentials rejected ({}); pausing it", st.cfg->id, res.error_detail);
      st.paused_until = std::max(st.paused_until, now + 30000);
    }
    int nc = next_channel(it);
    auto decision = decide_after_failure(cfg.retry, res.kind, it.attempts_on_channel, now, it.deadline, nc >= 0,
                                         res.retry_after_ms, splitmix64(static_cast<std::uint64_t>(it.delivery_id) * 131 + it.attempts));
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
        waiting.push({it.due, it.tier_rank, ev.idx, it.gen});
        break;
      }
      case RetryDecision::next_channel: {
        it.state = DeliveryState::retry_wait;
        it.chan_idx = static_cast<std::uint8_t>(nc);
        it.attempts_on_channel = 0;
        it.sender = static_cast<std::int16_t>(std::max(0, pick_sender(it.chans[nc], -1, now)));
        it.due = now;
        if (res.kind == FailureKind::uncertain) it.possible_dup = true;
        waiting.push({it.due, it.tier_rank, ev.idx, it.gen});
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

  nlohmann::json progress(const RunState& rs, std::uint32_t run_idx, Millis now) const {
    std::size_t accepted = rs.pre_accepted, on_time = rs.pre_on_time, late = rs.pre_accepted - rs.pre_on_time,
                dead = rs.pre_dead, judged = rs.pre_accepted + rs.pre_dead, backlog = 0, sending = 0;
    for (const auto& it : items) {
      if (it.run != run_idx) continue;
      bool acc = is_accepted_state(it.state);
      if (acc) {
        ++accepted;
        (it.accepted_at <= it.deadline ? on_time : late)++;
      }
      if (it.state == DeliveryState::dead) ++dead;
      if (it.state == DeliveryState::sending) ++sending;
      if (is_final_state(it.state) || now > it.deadline) ++judged;
      if (!is_final_state(it.state) && it.due <= now) ++backlog;
    }
    double live = judged ? 100.0 * static_cast<double>(on_time) / static_cast<double>(judged) : 100.0;
    return {{"run_id", rs.row.run_id},
            {"at", now},
            {"total", rs.total},
            {"remaining", rs.remaining},
            {"accepted", accepted},
            {"on_time", on_time},
            {"late", late},
            {"dead", dead},
            {"sending", sending},
            {"backlog", backlog},
            {"live_success_pct", live},
            {"sla_so_far_pct", rs.total > rs.pre_cancelled ? 100.0 * static_cast<double>(on_time) / static_cast<double>(rs.total - rs.pre_cancelled) : 100.0},
            {"in_flight", in_flight},
            {"writer_backlog", writer->backlog()},
            {"writer_failing", writer->failing()}};
  }

  void heartbeat(Millis now, bool print) {
    std::vector<std::pair<std::int64_t, std::string>> beats;
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      if (runs[r].closed) continue;
      auto p = progress(runs[r], r, now);
      if (print) {
        log->info("run {}: {}/{} accepted ({} on time), {} dead, {} in flight, backlog {}, live success {:.2f}%",
                  runs[r].row.run_id, p["accepted"].get<std::size_t>(), runs[r].total, p["on_time"].get<std::size_t>(),
                  p["dead"].get<std::size_t>(), in_flight, p["backlog"].get<std::size_t>(),
                  p["live_success_pct"].get<double>());
      }
      beats.emplace_back(runs[r].row.run_id, p.dump());
    }
    std::string own = owner;
    Millis lease = cfg.dispatch.lease_ms;
    writer->enqueue([this, beats, own, lease, now](store::Db& db) {
      for (const auto& [run_id, json] : beats) {
        if (!store::RunHeartbeat(db, run_id, own, now, lease, json)) lease_lost = true;
      }
      // Operator switches: `daybreak pause` writes these; they apply within a second.
      auto& q = db.stmt("SELECT key, value FROM controls WHERE key LIKE 'pause%'");
      bool all = false;
      std::array<bool, 3> ch{};
      while (q.executeStep()) {
        std::string key = q.getColumn(0).getString();
        bool on = q.getColumn(1).getString() == "1";
        if (key == "pause") all = on;
        for (Channel c : {Channel::whatsapp, Channel::email, Channel::webhook}) {
          if (key == "pause." + std::string(to_string(c))) ch[static_cast<int>(c)] = on;
        }
      }
      paused_all = all;
      for (int i = 0; i < 3; ++i) paused_channel[i] = ch[i];
    });
  }

  void close_finished_runs(Millis now, const std::function<void(store::Db&, std::int64_t, Millis)>& on_closed) {
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      auto& rs = runs[r];
      if (rs.closed || rs.remaining > 0) continue;
      rs.closed = true;
      summary.runs_closed.push_back(rs.row.run_id);
      auto p = progress(rs, r, now).dump();
      std::string own = owner;
      auto run_id = rs.row.run_id;
      writer->enqueue([run_id, own, now, p, on_closed](store::Db& db) {
        store::RunClose(db, run_id, own, now, p);
        if (on_closed) on_closed(db, run_id, now);
      });
      log->info("run {} closed: every delivery is final", run_id);
    }
  }

  /// Hands claimed-but-unsent rows back (graceful stop), so a restart sends them without
  /// treating them as uncertain.
  void release_unsent(Millis now) {
    releasing = true;
    std::vector<std::int64_t> ids;
    for (auto& q : claimed) {
      while (!q.empty()) {
        ids.push_back(items[q.top().idx].delivery_id);
        q.pop();
      }
    }
    for (auto& q : eligible) {
      while (!q.empty()) {
        ids.push_back(items[q.top().idx].delivery_id);
        q.pop();
      }
    }
    release_ids(std::move(ids), now);
  }

  void release_ids(std::vector<std::int64_t> ids, Millis now) {
    if (ids.empty()) return;
    std::string own = owner;
    writer->enqueue([ids, own, now](store::Db& db) {
      auto& q = db.stmt(
          "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 'planned' ELSE 'retry_wait' END, "
          "next_attempt_at = ?, claim_owner = NULL, updated_at = ? WHERE delivery_id = ? AND state = 'sending' AND claim_owner = ?");
      for (auto id : ids) {
        q.reset();
        q.bind(1, now);
        q.bind(2, now);
        q.bind(3, id);
        q.bind(4, own);
        q.exec();
      }
    });
  }

  Millis next_wake(Millis now) const {
    Millis t = now + 1000;
    if (!waiting.empty()) t = std::min(t, waiting.top().due - cfg.dispatch.claim_lead_ms);
    for (std::size_t s = 0; s < senders.size(); ++s) {
      if (!claimed[s].empty()) t = std::min(t, claimed[s].top().due);
      if (!eligible[s].empty()) {
        auto& st = const_cast<SenderState&>(senders[s]);
        t = std::min(t, std::max(st.paused_until, st.bucket.next_available(now)));
      }
    }
    return std::max(t, now + 1);
  }

  DispatchSummary run_loop(const std::function<void(store::Db&, std::int64_t, Millis)>& on_closed) {
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
        }
      }
      Millis now = clock.now();
      int stage = g_stop_stage.load();
      if (lease_lost && !summary.lost_lease) {
        summary.lost_lease = true;
        log->error("lost the lease: another dispatch owns the run now; stopping without sending more");
      }
      claim_due(now);
      send_due(now);
      close_finished_runs(now, on_closed);
      if (now - last_beat >= 1000) {
        bool print = now - last_print >= 5000;
        heartbeat(now, print);
        last_beat = now;
        if (print) last_print = now;
      }
      bool all_closed = std::all_of(runs.begin(), runs.end(), [](const RunState& r) { return r.closed; });
      if (all_closed && in_flight == 0) break;
      if ((stage >= 1 || summary.lost_lease) && !released) {
        summary.stopped_by_signal = stage >= 1;
        if (!summary.lost_lease) release_unsent(now);
        released = true;
      }
      if (released && (in_flight == 0 || stage >= 2 || summary.lost_lease) && claims_pending == 0) break;
      if (released && stage >= 2) break;
      std::unique_lock lk(ev_mu);
      clock.wait_until(lk, ev_cv, next_wake(now), [&] { return !events.empty() || g_stop_stage.load() != stage; });
    }
    for (const auto& rs : runs) {
      if (!rs.closed) summary.runs_left_open.push_back(rs.row.run_id);
    }
    return summary;
  }
};

Dispatcher::Dispatcher(const Config& cfg, const Clock& clock, channels::Transport& transport,
                       std::shared_ptr<spdlog::logger> log, std::string owner)
    : impl_(std::make_unique<Impl>(cfg, clock, transport, std::move(log), std::move(owner))) {}

Dispatcher::~Dispatcher() = default;

DispatchSummary Dispatcher::run(const std::vector<std::int64_t>& run_ids, const RunClosedHook& on_run_closed) {
  auto& d = *impl_;
  d.writer = std::make_unique<BatchWriter>(d.cfg.database_path, d.cfg.dispatch.commit_interval_ms, d.log);
  d.load(run_ids);
  auto summary = d.run_loop(on_run_closed);
  if (d.in_flight > 0) {
    // Second-stage stop: abandon what is in flight; those rows stay `sending` and the next
    // dispatch treats them as uncertain.
    d.transport.shutdown();
  }
  if (!summary.lost_lease) {
    std::string own = d.owner;
    for (auto run_id : summary.runs_left_open) {
      d.writer->enqueue([run_id, own](store::Db& db) { store::RunReleaseLease(db, run_id, own); });
    }
  }
  d.writer->stop(g_stop_stage.load() >= 2 ? 3000 : 30000);
  return summary;
}

}  // namespace daybreak::engine
