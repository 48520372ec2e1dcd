// Tests for core/app/fallback.cpp (assign_fallback, explain_assignment), store/engagement.cpp and
// domain/content_check.cpp, on a real SQLite file in a per-test temporary directory (kept when a
// test fails). Issue 4, "Must show" 1 and 2.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "db_fixture.hpp"
#include "cli/common.hpp"
#include "app/plan.hpp"
#include "domain/content_check.hpp"
#include "domain/time.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/db.hpp"
#include "store/engagement.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;
constexpr Millis kT0Fallback = 1'764'300'000'000;
const std::vector<std::string> kTopics = {"tax", "equity", "debt", "insurance", "retirement", "markets", "mutual-funds", "gold"};

class FallbackTest : public test_support::DbTest {
 protected:
  FallbackTest() : DbTest("fallback") {}
  void add_advisor(const std::string& id, const std::string& lang, std::vector<std::string> topics, bool opted_in = true) {
    Advisor a;
    a.advisor_id = id;
    a.name = "Advisor " + id;
    a.tier = "gold";
    a.phone = "+919810012345";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {Channel::whatsapp};
    a.opted_in = opted_in;
    a.language = lang;
    a.topics = std::move(topics);
    store::AdvisorUpsert(*db_, {a, kT0Fallback});
  }
  void add_content(const std::string& id, const std::string& lang, std::vector<std::string> topics, bool fallback,
                   const std::string& from = "2026-01-01", const std::string& until = "") {
    Content c;
    c.content_id = id;
    c.title = "Title " + id;
    c.body = "Body of " + id;
    c.language = lang;
    c.topics = std::move(topics);
    c.valid_from = from;
    c.valid_until = until;
    c.fallback_eligible = fallback;
    store::ContentUpsert(*db_, {c, kT0Fallback});
  }
  void assign(const std::string& advisor, const std::string& date, const std::string& content) {
    store::AssignmentUpsertParams p;
    p.assignment = {advisor, date, content, Source::editorial, 0, "{}", "editorial import"};
    p.created_at = kT0Fallback;
    store::AssignmentUpsert(*db_, p);
  }
  std::string dump_assignments() {
    SQLite::Statement q(db_->raw(), "SELECT advisor_id||','||date||','||content_id||','||source||','||score||','||score_parts||','||reason||','||created_at FROM assignments ORDER BY 1");
    std::string out;
    while (q.executeStep()) out += q.getColumn(0).getString() + "\n";
    return out;
  }

  Config cfg_;
};

