#include "store/advisors.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace daybreak::store {
namespace {

// The SQL lives next to the function that runs it; Db::stmt prepares each text once per
// connection and hands back the cached statement afterwards.

// What an upsert of one advisor (or a whole staged import) changes on a row that exists: every
// column, and only when one differs, so an unchanged row keeps its updated_at.
constexpr const char* kAdvisorOnConflict = R"sql(
ON CONFLICT (advisor_id) DO UPDATE SET
  name = excluded.name, tier = excluded.tier, timezone = excluded.timezone, slot = excluded.slot,
  channels = excluded.channels, opted_in = excluded.opted_in, language = excluded.language,
  topics = excluded.topics, updated_at = excluded.updated_at
WHERE name IS NOT excluded.name OR tier IS NOT excluded.tier OR timezone IS NOT excluded.timezone
   OR slot IS NOT excluded.slot OR channels IS NOT excluded.channels OR opted_in IS NOT excluded.opted_in
   OR language IS NOT excluded.language OR topics IS NOT excluded.topics
)sql";
// A channel the advisor unsubscribed from or an operator opted out (unsubscribed_at, sql/013)
// stays opted out whatever the import says; only `daybreak advisors opt-in` clears it.
constexpr const char* kChannelOnConflict = R"sql(
ON CONFLICT (advisor_id, channel) DO UPDATE SET address = excluded.address,
  opted_in = CASE WHEN unsubscribed_at IS NULL THEN excluded.opted_in ELSE 0 END
WHERE address IS NOT excluded.address OR opted_in IS NOT (CASE WHEN unsubscribed_at IS NULL THEN excluded.opted_in ELSE 0 END)
)sql";

const std::string kUpsertAdvisor =
    "INSERT INTO advisors (advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)" + std::string(kAdvisorOnConflict);

const std::string kUpsertChannel =
    "INSERT INTO advisor_channels (advisor_id, channel, address, opted_in) VALUES (?1, ?2, ?3, ?4)" +
    std::string(kChannelOnConflict);

// Three placeholders cover every channel there is; unused ones get '' which matches no channel.
constexpr const char* kDeleteOtherChannels =
    "DELETE FROM advisor_channels WHERE advisor_id = ?1 AND channel NOT IN (?2, ?3, ?4)";

constexpr const char* kAdvisorColumns =
    "a.advisor_id, a.name, a.tier, a.timezone, a.slot, a.channels, a.opted_in, a.language, a.topics, "
    "a.paused_from, a.paused_until, a.updated_at";

const std::string kGetAdvisor = std::string("SELECT ") + kAdvisorColumns + " FROM advisors a WHERE a.advisor_id = ?1";
constexpr const char* kGetChannels =
    "SELECT channel, address, opted_in FROM advisor_channels WHERE advisor_id = ?1";

// The eligibility rule, once: opted in, an opted-in channel row `c`, and not paused on ?1
// (paused when a pause is set and ?1 falls inside it; a NULL bound is open-ended).
constexpr const char* kEligibleWhere = R"sql(
WHERE a.opted_in = 1 AND c.opted_in = 1
  AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL)
           AND COALESCE(a.paused_from, '') <= ?1 AND (a.paused_until IS NULL OR ?1 <= a.paused_until))
ORDER BY a.advisor_id)sql";

// One row per (advisor, opted-in channel), ordered by advisor_id.
const std::string kListEligible = std::string("SELECT ") + kAdvisorColumns +
                                  ", c.channel, c.address FROM advisors a JOIN advisor_channels c ON c.advisor_id = a.advisor_id" +
                                  kEligibleWhere;

