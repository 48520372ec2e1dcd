// store/deliveries.cpp: the batched inserter plan-deliveries writes a million rows through.
#include "store/deliveries.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "app/plan.hpp"
#include "app/restore.hpp"
#include "domain/planner.hpp"
#include "domain/restore.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/migrations.hpp"
#include "store/restore.hpp"
#include "store/status_events.hpp"

#include "db_fixture.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Deliveries = 1'795'000'000'000;

class DeliveryInserterTest : public test_support::DbTest {
 protected:
  DeliveryInserterTest() : DbTest("deliveries") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    run_id_ = test_support::add_content_and_run(*db_, kT0Deliveries);
    for (int i = 0; i < kAdvisors; ++i) test_support::add_whatsapp_advisor(*db_, advisor(i), kT0Deliveries);
  }
  static std::string advisor(int i) { return "A" + std::to_string(1000 + i); }
  store::DeliveryInsertParams row(int i) const {
    return test_support::planned_delivery(run_id_, advisor(i), "2026-11-28", kT0Deliveries, kT0Deliveries + i,
                                          kT0Deliveries);
  }
  std::int64_t count(const std::string& where = "1") { return scalar("SELECT COUNT(*) FROM deliveries WHERE " + where); }

  static constexpr int kAdvisors = 2 * static_cast<int>(store::DeliveryInserter::kBatch) + 7;
  std::int64_t run_id_ = 0;
};

TEST_F(DeliveryInserterTest, FullBatchesAndTheTailAreAllWrittenInOrder) {
  std::size_t inserted = 0;
  db_->write_tx([&] {
    store::DeliveryInserter ins(*db_);
    for (int i = 0; i < kAdvisors; ++i) ins.add(row(i));
    inserted = ins.finish();
  });
  EXPECT_EQ(inserted, static_cast<std::size_t>(kAdvisors));
  EXPECT_EQ(count(), kAdvisors);
  // Delivery ids follow the order rows were added (dispatch relies on ids in send order).
  EXPECT_EQ(count("delivery_id = (SELECT MIN(delivery_id) FROM deliveries) AND advisor_id = 'A1000'"), 1);
  EXPECT_EQ(count("delivery_id = (SELECT MAX(delivery_id) FROM deliveries) AND advisor_id = '" +
                  advisor(kAdvisors - 1) + "'"),
            1);
  EXPECT_EQ(count("planned_at - " + std::to_string(kT0Deliveries) + " = CAST(SUBSTR(advisor_id, 2) AS INTEGER) - 1000"),
            kAdvisors);
}

// add_ref binds the caller's strings where they are (plan-deliveries): rows added by reference,
// by copy, or both in one batch must be stored exactly as DeliveryInsert stores them one by one,
// full batches and the tail alike, with the caller's row object reused for every row.
TEST_F(DeliveryInserterTest, RowsByReferenceAreStoredAsRowsByCopy) {
  auto dump = [&] {
    SQLite::Statement q(db_->raw(),
                        "SELECT delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, "
                        "channel, channel_index, sender, planned_at, deadline_at, updated_at, order_key FROM deliveries "
                        "ORDER BY delivery_id");
    std::string out;
    while (q.executeStep()) {
      for (int c = 0; c < q.getColumnCount(); ++c) out += q.getColumn(c).getString() + "|";
      out += "\n";
    }
    return out;
  };
  std::vector<store::DeliveryInsertParams> rows;
  for (int i = 0; i < kAdvisors; ++i) {
    rows.push_back(row(i));
    rows.back().tier = i % 3 ? "gold" : "silver";
    rows.back().sender = "wa-" + std::to_string(1 + i % 4);
    rows.back().channel_index = i % 2;
  }
  // The reference: one DeliveryInsert per row.
  db_->exec("BEGIN IMMEDIATE");
  for (const auto& r : rows) ASSERT_TRUE(store::DeliveryInsert(*db_, r));
  const std::string expected = dump();
  db_->exec("ROLLBACK");
  ASSERT_EQ(count(), 0);
  std::size_t inserted = 0;
  db_->write_tx([&] {
    store::DeliveryInserter ins(*db_);
    store::DeliveryInsertRef ref;  // reused, as plan-deliveries does
    for (int i = 0; i < kAdvisors; ++i) {
      const auto& r = rows[static_cast<std::size_t>(i)];
      if (i % 5 == 4) {  // every fifth row by copy, from a temporary
        ins.add(store::DeliveryInsertParams(r));
        continue;
      }
      ref.run_id = r.run_id;
      ref.advisor_id = &r.advisor_id;
      ref.date = &r.date;
      ref.slot_at = r.slot_at;
      ref.content_id = &r.content_id;
      ref.source = &r.source;
      ref.tier = &r.tier;
      ref.tier_rank = r.tier_rank;
      ref.channel = &r.channel;
      ref.channel_index = r.channel_index;
      ref.sender = &r.sender;
      ref.planned_at = r.planned_at;
      ref.deadline_at = r.deadline_at;
      ref.now = r.now;
      ins.add_ref(ref);
    }
    inserted = ins.finish();
  });
  EXPECT_EQ(inserted, static_cast<std::size_t>(kAdvisors));
  EXPECT_EQ(dump(), expected);
}