// Must show 1: 2,000 advisors, 30% without content; opted-out and paused advisors get nothing.
TEST_F(FallbackTest, EveryEligibleAdvisorGetsExactlyOneAssignment) {
  const std::string day = "2026-03-10";
  std::set<std::string> eligible, opted_out, paused;
  db_->write_tx([&] {
    for (const char* lang : {"en", "hi"}) {
      for (int i = 0; i < 12; ++i) {
        add_content(std::string("c-") + lang + "-" + std::to_string(i), lang, {kTopics[i % 8], kTopics[(i * 3 + 1) % 8]}, i >= 6);
      }
    }
    add_content("c-en-withdrawn", "en", {"tax"}, false);
    add_content("c-en-expired", "en", {"tax"}, false, "2026-01-01", "2026-03-09");
    for (int i = 0; i < 2000; ++i) {
      std::string id = "adv-" + std::to_string(100000 + i);
      std::string lang = i % 4 == 3 ? "hi" : "en";
      bool out = i % 50 == 7;  // 2% opted out
      add_advisor(id, lang, {kTopics[i % 8], kTopics[(i / 8) % 8]}, !out);
      if (out) {
        opted_out.insert(id);
        continue;
      }
      if (i % 50 == 11) {  // 2% paused over D
        paused.insert(id);
        continue;
      }
      eligible.insert(id);
      if (i % 10 < 7) assign(id, day, "c-" + lang + "-" + std::to_string(i % 6));  // 70% have editorial content
    }
    db_->exec("UPDATE assignments SET content_id = 'c-en-withdrawn' WHERE advisor_id = 'adv-100000'");
    db_->exec("UPDATE assignments SET content_id = 'c-en-expired' WHERE advisor_id = 'adv-100001'");
    db_->exec("UPDATE content SET withdrawn_at = 1, withdrawn_by = 'compliance' WHERE content_id = 'c-en-withdrawn'");
    for (const auto& id : paused) {
      db_->exec("UPDATE advisors SET paused_from = '2026-03-08', paused_until = '2026-03-12' WHERE advisor_id = '" + id + "'");
    }
  });

  auto rep = assign_fallback(*db_, cfg_, day, kT0Fallback + 1, false);
  EXPECT_TRUE(rep.missing.empty()) << rep.report["missing"].dump();
  EXPECT_EQ(rep.report["silent_days"], 0);
  EXPECT_EQ(rep.eligible, eligible.size());
  EXPECT_EQ(rep.replaced, 2U);
  EXPECT_EQ(rep.report["replaced"].size(), 2U);
  EXPECT_EQ(rep.already_assigned + rep.fallback_assigned, eligible.size());

  std::map<std::string, int> per_advisor;
  SQLite::Statement q(db_->raw(),
                      "SELECT s.advisor_id, s.source, s.score_parts, s.reason, c.language, a.language FROM assignments s "
                      "JOIN content c USING (content_id) JOIN advisors a USING (advisor_id) WHERE s.date = ?1");
  q.bind(1, day);
  while (q.executeStep()) {
    std::string id = q.getColumn(0).getString();
    ++per_advisor[id];
    EXPECT_EQ(q.getColumn(4).getString(), q.getColumn(5).getString()) << id << ": language";
    if (q.getColumn(1).getString() == "fallback") {
      auto parts = nlohmann::json::parse(q.getColumn(2).getString());
      EXPECT_TRUE(parts.contains("topic") && parts.contains("engagement") && parts.contains("freshness") &&
                  parts.contains("diversity_penalty") && parts.contains("total"))
          << parts.dump();
    }
  }
  EXPECT_EQ(per_advisor.size(), eligible.size());
  for (const auto& id : eligible) EXPECT_EQ(per_advisor[id], 1) << id;
  for (const auto& id : opted_out) EXPECT_EQ(per_advisor.count(id), 0U) << id;
  for (const auto& id : paused) EXPECT_EQ(per_advisor.count(id), 0U) << id;

  auto a0 = store::AssignmentGet(*db_, "adv-100000", day);
  ASSERT_TRUE(a0);
  EXPECT_EQ(a0->source, Source::fallback);
  EXPECT_NE(a0->reason.find("content withdrawn"), std::string::npos) << a0->reason;
  auto a1 = store::AssignmentGet(*db_, "adv-100001", day);
  ASSERT_TRUE(a1);
  EXPECT_NE(a1->reason.find("expired"), std::string::npos) << a1->reason;

  // Idempotent: a second run changes nothing.
  std::string before = dump_assignments();
  auto again = assign_fallback(*db_, cfg_, day, kT0Fallback + 2, false);
  EXPECT_EQ(again.fallback_assigned, 0U);
  EXPECT_TRUE(again.missing.empty());
  EXPECT_EQ(dump_assignments(), before);

  // explain says why.
  auto ex = explain_assignment(*db_, "adv-100000", day);
  EXPECT_EQ(ex["assignment"]["source"], "fallback");
  EXPECT_TRUE(ex["eligible"].get<bool>());
  EXPECT_EQ(ex["assignment"]["sendable"], true);
  auto exp = explain_assignment(*db_, *paused.begin(), day);
  EXPECT_FALSE(exp["eligible"].get<bool>());
  EXPECT_TRUE(exp["assignment"].is_null());
  EXPECT_THROW(explain_assignment(*db_, "nobody", day), CheckFailed);
}

