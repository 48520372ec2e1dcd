#pragma once
// This host's SQLite file ([database] path) for a dispatch whose ledger is on another database
// (PostgreSQL): the host's own bookkeeping that ledger_op::Local carries on SQLite (alert rules,
// their outbox, the metrics textfile) runs here instead, on a thread of its own with its own
// connection, so a slow or locked file never holds the ledger's batches and a failure here
// never fails one. docs/architecture.md "Monitoring on the PostgreSQL ledger".
//
// Jobs are monitoring ticks: each one supersedes the one before it, so a tick not yet started
// when a newer one arrives is dropped (the newer snapshot carries everything it would have
// evaluated). The file is opened, created and migrated as the SQLite tools open it (store::Db)
// on the first job, and reopened after a failure.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/db.hpp"

namespace spdlog {
class logger;
}

namespace daybreak::engine {

class HostStore {
 public:
  using Job = std::function<void(store::Db&)>;
  /// Starts the thread; nothing is opened until the first job.
  HostStore(std::string path, std::shared_ptr<spdlog::logger> log);
  ~HostStore();
  HostStore(const HostStore&) = delete;
  HostStore& operator=(const HostStore&) = delete;
  /// Queues `job`, replacing a queued one not yet started. Never blocks on the file.
  void post(Job job);
  /// Runs the queued job (if any), then stops the thread. A job already running finishes first
  /// (the connection's busy timeout, 1 s, bounds a locked file).
  void stop();
  /// Jobs run so far, and jobs that failed (opening the file, or the job threw).
  [[nodiscard]] std::uint64_t ran() const;
  [[nodiscard]] std::uint64_t failed() const;

 private:
  void loop();
  std::string path_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Job pending_;
  bool stop_ = false;
  std::uint64_t ran_ = 0;
  std::uint64_t failed_ = 0;
  std::thread thread_;
};

}  // namespace daybreak::engine