TEST_F(DeliveryInserterTest, RowsAlreadyPlannedAreSkippedAndNotCounted) {
  // Every third advisor already has its delivery (a re-plan after a partial one).
  db_->write_tx([&] {
    for (int i = 0; i < kAdvisors; i += 3) ASSERT_TRUE(store::DeliveryInsert(*db_, row(i)));
  });
  const std::int64_t before = count();
  std::size_t inserted = 0;
  db_->write_tx([&] {
    store::DeliveryInserter ins(*db_);
    for (int i = 0; i < kAdvisors; ++i) ins.add(row(i));
    inserted = ins.finish();
  });
  EXPECT_EQ(static_cast<std::int64_t>(inserted), kAdvisors - before);
  EXPECT_EQ(count(), kAdvisors);
}

TEST_F(DeliveryInserterTest, EveryRowCarriesItsOrderKeyAndTheKeyLeadsTheUniquenessIndex) {
  db_->write_tx([&] {
    store::DeliveryInserter ins(*db_);
    for (int i = 0; i < kAdvisors; ++i) ins.add(row(i));
    ins.finish();
  });
  // The store computes it (batched and single-row paths alike); SQL's daybreak_order_key agrees.
  EXPECT_EQ(count("order_key = daybreak_order_key(advisor_id, date)"), kAdvisors);
  SQLite::Statement k(db_->raw(), "SELECT order_key FROM deliveries WHERE advisor_id = 'A1000'");
  ASSERT_TRUE(k.executeStep());
  EXPECT_EQ(k.getColumn(0).getInt64(), delivery_order_key("A1000", "2026-11-28"));
  // The index behind UNIQUE: date, order_key, advisor_id, slot_at, in that order.
  std::string cols;
  SQLite::Statement ix(db_->raw(),
                       "SELECT ii.name FROM pragma_index_list('deliveries') il, pragma_index_info(il.name) ii "
                       "WHERE il.[unique] = 1 AND il.origin = 'u' ORDER BY ii.seqno");
  while (ix.executeStep()) cols += ix.getColumn(0).getString() + ",";
  EXPECT_EQ(cols, "date,order_key,advisor_id,slot_at,");
  // A lookup of one advisor's day is a search of that index, not a scan of the table.
  SQLite::Statement plan(db_->raw(),
                         "EXPLAIN QUERY PLAN SELECT delivery_id FROM deliveries WHERE date = '2026-11-28' "
                         "AND order_key = 1 AND advisor_id = 'A1000'");
  ASSERT_TRUE(plan.executeStep());
  EXPECT_NE(plan.getColumn(3).getString().find("SEARCH deliveries USING"), std::string::npos)
      << plan.getColumn(3).getString();
}

TEST_F(DeliveryInserterTest, PlanningReadsTheDaysAssignmentAmongSeveralKeptDays) {
  // Three days of assignments per advisor, the middle one asked for: the planner's read goes
  // through the date-led covering index (sql/008), and must still pair each advisor with the
  // assignment of that day only.
  for (const char* c : {"C2", "C3"}) {
    Content content;
    content.content_id = c;
    content.title = "T";
    content.body = "B";
    content.language = "en";
    store::ContentUpsert(*db_, {content, kT0Deliveries});
  }
  db_->write_tx([&] {
    for (int i = 0; i < kAdvisors; ++i) {
      int day = 0;
      for (const char* date : {"2026-11-27", "2026-11-28", "2026-11-29"}) {
        store::AssignmentUpsertParams p;
        p.assignment.advisor_id = advisor(i);
        p.assignment.date = date;
        p.assignment.content_id = day == 1 && i % 2 == 0 ? "C3" : "C" + std::to_string(day + 1);
        p.assignment.source = day == 1 ? Source::fallback : Source::editorial;
        p.created_at = kT0Deliveries;
        store::AssignmentUpsert(*db_, p);
        ++day;
      }
    }
  });
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'assignments_day'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'assignments_date'"), 0);
  int seen = 0;
  store::PlanCandidatesForDate(*db_, "2026-11-28", [&](store::PlanCandidate&& c) {
    const int i = std::stoi(c.advisor_id.substr(1)) - 1000;
    ASSERT_TRUE(c.content_id.has_value()) << c.advisor_id;
    EXPECT_EQ(*c.content_id, i % 2 == 0 ? "C3" : "C2") << c.advisor_id;
    EXPECT_EQ(c.source, "fallback") << c.advisor_id;
    ++seen;
  });
  EXPECT_EQ(seen, kAdvisors);
}

