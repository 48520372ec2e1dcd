#pragma once
// The provider model behind daybreak-sim: what a WhatsApp Cloud API
// phone number answers to a send, and the counts the tests use to prove "accepted exactly once".
// No sockets here: the HTTP layer (app.cpp, http_server.cpp) hands in the request and holds the
// answer back for the returned delay on a timer,
// so the rules can be read (and driven) without a network.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace daybreak::sim {

/// The simulator uses the monotonic clock: it only measures intervals (bucket refill, pair
/// spacing), never dates, so a stepped wall clock cannot refill or drain a bucket.
using SteadyClock = std::chrono::steady_clock;

/// Knobs fixed at start (flags); some can be changed later through POST /control.
struct Options {
  double mps = 80;                 ///< per phone_number_id messages/second, in demo time (Meta's default is 80)
  double time_scale = 1;           ///< demo clock speed: real rate = mps*scale, real latency = latency/scale
  double latency_median_ms = 40;   ///< median of the log-normal answer latency, demo ms
  double latency_p99_ms = 150;     ///< 99th percentile of the same, demo ms
  double transient_rate = 0;       ///< probability of 131000 "Something went wrong" (HTTP 500) per attempt
  double permanent_rate = 0;       ///< share of recipients that get 131026 "Message undeliverable"
  double pair_interval_ms = 0;     ///< min demo ms between accepted sends to one recipient (131056); 0 = off
  std::uint64_t seed = 1;          ///< makes failure draws reproducible
  std::string token;               ///< if set, the only accepted bearer token; else any non-empty one
  std::string template_error_match;  ///< template sends whose text parameters contain this get 132000
  /// Approved templates (--template): when any is given, a template send must name one of them
  /// in its language code, with its header type and its number of body parameters.
  struct Template {
    std::string name;
    std::string code;    ///< language code
    std::string header;  ///< none, text, image, document or video
    int body_params = 3;
  };
  std::vector<Template> templates;
  /// --fail-number: from `from_demo_ms` after the simulator started (demo time, i.e. real time
  /// × time_scale), every send through `phone_number_id` is answered with error `code`.
  struct FailNumber {
    std::string phone_number_id;
    int code = 0;
    double from_demo_ms = 0;
  };
  std::vector<FailNumber> fail_numbers;
  /// Share of recipients whose accepted template sends carry message_status
  /// "held_for_quality_assessment" instead of "accepted" (reproducible per recipient).
  double held_for_quality_rate = 0;
};

/// What the HTTP layer sends back: status, JSON body and how long to wait before answering.
struct Reply {
  int http_status = 200;
  std::string body;
  std::chrono::nanoseconds delay{0};
};

/// A message the simulator accepted: what its status callbacks (callbacks.hpp) are about.
struct AcceptedMessage {
  std::string phone_number_id;
  std::string to;
  std::string wamid;
  std::optional<std::string> callback_data;  ///< biz_opaque_callback_data, when the send carried one
};

/// One WhatsApp-compatible provider: per-number token buckets, failure injection, outages and
/// the per-callback-data acceptance counts. Thread-safe; one mutex guards all mutable state
/// (a map update per request is far below the 5,000 req/s the bench needs).
class Simulator {
 public:
  explicit Simulator(Options options);

  /// Handles `POST /{version}/{phone_number_id}/messages`. `authorization` is the raw header.
  /// The decision (and counting) happens at arrival, the delay is served afterwards: a client
  /// that times out during the delay has still had its message accepted, as with the real API.
  Reply send(std::string_view phone_number_id, std::string_view authorization, std::string_view body,
             SteadyClock::time_point now);

  /// Called (outside the lock) for every accepted message; set once before serving. The status
  /// callback poster queues its callbacks from here, so a send never waits on a callback.
  void set_on_accept(std::function<void(const AcceptedMessage&)> fn) { on_accept_ = std::move(fn); }

