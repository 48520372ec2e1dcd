#include "callbacks.hpp"

#include <algorithm>
#include <random>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "channels/signature.hpp"

namespace daybreak::sim {
namespace {

using ordered_json = nlohmann::ordered_json;
using SteadyTime = std::chrono::steady_clock::time_point;

/// The errors a failed status carries, as Meta's WhatsApp Cloud API error codes reference
/// (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/) words them:
/// 131026 "Message undeliverable", 131049 the per-user marketing message limit.
struct FailError {
  const char* title;
  const char* details;
};
FailError fail_error(int code) {
  if (code == 131049) {
    return {"This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."};
  }
  return {"Message undeliverable", "Message failed to send because of an unknown error."};
}

/// Meta retries a webhook that was not answered 200; the simulator gives up after this many tries
/// (a receiver that is down for longer is a test failure, not something to hide).
constexpr int kMaxAttempts = 6;

int status_index(const std::string& s) {
  if (s == "sent") return 0;
  if (s == "delivered") return 1;
  if (s == "read") return 2;
  return 3;
}

}  // namespace

CallbackPoster::CallbackPoster(CallbackOptions options, std::unique_ptr<Clock> clock)
    : options_(std::move(options)), clock_(std::move(clock)) {
  // "http://127.0.0.1:8089/webhook" → "http://127.0.0.1:8089" + "/webhook".
  const auto scheme_end = options_.url.find("://");
  const auto path_start = options_.url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  scheme_host_port_ = options_.url.substr(0, path_start);
  path_ = path_start == std::string::npos ? "/" : options_.url.substr(path_start);
  thread_ = std::thread([this] { run(); });
}

CallbackPoster::~CallbackPoster() { stop(); }

std::string CallbackPoster::status_body(const std::string& waba_id, const AcceptedMessage& m, const std::string& status,
                                        std::int64_t unix_seconds, int fail_code) {
  std::string recipient;
  for (char c : m.to) {
    if (c >= '0' && c <= '9') recipient.push_back(c);  // recipient_id is the WhatsApp id: digits only
  }
  ordered_json st = {{"id", m.wamid}, {"status", status}, {"timestamp", std::to_string(unix_seconds)},
                     {"recipient_id", recipient}};
  if (m.callback_data) st["biz_opaque_callback_data"] = *m.callback_data;
  if (status == "sent") {
    st["conversation"] = {{"id", "CONVERSATION_" + recipient}, {"origin", {{"type", "utility"}}}};
    st["pricing"] = {{"billable", true}, {"pricing_model", "PMP"}, {"category", "utility"}};
  }
  if (status == "failed") {
    const FailError e = fail_error(fail_code);
    st["errors"] = ordered_json::array({{{"code", fail_code},
                                         {"title", e.title},
                                         {"message", e.title},
                                         {"error_data", {{"details", e.details}}},
                                         {"href", "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}});
  }
  ordered_json body = {
      {"object", "whatsapp_business_account"},
      {"entry",
       ordered_json::array({{{"id", waba_id},
                             {"changes",
                              ordered_json::array({{{"value",
                                                     {{"messaging_product", "whatsapp"},
                                                      {"metadata",
                                                       {{"display_phone_number", "15550000000"},
                                                        {"phone_number_id", m.phone_number_id}}},
                                                      {"statuses", ordered_json::array({st})}}},
                                                    {"field", "messages"}}})}}})}};
  return body.dump();
}

void CallbackPoster::on_accept(const AcceptedMessage& m) {
  // Which statuses this message gets is a reproducible draw per message key, like the
  // simulator's failures: the same run gives the same reads and failures.
  const std::string key = m.callback_data ? "c" + *m.callback_data : "t" + m.to;
  std::vector<std::string> statuses = {"sent"};
  if (options_.fail_rate > 0 && uniform_draw(options_.seed, "cb-fail", key, 0) < options_.fail_rate) {
    statuses.emplace_back("failed");
  } else {
    statuses.emplace_back("delivered");
    if (uniform_draw(options_.seed, "cb-read", key, 0) < options_.read_rate) statuses.emplace_back("read");
  }
  const Millis base = clock_->now();
  const auto real_step = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double, std::milli>(options_.delay_ms / options_.time_scale));
  const SteadyTime now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (stopping_) return;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const auto demo_at = base + static_cast<Millis>(options_.delay_ms * static_cast<double>(i + 1));
    std::string body = status_body(options_.waba_id, m, statuses[i], demo_at / 1000, options_.fail_code);
    ++by_status_[status_index(statuses[i])];
    for (int d = 0; d < options_.duplicate; ++d) {
      queue_.push(Item{now + real_step * static_cast<int>(i + 1), seq_++, body, 0});
      ++queued_;
    }
  }
  cv_.notify_one();
}

void CallbackPoster::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CallbackPoster::reset() {
  std::lock_guard lock(mu_);
  queued_ = posted_ = ok_ = rejected_ = errors_ = retries_ = reordered_ = dropped_ = 0;
  std::fill(std::begin(by_status_), std::end(by_status_), 0);
}

std::string CallbackPoster::stats_json() const {
  std::lock_guard lock(mu_);
  nlohmann::json j = {{"url", options_.url},
                      {"queued", queued_},
                      {"pending", queue_.size()},
                      {"posted", posted_},
                      {"ok", ok_},
                      {"rejected", rejected_},
                      {"errors", errors_},
                      {"retries", retries_},
                      {"reordered", reordered_},
                      {"dropped", dropped_},
                      {"by_status",
                       {{"sent", by_status_[0]}, {"delivered", by_status_[1]}, {"read", by_status_[2]}, {"failed", by_status_[3]}}}};
  return j.dump();
}

bool CallbackPoster::post(const Item& item) {
  thread_local std::unique_ptr<httplib::Client> client;
  if (!client) {
    client = std::make_unique<httplib::Client>(scheme_host_port_);
    client->set_connection_timeout(2, 0);
    client->set_read_timeout(10, 0);
    client->set_keep_alive(true);
    // Headers and body leave in two writes: without TCP_NODELAY the body waits for the
    // receiver's delayed ACK of the headers (about 40 ms a request on Linux), which caps one
    // connection at ~23 callbacks a second. Meta's senders are not paced like that.
    client->set_tcp_nodelay(true);
  }
  httplib::Headers headers;
  if (!options_.app_secret.empty()) {
    headers.emplace("X-Hub-Signature-256", "sha256=" + channels::hmac_sha256_hex(options_.app_secret, item.body));
  }
  auto res = client->Post(path_, headers, item.body, "application/json");
  std::lock_guard lock(mu_);
  ++posted_;
  if (res && res->status >= 200 && res->status < 300) {
    ++ok_;
    return true;
  }
  if (res && res->status >= 400 && res->status < 500) {
    ++rejected_;  // the receiver refused it (e.g. 401: wrong secret); retrying sends the same bytes
    return true;
  }
  ++errors_;
  client.reset();  // a broken connection: reconnect next time
  return false;
}

void CallbackPoster::run() {
  std::mt19937_64 rng(options_.seed ^ 0x5eedcafeULL);
  const auto hold = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double, std::milli>(std::max(20.0, 3 * options_.delay_ms / options_.time_scale)));
  std::unique_lock lock(mu_);
  while (true) {
    if (stopping_) break;
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    auto first_due = queue_.top().due;
    if (first_due > now) {
      cv_.wait_until(lock, first_due);
      continue;
    }
    // Reordering: hold the earliest due callback up to `hold` so the ones due just after it
    // (the same message's next statuses) join its group, then post the group shuffled.
    std::size_t want = options_.reorder_window > 1 ? static_cast<std::size_t>(options_.reorder_window) : 1;
    if (want > 1 && now < first_due + hold) {
      std::size_t due_count = 0;
      // Count items due by first_due + hold: a priority queue cannot be walked, so copy cheaply.
      auto copy = queue_;
      while (!copy.empty() && copy.top().due <= first_due + hold && due_count < want) {
        ++due_count;
        copy.pop();
      }
      if (due_count < want) {
        cv_.wait_until(lock, first_due + hold);
        if (!stopping_ && std::chrono::steady_clock::now() < first_due + hold) continue;
      }
    }
    std::vector<Item> batch;
    const auto cutoff = want > 1 ? first_due + hold : now;
    while (!queue_.empty() && batch.size() < want && queue_.top().due <= std::max(cutoff, now)) {
      batch.push_back(queue_.top());
      queue_.pop();
    }
    if (batch.size() > 1) std::shuffle(batch.begin(), batch.end(), rng);
    std::uint64_t max_seq = 0;
    for (const auto& it : batch) {
      if (it.seq < max_seq) ++reordered_;
      max_seq = std::max(max_seq, it.seq);
    }
    lock.unlock();
    std::vector<Item> retry;
    for (auto& it : batch) {
      if (!post(it)) retry.push_back(it);
    }
    lock.lock();
    for (auto& it : retry) {
      if (++it.attempts >= kMaxAttempts) {
        ++dropped_;
        continue;
      }
      ++retries_;
      it.due = std::chrono::steady_clock::now() + std::chrono::milliseconds(100) * (1 << it.attempts);
      queue_.push(std::move(it));
    }
  }
  dropped_ += queue_.size();
}

}  // namespace daybreak::sim
