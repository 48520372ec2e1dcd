// engine/writer.cpp: dispatch's batch writer. An operation that always fails (a constraint, a
// bug) is dropped and every other operation commits; a locked database is waited out with
// nothing dropped. Real writer, real SQLite file (db_fixture.hpp), bounded waits.
#include "engine/writer.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "db_fixture.hpp"
#include "store/dispatch_ledger.hpp"

namespace daybreak {
namespace {

class WriterTest : public test_support::DbTest {
 protected:
  WriterTest() : DbTest("writer") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_->exec("CREATE TABLE writer_probe (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    db_->exec("INSERT INTO writer_probe VALUES (1, 'seed')");
    log_ = std::make_shared<spdlog::logger>("writer-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text_));
  }
  void TearDown() override {
    if (writer_) writer_->stop(3000);
    writer_.reset();
    if (HasFailure()) std::cerr << "writer log:\n" << log_text_.str();
    DbTest::TearDown();
  }
  void start() {
    writer_ = std::make_unique<engine::BatchWriter>(store::sqlite_ledger_factory(db_path(), "writer-test"), 20, log_);
  }
  /// A writer operation running `fn` on the ledger's connection.
  static store::LedgerOp local(std::function<void(store::Db&)> fn) { return store::ledger_op::Local{std::move(fn)}; }

  /// An operation inserting row `k` (through store::guarded, as the query modules do).
  static store::LedgerOp insert(int k, std::string v = "x") { return local(insert_fn(k, std::move(v))); }
  static std::function<void(store::Db&)> insert_fn(int k, std::string v = "x") {
    return [k, v](store::Db& db) {
      store::guarded("inserting a probe row", [&] {
        auto& q = db.stmt("INSERT INTO writer_probe (k, v) VALUES (?, ?)");
        q.bind(1, k);
        q.bind(2, v);
        q.exec();
      });
    };
  }
  std::int64_t rows(const std::string& where) { return scalar("SELECT COUNT(*) FROM writer_probe WHERE " + where); }

  std::ostringstream log_text_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<engine::BatchWriter> writer_;
};

// Row 1 exists: inserting it again is a PRIMARY KEY violation on every attempt. The writer used
// to roll the whole batch back and retry it for ever, so nothing after it ever committed.
TEST_F(WriterTest, ConstraintViolationIsDroppedAndTheRestCommits) {
  start();
  std::atomic<int> good_callbacks{0};
  std::atomic<int> bad_callbacks{0};
  writer_->enqueue(insert(10), [&] { ++good_callbacks; });
  writer_->enqueue(insert(11), [&] { ++good_callbacks; });
  writer_->enqueue(insert(1, "duplicate"), [&] { ++bad_callbacks; });
  writer_->enqueue(insert(12), [&] { ++good_callbacks; });
  ASSERT_TRUE(writer_->flush(5000))
      << "the writer did not commit within 5 s: one permanently failing operation blocks every other one";
  EXPECT_EQ(rows("k IN (10, 11, 12)"), 3);
  EXPECT_EQ(rows("k = 1 AND v = 'seed'"), 1);
  EXPECT_EQ(good_callbacks.load(), 3);
  EXPECT_EQ(bad_callbacks.load(), 0) << "an after-commit callback ran for an operation that was not committed";
  EXPECT_FALSE(writer_->failing());
  EXPECT_EQ(writer_->backlog(), 0u);
  EXPECT_EQ(writer_->dropped(), 1u);
  EXPECT_NE(log_text_.str().find("dropped a ledger write"), std::string::npos) << log_text_.str();
  EXPECT_NE(log_text_.str().find("UNIQUE constraint failed"), std::string::npos) << log_text_.str();

  // A later batch commits as usual.
  writer_->enqueue(insert(13), [&] { ++good_callbacks; });
  ASSERT_TRUE(writer_->flush(5000)) << "a later batch did not commit within 5 s";
  EXPECT_EQ(rows("k = 13"), 1);
  EXPECT_EQ(good_callbacks.load(), 4);
  EXPECT_EQ(writer_->dropped(), 1u);
}

// The outcome callback learns both fates; the log names the dropped operation's kind.
TEST_F(WriterTest, OutcomeCallbackTellsCommittedFromDropped) {
  start();
  std::atomic<int> committed{0};
  std::atomic<int> dropped{0};
  auto outcome = [&](bool ok, store::LedgerResult&&) { ++(ok ? committed : dropped); };
  writer_->enqueue(insert(40), engine::OnDone(outcome));
  writer_->enqueue(insert(1, "duplicate"), engine::OnDone(outcome));
  ASSERT_TRUE(writer_->flush(5000));
  EXPECT_EQ(committed.load(), 1);
  EXPECT_EQ(dropped.load(), 1);
  EXPECT_EQ(rows("k = 40"), 1);
  EXPECT_NE(log_text_.str().find("dropped a ledger write that fails on every attempt (monitoring and reports"), std::string::npos)
      << log_text_.str();
}

// A trigger's RAISE(ROLLBACK) ends the whole transaction, savepoints and all: the operations
// before the culprit must be run again, not lost.
TEST_F(WriterTest, FailureThatEndsTheTransactionLosesNothingElse) {
  db_->exec("CREATE TRIGGER writer_probe_boom BEFORE INSERT ON writer_probe WHEN NEW.v = 'boom' "
            "BEGIN SELECT RAISE(ROLLBACK, 'boom refused'); END");
  start();
  std::atomic<int> callbacks{0};
  writer_->enqueue(insert(50), [&] { ++callbacks; });
  writer_->enqueue(insert(51), [&] { ++callbacks; });
  writer_->enqueue(insert(52, "boom"), [&] { ++callbacks; });
  writer_->enqueue(insert(53), [&] { ++callbacks; });
  ASSERT_TRUE(writer_->flush(5000)) << "the writer did not commit within 5 s";
  EXPECT_EQ(rows("k IN (50, 51, 53)"), 3);
  EXPECT_EQ(rows("k = 52"), 0);
  EXPECT_EQ(callbacks.load(), 3);
  EXPECT_EQ(writer_->dropped(), 1u);
}

// An operation's own transient failure (a full disk met mid-batch) keeps the whole batch for the
// retry: nothing is dropped, everything commits once it passes.
TEST_F(WriterTest, TransientFailureInsideAnOperationIsRetried) {
  start();
  std::atomic<int> attempts{0};
  std::atomic<int> callbacks{0};
  writer_->enqueue(insert(60), [&] { ++callbacks; });
  writer_->enqueue(local([&](store::Db& db) {
                     if (++attempts <= 2) throw store::StoreError("inserting: database or disk is full", SQLITE_FULL);
                     insert_fn(61)(db);
                   }),
                   [&] { ++callbacks; });
  ASSERT_TRUE(writer_->flush(5000)) << "the writer did not commit within 5 s";
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_EQ(rows("k IN (60, 61)"), 2);
  EXPECT_EQ(callbacks.load(), 2);
  EXPECT_EQ(writer_->dropped(), 0u);
  EXPECT_NE(log_text_.str().find("held for retry: inserting: database or disk is full"), std::string::npos)
      << log_text_.str();
}

TEST(WriterErrorClassTest, TransientVersusPermanent) {
  EXPECT_TRUE(store::is_transient_error(SQLite::Exception("locked", SQLITE_BUSY)));
  EXPECT_TRUE(store::is_transient_error(SQLite::Exception("locked", SQLITE_LOCKED)));
  EXPECT_TRUE(store::is_transient_error(SQLite::Exception("full", SQLITE_FULL)));
  EXPECT_TRUE(store::is_transient_error(SQLite::Exception("io", SQLITE_IOERR_WRITE)));
  EXPECT_TRUE(store::is_transient_error(store::StoreError("claiming: database is locked", SQLITE_BUSY)));
  EXPECT_FALSE(store::is_transient_error(SQLite::Exception("unique", SQLITE_CONSTRAINT_UNIQUE)));
  EXPECT_FALSE(store::is_transient_error(SQLite::Exception("mismatch", SQLITE_MISMATCH)));
  EXPECT_FALSE(store::is_transient_error(SQLite::Exception("corrupt", SQLITE_CORRUPT)));
  EXPECT_FALSE(store::is_transient_error(store::StoreError("unknown state 'x'")));
  EXPECT_FALSE(store::is_transient_error(std::logic_error("a bug")));
}

// store::guarded keeps SQLite's extended code in the StoreError it throws.
TEST_F(WriterTest, GuardedCarriesTheExtendedCode) {
  try {
    insert_fn(1, "duplicate")(*db_);
    FAIL() << "no exception";
  } catch (const store::StoreError& e) {
    EXPECT_EQ(e.code(), SQLITE_CONSTRAINT_PRIMARYKEY) << e.what();
    EXPECT_FALSE(store::is_transient_error(e));
  }
}

// A bug in an operation's own code (not SQLite's) is just as permanent.
TEST_F(WriterTest, NonSqliteExceptionIsPermanent) {
  start();
  std::atomic<int> callbacks{0};
  writer_->enqueue(insert(20), [&] { ++callbacks; });
  writer_->enqueue(local([](store::Db& db) {
    db.exec("INSERT INTO writer_probe VALUES (21, 'written before the bug')");
    throw std::logic_error("a bug in the operation");
  }));
  writer_->enqueue(insert(22), [&] { ++callbacks; });
  ASSERT_TRUE(writer_->flush(5000)) << "the writer did not commit within 5 s: a throwing operation blocks the rest";
  EXPECT_EQ(rows("k IN (20, 22)"), 2);
  EXPECT_EQ(rows("k = 21"), 0) << "the dropped operation's own writes must be rolled back";
  EXPECT_EQ(callbacks.load(), 2);
  EXPECT_EQ(writer_->dropped(), 1u);
  EXPECT_NE(log_text_.str().find("a bug in the operation"), std::string::npos) << log_text_.str();
}

// Another connection holds the write lock (BEGIN IMMEDIATE) longer than the writer's busy
// timeout: transient. The writer reports failing, keeps everything, and commits it all once the
// lock is gone.
TEST_F(WriterTest, LockedDatabaseIsRetriedAndNothingIsDropped) {
  SQLite::Database other(db_path(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  start();
  std::atomic<int> callbacks{0};
  for (int k = 30; k < 40; ++k) writer_->enqueue(insert(k), [&] { ++callbacks; });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!writer_->failing() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(writer_->failing()) << "the writer never noticed the lock";
  EXPECT_NE(writer_->last_error().find("locked"), std::string::npos) << writer_->last_error();
  EXPECT_EQ(callbacks.load(), 0);
  EXPECT_EQ(writer_->backlog(), 10u);
  other.exec("ROLLBACK");
  ASSERT_TRUE(writer_->flush(10000)) << "the writer did not commit within 10 s of the lock's release";
  EXPECT_EQ(rows("k BETWEEN 30 AND 39"), 10);
  EXPECT_EQ(callbacks.load(), 10);
  EXPECT_FALSE(writer_->failing());
  EXPECT_EQ(writer_->dropped(), 0u);
  EXPECT_NE(log_text_.str().find("database writes recovered"), std::string::npos) << log_text_.str();
}

// daybreak-callbacks lets the WAL grow to 6,144 frames before it starts it over and copies it
// into the file on its own thread. dispatch's writer on the same file used SQLite's automatic
// checkpoint at 1,000 frames, so after nearly every commit it copied the receiver's frames
// itself (22% of its CPU). About 3,000 frames written through the writer now stay in the WAL:
// the database file does not grow until someone else checkpoints.
TEST_F(WriterTest, TheWriterLeavesAFewThousandWalFramesToTheReceiversCheckpointer) {
  const auto file_before = std::filesystem::file_size(db_path());
  start();
  const std::string big(40 * 1024, 'x');  // about ten pages a row
  for (int k = 100; k < 400; ++k) writer_->enqueue(insert(k, big));
  ASSERT_TRUE(writer_->flush(30000));
  EXPECT_EQ(rows("k BETWEEN 100 AND 399"), 300);
  EXPECT_GT(std::filesystem::file_size(db_path() + "-wal"), 2'500u * 4096) << "the rows are in the WAL";
  EXPECT_EQ(std::filesystem::file_size(db_path()), file_before) << "the writer checkpointed the WAL into the file";
}

/// Records which operations each committed transaction ran, in order (no database).
struct WriterOrderLog {
  std::mutex mu;
  std::vector<std::vector<std::size_t>> committed;  ///< per transaction: each operation's LedgerOp index
};
class RecordingLedger final : public store::DispatchLedger {
 public:
  RecordingLedger(std::shared_ptr<WriterOrderLog> log, std::function<void()> on_begin)
      : log_(std::move(log)), on_begin_(std::move(on_begin)) {}
  const std::string& owner() const override { return owner_; }
  std::optional<store::Run> load_run(std::int64_t) override { return std::nullopt; }
  store::CrashReconcile reconcile_crashed(std::int64_t, Millis) override { return {}; }
  std::vector<store::ContentRow> load_emergency_content() override { return {}; }
  std::vector<store::ContentRow> load_run_content(std::int64_t) override { return {}; }
  void for_each_delivery(std::int64_t, const std::function<void(store::DeliveryRow&&)>&) override {}
  std::int64_t change_mark() override { return 0; }
  void begin() override {
    tx_.clear();
    if (on_begin_) on_begin_();
  }
  void commit() override {
    std::lock_guard lk(log_->mu);
    log_->committed.push_back(tx_);
  }
  void rollback() noexcept override {}
  bool in_transaction() override { return true; }
  void savepoint() override {}
  void release_savepoint() override {}
  void rollback_to_savepoint() override {}
  store::LedgerResult apply(const store::LedgerOp& op) override {
    tx_.push_back(op.index());
    return {};
  }

 private:
  std::shared_ptr<WriterOrderLog> log_;
  std::function<void()> on_begin_;
  std::string owner_ = "recording";
  std::vector<std::size_t> tx_;
};

/// A backlog far behind its sends: the lease renewal queued last commits in the first
/// transaction, ahead of the writes queued before it, and the backlog commits in bounded
/// transactions (a heartbeat never waits for the whole of it), every operation exactly once.
TEST(WriterOrder, HeartbeatsGoFirstAndABacklogCommitsInBoundedBatches) {
  auto rec = std::make_shared<WriterOrderLog>();
  std::promise<void> in_first, release_first;
  auto go = release_first.get_future().share();
  std::atomic<int> begins{0};
  std::ostringstream text;
  auto log = std::make_shared<spdlog::logger>("writer-order", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
  // The writer's first transaction waits in begin() while the backlog and the heartbeat queue.
  engine::BatchWriter w([&]() -> std::unique_ptr<store::DispatchLedger> {
    return std::make_unique<RecordingLedger>(rec, [&] {
      if (begins++ == 0) {
        in_first.set_value();
        go.wait();
      }
    });
  }, 20, log);
  w.enqueue(store::ledger_op::Release{{0}, 1});
  in_first.get_future().wait();
  const int n = 12'000;
  for (int i = 1; i <= n; ++i) w.enqueue(store::ledger_op::Release{{i}, 1});
  w.enqueue(store::ledger_op::Heartbeat{{{1, "{}"}}, 2, 15'000});
  release_first.set_value();
  ASSERT_TRUE(w.flush(30'000));
  w.stop(5000);
  std::lock_guard lk(rec->mu);
  ASSERT_GE(rec->committed.size(), 4u);  // the first one, then 12,001 in at most 5,000 each
  const std::size_t heartbeat = store::LedgerOp(store::ledger_op::Heartbeat{}).index();
  ASSERT_EQ(rec->committed[0].size(), 1u);
  ASSERT_FALSE(rec->committed[1].empty());
  EXPECT_EQ(rec->committed[1][0], heartbeat);  // queued last, committed first
  std::size_t total = 0, beats = 0;
  for (const auto& tx : rec->committed) {
    EXPECT_LE(tx.size(), 5000u);
    total += tx.size();
    for (auto k : tx) beats += k == heartbeat ? 1 : 0;
  }
  EXPECT_EQ(total, static_cast<std::size_t>(n + 2));
  EXPECT_EQ(beats, 1u);
}

}  // namespace
}  // namespace daybreak