TEST_F(FallbackTest, MissingLanguageIsReportedNotHidden) {
  db_->write_tx([&] {
    add_content("c-en", "en", {"tax"}, true);
    add_advisor("a-ta", "ta", {"tax"});
    add_advisor("a-en", "en", {"tax"});
  });
  auto rep = assign_fallback(*db_, cfg_, "2026-03-10", kT0Fallback, false);
  ASSERT_EQ(rep.missing.size(), 1U);
  EXPECT_EQ(rep.missing[0].advisor_id, "a-ta");
  EXPECT_EQ(rep.report["missing"][0]["advisor_id"], "a-ta");
  EXPECT_EQ(rep.fallback_assigned, 1U);
}

TEST_F(FallbackTest, DryRunWritesNothing) {
  db_->write_tx([&] {
    add_content("c-en", "en", {"tax"}, true);
    add_advisor("a-en", "en", {"tax"});
  });
  auto rep = assign_fallback(*db_, cfg_, "2026-03-10", kT0Fallback, true);
  EXPECT_EQ(rep.fallback_assigned, 1U);
  EXPECT_EQ(store::AssignmentCount(*db_), 0);
}

// score_parts are written as text without nlohmann::json (fallback.cpp, parts_json_text): each
// must be exactly what the library writes for the same object, numbers included (shortest
// round-trip text, "x.0" for whole numbers), with and without last_sent.
TEST_F(FallbackTest, ScorePartsAreTheTextNlohmannWrites) {
  db_->write_tx([&] {
    // Two items for three days: the third day relaxes the no-repeat window, so last_sent is set.
    for (int i = 0; i < 2; ++i) add_content("f-en-" + std::to_string(i), "en", {kTopics[i % 8], kTopics[(i + 3) % 8]}, true);
    for (int i = 0; i < 300; ++i) add_advisor("adv-" + std::to_string(1000 + i), "en", {kTopics[i % 8]});
  });
  std::size_t rows = 0, with_last_sent = 0, fractional = 0;
  for (const char* day : {"2026-03-10", "2026-03-11", "2026-03-12"}) {
    assign_fallback(*db_, cfg_, day, kT0Fallback, false);
    SQLite::Statement q(db_->raw(), std::string("SELECT score_parts FROM assignments WHERE date = '") + day + "'");
    while (q.executeStep()) {
      const std::string text = q.getColumn(0).getString();
      const auto j = nlohmann::json::parse(text);
      EXPECT_EQ(text, j.dump());
      ++rows;
      with_last_sent += j.contains("last_sent");
      const double total = j["total"].get<double>();
      fractional += total != static_cast<double>(static_cast<long long>(total));
    }
  }
  EXPECT_EQ(rows, 900U);
  EXPECT_GT(with_last_sent, 0U);
  EXPECT_GT(fractional, 0U);
}

