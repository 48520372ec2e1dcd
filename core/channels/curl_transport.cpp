#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <atomic>
#include <cstring>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "channels/smtp_lane.hpp"
#include "channels/smtp_reply.hpp"
#include "channels/transport.hpp"

namespace daybreak::channels {
namespace {

struct Transfer {
  Request req;
  Transport::Done done;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {};  ///< curl's detailed account ("RCPT failed: 550"), no addresses
  std::chrono::steady_clock::time_point started;
  std::size_t slot = 0;  ///< its index in Worker::running_
};

std::size_t on_write(char* ptr, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  // Provider answers are small; cap what we keep so a misbehaving server cannot eat memory.
  if (t->response.size() < 64 * 1024) t->response.append(ptr, size * n);
  return size * n;
}

/// One thread and its multi handle, driven by curl's socket interface over epoll: a wake-up
/// costs the sockets that are ready, not a poll over every connection of the worker (with ~200
/// keep-alive connections per worker, curl_multi_perform + curl_multi_poll spent half of
/// dispatch's CPU in poll(2): docs/performance.md).
class Worker {
 public:
  Worker(long max_host_connections, std::string ca_file) : ca_file_(std::move(ca_file)) {
    multi_ = curl_multi_init();
    if (max_host_connections > 0) curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 1024L);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Worker::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Worker::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || wake_ < 0) throw std::runtime_error("transport: epoll/eventfd: " + std::string(std::strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
    thread_ = std::thread([this] { loop(); });
  }
  ~Worker() {
    stop();
    curl_multi_cleanup(multi_);
    for (CURL* e : idle_) curl_easy_cleanup(e);
    ::close(wake_);
    ::close(ep_);
  }
  /// False after stop() (the loop took its last inbox): `t` is left with the caller, who completes it.
  bool submit(std::unique_ptr<Transfer>& t) {
    bool was_empty = false;
    {
      std::lock_guard lk(mu_);
      if (closed_) return false;
      was_empty = inbox_.empty();
      inbox_.push_back(std::move(t));
    }
    // The loop drains the whole inbox per wake: one wake-up (a syscall) per batch is enough,
    // not one per request (at 3,500 requests/s they showed in the dispatch profile).
    if (was_empty) wake();
    return true;
  }
  void stop() {
    if (stopping_.exchange(true)) return;
    wake();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  }

  /// curl tells which socket to watch for what (CURLMOPT_SOCKETFUNCTION).
  static int on_socket(CURL* /*easy*/, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* w = static_cast<Worker*>(userp);
    if (what == CURL_POLL_REMOVE) {
      ::epoll_ctl(w->ep_, EPOLL_CTL_DEL, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0U) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0U);
    ev.data.fd = s;
    if (socketp == nullptr) {
      if (::epoll_ctl(w->ep_, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST) ::epoll_ctl(w->ep_, EPOLL_CTL_MOD, s, &ev);
      curl_multi_assign(w->multi_, s, w);  // marks it known: the next call for it is a change
    } else if (::epoll_ctl(w->ep_, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
      ::epoll_ctl(w->ep_, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
  }
  /// curl's next timeout (CURLMOPT_TIMERFUNCTION): -1 none, 0 now.
  static int on_timer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    auto* w = static_cast<Worker*>(userp);
    w->timer_set_ = timeout_ms >= 0;
    if (timeout_ms >= 0) w->timer_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
  }

  CURL* take_easy() {
    if (!idle_.empty()) {
      CURL* e = idle_.back();
      idle_.pop_back();
      curl_easy_reset(e);
      return e;
    }
    return curl_easy_init();
  }

  void start(std::unique_ptr<Transfer> t) {
    CURL* e = take_easy();
    t->easy = e;
    const Request& r = t->req;
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r.timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    if (!ca_file_.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file_.c_str());
    // HTTP only: SMTP runs on its sender's own lane (CurlTransport::submit).
    for (const auto& h : r.headers) t->headers = curl_slist_append(t->headers, h.c_str());
    t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    t->started = std::chrono::steady_clock::now();
    t->slot = running_.size();
    running_.push_back(t.get());
    curl_multi_add_handle(multi_, e);
    t.release();
  }

  void finish(Transfer* t, CURLcode code) {
    Response resp;
    resp.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t->started).count();
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    resp.message_id = std::move(t->req.message_id);
    curl_off_t retry_after = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0) {
      resp.retry_after_ms = static_cast<Millis>(retry_after) * 1000;
    }
    if (code == CURLE_OK) {
      resp.transport_ok = true;
      resp.body = std::move(t->response);
    } else {
      resp.transport_code = static_cast<int>(code);
      resp.transport_error = t->errbuf[0] ? std::string(t->errbuf) : std::string(curl_easy_strerror(code));
      long request_size = 0;
      curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
      // Bytes of the request left the machine: the provider may have acted on it.
      resp.request_may_have_arrived = request_size > 0 && code != CURLE_COULDNT_CONNECT &&
                                      code != CURLE_COULDNT_RESOLVE_HOST && code != CURLE_SSL_CONNECT_ERROR;
    }
    curl_multi_remove_handle(multi_, t->easy);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, nullptr);  // the buffer dies with the transfer
    if (t->headers) curl_slist_free_all(t->headers);
    idle_.push_back(t->easy);
    auto done = std::move(t->done);
    running_[t->slot] = running_.back();
    running_[t->slot]->slot = t->slot;
    running_.pop_back();
    delete t;
    done(std::move(resp));
  }

  /// Hands every finished transfer to its callback.
  void reap() {
    int msgs = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &msgs)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      finish(t, m->data.result);
    }
  }

