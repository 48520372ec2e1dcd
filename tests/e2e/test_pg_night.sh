#!/usr/bin/env bash
# The nightly jobs on a PostgreSQL ledger, with two hosts A and B sharing it, each with its own
# SQLite planning file (B's counts its ids from a different history, so its ids differ from A's):
#  a. with [database] url set, assign-fallback and plan-deliveries on A plan D1 on A's file and
#     publish it to PostgreSQL in the same command (no migrate-ledger); B's nightly plans and
#     publishes the same day from its own file and adds nothing (same runs and deliveries); two
#     dispatch hosts send it all on time, each delivery once
#  b. a missed night (D2): both hosts start dispatch on PostgreSQL at the same instant; exactly
#     one plans (the day lock), the other finds the runs: one run, one delivery per advisor, all
#     sent; night_missed is raised on the host that planned
#  c. PostgreSQL down during plan-deliveries (D3): exit 6, the plan committed in SQLite and said
#     so; with PostgreSQL back, a re-run publishes it; a day whose publish failed and was never
#     re-run (D4) is published by the morning's dead-man's switch without planning it again
#  d. `daybreak send-now` with url on A: planned on A's file, published at once, and sent by a
#     dispatch on PostgreSQL on host B
# Real PostgreSQL started by the test (skipped when its binaries are missing), real binaries,
# the provider simulator on 127.0.0.1.
source "$(dirname "$0")/common.sh"
require_test_pg
D0=2026-12-09
D1=2026-12-10
D2=2026-12-11
D3=2026-12-12
N=${PG_NIGHT_N:-600}

start_test_pg
trap 'rc=$?; set +e; stop_pg; (exit $rc); cleanup' EXIT
restart_pg() {
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
    -o "-k $PGDIR -p $PGPORT_T -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start >/dev/null 2>&1 ||
    { cat "$PGDIR/server.log" >&2; fail "pg_ctl start again"; }
}

start_sim night --mps 400 --seed 5 --transient-rate 0 --permanent-rate 0 --latency-ms-median 20 --latency-ms-p99 80
write_config "$SIM_PORT" "[[whatsapp.senders]]
id = \"wa-2\"
phone_number_id = \"100000002\"
token = \"test-token\"
mps = 80"
DB_A=$WORK/a.db
DB_B=$WORK/b.db
# $WORK/a.toml, $WORK/b.toml: the shared configuration with the host's own file and the ledger's url
for h in a b; do
  python3 - "$WORK/daybreak.toml" "$WORK/$h.toml" "$WORK/$h.db" "$URL" <<'PY'
import re, sys
src, dst, db, url = sys.argv[1:]
s = re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (db, url), open(src).read(), count=1)
open(dst, "w").write(s)
PY
done
sqlA() { sqlite3 -cmd '.timeout 10000' "$DB_A" "$1"; }
sqlB() { sqlite3 -cmd '.timeout 10000' "$DB_B" "$1"; }
on() { local h=$1; shift; DAYBREAK_CONFIG=$WORK/$h.toml "$@"; }
night() { echo "$(date -d "$1 -1 day" +%F)T21:30:00+05:30@$(now_ms)*1"; }

"$OP" generate --advisors "$N" --date "$D1" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels whatsapp >/dev/null
for h in a b; do
  for f in content advisors assignments; do on $h "$OP" import $f "$WORK/data/$f.csv" >/dev/null; done
done
# B's file has a history of its own: D0 planned there without url (never published), so its ids
# run ahead of A's.
DAYBREAK_CLOCK=$(night $D0) DAYBREAK_CONFIG=$WORK/daybreak.toml "$ASSIGN" --database "$DB_B" --date "$D0" >/dev/null ||
  fail "B's assign-fallback of $D0"
DAYBREAK_CLOCK=$(night $D0) DAYBREAK_CONFIG=$WORK/daybreak.toml "$PLAN" --database "$DB_B" --date "$D0" >/dev/null ||
  fail "B's plan of $D0"

# --- a. the night publishes ---------------------------------------------------------------------
DAYBREAK_CLOCK=$(night $D1) on a "$ASSIGN" --date "$D1" --json >"$WORK/a1.assign.json" ||
  fail "assign-fallback with url exited $?"