// assign-fallback ranks on a thread of its own beside the writes (FallbackOptions::threads = 2,
// the default) and hands the rows over in chunks of 4,096: the rows written, their order and the
// report must be exactly those of ranking on one thread and writing after. Over 8,000 fallback
// rows here (two full chunks and a partial one), with history, replacements, a relaxed window
// and a language without content.
TEST_F(FallbackTest, RankingBesideTheWritesWritesWhatOneThreadWrites) {
  const std::string day = "2026-03-10";
  db_->write_tx([&] {
    for (const char* lang : {"en", "hi"}) {
      for (int i = 0; i < 10; ++i) {
        add_content(std::string("c-") + lang + "-" + std::to_string(i), lang, {kTopics[i % 8], kTopics[(i * 3 + 1) % 8]}, i >= 4,
                    "2026-02-0" + std::to_string(1 + i % 9));
      }
    }
    add_content("c-mr-0", "mr", {"tax"}, true);  // one Marathi item: its advisors relax the window
    add_content("c-en-withdrawn", "en", {"tax"}, false);
    for (int i = 0; i < 12000; ++i) {
      const std::string id = "adv-" + std::to_string(200000 + i);
      const std::string lang = i % 97 == 5 ? "ta" : i % 31 == 3 ? "mr" : i % 4 == 3 ? "hi" : "en";
      add_advisor(id, lang, {kTopics[i % 8], kTopics[(i / 8) % 8]}, i % 53 != 7);
      const std::string own = lang == "ta" ? "en" : lang;
      for (int back = 1; back <= 5; ++back) {  // history: the days before D, with gaps
        if ((i + back) % 3 == 0) continue;
        const std::string content = own == "mr" ? "c-mr-0" : "c-" + own + "-" + std::to_string(4 + (i + back) % 6);
        assign(id, "2026-03-0" + std::to_string(10 - back), content);
      }
      // 30% editorial on D (a Marathi advisor's is English: replaced)
      if (i % 10 < 3) assign(id, day, "c-" + (own == "mr" ? std::string("en") : own) + "-" + std::to_string(i % 4));
    }
    db_->exec("UPDATE assignments SET content_id = 'c-en-withdrawn' WHERE date = '" + day + "' AND advisor_id IN ('adv-200000', 'adv-200010')");
    db_->exec("UPDATE content SET withdrawn_at = 1, withdrawn_by = 'compliance' WHERE content_id = 'c-en-withdrawn'");
    db_->exec("UPDATE assignments SET content_id = 'c-hi-1' WHERE date = '" + day + "' AND advisor_id = 'adv-200020'");  // wrong language
  });
  // The same ledger twice: one run on each copy.
  const std::string copy_path = (dir_ / "copy.db").string();
  db_->exec("VACUUM INTO '" + copy_path + "'");
  store::Db copy(copy_path);
  {
    // The ranking runs beside the writes only on a ledger in WAL mode, as every writable Db is.
    SQLite::Statement mode(copy.raw(), "PRAGMA journal_mode");
    ASSERT_TRUE(mode.executeStep());
    ASSERT_EQ(mode.getColumn(0).getString(), "wal");
  }

  FallbackOptions one;
  one.threads = 1;
  auto single = assign_fallback(*db_, cfg_, day, kT0Fallback + 1, false, one);
  auto beside = assign_fallback(copy, cfg_, day, kT0Fallback + 1, false, FallbackOptions{});
  EXPECT_GT(single.fallback_assigned, 8192U);
  EXPECT_GT(single.replaced, 2U);
  EXPECT_FALSE(single.missing.empty());
  EXPECT_GT(single.report["no_repeat_relaxed"].get<int>(), 0);
  single.report.erase("timings");
  beside.report.erase("timings");
  EXPECT_EQ(single.report.dump(), beside.report.dump());
  auto dump = [](store::Db& db) {
    SQLite::Statement q(db.raw(),
                        "SELECT advisor_id||','||date||','||content_id||','||source||','||score||','||score_parts||','||reason||','||"
                        "created_at FROM assignments ORDER BY date, advisor_id");
    std::string out;
    while (q.executeStep()) out += q.getColumn(0).getString() + "\n";
    return out;
  };
  const std::string rows = dump(*db_);
  EXPECT_EQ(rows.size(), dump(copy).size());
  EXPECT_TRUE(rows == dump(copy));
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE date = '" + day + "' AND source = 'fallback'"),
            static_cast<std::int64_t>(single.fallback_assigned));
  // Run again, each the other way round: nothing left to do, the same silent advisors.
  auto again = assign_fallback(*db_, cfg_, day, kT0Fallback + 2, false, FallbackOptions{});
  EXPECT_EQ(again.fallback_assigned, 0U);
  EXPECT_EQ(again.missing.size(), single.missing.size());
  EXPECT_EQ(dump(*db_), rows);
}

