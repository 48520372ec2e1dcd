#!/usr/bin/env bash
# The metrics textfiles reach Prometheus through the real node_exporter (Debian package
# prometheus-node-exporter), run as an unprivileged user as on a server (Debian runs it as
# `prometheus`), while daybreak's binaries run under umask 077 like the cron wrapper:
#  1. the nightly jobs (assign-fallback, plan-deliveries) and a dispatch write their textfiles
#     into dispatch.metrics_dir, each 0644
#  2. node_exporter (as nobody) reads them all: node_textfile_scrape_error 0, dispatch's figures
#     and both jobs' figures equal the ledger's
#  3. a failed plan-deliveries (exit 4) shows its exit code and keeps its last success time
#  4. the negative: a 0600 textfile (what umask 077 made before) is a scrape error for nobody
source "$(dirname "$0")/common.sh"
umask 077  # daybreak-job's umask, for every binary below

NODE_EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$NODE_EXPORTER" ] || { echo "skip: $NODE_EXPORTER missing (Debian package prometheus-node-exporter)"; exit 125; }
command -v setpriv >/dev/null || { echo "skip: setpriv missing (util-linux)"; exit 125; }
id nobody >/dev/null 2>&1 || { echo "skip: no user nobody"; exit 125; }
AS_NOBODY=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then AS_NOBODY=(sudo -n "${AS_NOBODY[@]}")
  else echo "skip: switching to user nobody needs root or passwordless sudo"; exit 125; fi
fi

# $WORK is 0700 (mktemp): nobody could not even reach a directory under it. The metrics
# directory lives under a world-traversable parent of its own, 0755 like
# /var/lib/prometheus/node-exporter.
PUB=$(mktemp -d "${TMPDIR:-/tmp}/daybreak-prom.XXXXXX")
chmod 0755 "$PUB"
METRICS=$PUB/metrics
mkdir -m 0755 "$METRICS"
NE_PID=
# Stops node_exporter, keeps a copy of the textfiles when the test failed, then common.sh's cleanup
# (which reads the exit status: set -e is off here so a failing step cannot skip it).
trap 'rc=$?; set +e; [ -n "$NE_PID" ] && kill "$NE_PID" 2>/dev/null; [ $rc -ne 0 ] && cp -r "$METRICS" "$WORK/metrics" 2>/dev/null; rm -rf "$PUB"; (exit $rc); cleanup' EXIT

# scrape: node_exporter's /metrics into $WORK/scrape.txt
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$NE_PORT/metrics" >"$WORK/scrape.txt" || fail "scrape failed"; }
# value NAME [LABEL=VALUE...]: the one sample of NAME with those labels (others ignored), or "absent"
value() {
  python3 - "$WORK/scrape.txt" "$@" <<'PY'
import re, sys
path, name, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
found = []
for line in open(path):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line.strip())
    if not m or m.group(1) != name:
        continue
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        found.append(float(m.group(4)))
if len(found) > 1:
    sys.exit("%s %s: %d samples match" % (name, want, len(found)))
v = found[0] if found else None
print("absent" if v is None else int(v) if v == int(v) else v)
PY
}
# sum_of NAME [LABEL=VALUE...]: the sum of the matching samples
sum_of() {
  python3 - "$WORK/scrape.txt" "$@" <<'PY'
import re, sys
path, name, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
total = 0.0
for line in open(path):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line.strip())
    if m and m.group(1) == name:
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(labels.get(k) == v for k, v in want.items()):
            total += float(m.group(4))
print(int(total))
PY
}

# --- 1. the nightly jobs and a dispatch write their textfiles -------------------------------
D=2026-12-01
start_sim prom --mps 80 --time-scale 10 --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
sed -i "s|^\[dispatch\]\$|[dispatch]\nmetrics_dir = \"$METRICS\"|" "$WORK/daybreak.toml"
grep -q "^metrics_dir = \"$METRICS\"" "$WORK/daybreak.toml" || fail "metrics_dir not set in the config"
seed_day 60 "$D"  # imports, then assign-fallback and plan-deliveries at 21:30 on D-1
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D'")
[ "$planned" -gt 40 ] || fail "expected about 60 planned deliveries, got $planned"
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) "$DISPATCH" --run "$run" --json >"$WORK/dispatch.json" 2>"$WORK/dispatch.log" ||
  fail "dispatch exited $?: $(tail -5 "$WORK/dispatch.log")"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state after dispatch"