// PlanCandidatesForDate merges three ordered scans (advisors, their opted-in channels, the day's
// assignments) instead of running one three-way join. On a generated population with every case
// the join decides (no channel row, channels opted out or outside the advisor's own list, paused
// on, before or after the day, assignments on other days, ids whose byte order differs from
// their length order, non-ASCII ids), it must hand over exactly what the join gave, in the same
// order, and count the same advisors per language. The reference below is the join and its
// grouping as plan-deliveries ran them before the merge.
TEST_F(DeliveryInserterTest, PlanCandidatesMergeGivesTheJoinsRowsOnAGeneratedPopulation) {
  const std::string day = "2026-11-28";
  db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('C2', 't', 'b', 'hi', 0)");
  std::uint64_t seed = 42;
  auto next = [&seed](std::uint64_t n) {  // a fixed LCG: the same population on every run
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>((seed >> 33) % n);
  };
  const std::vector<std::string> pieces = {"A", "a", "1", "10", "_", "-", "Z", "\xc3\xa9", "0"};
  const std::vector<std::string> lists = {"whatsapp", "email", "whatsapp|email", "email|whatsapp", "webhook|whatsapp",
                                          " whatsapp | email ", "sms|email", "", "whatsapp|webhook|email"};
  const std::vector<std::string> days = {"2026-11-27", day, "2026-11-29"};
  std::set<std::string> ids;
  while (ids.size() < 400) {
    std::string id;
    const std::size_t len = 1 + next(4);
    for (std::size_t k = 0; k < len; ++k) id += pieces[next(pieces.size())];
    ids.insert(id);
  }
  db_->write_tx([&] {
    auto& adv = db_->stmt(
        "INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, paused_from, "
        "paused_until, updated_at) VALUES (?1, 'n', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)");
    for (const auto& id : ids) {
      adv.bind(1, id);
      adv.bind(2, std::string(next(2) ? "gold" : "standard"));
      adv.bind(3, std::string(next(5) ? "Asia/Kolkata" : ""));
      adv.bind(4, std::string(next(5) ? "06:00" : "07:30"));
      adv.bind(5, lists[next(lists.size())]);
      adv.bind(6, next(8) ? 1 : 0);
      adv.bind(7, std::string(next(3) ? "en" : "hi"));
      switch (next(6)) {
        case 0: adv.bind(8, std::string("2026-11-20")); adv.bind(9, std::string("2026-12-01")); break;  // paused on the day
        case 1: adv.bind(8, std::string("2026-11-29")); adv.bind(9); break;                              // from the next day
        case 2: adv.bind(8); adv.bind(9, std::string("2026-11-27")); break;                              // until the day before
        case 3: adv.bind(8); adv.bind(9, day); break;                                                    // until the day itself
        default: adv.bind(8); adv.bind(9); break;
      }
      adv.exec();
      adv.reset();
      for (const char* ch : {"whatsapp", "email", "webhook"}) {
        if (next(3) == 0) continue;  // no row for this channel
        db_->exec(std::string("INSERT INTO advisor_channels(advisor_id, channel, address, opted_in) VALUES ('") + id +
                  "', '" + ch + "', 'x', " + (next(4) ? "1" : "0") + ")");
      }
      for (const auto& d : days) {
        if (next(3) == 0) continue;
        store::AssignmentUpsertParams p;
        p.assignment.advisor_id = id;
        p.assignment.date = d;
        p.assignment.content_id = next(2) ? "C1" : "C2";
        p.assignment.source = next(2) ? Source::fallback : Source::editorial;
        p.created_at = kT0Deliveries;
        store::AssignmentUpsert(*db_, p);
      }
    }
  });
  auto key = [](const store::PlanCandidate& c) {
    std::string k = c.advisor_id + "/" + c.tier + "/" + c.timezone + "/" + c.slot + "/" + c.language + "/";
    for (Channel ch : c.preference) k += std::string(to_string(ch)) + ",";
    return k + "/" + std::to_string(c.opted) + "/" + c.content_id.value_or("(none)") + "/" + c.source;
  };
  std::vector<std::string> merged;
  std::map<std::string, std::int64_t> merged_languages;
  store::PlanCandidatesForDate(*db_, day, [&](store::PlanCandidate&& c) { merged.push_back(key(c)); }, &merged_languages);

  // The join, as it was.
  std::vector<std::string> joined;
  std::map<std::string, std::int64_t> joined_languages;
  SQLite::Statement q(db_->raw(), R"sql(
SELECT a.advisor_id, a.tier, a.timezone, a.slot, a.channels, c.channel, s.content_id, s.source, a.language
FROM advisors a JOIN advisor_channels c ON c.advisor_id = a.advisor_id
LEFT JOIN assignments s INDEXED BY assignments_day ON s.advisor_id = a.advisor_id AND s.date = ?1
WHERE a.opted_in = 1 AND c.opted_in = 1
  AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL)
           AND COALESCE(a.paused_from, '') <= ?1 AND (a.paused_until IS NULL OR ?1 <= a.paused_until))
