#pragma once
// Runs engine::Dispatcher to the end in a unit test: on a ManualClock that a ticker thread moves
// 20 ms (wall and steady) per real millisecond, bounded to 30,000 ticks (10 simulated minutes):
// a dispatch that stalls ends the ticks and fails its test instead of hanging. Dispatch waits
// on the clock for its writer's commits and heartbeats, so simulated time must keep moving.
// Its log goes nowhere unless the environment variable `log_env` is set (then to stderr).
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "engine/dispatcher.hpp"
#include "store/dispatch_ledger.hpp"

namespace daybreak::test_support {

/// The Cloud API's answer accepting message `n` (wamid.<n>), as the fake transports give it.
inline channels::Response whatsapp_accepted(long n) {
  channels::Response r;
  r.transport_ok = true;
  r.status = 200;
  r.body = R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.)" + std::to_string(n) + R"("}]})";
  return r;
}

/// A ledger that hands every call to `inner`: a test wraps the real ledger in a subclass and
/// overrides the calls it watches or breaks (apply and apply_batch, usually).
class ForwardingLedger : public store::DispatchLedger {
 public:
  explicit ForwardingLedger(std::unique_ptr<store::DispatchLedger> inner) : inner_(std::move(inner)) {}
  const std::string& owner() const override { return inner_->owner(); }
  std::optional<store::Run> load_run(std::int64_t id) override { return inner_->load_run(id); }
  store::CrashReconcile reconcile_crashed(std::int64_t id, Millis now) override { return inner_->reconcile_crashed(id, now); }
  std::vector<store::ContentRow> load_emergency_content() override { return inner_->load_emergency_content(); }
  std::vector<store::ContentRow> load_run_content(std::int64_t id) override { return inner_->load_run_content(id); }
  void for_each_delivery(std::int64_t id, const std::function<void(store::DeliveryRow&&)>& fn) override {
    inner_->for_each_delivery(id, fn);
  }
  std::int64_t change_mark() override { return inner_->change_mark(); }
  std::unordered_map<std::string, Millis> load_whatsapp_holds(Millis now) override { return inner_->load_whatsapp_holds(now); }
  void begin() override { inner_->begin(); }
  void commit() override { inner_->commit(); }
  void rollback() noexcept override { inner_->rollback(); }
  bool in_transaction() override { return inner_->in_transaction(); }
  void savepoint() override { inner_->savepoint(); }
  void release_savepoint() override { inner_->release_savepoint(); }
  void rollback_to_savepoint() override { inner_->rollback_to_savepoint(); }
  store::LedgerResult apply(const store::LedgerOp& op) override { return inner_->apply(op); }
  std::optional<store::BatchFailure> apply_batch(const std::vector<const store::LedgerOp*>& ops,
                                                 std::vector<store::LedgerResult>& results) override {
    return inner_->apply_batch(ops, results);
  }

 protected:
  store::DispatchLedger& inner() { return *inner_; }

 private:
  std::unique_ptr<store::DispatchLedger> inner_;
};

/// `ledger` opens the dispatch's ledger connections; by default the real SQLite ledger at
/// cfg.database_path for `owner`. With `host`, monitoring runs on this host's file
/// (Dispatcher::monitor_on_host), as dispatch does on the PostgreSQL ledger. While `hold`
/// returns true the clock stands still (those real milliseconds count against the bound too).
/// `setup`, when given, is called on the dispatcher before it runs (store_reports_in_ledger…).
inline engine::DispatchSummary run_dispatch_ticking(const Config& cfg, ManualClock& clock, channels::Transport& transport,
                                                    const std::string& owner, const std::vector<std::int64_t>& run_ids,
                                                    const char* log_env, store::LedgerFactory ledger = nullptr,
                                                    engine::StopToken stop = {}, Millis tick_ms = 20,
                                                    const engine::HostMonitoring* host = nullptr,
                                                    std::function<bool()> hold = nullptr,
                                                    const std::function<void(engine::Dispatcher&)>& setup = nullptr) {
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    for (int i = 0; i < 30'000 && !done; ++i) {
      if (!hold || !hold()) clock.advance(tick_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  spdlog::sink_ptr sink = std::getenv(log_env) ? spdlog::sink_ptr(std::make_shared<spdlog::sinks::stderr_color_sink_mt>())
                                               : spdlog::sink_ptr(std::make_shared<spdlog::sinks::null_sink_mt>());
  auto log = std::make_shared<spdlog::logger>(owner, sink);
  struct Join {
    std::atomic<bool>& done;
    std::thread& t;
    ~Join() {
      done = true;
      t.join();
    }
  } join{done, ticker};
  if (!ledger) ledger = store::sqlite_ledger_factory(cfg.database_path, owner);
  engine::Dispatcher d(cfg, clock, transport, std::move(ledger), stop, log);
  if (host) d.monitor_on_host(*host);
  if (setup) setup(d);
  return d.run(run_ids);
}

}  // namespace daybreak::test_support