for f in daybreak.prom daybreak_job_assign-fallback.prom daybreak_job_plan-deliveries.prom; do
  [ -f "$METRICS/$f" ] || fail "no $f in the metrics directory: $(ls -la "$METRICS")"
  assert_eq "$(stat -c %a "$METRICS/$f")" "644" "mode of $f written under umask 077"
done
assert_eq "$(ls "$METRICS" | grep -c tmp || true)" "0" "temporary files left in the metrics directory"
echo "ok 1: assign-fallback, plan-deliveries and dispatch wrote 0644 textfiles under umask 077"

# --- 2. node_exporter as nobody reads them --------------------------------------------------
"${AS_NOBODY[@]}" true || { echo "skip: cannot run as nobody here (setpriv refused)"; exit 125; }
for attempt in 1 2 3; do
  NE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${AS_NOBODY[@]}" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults \
    --collector.textfile --collector.textfile.directory="$METRICS" 2>"$WORK/node_exporter.log" &
  NE_PID=$!
  for _ in $(seq 1 100); do
    curl -sf --max-time 1 "http://127.0.0.1:$NE_PORT/metrics" >/dev/null 2>&1 && break
    kill -0 "$NE_PID" 2>/dev/null || break
    sleep 0.1
  done
  curl -sf --max-time 2 "http://127.0.0.1:$NE_PORT/metrics" >/dev/null 2>&1 && break
  kill "$NE_PID" 2>/dev/null || true
  wait "$NE_PID" 2>/dev/null || true
  NE_PID=
done
[ -n "$NE_PID" ] || fail "node_exporter did not start: $(tail -5 "$WORK/node_exporter.log")"
assert_eq "$(ps -o user= -p "$NE_PID" | tr -d ' ')" "nobody" "node_exporter's user"
scrape
assert_eq "$(value node_textfile_scrape_error)" "0" "node_textfile_scrape_error ($(grep -i error "$WORK/node_exporter.log" | tail -2))"
for f in daybreak.prom daybreak_job_assign-fallback.prom daybreak_job_plan-deliveries.prom; do
  [ "$(value node_textfile_mtime_seconds file="$METRICS/$f")" != "absent" ] || fail "node_exporter does not list $f"
done
# dispatch's figures
accepted=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")
assert_eq "$accepted" "$planned" "accepted deliveries in the ledger"
assert_eq "$(sum_of daybreak_deliveries state=accepted)" "$accepted" "daybreak_deliveries{state=accepted}"
assert_eq "$(sum_of daybreak_deliveries)" "$planned" "daybreak_deliveries over every state"
assert_eq "$(value daybreak_live_success_ratio run_id="$run" date="$D")" "1" "daybreak_live_success_ratio"
assert_eq "$(value daybreak_breaker_state sender=wa-1 state=closed)" "1" "daybreak_breaker_state closed"
assert_eq "$(value daybreak_dead_letters)" "0" "daybreak_dead_letters"
# the nightly jobs' figures
for p in assign-fallback plan-deliveries; do
  assert_eq "$(value daybreak_job_last_exit_code program=$p)" "0" "$p last exit code"
  last_run=$(value daybreak_job_last_run_timestamp_seconds program=$p)
  [ "$last_run" != "absent" ] || fail "$p: no last run timestamp"
  assert_eq "$(value daybreak_job_last_success_timestamp_seconds program=$p)" "$last_run" "$p last success = last run"
  # seed_day ran it at 21:30 IST on D-1 (its DAYBREAK_CLOCK), within the real seconds it took
  python3 -c "import sys; t=float('$last_run'); sys.exit(0 if abs(t - $(date -d "${D}T21:30:00+05:30 -1 day" +%s)) < 60 else 1)" ||
    fail "$p last run $last_run is not 21:30 IST on the day before $D"
  assert_eq "$(value daybreak_job_target_day_timestamp_seconds program=$p date=$D)" "$(date -u -d "$D" +%s)" "$p target day"
  [ "$(value daybreak_job_duration_seconds program=$p)" != "absent" ] || fail "$p: no duration"