// The planner's reads (PlanCandidatesForDate): three ordered scans merged by advisor_id in C++
// instead of one three-way join, because SQLite has no merge join: the join searched
// advisor_channels and the day's assignments once per advisor (a million index searches each),
// where each scan below walks its B-tree once in key order. Together they give exactly the
// join's rows: every advisor the eligibility rule admits (opted in, not paused on ?1) with an
// opted-in channel row, and its assignment for ?1 when there is one.
// The advisors the rule admits, ordered by advisor_id (the table's unique index).
// Each with the advisor_id bounds of an AdvisorIdRange (plan_sql) before its ORDER BY.
constexpr const char* kPlanAdvisors = R"sql(
SELECT a.advisor_id, a.tier, a.timezone, a.slot, a.channels, a.language FROM advisors a
WHERE a.opted_in = 1
  AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL)
           AND COALESCE(a.paused_from, '') <= ?1 AND (a.paused_until IS NULL OR ?1 <= a.paused_until))
)sql";
constexpr const char* kPlanAdvisorsOrder = " ORDER BY a.advisor_id";
// Every opted-in channel row, in the table's own (advisor_id, channel) order.
constexpr const char* kPlanChannels = "SELECT advisor_id, channel FROM advisor_channels WHERE opted_in = 1";
constexpr const char* kPlanChannelsOrder = " ORDER BY advisor_id, channel";
// The day's assignments from the date-led covering index (sql/008), a sixth of the table's bytes
// per row: the table, keyed (date, advisor_id) since sql/015, carries score_parts and reason, and
// SQLite picks the primary key unless told. One range, ordered by advisor_id.
constexpr const char* kPlanAssignments =
    "SELECT advisor_id, content_id, source FROM assignments INDEXED BY assignments_day WHERE date = ?1";
constexpr const char* kPlanAssignmentsOrder = " ORDER BY advisor_id";

// `select` limited to `range` (its bounds are the parameters :from and :to) and ordered by `order`.
std::string plan_sql(const char* select, const char* column, const AdvisorIdRange& range, const char* order) {
  std::string sql = select;
  if (range.from) sql += std::string(" AND ") + column + " >= :from";
  if (range.to) sql += std::string(" AND ") + column + " < :to";
  return sql + order;
}

// The ranker's columns only (AdvisorListEligibleForRanking), same rows and order as kListEligible.
const std::string kRankingCandidates =
    std::string("SELECT a.advisor_id, a.channels, a.language, a.topics, c.channel ") +
    "FROM advisors a JOIN advisor_channels c ON c.advisor_id = a.advisor_id" + kEligibleWhere;

std::string channel_list(const std::vector<Channel>& channels) {
  std::string out;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (i) out.push_back('|');
    out += to_string(channels[i]);
  }
  return out;
}

std::string address_for(const Advisor& a, Channel c) {
  switch (c) {
    case Channel::whatsapp: return a.phone;
    case Channel::email: return a.email;
    case Channel::webhook: return a.advisor_id;
  }
  return {};
}

// Reads the advisor columns (0–11) of the current row.
Advisor read_advisor(SQLite::Statement& q, Millis& updated_at) {
  Advisor a;
  a.advisor_id = q.getColumn(0).getString();
  a.name = q.getColumn(1).getString();
  a.tier = q.getColumn(2).getString();
  a.timezone = q.getColumn(3).getString();
  a.slot = q.getColumn(4).getString();
  for (const auto& part : split_list(q.getColumn(5).getString(), '|')) {
    if (auto ch = channel_from_string(part)) a.channels.push_back(*ch);
  }
  a.opted_in = q.getColumn(6).getInt() != 0;
  a.language = q.getColumn(7).getString();
  a.topics = split_list(q.getColumn(8).getString(), ';');
  if (!q.getColumn(9).isNull()) a.paused_from = q.getColumn(9).getString();
  if (!q.getColumn(10).isNull()) a.paused_until = q.getColumn(10).getString();
  updated_at = q.getColumn(11).getInt64();
  return a;
}

// Puts channel rows into the advisor's preference order and fills phone/email from them.
void finish_row(AdvisorRow& row, std::vector<AdvisorChannel> found) {
  for (Channel pref : row.advisor.channels) {
    for (auto& c : found) {
      if (c.channel != pref) continue;
      if (c.channel == Channel::whatsapp) row.advisor.phone = c.address;
      if (c.channel == Channel::email) row.advisor.email = c.address;
      row.channels.push_back(std::move(c));
      break;
    }
  }
}

}  // namespace

