#pragma once
// The Prometheus metrics textfile (DESIGN.md section 6): dispatch renders its live snapshot in
// the text exposition format and writes it for node_exporter's textfile collector, through a
// temporary file and a rename so the collector never reads half a file.
#include <string>

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

/// Writes render_metrics(snap) to DIR/daybreak.prom: into DIR/daybreak.prom.tmp first, then
/// rename(2), which is atomic within one file system. Throws std::runtime_error naming the path
/// on failure (dispatch logs it and goes on: metrics never stop deliveries).
void write_metrics_textfile(const std::string& dir, const LiveSnapshot& snap);

}  // namespace daybreak::engine
