// Tests for store::AssignmentWriter (core/store/assignments.cpp): the batched upsert assign-fallback
// writes with must leave exactly what AssignmentUpsert row by row leaves, in full batches and in
// the tail, including "unchanged rows are not rewritten" and replacing an override.
#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "db_fixture.hpp"
#include "store/assignments.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Writer = 1'764'300'000'000;

class AssignmentWriterTest : public test_support::DbTest {
 protected:
  AssignmentWriterTest() : DbTest("assignment-writer") {}

  store::AssignmentUpsertParams row(int i, const std::string& content, Millis at) {
    store::AssignmentUpsertParams p;
    p.assignment.advisor_id = "A" + std::to_string(1000 + i);
    p.assignment.date = "2026-11-28";
    p.assignment.content_id = content;
    p.assignment.source = Source::fallback;
    p.assignment.score = 0.25 * i;
    p.assignment.score_parts = i % 2 ? "" : "{\"total\":" + std::to_string(i) + "}";
    p.assignment.reason = "no content assigned";
    p.created_at = at;
    return p;
  }
  /// Every assignment row as text, ordered by advisor.
  std::string dump() {
    SQLite::Statement q(db_->raw(),
                        "SELECT advisor_id, date, content_id, source, score, score_parts, reason, created_at FROM assignments "
                        "ORDER BY advisor_id");
    std::string out;
    while (q.executeStep()) {
      for (int c = 0; c < 8; ++c) out += q.getColumn(c).getString() + "|";
      out += "\n";
    }
    return out;
  }
};

TEST_F(AssignmentWriterTest, BatchesAndTailMatchRowByRowUpserts) {
  const int n = 2 * static_cast<int>(store::AssignmentWriter::kBatch) + 22;  // two batches and a tail
  for (const char* c : {"C1", "C2"}) {
    Content item;
    item.content_id = c;
    item.title = "T";
    item.body = "B";
    item.language = "en";
    store::ContentUpsert(*db_, {item, kT0Writer});
  }
  for (int i = 0; i < n; ++i) test_support::add_whatsapp_advisor(*db_, "A" + std::to_string(1000 + i), kT0Writer);
  // Before: every third advisor has an override, every fifth already has the fallback row.
  for (int i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      auto o = row(i, "C2", kT0Writer);
      o.assignment.source = Source::override_;
      store::AssignmentUpsert(*db_, o);
    } else if (i % 5 == 0) {
      store::AssignmentUpsert(*db_, row(i, "C1", kT0Writer));
    }
  }
  const std::string before = dump();

  // Row by row (the reference), then rolled back to the same start and written by the writer.
  std::string expected;
  db_->exec("BEGIN IMMEDIATE");
  for (int i = 0; i < n; ++i) store::AssignmentUpsert(*db_, row(i, "C1", kT0Writer + 1));
  expected = dump();
  db_->exec("ROLLBACK");
  ASSERT_EQ(dump(), before);

  std::deque<store::AssignmentUpsertParams> rows;  // the writer keeps references: stable addresses
  db_->write_tx([&] {
    store::AssignmentWriter w(*db_);
    for (int i = 0; i < n; ++i) w.add(rows.emplace_back(row(i, "C1", kT0Writer + 1)));
    w.finish();
  });
  EXPECT_EQ(dump(), expected);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments"), n);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE source = 'override'"), 0);  // replaced, as fallback does
  // Rows that already said exactly this kept their created_at (not rewritten).
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE created_at = " + std::to_string(kT0Writer)),
            [&] {
              int k = 0;
              for (int i = 0; i < n; ++i) k += (i % 3 != 0 && i % 5 == 0);
              return k;
            }());
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE score_parts = '{}'"), n / 2);
}

}  // namespace
}  // namespace daybreak
