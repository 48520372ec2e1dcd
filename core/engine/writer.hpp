#pragma once
// The one writer thread of a dispatch: it owns its own ledger connection (store/dispatch_ledger.hpp)
// and commits queued typed operations in batches (every commit_interval), so SQLite writes stay off the send path.
// When the database is locked or full, operations stay queued and are retried: nothing is lost.
// An operation that cannot succeed (a constraint, a mismatch, a bug in its own code) is dropped
// on its own and every other operation of its batch commits: one bad write never blocks the rest.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "domain/clock.hpp"
#include "store/db.hpp"
#include "store/dispatch_ledger.hpp"

namespace spdlog {
class logger;
}

namespace daybreak::engine {

/// Runs on the writer thread once the operation's fate is known: `committed` is true after its
/// batch committed (with the operation's typed result), false when it was dropped as a
/// permanent failure (nothing it wrote is kept; the result is empty).
using OnDone = std::function<void(bool committed, store::LedgerResult&& result)>;
/// Runs after the batch holding the operation committed; never for a dropped one.
using AfterCommit = std::function<void()>;

class BatchWriter {
 public:
  /// `open` is called on the writer's thread for its connection (again after a failure to open).
  BatchWriter(store::LedgerFactory open, Millis commit_interval_ms, std::shared_ptr<spdlog::logger> log);
  ~BatchWriter();
  /// Queues an operation and an optional callback run once it is committed.
  void enqueue(store::LedgerOp op, AfterCommit after = nullptr);
  /// Queues an operation whose callback learns its fate and receives its result.
  void enqueue(store::LedgerOp op, OnDone done);
  /// Blocks until everything queued so far is committed (or dropped), or `timeout_ms` of real time passed.
  bool flush(long timeout_ms);
  /// Operations waiting (not yet committed).
  [[nodiscard]] std::size_t backlog() const;
  /// True when the last commit attempt failed (locked, full, I/O error).
  [[nodiscard]] bool failing() const { return failing_.load(); }
  [[nodiscard]] std::string last_error() const;
  /// Operations dropped so far because they failed permanently.
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(); }
  /// Stops after committing what is queued (bounded by `timeout_ms`).
  void stop(long timeout_ms);

 private:
  struct Pending {
    store::LedgerOp op;
    OnDone done;
    store::LedgerResult result;
  };
  void loop();
  /// Moves queued operations into `batch` (heartbeats first, at most kMaxBatch in all). Holds mu_.
  void take_queued(std::vector<Pending>& batch);
  static constexpr std::size_t kMaxBatch = 5000;
  /// Commits `batch` in one transaction. On a permanent failure of an operation, runs the batch
  /// again one operation per savepoint, marking in `dropped` those that fail permanently, and
  /// commits the others. Throws on a transient failure (nothing committed).
  void commit(store::DispatchLedger& ledger, std::vector<Pending>& batch, std::vector<char>& dropped);
  store::LedgerFactory open_;
  Millis interval_ms_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::vector<Pending> queue_;
  std::size_t in_progress_ = 0;
  std::uint64_t enqueued_seq_ = 0;
  std::uint64_t committed_seq_ = 0;
  std::atomic<bool> failing_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::string last_error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace daybreak::engine