rc=0
DAYBREAK_CLOCK=$(night $D1) on a "$PLAN" --date "$D1" --json >"$WORK/a1.plan.json" 2>"$WORK/a1.plan.err" || rc=$?
assert_eq "$rc" "0" "plan-deliveries on A ($(cat "$WORK/a1.plan.err"))"
n=$(sqlA "SELECT COUNT(*) FROM deliveries WHERE date='$D1'")
[ "$n" -ge $((N * 9 / 10)) ] || fail "A planned $n deliveries for $N advisors"
assert_eq "$(json 'j["ledger"]' <"$WORK/a1.plan.json")" "postgresql" "plan-deliveries: ledger"
assert_eq "$(json 'j["published"]["inserted"]["deliveries"]' <"$WORK/a1.plan.json")" "$n" "deliveries published by A"
assert_eq "$(json 'j["published"]["inserted"]["runs"]' <"$WORK/a1.plan.json")" "1" "runs published by A"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='planned'")" "$n" "deliveries of $D1 in PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM assignments WHERE date='$D1'")" "$(sqlA "SELECT COUNT(*) FROM assignments WHERE date='$D1'")" "assignments published"
# The text output says what was published.
DAYBREAK_CLOCK=$(night $D1) on a "$PLAN" --date "$D1" >"$WORK/a1.plan.txt" 2>&1 || fail "plan-deliveries re-run exited $?"
grep -q "^published $D1 to the PostgreSQL ledger: .*deliveries 0 " "$WORK/a1.plan.txt" ||
  fail "the re-run's text does not say nothing new was published: $(cat "$WORK/a1.plan.txt")"
# B's nightly plans the same day from its own file: its ids differ, the rows are the same.
DAYBREAK_CLOCK=$(night $D1) on b "$ASSIGN" --date "$D1" >/dev/null || fail "B's assign-fallback"
DAYBREAK_CLOCK=$(night $D1) on b "$PLAN" --date "$D1" --json >"$WORK/b1.plan.json" 2>"$WORK/b1.plan.err" ||
  fail "B's plan-deliveries exited $?: $(cat "$WORK/b1.plan.err")"
[ "$(sqlB "SELECT run_id FROM runs WHERE date='$D1'")" != "$(sqlA "SELECT run_id FROM runs WHERE date='$D1'")" ] ||
  fail "B's run of $D1 has A's id: the test's histories did not differ"
assert_eq "$(json 'j["published"]["inserted"]["deliveries"]' <"$WORK/b1.plan.json")" "0" "deliveries B added"
assert_eq "$(json 'j["published"]["inserted"]["runs"]' <"$WORK/b1.plan.json")" "0" "runs B added"
assert_eq "$(pg "SELECT COUNT(*) FROM runs WHERE date='$D1'")" "1" "runs of $D1 in PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D1'")" "$n" "deliveries of $D1 after B's night"
run1=$(pg "SELECT run_id FROM runs WHERE date='$D1'")

# host_loop HOST CLOCK DAY: dispatch on PostgreSQL again and again (a host's timer) until every run of DAY is closed
open_runs() { pg "SELECT COUNT(*) FROM runs WHERE date='$1' AND state <> 'closed'"; }
host_loop() {
  local h=$1 clk=$2 day=$3 i=0
  while [ $i -lt 600 ]; do
    DAYBREAK_HOST_ID=host-$h DAYBREAK_CLOCK=$clk on $h "$DISPATCH" --json >>"$WORK/$h.$day.json" 2>>"$WORK/$h.$day.log" || true
    [ "$(pg "SELECT COUNT(*) FROM runs WHERE date='$day'")" -gt 0 ] && [ "$(open_runs "$day")" = "0" ] && return 0
    sleep 0.2
    i=$((i + 1))
  done
}
clk="${D1}T05:59:50+05:30@$(now_ms)*1"
host_loop a "$clk" "$D1" &
LA=$!
host_loop b "$clk" "$D1" &
LB=$!
wait $LA $LB
assert_eq "$(open_runs "$D1")" "0" "runs of $D1 left open"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='accepted' AND accepted_at <= deadline_at")" "$n" "deliveries of $D1 accepted on time"
dups=$(sim_stats | json 'j["duplicates"]')
assert_eq "$dups" "0" "duplicates at the provider"
echo "ok a: $D1 planned with url on A and B, published once ($n deliveries, no migrate-ledger), sent on time by two hosts"

