#!/usr/bin/env bash
# Uncertain sends reconciled from status callbacks, end to end:
# the simulator posts signed callbacks to the real receiver; dispatch is killed with -9 while
# requests are in flight, so rows are left `sending` (crash between send and record). On restart
# those rows are uncertain; the ones the provider took are settled by the callbacks (no resend),
# the ones that never left are resent once after the grace period and counted as possible
# duplicates. The simulator sees every delivery exactly once.
source "$(dirname "$0")/common.sh"

CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET=reconcile-secret
D=2026-12-05
SCALE=2

# add_secrets: the webhook secrets and our [dispatch] keys into the config write_config made
add_secrets() {
  python3 - "$WORK/daybreak.toml" "$SECRET" <<'PY'
import sys
p, secret = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("[dispatch]\nuncertain_grace_seconds = 20\n", "[dispatch]\nlease_seconds = 2\nuncertain_grace_seconds = 6\n", 1)
s = s.replace('request_timeout_ms = 5000\n', 'request_timeout_ms = 5000\napp_secret = "%s"\nverify_token = "v"\n' % secret, 1)
open(p, "w").write(s)
PY
}
# the receiver first (the simulator needs its URL); it only needs the database and the secret
umask 077
write_config 1
add_secrets
"$CALLBACKS" --config "$WORK/daybreak.toml" --listen 127.0.0.1:0 --port-file "$WORK/cb.port" 2>"$WORK/cb.log" &
SIM_PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/cb.port" ] && break; sleep 0.05; done
[ -s "$WORK/cb.port" ] || { cat "$WORK/cb.log" >&2; fail "receiver did not start"; }
CB_PORT=$(cat "$WORK/cb.port")
DAYBREAK_SIM_APP_SECRET="$SECRET" start_sim rec --mps 80 --time-scale $SCALE --seed 5 --transient-rate 0 --permanent-rate 0 \
  --latency-ms-median 600 --latency-ms-p99 1200 \
  --callback-url "http://127.0.0.1:$CB_PORT/webhook" --callback-delay-ms 100
write_config "$SIM_PORT"
add_secrets
seed_day 400 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
clock="${D}T05:59:28+05:30@$(now_ms)*${SCALE}"
kill9_dispatch_after "$run" "$clock" "$WORK/d1.log" 60 400
left=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='sending'")
[ "$left" -gt 0 ] || fail "nothing was mid-send at the kill; nothing was tested"
# the callbacks of the requests that reached the provider land while dispatch is down (the
# simulator posts them one at a time; wait until its queue is empty, at most 60 s)
for _ in $(seq 1 600); do
  [ "$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks" | json 'j["pending"]')" = 0 ] && break
  sleep 0.1
done
sleep 0.5
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d2.json" 2>"$WORK/d2.log" || true
if [ "$(json 'j["status"]' <"$WORK/d2.json")" = "skipped" ]; then
  sleep 1.5
  DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d2.json" 2>"$WORK/d2.log"
fi
uncertain=$(json 'j["uncertain_found"]' <"$WORK/d2.json")
reconciled=$(json 'j["reconciled"]' <"$WORK/d2.json")
dups=$(json 'j["possible_duplicates"]' <"$WORK/d2.json")
assert_eq "$uncertain" "$left" "uncertain rows found on restart"
[ "$reconciled" -gt 0 ] || fail "no uncertain delivery was settled by a status callback ($uncertain uncertain)"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")" "$n" "accepted deliveries"
stats=$(sim_stats)
assert_eq "$(echo "$stats" | json 'j["duplicates"]')" "0" "provider-side duplicates"
assert_eq "$(echo "$stats" | json 'len(j["by_callback_data"])')" "$n" "distinct deliveries the provider took"
# the resent ones (no callback: never left) are counted as possible duplicates, the reconciled not
[ $((reconciled + dups)) -le "$uncertain" ] || fail "reconciled $reconciled + possible duplicates $dups > uncertain $uncertain"
echo "ok: $left mid-send at kill -9; $reconciled settled by callbacks without a resend, $dups resent after the grace (counted), 0 provider duplicates, $n/$n accepted"
