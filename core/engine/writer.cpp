#include "engine/writer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace daybreak::engine {

BatchWriter::BatchWriter(const std::string& db_path, Millis commit_interval_ms, std::shared_ptr<spdlog::logger> log)
    : db_path_(db_path), interval_ms_(commit_interval_ms), log_(std::move(log)) {
  thread_ = std::thread([this] { loop(); });
}

BatchWriter::~BatchWriter() { stop(10000); }

void BatchWriter::enqueue(WriteOp op, AfterCommit after) {
  std::lock_guard lk(mu_);
  queue_.emplace_back(std::move(op), std::move(after));
  ++enqueued_seq_;
  // Claims wait for this batch before their requests may leave: wake the writer early when
  // the batch is large instead of waiting out the interval.
  if (queue_.size() >= 2000) cv_.notify_one();
}

bool BatchWriter::flush(long timeout_ms) {
  std::unique_lock lk(mu_);
  auto target = enqueued_seq_;
  cv_.notify_one();
  return flushed_cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return committed_seq_ >= target; });
}

std::size_t BatchWriter::backlog() const {
  std::lock_guard lk(mu_);
  return queue_.size() + in_progress_;
}

std::string BatchWriter::last_error() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

void BatchWriter::stop(long timeout_ms) {
  {
    std::lock_guard lk(mu_);
    if (!thread_.joinable()) return;
  }
  flush(timeout_ms);
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void BatchWriter::loop() {
  std::unique_ptr<store::Db> db;
  std::vector<std::pair<WriteOp, AfterCommit>> batch;
  Millis retry_delay = 50;
  while (true) {
    {
      std::unique_lock lk(mu_);
      if (batch.empty()) {
        cv_.wait_for(lk, std::chrono::milliseconds(interval_ms_), [&] { return stop_ || queue_.size() >= 2000; });
        if (stop_ && queue_.empty()) break;
        batch.swap(queue_);
        in_progress_ = batch.size();
      } else {
        // A failed batch is retried as a whole; newer operations join it (order is kept).
        for (auto& op : queue_) batch.push_back(std::move(op));
        queue_.clear();
        in_progress_ = batch.size();
      }
    }
    if (batch.empty()) continue;
    try {
      if (!db) {
        store::OpenOptions o;
        o.migrate = false;
        o.busy_timeout_ms = 1000;  // short: on a lock we keep the batch and retry, sends go on
        // Updates walk the table and its indexes in send order (ids follow planned order, message
        // ids are sequential): a few hot pages at a time. 4 MiB, not more: at 1M a fuller cache
        // was the largest growth of dispatch's resident memory while sending.
        o.cache_kib = 4096;
        db = std::make_unique<store::Db>(db_path_, o);
      }
      SQLite::Transaction tx(db->raw(), SQLite::TransactionBehavior::IMMEDIATE);
      for (auto& [op, after] : batch) op(*db);
      tx.commit();
    } catch (const std::exception& e) {
      {
        std::lock_guard lk(mu_);
        last_error_ = e.what();
      }
      if (!failing_.exchange(true)) {
        log_->error("database writes failing, {} operations held for retry: {}", batch.size(), e.what());
      }
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(retry_delay), [&] { return stop_; });
      retry_delay = std::min<Millis>(retry_delay * 2, 1000);
      if (stop_ && retry_delay >= 1000) {
        // Still failing at shutdown: give up on this batch, the rows stay resumable.
        log_->error("dropping {} uncommitted operations at shutdown; the run resumes from the ledger", batch.size());
        break;
      }
      continue;
    }
    if (failing_.exchange(false)) log_->info("database writes recovered");
    retry_delay = 50;
    for (auto& [op, after] : batch) {
      if (after) after();
    }
    {
      std::lock_guard lk(mu_);
      committed_seq_ += batch.size();
      in_progress_ = 0;
    }
    flushed_cv_.notify_all();
    batch.clear();
  }
  std::lock_guard lk(mu_);
  committed_seq_ = enqueued_seq_;
  flushed_cv_.notify_all();
}

}  // namespace daybreak::engine