# --- b. a missed night, two hosts at 05:59 ------------------------------------------------------
assert_eq "$(pg "SELECT COUNT(*) FROM runs WHERE date='$D2'")" "0" "runs of $D2 before the morning"
clk="${D2}T05:59:40+05:30@$(now_ms)*1"
host_loop a "$clk" "$D2" &
LA=$!
host_loop b "$clk" "$D2" &
LB=$!
wait $LA $LB
actions=$(cat "$WORK/a.$D2.json" "$WORK/b.$D2.json" | python3 -c "
import json, sys
a = [json.loads(l).get('deadman', {}).get('action') for l in sys.stdin if l.startswith('{')]
print(sorted(x for x in a if x not in (None, 'none')))")
assert_eq "$actions" "['planned_and_published']" "dead-man's switch actions of both hosts"
planner=a
grep -q '"planned_and_published"' "$WORK/b.$D2.json" && planner=b
eligible=$(sqlite3 "$WORK/$planner.db" "SELECT COUNT(*) FROM deliveries WHERE date='$D2'")
[ "$eligible" -ge $((N * 9 / 10)) ] || fail "the switch planned $eligible deliveries"
assert_eq "$(pg "SELECT COUNT(*) FROM runs WHERE date='$D2'")" "1" "runs of $D2"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D2'")" "$eligible" "deliveries of $D2"
assert_eq "$(pg "SELECT COUNT(DISTINCT advisor_id) FROM deliveries WHERE date='$D2'")" "$eligible" "advisors of $D2 (one delivery each)"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D2' AND state='accepted' AND accepted_at <= deadline_at")" "$eligible" "deliveries of $D2 accepted on time"
assert_eq "$(sqlite3 "$WORK/$planner.db" "SELECT COUNT(*) FROM alerts WHERE rule='night_missed' AND subject='date:$D2'")" "1" "night_missed on the planning host"
other=$([ $planner = a ] && echo b || echo a)
assert_eq "$(sqlite3 "$WORK/$other.db" "SELECT COUNT(*) FROM deliveries WHERE date='$D2'")" "0" "deliveries the other host planned"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "duplicates at the provider"
echo "ok b: missed night $D2: host $planner planned and published $eligible, host $other found the run; all on time; night_missed"

# --- c. PostgreSQL down during plan-deliveries --------------------------------------------------
DAYBREAK_CLOCK=$(night $D3) on a "$ASSIGN" --date "$D3" >/dev/null || fail "assign-fallback for $D3"
stop_pg
rc=0
DAYBREAK_CLOCK=$(night $D3) on a "$PLAN" --date "$D3" --json >"$WORK/a3.plan.json" 2>"$WORK/a3.plan.err" || rc=$?
assert_eq "$rc" "6" "plan-deliveries exit with PostgreSQL down"
n3=$(sqlA "SELECT COUNT(*) FROM deliveries WHERE date='$D3'")
[ "$n3" -ge $((N * 9 / 10)) ] || fail "the plan of $D3 is not in A's file ($n3 deliveries)"
assert_eq "$(json 'j["published"]["status"]' <"$WORK/a3.plan.json")" "failed" "published status"
grep -q "is planned in $DB_A but NOT published to the PostgreSQL ledger" "$WORK/a3.plan.err" ||
  fail "the error does not say the plan is kept and not published: $(cat "$WORK/a3.plan.err")"
grep -q "again to publish" "$WORK/a3.plan.err" || fail "the error does not say how to publish"
restart_pg
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D3'")" "0" "deliveries of $D3 in PostgreSQL after the failure"
DAYBREAK_CLOCK=$(night $D3) on a "$PLAN" --date "$D3" --json >"$WORK/a3b.plan.json" 2>"$WORK/a3b.plan.err" ||
  fail "the re-run exited $?: $(cat "$WORK/a3b.plan.err")"
assert_eq "$(json 'j["inserted"]' <"$WORK/a3b.plan.json")" "0" "deliveries the re-run planned again"
assert_eq "$(json 'j["published"]["inserted"]["deliveries"]' <"$WORK/a3b.plan.json")" "$n3" "deliveries the re-run published"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D3'")" "$n3" "deliveries of $D3 in PostgreSQL"
echo "ok c: PostgreSQL down: plan-deliveries exit 6 with the plan kept in SQLite; the re-run published $n3"

# --- c2. the night's publish failed and nobody re-ran it: the morning's switch publishes ------------
D4=2026-12-13
DAYBREAK_CLOCK=$(night $D4) on a "$ASSIGN" --date "$D4" >/dev/null || fail "assign-fallback for $D4"
stop_pg
rc=0
DAYBREAK_CLOCK=$(night $D4) on a "$PLAN" --date "$D4" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" "6" "plan-deliveries exit with PostgreSQL down ($D4)"
restart_pg
n4=$(sqlA "SELECT COUNT(*) FROM deliveries WHERE date='$D4'")
clk="${D4}T05:59:50+05:30@$(now_ms)*1"
host_loop a "$clk" "$D4"
assert_eq "$(json 'j["deadman"]["action"]' <<<"$(head -1 "$WORK/a.$D4.json")")" "published" "the switch's action on $D4"
assert_eq "$(sqlA "SELECT COUNT(*) FROM deliveries WHERE date='$D4'")" "$n4" "deliveries of $D4 in A's file (not planned again)"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE date='$D4' AND state='accepted'")" "$n4" "deliveries of $D4 sent"
sqlA "SELECT message FROM alerts WHERE rule='night_missed' AND subject='date:$D4'" | grep -q "did not publish them" ||
  fail "night_missed for $D4 does not say the night's publish failed"
echo "ok c2: a plan never published ($D4) was published by the morning's dead-man's switch without planning again; night_missed"

# --- d. send-now on PostgreSQL ------------------------------------------------------------------
item=$(sqlA "SELECT content_id FROM content WHERE withdrawn_at IS NULL AND emergency = 0 AND (valid_from='' OR valid_from<='$D1')
             AND (valid_until='' OR valid_until>='$D1') ORDER BY content_id LIMIT 1")
[ -n "$item" ] || fail "no content usable on $D1"
sqlA "SELECT advisor_id FROM deliveries WHERE date='$D1' ORDER BY advisor_id LIMIT 40" >"$WORK/segment.txt"
clk="${D1}T11:00:00+05:30@$(now_ms)*1"
DAYBREAK_CLOCK=$clk on a "$OP" send-now --content "$item" --segment "list:$WORK/segment.txt" --deadline-minutes 5 --yes \
  --reason "e2e: urgent on PostgreSQL" --json >"$WORK/s.json" 2>"$WORK/s.err" || fail "send-now on PostgreSQL exited $?: $(cat "$WORK/s.err")"
urgent=$(json 'j["run_id"]' <"$WORK/s.json")
assert_eq "$(json 'j["ledger"]' <"$WORK/s.json")" "postgresql" "send-now: ledger"
assert_eq "$(json 'j["published"]["inserted"]["deliveries"]' <"$WORK/s.json")" "40" "urgent deliveries published"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$urgent AND content_id='$item' AND state='planned'")" "40" "urgent deliveries in PostgreSQL"
# Not the day's plan to the dead-man's switch (pg_runs_of_day): its kind is published with it.
assert_eq "$(pg "SELECT kind FROM runs WHERE run_id=$urgent")" "urgent" "the urgent run's kind in PostgreSQL"
DAYBREAK_HOST_ID=host-b DAYBREAK_CLOCK=$clk on b "$DISPATCH" --json >"$WORK/d.json" 2>"$WORK/d.err" || fail "dispatch on B exited $?"
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$urgent")" "closed" "urgent run"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$urgent AND accepted_at IS NOT NULL AND accepted_at <= deadline_at")" "40" "urgent deliveries accepted by their deadline"
json '[(r["run_id"], r["kind"]) for r in j["runs"]]' <"$WORK/d.json" | grep -q "^\[($urgent, 'urgent')\]$" ||
  fail "dispatch on B did not take run $urgent as urgent: $(cat "$WORK/d.json")"
echo "ok d: send-now with url on A (SQLite run $(json 'j["sqlite_run_id"]' <"$WORK/s.json"), PostgreSQL run $urgent) sent by a dispatch on B"
