#pragma once
// The one writer thread of a dispatch: it owns its own connection and commits queued
// operations in batches (every commit_interval), so SQLite writes stay off the send path.
// When the database is locked or full, operations stay queued and are retried: nothing is lost.
#include <atomic>
#include <condition_variable>
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

/// A unit of work run inside the writer's transaction. Returns nothing; may throw SQLite errors
/// (the whole batch is then rolled back and retried).
using WriteOp = std::function<void(store::Db&)>;
/// Runs after the batch holding it committed (on the writer thread).
using AfterCommit = std::function<void()>;

class BatchWriter {
 public:
  BatchWriter(const std::string& db_path, Millis commit_interval_ms, std::shared_ptr<spdlog::logger> log);
  ~BatchWriter();
  /// Queues an operation and an optional callback run once it is committed.
  void enqueue(WriteOp op, AfterCommit after = nullptr);
  /// Blocks until everything queued so far is committed, or `timeout_ms` of real time passed.
  bool flush(long timeout_ms);
  /// Operations waiting (not yet committed).
  [[nodiscard]] std::size_t backlog() const;
  /// True when the last commit attempt failed (locked, full, I/O error).
  [[nodiscard]] bool failing() const { return failing_.load(); }
  [[nodiscard]] std::string last_error() const;
  /// Stops after committing what is queued (bounded by `timeout_ms`).
  void stop(long timeout_ms);

 private:
  void loop();
  std::string db_path_;
  Millis interval_ms_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::vector<std::pair<WriteOp, AfterCommit>> queue_;
  std::size_t in_progress_ = 0;
  std::uint64_t enqueued_seq_ = 0;
  std::uint64_t committed_seq_ = 0;
  std::atomic<bool> failing_{false};
  std::string last_error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace daybreak::engine