ORDER BY a.advisor_id)sql");
  q.bind(1, day);
  store::PlanCandidate cur;
  bool have = false;
  auto flush = [&] {
    if (have && cur.opted != 0) joined.push_back(key(cur));
    cur = store::PlanCandidate{};
    have = false;
  };
  while (q.executeStep()) {
    const std::string id = q.getColumn(0).getString();
    if (!have || cur.advisor_id != id) {
      flush();
      have = true;
      cur.advisor_id = id;
      cur.tier = q.getColumn(1).getString();
      cur.timezone = q.getColumn(2).getString();
      cur.slot = q.getColumn(3).getString();
      cur.language = q.getColumn(8).getString();
      for (const auto& part : split_list(q.getColumn(4).getString(), '|')) {
        if (auto ch = channel_from_string(part)) cur.preference.push_back(*ch);
      }
      if (!q.getColumn(6).isNull()) {
        cur.content_id = q.getColumn(6).getString();
        cur.source = q.getColumn(7).getString();
      }
      ++joined_languages[cur.language];
    }
    if (auto ch = channel_from_string(q.getColumn(5).getString());
        ch && std::find(cur.preference.begin(), cur.preference.end(), *ch) != cur.preference.end()) {
      cur.opted |= static_cast<std::uint8_t>(1U << static_cast<unsigned>(*ch));
    }
  }
  flush();
  // The population reaches every case: some planned with and some without an assignment, some
  // left out (no usable channel, not opted in, paused).
  EXPECT_GT(joined.size(), 100U);
  EXPECT_LT(joined.size(), ids.size());
  EXPECT_EQ(merged, joined);
  EXPECT_EQ(merged_languages, joined_languages);

  // Read in two advisor_id ranges, [-, split) then [split, -), as plan-deliveries' two readers do
  // (each_plan_candidate, at AdvisorIdAt(AdvisorCount / 2)): the same candidates in the same order, and the
  // same counts summed, wherever the split falls: the middle advisor, a stored id, a text between
  // ids, before or after every id.
  const auto middle = store::AdvisorIdAt(*db_, store::AdvisorCount(*db_) / 2);
  ASSERT_TRUE(middle.has_value());
  std::set<std::string> stored = ids;  // with the fixture's own advisors
  for (int i = 0; i < kAdvisors; ++i) stored.insert(advisor(i));
  EXPECT_EQ(*middle, *std::next(stored.begin(), static_cast<std::ptrdiff_t>(stored.size() / 2)))
      << "the stored ids' middle, in BINARY order";
  EXPECT_FALSE(store::AdvisorIdAt(*db_, static_cast<std::int64_t>(stored.size())).has_value()) << "past the last";
  for (const std::string& split : {*middle, *std::next(ids.begin(), 7), std::string("1_"), std::string(""), std::string("\xff")}) {
    std::vector<std::string> halves;
    std::map<std::string, std::int64_t> halves_languages;
    auto add = [&](store::PlanCandidate&& c) { halves.push_back(key(c)); };
    store::PlanCandidatesForDate(*db_, day, add, &halves_languages, store::AdvisorIdRange{std::nullopt, split});
    const std::size_t lower = halves.size();
    store::PlanCandidatesForDate(*db_, day, add, &halves_languages, store::AdvisorIdRange{split, std::nullopt});
    EXPECT_EQ(halves, merged) << "split at " << split;
    EXPECT_EQ(halves_languages, merged_languages) << "split at " << split;
    if (split == *middle) {
      EXPECT_GT(lower, merged.size() / 4) << "the middle splits the candidates";
    }
  }
}

// plan-deliveries writes a run's rows in send order, so delivery ids follow planned_at (dispatch
// relies on it), and rows planned for the same millisecond keep the run's item order, which is
// advisor order: what a stable sort of the items by planned_at gives. Three senders at 1,000 mps
// put several sends in the same millisecond.
TEST_F(DeliveryInserterTest, PlanWritesRowsInSendOrderWithTiesInAdvisorOrder) {
  const std::string day = "2026-11-28";
  db_->write_tx([&] {
    for (int i = 0; i < kAdvisors; ++i) {
      store::AssignmentUpsertParams p;
      p.assignment.advisor_id = advisor(i);
      p.assignment.date = day;
      p.assignment.content_id = "C1";
      p.assignment.source = Source::editorial;
      p.created_at = kT0Deliveries;
      store::AssignmentUpsert(*db_, p);
    }
  });
  Config cfg;
  for (const char* id : {"wa-1", "wa-2", "wa-3"}) {
    cfg.senders.push_back({});
    cfg.senders.back().id = id;
    cfg.senders.back().channel = Channel::whatsapp;
    cfg.senders.back().mps = 1000;
  }
  const auto out = plan_deliveries(*db_, cfg, day, kT0Deliveries, false);
  ASSERT_EQ(out.inserted, static_cast<std::size_t>(kAdvisors)) << out.report.dump();
  SQLite::Statement q(db_->raw(), "SELECT planned_at, advisor_id FROM deliveries WHERE date = '" + day + "' ORDER BY delivery_id");
  std::vector<std::pair<Millis, std::string>> rows;
  while (q.executeStep()) rows.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kAdvisors));
  std::size_t ties = 0;
  for (std::size_t k = 1; k < rows.size(); ++k) {
    EXPECT_LE(rows[k - 1].first, rows[k].first) << k;
    if (rows[k - 1].first == rows[k].first) {
      ++ties;
      EXPECT_LT(rows[k - 1].second, rows[k].second) << k;
    }
  }
  EXPECT_GT(ties, 0U);  // the population has ties, so their order is tested
}

