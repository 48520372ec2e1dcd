#include "engine/metrics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "domain/time.hpp"

namespace daybreak::engine {
namespace {

// Label values escape backslash, double quote and newline (exposition format spec).
std::string esc(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// Shortest text that reads back as the same double; Prometheus parses Go floats.
std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  double back = std::strtod(buf, nullptr);
  for (int p = 1; p <= 17; ++p) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", p, v);
    if (std::strtod(shorter, nullptr) == back) return shorter;
  }
  return buf;
}

std::string num(std::uint64_t v) { return std::to_string(v); }

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, const std::string& v) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, val] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k + "=\"" + esc(val) + "\"";
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += v;
    out_ += '\n';
  }
  void histogram(const std::string& name, const Histogram& h) {
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      cum += i < h.counts.size() ? h.counts[i] : 0;
      sample(name + "_bucket", {{"le", num(h.bounds[i])}}, num(cum));
    }
    sample(name + "_bucket", {{"le", "+Inf"}}, num(h.count));
    sample(name + "_sum", {}, num(h.sum));
    sample(name + "_count", {}, num(h.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string render_metrics(const LiveSnapshot& snap) {
  Writer w;
  std::map<CountKey, std::uint64_t> deliveries;
  std::map<RequestKey, std::uint64_t> requests;
  Histogram lag = Histogram::lag();
  Histogram latency = Histogram::latency();
  for (const auto& r : snap.runs) {
    for (const auto& [k, n] : r.counts) deliveries[k] += n;
    for (const auto& [k, n] : r.requests) requests[k] += n;
    lag.merge(r.lag);
    latency.merge(r.latency);
  }

  w.family("daybreak_deliveries", "gauge", "Deliveries of the runs being dispatched, by state, channel, tier and sender.");
  for (const auto& [k, n] : deliveries) {
    w.sample("daybreak_deliveries", {{"state", k.state}, {"channel", k.channel}, {"tier", k.tier}, {"sender", k.sender}}, num(n));
  }
  w.family("daybreak_requests_total", "counter", "Provider requests made for the runs being dispatched, by outcome.");
  for (const auto& [k, n] : requests) {
    w.sample("daybreak_requests_total", {{"channel", k.channel}, {"sender", k.sender}, {"outcome", k.outcome}}, num(n));
  }
  w.family("daybreak_dispatch_lag_seconds", "histogram", "First request sent minus planned send time, per delivery.");
  w.histogram("daybreak_dispatch_lag_seconds", lag);
  w.family("daybreak_send_latency_seconds", "histogram", "Provider request latency, request to response.");
  w.histogram("daybreak_send_latency_seconds", latency);

  auto per_run = [&](const char* name, const char* type, const char* help, auto value) {
    w.family(name, type, help);
    for (const auto& r : snap.runs) w.sample(name, {{"run_id", std::to_string(r.run_id)}, {"date", r.date}}, value(r));
  };
  per_run("daybreak_live_success_ratio", "gauge",
          "On-time share of deliveries that are final or past their deadline (live success, 0..1).",
          [](const RunLive& r) { return num(r.live_success_pct / 100.0); });
  per_run("daybreak_sla_so_far_ratio", "gauge", "On-time share of all eligible deliveries of the run so far (0..1).",
          [](const RunLive& r) { return num(r.sla_so_far_pct / 100.0); });
  per_run("daybreak_backlog_deliveries", "gauge", "Deliveries due (planned time passed) and not final.",
          [](const RunLive& r) { return num(static_cast<std::uint64_t>(r.backlog)); });
  per_run("daybreak_remaining_deliveries", "gauge", "Deliveries not final yet, due or not.",
          [](const RunLive& r) { return num(static_cast<std::uint64_t>(r.remaining)); });
  per_run("daybreak_deadline_at_risk", "gauge", "1 when the remaining work cannot finish by the deadline at the available rate.",
          [](const RunLive& r) { return std::string(r.deadline_at_risk ? "1" : "0"); });
  per_run("daybreak_available_send_rate", "gauge", "Messages per second of the senders whose breaker is not open.",
          [](const RunLive& r) { return num(r.available_mps); });
  per_run("daybreak_run_deadline_timestamp_seconds", "gauge", "The run's deadline, Unix time.",
          [](const RunLive& r) { return num(static_cast<double>(r.deadline_at) / 1000.0); });
  w.family("daybreak_projected_finish_timestamp_seconds", "gauge",
           "When the run's remaining work ends at the available rate, Unix time.");
  for (const auto& r : snap.runs) {
    if (r.projected_finish) {
      w.sample("daybreak_projected_finish_timestamp_seconds", {{"run_id", std::to_string(r.run_id)}, {"date", r.date}},
               num(static_cast<double>(*r.projected_finish) / 1000.0));
    }
  }

  w.family("daybreak_breaker_state", "gauge", "Circuit breaker of each sender: 1 for its current state, 0 for the others.");
  for (const auto& s : snap.senders) {
    for (BreakerState st : {BreakerState::closed, BreakerState::open, BreakerState::half_open}) {
      w.sample("daybreak_breaker_state", {{"sender", s.id}, {"channel", s.channel}, {"state", std::string(to_string(st))}},
               s.breaker == st ? "1" : "0");
    }
  }
  w.family("daybreak_sender_rate_limit", "gauge", "Provider rate limit of each sender, messages per second.");
  for (const auto& s : snap.senders) w.sample("daybreak_sender_rate_limit", {{"sender", s.id}, {"channel", s.channel}}, num(s.mps));
  w.family("daybreak_sender_credentials_failed", "gauge", "1 when the provider rejected the sender's credentials.");
  for (const auto& s : snap.senders) {
    w.sample("daybreak_sender_credentials_failed", {{"sender", s.id}, {"channel", s.channel}}, s.credentials_failed ? "1" : "0");
  }

  w.family("daybreak_dead_letters", "gauge", "Dead-lettered deliveries of the runs being dispatched.");
  w.sample("daybreak_dead_letters", {}, num(snap.dead_letters));
  w.family("daybreak_in_flight_requests", "gauge", "Provider requests outstanding now.");
  w.sample("daybreak_in_flight_requests", {}, num(static_cast<std::uint64_t>(snap.in_flight)));
  w.family("daybreak_writer_backlog_operations", "gauge", "Ledger writes queued and not yet committed.");
  w.sample("daybreak_writer_backlog_operations", {}, num(static_cast<std::uint64_t>(snap.writer_backlog)));
  w.family("daybreak_alerts_firing", "gauge", "Alerts firing now.");
  w.sample("daybreak_alerts_firing", {}, num(static_cast<std::uint64_t>(snap.alerts_firing)));
  if (snap.last_run_sla_pct) {
    w.family("daybreak_last_run_sla_ratio", "gauge", "SLA of the most recently closed run (on time / eligible, 0..1).");
    w.sample("daybreak_last_run_sla_ratio", {{"run_id", std::to_string(snap.last_run_id.value_or(0))}},
             num(*snap.last_run_sla_pct / 100.0));
  }
  w.family("daybreak_snapshot_timestamp_seconds", "gauge", "When these figures were taken, Unix time (daybreak's clock).");
  w.sample("daybreak_snapshot_timestamp_seconds", {}, num(static_cast<double>(snap.at) / 1000.0));
  return w.take();
}

void write_textfile_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp.XXXXXX";  // not *.prom: the collector ignores it until the rename
  auto fail = [&](const std::string& what, const std::string& p) {
    throw std::runtime_error("metrics textfile: " + what + " " + p + ": " + std::strerror(errno));
  };
  // A unique name: two writers of one file (an operator's run beside cron's) never share a
  // temporary file. mkostemp creates it 0600 and the umask (077 under the cron wrapper) would
  // narrow any mode given to open(2), so the mode is set explicitly: node_exporter reads the
  // file as another user (prometheus on Debian).
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) fail("cannot create", tmp);
  auto abandon = [&](const char* what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    fail(what, tmp);
  };
  if (::fchmod(fd, 0644) != 0) abandon("cannot chmod 0644");
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("cannot write");
    }
    off += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("cannot close", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("cannot rename onto", path);
  }
}