// Must show 2: 30 days of assign-fallback; nobody gets an item twice within the 14-day window,
// and every item is in the advisor's language.
TEST_F(FallbackTest, ThirtyDaysWithoutRepeatsAndInLanguage) {
  db_->write_tx([&] {
    for (const char* lang : {"en", "hi"}) {
      for (int i = 0; i < 20; ++i) {
        add_content(std::string("f-") + lang + "-" + std::to_string(i), lang, {kTopics[i % 8], kTopics[(i * 5 + 2) % 8]}, true,
                    "2026-02-" + std::string(i + 1 < 10 ? "0" : "") + std::to_string(i + 1));
      }
    }
    for (int i = 0; i < 150; ++i) add_advisor("adv-" + std::to_string(i), i % 3 ? "en" : "hi", {kTopics[i % 8], kTopics[(i / 8) % 8]});
  });
  Date d0{2026, 3, 1};
  for (int day = 0; day < 30; ++day) {
    std::string date = format_date(add_days(d0, day));
    // Some editorial content on some days, as in production.
    if (day % 7 == 3) {
      db_->write_tx([&] { assign("adv-1", date, "f-en-0"); });
    }
    auto rep = assign_fallback(*db_, cfg_, date, kT0Fallback + day, false);
    ASSERT_TRUE(rep.missing.empty()) << date;
    ASSERT_EQ(rep.report["no_repeat_relaxed"], 0) << date;
  }
  SQLite::Statement q(db_->raw(),
                      "SELECT s.advisor_id, s.date, s.content_id, s.source, c.language = a.language FROM assignments s "
                      "JOIN content c USING (content_id) JOIN advisors a USING (advisor_id) ORDER BY s.advisor_id, s.date");
  std::map<std::string, std::map<std::string, std::string>> last;  // advisor → content → date
  int rows = 0;
  while (q.executeStep()) {
    ++rows;
    std::string adv = q.getColumn(0).getString(), date = q.getColumn(1).getString(), c = q.getColumn(2).getString();
    EXPECT_EQ(q.getColumn(4).getInt(), 1) << adv << " " << date;
    if (auto it = last[adv].find(c); it != last[adv].end() && q.getColumn(3).getString() == "fallback") {
      EXPECT_GE(*days_between(it->second, date), 14) << adv << " got " << c << " on " << it->second << " and " << date;
    }
    last[adv][c] = date;
  }
  EXPECT_EQ(rows, 150 * 30);
}

