// sql/015 rebuilds `assignments` keyed (date, advisor_id) instead of (advisor_id, date): a ledger
// at version 14 with assignments of several days, sources and score parts must come through with
// every row and column unchanged, and every store reader of assignments must answer exactly as it
// did on the old layout. Also: the new key is what the table is stored by, one (advisor, date) is
// still one assignment, and one advisor's history is read by key searches, not a scan.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "db_fixture.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/engagement.hpp"
#include "store/migrations.hpp"
#include "store/withdrawal.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Migration = 1'764'300'000'000;
const char* const kDays[] = {"2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"};
constexpr int kAdvisorsMigration = 40;

std::string advisor_id(int i) { return "A" + std::to_string(1000 + i); }

// What each reader of assignments answers, as text (the same function before and after).
std::string reads(store::Db& db) {
  std::string out;
  auto assignment = [&](const Assignment& s) {
    out += s.advisor_id + "|" + s.date + "|" + s.content_id + "|" + std::string(to_string(s.source)) + "|" +
           std::to_string(s.score) + "|" + s.score_parts + "|" + s.reason + "\n";
  };
  for (const char* day : kDays) {
    out += std::string("list ") + day + "\n";
    for (const auto& s : store::AssignmentListForDate(db, day)) assignment(s);
    out += std::string("keys ") + day + "\n";
    for (const auto& s : store::AssignmentKeysForDate(db, day)) assignment(s);
    out += std::string("plan ") + day + "\n";
    store::PlanCandidatesForDate(db, day, [&](store::PlanCandidate&& c) {
      out += c.advisor_id + "|" + c.content_id.value_or("-") + "|" + c.source + "\n";
    });
  }
  out += "get\n";
  for (int i = 0; i < kAdvisorsMigration; ++i) {
    for (const char* day : kDays) {
      if (auto s = store::AssignmentGet(db, advisor_id(i), day)) assignment(*s);
    }
  }
  out += "history\n";
  {
    store::AssignmentHistoryReader reader(db, "2026-11-25", "2026-11-27");
    std::vector<store::HistoryRow> rows;
    for (int i = 0; i < kAdvisorsMigration; ++i) {
      const auto one = store::AssignmentListForAdvisorRange(db, advisor_id(i), "2026-11-26", "2026-11-28");
      for (const auto& r : one) out += advisor_id(i) + "|" + r.date + "|" + r.content_id + "\n";
      reader.read(advisor_id(i), rows);
      for (const auto& r : rows) out += advisor_id(i) + "<" + r.date + "|" + r.content_id + "\n";
    }
  }
  out += "dates\n";
  for (const auto& d : store::AssignmentDatesForContent(db, "C2", "2026-11-26")) out += d + "\n";
  out += "count " + std::to_string(store::AssignmentCount(db)) + "\n";
  return out;
}

class AssignmentsMigrationTest : public test_support::DbTest {
 protected:
  AssignmentsMigrationTest() : DbTest("assignments-migration") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    // Start again from a ledger at version 14: the fixture's database is replaced by one built
    // with the embedded migrations before 015 only.
    db_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_path() + suffix);
    store::OpenOptions o;
    o.migrate = false;
    store::Db v14(db_path(), o);
    v14.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT '')");
    for (const auto& m : store::embedded_migrations()) {
      if (m.version >= 15) continue;
      v14.exec(std::string(m.sql));
      v14.exec("INSERT INTO schema_migrations(version, name) VALUES (" + std::to_string(m.version) + ", '" + std::string(m.name) + "')");
    }
    for (const char* c : {"C1", "C2", "C3"}) {
      Content item;
      item.content_id = c;
      item.title = "T";
      item.body = "B";
      item.language = "en";
      store::ContentUpsert(v14, {item, kT0Migration});
    }
    for (int i = 0; i < kAdvisorsMigration; ++i) test_support::add_whatsapp_advisor(v14, advisor_id(i), kT0Migration);
    // Every advisor on some days only, from every source, fallback rows with their score parts;
    // written day by day, so the old key stores them interleaved.
    v14.write_tx([&] {
      int day = 0;
      for (const char* d : kDays) {
        for (int i = 0; i < kAdvisorsMigration; ++i) {
          if ((i + day) % 4 == 0) continue;  // no assignment that day
          store::AssignmentUpsertParams p;
          p.assignment.advisor_id = advisor_id(i);
          p.assignment.date = d;
          p.assignment.content_id = "C" + std::to_string(1 + (i + day) % 3);
          const Source sources[] = {Source::editorial, Source::fallback, Source::override_, Source::fallback, Source::emergency};
          p.assignment.source = sources[(i * 7 + day) % 5];
          if (p.assignment.source == Source::fallback) {
            p.assignment.score = 0.125 * i + day;
            p.assignment.score_parts = "{\"segment\":\"en|x\",\"total\":" + std::to_string(i) + "}";
            p.assignment.reason = "no content assigned";
          }
          p.created_at = kT0Migration + day;
          store::AssignmentUpsert(v14, p);
        }
        ++day;
      }
    });
    before_ = reads(v14);
    before_rows_ = rows(v14);
  }
  // Every row and column, in (advisor, date) order.
  static std::string rows(store::Db& db) {
    SQLite::Statement q(db.raw(),
                        "SELECT advisor_id, date, content_id, source, score, score_parts, reason, created_at FROM assignments "
                        "ORDER BY advisor_id, date");
    std::string out;
    while (q.executeStep()) {
      for (int c = 0; c < 8; ++c) out += q.getColumn(c).getString() + "|";
      out += "\n";
    }
    return out;
  }
  std::string before_, before_rows_;
};

