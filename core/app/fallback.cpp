// assign-fallback: at 21:30 IST on D−1, every eligible advisor gets
// sendable content for D — their editorial/advisor/override item when it passes the night-before
// checks, otherwise the fallback item the ranker (domain/ranking.hpp) scores best — and the
// zero-silent-days report says so. Also `explain`: why one advisor got what they got.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "app/errors.hpp"
#include "app/plan.hpp"
#include "domain/content_check.hpp"
#include "domain/time.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/engagement.hpp"
#include "store/withdrawal.hpp"

namespace daybreak {
namespace {

// One number as nlohmann::json's dump writes it (its serializer's dump_float: "null" when not
// finite, otherwise the shortest text that reads back as the same double, from its own to_chars),
// appended in place instead of through a json value and a dumped string per number (seven
// numbers per fallback advisor, 686k a night at 1M). FallbackTest.ScorePartsAreTheTextNlohmannWrites
// holds it to the library's dump.
void append_json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  const char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// assignments.score_parts: the ScoreParts as a JSON object with its keys in sorted order (as
// nlohmann::json writes an object), each value written as nlohmann::json writes it, as text
// without building an object per advisor (a million a night).
std::string parts_json_text(const ScoreParts& p) {
  std::string out;
  out.reserve(256);
  out += '{';
  auto num = [&](const char* key, double v, bool first = false) {
    if (!first) out += ',';
    out += '"';
    out += key;
    out += "\":";
    append_json_number(out, v);
  };
  num("diversity_penalty", p.diversity_penalty, true);
  num("engagement", p.engagement);
  num("engagement_mean", p.engagement_mean);
  out += ",\"exposures\":" + std::to_string(p.exposures);
  num("freshness", p.freshness);
  if (p.last_sent) out += ",\"last_sent\":" + nlohmann::json(*p.last_sent).dump();
  out += ",\"reads\":" + std::to_string(p.reads);
  if (p.relaxed_no_repeat) out += ",\"relaxed_no_repeat\":true";
  out += ",\"segment\":" + nlohmann::json(p.segment).dump();
  num("topic", p.topic);
  num("total", p.total);
  out += '}';
  return out;
}

std::string shift(const Date& d, int days) { return format_date(add_days(d, days)); }

/// Content by id, read once per run.
class ContentCache {
 public:
  explicit ContentCache(store::Db& db) : db_(db) {}
  const std::optional<Content>& get(const std::string& id) {
    auto it = cache_.find(id);
    if (it == cache_.end()) it = cache_.emplace(id, store::ContentGet(db_, id)).first;
    return it->second;
  }
  /// content_send_problem(*get(id), date), worked out once per item (date is the same for a run).
  const std::optional<std::string>& send_problem(const std::string& id, const Content& c, const std::string& date) {
    auto it = problems_.find(id);
    if (it == problems_.end()) it = problems_.emplace(id, content_send_problem(c, date)).first;
    return it->second;
  }

