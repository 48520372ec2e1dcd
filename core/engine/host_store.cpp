#include "engine/host_store.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace daybreak::engine {

HostStore::HostStore(std::string path, std::shared_ptr<spdlog::logger> log)
    : path_(std::move(path)), log_(std::move(log)) {
  thread_ = std::thread([this] { loop(); });
}

HostStore::~HostStore() { stop(); }

void HostStore::post(Job job) {
  {
    std::lock_guard lk(mu_);
    if (stop_) return;
    pending_ = std::move(job);
  }
  cv_.notify_one();
}

void HostStore::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t HostStore::ran() const {
  std::lock_guard lk(mu_);
  return ran_;
}

std::uint64_t HostStore::failed() const {
  std::lock_guard lk(mu_);
  return failed_;
}

void HostStore::loop() {
  std::unique_ptr<store::Db> db;
  bool failing = false;  // log a failing file once per streak, not every second
  for (;;) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || pending_; });
      if (!pending_) return;  // stopping, nothing left
      job = std::move(pending_);
      pending_ = nullptr;
    }
    bool ok = true;
    try {
      // Created and migrated as every SQLite tool opens it; a lock is waited for 1 s at most
      // (the next tick tries again), and the alert tables need a small cache.
      if (!db) db = std::make_unique<store::Db>(path_, store::OpenOptions{false, true, 1000, 2048});
      job(*db);
      if (failing && log_) log_->info("host store {}: monitoring works again", path_);
      failing = false;
    } catch (const std::exception& e) {
      ok = false;
      if (!failing && log_) log_->warn("host store {}: {} (monitoring skipped; the ledger is not affected)", path_, e.what());
      failing = true;
      db.reset();  // reopen next time: the failure may have been the connection
    }
    std::lock_guard lk(mu_);
    ++ran_;
    if (!ok) ++failed_;
  }
}

}  // namespace daybreak::engine