TEST_F(AssignmentsMigrationTest, EveryRowAndEveryReadSurvive) {
  db_ = std::make_unique<store::Db>(db_path());  // migrates
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = 15"), 1);
  EXPECT_EQ(rows(*db_), before_rows_);
  EXPECT_EQ(reads(*db_), before_);
  EXPECT_GT(before_rows_.size(), 0U);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
  EXPECT_EQ(scalar("PRAGMA foreign_keys"), 1);  // back on after the migration
  // The same columns in the same order (SELECT * readers), and the key led by the date.
  SQLite::Statement cols(db_->raw(), "SELECT group_concat(name, ',') FROM pragma_table_info('assignments')");
  ASSERT_TRUE(cols.executeStep());
  EXPECT_EQ(cols.getColumn(0).getString(), "advisor_id,date,content_id,source,score,score_parts,reason,created_at");
  SQLite::Statement key(db_->raw(), "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info("
                                    "(SELECT name FROM pragma_index_list('assignments') WHERE origin = 'pk')) ORDER BY seqno)");
  ASSERT_TRUE(key.executeStep());
  EXPECT_EQ(key.getColumn(0).getString(), "date,advisor_id");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'assignments_day'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE '%WITHOUT ROWID%' AND name = 'assignments'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'assignments_new'"), 0);
}

TEST_F(AssignmentsMigrationTest, OneAssignmentPerAdvisorAndDayStillAndNewRowsReadTheSame) {
  db_ = std::make_unique<store::Db>(db_path());
  // An upsert of an existing (advisor, date) changes that row; it does not add one.
  const auto n = scalar("SELECT COUNT(*) FROM assignments");
  ASSERT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE advisor_id = 'A1002' AND date = '2026-11-28'"), 1);
  store::AssignmentUpsertParams p;
  p.assignment.advisor_id = advisor_id(2);
  p.assignment.date = "2026-11-28";
  p.assignment.content_id = "C3";
  p.assignment.source = Source::advisor;
  p.created_at = kT0Migration + 9;
  db_->write_tx([&] { EXPECT_TRUE(store::AssignmentUpsert(*db_, p)); });
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments"), n);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE advisor_id = 'A1002' AND date = '2026-11-28' "
                   "AND content_id = 'C3' AND source = 'advisor'"),
            1);
  EXPECT_THROW(db_->exec("INSERT INTO assignments(advisor_id, date, content_id, source, created_at) "
                         "VALUES ('A1002', '2026-11-28', 'C1', 'editorial', 0)"),
               store::StoreError);
  // A new day written by the batch writer is read back by every reader alike.
  std::vector<store::AssignmentUpsertParams> next;
  for (int i = 0; i < kAdvisorsMigration; ++i) {
    auto& q = next.emplace_back();
    q.assignment.advisor_id = advisor_id(i);
    q.assignment.date = "2026-11-29";
    q.assignment.content_id = "C2";
    q.assignment.source = Source::fallback;
    q.assignment.score_parts = "{\"total\":1}";
    q.created_at = kT0Migration + 10;
  }
  db_->write_tx([&] {
    store::AssignmentWriter w(*db_);
    for (const auto& q : next) w.add(q);
    w.finish();
  });
  EXPECT_EQ(store::AssignmentListForDate(*db_, "2026-11-29").size(), static_cast<std::size_t>(kAdvisorsMigration));
  const auto h = store::AssignmentListForAdvisorRange(*db_, advisor_id(0), "2026-11-25", "2026-11-29");
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back().date, "2026-11-29");
  for (std::size_t i = 1; i < h.size(); ++i) EXPECT_LT(h[i - 1].date, h[i].date);  // oldest first
}

TEST_F(AssignmentsMigrationTest, OneAdvisorsDaysAreKeySearchesNotAScan) {
  db_ = std::make_unique<store::Db>(db_path());
  for (const char* sql : {"EXPLAIN QUERY PLAN SELECT date, content_id FROM assignments WHERE date = '2026-11-27' AND advisor_id = 'A1000'",
                          "EXPLAIN QUERY PLAN SELECT MIN(date) FROM assignments WHERE date > '2026-11-25' AND date <= '2026-11-28'"}) {
    SQLite::Statement plan(db_->raw(), sql);
    ASSERT_TRUE(plan.executeStep()) << sql;
    const std::string detail = plan.getColumn(3).getString();
    EXPECT_NE(detail.find("SEARCH assignments USING"), std::string::npos) << sql << ": " << detail;
  }
}

}  // namespace
}  // namespace daybreak
