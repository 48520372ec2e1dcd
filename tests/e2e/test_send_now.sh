#!/usr/bin/env bash
# `daybreak send-now` end to end, on the injected clock (x4) against the simulator:
#  1. a 2,000-advisor morning run is dispatching; mid-run, send-now sends one item to a list of
#     500 advisors with --yes; the running dispatch adopts the urgent run (no second process),
#     all 500 urgent deliveries are accepted by their own deadline, the morning stays >= 99% on
#     time, the audit row names the actor, and sla-report keeps the urgent line apart;
#  2. without --yes and without a terminal send-now refuses (exit 2) and writes nothing;
#  3. with no dispatch running (and no watchdog installed next to the build) send-now says what
#     to run, and that command sends the run;
#  4. installed (cmake --install into a prefix), with no dispatch running, send-now runs one
#     watchdog tick, which starts dispatch --supervise under the dispatch lock, and the run goes out.
source "$(dirname "$0")/common.sh"

SCALE=4
start_sim sendnow --mps 400 --time-scale $SCALE --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
D=2026-12-07
seed_day 2000 "$D"
morning=$(sql "SELECT run_id FROM runs WHERE date='$D'")
nm=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$morning")
[ "$nm" -ge 1900 ] || fail "morning run has $nm deliveries"
item=$(sql "SELECT content_id FROM content WHERE withdrawn_at IS NULL AND (valid_from='' OR valid_from<='$D')
            AND (valid_until='' OR valid_until>='$D') ORDER BY content_id LIMIT 1")
[ -n "$item" ] || fail "no content usable on $D"
sql "SELECT advisor_id FROM deliveries WHERE run_id=$morning ORDER BY advisor_id LIMIT 500" >"$WORK/segment.txt"
me=$(id -un)

# --- 1. send-now while the morning dispatches ------------------------------------------------
export DAYBREAK_CLOCK="${D}T05:59:25+05:30@$(now_ms)*${SCALE}"
"$DISPATCH" --json >"$WORK/d.json" 2>"$WORK/d.log" &
pid=$!
for _ in $(seq 1 400); do
  [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$morning AND state='accepted'")" -ge 300 ] && break
  sleep 0.05
done
acc_before=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$morning AND state='accepted'")
[ "$acc_before" -lt "$nm" ] || fail "the morning finished before send-now; nothing was tested"
"$OP" send-now --content "$item" --segment "list:$WORK/segment.txt" --deadline-minutes 2 --yes \
  --reason "e2e: market halt notice" --json >"$WORK/s.json" 2>"$WORK/s.err" || fail "send-now exited $?: $(cat "$WORK/s.err")"
urgent=$(json 'j["run_id"]' <"$WORK/s.json")
assert_eq "$(json 'j["deliveries"]' <"$WORK/s.json")" "500" "urgent deliveries written"
assert_eq "$(json 'j["pickup"]["action"]' <"$WORK/s.json")" "taken" "who sends the urgent run"
grep -q "morning on whatsapp: [0-9]* unsent" "$WORK/s.err" || fail "no morning figures in the verdict: $(cat "$WORK/s.err")"
grep -q "^urgent run: 500 deliveries, finishes about" "$WORK/s.err" || fail "no urgent estimate: $(cat "$WORK/s.err")"
wait "$pid" || fail "dispatch exited $?: $(tail -5 "$WORK/d.log")"
assert_eq "$(json 'j["runs_adopted"]' <"$WORK/d.json")" "[$urgent]" "runs the dispatch adopted"
assert_eq "$(sql "SELECT kind || ' ' || state FROM runs WHERE run_id=$urgent")" "urgent closed" "urgent run"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$urgent AND content_id='$item' AND accepted_at IS NOT NULL
                  AND accepted_at <= deadline_at")" "500" "urgent deliveries accepted by their deadline"
grep -q "run $urgent (urgent run, 500 deliveries, .*) created while dispatching: taken" "$WORK/d.log" ||
  fail "the running dispatch did not log taking run $urgent"
on_time=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$morning AND accepted_at <= deadline_at")
[ $((on_time * 100)) -ge $((nm * 99)) ] || fail "morning on time $on_time of $nm"
assert_eq "$(sql "SELECT actor FROM audit_log WHERE target='run:$urgent'")" "$me" "audit actor"
assert_eq "$(sql "SELECT reason FROM audit_log WHERE target='run:$urgent'")" "e2e: market halt notice" "audit reason"
# The urgent rows went first: the last urgent acceptance came before the morning's last one.
last_u=$(sql "SELECT MAX(accepted_at) FROM deliveries WHERE run_id=$urgent")
last_m=$(sql "SELECT MAX(accepted_at) FROM deliveries WHERE run_id=$morning")
[ "$last_u" -lt "$last_m" ] || fail "urgent run ended at $last_u, after the morning's last acceptance $last_m"

# sla-report: the urgent run is its own line, against its own deadline; the morning's totals exclude it.
"$REPORT" --date "$D" --json >"$WORK/r.json" || fail "sla-report --date exited $?"
assert_eq "$(json 'j["eligible"]' <"$WORK/r.json")" "$nm" "date report eligible (morning only)"
assert_eq "$(json '[r["run_id"] for r in j["urgent"]]' <"$WORK/r.json")" "[$urgent]" "urgent runs of the date"
assert_eq "$(json 'j["urgent"][0]["sla_pct"]' <"$WORK/r.json")" "100.0" "urgent run SLA"
assert_eq "$(json 'sorted(r["run_kind"] for r in j["runs"])' <"$WORK/r.json")" "['morning', 'urgent']" "run kinds"
"$REPORT" --run "$urgent" --json >"$WORK/ru.json" || fail "sla-report --run $urgent exited $?"
assert_eq "$(json 'j["run_kind"]' <"$WORK/ru.json")" "urgent" "urgent run report kind"
assert_eq "$(json 'j["eligible"]' <"$WORK/ru.json")" "500" "urgent run report eligible"
"$REPORT" --date "$D" >"$WORK/r.txt" || fail "sla-report text exited $?"
grep -q "^urgent run $urgent " "$WORK/r.txt" || fail "no urgent line in the text report: $(cat "$WORK/r.txt")"
"$REPORT" list --json >"$WORK/list.ndjson" || fail "sla-report list exited $?"
grep "\"run_id\":$urgent," "$WORK/list.ndjson" | grep -q '"run_kind":"urgent"' || fail "sla-report list: $(cat "$WORK/list.ndjson")"
"$REPORT" --date "$D" --html "$WORK/r.html" >/dev/null || fail "sla-report --html exited $?"
grep -q "urgent run $urgent" "$WORK/r.html" || fail "no urgent line in the HTML report"
echo "ok 1: morning at $acc_before/$nm accepted when send-now wrote run $urgent (500); adopted by the running dispatch; all 500 on time; morning $on_time/$nm on time"

# --- 2. no --yes, no terminal: refused, nothing written ----------------------------------------
export DAYBREAK_CLOCK="${D}T10:00:00+05:30@$(now_ms)*1"
runs_before=$(sql "SELECT COUNT(*) FROM runs")
set +e
"$OP" send-now --content "$item" --segment tier:gold --reason "e2e: no confirmation" </dev/null >"$WORK/n.out" 2>"$WORK/n.err"
rc=$?
set -e
assert_eq "$rc" "2" "send-now without --yes and without a terminal"
grep -q "not confirmed" "$WORK/n.err" || fail "refusal message: $(cat "$WORK/n.err")"
grep -q "^urgent run: " "$WORK/n.out" || fail "the verdict was not printed before the refusal"
assert_eq "$(sql "SELECT COUNT(*) FROM runs")" "$runs_before" "runs after a refused send-now"

# --- 3. 10:00, no dispatch running: send-now says what to run; that sends it -------------------
"$OP" send-now --content "$item" --segment tier:gold --yes --reason "e2e: 10:00 notice" --json \
  >"$WORK/s3.json" 2>"$WORK/s3.err" || fail "send-now exited $?: $(cat "$WORK/s3.err")"
run3=$(json 'j["run_id"]' <"$WORK/s3.json")
n3=$(json 'j["deliveries"]' <"$WORK/s3.json")
assert_eq "$(json 'j["pickup"]["action"]' <"$WORK/s3.json")" "none" "pickup with no dispatch and no watchdog"
grep -q "run \`dispatch --run $run3\` now" "$WORK/s3.json" || fail "send-now did not say what to run: $(cat "$WORK/s3.json")"
"$DISPATCH" --run "$run3" --json >"$WORK/d3.json" 2>"$WORK/d3.log" || fail "dispatch --run $run3 exited $?"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND accepted_at <= deadline_at")" "$n3" "10:00 urgent run on time"
echo "ok 2-3: refused without --yes (exit 2, nothing written); at 10:00 run $run3 ($n3 gold advisors) sent by the dispatch send-now named"

# --- 4. installed, no dispatch running: send-now's watchdog tick starts dispatch -----------------
BUILD=$(cd "$DAYBREAK_BIN/.." && pwd)
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }
[ -x "$PREFIX/libexec/daybreak/daybreak-watchdog" ] || fail "daybreak-watchdog is not installed"
export DAYBREAK_LOCK_DIR=$WORK/lock DAYBREAK_LOG_DIR=$WORK/log
"$PREFIX/bin/daybreak" send-now --content "$item" --segment tier:gold --yes --reason "e2e: installed" --json \
  >"$WORK/s4.json" 2>"$WORK/s4.err" || fail "installed send-now exited $?: $(cat "$WORK/s4.err")"