namespace {

/// Binds an advisor's columns ?1..?9 (advisor_id, name, tier, timezone, slot, channels,
/// opted_in, language, topics), the order both the upsert and the import's staging insert use.
/// `channels` and `topics` are the joined lists; they must outlive the statement's execution.
void bind_advisor_row(SQLite::Statement& q, const Advisor& a, const std::string& channels, const std::string& topics) {
  q.bindNoCopy(1, a.advisor_id);
  q.bindNoCopy(2, a.name);
  q.bindNoCopy(3, a.tier);
  q.bindNoCopy(4, a.timezone);
  q.bindNoCopy(5, a.slot);
  q.bindNoCopy(6, channels);
  q.bind(7, a.opted_in ? 1 : 0);
  q.bindNoCopy(8, a.language);
  q.bindNoCopy(9, topics);
}

/// Binds one channel row ?1..?4 (advisor_id, channel, address, opted_in).
void bind_channel_row(SQLite::Statement& q, const Advisor& a, const std::string& channel, const std::string& address) {
  q.bindNoCopy(1, a.advisor_id);
  q.bindNoCopy(2, channel);
  q.bindNoCopy(3, address);
  q.bind(4, a.opted_in ? 1 : 0);
}

}  // namespace

void AdvisorUpsert(Db& db, const AdvisorUpsertParams& p) {
  guarded("storing advisor", [&] {
    const Advisor& a = p.advisor;
    const std::string channels = channel_list(a.channels);
    const std::string topics = join_list(a.topics, ';');
    auto& q = db.stmt(kUpsertAdvisor);
    bind_advisor_row(q, a, channels, topics);
    q.bind(10, static_cast<std::int64_t>(p.updated_at));
    q.exec();

    std::array<std::string, 3> keep{};
    for (std::size_t i = 0; i < a.channels.size() && i < keep.size(); ++i) {
      Channel c = a.channels[i];
      keep[i] = std::string(to_string(c));
      const std::string address = address_for(a, c);
      auto& ins = db.stmt(kUpsertChannel);
      bind_channel_row(ins, a, keep[i], address);
      ins.exec();
    }
    auto& del = db.stmt(kDeleteOtherChannels);
    del.bindNoCopy(1, a.advisor_id);
    for (int i = 0; i < 3; ++i) del.bindNoCopy(i + 2, keep[static_cast<std::size_t>(i)]);
    del.exec();
  });
}

namespace {

constexpr const char* kStageAdvisor =
    "INSERT INTO temp.import_advisors (advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kStageChannel =
    "INSERT INTO temp.import_advisor_channels (advisor_id, channel, address, opted_in) VALUES (?1, ?2, ?3, ?4)";

// kUpsertAdvisor, kUpsertChannel and kDeleteOtherChannels for every staged row at once ("WHERE
// true" keeps SQLite from reading ON CONFLICT as a join constraint).
const std::string kApplyAdvisors =
    "INSERT INTO main.advisors (advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics, updated_at) "
    "SELECT advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics, ?1 FROM temp.import_advisors "
    "WHERE true" + std::string(kAdvisorOnConflict);
const std::string kApplyChannels =
    "INSERT INTO main.advisor_channels (advisor_id, channel, address, opted_in) "
    "SELECT advisor_id, channel, address, opted_in FROM temp.import_advisor_channels WHERE true" +
    std::string(kChannelOnConflict);
constexpr const char* kApplyDeleteOtherChannels = R"sql(
DELETE FROM main.advisor_channels
WHERE advisor_id IN (SELECT advisor_id FROM temp.import_advisors)
  AND (advisor_id, channel) NOT IN (SELECT advisor_id, channel FROM temp.import_advisor_channels)
)sql";

