// The per (tier, channel, sender) breakdown the console shows: dispatch publishes it in every
// heartbeat's progress from memory (engine::breakdown_json over its integer-keyed counts), and
// the ledger builder and store::DeliveryBreakdown count it from the rows. A run with two tiers on
// two senders, some deliveries dead and some accepted late (the wall clock steps past the
// deadline), checks that every published row names real groups with their seeded totals, that
// the rows add up to the headline figures of the same heartbeat, and that the ledger's two
// counts agree once the run is over.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "engine/live.hpp"
#include "store/breakdown.hpp"
#include "store/dispatch_ledger.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

constexpr Millis kBdT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr int kRows = 300;

/// The SQLite ledger, with every heartbeat's progress rows kept for the test.
class HeartbeatTap final : public test_support::ForwardingLedger {
 public:
  HeartbeatTap(std::unique_ptr<store::DispatchLedger> inner, std::shared_ptr<std::vector<json>> seen,
               std::shared_ptr<std::mutex> mu)
      : ForwardingLedger(std::move(inner)), seen_(std::move(seen)), mu_(std::move(mu)) {}
  store::LedgerResult apply(const store::LedgerOp& op) override {
    tap(op);
    return inner().apply(op);
  }
  std::optional<store::BatchFailure> apply_batch(const std::vector<const store::LedgerOp*>& ops,
                                                 std::vector<store::LedgerResult>& results) override {
    for (const auto* op : ops) tap(*op);
    return inner().apply_batch(ops, results);
  }

 private:
  void tap(const store::LedgerOp& op) {
    if (const auto* hb = std::get_if<store::ledger_op::Heartbeat>(&op)) {
      std::lock_guard lk(*mu_);
      for (const auto& [run, progress] : hb->progress) seen_->push_back(json::parse(progress));
    }
  }
  std::shared_ptr<std::vector<json>> seen_;
  std::shared_ptr<std::mutex> mu_;
};

/// Accepts every request but each 7th (131026, permanent: the advisor has no other channel, so
/// it is dead); at the 200th it steps the wall clock past the deadline, so later ones are late.
class MixedTransport final : public channels::Transport {
 public:
  explicit MixedTransport(ManualClock& clock) : clock_(clock) {}
  void submit(channels::Request, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      n = ++n_;
    }
    if (n == 200) clock_.step_wall(10 * 60'000);
    if (n % 7 == 0) {
      channels::Response r;
      r.transport_ok = true;
      r.status = 400;
      r.body = R"({"error":{"message":"Message Undeliverable","type":"OAuthException","code":131026}})";
      done(std::move(r));
      return;
    }
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}

 private:
  ManualClock& clock_;
  std::mutex mu_;
  int n_ = 0;
};

class BreakdownTest : public test_support::DbTest {
 protected:
  BreakdownTest() : DbTest("breakdown") {}
  /// Seeded totals per (tier, sender): row i is platinum when i % 3 == 0 (else gold) and goes
  /// through wa-2 when i is odd (else wa-1).
  std::map<std::tuple<std::string, std::string>, int> seeded;

  void seed() {
    auto run = test_support::add_content_and_run(*db_, kBdT0 - 3'600'000);
    ASSERT_EQ(run, 1);
    db_->write_tx([&] {
      for (int i = 0; i < kRows; ++i) {
        std::string id = "adv-" + std::to_string(i);
        test_support::add_whatsapp_advisor(*db_, id, kBdT0 - 3'600'000);
        auto d = test_support::planned_delivery(1, id, "2026-11-28", kBdT0, kBdT0 + i * 10, kBdT0 - 3'600'000);
        d.tier = i % 3 == 0 ? "platinum" : "gold";
        d.tier_rank = i % 3 == 0 ? 0 : 1;
        d.sender = i % 2 ? "wa-2" : "wa-1";
        ++seeded[{d.tier, d.sender}];
        ASSERT_TRUE(store::DeliveryInsert(*db_, d));
      }
    });
    test_support::set_run_window(*db_, 1, kBdT0);
  }
};