run4=$(json 'j["run_id"]' <"$WORK/s4.json")
n4=$(json 'j["deliveries"]' <"$WORK/s4.json")
assert_eq "$(json 'j["pickup"]["action"] + " " + str(j["pickup"]["watchdog_exit"])' <"$WORK/s4.json")" "watchdog 0" "installed pickup"
grep -q "no dispatch running; starting dispatch --supervise" "$WORK/s4.err" || fail "the watchdog did not start dispatch: $(cat "$WORK/s4.err")"
for _ in $(seq 1 300); do
  [ "$(sql "SELECT state FROM runs WHERE run_id=$run4")" = closed ] && break
  sleep 0.1
done
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run4")" "closed" "run $run4 after the watchdog's dispatch"
# nothing outlives the test: the watchdog's dispatch releases the dispatch lock when it exits
for _ in $(seq 1 100); do flock -n "$WORK/lock/dispatch.lock" true && break; sleep 0.1; done
flock -n "$WORK/lock/dispatch.lock" true || fail "the watchdog's dispatch is still running"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND accepted_at <= deadline_at")" "$n4" "installed urgent run on time"
grep -q "dispatch: start: dispatch --supervise" "$WORK/log/dispatch.log" || fail "dispatch.log: $(cat "$WORK/log/dispatch.log")"
echo "ok 4: installed, nothing running: send-now's watchdog tick started dispatch --supervise, which sent run $run4 ($n4) on time"
