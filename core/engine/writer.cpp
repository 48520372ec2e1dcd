#include "engine/writer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <iterator>
#include <variant>

namespace daybreak::engine {

namespace {

/// An operation's own failure, told apart from the transaction's (BEGIN, COMMIT, opening).
struct WriteOpFailed {
  std::size_t index;
  bool transient;
  std::string error;
};

/// Runs batch[i] (keeping its result) and turns what it throws into WriteOpFailed.
template <typename Batch>
void run_write_op(store::DispatchLedger& ledger, Batch& batch, std::size_t i) {
  try {
    batch[i].result = ledger.apply(batch[i].op);
  } catch (const std::exception& e) {
    throw WriteOpFailed{i, store::is_transient_error(e), e.what()};
  } catch (...) {
    throw WriteOpFailed{i, false, "unknown exception"};
  }
}

}  // namespace

BatchWriter::BatchWriter(store::LedgerFactory open, Millis commit_interval_ms, std::shared_ptr<spdlog::logger> log)
    : open_(std::move(open)), interval_ms_(commit_interval_ms), log_(std::move(log)) {
  thread_ = std::thread([this] { loop(); });
}

BatchWriter::~BatchWriter() { stop(10000); }

void BatchWriter::enqueue(store::LedgerOp op, AfterCommit after) {
  OnDone done;
  if (after) {
    done = [after = std::move(after)](bool committed, store::LedgerResult&&) {
      if (committed) after();
    };
  }
  enqueue(std::move(op), std::move(done));
}

void BatchWriter::enqueue(store::LedgerOp op, OnDone done) {
  std::lock_guard lk(mu_);
  queue_.push_back({std::move(op), std::move(done), {}});
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

void BatchWriter::commit(store::DispatchLedger& ledger, std::vector<Pending>& batch, std::vector<char>& dropped) {
  dropped.assign(batch.size(), 0);
  /// Rolls back whatever is open when a step throws (a transient failure, BEGIN or COMMIT).
  struct Tx {
    store::DispatchLedger& l;
    bool done = false;
    ~Tx() {
      if (!done) l.rollback();
    }
  };
  {
    // The whole batch at once (on PostgreSQL one pipeline: one round trip, not one per operation).
    Tx tx{ledger};
    ledger.begin();
    std::vector<const store::LedgerOp*> ops;
    ops.reserve(batch.size());
    for (const auto& p : batch) ops.push_back(&p.op);
    std::vector<store::LedgerResult> results;
    auto failed = ledger.apply_batch(ops, results);
    if (!failed) {
      ledger.commit();
      tx.done = true;
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i].result = std::move(results[i]);
      return;
    }
    try {
      std::rethrow_exception(failed->error);
    } catch (const std::exception& e) {
      if (store::is_transient_error(e)) throw std::runtime_error(e.what());
    } catch (...) {
    }
    // A permanent failure: find every operation that fails on its own and commit the others.
  }
  // Each operation in its own savepoint inside one transaction, in the queued order. An
  // operation whose failure ended the whole transaction (a trigger's RAISE(ROLLBACK)) took the
  // ones before it along: start over without it. Counted and logged once committed.
  std::vector<std::pair<std::size_t, std::string>> failures;
  while (true) {
    Tx tx{ledger};
    ledger.begin();
    bool restart = false;
    for (std::size_t i = 0; i < batch.size() && !restart; ++i) {
      if (dropped[i]) continue;
      ledger.savepoint();
      try {
        run_write_op(ledger, batch, i);
        ledger.release_savepoint();
        continue;
      } catch (const WriteOpFailed& f) {
        if (f.transient) throw std::runtime_error(f.error);
        dropped[i] = 1;
        batch[i].result = {};
        failures.emplace_back(i, f.error);
      }
      if (!ledger.in_transaction()) {
        restart = true;  // the transaction is gone
      } else {
        ledger.rollback_to_savepoint();
      }
    }
    if (restart) continue;
    ledger.commit();
    tx.done = true;
    break;
  }
  dropped_.fetch_add(failures.size());
  for (const auto& [i, error] : failures) {
    log_->error("dropped a ledger write that fails on every attempt ({}, operation {} of a batch of {}): {}; the "
                "other {} committed",
                store::op_name(batch[i].op), i + 1, batch.size(), error, batch.size() - failures.size());
  }
}

void BatchWriter::take_queued(std::vector<Pending>& batch) {
  // Lease renewals first, from anywhere in the queue: a heartbeat says this process is alive,
  // and a writer behind its sends must not let the lease lapse while the process sends on
  // (another host would take the run over and send the same rows). It commutes with the other
  // writes: it touches only its runs' lease and progress and reads the pause switches.
  std::vector<Pending> beats, rest;
  for (auto& p : queue_) (std::holds_alternative<store::ledger_op::Heartbeat>(p.op) ? beats : rest).push_back(std::move(p));
  batch.insert(batch.begin(), std::make_move_iterator(beats.begin()), std::make_move_iterator(beats.end()));
  // At most kMaxBatch operations a transaction (a long backlog commits in several), so a
  // heartbeat queued now waits for one bounded batch, not for the whole backlog.
  std::size_t take = rest.size();
  if (batch.size() + take > kMaxBatch) take = batch.size() >= kMaxBatch ? 0 : kMaxBatch - batch.size();
  for (std::size_t i = 0; i < take; ++i) batch.push_back(std::move(rest[i]));
  queue_.assign(std::make_move_iterator(rest.begin() + static_cast<std::ptrdiff_t>(take)), std::make_move_iterator(rest.end()));
  in_progress_ = batch.size();
}

void BatchWriter::loop() {
  std::unique_ptr<store::DispatchLedger> ledger;
  std::vector<Pending> batch;
  std::vector<char> dropped;
  Millis retry_delay = 50;
  while (true) {
    {
      std::unique_lock lk(mu_);
      if (batch.empty()) {
        cv_.wait_for(lk, std::chrono::milliseconds(interval_ms_), [&] { return stop_ || queue_.size() >= 2000; });
        if (stop_ && queue_.empty()) break;
        take_queued(batch);
      } else {
        // A batch that failed transiently is retried as a whole; newer operations join it (order is kept).
        take_queued(batch);
      }
    }
    if (batch.empty()) continue;
    try {
      if (!ledger) ledger = open_();
      commit(*ledger, batch, dropped);
    } catch (const std::exception& e) {
      // Transient (locked, full, I/O error), or the transaction itself failed: nothing of the
      // batch committed; keep it all and try again.
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
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(dropped[i] == 0, std::move(batch[i].result));
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
