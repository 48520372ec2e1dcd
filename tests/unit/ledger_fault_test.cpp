// The dispatcher against a ledger that fails at call N, for every N over a whole run
// (store/dispatch_ledger.hpp is the port; FaultyLedger wraps the real SQLite ledger and throws at
// its Nth write operation). Once with a transient failure (locked: the writer retries the batch)
// and once with a permanent one (that operation fails on every attempt and is dropped alone).
// After the faulty dispatch, and a clean one when the first left its run open, the test asserts
// what an operator relies on: nothing is lost (every delivery final, accepted or dead with its
// reason), nothing reached the provider twice without being counted as a possible duplicate, and
// the run was never closed while a row of it was not final. The same sweep runs against the
// PostgreSQL ledger (PgDispatchLedger on a throwaway server, pg_server.hpp): the day is seeded
// in SQLite and copied with migrate_ledger_to_pg into a fresh database per N.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "pg_server.hpp"
#include "store/dispatch_ledger.hpp"
#include "store/pg_ledger.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

constexpr Millis kFaultT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr int kRows = 12;

/// An operation's identity across the writer's retries (same kind, same subject).
using OpKey = std::tuple<std::size_t, std::int64_t, std::int64_t>;
OpKey key_of(const store::LedgerOp& op) {
  return std::visit(
      [&](const auto& o) -> OpKey {
        using T = std::decay_t<decltype(o)>;
        const std::size_t kind = op.index();
        if constexpr (std::is_same_v<T, store::ledger_op::Claim>) return {kind, o.ids.empty() ? 0 : o.ids.front(), o.now};
        if constexpr (std::is_same_v<T, store::ledger_op::Outcome>)
          return {kind, o.update.delivery_id, o.update.attempts * 16 + static_cast<int>(o.update.state)};
        if constexpr (std::is_same_v<T, store::ledger_op::Attempt>) return {kind, o.attempt.delivery_id, o.attempt.attempt_no};
        if constexpr (std::is_same_v<T, store::ledger_op::Substitute>) return {kind, o.delivery_id, o.now};
        if constexpr (std::is_same_v<T, store::ledger_op::Release>) return {kind, o.ids.empty() ? 0 : o.ids.front(), o.now};
        if constexpr (std::is_same_v<T, store::ledger_op::Heartbeat>) return {kind, o.now, 0};
        if constexpr (std::is_same_v<T, store::ledger_op::PollChanges>) return {kind, o.after_seq, 0};
        if constexpr (std::is_same_v<T, store::ledger_op::CloseRun>) return {kind, o.run_id, o.now};
        if constexpr (std::is_same_v<T, store::ledger_op::ReleaseLease>) return {kind, o.run_id, 0};
        if constexpr (std::is_same_v<T, store::ledger_op::RerouteAfterFailed>) return {kind, o.params.delivery_id, o.params.now};
        return {kind, 0, 0};
      },
      op);
}

/// Shared by every connection a factory opens (the loader's and the writer's).
struct FaultPlan {
  long fail_at = 0;        ///< the 1-based write operation that fails; 0: none
  bool permanent = false;  ///< fail that operation on every attempt (else once, as "locked")
  std::atomic<long> calls{0};
  std::mutex mu;
  std::set<OpKey> poisoned;
  std::string failed_op;
};

class FaultyLedger final : public test_support::ForwardingLedger {
 public:
  FaultyLedger(std::unique_ptr<store::DispatchLedger> inner, std::shared_ptr<FaultPlan> plan)
      : ForwardingLedger(std::move(inner)), plan_(std::move(plan)) {}
  store::LedgerResult apply(const store::LedgerOp& op) override {
    inject(op);
    return inner().apply(op);
  }
  /// The fault is decided per operation in order, as apply() does; the operations before it go
  /// to the inner ledger together (on PostgreSQL its pipeline, which the sweep thus covers).
  std::optional<store::BatchFailure> apply_batch(const std::vector<const store::LedgerOp*>& ops,
                                                 std::vector<store::LedgerResult>& results) override {
    std::size_t k = 0;
    std::exception_ptr fault;
    for (; k < ops.size() && !fault; ++k) {
      try {
        inject(*ops[k]);
      } catch (...) {
        fault = std::current_exception();
        break;
      }
    }
    const std::vector<const store::LedgerOp*> before(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(k));
    auto failed = inner().apply_batch(before, results);
    results.resize(ops.size());
    if (failed) return failed;
    if (fault) return store::BatchFailure{k, fault};
    return std::nullopt;
  }