// On a large ledger plan-deliveries reads its candidates in two halves at once, the upper half
// through a second connection (each_plan_candidate; a ledger in WAL mode only). The plan it
// writes must be the one a single pass writes: the same rows, ids, order and report. The single
// pass is forced by a copy of the ledger in rollback-journal mode, where no second connection
// may read beside the writer.
TEST_F(DeliveryInserterTest, PlanReadInTwoHalvesWritesWhatOnePassWrites) {
  const std::string day = "2026-11-28";
  constexpr int kMany = 25'000;  // above the load's split threshold (20,000 advisors)
  db_->write_tx([&] {
    db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('C2', 't', 'b', 'hi', 0)");
    // Ids whose byte order is not their number order; tiers, slots, time zones, languages and
    // channel lists mixed; some paused on the day, some not opted in, some without an assignment.
    db_->exec(R"sql(
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < )sql" + std::to_string(kMany) + R"sql()
INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, paused_from, paused_until, updated_at)
SELECT 'M' || i, 'n', CASE i % 3 WHEN 0 THEN 'gold' ELSE 'standard' END,
       CASE i % 7 WHEN 0 THEN 'Asia/Dubai' ELSE 'Asia/Kolkata' END, CASE i % 5 WHEN 0 THEN '07:30' ELSE '06:00' END,
       CASE i % 4 WHEN 0 THEN 'email|whatsapp' ELSE 'whatsapp|email' END, CASE WHEN i % 97 = 0 THEN 0 ELSE 1 END,
       CASE i % 3 WHEN 1 THEN 'hi' ELSE 'en' END, CASE WHEN i % 89 = 0 THEN '2026-11-20' END,
       CASE WHEN i % 89 = 0 THEN '2026-12-01' END, 0
FROM n)sql");
    db_->exec("INSERT INTO advisor_channels(advisor_id, channel, address, opted_in) SELECT advisor_id, 'whatsapp', '+919810012345', "
              "CASE WHEN CAST(SUBSTR(advisor_id, 2) AS INTEGER) % 11 = 0 THEN 0 ELSE 1 END FROM advisors WHERE advisor_id LIKE 'M%'");
    db_->exec("INSERT INTO advisor_channels(advisor_id, channel, address, opted_in) SELECT advisor_id, 'email', 'a@example.com', 1 "
              "FROM advisors WHERE advisor_id LIKE 'M%' AND CAST(SUBSTR(advisor_id, 2) AS INTEGER) % 2 = 0");
    db_->exec("INSERT INTO assignments(advisor_id, date, content_id, source, created_at) SELECT advisor_id, '" + day +
              "', CASE language WHEN 'hi' THEN 'C2' ELSE 'C1' END, 'fallback', 0 FROM advisors "
              "WHERE advisor_id LIKE 'M%' AND CAST(SUBSTR(advisor_id, 2) AS INTEGER) % 13 <> 0");
  });
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const std::string one_pass_path = (dir_ / "one-pass.db").string();
  db_->exec("VACUUM INTO '" + one_pass_path + "'");
  store::Db one_pass(one_pass_path);
  one_pass.exec("PRAGMA journal_mode=DELETE");
  ASSERT_EQ(store::reader_beside(one_pass), nullptr) << "a rollback journal: one pass";
  ASSERT_NE(store::reader_beside(*db_), nullptr) << "WAL: two halves";

  Config cfg;
  for (auto [id, channel] : {std::pair{"wa-1", Channel::whatsapp}, {"wa-2", Channel::whatsapp}, {"mail-1", Channel::email}}) {
    cfg.senders.push_back({});
    cfg.senders.back().id = id;
    cfg.senders.back().channel = channel;
    cfg.senders.back().mps = 200;
  }
  auto halves = plan_deliveries(*db_, cfg, day, kT0Deliveries, false);
  auto single = plan_deliveries(one_pass, cfg, day, kT0Deliveries, false);
  for (auto* r : {&halves.report, &single.report}) r->erase("timings");
  EXPECT_EQ(halves.report, single.report);
  EXPECT_GT(halves.inserted, static_cast<std::size_t>(kMany / 2));
  EXPECT_GT(halves.report["unassigned"].size(), 0U);
  auto dump = [](store::Db& db) {
    SQLite::Statement q(db.raw(), "SELECT delivery_id, run_id, advisor_id, slot_at, content_id, source, tier, channel, "
                                  "channel_index, sender, planned_at, deadline_at FROM deliveries ORDER BY delivery_id");
    std::vector<std::string> rows;
    while (q.executeStep()) {
      std::string row;
      for (int c = 0; c < q.getColumnCount(); ++c) row += q.getColumn(c).getString() + "|";
      rows.push_back(std::move(row));
    }
    return rows;
  };
  const auto rows = dump(*db_);
  EXPECT_EQ(rows.size(), halves.inserted);
  EXPECT_EQ(rows, dump(one_pass));
}

// sql/007 rebuilds deliveries on a ledger that already holds rows: the rows, their ids and their
// attempts come through, each gets its order key, and uniqueness holds under the new key.
class DeliveriesMigrationTest : public test_support::DbTest {
 protected:
  DeliveriesMigrationTest() : DbTest("deliveries-migration") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    // Start again from a ledger at version 6: the fixture's database is replaced by one built
    // with the embedded migrations before 007 only.
    db_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_path() + suffix);
    store::OpenOptions o;
    o.migrate = false;
    store::Db v6(db_path(), o);
    v6.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT '')");
    for (const auto& m : store::embedded_migrations()) {
      if (m.version >= 7) continue;
      v6.exec(std::string(m.sql));
      v6.exec("INSERT INTO schema_migrations(version, name) VALUES (" + std::to_string(m.version) + ", '" + std::string(m.name) + "')");
    }
    v6.exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('C1', 't', 'b', 'en', 0)");
    v6.exec("INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, updated_at) "
            "VALUES ('A1', 'a', 'gold', 'Asia/Kolkata', '06:00', 'whatsapp', 1, 'en', 0), "
            "('A2', 'b', 'gold', 'Asia/Kolkata', '06:00', 'whatsapp', 1, 'en', 0)");
    v6.exec("INSERT INTO runs(run_id, date, slot_at, window_start, window_end, deadline_at) VALUES "
            "(1, '2026-11-27', 100, 70, 370, 400), (2, '2026-11-28', 200, 170, 470, 500)");
    // Ids out of insertion order on purpose: the copy must keep them, not renumber.
    v6.exec("INSERT INTO deliveries(delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, "
            "state, channel, sender, planned_at, deadline_at, updated_at, last_error, resent_at) VALUES "
            "(7, 1, 'A1', '2026-11-27', 100, 'C1', 'editorial', 'gold', 1, 'accepted', 'whatsapp', 'wa-1', 110, 400, 1, NULL, NULL), "
            "(3, 2, 'A1', '2026-11-28', 200, 'C1', 'fallback', 'gold', 1, 'dead', 'whatsapp', 'wa-1', 210, 500, 2, '131026', 250), "
            "(5, 2, 'A2', '2026-11-28', 200, 'C1', 'editorial', 'gold', 1, 'planned', 'whatsapp', 'wa-2', 220, 500, 3, NULL, NULL)");
    v6.exec("INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome) "
            "VALUES (3, 1, 'whatsapp', 'wa-1', 210, 211, 'permanent')");
  }
};