TEST_F(BreakdownTest, DispatchPublishesRowsThatAddUpAndTheLedgerCountsAgree) {
  seed();
  if (HasFatalFailure()) return;
  Config cfg = parse_config("[database]\npath = \"" + db_path() +
                                "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 40\n"
                                "[[whatsapp.senders]]\nid = \"wa-2\"\nphone_number_id = \"2\"\ntoken = \"t\"\nmps = 40\n",
                            "");
  ManualClock clock(kBdT0 - 1000);
  MixedTransport t(clock);
  const std::string owner = "breakdown-test";
  ASSERT_TRUE(store::RunAcquireLease(*db_, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired);
  auto seen = std::make_shared<std::vector<json>>();
  auto mu = std::make_shared<std::mutex>();
  store::LedgerFactory inner = store::sqlite_ledger_factory(cfg.database_path, owner);
  store::LedgerFactory tapped = [inner, seen, mu]() -> std::unique_ptr<store::DispatchLedger> {
    return std::make_unique<HeartbeatTap>(inner(), seen, mu);
  };
  // BREAKDOWN_TEST_LOG=1 shows dispatch's log on stderr.
  auto s = test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "BREAKDOWN_TEST_LOG", tapped);
  ASSERT_EQ(s.runs_closed.size(), 1U);
  ASSERT_GT(s.dead, 0U);

  std::lock_guard lk(*mu);
  int with_rows = 0, mid_run = 0;
  for (const auto& p : *seen) {
    if (!p.contains("live")) continue;
    const json& live = p["live"];
    ASSERT_TRUE(live.contains("breakdown")) << live.dump();
    const json& rows = live["breakdown"];
    if (rows.empty()) continue;
    ++with_rows;
    std::uint64_t total = 0, accepted = 0, on_time = 0, dead = 0, pending = 0;
    for (const auto& r : rows) {
      const auto tier = r["tier"].get<std::string>(), sender = r["sender"].get<std::string>();
      const auto group = seeded.find(std::make_tuple(tier, sender));
      ASSERT_NE(group, seeded.end()) << "a group nobody seeded: " << r.dump();
      EXPECT_EQ(r["channel"], "whatsapp");
      EXPECT_EQ(r["total"].get<int>(), group->second) << r.dump();
      EXPECT_TRUE(r["delivered"].is_null()) << "dispatch does not know status callbacks: " << r.dump();
      EXPECT_LE(r["on_time"].get<std::uint64_t>(), r["accepted"].get<std::uint64_t>());
      total += r["total"].get<std::uint64_t>();
      accepted += r["accepted"].get<std::uint64_t>();
      on_time += r["on_time"].get<std::uint64_t>();
      dead += r["dead"].get<std::uint64_t>();
      pending += r["pending"].get<std::uint64_t>();
    }
    EXPECT_EQ(rows.size(), seeded.size());
    EXPECT_EQ(total, live["total"].get<std::uint64_t>() - live["cancelled"].get<std::uint64_t>());
    EXPECT_EQ(accepted, live["accepted"].get<std::uint64_t>());
    EXPECT_EQ(on_time, live["on_time"].get<std::uint64_t>());
    EXPECT_EQ(dead, live["dead"].get<std::uint64_t>());
    EXPECT_EQ(pending, live["remaining"].get<std::uint64_t>());
    if (accepted > 0 && pending > 0) ++mid_run;
  }
  EXPECT_GT(with_rows, 0);
  EXPECT_GT(mid_run, 0) << "no heartbeat caught the run half done";

  // After the run: the ledger builder's published form and the console's SQL agree row for row,
  // with accepted-late and dead rows in them.
  engine::LiveSnapshot snap = engine::snapshot_from_ledger(*db_, {1}, cfg, clock.now());
  ASSERT_EQ(snap.runs.size(), 1U);
  std::map<std::tuple<std::string, std::string, std::string>, json> from_snapshot;
  for (const auto& r : engine::breakdown_json(snap.runs.front())) {
    from_snapshot[{r["tier"].get<std::string>(), r["channel"].get<std::string>(), r["sender"].get<std::string>()}] = r;
  }
  const auto sql = store::DeliveryBreakdown(*db_, 1);
  ASSERT_EQ(sql.size(), from_snapshot.size());
  std::int64_t late = 0;
  for (const auto& b : sql) {
    const json& r = from_snapshot[{b.tier, b.channel, b.sender}];
    ASSERT_FALSE(r.is_null()) << b.tier << "/" << b.sender;
    EXPECT_EQ(r["total"].get<std::int64_t>(), b.total);
    EXPECT_EQ(r["accepted"].get<std::int64_t>(), b.accepted);
    EXPECT_EQ(r["on_time"].get<std::int64_t>(), b.on_time);
    EXPECT_EQ(r["delivered"].get<std::int64_t>(), b.delivered);
    EXPECT_EQ(r["dead"].get<std::int64_t>(), b.dead);
    EXPECT_EQ(r["pending"].get<std::int64_t>(), b.pending);
    late += b.accepted - b.on_time;
  }
  EXPECT_GT(late, 0) << "the clock step made some acceptances late";
  // The delivered-only count the console pairs with dispatch's rows: none before any callback,
  // then the same per group as the whole-run count once statuses arrive.
  EXPECT_TRUE(store::DeliveredBreakdown(*db_, 1).empty());
  db_->write_tx([&] {
    db_->raw().exec("UPDATE deliveries SET state = CASE WHEN delivery_id % 2 THEN 'delivered' ELSE 'read' END"
                    " WHERE state = 'accepted' AND delivery_id % 5 = 0");
  });
  std::int64_t delivered = 0;
  const auto whole = store::DeliveryBreakdown(*db_, 1);
  for (const auto& d : store::DeliveredBreakdown(*db_, 1)) {
    bool found = false;
    for (const auto& b : whole) {
      if (b.tier == d.tier && b.channel == d.channel && b.sender == d.sender) {
        EXPECT_EQ(d.delivered, b.delivered) << b.tier << "/" << b.sender;
        found = true;
      }
    }
    EXPECT_TRUE(found) << d.tier << "/" << d.sender;
    delivered += d.delivered;
  }
  EXPECT_EQ(delivered, scalar("SELECT COUNT(*) FROM deliveries WHERE state IN ('delivered', 'read')"));
  EXPECT_GT(delivered, 0);
}

}  // namespace
}  // namespace daybreak