 private:
  /// Throws when `op` is the one this plan fails (or was poisoned by it).
  void inject(const store::LedgerOp& op) {
    if (!std::holds_alternative<store::ledger_op::Local>(op)) {
      const long n = ++plan_->calls;
      const OpKey key = key_of(op);
      std::lock_guard lk(plan_->mu);
      if (n == plan_->fail_at) {
        plan_->failed_op = store::op_name(op);
        if (plan_->permanent) plan_->poisoned.insert(key);
        if (!plan_->permanent) throw store::StoreError("injected: database is locked", SQLITE_BUSY);
      }
      if (plan_->poisoned.count(key)) throw store::StoreError("injected: constraint failed", SQLITE_CONSTRAINT);
    }
  }
  std::shared_ptr<FaultPlan> plan_;
};

/// Accepts every WhatsApp request at once and counts the requests per recipient.
class CountingTransport final : public channels::Transport {
 public:
  void submit(channels::Request req, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      ++per_to_[nlohmann::json::parse(req.body).value("to", std::string("?"))];
      n = ++n_;
    }
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}
  std::map<std::string, int> per_to() {
    std::lock_guard lk(mu_);
    return per_to_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> per_to_;
  int n_ = 0;
};

class LedgerFaultTest : public test_support::DbTest {
 protected:
  LedgerFaultTest() : DbTest("ledgerfault") {}

  static std::string phone(int i) { return "+9198100" + std::to_string(10000 + i); }

  /// A fresh database `name` with kRows WhatsApp deliveries in run 1, all due at kFaultT0.
  std::string seed(const std::string& name) {
    const std::string path = (dir_ / (name + ".db")).string();
    store::Db db(path);
    EXPECT_EQ(test_support::add_content_and_run(db, kFaultT0 - 3'600'000), 1);
    db.write_tx([&] {
      for (int i = 0; i < kRows; ++i) {
        std::string id = "adv-" + std::to_string(i);
        test_support::add_whatsapp_advisor(db, id, kFaultT0 - 3'600'000);
        db.exec("UPDATE advisor_channels SET address = '" + phone(i) + "' WHERE advisor_id = '" + id + "'");
        EXPECT_TRUE(store::DeliveryInsert(db, test_support::planned_delivery(1, id, "2026-11-28", kFaultT0, kFaultT0, kFaultT0 - 3'600'000)));
      }
    });
    test_support::set_run_window(db, 1, kFaultT0);
    return path;
  }

  static Config config(const std::string& path) {
    return parse_config("[database]\npath = \"" + path +
                            "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n",
                        "");
  }

  /// One dispatch of run 1 on `clock` through `plan`'s faulty ledger (no faults when null); on
  /// the PostgreSQL ledger at `pg_url` when it is set.
  static engine::DispatchSummary dispatch(const std::string& path, ManualClock& clock, CountingTransport& t,
                                          const std::string& owner, std::shared_ptr<FaultPlan> plan,
                                          const std::string& pg_url = "") {
    Config cfg = config(path);
    store::LedgerFactory factory;
    if (pg_url.empty()) {
      store::Db db(path);
      db.write_tx([&] { EXPECT_TRUE(store::RunAcquireLease(db, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired) << owner; });
      factory = store::sqlite_ledger_factory(path, owner);
    } else {
      store::PgDispatchLedger pg(pg_url, owner);
      EXPECT_TRUE(pg.acquire_lease(1, clock.now(), cfg.dispatch.lease_ms).acquired) << owner;
      factory = store::pg_ledger_factory(pg_url, owner);
    }
    if (plan) {
      factory = [inner = factory, plan]() -> std::unique_ptr<store::DispatchLedger> {
        return std::make_unique<FaultyLedger>(inner(), plan);
      };
    }
    // LEDGER_FAULT_TEST_LOG=1 shows dispatch's log on stderr.
    return test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "LEDGER_FAULT_TEST_LOG", factory, {}, 50);
  }