// The night's batch reads give what the per-advisor reads give: AssignmentHistoryReader (one
// cursor per day, advanced beside ascending advisors) against AssignmentListForAdvisorRange,
// AdvisorListEligibleForRanking against AdvisorListEligible, AssignmentKeysForDate against
// AssignmentListForDate, and a prepared RankingPool against ranking straight from the
// engagement table.
TEST_F(FallbackTest, BatchReadsMatchPerAdvisorReads) {
  db_->write_tx([&] {
    for (int i = 0; i < 8; ++i) add_content("f-en-" + std::to_string(i), "en", {kTopics[i], kTopics[(i + 3) % 8]}, true, "2026-02-0" + std::to_string(i + 1));
    for (int i = 0; i < 300; ++i) {
      const std::string id = "adv-" + std::to_string(1000 + i);
      add_advisor(id, i % 5 == 4 ? "hi" : "en", {kTopics[i % 8], kTopics[(i / 8) % 8]}, i % 37 != 5);
      // Days with gaps: not every advisor has a row on every day, and 2026-03-04 has none at all.
      for (int day = 1; day <= 9; ++day) {
        if (day == 4 || (i + day) % 3 == 0) continue;
        assign(id, "2026-03-0" + std::to_string(day), "f-en-" + std::to_string((i + day) % 8));
      }
    }
    db_->exec("UPDATE advisors SET paused_from = '2026-03-09', paused_until = '2026-03-11' WHERE advisor_id = 'adv-1010'");
    // An opted-in channel outside the advisor's own list does not make it eligible.
    db_->exec("UPDATE advisors SET channels = 'email' WHERE advisor_id = 'adv-1020'");
  });

  store::AssignmentHistoryReader reader(*db_, "2026-03-02", "2026-03-08");
  std::vector<store::HistoryRow> rows;
  std::size_t compared = 0;
  for (int i = 0; i < 300; i += 1 + i % 3) {  // ascending, skipping some advisors
    const std::string id = "adv-" + std::to_string(1000 + i);
    reader.read(id, rows);
    auto want = store::AssignmentListForAdvisorRange(*db_, id, "2026-03-02", "2026-03-08");
    ASSERT_EQ(rows.size(), want.size()) << id;
    for (std::size_t k = 0; k < rows.size(); ++k) {
      EXPECT_EQ(rows[k].date, want[k].date) << id;
      EXPECT_EQ(rows[k].content_id, want[k].content_id) << id;
    }
    compared += rows.size();
  }
  EXPECT_GT(compared, 500U);
  // Out of order, an unknown advisor, and an empty window.
  reader.read("adv-1003", rows);
  EXPECT_EQ(rows.size(), store::AssignmentListForAdvisorRange(*db_, "adv-1003", "2026-03-02", "2026-03-08").size());
  EXPECT_FALSE(rows.empty());
  reader.read("zzz", rows);
  EXPECT_TRUE(rows.empty());
  store::AssignmentHistoryReader none(*db_, "", "");
  none.read("adv-1001", rows);
  EXPECT_TRUE(rows.empty());

  const std::string day = "2026-03-10";
  auto full = store::AdvisorListEligible(*db_, day);
  auto slim = store::AdvisorListEligibleForRanking(*db_, day);
  ASSERT_EQ(full.size(), slim.size());
  EXPECT_LT(slim.size(), 300U);
  for (std::size_t k = 0; k < slim.size(); ++k) {
    EXPECT_EQ(slim[k].advisor_id, full[k].advisor.advisor_id);
    EXPECT_EQ(slim[k].language, full[k].advisor.language);
    EXPECT_EQ(slim[k].topics, full[k].advisor.topics);
    EXPECT_EQ(slim[k].channels, full[k].advisor.channels);
  }

  // The day's assignments from the covering index alone: the same keys, content and sources.
  db_->exec("UPDATE assignments SET source = 'override' WHERE advisor_id = 'adv-1000' AND date = '2026-03-05'");
  auto keys = store::AssignmentKeysForDate(*db_, "2026-03-05");
  auto whole = store::AssignmentListForDate(*db_, "2026-03-05");
  ASSERT_EQ(keys.size(), whole.size());
  EXPECT_GT(keys.size(), 150U);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    EXPECT_EQ(keys[k].advisor_id, whole[k].advisor_id);
    EXPECT_EQ(keys[k].date, whole[k].date);
    EXPECT_EQ(keys[k].content_id, whole[k].content_id);
    EXPECT_EQ(keys[k].source, whole[k].source);
  }
  EXPECT_EQ(std::count_if(keys.begin(), keys.end(), [](const Assignment& x) { return x.source == Source::override_; }), 1);

  EngagementTable engagement;
  engagement[{"f-en-1", "tax"}] = {40, 30};
  engagement[{"f-en-2", "equity"}] = {10, 1};
  engagement[{"f-en-3", "-"}] = {5, 5};
  std::vector<Content> pool;
  for (auto& c : store::ContentListFallbackPool(*db_, day)) pool.push_back(c);
  RankingOptions o;
  o.seed = 7;
  RankingPool prepared(pool, engagement, day, o);
  store::AssignmentHistoryReader window(*db_, "2026-02-24", "2026-03-09");
  for (const auto& a : slim) {
    window.read(a.advisor_id, rows);
    AdvisorHistory h;
    for (const auto& r : rows) h.last_sent[r.content_id] = r.date;
    auto direct = rank_candidates(a, h, pool, engagement, day, o);
    auto via_pool = rank_candidates(a, h, prepared);
    ASSERT_EQ(direct.ok(), via_pool.ok()) << a.advisor_id;
    if (!direct) continue;
    EXPECT_EQ(direct->index, via_pool->index) << a.advisor_id;
    for (std::size_t k = 0; k < pool.size(); ++k) {
      const ScoreParts& x = direct->all[k].parts;
      const ScoreParts& y = via_pool->all[k].parts;
      EXPECT_EQ(x.total, y.total);
      EXPECT_EQ(x.engagement, y.engagement);
      EXPECT_EQ(x.freshness, y.freshness);
      EXPECT_EQ(x.topic, y.topic);
      EXPECT_EQ(x.exposures, y.exposures);
      EXPECT_EQ(direct->all[k].excluded, via_pool->all[k].excluded);
    }
  }
}

