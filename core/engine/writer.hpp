#pragma once
// The one writer thread of a dispatch: it owns its own connection and commits queued
// operations in batches (every commit_interval), so SQLite writes stay off the send path.
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

namespace spdlog {
class logger;
}

namespace daybreak::engine {

/// A unit of work run inside the writer's transaction. Returns nothing; may throw. A transient
/// failure (store::is_transient_error: locked, full, I/O) rolls the whole batch back and retries
/// it; any other failure drops this operation alone (its writes are rolled back) and the rest of
/// the batch commits. An operation may run more than once: it must start from scratch each time.
using WriteOp = std::function<void(store::Db&)>;
/// Runs after the batch holding it committed (on the writer thread); never for a dropped operation.
using AfterCommit = std::function<void()>;
/// Runs on the writer thread once the operation's fate is known: `committed` is true after its
/// batch committed, false when it was dropped as a permanent failure (nothing it wrote is kept).
using OnOutcome = std::function<void(bool committed)>;

class BatchWriter {
 public:
  BatchWriter(const std::string& db_path, Millis commit_interval_ms, std::shared_ptr<spdlog::logger> log);
  ~BatchWriter();
  /// Queues an operation and an optional callback run once it is committed. `what` names the
  /// operation in the error logged if it is dropped (a string literal; may be null).
  void enqueue(WriteOp op, AfterCommit after = nullptr, const char* what = nullptr);
  /// Queues an operation whose callback also learns that it was dropped.
  void enqueue_with_outcome(WriteOp op, OnOutcome outcome, const char* what = nullptr);
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
    WriteOp op;
    OnOutcome outcome;
    const char* what = nullptr;
  };
  void loop();
  /// Commits `batch` in one transaction. On a permanent failure of an operation, runs the batch
  /// again one operation per savepoint, marking in `dropped` those that fail permanently, and
  /// commits the others. Throws on a transient failure (nothing committed).
  void commit(store::Db& db, std::vector<Pending>& batch, std::vector<char>& dropped);
  std::string db_path_;
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
