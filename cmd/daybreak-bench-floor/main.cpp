// daybreak-bench-floor: what the transport alone costs. A bare libcurl multi loop posts the same
// WhatsApp template requests dispatch posts (same URL shape, headers and body size), paced at the
// senders' rate, with no ledger, no scheduler, no retry policy and no outcome bookkeeping beyond a
// counter. scripts/bench runs it against the simulator beside the burst scenario so the table shows
// how far dispatch's CPU per send is from this floor. A bench tool: not installed by default.
//
// --transport curl or epoll posts the same requests, paced the same way, through dispatch's own
// transport (channels::make_curl_transport or make_epoll_transport, --workers threads) instead of
// the bare loop: what the transport dispatch would use costs, still without the ledger.
#include <curl/curl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channels/transport.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Job {
  std::size_t index = 0;
  std::size_t sender = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  std::string response;
  int attempts = 0;
};

std::size_t on_write(char* ptr, std::size_t size, std::size_t n, void* user) {
  auto* j = static_cast<Job*>(user);
  if (j->response.size() < 4096) j->response.append(ptr, size * n);
  return size * n;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// The body dispatch sends for a generated advisor (template, three text parameters, the
/// delivery id as callback data), built once per message before the clock starts.
std::string body_for(std::size_t i) {
  char to[32];
  std::snprintf(to, sizeof to, "+9198%08zu", i % 100000000);
  std::string b = "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"";
  b += to;
  b += "\",\"type\":\"template\",\"template\":{\"name\":\"daily_content\",\"language\":{\"code\":\"en\"},"
       "\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\",\"text\":\"Markets this "
       "morning\"}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Advisor ";
  b += std::to_string(i);
  b += "\"},{\"type\":\"text\",\"text\":\"Markets this morning\"},{\"type\":\"text\",\"text\":\"Index funds "
       "and the habit of steady monthly saving: three charts for your clients.\"}]}]},"
       "\"biz_opaque_callback_data\":\"";
  b += std::to_string(i + 1);
  b += "\"}";
  return b;
}

struct Totals {
  std::size_t accepted = 0, rejected = 0, failed_transport = 0;
  double drain_s = 0;
};

/// The same paced posting through a channels::Transport: the main thread submits as the rate
/// allows and takes finished requests from the transport threads (a 429 or a transport error is
/// posted again after 1 s, as the bare loop does).
Totals run_transport(daybreak::channels::Transport& transport, const std::vector<std::string>& urls, std::size_t messages,
                     std::size_t senders, double mps, std::size_t max_in_flight) {
  namespace ch = daybreak::channels;
  struct Finished {
    std::size_t index;
    bool ok;
    bool transport_error;
  };
  std::mutex mu;
  std::vector<Finished> finished;
  std::vector<std::string> bodies(messages);  // built before the clock starts, as the loop's are
  for (std::size_t i = 0; i < messages; ++i) bodies[i] = body_for(i);
  auto submit = [&](std::size_t i) {
    ch::Request r;
    r.url = urls[i % senders];
    r.headers = {"Authorization: Bearer bench", "Content-Type: application/json"};
    r.body = bodies[i];
    r.timeout_ms = 10000;
    transport.submit(std::move(r), [&mu, &finished, i](ch::Response resp) {
      const bool ok = resp.transport_ok && resp.status == 200;
      std::lock_guard lk(mu);
      finished.push_back({i, ok, !resp.transport_ok});
    });
  };
  Totals t;
  const double rate = mps * static_cast<double>(senders);
  std::deque<std::pair<Clock::time_point, std::size_t>> retries;
  std::size_t next = 0, in_flight = 0;
  std::vector<Finished> batch;
  const auto t0 = Clock::now();
  Clock::time_point last_done = t0;
  while (t.accepted < messages) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    const auto due = std::min(messages, static_cast<std::size_t>(elapsed * rate) + 1);
    while (!retries.empty() && retries.front().first <= now && in_flight < max_in_flight) {
      submit(retries.front().second);
      retries.pop_front();
      ++in_flight;
    }
    while (next < due && in_flight < max_in_flight) {
      submit(next++);
      ++in_flight;
    }
    {
      std::lock_guard lk(mu);
      batch.swap(finished);
    }
    for (const auto& f : batch) {
      --in_flight;
      if (f.ok) {
        ++t.accepted;
        last_done = Clock::now();
      } else {
        (f.transport_error ? t.failed_transport : t.rejected)++;
        retries.emplace_back(Clock::now() + std::chrono::seconds(1), f.index);
      }
    }
    batch.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(next >= messages ? (retries.empty() ? 5 : 10) : 1));
  }
  t.drain_s = std::chrono::duration<double>(last_done - t0).count();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"daybreak-bench-floor: a bare libcurl multi loop posting WhatsApp template requests at a paced rate"};
  std::string base = "http://127.0.0.1:8080";
  std::string api_version = "v26.0";
  std::size_t messages = 100000, senders = 4;
  double mps = 1000;
  long max_host_connections = 0;  // dispatch's default: unlimited, bounded by in-flight
  std::size_t max_in_flight = 384;  // dispatch's [dispatch] max_in_flight in scripts/bench
  std::string transport = "loop";
  int workers = 2;  // dispatch's [dispatch] workers default
  app.add_option("--graph-base", base, "Graph API base URL (the simulator)")->required();
  app.add_option("--api-version", api_version);
  app.add_option("--messages", messages, "messages to post");
  app.add_option("--senders", senders, "phone numbers (ids 100000001…), round robin");
  app.add_option("--mps", mps, "messages per second per phone number");
  app.add_option("--max-host-connections", max_host_connections, "0 = unlimited");
  app.add_option("--max-in-flight", max_in_flight, "requests outstanding at once");
  app.add_option("--transport", transport, "loop: the bare libcurl multi loop; curl or epoll: dispatch's transport of that name")
      ->check(CLI::IsMember({"loop", "curl", "epoll"}));
  app.add_option("--workers", workers, "transport threads (--transport curl or epoll)");
  CLI11_PARSE(app, argc, argv);
  if (senders == 0 || mps <= 0) {
    std::fprintf(stderr, "error: --senders and --mps must be positive\n");
    return 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::vector<std::string> urls;
  for (std::size_t s = 0; s < senders; ++s) urls.push_back(base + "/" + api_version + "/10000000" + std::to_string(s + 1) + "/messages");
  const double rate0 = mps * static_cast<double>(senders);
  if (transport != "loop") {
    std::unique_ptr<daybreak::channels::Transport> tr;
    if (transport == "epoll") {
      daybreak::channels::EpollTransportOptions o;
      o.workers = workers;
      o.max_host_connections = max_host_connections;
      tr = daybreak::channels::make_epoll_transport(o);
    } else {
      daybreak::channels::CurlTransportOptions o;
      o.workers = workers;
      o.max_host_connections = max_host_connections;
      tr = daybreak::channels::make_curl_transport(o);
    }
    const double cpu0 = cpu_seconds();
    const Totals t = run_transport(*tr, urls, messages, senders, mps, max_in_flight);
    const double cpu = cpu_seconds() - cpu0;
    tr->shutdown();
    const double ideal = static_cast<double>(messages) / rate0;
    std::printf(
        "{\"transport\":\"%s\",\"messages\":%zu,\"senders\":%zu,\"mps\":%.0f,\"accepted\":%zu,\"rejected\":%zu,\"transport_errors\":%zu,"
        "\"drain_s\":%.3f,\"drain_eff\":%.3f,\"cpu_s\":%.3f,\"cpu_ms_per_msg\":%.4f}\n",
        transport.c_str(), messages, senders, mps, t.accepted, t.rejected, t.failed_transport, t.drain_s, ideal / t.drain_s, cpu,
        cpu * 1000 / static_cast<double>(messages));
    curl_global_cleanup();
    return t.accepted == messages ? 0 : 1;
  }
  std::vector<Job> jobs(messages);
  for (std::size_t i = 0; i < messages; ++i) {
    Job& j = jobs[i];
    j.index = i;
    j.sender = i % senders;
    j.body = body_for(i);
    j.headers = curl_slist_append(nullptr, "Authorization: Bearer bench");
    j.headers = curl_slist_append(j.headers, "Content-Type: application/json");
  }

  CURLM* multi = curl_multi_init();
  if (max_host_connections > 0) curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
  std::vector<CURL*> idle;  // finished handles, reused as a long-lived client reuses them
  auto start_job = [&](Job& j) {
    if (!j.easy) {
      if (idle.empty()) {
        j.easy = curl_easy_init();
      } else {
        j.easy = idle.back();
        idle.pop_back();
      }
    }
    CURL* e = j.easy;
    curl_easy_setopt(e, CURLOPT_URL, urls[j.sender].c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j.headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j.body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(j.body.size()));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &j);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    j.response.clear();
    ++j.attempts;
    curl_multi_add_handle(multi, e);
  };

  const double rate = mps * static_cast<double>(senders);  // first attempts per second, all numbers
  std::deque<std::pair<Clock::time_point, Job*>> retries;   // 429s and transport errors, after 1 s
  std::size_t next = 0, accepted = 0, rejected = 0, failed_transport = 0, in_flight = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  Clock::time_point last_done = t0;
  while (accepted < messages) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    const auto due = std::min(messages, static_cast<std::size_t>(elapsed * rate) + 1);
    while (!retries.empty() && retries.front().first <= now && in_flight < max_in_flight) {
      start_job(*retries.front().second);
      retries.pop_front();
      ++in_flight;
    }
    while (next < due && in_flight < max_in_flight) {
      start_job(jobs[next++]);
      ++in_flight;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Job* j = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &j);
      long status = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      curl_multi_remove_handle(multi, m->easy_handle);
      --in_flight;
      if (m->data.result == CURLE_OK && status == 200) {
        ++accepted;
        last_done = Clock::now();
        idle.push_back(j->easy);
        j->easy = nullptr;
      } else {
        (m->data.result == CURLE_OK ? rejected : failed_transport)++;
        retries.emplace_back(Clock::now() + std::chrono::seconds(1), j);
      }
    }
    // Sleep until the next first attempt is due, or a socket is ready (at most 1 ms ahead).
    int wait_ms = 1;
    if (next >= messages) wait_ms = retries.empty() ? 100 : 10;
    curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
  }
  const double cpu = cpu_seconds() - cpu0;
  const double drain = std::chrono::duration<double>(last_done - t0).count();
  const double ideal = static_cast<double>(messages) / rate;
  std::printf(
      "{\"messages\":%zu,\"senders\":%zu,\"mps\":%.0f,\"accepted\":%zu,\"rejected\":%zu,\"transport_errors\":%zu,"
      "\"drain_s\":%.3f,\"drain_eff\":%.3f,\"cpu_s\":%.3f,\"cpu_ms_per_msg\":%.4f}\n",
      messages, senders, mps, accepted, rejected, failed_transport, drain, ideal / drain, cpu,
      cpu * 1000 / static_cast<double>(messages));
  for (CURL* e : idle) curl_easy_cleanup(e);
  for (Job& j : jobs) {
    if (j.easy) curl_easy_cleanup(j.easy);
    curl_slist_free_all(j.headers);
  }
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return accepted == messages ? 0 : 1;
}
