#!/usr/bin/env bash
# `daybreak import` during a live dispatch does not stall sends: the import reads and validates
# its whole input before it takes the write lock, so a slow input (here standard input that pauses
# for 3 s in the middle of 60,000 advisors) never holds the lock, and the write itself is short.
#  1. while a dispatch sends a 2,000-delivery run, the run's accepted count is sampled every
#     ~100 ms; during the import it keeps rising (no flat stretch of 2 s or more; holding the lock
#     while reading would stall it for the whole pause), the import succeeds, the run ends >= 99%
#  2. the same kind of file with one bad row imports nothing
source "$(dirname "$0")/common.sh"

D=2026-12-07
start_sim live --mps 80 --time-scale 2 --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 2000 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$planned" -gt 1900 ] || fail "expected about 2000 planned deliveries, got $planned"
seeded=$(sql "SELECT COUNT(*) FROM advisors")

# 60,000 other advisors (ids renamed so they add to the seeded ones rather than update them).
"$OP" generate --advisors 60000 --date "$D" --out "$WORK/big" --seed 12 --channels whatsapp >/dev/null
sed 's/^adv-/imp-/' "$WORK/big/advisors.csv" >"$WORK/big.csv"

# --- 1. import while the run sends -------------------------------------------------------------
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:58+05:30" 2) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
dispatch_pid=$!
acc() { sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'"; }
for _ in $(seq 1 300); do [ "$(acc)" -gt 100 ] && break; sleep 0.05; done
[ "$(acc)" -gt 100 ] || fail "the dispatch did not start sending: $(cat "$WORK/d.log")"

# Standard input that pauses mid-file, as a slow producer would.
( head -n 30001 "$WORK/big.csv"; sleep 3; tail -n +30002 "$WORK/big.csv" ) |
  "$OP" import advisors - --json >"$WORK/imp.json" 2>"$WORK/imp.log" &
import_pid=$!
: >"$WORK/samples"
while kill -0 "$import_pid" 2>/dev/null; do
  echo "$(now_ms) $(acc)" >>"$WORK/samples"
  sleep 0.1
done
rc=0
wait "$import_pid" || rc=$?
echo "$(now_ms) $(acc)" >>"$WORK/samples"
assert_eq "$rc" "0" "import exit status ($(cat "$WORK/imp.log"))"
final_in_window=$(tail -n 1 "$WORK/samples" | cut -d' ' -f2)
[ "$final_in_window" -lt "$planned" ] || fail "the run finished during the import; nothing was tested"

# The longest stretch (ms) with no new acceptance while the import ran, and how many samples rose.
read -r flat rises window < <(python3 - "$WORK/samples" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
flat, rises, since = 0, 0, rows[0][0]
for (t0, a0), (t1, a1) in zip(rows, rows[1:]):
    if a1 > a0:
        rises += 1
        since = t1
    flat = max(flat, t1 - since)
print(flat, rises, rows[-1][0] - rows[0][0])
PY
)
echo "import took ${window} ms; longest stretch without a new acceptance ${flat} ms; ${rises} rising samples"
[ "$window" -ge 3000 ] || fail "the import took ${window} ms, less than its input's 3 s pause"
[ "$flat" -lt 2000 ] || fail "sends stalled for ${flat} ms during the import (the write lock was held too long)"
[ "$rises" -ge 10 ] || fail "only $rises samples saw new acceptances during the import"

assert_eq "$(json 'j["ok"]' <"$WORK/imp.json")" "True" "import ok"
assert_eq "$(json 'j["imported"]' <"$WORK/imp.json")" "60000" "imported rows"
lock_ms=$(json 'j["write_lock_ms"]' <"$WORK/imp.json")
grep -q "written in .* ms (write lock held)" "$WORK/imp.log" || fail "no write-lock line in the log: $(cat "$WORK/imp.log")"
assert_eq "$(sql "SELECT COUNT(*) FROM advisors")" "$((seeded + 60000))" "advisors stored"

wait "$dispatch_pid" || fail "dispatch failed: $(tail -n 5 "$WORK/d.log")"
assert_eq "$(json 'j["status"]' <"$WORK/d.json")" "done" "dispatch status"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$planned" "accepted deliveries"
sla=$(json 'j["runs"][0]["sla_pct"]' <"$WORK/d.json")
python3 -c "import sys; sys.exit(0 if float('$sla') >= 99 else 1)" || fail "SLA $sla% < 99%"
echo "ok 1: 60000 advisors imported during the run (write lock held ${lock_ms} ms), SLA ${sla}%"

# --- 2. one bad row: nothing imported ------------------------------------------------------------
sed 's/^imp-/bad-/' "$WORK/big.csv" | sed '20001s/,+9198[0-9]*,/,+9198,/' >"$WORK/bad.csv"
before=$(sql "SELECT COUNT(*) FROM advisors")
rc=0
"$OP" import advisors "$WORK/bad.csv" --json >"$WORK/bad.json" 2>/dev/null || rc=$?
assert_eq "$rc" "1" "bad file exit status"
assert_eq "$(json 'j["error_count"]' <"$WORK/bad.json")" "1" "problems in the bad file"
assert_eq "$(json 'j["errors"][0]["line"]' <"$WORK/bad.json")" "20001" "the bad row's line"
assert_eq "$(json 'j["imported"]' <"$WORK/bad.json")" "0" "imported from the bad file"
assert_eq "$(sql "SELECT COUNT(*) FROM advisors")" "$before" "advisors after the bad file"
echo "ok 2: a file with one bad row imported nothing"