  /// Runs the whole sweep: for N = 1, 2, ... until a run makes fewer than N write operations.
  void sweep(bool permanent, test_support::PgServer* pg = nullptr) {
    long total = 0;
    for (long n = 1; n <= 200; ++n) {
      SCOPED_TRACE("fail at write operation " + std::to_string(n) + (permanent ? " (permanent)" : " (transient)") +
                   (pg ? " on PostgreSQL" : ""));
      const std::string path = seed((permanent ? "p" : "t") + std::to_string(n));
      std::string url;
      std::unique_ptr<store::PgConn> pgc;
      if (pg) {
        const std::string dbname = std::string(permanent ? "p" : "t") + std::to_string(n);
        store::PgConn(pg->url()).exec("CREATE DATABASE " + dbname);
        url = pg->url(dbname);
        store::migrate_ledger_to_pg(path, url, "");
        pgc = std::make_unique<store::PgConn>(url);
      }
      auto plan = std::make_shared<FaultPlan>();
      plan->fail_at = n;
      plan->permanent = permanent;
      ManualClock clock(kFaultT0 - 1000);
      CountingTransport t;
      auto first = dispatch(path, clock, t, "faulty-" + std::to_string(n), plan, url);
      total = plan->calls.load();
      store::Db db(path);
      auto count = [&](const std::string& sql) -> std::int64_t {
        if (pgc) return pgc->query(sql).i64(0, 0);
        SQLite::Statement q(db.raw(), sql);
        q.executeStep();
        return q.getColumn(0).getInt64();
      };
      auto get_run = [&]() -> std::optional<store::Run> {
        if (pgc) return store::PgDispatchLedger(url, "reader").load_run(1);
        return store::RunGet(db, 1);
      };
      const std::string non_final = "SELECT COUNT(*) FROM deliveries WHERE state IN (" + non_final_states_sql() + ")";
      auto run = get_run();
      ASSERT_TRUE(run);
      // The run is closed only when every row is final.
      if (run->state == "closed") {
        EXPECT_EQ(count(non_final), 0) << "closed with rows not final";
      }
      if (!permanent) {
        EXPECT_EQ(run->state, "closed") << "a transient failure (" << plan->failed_op << ") must only delay the run";
        EXPECT_EQ(first.writes_dropped, 0);
      }
      std::int64_t possible_dups = first.possible_duplicates;
      if (run->state != "closed") {
        // What a faulty dispatch left open, the next one finishes (after the first one's lease).
        clock.advance(Config{}.dispatch.lease_ms + 1000);
        auto second = dispatch(path, clock, t, "clean-" + std::to_string(n), nullptr, url);
        possible_dups += second.possible_duplicates;
        run = get_run();
        ASSERT_TRUE(run);
        EXPECT_EQ(run->state, "closed") << "the clean dispatch did not close what the faulty one (" << plan->failed_op
                                        << ") left open";
      }
      // Nothing lost: every delivery final, and one that is not accepted says why.
      EXPECT_EQ(count(non_final), 0);
      EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), kRows);
      EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state NOT IN ('accepted', 'delivered', 'read') AND "
                      "(state != 'dead' OR last_error IS NULL OR last_error = '')"),
                0);
      // The provider was up: a dead row is only one whose claim itself could not be written.
      EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND last_error NOT LIKE '%claim cannot be written%'"), 0);
      // Nothing sent twice that is not counted as a possible duplicate.
      int extra = 0;
      for (const auto& [to, requests] : t.per_to()) {
        if (requests > 1) {
          extra += requests - 1;
          EXPECT_EQ(count("SELECT possible_duplicate FROM deliveries d JOIN advisor_channels c USING (advisor_id) "
                          "WHERE c.address = '" + to + "'"),
                    1)
              << to << " reached the provider " << requests << " times without being marked a possible duplicate";
        }
      }
      EXPECT_LE(extra, possible_dups) << "provider duplicates beyond what dispatch reported";
      if (HasFailure()) return;
      if (n > total) break;  // every operation of a whole run has failed once
    }
    EXPECT_GT(total, kRows * 2) << "the sweep did not cover a whole run's writes";
  }
};

TEST_F(LedgerFaultTest, TransientFailureAtEveryWriteLosesNothing) { sweep(false); }

TEST_F(LedgerFaultTest, PermanentFailureAtEveryWriteLosesNothingAndClosesOnlyWhenFinal) { sweep(true); }

TEST_F(LedgerFaultTest, PostgresTransientAndPermanentFailureAtEveryWriteLoseNothing) {
  test_support::PgServer pg;
  if (!pg.up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << pg.why_not();
  sweep(false, &pg);
  if (HasFailure()) return;
  sweep(true, &pg);
}

}  // namespace
}  // namespace daybreak