TEST_F(FallbackTest, EngagementIsRebuiltFromDeliveriesIdempotently) {
  db_->write_tx([&] {
    add_content("c1", "en", {"tax"}, true);
    add_advisor("a1", "en", {"tax", "debt"});
    add_advisor("a2", "en", {"tax"});
    add_advisor("a3", "en", {"gold"});
    db_->exec("INSERT INTO runs (run_id, date, slot_at, window_start, window_end, deadline_at) VALUES (1, '2026-03-09', 0, 0, 0, 0)");
    auto ins = [&](const std::string& adv, const std::string& state, const std::string& delivered, const std::string& read) {
      db_->exec("INSERT INTO deliveries (run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, "
                "sender, planned_at, deadline_at, delivered_at, read_at, updated_at, order_key) VALUES (1, '" + adv + "', '2026-03-09', 0, "
                "'c1', 'fallback', 'gold', 1, '" + state + "', 'whatsapp', 'wa-1', 0, 0, " + delivered + ", " + read + ", 0, "
                "daybreak_order_key('" + adv + "', '2026-03-09'))");
    };
    ins("a1", "read", "1", "2");
    ins("a2", "delivered", "1", "NULL");
    ins("a3", "accepted", "NULL", "NULL");
  });
  store::EngagementRebuildResult r;
  db_->write_tx([&] { r = store::EngagementRebuild(*db_, "2026-03-03", "2026-03-09", kT0Fallback); });
  EXPECT_EQ(r.rows_written, 1);
  auto t = store::EngagementTotals(*db_, "2026-01-01", "2026-03-09");
  ASSERT_EQ(t.size(), 1U);
  EXPECT_EQ((t[{"c1", "tax"}].exposures), 2);
  EXPECT_EQ((t[{"c1", "tax"}].reads), 1);
  db_->write_tx([&] { r = store::EngagementRebuild(*db_, "2026-03-03", "2026-03-09", kT0Fallback + 5); });
  EXPECT_EQ(r.rows_written, 0);
  EXPECT_EQ(r.rows_deleted, 0);

  // assign-fallback feeds the learned counts into the parts it stores.
  auto rep = assign_fallback(*db_, cfg_, "2026-03-10", kT0Fallback, false);
  auto a = store::AssignmentGet(*db_, "a2", "2026-03-10");
  ASSERT_TRUE(a);
  auto parts = nlohmann::json::parse(a->score_parts);
  EXPECT_EQ(parts["exposures"], 2);
  EXPECT_EQ(parts["reads"], 1);
  EXPECT_EQ(parts["segment"], "tax");
}

// Must show 4 (ledger side): a pull of an item assigned to 500 advisors replaces every assignment
// and every pending delivery, leaves in-flight ones alone, and the audit log names who pulled it.
TEST_F(FallbackTest, WithdrawalReplacesEveryPendingDelivery) {
  const std::string day = "2025-11-29";  // kT0Fallback is 2025-11-28 08:50 IST: tomorrow's run
  db_->write_tx([&] {
    add_content("pulled", "en", {"tax"}, false, "2025-01-01");
    for (int i = 0; i < 5; ++i) add_content("f" + std::to_string(i), "en", {kTopics[i]}, true, "2025-01-01");
    db_->exec("INSERT INTO runs (run_id, date, slot_at, window_start, window_end, deadline_at) VALUES (1, '" + day + "', 0, 0, 0, 0)");
    for (int i = 0; i < 500; ++i) {
      std::string id = "adv-" + std::to_string(1000 + i);
      add_advisor(id, "en", {kTopics[i % 8]});
      assign(id, day, "pulled");
      db_->exec("INSERT INTO deliveries (run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, "
                "sender, planned_at, deadline_at, updated_at, order_key) VALUES (1, '" + id + "', '" + day + "', 0, 'pulled', 'editorial', "
                "'gold', 1, '" + std::string(i == 0 ? "uncertain" : i == 1 ? "accepted" : "planned") + "', 'whatsapp', 'wa-1', 0, 0, 0, "
                "daybreak_order_key('" + id + "', '" + day + "'))");
    }
  });
  auto rep = withdraw_content(*db_, cfg_, "pulled", "regulator request", "asha", "", kT0Fallback + 10);
  EXPECT_EQ(rep["assignments_replaced"], 500);
  EXPECT_EQ(rep["deliveries_repointed"], 498);
  EXPECT_EQ(rep["deliveries_in_flight"], 1);
  EXPECT_EQ(rep["missing"], 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE content_id = 'pulled'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE content_id = 'pulled' AND state IN ('planned', 'retry_wait')"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries d JOIN assignments s USING (advisor_id, date) WHERE d.state = 'planned' "
                   "AND d.content_id = s.content_id AND d.source = 'fallback'"),
            498);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'asha' AND reason = 'regulator request' AND target = 'pulled'"), 2);
  EXPECT_EQ(scalar("SELECT withdrawn_at FROM content WHERE content_id = 'pulled'"), kT0Fallback + 10);

  // A second pull changes nothing but adds its own audit rows.
  auto again = withdraw_content(*db_, cfg_, "pulled", "regulator request", "ravi", "", kT0Fallback + 20);
  EXPECT_TRUE(again["already_withdrawn"].get<bool>());
  EXPECT_EQ(again["assignments_replaced"], 0);
  EXPECT_EQ(again["deliveries_repointed"], 0);
  EXPECT_EQ(again["withdrawn_by"], "asha");
  EXPECT_THROW(withdraw_content(*db_, cfg_, "nope", "x", "asha", "", kT0Fallback), CheckFailed);
}