done
eligible=$(sql "SELECT COUNT(*) FROM assignments WHERE date='$D'")
assert_eq "$(value daybreak_fallback_eligible_advisors program=assign-fallback)" "$eligible" "assign-fallback eligible"
assert_eq "$(sum_of daybreak_fallback_assigned_advisors program=assign-fallback)" "$eligible" "assign-fallback assigned, all sources"
assert_eq "$(value daybreak_fallback_assigned_advisors program=assign-fallback source=fallback)" \
  "$(sql "SELECT COUNT(*) FROM assignments WHERE date='$D' AND source='fallback'")" "assign-fallback assigned from the fallback pool"
assert_eq "$(value daybreak_fallback_missing_advisors program=assign-fallback)" "0" "silent days"
assert_eq "$(value daybreak_plan_planned_deliveries program=plan-deliveries)" "$planned" "planned = deliveries in the ledger"
assert_eq "$(value daybreak_plan_inserted_deliveries program=plan-deliveries)" "$planned" "inserted by the first plan"
assert_eq "$(value daybreak_plan_eligible_advisors program=plan-deliveries)" "$eligible" "plan eligible"
assert_eq "$(value daybreak_plan_runs program=plan-deliveries)" "$(sql "SELECT COUNT(*) FROM runs WHERE date='$D'")" "plan runs"
assert_eq "$(value daybreak_plan_feasible program=plan-deliveries)" "1" "plan feasible"
assert_eq "$(value daybreak_plan_unassigned_advisors program=plan-deliveries)" "0" "plan unassigned"
assert_eq "$(value daybreak_plan_unreachable_advisors program=plan-deliveries)" "0" "plan unreachable"
echo "ok 2: node_exporter as nobody: no scrape error; $planned deliveries, live success 1 and both jobs' figures match the ledger"

# --- 3. a failed run keeps the last success -------------------------------------------------
success=$(value daybreak_job_last_success_timestamp_seconds program=plan-deliveries)
set +e
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T22:15:00+05:30@$(now_ms)*1" "$PLAN" --date "$D" --database "$WORK/no-such-dir/x.db" \
  >/dev/null 2>"$WORK/plan-fail.log"
rc=$?
set -e
assert_eq "$rc" "4" "plan-deliveries exit on a database it cannot open"
assert_eq "$(stat -c %a "$METRICS/daybreak_job_plan-deliveries.prom")" "644" "mode after the failed run"
scrape
assert_eq "$(value daybreak_job_last_exit_code program=plan-deliveries)" "4" "last exit code after the failure"
assert_eq "$(value daybreak_job_last_success_timestamp_seconds program=plan-deliveries)" "$success" "last success kept"
failed_run=$(value daybreak_job_last_run_timestamp_seconds program=plan-deliveries)
python3 -c "import sys; sys.exit(0 if abs(float('$failed_run') - $(date -d "${D}T22:15:00+05:30 -1 day" +%s)) < 60 else 1)" ||
  fail "last run of the failed plan: $failed_run, not 22:15 IST on the day before $D"
assert_eq "$(value daybreak_plan_planned_deliveries program=plan-deliveries)" "absent" "counts of a run that had none"
assert_eq "$(value daybreak_job_last_exit_code program=assign-fallback)" "0" "assign-fallback's file untouched"
echo "ok 3: a failed plan-deliveries exports exit code 4 and keeps its last success"

# --- 4. the negative: a 0600 textfile ----------------------------------------------------------
echo "daybreak_probe 1" >"$METRICS/probe.prom"  # umask 077: 0600, owned by us
assert_eq "$(stat -c %a "$METRICS/probe.prom")" "600" "probe mode"
scrape
assert_eq "$(value node_textfile_scrape_error)" "1" "node_textfile_scrape_error with a 0600 file"
assert_eq "$(value daybreak_probe)" "absent" "the 0600 file's sample"
chmod 0644 "$METRICS/probe.prom"
scrape
assert_eq "$(value node_textfile_scrape_error)" "0" "node_textfile_scrape_error once the file is 0644"
assert_eq "$(value daybreak_probe)" "1" "the 0644 file's sample"
echo "ok 4: a 0600 textfile is a scrape error for node_exporter's user; 0644 is read"