// An advisor is unchanged when its advisors row holds the staged values and its channel rows are
// exactly the staged ones (same channels, addresses and opt-ins, none more).
constexpr const char* kPruneUnchanged = R"sql(
DELETE FROM temp.import_advisors AS s
WHERE EXISTS (SELECT 1 FROM main.advisors a
              WHERE a.advisor_id = s.advisor_id AND a.name IS s.name AND a.tier IS s.tier
                AND a.timezone IS s.timezone AND a.slot IS s.slot AND a.channels IS s.channels
                AND a.opted_in IS s.opted_in AND a.language IS s.language AND a.topics IS s.topics)
  AND NOT EXISTS (SELECT 1 FROM temp.import_advisor_channels sc
                  LEFT JOIN main.advisor_channels c ON c.advisor_id = sc.advisor_id AND c.channel = sc.channel
                  WHERE sc.advisor_id = s.advisor_id
                    AND (c.advisor_id IS NULL OR c.address IS NOT sc.address
                         OR c.opted_in IS NOT (CASE WHEN c.unsubscribed_at IS NULL THEN sc.opted_in ELSE 0 END)))
  AND (SELECT COUNT(*) FROM main.advisor_channels c WHERE c.advisor_id = s.advisor_id)
    = (SELECT COUNT(*) FROM temp.import_advisor_channels sc WHERE sc.advisor_id = s.advisor_id)
)sql";
constexpr const char* kPruneChannels =
    "DELETE FROM temp.import_advisor_channels WHERE advisor_id NOT IN (SELECT advisor_id FROM temp.import_advisors)";

}  // namespace

std::int64_t AdvisorStagePruneUnchanged(Db& db) {
  return guarded("comparing staged advisors", [&] {
    // Each statement is its own short read of the ledger (autocommit), never under its write lock.
    db.stmt(kPruneUnchanged).exec();
    auto pruned = static_cast<std::int64_t>(db.raw().getChanges());
    db.stmt(kPruneChannels).exec();
    return pruned;
  });
}

void AdvisorStageReset(Db& db) {
  guarded("preparing the advisor import", [&] {
    db.exec(
        "CREATE TEMP TABLE IF NOT EXISTS import_advisors (advisor_id TEXT PRIMARY KEY, name TEXT, tier TEXT, "
        "timezone TEXT, slot TEXT, channels TEXT, opted_in INTEGER, language TEXT, topics TEXT)");
    db.exec(
        "CREATE TEMP TABLE IF NOT EXISTS import_advisor_channels (advisor_id TEXT, channel TEXT, address TEXT, "
        "opted_in INTEGER, PRIMARY KEY (advisor_id, channel)) WITHOUT ROWID");
    db.exec("DELETE FROM temp.import_advisors");
    db.exec("DELETE FROM temp.import_advisor_channels");
  });
}

void AdvisorStage(Db& db, const Advisor& a) {
  guarded("staging advisor", [&] {
    const std::string channels = channel_list(a.channels);
    const std::string topics = join_list(a.topics, ';');
    auto& q = db.stmt(kStageAdvisor);
    bind_advisor_row(q, a, channels, topics);
    q.exec();
    for (std::size_t i = 0; i < a.channels.size() && i < 3; ++i) {
      const std::string channel(to_string(a.channels[i]));
      const std::string address = address_for(a, a.channels[i]);
      auto& c = db.stmt(kStageChannel);
      bind_channel_row(c, a, channel, address);
      c.exec();
    }
  });
}

std::int64_t AdvisorApplyStaged(Db& db, Millis updated_at) {
  return guarded("storing advisors", [&] {
    auto& a = db.stmt(kApplyAdvisors);
    a.bind(1, static_cast<std::int64_t>(updated_at));
    a.exec();
    db.stmt(kApplyChannels).exec();
    db.stmt(kApplyDeleteOtherChannels).exec();
    return db.raw().execAndGet("SELECT COUNT(*) FROM temp.import_advisors").getInt64();
  });
}

std::optional<AdvisorRow> AdvisorGet(Db& db, const std::string& advisor_id) {
  return guarded("reading advisor", [&]() -> std::optional<AdvisorRow> {
    AdvisorRow row;
    {
      auto& q = db.stmt(kGetAdvisor);
      q.bind(1, advisor_id);
      if (!q.executeStep()) return std::nullopt;
      row.advisor = read_advisor(q, row.updated_at);
      q.reset();  // end the statement's read so it does not pin a WAL snapshot
    }
    std::vector<AdvisorChannel> found;
    auto& c = db.stmt(kGetChannels);
    c.bind(1, advisor_id);
    while (c.executeStep()) {
      auto ch = channel_from_string(c.getColumn(0).getString());
      if (!ch) continue;
      found.push_back(AdvisorChannel{*ch, c.getColumn(1).getString(), c.getColumn(2).getInt() != 0});
    }
    finish_row(row, std::move(found));
    return row;
  });
}