  void loop() {
    std::array<epoll_event, 64> evs{};
    int still = 0;
    while (true) {
      std::deque<std::unique_ptr<Transfer>> fresh;
      {
        std::lock_guard lk(mu_);
        fresh.swap(inbox_);
        if (stopping_) closed_ = true;  // later submits are refused, so nothing waits in an inbox no one reads
      }
      for (auto& t : fresh) start(std::move(t));  // each sets curl's timer to "now"
      if (stopping_ && running_.empty()) break;
      if (stopping_ && abort_after_ < std::chrono::steady_clock::now() && !running_.empty()) {
        while (!running_.empty()) finish(running_.back(), CURLE_ABORTED_BY_CALLBACK);
      }
      if (stopping_ && abort_after_ == std::chrono::steady_clock::time_point{}) {
        abort_after_ = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      }
      // Sleep until a socket is ready, curl's timer is due, or a submit wakes us; at most
      // 100 ms (the stop checks above).
      long wait_ms = 100;
      if (timer_set_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(timer_at_ - std::chrono::steady_clock::now()).count();
        wait_ms = std::clamp<long>(static_cast<long>(left), 0, 100);
      }
      const int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), static_cast<int>(wait_ms));
      for (int i = 0; i < n; ++i) {
        const int fd = evs[i].data.fd;
        if (fd == wake_) {
          std::uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(wake_, &v, sizeof v);
          continue;
        }
        int mask = 0;
        if (evs[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi_, fd, mask, &still);
      }
      if (timer_set_ && std::chrono::steady_clock::now() >= timer_at_) {
        timer_set_ = false;
        curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &still);
      }
      reap();
    }
  }

  CURLM* multi_ = nullptr;
  int ep_ = -1;    ///< epoll set: curl's sockets and wake_
  int wake_ = -1;  ///< eventfd: a submit or a stop
  bool timer_set_ = false;  ///< curl asked to be called at timer_at_ (loop thread only)
  std::chrono::steady_clock::time_point timer_at_{};
  std::thread thread_;
  const std::string ca_file_;  ///< https:// peers verified with it; empty: libcurl's own store
  std::mutex mu_;
  std::deque<std::unique_ptr<Transfer>> inbox_;
  std::vector<Transfer*> running_;
  std::vector<CURL*> idle_;
  bool closed_ = false;  ///< under mu_: the loop took its last inbox
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point abort_after_{};
};

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(const CurlTransportOptions& o) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    const std::string ca = resolve_ca_file(o.ca_file);
    for (int i = 0; i < std::max(1, o.workers); ++i) workers_.push_back(std::make_unique<Worker>(o.max_host_connections, ca));
  }
  ~CurlTransport() override { shutdown(); }
  void submit(Request req, Done done) override {
    if (req.kind == Request::Kind::smtp) {
      // Never on the shared loop: libcurl's SMTP DONE phase blocks (channels/smtp_lane.hpp).
      smtp_.submit(std::move(req), std::move(done));
      return;
    }
    auto t = std::make_unique<Transfer>();
    t->req = std::move(req);
    t->done = std::move(done);
    if (!workers_[next_++ % workers_.size()]->submit(t)) {  // after shutdown: aborted, never sent
      auto d = std::move(t->done);
      d(never_sent_response(std::move(t->req.message_id), "the transport stopped"));
    }
  }
  void shutdown() override {
    for (auto& w : workers_) w->stop();
    smtp_.shutdown();
  }

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  SmtpLanes smtp_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace

Response never_sent_response(std::string message_id, const char* why) {
  Response r;
  r.transport_code = static_cast<int>(CURLE_ABORTED_BY_CALLBACK);
  r.transport_error = why;
  r.message_id = std::move(message_id);
  return r;
}

std::unique_ptr<Transport> make_curl_transport(const CurlTransportOptions& opts) {
  return std::make_unique<CurlTransport>(opts);
}

}  // namespace daybreak::channels