  /// The scenario clock (DAYBREAK_CLOCK, epoch ms) that `/control`'s down_from_ms/down_until_ms
  /// windows are read against; set once before serving. Without it such windows are refused.
  void set_scenario_clock(std::function<std::int64_t()> now_ms) { scenario_now_ = std::move(now_ms); }

  /// `GET /stats` body; `summary` omits the per-callback-data map (1M-message runs).
  [[nodiscard]] std::string stats_json(bool summary) const;

  /// `POST /reset`: back to the state right after start (counts, buckets, controls, options
  /// changed through /control).
  void reset(SteadyClock::time_point now);

  /// `POST /control`: outage/slowdown/rate switches. Returns 200 or a Graph-style 400 reply.
  Reply control(std::string_view body, SteadyClock::time_point now);

 private:
  /// Per phone_number_id state: its token bucket, scripted faults and counts.
  struct Number {
    double tokens = 0;
    SteadyClock::time_point refilled{};
    std::optional<double> mps;   ///< override of Options::mps set through /control
    bool down = false;           ///< scripted outage: 131000 with HTTP 503 to everything
    std::optional<std::pair<std::int64_t, std::int64_t>> down_window;  ///< [from, until) scenario ms: down in between
    double slow_ms = 0;          ///< extra demo latency on every answer
    std::uint64_t requests = 0;
    std::uint64_t accepted = 0;
  };
  /// Per message key (callback data, else recipient): attempts drive the reproducible
  /// transient draw, `accepted` is the exactly-once proof.
  struct KeyCount {
    std::uint32_t attempts = 0;
    std::uint32_t accepted = 0;
  };

  Number& number_locked(const std::string& id, SteadyClock::time_point now);
  [[nodiscard]] double capacity(const Number& n) const;
  [[nodiscard]] std::chrono::nanoseconds sample_delay(double extra_ms) const;
  [[nodiscard]] std::string next_wamid();
  [[nodiscard]] std::string next_trace_id();
  [[nodiscard]] Reply error_reply(int http_status, int code, std::string_view message,
                                  std::string_view details, double extra_ms);

  std::function<void(const AcceptedMessage&)> on_accept_;  ///< status callbacks hook; may be empty
  std::function<std::int64_t()> scenario_now_;              ///< scenario time for down windows; may be empty
  SteadyClock::time_point started_ = SteadyClock::now();   ///< --fail-number times count from here
  const Options initial_;      ///< flags as given; /reset returns to them
  Options options_;            ///< current options (rates can be changed through /control)
  double mu_ = 0;              ///< log-normal parameters fitted to median and p99
  double sigma_ = 0;
  std::uint64_t nonce_ = 0;    ///< per-process prefix of message ids, so ids never repeat across restarts

  std::atomic<std::uint64_t> sequence_{0};  ///< feeds message and trace ids; lock-free

  mutable std::mutex lock_;  ///< guards everything below and options_
  std::uint64_t requests_ = 0;
  std::uint64_t accepted_ = 0;
  std::map<std::string, std::uint64_t> template_accepted_;  ///< "name/code" → sends that matched an approved template
  std::uint64_t duplicates_ = 0;      ///< sum over callback data of (accepted - 1)
  std::uint64_t duplicate_keys_ = 0;  ///< callback data values accepted more than once
  std::map<int, std::uint64_t> rejected_;
  std::unordered_map<std::string, Number> numbers_;
  std::unordered_map<std::string, KeyCount> keys_;  ///< 'c'+callback data or 't'+recipient
  std::unordered_map<std::string, SteadyClock::time_point> pair_last_;  ///< number+'\0'+recipient
};

/// Fits a log-normal to a median and a 99th percentile: returns {mu, sigma} of ln(X).
std::pair<double, double> fit_lognormal(double median, double p99);

/// A reproducible number in [0, 1) from the seed and some strings: the same inputs give the same
/// draw regardless of which thread or in what order requests arrive.
double uniform_draw(std::uint64_t seed, std::string_view tag, std::string_view a, std::uint64_t b);

}  // namespace daybreak::sim