bool AdvisorExists(Db& db, const std::string& advisor_id) {
  return guarded("looking up advisor", [&] {
    auto& q = db.stmt("SELECT 1 FROM advisors WHERE advisor_id = ?1");
    q.bind(1, advisor_id);
    bool found = q.executeStep();
    q.reset();
    return found;
  });
}

std::vector<AdvisorRow> AdvisorListEligible(Db& db, const std::string& date) {
  return guarded("listing eligible advisors", [&] {
    std::vector<AdvisorRow> out;
    std::vector<AdvisorChannel> found;
    auto& q = db.stmt(kListEligible);
    q.bind(1, date);
    auto flush = [&] {
      if (out.empty()) return;
      finish_row(out.back(), std::move(found));
      found.clear();
      if (out.back().channels.empty()) out.pop_back();  // only channels outside its list: unreachable
    };
    // Rows come ordered by advisor_id, one per (advisor, channel): group consecutive rows.
    while (q.executeStep()) {
      std::string id = q.getColumn(0).getString();
      if (out.empty() || out.back().advisor.advisor_id != id) {
        flush();
        AdvisorRow row;
        row.advisor = read_advisor(q, row.updated_at);
        out.push_back(std::move(row));
      }
      auto ch = channel_from_string(q.getColumn(12).getString());
      if (ch) found.push_back(AdvisorChannel{*ch, q.getColumn(13).getString(), true});
    }
    flush();
    return out;
  });
}

namespace {
/// A text column without a copy; valid until the statement steps again.
std::string_view text_of(SQLite::Statement& q, int col) {
  const auto c = q.getColumn(col);  // one Column (a shared_ptr copy) for both calls
  const char* p = c.getText();      // text first, then its length in bytes (sqlite3_column_bytes)
  return {p, static_cast<std::size_t>(c.getBytes())};
}
}  // namespace

void PlanCandidatesForDate(Db& db, const std::string& date, const std::function<void(PlanCandidate&&)>& fn,
                           std::map<std::string, std::int64_t>* by_language, const AdvisorIdRange& range) {
  guarded("listing advisors to plan", [&] {
    auto& qa = db.stmt(plan_sql(kPlanAdvisors, "a.advisor_id", range, kPlanAdvisorsOrder));
    auto& qc = db.stmt(plan_sql(kPlanChannels, "advisor_id", range, kPlanChannelsOrder));
    auto& qs = db.stmt(plan_sql(kPlanAssignments, "advisor_id", range, kPlanAssignmentsOrder));
    qa.bind(1, date);
    qs.bind(1, date);
    for (auto* q : {&qa, &qc, &qs}) {
      if (range.from) q->bind(":from", *range.from);
      if (range.to) q->bind(":to", *range.to);
    }
    // Most advisors share a preference list and a language: each distinct text is parsed or
    // looked up once per run of equal values, not once per advisor.
    std::string last_list;
    std::vector<Channel> last_preference;
    bool have_list = false;
    std::string last_language;
    std::int64_t* language_count = nullptr;
    try {
      // advisor_channels and the day's assignments are walked beside the advisors: each cursor
      // only moves forward, to the current advisor_id (BINARY order, as SQLite sorts TEXT, and as
      // std::string_view compares).
      bool c_more = qc.executeStep();
      bool s_more = qs.executeStep();
      while (qa.executeStep()) {
        const std::string_view id = text_of(qa, 0);
        while (c_more && text_of(qc, 0) < id) c_more = qc.executeStep();
        if (!c_more || text_of(qc, 0) != id) continue;  // no opted-in channel row: the join drops it
        PlanCandidate cur;
        cur.advisor_id.assign(id);
        cur.tier.assign(text_of(qa, 1));
        cur.timezone.assign(text_of(qa, 2));
        cur.slot.assign(text_of(qa, 3));
        const std::string_view list = text_of(qa, 4);
        if (!have_list || list != last_list) {
          last_list.assign(list);
          last_preference.clear();
          for (const auto& part : split_list(list, '|')) {
            if (auto ch = channel_from_string(part)) last_preference.push_back(*ch);
          }
          have_list = true;
        }
        cur.preference = last_preference;
        const std::string_view language = text_of(qa, 5);
        cur.language.assign(language);
        if (by_language) {
          if (!language_count || language != last_language) {
            last_language.assign(language);
            language_count = &(*by_language)[last_language];
          }
          ++*language_count;
        }
        // Only channels in the advisor's own list count (as in AdvisorListEligible).
        for (; c_more && text_of(qc, 0) == id; c_more = qc.executeStep()) {
          if (auto ch = channel_from_string(text_of(qc, 1));
              ch && std::find(cur.preference.begin(), cur.preference.end(), *ch) != cur.preference.end()) {
            cur.opted |= static_cast<std::uint8_t>(1U << static_cast<unsigned>(*ch));
          }
        }
        while (s_more && text_of(qs, 0) < id) s_more = qs.executeStep();
        if (s_more && text_of(qs, 0) == id) {
          cur.content_id = std::string(text_of(qs, 1));
          cur.source.assign(text_of(qs, 2));
        }
        if (cur.opted != 0) fn(std::move(cur));
      }
    } catch (...) {
      qa.reset();
      qc.reset();
      qs.reset();
      throw;
    }
    // The advisors' scan ran to its end (SQLite resets it at the next bind); the other two may
    // stop early and must not hold their read cursors.
    qc.reset();
    qs.reset();
  });
}

