#include "channels/smtp_lane.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channels/smtp_reply.hpp"

namespace daybreak::channels {
// Named, not anonymous: SmtpLanes::Impl holds Lanes (GCC's -Wsubobject-linkage).
namespace smtp_lane_detail {

/// What an email a stopped lane never sent is answered with (never_sent_response).
constexpr const char* kStoppedUnsent = "transport stopped before the message was sent";

struct Job {
  Request req;
  Transport::Done done;
};

/// One session's buffers, alive for one curl_easy_perform.
struct Session {
  const Request* req = nullptr;
  std::size_t upload_pos = 0;
  SmtpReplyCapture replies;
  const std::atomic<bool>* abort = nullptr;
};

std::size_t lane_read(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<Session*>(user);
  const std::string& body = s->req->body;
  std::size_t k = std::min(body.size() - s->upload_pos, size * n);
  std::memcpy(buf, body.data() + s->upload_pos, k);
  s->upload_pos += k;
  return k;
}

/// libcurl hands SMTP server replies to the debug callback as CURLINFO_HEADER_IN.
int lane_debug(CURL* /*easy*/, curl_infotype type, char* data, std::size_t size, void* user) {
  if (type == CURLINFO_HEADER_IN) static_cast<Session*>(user)->replies.feed(std::string_view(data, size));
  return 0;
}

/// Called during the whole session, DONE phase included: non-zero aborts it (shutdown).
int lane_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Session*>(user)->abort->load() ? 1 : 0;
}

class Lane {
 public:
  explicit Lane(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { run(); });
  }
  ~Lane() { stop(); }

  void submit(Job j) {
    {
      std::lock_guard lk(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(j));
        cv_.notify_one();
        return;
      }
    }
    fail_unsent(j);
  }

  void stop() {
    std::deque<Job> unsent;
    {
      std::lock_guard lk(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
      unsent.swap(queue_);
      abort_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      cv_.notify_all();
    }
    for (auto& j : unsent) fail_unsent(j);
    // Sessions in progress get 15 s, then the progress callback aborts them.
    while (true) {
      {
        std::unique_lock lk(mu_);
        if (busy_ == 0) break;
        if (cv_.wait_until(lk, abort_at_, [&] { return busy_ == 0; })) break;
      }
      abort_ = true;
      break;
    }
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  static void fail_unsent(Job& j) { j.done(never_sent_response(std::move(j.req.message_id), kStoppedUnsent)); }

  void run() {
    CURL* easy = nullptr;
    while (true) {
      Job j;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping
        j = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
      }
      if (easy == nullptr) easy = curl_easy_init();
      bool keep = false;
      Response r = easy ? perform(easy, j.req, keep) : init_failed(j.req);
      if (!keep && easy != nullptr) {
        // Failed or timed out mid-session: the server may still be in DATA, or answering a
        // command we gave up on; the next MAIL FROM on that connection would read the wrong
        // reply. The handle goes, and its connection with it.
        curl_easy_cleanup(easy);
        easy = nullptr;
      }
      j.done(std::move(r));
      {
        std::lock_guard lk(mu_);
        --busy_;
      }
      cv_.notify_all();
    }
    if (easy != nullptr) curl_easy_cleanup(easy);
  }

  static Response init_failed(Request& req) {
    Response r;
    r.transport_code = static_cast<int>(CURLE_FAILED_INIT);
    r.transport_error = "curl_easy_init failed";
    r.message_id = std::move(req.message_id);
    return r;
  }

  /// One SMTP transaction on `easy` (its connection reused when the last one ended cleanly).
  /// `keep` is set when the session ended in a state the next transaction can start from.
  Response perform(CURL* e, Request& req, bool& keep) {
    Session s;
    s.req = &req;
    s.abort = &abort_;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_slist* rcpts = nullptr;
    for (const auto& rc : req.rcpt) rcpts = curl_slist_append(rcpts, rc.c_str());
    curl_easy_reset(e);  // options only: the connection cache stays
    curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req.timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, req.mail_from.c_str());
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, lane_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &s);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);  // the debug callback gets the server's replies
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, lane_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, &s);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, lane_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, &s);
    // smtps:// is TLS from the first byte whatever this says. On smtp:// a configured STARTTLS
    // is required, never "try": a server that stops offering it must not get the password in
    // the clear. Without it (a local relay) no TLS is attempted.
    curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(req.starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    const std::string ca = resolve_ca_file(req.ca_file);
    if (!ca.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca.c_str());
    if (!req.username.empty()) {
      curl_easy_setopt(e, CURLOPT_USERNAME, req.username.c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, req.password.c_str());
    }
    const auto started = std::chrono::steady_clock::now();
    const CURLcode code = curl_easy_perform(e);

    Response resp;
    resp.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    resp.message_id = std::move(req.message_id);
    resp.reply = s.replies.explaining(status);
    if (code == CURLE_OK) {
      resp.transport_ok = true;
      keep = true;
    } else {
      resp.transport_code = static_cast<int>(code);
      resp.transport_error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(code));
      // The server can only have taken the message once all of it was handed over (the
      // failure came while waiting for the reply to the final "."); before that it has nothing.
      resp.request_may_have_arrived = !req.body.empty() && s.upload_pos >= req.body.size();
      if (status >= 400) {
        // An SMTP rejection (4xx/5xx reply to the greeting, AUTH, MAIL, RCPT, DATA or the final
        // ".") is a complete answer, not a transport failure: status holds the reply code,
        // transport_error curl's account of which command it answered, reply the server's text.
        resp.transport_ok = true;
        resp.request_may_have_arrived = false;
      }
      keep = false;
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nullptr);  // the buffer dies with this frame
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, nullptr);
    curl_slist_free_all(rcpts);
    return resp;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  int busy_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point abort_at_{};
  std::atomic<bool> abort_{false};
  std::vector<std::thread> threads_;
};

}  // namespace smtp_lane_detail

using smtp_lane_detail::Job;
using smtp_lane_detail::Lane;

struct SmtpLanes::Impl {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Lane>> lanes;
  bool stopped = false;
};

SmtpLanes::SmtpLanes() : impl_(std::make_unique<Impl>()) {}
SmtpLanes::~SmtpLanes() { shutdown(); }

void SmtpLanes::submit(Request req, Transport::Done done) {
  Lane* lane = nullptr;
  {
    std::lock_guard lk(impl_->mu);
    if (!impl_->stopped) {
      auto& slot = impl_->lanes[req.lane];
      if (!slot) slot = std::make_unique<Lane>(req.concurrency);
      lane = slot.get();
    }
  }
  if (lane == nullptr) {  // after shutdown no lane starts again: aborted, never sent (outside the lock)
    done(never_sent_response(std::move(req.message_id), smtp_lane_detail::kStoppedUnsent));
    return;
  }
  lane->submit(Job{std::move(req), std::move(done)});
}

void SmtpLanes::shutdown() {
  std::vector<Lane*> all;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopped = true;
    for (auto& [name, lane] : impl_->lanes) all.push_back(lane.get());
  }
  // Stopped together: each gets the same 15 s, not 15 s after the previous one.
  std::vector<std::thread> stoppers;
  for (Lane* l : all) stoppers.emplace_back([l] { l->stop(); });
  for (auto& t : stoppers) t.join();
}

}  // namespace daybreak::channels