TEST_F(DeliveriesMigrationTest, RowsIdsAndAttemptsSurviveWithTheirOrderKeys) {
  db_ = std::make_unique<store::Db>(db_path());  // migrates
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = 7"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries"), 3);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE order_key = daybreak_order_key(advisor_id, date)"), 3);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 3 AND state = 'dead' AND last_error = '131026' "
                   "AND resent_at = 250 AND source = 'fallback' AND sender = 'wa-1' AND planned_at = 210"),
            1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.advisor_id = 'A1'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
  EXPECT_EQ(scalar("PRAGMA foreign_keys"), 1);  // back on after the migration
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' AND name IN "
                   "('deliveries_run_state', 'deliveries_provider_message', 'deliveries_dead', 'deliveries_date')"),
            4);
  // The same (advisor, date, slot) is still one delivery; a new day of the same advisor is not.
  store::DeliveryInsertParams p = test_support::planned_delivery(2, "A2", "2026-11-28", 200, 230, 4);
  EXPECT_FALSE(store::DeliveryInsert(*db_, p));
  p.date = "2026-11-29";
  EXPECT_TRUE(store::DeliveryInsert(*db_, p));
  // New rows get ids after the copied ones.
  EXPECT_EQ(scalar("SELECT MAX(delivery_id) FROM deliveries"), 8);
}

TEST_F(DeliveriesMigrationTest, ABrokenReferenceStopsTheMigrationAndLeavesTheLedgerAsItWas) {
  {
    store::OpenOptions o;
    o.migrate = false;
    store::Db raw(db_path(), o);
    raw.exec("PRAGMA foreign_keys=OFF");
    raw.exec("UPDATE deliveries SET run_id = 99 WHERE delivery_id = 5");
  }
  try {
    store::Db migrated(db_path());
    FAIL() << "the migration should have refused a delivery of a missing run";
  } catch (const store::StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("007_deliveries_by_date.sql"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing row of runs"), std::string::npos) << e.what();
  }
  store::OpenOptions o;
  o.migrate = false;
  db_ = std::make_unique<store::Db>(db_path(), o);
  EXPECT_EQ(scalar("SELECT MAX(version) FROM schema_migrations"), 6);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries"), 3);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM pragma_table_info('deliveries') WHERE name = 'order_key'"), 0);
}

// ---- daybreak restore: what a backup's unfinished deliveries become --------------------------

constexpr Millis kLead = 400;

