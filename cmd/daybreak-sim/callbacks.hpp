#pragma once
// daybreak-sim's status callbacks: for every accepted message, the
// webhooks Meta would POST to the app's callback URL — `sent`, then `delivered`, then (for a
// share of recipients) `read`, or `sent` then `failed` with errors[] — each signed with
// X-Hub-Signature-256 over the exact body, and optionally duplicated, delayed and reordered.
// A background thread posts them, so /messages never waits on a callback.
//
// Payloads follow Meta's "Status messages webhook reference"
// (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/)
// and the signature its "Getting started with webhooks" page
// (https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "domain/clock.hpp"
#include "simulator.hpp"

namespace daybreak::sim {

/// Flags of the callback poster.
struct CallbackOptions {
  std::string url;               ///< where to POST; empty = no callbacks
  std::string app_secret;        ///< signs X-Hub-Signature-256; empty = send unsigned (to test the 401)
  int duplicate = 1;             ///< every callback is POSTed this many times (Meta retries; at-least-once)
  double delay_ms = 200;         ///< demo ms from acceptance to `sent`, and between successive statuses
  int reorder_window = 0;        ///< >1: callbacks due together are posted shuffled in groups of up to N
  double read_rate = 0.6;        ///< share of delivered messages that are also read
  double fail_rate = 0;          ///< share of accepted messages that end `failed` instead of delivered
  int fail_code = 131026;        ///< the error of those failed statuses: 131026 (undeliverable) or 131049 (marketing limit)
  double time_scale = 1;         ///< demo clock speed (the simulator's --time-scale)
  std::uint64_t seed = 1;        ///< reproducible read/fail draws and shuffles
  std::string waba_id = "102290129340398";  ///< entry[].id, the WhatsApp Business Account id
};

/// Queues, signs and posts status callbacks from one thread.
class CallbackPoster {
 public:
  CallbackPoster(CallbackOptions options, std::unique_ptr<Clock> clock);
  ~CallbackPoster();
  CallbackPoster(const CallbackPoster&) = delete;
  CallbackPoster& operator=(const CallbackPoster&) = delete;

  /// Queues the callbacks of one accepted message (Simulator's on_accept hook). Never blocks on I/O.
  void on_accept(const AcceptedMessage& m);
  /// Stops the thread; callbacks not yet due are dropped (and counted).
  void stop();
  /// `GET /stats/callbacks` body.
  [[nodiscard]] std::string stats_json() const;
  /// Forgets counts (POST /reset).
  void reset();

  /// The webhook body for one status (exposed for the tests' reference payloads).
  static std::string status_body(const std::string& waba_id, const AcceptedMessage& m, const std::string& status,
                                 std::int64_t unix_seconds, int fail_code = 131026);

 private:
  struct Item {
    std::chrono::steady_clock::time_point due;
    std::uint64_t seq = 0;   ///< queue order, for the reorder count
    std::string body;
    int attempts = 0;
    bool operator>(const Item& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };
  void run();
  /// POSTs one body; true when it is finished with (2xx, or a 4xx that retrying cannot fix).
  bool post(const Item& item);

  const CallbackOptions options_;
  std::unique_ptr<Clock> clock_;
  std::string scheme_host_port_;
  std::string path_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t seq_ = 0;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
  // counts
  std::uint64_t queued_ = 0, posted_ = 0, ok_ = 0, rejected_ = 0, errors_ = 0, retries_ = 0, reordered_ = 0,
                dropped_ = 0, by_status_[4] = {0, 0, 0, 0};
  std::thread thread_;
};

}  // namespace daybreak::sim
