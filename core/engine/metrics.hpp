#pragma once
// The Prometheus metrics textfiles for node_exporter's textfile collector: dispatch renders its
// live snapshot in the text exposition format (daybreak.prom), and the nightly jobs
// (assign-fallback, plan-deliveries) each write one file about their last run
// (daybreak_job_<program>.prom). Every file goes through write_textfile_atomically: a temporary
// file made 0644 whatever the umask, then a rename, so the collector never reads half a file
// and can read it as another user.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/live.hpp"

namespace daybreak::engine {

/// The file name inside the metrics directory (node_exporter reads only *.prom).
inline constexpr const char* kMetricsFileName = "daybreak.prom";

/// The snapshot in the Prometheus text exposition format, every family with HELP and TYPE:
/// daybreak_deliveries{state,channel,tier,sender} (gauge, summed over the snapshot's runs),
/// daybreak_requests_total{channel,sender,outcome}, daybreak_dispatch_lag_seconds and
/// daybreak_send_latency_seconds (histograms), per run daybreak_live_success_ratio,
/// daybreak_sla_so_far_ratio, daybreak_backlog_deliveries, daybreak_remaining_deliveries,
/// daybreak_deadline_at_risk, daybreak_projected_finish_timestamp_seconds; per sender
/// daybreak_breaker_state{sender,state} (1 for the current state) and daybreak_sender_rate_limit;
/// daybreak_dead_letters, daybreak_in_flight_requests, daybreak_alerts_firing,
/// daybreak_last_run_sla_ratio and daybreak_snapshot_timestamp_seconds.
std::string render_metrics(const LiveSnapshot& snap);

/// Writes `text` to `path` for the textfile collector: into a new temporary file beside it (named
/// PATH.tmp.XXXXXX, which the collector ignores: it reads only *.prom), set to mode 0644 with
/// fchmod(2) whatever the process umask (node_exporter runs as another user; nothing in a
/// textfile is secret), then rename(2), which is atomic within one file system. Throws
/// std::runtime_error naming the path on failure; the temporary file is removed.
void write_textfile_atomically(const std::string& path, const std::string& text);

/// Writes render_metrics(snap) to DIR/daybreak.prom through write_textfile_atomically. Throws
/// std::runtime_error naming the path on failure (dispatch logs it and goes on: metrics never
/// stop deliveries).
void write_metrics_textfile(const std::string& dir, const LiveSnapshot& snap);

/// One gauge family of a job's figures: name, HELP text, and its samples (labels, value).
struct JobGauge {
  std::string name;
  std::string help;
  std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, double>> samples;
};

/// What one run of a nightly job (assign-fallback, plan-deliveries) did, for its textfile.
struct JobRunMetrics {
  std::string program;                      ///< the binary: label program="…" and the file name
  Millis started_at = 0;                    ///< daybreak's clock
  Millis finished_at = 0;
  int exit_code = 0;                        ///< what the process exits with
  std::optional<Millis> last_success_at;    ///< this run's start when exit_code is 0, else the previous file's
  std::string date;                         ///< delivery day D (YYYY-MM-DD); empty when not known
  std::vector<JobGauge> figures;            ///< the job's own counts; empty when it failed before having them
};

/// "daybreak_job_<program>.prom": one file per job, so jobs never overwrite each other or dispatch.
std::string job_metrics_file_name(const std::string& program);

/// The job's textfile: daybreak_job_last_run_timestamp_seconds, daybreak_job_last_success_timestamp_seconds
/// (0 when no success is known), daybreak_job_last_exit_code, daybreak_job_duration_seconds and,
/// when the delivery day is known, daybreak_job_target_day_timestamp_seconds{date} (D 00:00 UTC),
/// each labelled program="…"; then the figures, each also labelled program="…".
std::string render_job_metrics(const JobRunMetrics& m);

/// The last-success time (ms) recorded in a job textfile's text for `program`, if any (0 = none).
std::optional<Millis> parse_job_last_success(const std::string& text, const std::string& program);

/// Writes the job's textfile into `dir`. When the run failed (exit code not 0) and
/// m.last_success_at is unset, the previous file's last-success time is kept. Throws
/// std::runtime_error naming the path on failure.
void write_job_metrics_textfile(const std::string& dir, JobRunMetrics m);

}  // namespace daybreak::engine