void write_metrics_textfile(const std::string& dir, const LiveSnapshot& snap) {
  write_textfile_atomically(dir + "/" + kMetricsFileName, render_metrics(snap));
}

std::string job_metrics_file_name(const std::string& program) { return "daybreak_job_" + program + ".prom"; }

std::string render_job_metrics(const JobRunMetrics& m) {
  Writer w;
  const std::vector<std::pair<std::string, std::string>> prog = {{"program", m.program}};
  auto secs = [](Millis t) { return num(static_cast<double>(t) / 1000.0); };
  w.family("daybreak_job_last_run_timestamp_seconds", "gauge", "When the job's last run started, Unix time (daybreak's clock).");
  w.sample("daybreak_job_last_run_timestamp_seconds", prog, secs(m.started_at));
  w.family("daybreak_job_last_success_timestamp_seconds", "gauge",
           "When the job's last successful run (exit code 0) started, Unix time; 0 when none is known.");
  w.sample("daybreak_job_last_success_timestamp_seconds", prog, secs(m.last_success_at.value_or(0)));
  w.family("daybreak_job_last_exit_code", "gauge", "Exit code of the job's last run (0 ok, 1 check failed, 2 usage, 3 configuration, 4 database, 5 provider).");
  w.sample("daybreak_job_last_exit_code", prog, std::to_string(m.exit_code));
  w.family("daybreak_job_duration_seconds", "gauge", "How long the job's last run took, seconds.");
  w.sample("daybreak_job_duration_seconds", prog, secs(std::max<Millis>(0, m.finished_at - m.started_at)));
  if (auto d = parse_date(m.date)) {
    w.family("daybreak_job_target_day_timestamp_seconds", "gauge",
             "The delivery day the job's last run worked on, as Unix time of that day's 00:00 UTC.");
    w.sample("daybreak_job_target_day_timestamp_seconds", {{"program", m.program}, {"date", m.date}},
             num(static_cast<std::uint64_t>(days_since_epoch(*d)) * std::uint64_t{86400}));
  }
  for (const auto& g : m.figures) {
    w.family(g.name.c_str(), "gauge", g.help.c_str());
    for (const auto& [labels, v] : g.samples) {
      auto l = prog;
      l.insert(l.end(), labels.begin(), labels.end());
      w.sample(g.name, l, num(v));
    }
  }
  return w.take();
}

std::optional<Millis> parse_job_last_success(const std::string& text, const std::string& program) {
  const std::string key = "daybreak_job_last_success_timestamp_seconds{program=\"" + esc(program) + "\"} ";
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    const char* begin = text.c_str() + at + key.size();
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(begin, &end);
    if (end == begin || errno != 0 || !std::isfinite(v) || v < 0 || (*end != '\n' && *end != '\0')) return std::nullopt;
    return static_cast<Millis>(std::llround(v * 1000.0));
  }
  return std::nullopt;
}

void write_job_metrics_textfile(const std::string& dir, JobRunMetrics m) {
  const std::string path = dir + "/" + job_metrics_file_name(m.program);
  if (m.exit_code == 0) {
    m.last_success_at = m.started_at;
  } else if (!m.last_success_at) {
    // A failed run keeps the previous success: read it back from the file the last run wrote.
    if (std::ifstream in{path}) {
      std::stringstream ss;
      ss << in.rdbuf();
      if (auto prev = parse_job_last_success(ss.str(), m.program); prev && *prev > 0) m.last_success_at = prev;
    }
  }
  write_textfile_atomically(path, render_job_metrics(m));
}

}  // namespace daybreak::engine