 private:
  store::Db& db_;
  std::unordered_map<std::string, std::optional<Content>> cache_;
  std::unordered_map<std::string, std::optional<std::string>> problems_;
};

// The advisor's history over the reader's window (shift(D, -max(no_repeat_days, diversity_days))
// … shift(D, -1)); empty when that window is empty. `rows` is scratch space reused across calls.
AdvisorHistory load_history(store::AssignmentHistoryReader& reader, ContentCache& content, const std::string& advisor_id,
                            std::vector<store::HistoryRow>& rows) {
  AdvisorHistory h;
  reader.read(advisor_id, rows);
  for (auto& row : rows) {
    h.last_sent[row.content_id] = row.date;  // oldest first, so the last write is the latest date
    if (const auto& c = content.get(row.content_id)) h.topics_by_date[row.date] = c->topics;
  }
  return h;
}

using RowSink = std::function<void(store::AssignmentUpsertParams&&)>;

// Ranks on a thread of its own and writes beside it: `rank(rdb, emit)` runs there with `rdb`, a
// read-only connection to db's file, and hands each new or replaced assignment to emit() in
// advisor order; they cross over in chunks, and this thread writes them through `db`, whose
// write transaction is open, as they come. The rows, their order and the batches are those of
// ranking first and writing after: only the wall time changes (the two used to take a core each
// in turn, about 2.6 and 2.7 s at 1M). `rank_ms` gets the ranking thread's own wall time.
//
// The read connection's snapshot is taken after this connection took the write lock (the
// caller is inside db.write_tx), so it sees the last commit, which no other connection can
// follow until ours: the same rows this connection would read, without its own uncommitted
// writes, which are all for D (the ranker reads D's assignments before any write and the
// history before D). It is closed before the commit, so it never holds the checkpoint back.
void rank_beside_writes(store::Db& db, store::Db& rdb, const std::function<void(store::Db&, const RowSink&)>& rank,
                        double& rank_ms) {
  // A chunk is whole batches, so once it is added the writer holds none of its rows but the last's.
  constexpr std::size_t kChunk = 64 * store::AssignmentWriter::kBatch;
  constexpr std::size_t kMaxChunks = 16;  // the ranker waits when the writer is this far behind
  struct Queue {
    std::mutex m;
    std::condition_variable ready, space;
    std::deque<std::vector<store::AssignmentUpsertParams>> chunks;
    bool done = false;  // the ranker has finished (or failed)
    bool stop = false;  // the writer has failed: the ranker gives up
    std::exception_ptr error;
  } q;
  struct Stopped {};
  std::thread ranker([&] {
    try {
      const auto t0 = std::chrono::steady_clock::now();
      rdb.exec("BEGIN");  // one snapshot and one shared lock for the whole pass
      std::vector<store::AssignmentUpsertParams> chunk;
      chunk.reserve(kChunk);
      auto hand_over = [&] {
        std::unique_lock lock(q.m);
        q.space.wait(lock, [&] { return q.chunks.size() < kMaxChunks || q.stop; });
        if (q.stop) throw Stopped{};
        q.chunks.push_back(std::move(chunk));
        q.ready.notify_one();
        chunk = {};
        chunk.reserve(kChunk);
      };
      rank(rdb, [&](store::AssignmentUpsertParams&& p) {
        chunk.push_back(std::move(p));
        if (chunk.size() == kChunk) hand_over();
      });
      if (!chunk.empty()) hand_over();
      rdb.exec("COMMIT");
      rank_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    } catch (const Stopped&) {
    } catch (...) {
      q.error = std::current_exception();
    }
    std::lock_guard lock(q.m);
    q.done = true;
    q.ready.notify_one();
  });
  // On the way out, normal or not: the ranker is stopped if still running, and joined.
  struct Join {
    Queue& q;
    std::thread& t;
    ~Join() {
      {
        std::lock_guard lock(q.m);
        q.stop = true;
      }
      q.space.notify_all();
      t.join();
    }
  } join{q, ranker};
  store::AssignmentWriter writer(db);
  std::vector<store::AssignmentUpsertParams> held;  // the chunk the writer may still reference
  for (;;) {
    {
      std::unique_lock lock(q.m);
      q.ready.wait(lock, [&] { return !q.chunks.empty() || q.done; });
      if (q.chunks.empty()) break;
      held = std::move(q.chunks.front());
      q.chunks.pop_front();
      q.space.notify_one();
    }
    for (const auto& w : held) writer.add(w);
  }
  if (q.error) std::rethrow_exception(q.error);
  writer.finish();
}

}  // namespace

FallbackResult assign_fallback(store::Db& db, const Config& /*cfg*/, const std::string& date, Millis now, bool dry_run,
                               const FallbackOptions& opts) {
  auto d = parse_date(date);
  if (!d) throw UsageError("--date: " + d.error().message);
  if (opts.ranking.no_repeat_days < 0) throw UsageError("--no-repeat-days: must be 0 or more");

  // Wall time of each phase, reported in the JSON as plan-deliveries reports its own.
  using SteadyClock = std::chrono::steady_clock;
  auto t0 = SteadyClock::now();
  nlohmann::json timings = nlohmann::json::object();
  auto mark = [&t0, &timings](const char* phase) {
    auto t = SteadyClock::now();
    timings[phase] = std::chrono::duration<double, std::milli>(t - t0).count();
    t0 = t;
  };
  // Pass 1: fold the read receipts of the last days into the engagement table (they arrive
  // late, so a few days are re-derived each evening; unchanged rows are not rewritten).
  store::EngagementRebuildResult rebuilt;
  if (!dry_run && opts.engagement_rebuild_days > 0) {
    db.write_tx([&] { rebuilt = store::EngagementRebuild(db, shift(*d, -opts.engagement_rebuild_days), shift(*d, -1), now); });
  }
  mark("engagement_rebuild_ms");
  // Passes 2–6 read and write in one transaction (see below).
  auto body = [&]() -> FallbackResult {
    // Pass 2: what the advisors already have on D. Who must receive something is read in pass 5,
    // each advisor as it is ranked. Both are ordered by advisor_id: each advisor's assignment is
    // found by walking this list beside them (a hash map of a million ids cost more than the walk).
    // Without --list only the content and source are used: the covering index alone answers.
    const std::vector<Assignment> existing =
        opts.list ? store::AssignmentListForDate(db, date) : store::AssignmentKeysForDate(db, date);
    auto next_existing = existing.begin();
    std::string previous_id;
    bool started = false;
    auto find_existing = [&](const std::string& id) {
      if (started && id < previous_id) next_existing = existing.begin();  // not ascending: start again
      started = true;
      previous_id = id;
      while (next_existing != existing.end() && next_existing->advisor_id < id) ++next_existing;
      return next_existing != existing.end() && next_existing->advisor_id == id ? next_existing : existing.end();
    };
    // Pass 3: the fallback pool for D, by language; an item that would fail at send time is left
    // out here, or it could replace an invalid item with another invalid one.
    std::map<std::string, std::vector<Content>> pool;
    nlohmann::json pool_rejected = nlohmann::json::array();
    for (auto& c : store::ContentListFallbackPool(db, date)) {
      if (auto why = content_send_problem(c, date)) {
        pool_rejected.push_back({{"content_id", c.content_id}, {"reason", *why}});
      } else {
        pool[c.language].push_back(std::move(c));
      }
    }
    // Pass 4: what the ranker has learned so far.
    EngagementTable engagement =
        opts.engagement_days > 0 ? store::EngagementTotals(db, shift(*d, -opts.engagement_days), shift(*d, -1)) : EngagementTable{};

    // Each language's candidates prepared once for every advisor (domain/ranking.hpp).
    std::map<std::string, RankingPool> ranking_pools;
    for (const auto& [language, items] : pool) ranking_pools.try_emplace(language, items, engagement, date, opts.ranking);
    static const std::vector<Content> kNoContent;
    const RankingPool no_candidates(kNoContent, engagement, date, opts.ranking);
    mark("load_ms");
    // Pass 5: validate each advisor's assignment; rank a fallback for those without a sendable one.
    const int back = std::max(opts.ranking.no_repeat_days, opts.ranking.diversity_days);
    const std::string history_from = back > 0 ? shift(*d, -back) : std::string();
    const std::string history_to = back > 0 ? shift(*d, -1) : std::string();
    nlohmann::json missing = nlohmann::json::array();
    std::vector<SilentAdvisor> silent;
    nlohmann::json replaced = nlohmann::json::array();
    nlohmann::json listed = nlohmann::json::array();
    std::size_t eligible = 0, kept = 0, fallback = 0, relaxed = 0;
    std::map<std::string, std::size_t> by_source;
    // Every eligible advisor in order, read and ranked one at a time through `rdb` (the advisors
    // are not held: a million rows); each new or replaced assignment goes to emit(row) in advisor
    // order. The rows and the report are the same whichever connection
    // reads and whoever writes the rows.
    auto rank_all = [&](store::Db& rdb, auto&& emit) {
      ContentCache content(rdb);
      // Read beside the advisors (ascending ids), one ordered scan per day of the window.
      store::AssignmentHistoryReader history(rdb, history_from, history_to);
      std::vector<store::HistoryRow> history_rows;
      eligible = store::AdvisorEachEligibleForRanking(rdb, date, [&](const Advisor& a) {
        std::string why_replace;
        if (auto it = find_existing(a.advisor_id); it != existing.end()) {
          const auto& c = content.get(it->content_id);
          std::optional<std::string> problem = !c ? std::optional<std::string>("content " + it->content_id + " missing")
                                                  : content.send_problem(it->content_id, *c, date);
          // An operator override may cross languages on purpose; imported content may not.
          if (!problem && it->source != Source::override_ && c->language != a.language) problem = "content language " + c->language + " is not the advisor's " + a.language;
          if (!problem) {
            ++kept;
            ++by_source[std::string(to_string(it->source))];
            if (opts.list) {
              listed.push_back({{"advisor_id", a.advisor_id}, {"content_id", it->content_id},
                                {"source", std::string(to_string(it->source))}, {"reason", it->reason}});
            }
            return;
          }
          why_replace = std::string(to_string(it->source)) + " " + it->content_id + ": " + *problem;
        }
        auto pit = ranking_pools.find(a.language);
        const RankingPool& ranking_pool = pit == ranking_pools.end() ? no_candidates : pit->second;
        const auto& candidates = ranking_pool.candidates();
        auto ranked = rank_candidates(a, load_history(history, content, a.advisor_id, history_rows), ranking_pool);
        if (!ranked) {
          nlohmann::json m = {{"advisor_id", a.advisor_id}, {"language", a.language}, {"reason", ranked.error().message}};
          if (!why_replace.empty()) m["invalid_assignment"] = why_replace;
          missing.push_back(std::move(m));
          silent.push_back({a.advisor_id, a.language, ranked.error().message});
          return;
        }
        const Content& best = candidates[ranked->index];
        store::AssignmentUpsertParams p;
        p.assignment.advisor_id = a.advisor_id;
        p.assignment.date = date;
        p.assignment.content_id = best.content_id;
        p.assignment.source = Source::fallback;
        p.assignment.score = ranked->parts.total;
        p.assignment.score_parts = parts_json_text(ranked->parts);
        p.assignment.reason = why_replace.empty() ? "no content assigned" : "replaced " + why_replace;
        if (ranked->parts.relaxed_no_repeat) {
          p.assignment.reason += "; no-repeat window relaxed: every " + a.language + " item was sent within " +
                                 std::to_string(opts.ranking.no_repeat_days) + " days";
          ++relaxed;
        }
        p.created_at = now;
        if (!why_replace.empty()) replaced.push_back({{"advisor_id", a.advisor_id}, {"reason", why_replace}, {"content_id", best.content_id}});
        if (opts.list) {
          listed.push_back({{"advisor_id", a.advisor_id}, {"content_id", best.content_id}, {"source", "fallback"},
                            {"reason", p.assignment.reason}, {"score", p.assignment.score}});
        }
        emit(std::move(p));
        ++fallback;
        ++by_source["fallback"];
      });
      // The history cursors read assignments: they are closed here, before the writes end.
    };
    // A second connection can read beside the writer only on a file in WAL mode
    // (store::reader_beside); dry runs write nothing, so there is nothing to overlap.
    std::unique_ptr<store::Db> rdb = opts.threads > 1 && !dry_run ? store::reader_beside(db) : nullptr;
    if (!rdb) {
      // Pass 6 after pass 5: rank every advisor, then write every new or replaced assignment in
      // batches of multi-row upserts.
      std::vector<store::AssignmentUpsertParams> writes;
      rank_all(db, [&](store::AssignmentUpsertParams&& p) { writes.push_back(std::move(p)); });
      mark("rank_ms");
      if (!dry_run && !writes.empty()) {
        store::AssignmentWriter writer(db);
        for (const auto& w : writes) writer.add(w);
        writer.finish();
      }
      mark("write_ms");
    } else {
      // Passes 5 and 6 side by side: a ranking thread reads through its own connection and hands
      // the rows over in chunks, in advisor order; this thread writes them as they come, through
      // the connection that holds the write transaction. See rank_beside_writes.
      double rank_ms = 0;
      rank_beside_writes(
          db, *rdb, [&](store::Db& r, const std::function<void(store::AssignmentUpsertParams&&)>& emit) { rank_all(r, emit); },
          rank_ms);
      timings["rank_ms"] = rank_ms;
      mark("write_ms");
      timings["write_ms"] = timings["write_ms"].get<double>() - rank_ms;
    }
    nlohmann::json rep = {{"date", date},
                          {"eligible", eligible},
                          {"already_assigned", kept},
                          {"fallback_assigned", fallback},
                          {"replaced", replaced},
                          {"by_source", by_source},
                          {"no_repeat_relaxed", relaxed},
                          {"pool_rejected", pool_rejected},
                          {"engagement_rows_rebuilt", rebuilt.rows_written + rebuilt.rows_deleted},
                          {"missing", missing},
                          {"silent_days", missing.size()},
                          {"dry_run", dry_run}};
    if (opts.list) rep["advisors"] = std::move(listed);
    FallbackResult out;
    out.date = date;
    out.eligible = eligible;
    out.already_assigned = static_cast<std::size_t>(kept);
    out.fallback_assigned = static_cast<std::size_t>(fallback);
    out.replaced = replaced.size();
    out.missing = std::move(silent);
    out.by_source = by_source;
    out.report = std::move(rep);
    return out;
  };
  FallbackResult out;
  if (dry_run) {
    // One read transaction: one snapshot, and one shared lock instead of one per query.
    db.exec("BEGIN");
    try {
      out = body();
    } catch (...) {
      try {
        db.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    db.exec("COMMIT");
    out.report["timings"] = std::move(timings);
    return out;
  }
  // Read, rank and write in one write transaction (as plan_deliveries does): every advisor and
  // content item an assignment row points at is read inside it while it holds the write lock,
  // so no other connection can remove them in between; the per-row foreign-key lookups are
  // skipped for this transaction. It also makes the history reads one snapshot, not a shared
  // lock taken and released per advisor (measured: the per-query fcntl locking was a sixth of
  // the 1M night). SQLite only changes foreign_keys outside a transaction.
  db.exec("PRAGMA foreign_keys=OFF");
  try {
    db.write_tx([&] { out = body(); });
  } catch (...) {
    db.exec("PRAGMA foreign_keys=ON");
    throw;
  }
  db.exec("PRAGMA foreign_keys=ON");
  mark("commit_ms");
  out.report["timings"] = std::move(timings);
  return out;
}

nlohmann::json explain_assignment(store::Db& db, const std::string& advisor_id, const std::string& date,
                                  const FallbackOptions& opts) {
  auto d = parse_date(date);
  if (!d) throw UsageError("--date: " + d.error().message);
  auto row = store::AdvisorGet(db, advisor_id);
  if (!row) throw CheckFailed("advisor " + advisor_id + ": not found");
  const Advisor& a = row->advisor;
  // The same rule as AdvisorListEligible, for one advisor: opted in, not paused on D, one opted-in channel.
  bool paused = (a.paused_from || a.paused_until) && (!a.paused_from || *a.paused_from <= date) &&
                (!a.paused_until || date <= *a.paused_until);
  bool eligible = a.opted_in && !paused &&
                  std::any_of(row->channels.begin(), row->channels.end(), [](const auto& c) { return c.opted_in; });
  ContentCache content(db);
  nlohmann::json out = {{"advisor_id", advisor_id},
                        {"date", date},
                        {"eligible", eligible},
                        {"language", a.language},
                        {"topics", a.topics},
                        {"segment", advisor_segment(a)},
                        {"opted_in", a.opted_in}};
  if (a.paused_from || a.paused_until) out["paused"] = {{"from", a.paused_from.value_or("")}, {"until", a.paused_until.value_or("")}};
  if (auto asg = store::AssignmentGet(db, advisor_id, date)) {
    nlohmann::json j = {{"content_id", asg->content_id},
                        {"source", std::string(to_string(asg->source))},
                        {"score", asg->score},
                        {"score_parts", nlohmann::json::parse(asg->score_parts.empty() ? "{}" : asg->score_parts, nullptr, false)},
                        {"reason", asg->reason}};
    if (const auto& c = content.get(asg->content_id)) {
      j["title"] = c->title;
      j["content_language"] = c->language;
      j["content_topics"] = c->topics;
      auto problem = content_send_problem(*c, date);
      j["sendable"] = !problem;
      if (problem) j["problem"] = *problem;
    }
    j["weights"] = {{"topic", opts.ranking.w_topic},
                    {"engagement", opts.ranking.w_engagement},
                    {"freshness", opts.ranking.w_freshness},
                    {"diversity", opts.ranking.w_diversity}};
    out["assignment"] = std::move(j);
  } else {
    out["assignment"] = nullptr;
  }
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& h : store::AssignmentListForAdvisorRange(db, advisor_id, shift(*d, -opts.ranking.no_repeat_days), shift(*d, -1))) {
    nlohmann::json e = {{"date", h.date}, {"content_id", h.content_id}};
    if (const auto& c = content.get(h.content_id)) e["topics"] = c->topics;
    hist.push_back(std::move(e));
  }
  out["history"] = std::move(hist);
  return out;
}

nlohmann::json withdraw_content(store::Db& db, const Config& cfg, const std::string& content_id, const std::string& reason,
                                const std::string& actor, const std::string& sudo_user, Millis now) {
  // Days that may still have something pending: from yesterday in the default zone (advisors
  // west of it are still on yesterday's date) on.
  auto today = local_date(now, cfg.default_timezone);
  if (!today) throw ConfigError(today.error().message);
  const std::string from = shift(*today, -1);

  // Pass 1: withdraw and audit, committed first so nothing can choose the item again.
  store::ContentWithdrawResult w;
  db.write_tx([&] {
    w = store::ContentWithdraw(db, content_id, actor, now);
    if (!w.found) return;
    store::AuditAppend(db, {now, actor, sudo_user, "content withdraw", reason, content_id,
                            nlohmann::json{{"withdrawn", !w.newly_withdrawn}}.dump(),
                            nlohmann::json{{"withdrawn", true}, {"withdrawn_at", *w.withdrawn_at}, {"withdrawn_by", w.withdrawn_by}}.dump()});
  });
  if (!w.found) throw CheckFailed("content " + content_id + ": not found");

  // Pass 2: every day that assigns it gets replacements (assign_fallback replaces withdrawn content).
  nlohmann::json days = nlohmann::json::array();
  std::size_t replaced = 0, missing = 0;
  for (const auto& day : store::AssignmentDatesForContent(db, content_id, from)) {
    auto rep = assign_fallback(db, cfg, day, now, false);
    replaced += rep.replaced;
    missing += rep.missing.size();
    days.push_back({{"date", day}, {"replaced", rep.replaced}, {"missing", rep.report["missing"]}});
  }

  // Pass 3: pending deliveries follow their new assignment; those without one get an emergency
  // item (advisor's language, else delivery.emergency_language) or are held, so no pending
  // delivery points at the pulled item afterwards; audited with the counts.
  std::vector<std::int64_t> repointed;
  store::PulledResolution resolved;
  std::int64_t in_flight = 0;
  db.write_tx([&] {
    repointed = store::DeliveryRepointPending(db, content_id, from, now);
    resolved = store::DeliveryResolvePulled(db, content_id, from, cfg.emergency_language, now);
    in_flight = store::DeliveryCountInFlight(db, content_id, from);
    store::AuditAppend(db, {now, actor, sudo_user, "content withdraw: replace", reason, content_id, "",
                            nlohmann::json{{"assignments_replaced", replaced}, {"deliveries_repointed", repointed.size()},
                                           {"deliveries_emergency", resolved.emergency.size()},
                                           {"deliveries_held", resolved.held.size()},
                                           {"deliveries_in_flight", in_flight}, {"from_date", from}}.dump()});
  });
  return {{"content_id", content_id},
          {"withdrawn_at", *w.withdrawn_at},
          {"withdrawn_by", w.withdrawn_by},
          {"already_withdrawn", !w.newly_withdrawn},
          {"assignments_replaced", replaced},
          {"deliveries_repointed", repointed.size()},
          {"deliveries_emergency", resolved.emergency.size()},
          {"deliveries_held", resolved.held.size()},
          {"held_languages", resolved.held_languages},
          {"emergency_language", cfg.emergency_language},
          {"deliveries_in_flight", in_flight},
          {"missing", missing},
          {"days", days}};
}

}  // namespace daybreak