std::optional<std::string> AdvisorIdAt(Db& db, std::int64_t position) {
  return guarded("finding an advisor by position", [&]() -> std::optional<std::string> {
    auto& q = db.stmt("SELECT advisor_id FROM advisors ORDER BY advisor_id LIMIT 1 OFFSET ?");
    q.bind(1, position);
    std::optional<std::string> out;
    if (q.executeStep()) out = q.getColumn(0).getString();
    q.reset();
    return out;
  });
}

std::vector<Advisor> AdvisorListEligibleForRanking(Db& db, const std::string& date) {
  std::vector<Advisor> out;
  AdvisorEachEligibleForRanking(db, date, [&](const Advisor& a) { out.push_back(a); });
  return out;
}

std::size_t AdvisorEachEligibleForRanking(Db& db, const std::string& date, const std::function<void(const Advisor&)>& fn) {
  return guarded("listing eligible advisors", [&] {
    auto& q = db.stmt(kRankingCandidates);
    q.bind(1, date);
    Advisor a;              // the advisor being read, passed on when its last row has been read
    bool started = false;   // `a` holds an advisor
    bool reachable = false;  // `a` has an opted-in channel of its own list
    std::size_t passed = 0;
    auto pass = [&] {
      // An advisor whose opted-in channels are all outside its list is dropped, as
      // AdvisorListEligible drops it.
      if (!started || !reachable) return;
      fn(a);
      ++passed;
    };
    try {
      // Rows come ordered by advisor_id, one per (advisor, opted-in channel): group consecutive rows.
      while (q.executeStep()) {
        const SQLite::Column id = q.getColumn(0);
        const std::string_view id_text(id.getText(), static_cast<std::size_t>(id.getBytes()));
        if (!started || a.advisor_id != id_text) {
          pass();
          started = true;
          reachable = false;
          a.advisor_id.assign(id_text);
          a.channels.clear();
          for (const auto& part : split_list(q.getColumn(1).getText(), '|')) {
            if (auto ch = channel_from_string(part)) a.channels.push_back(*ch);
          }
          a.language.assign(q.getColumn(2).getText());
          a.topics = split_list(q.getColumn(3).getText(), ';');
        }
        if (auto ch = channel_from_string(q.getColumn(4).getText());
            ch && std::find(a.channels.begin(), a.channels.end(), *ch) != a.channels.end()) {
          reachable = true;
        }
      }
      pass();
    } catch (...) {
      q.reset();
      throw;
    }
    return passed;
  });
}

std::int64_t AdvisorCount(Db& db) {
  return guarded("counting advisors", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM advisors");
    q.executeStep();
    std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