TEST(ContentCheck, NightBeforeRules) {
  Content c;
  c.content_id = "c";
  c.title = "Morning brief";
  c.body = "Today's tax update.";
  c.language = "en";
  EXPECT_FALSE(content_send_problem(c, "2026-03-10"));
  auto with = [&](auto f) {
    Content x = c;
    f(x);
    return content_send_problem(x, "2026-03-10").value_or("");
  };
  EXPECT_EQ(with([](Content& x) { x.withdrawn = true; }), "content withdrawn");
  EXPECT_NE(with([](Content& x) { x.valid_until = "2026-03-09"; }).find("expired"), std::string::npos);
  EXPECT_NE(with([](Content& x) { x.valid_from = "2026-03-11"; }).find("not valid until"), std::string::npos);
  EXPECT_NE(with([](Content& x) { x.title = ""; }).find("title is empty"), std::string::npos);
  EXPECT_NE(with([](Content& x) { x.body = ""; }).find("body is empty"), std::string::npos);
  EXPECT_NE(with([](Content& x) { x.body = std::string(1025, 'a'); }).find("1024"), std::string::npos);
  EXPECT_EQ(with([](Content& x) { x.body = std::string(1024, 'a'); }), "");
  EXPECT_NE(with([](Content& x) { x.title = std::string(61, 't'); }).find("60"), std::string::npos);
  EXPECT_EQ(with([](Content& x) { x.title = std::string(61, 't'); x.media_url = "https://cdn.example.com/a.jpg"; }), "");
  EXPECT_NE(with([](Content& x) { x.body = "line one\nline two"; }).find("newline"), std::string::npos);
  EXPECT_NE(with([](Content& x) { x.body = "wide     gap"; }).find("four consecutive spaces"), std::string::npos);
  EXPECT_EQ(with([](Content& x) { x.body = "four    spaces ok"; }), "");
  EXPECT_NE(with([](Content& x) { x.media_url = "ftp://cdn.example.com/a.jpg"; }).find("media_url"), std::string::npos);

  EXPECT_TRUE(is_http_url("https://cdn.example.com/daybreak/card-1.jpg"));
  EXPECT_TRUE(is_http_url("http://127.0.0.1:8080/x.pdf?v=2"));
  EXPECT_TRUE(is_http_url("https://[::1]:443/x"));
  EXPECT_FALSE(is_http_url("https://"));
  EXPECT_FALSE(is_http_url("https://exa mple.com/x"));
  EXPECT_FALSE(is_http_url("https://user:pw@example.com/x"));
  EXPECT_FALSE(is_http_url("https://example.com:/x"));
  EXPECT_FALSE(is_http_url("https://example.com:80a/x"));
  EXPECT_FALSE(is_http_url("javascript:alert(1)"));
}

}  // namespace
}  // namespace daybreak