// DeliveryClaimMany (dispatch's claims, 64 rows a statement) by DeliveryClaim's rule, row by
// row: claimable states only, only while the caller owns the run, an id listed twice claimed by
// its first entry; across full chunks and a short last one, in the caller's order.
TEST_F(DeliveryInserterTest, ClaimManyClaimsExactlyTheRowsOneByOneClaimsWould) {
  db_->write_tx([&] {
    store::DeliveryInserter ins(*db_);
    for (int i = 0; i < kAdvisors; ++i) ins.add(row(i));
    ins.finish();
  });
  db_->exec("UPDATE runs SET owner = 'me' WHERE run_id = " + std::to_string(run_id_));
  const auto first = scalar("SELECT MIN(delivery_id) FROM deliveries");
  // Rows no claim may take: cancelled, accepted, and one another process holds.
  db_->exec("UPDATE deliveries SET state = 'cancelled' WHERE delivery_id % 7 = 0");
  db_->exec("UPDATE deliveries SET state = 'accepted' WHERE delivery_id % 11 = 0 AND state = 'planned'");
  db_->exec("UPDATE deliveries SET state = 'retry_wait' WHERE delivery_id % 13 = 0 AND state = 'planned'");
  db_->exec("UPDATE deliveries SET state = 'sending', claim_owner = 'other' WHERE delivery_id = " + std::to_string(first + 1));
  std::vector<std::int64_t> ids;
  for (int i = kAdvisors - 1; i >= 0; --i) {
    if (i % 2 == 1) ids.push_back(first + i);  // the odd rows backwards, then the even ones
  }
  for (int i = 0; i < kAdvisors; i += 2) ids.push_back(first + i);
  ids.push_back(first + 4);       // listed twice
  ids.push_back(first + 100000);  // no such row
  ASSERT_GT(ids.size(), 2 * 64U);
  ASSERT_NE(ids.size() % 64, 0U);
  std::vector<char> expected;
  std::set<std::int64_t> seen;
  for (auto id : ids) {
    const auto st = scalar("SELECT COALESCE((SELECT state IN ('planned', 'retry_wait', 'uncertain') FROM deliveries "
                           "WHERE delivery_id = " + std::to_string(id) + "), 0)");
    expected.push_back(st == 1 && seen.insert(id).second ? 1 : 0);
  }
  const auto claimable = scalar("SELECT COUNT(*) FROM deliveries WHERE state IN ('planned', 'retry_wait', 'uncertain')");
  std::vector<char> got;
  db_->write_tx([&] { got = store::DeliveryClaimMany(*db_, ids, "me", kT0Deliveries + 60'000, kT0Deliveries + 5); });
  EXPECT_EQ(got, expected);
  EXPECT_EQ(count("state = 'sending' AND claim_owner = 'me' AND claim_until = " + std::to_string(kT0Deliveries + 60'000) +
                  " AND updated_at = " + std::to_string(kT0Deliveries + 5)),
            claimable);
  EXPECT_EQ(count("state = 'sending' AND claim_owner = 'other'"), 1);
  EXPECT_EQ(count("state IN ('planned', 'retry_wait', 'uncertain')"), 0);
  // Another process owns the run: nothing is claimed.
  db_->exec("UPDATE deliveries SET state = 'planned', claim_owner = NULL WHERE claim_owner = 'me'");
  db_->exec("UPDATE runs SET owner = 'new-owner' WHERE run_id = " + std::to_string(run_id_));
  db_->write_tx([&] { got = store::DeliveryClaimMany(*db_, ids, "me", kT0Deliveries + 60'000, kT0Deliveries + 6); });
  EXPECT_EQ(got, std::vector<char>(ids.size(), 0));
  EXPECT_EQ(count("claim_owner = 'me'"), 0);
  // Every statement width (1, 2, 4, ... 64 ids, a chunk padded to the next): claims of each size.
  db_->exec("UPDATE runs SET owner = 'me' WHERE run_id = " + std::to_string(run_id_));
  for (std::size_t n : {1U, 2U, 3U, 5U, 31U, 64U, 65U, 100U}) {
    db_->exec("UPDATE deliveries SET state = 'planned', claim_owner = NULL");
    std::vector<std::int64_t> some;
    for (std::size_t i = 0; i < n; ++i) some.push_back(first + static_cast<std::int64_t>(i));
    db_->write_tx([&] { got = store::DeliveryClaimMany(*db_, some, "me", kT0Deliveries + 60'000, kT0Deliveries + 7); });
    EXPECT_EQ(got, std::vector<char>(n, 1)) << n << " ids";
    EXPECT_EQ(count("claim_owner = 'me'"), static_cast<std::int64_t>(n)) << n << " ids";
  }
}

TEST(RestoreRule, InFlightRowsAlwaysPlannedRowsOnlyWhenClaimableBeforeTheRestoreFinalRowsNever) {
  const Millis at = kT0Deliveries;
  for (auto s : {DeliveryState::sending, DeliveryState::uncertain, DeliveryState::retry_wait}) {
    EXPECT_TRUE(restored_row_may_have_been_sent(s, at + 3'600'000, at, kLead)) << to_string(s);
  }
  EXPECT_TRUE(restored_row_may_have_been_sent(DeliveryState::planned, at - 60'000, at, kLead));
  // claimed claim_lead before its time: a row due 400 ms after the restore may have been claimed
  EXPECT_TRUE(restored_row_may_have_been_sent(DeliveryState::planned, at + kLead, at, kLead));
  EXPECT_FALSE(restored_row_may_have_been_sent(DeliveryState::planned, at + kLead + 1, at, kLead));
  for (auto s : {DeliveryState::accepted, DeliveryState::delivered, DeliveryState::read, DeliveryState::dead,
                 DeliveryState::cancelled}) {
    EXPECT_FALSE(restored_row_may_have_been_sent(s, at - 60'000, at, kLead)) << to_string(s);
  }
}

class RestoreLedgerTest : public test_support::DbTest {
 protected:
  RestoreLedgerTest() : DbTest("restore") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    run_id_ = test_support::add_content_and_run(*db_, kT0Deliveries);
    // one delivery per state, due before the restore, and one per state due well after it
    const DeliveryState states[] = {DeliveryState::planned,  DeliveryState::sending,   DeliveryState::uncertain,
                                    DeliveryState::retry_wait, DeliveryState::accepted, DeliveryState::delivered,
                                    DeliveryState::read,     DeliveryState::dead,      DeliveryState::cancelled};
    int i = 0;
    for (auto st : states) {
      for (Millis planned : {restore_at() - 1'000, restore_at() + 60'000}) {
        std::string a = "R" + std::to_string(100 + i++);
        test_support::add_whatsapp_advisor(*db_, a, kT0Deliveries);
        store::DeliveryInsert(*db_, test_support::planned_delivery(run_id_, a, "2026-11-28", kT0Deliveries, planned, kT0Deliveries));
        std::int64_t id = db_->raw().getLastInsertRowid();
        SQLite::Statement q(db_->raw(), "UPDATE deliveries SET state = ?, claim_owner = ? WHERE delivery_id = ?");
        q.bind(1, std::string(to_string(st)));
        if (st == DeliveryState::sending) {
          q.bind(2, "host:1:gone");
        } else {
          q.bind(2);
        }
        q.bind(3, id);
        q.exec();
        if (restored_row_may_have_been_sent(st, planned, restore_at(), kLead)) expected_.push_back(id);
      }
    }
    db_->raw().exec("UPDATE runs SET state = 'running', owner = 'host:1:gone', lease_until = " +
                    std::to_string(restore_at() + 30'000) + " WHERE run_id = " + std::to_string(run_id_));
  }
  static Millis restore_at() { return kT0Deliveries + 120'000; }
  std::int64_t run_id_ = 0;
  std::vector<std::int64_t> expected_;  ///< ids the pure rule says may have been sent
};

TEST_F(RestoreLedgerTest, TheSqlFindsAndMarksExactlyTheRowsThePureRuleNames) {
  // sending, uncertain and retry_wait whenever planned; planned only when due before the restore
  ASSERT_EQ(expected_.size(), 7u);
  auto runs = store::RestoreRunsAtRisk(db_->raw(), restore_at(), kLead);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].run_id, run_id_);
  EXPECT_EQ(runs[0].at_risk, 7);
  EXPECT_EQ(runs[0].in_flight, 6);
  EXPECT_EQ(runs[0].state, "running");

  std::int64_t marked = 0;
  db_->write_tx([&] { marked = store::RestoreMarkUncertain(*db_, restore_at(), kLead, restore_at()); });
  EXPECT_EQ(marked, 7);
  for (auto id : expected_) {
    auto d = store::DeliveryGet(*db_, id);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->state, DeliveryState::uncertain) << id;
    EXPECT_TRUE(d->possible_duplicate) << id;
    EXPECT_FALSE(d->claim_owner) << id;
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE possible_duplicate = 1"), 7);
  // the planned row due after the restore stays planned; final rows stay as they were
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'planned'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state IN ('accepted', 'delivered', 'read', 'dead', 'cancelled')"), 10);
  // the snapshot's lease is released: the next dispatch takes the run at once
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM runs WHERE owner IS NULL AND lease_until IS NULL"), 1);
  // a second look finds the same rows (uncertain now), nothing more
  EXPECT_EQ(store::RestoreRunsAtRisk(db_->raw(), restore_at(), kLead).at(0).at_risk, 7);
}

TEST_F(RestoreLedgerTest, AClosedRunAndABackupRestoredBeforeTheWindowAreNotAtRisk) {
  // restored long before any row is due: only the rows already in flight in the backup
  auto early = store::RestoreRunsAtRisk(db_->raw(), kT0Deliveries - 3'600'000, kLead);
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].at_risk, 6);
  db_->raw().exec("UPDATE deliveries SET state = 'accepted' WHERE state IN ('planned', 'sending', 'uncertain', 'retry_wait')");
  db_->raw().exec("UPDATE runs SET state = 'closed'");
  EXPECT_TRUE(store::RestoreRunsAtRisk(db_->raw(), restore_at(), kLead).empty());
}

TEST_F(RestoreLedgerTest, StatusEventsOfTheReplacedDatabaseAreCarriedOverAndSettleTheRowsTheyName) {
  // The replaced database: a copy of this one whose receiver then stored a `sent` status for the
  // uncertain row due before the restore (after the backup was taken).
  const std::int64_t named = expected_.at(1);  // mid-send in the backup, planned before the restore
  ASSERT_EQ(store::DeliveryGet(*db_, named)->state, DeliveryState::sending);
  const std::string prev = (dir_ / "previous.db").string();
  db_->raw().exec("VACUUM INTO '" + prev + "'");
  {
    store::Db live(prev);
    nlohmann::json st = {{"id", "wamid.after"}, {"status", "sent"}, {"timestamp", "1795000100"},
                         {"recipient_id", "919810012345"}, {"biz_opaque_callback_data", std::to_string(named)}};
    nlohmann::json j = {{"object", "whatsapp_business_account"},
                        {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", {{"statuses", {st}}}}}}}}}}};
    live.write_tx([&] {
      store::StatusEventStoreParams p;
      p.signature = "sha256=00";
      p.body = j.dump();
      p.now = restore_at() - 5'000;
      auto e = store::StatusEventStore(live, p);
      StatusUpdate u;
      u.provider_message_id = "wamid.after";
      u.delivery_id = named;
      u.provider_at = 1'795'000'100'000;
      store::StatusUpdatesInsert(live, e.event_id, {u}, p.now);
    });
  }
  db_->write_tx([&] { store::RestoreMarkUncertain(*db_, restore_at(), kLead, restore_at()); });
  auto carried = carry_status_events(*db_, prev, 0, restore_at());
  EXPECT_EQ(carried.events, 1);
  EXPECT_EQ(carried.updates, 1);
  EXPECT_EQ(carried.applied.reconciled, 1);
  auto d = store::DeliveryGet(*db_, named);
  EXPECT_EQ(d->state, DeliveryState::accepted);  // settled: the next dispatch will not resend it
  EXPECT_EQ(d->provider_message_id.value_or(""), "wamid.after");
  EXPECT_EQ(scalar("SELECT received_at FROM status_events"), restore_at() - 5'000);
  // carrying again changes nothing (same bytes)
  EXPECT_EQ(carry_status_events(*db_, prev, 0, restore_at()).events, 0);
}

}  // namespace
}  // namespace daybreak
