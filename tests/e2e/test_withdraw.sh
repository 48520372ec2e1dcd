#!/usr/bin/env bash
# Compliance pull before the morning run: at 05:50 IST an operator
# withdraws an item assigned to 500 advisors; every one of them gets a replacement in their
# language and receives it on time; the withdrawn item is never sent; the audit log names who
# pulled it and why.
source "$(dirname "$0")/common.sh"

D=2026-12-08
start_sim wd --mps 80 --time-scale 10 --seed 17 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
"$OP" generate --advisors 1200 --date "$D" --out "$WORK/data" --seed 23 --other-tz-pct 0 --channels whatsapp --assigned-pct 100 >/dev/null
"$OP" import content "$WORK/data/content.csv" >/dev/null
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
# 500 English-speaking advisors get the same editorial item
python3 - "$WORK/data" <<'PY'
import csv, sys
d = sys.argv[1]
en = [r["advisor_id"] for r in csv.DictReader(open(d + "/advisors.csv")) if r["language"] == "en" and r["opted_in"] == "true"][:500]
assert len(en) == 500, len(en)
rows = list(csv.DictReader(open(d + "/assignments.csv")))
assigned = {r["advisor_id"] for r in rows}
for a in en:
    if a not in assigned:
        rows.append({"advisor_id": a, "date": rows[0]["date"], "content_id": "c-en-1"})
for r in rows:
    if r["advisor_id"] in en:
        r["content_id"] = "c-en-1"
    elif r["content_id"] == "c-en-1":
        r["content_id"] = "c-en-2"
with open(d + "/assignments.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["advisor_id", "date", "content_id"])
    w.writeheader()
    w.writerows(rows)
PY
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$ASSIGN" --date "$D" >/dev/null
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$D" >/dev/null
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
pulled=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='c-en-1'")
assert_eq "$pulled" "500" "deliveries of the item before the pull"

DAYBREAK_CLOCK="${D}T05:50:00+05:30@$(now_ms)*1" "$OP" content withdraw c-en-1 --reason "compliance: misleading claim" --json >"$WORK/w.json"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='c-en-1'")" "0" "deliveries still on the pulled item"
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log"

# the 500 advisors: each accepted once, on time, with other content in English
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d JOIN content c USING (content_id) WHERE run_id=$run
  AND d.advisor_id IN (SELECT advisor_id FROM advisors WHERE language='en') AND d.advisor_id IN
  (SELECT advisor_id FROM delivery_changes ch JOIN deliveries x USING (delivery_id) WHERE ch.kind='withdraw')
  AND c.content_id <> 'c-en-1' AND c.language='en' AND d.state='accepted' AND d.accepted_at <= d.deadline_at")" "500" \
  "replacements delivered on time"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND a.outcome='accepted' AND d.content_id='c-en-1'")" "0" "sends of the withdrawn item"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "provider-side duplicates"
audited=$(sql "SELECT COUNT(*) FROM audit_log WHERE command LIKE 'content withdraw%' AND target='c-en-1'
  AND reason='compliance: misleading claim' AND actor='$(id -un)'")
[ "$audited" -ge 1 ] || fail "no audit row names who pulled c-en-1"
echo "ok: item pulled at 05:50 from 500 advisors; all 500 received a replacement on time; audited"
