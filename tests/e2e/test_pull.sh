#!/usr/bin/env bash
# Pulled or expired content is never sent (domain/emergency.hpp). Hindi advisors, no Hindi
# fallback or emergency item; the simulator logs every request it receives (--request-log):
#  (a) their item is pulled at 05:50 and English emergency items exist: not one request carries
#      the pulled item; every one of them receives an English emergency item, on time;
#  (c) their item has expired by the delivery day (found at send time): the same;
#  (b) their item is pulled and there is no emergency item at all: nothing of it is sent, the
#      deliveries are held with a reason, the run closes, and content_held is posted to the
#      on-call webhook.
source "$(dirname "$0")/common.sh"

D=2026-12-08
D2=2026-12-09
D3=2026-12-10
REQ=$WORK/requests.log
start_sim pull --mps 80 --time-scale 10 --seed 29 --transient-rate 0 --permanent-rate 0 --request-log "$REQ"

# The alert webhook sink (common.sh): one JSON line per POST in $WORK/hooks.ndjson.
start_hook
write_config "$SIM_PORT" "[alerts]
chain = [\"oncall\"]
[alerts.levels.oncall]
webhooks = [\"http://127.0.0.1:$HOOK/oncall\"]"

"$OP" generate --advisors 300 --date "$D" --out "$WORK/data" --seed 31 --other-tz-pct 0 --channels whatsapp --assigned-pct 100 >/dev/null
# Hindi has neither fallback nor emergency items; every Hindi advisor gets c-hi-1 on D, c-hi-2 on
# D2, c-hi-3 on D3; English advisors keep their items.
python3 - "$WORK/data" "$D" "$D2" "$D3" <<'PY'
import csv, sys
d, days = sys.argv[1], sys.argv[2:]
rows = list(csv.DictReader(open(d + "/content.csv")))
for r in rows:
    if r["language"] == "hi":
        r["fallback_eligible"] = "false"
        r["emergency"] = "false"
with open(d + "/content.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)
adv = {r["advisor_id"]: r["language"] for r in csv.DictReader(open(d + "/advisors.csv"))}
base = list(csv.DictReader(open(d + "/assignments.csv")))
out = []
for i, day in enumerate(days, start=1):
    for r in base:
        out.append({"advisor_id": r["advisor_id"], "date": day,
                    "content_id": "c-hi-%d" % i if adv[r["advisor_id"]] == "hi" else r["content_id"]})
with open(d + "/assignments.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["advisor_id", "date", "content_id"]); w.writeheader(); w.writerows(out)
PY
"$OP" import content "$WORK/data/content.csv" >/dev/null
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
for day in "$D" "$D2" "$D3"; do
  clk="$(date -d "$day -1 day" +%F)T21:30:00+05:30@$(now_ms)*1"
  DAYBREAK_CLOCK=$clk "$ASSIGN" --date "$day" >/dev/null
  DAYBREAK_CLOCK=$clk "$PLAN" --date "$day" --json >"$WORK/plan-$day.json" 2>"$WORK/plan-$day.log"
done
HI=$(sql "SELECT COUNT(*) FROM deliveries d JOIN advisors a USING (advisor_id) WHERE d.date='$D' AND a.language='hi'")
[ "$HI" -gt 20 ] || fail "too few Hindi advisors planned: $HI"
# plan-deliveries names the language without an emergency item, and says the English one covers it.
assert_eq "$(json '[(l["language"], l["covered_by"]) for l in j["languages_without_emergency"]]' <"$WORK/plan-$D.json")" \
  "[('hi', 'en')]" "plan report: languages without an emergency item"
grep -q "no emergency item valid on $D in language hi" "$WORK/plan-$D.log" || fail "plan warning: $(cat "$WORK/plan-$D.log")"
sent_with() { grep -c "\"text\":\"$1\"" "$REQ" || true; }  # requests whose template carries this title

# --- (a) pulled at 05:50, English emergency items exist ---------------------------------------
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
rc=0
DAYBREAK_CLOCK="${D}T05:50:00+05:30@$(now_ms)*1" "$OP" content withdraw c-hi-1 --reason "compliance: pull" --json >"$WORK/wa.json" || rc=$?
assert_eq "$rc" "1" "withdraw exit (no ranked Hindi replacement)"
assert_eq "$(json 'j["deliveries_emergency"]' <"$WORK/wa.json")" "$HI" "deliveries given an emergency item at pull time"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='c-hi-1'")" "0" "deliveries still on the pulled item"
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) timeout 120 "$DISPATCH" --run "$run" --json >"$WORK/da.json" 2>"$WORK/da.log"
assert_eq "$(sent_with 'Morning brief 1 (hi)')" "0" "(a) requests carrying the pulled item"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d JOIN advisors a USING (advisor_id) WHERE d.run_id=$run AND a.language='hi'
  AND d.content_id IN ('c-en-10', 'c-en-11') AND d.source='emergency' AND d.state='accepted' AND d.accepted_at <= d.deadline_at")" \
  "$HI" "(a) Hindi advisors who received an English emergency item on time"
en_em=$(( $(sent_with 'Market note 10 (en)') + $(sent_with 'Market note 11 (en)') ))
assert_eq "$en_em" "$HI" "(a) requests carrying an English emergency item"
echo "ok (a): c-hi-1 pulled at 05:50; 0 requests carry it; $HI Hindi advisors got an English emergency item on time"

# --- (c) expired by the delivery day, found at send time --------------------------------------
sql "UPDATE content SET valid_until='$D' WHERE content_id='c-hi-2'"  # a corrected import: it ends the day before D2
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:25+05:30" 10) timeout 120 "$DISPATCH" --run "$run2" --json >"$WORK/dc.json" 2>"$WORK/dc.log"
assert_eq "$(sent_with 'Morning brief 2 (hi)')" "0" "(c) requests carrying the expired item"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d JOIN advisors a USING (advisor_id) WHERE d.run_id=$run2 AND a.language='hi'
  AND d.content_id IN ('c-en-10', 'c-en-11') AND d.state='accepted'")" "$HI" "(c) Hindi advisors who received an English emergency item"
assert_eq "$(json 'j["emergency_substitutions"]' <"$WORK/dc.json")" "$HI" "(c) substitutions dispatch reports"
echo "ok (c): c-hi-2 expired before $D2; 0 requests carry it; $HI emergency substitutions"

# --- (b) no emergency item at all -------------------------------------------------------------
at3() { echo "${D3}T$1+05:30@$(now_ms)*1"; }
# (exit 1: they stood in for c-hi-2 on D2, and no ranked Hindi replacement exists for that day)
DAYBREAK_CLOCK=$(at3 05:40:00) "$OP" content withdraw c-en-10 --reason "emergency item retired" >/dev/null || true
DAYBREAK_CLOCK=$(at3 05:40:00) "$OP" content withdraw c-en-11 --reason "emergency item retired" >/dev/null || true
assert_eq "$(sql "SELECT COUNT(*) FROM content WHERE emergency=1 AND withdrawn_at IS NULL")" "0" "emergency items left"
rc=0; DAYBREAK_CLOCK=$(at3 05:45:00) "$OP" doctor --date "$D3" --json --min-free-mb 1 >"$WORK/doctor.json" || rc=$?
assert_eq "$rc" "1" "doctor exit without any emergency item"
assert_eq "$(json '[c["ok"] for c in j["checks"] if c["name"]=="emergency_content"][0]' <"$WORK/doctor.json")" "False" "doctor emergency_content row"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
rc=0
DAYBREAK_CLOCK=$(at3 05:50:00) "$OP" content withdraw c-hi-3 --reason "compliance: pull" --json >"$WORK/wb.json" || rc=$?
assert_eq "$rc" "1" "withdraw exit with held deliveries"
assert_eq "$(json 'j["deliveries_held"]' <"$WORK/wb.json")" "$HI" "deliveries held at pull time"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND content_id='c-hi-3' AND state IN ('planned','retry_wait')")" "0" \
  "pending deliveries still on the pulled item"
rc=0; DAYBREAK_CLOCK=$(clock_at "${D3}T05:59:25+05:30" 10) timeout 120 "$DISPATCH" --run "$run3" --json >"$WORK/db.json" 2>"$WORK/db.log" || rc=$?
assert_eq "$rc" "1" "(b) dispatch exit: the held deliveries count against the SLA"
assert_eq "$(sent_with 'Morning brief 3 (hi)')" "0" "(b) requests carrying the pulled item"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run3")" "closed" "(b) the run closes"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='dead' AND attempts=0
  AND last_error='held: content c-hi-3 withdrawn; no emergency item in hi or en'")" "$HI" "(b) deliveries held with the reason"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state NOT IN ('accepted','delivered','read','dead','cancelled')")" \
  "0" "(b) rows not final"
# The SLA counts them against the run: eligible, not on time.
total3=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3")
ontime3=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted' AND accepted_at <= deadline_at")
assert_eq "$ontime3" "$((total3 - HI))" "(b) on time: everyone but the held"
"$OP" dead list --error held --date "$D3" --json >"$WORK/held.ndjson"
assert_eq "$(wc -l <"$WORK/held.ndjson")" "$HI" "(b) dead list --error held"
# content_held reaches the on-call webhook (dispatch queues it; the notifier or alerts check posts it)
DAYBREAK_CLOCK=$(clock_at "${D3}T06:10:00+05:30" 1) "$OP" alerts check >/dev/null
assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='content_held' AND subject='content:c-hi-3' AND state='firing'")" "1" \
  "(b) content_held firing"
grep -q "content_held" "$WORK/hooks.ndjson" 2>/dev/null || fail "(b) no content_held webhook: $(cat "$WORK/hooks.ndjson" 2>/dev/null)"
grep "content_held" "$WORK/hooks.ndjson" | head -1 | grep -q "hi: $HI on $D3" || fail "(b) webhook does not name language and count"
echo "ok (b): no emergency item: $HI deliveries held, 0 sent, run closed, content_held posted to the on-call webhook"
