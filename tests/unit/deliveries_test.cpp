// store/deliveries.cpp: the batched inserter plan-deliveries writes a million rows through.
#include "store/deliveries.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

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

}  // namespace
}  // namespace daybreak
