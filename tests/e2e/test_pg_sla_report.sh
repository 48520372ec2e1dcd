#!/usr/bin/env bash
# sla-report on the PostgreSQL ledger ([database] url), against a PostgreSQL server started for
# the test (initdb + pg_ctl as the postgres user, unix socket in the work directory, random port)
# and the provider simulator on 127.0.0.1:
#  1. a day planned and dispatched on SQLite is copied with `daybreak migrate-ledger`, then the
#     same spool of signed status callbacks (delivered on time and late, read, failed after
#     accept; the rest left unknown) is ingested into each ledger with `daybreak ingest`:
#     `sla-report --date` (JSON, text and --html) and `sla-report list` read from PostgreSQL
#     equal those read from the SQLite file, the delivered/read/unknown/failed-after-accept
#     figures included (as many as the spool holds; read as psql counts), except the ledger's
#     name and generated_at; the copy brought the closed run's stored report (stored_report
#     true, `list` shows its SLA % as SQLite's, to the last digit), and `sla-report trend` is
#     the same on both
#  2. a second day is planned on SQLite, copied, and dispatched on PostgreSQL: sla-report with
#     the url counts as on time, eligible, dead and attempts exactly what psql counts in the
#     deliveries and delivery_attempts tables, while the SQLite copy still says nothing was sent;
#     the dispatch stored the run's report in PostgreSQL once (its counts psql's, its SLA % the
#     one dispatch --json gave and exited by), which --run prints (report_source stored), list
#     and trend read and `daybreak export reports` streams; --html reads PostgreSQL too; `sla-report --watch` with the url follows the
#     run while it is dispatched there (dispatch's own figures from the run's progress) until it
#     closes, its last frame counting what psql counts
# Scale: PG_SLA_N advisors a day (default 1500) on 4 senders of 80 msg/s.
source "$(dirname "$0")/common.sh"
require_test_pg
D1=2026-12-14
D2=2026-12-15
N=${PG_SLA_N:-1500}

# --- PostgreSQL for the test, run as an unprivileged user (as test_pg_two_hosts.sh) ---
start_test_pg
# set +e: under errexit the failing `(exit $rc)` would end the trap before cleanup stops the simulator
trap 'rc=$?; set +e; [ -z "${dpid:-}" ] || kill "$dpid" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT  # cleanup keeps the work directory of a failure

# --- two days planned on SQLite, 4 senders; some sends fail, a few for good ---
start_sim pgsla --mps 160 --seed 7 --transient-rate 0.03 --permanent-rate 0.003 --latency-ms-median 40 --latency-ms-p99 200
senders=""
for i in 2 3 4; do
  senders+="[[whatsapp.senders]]
id = \"wa-$i\"
phone_number_id = \"10000000$i\"
token = \"test-token\"
mps = 80
"
done
write_config "$SIM_PORT" "$senders"
LITE_TOML=$WORK/daybreak.toml
SECRET="app-secret-pg-sla"  # `daybreak ingest` verifies the spooled callbacks with it
sed -i "s/^\[whatsapp\]\$/[whatsapp]\napp_secret = \"$SECRET\"\nverify_token = \"v\"/" "$LITE_TOML"
grep -q "^app_secret = \"$SECRET\"" "$LITE_TOML" || fail "no app_secret in the config"
seed_day "$N" "$D1"
seed_day "$N" "$D2"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
n2=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2")
[ "$n2" -ge $((N * 9 / 10)) ] || fail "planned $n2 deliveries for $N advisors"

# the PostgreSQL config: the same file with [database] url, and this host's own SQLite file (where
# a dispatch on PostgreSQL keeps its alerts) in the work directory
python3 - "$LITE_TOML" "$WORK/pg.toml" "$URL" "$WORK/host.db" <<'PY'
import re, sys
src, dst, url, host_db = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), open(src).read(), count=1))
PY
grep -q '^url = ' "$WORK/pg.toml" || fail "pg.toml has no url"

# --- 1. a day dispatched on SQLite, copied: the same report from both ledgers ---
DAYBREAK_CLOCK="${D1}T05:59:55+05:30@$(now_ms)*1" "$DISPATCH" --run "$run1" --json >"$WORK/d1.json" 2>"$WORK/d1.log"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run1")" "closed" "day 1 run state on SQLite"
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D1" --json >"$WORK/migrate1.json"
# The provider's statuses for day 1, by position among the accepted WhatsApp rows (i mod 20):
# 0-7 delivered 2 s after acceptance, 8-9 delivered 2 min after the deadline, 10-13 delivered
# then read, 14 failed (131026) after acceptance, 15-19 no status (unknown). Signed as Meta
# does, 40 statuses a request; the same files ingested into each ledger.
sql "SELECT delivery_id, provider_message_id, accepted_at, deadline_at FROM deliveries
     WHERE run_id=$run1 AND state='accepted' AND channel='whatsapp' AND provider_message_id IS NOT NULL
     ORDER BY delivery_id" >"$WORK/accepted1.txt"
python3 - "$WORK/accepted1.txt" "$WORK/spool-lite" "$SECRET" "$WORK/expect1.json" <<'PY'
import hashlib, hmac, json, os, sys
rows, spool, secret, expect = sys.argv[1:]
os.makedirs(spool)
statuses = []
want = {"accepted": 0, "delivered": 0, "delivered_on_time": 0, "read": 0, "failed_after_accept": 0}
for i, line in enumerate(open(rows).read().split()):
    _, wamid, acc, dl = line.split("|")
    acc, dl = int(acc), int(dl)
    want["accepted"] += 1
    k = i % 20
    def st(status, ms, **extra):
        statuses.append(dict({"id": wamid, "status": status, "timestamp": str(ms // 1000), "recipient_id": "919810012345"}, **extra))
    if k <= 7 or 10 <= k <= 13:
        st("delivered", acc + 2000)
        want["delivered"] += 1
        want["delivered_on_time"] += int((acc + 2000) // 1000 * 1000 <= dl)
    elif k <= 9:
        st("delivered", dl + 120000)
        want["delivered"] += 1
    if 10 <= k <= 13:
        st("read", acc + 30000)
        want["read"] += 1
    if k == 14:
        st("failed", acc + 1000, errors=[{"code": 131026, "title": "Message undeliverable"}])
        want["failed_after_accept"] += 1
want["unknown"] = want["accepted"] - want["delivered"] - want["failed_after_accept"]
for n in range(0, len(statuses), 40):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "100000002"},
                  "statuses": statuses[n:n + 40]}}]}]}).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    open("%s/%06d.req" % (spool, n), "wb").write(b"X-Hub-Signature-256: " + sig.encode() + b"\r\n\r\n" + body)
json.dump(want, open(expect, "w"))
assert all(want[k] > 0 for k in ("delivered", "delivered_on_time", "read", "failed_after_accept", "unknown")), want
PY
cp -r "$WORK/spool-lite" "$WORK/spool-pg"
"$OP" --config "$LITE_TOML" ingest --spool "$WORK/spool-lite" --json >"$WORK/ingest-lite.json" 2>"$WORK/ingest-lite.log" \
  || { cat "$WORK/ingest-lite.log" >&2; fail "ingest into SQLite"; }
"$OP" --config "$WORK/pg.toml" ingest --spool "$WORK/spool-pg" --json >"$WORK/ingest-pg.json" 2>"$WORK/ingest-pg.log" \
  || { cat "$WORK/ingest-pg.log" >&2; fail "ingest into PostgreSQL"; }
assert_eq "$(json 'j["ledger"], j["rejected"], j["pending"]' <"$WORK/ingest-pg.json")" "postgresql [] 0" "ingest into PostgreSQL"
assert_eq "$(json 'j["applied"], j["new_updates"], j["errors_recorded"]' <"$WORK/ingest-pg.json")" \
  "$(json 'j["applied"], j["new_updates"], j["errors_recorded"]' <"$WORK/ingest-lite.json")" "statuses applied, PostgreSQL against SQLite"
REPORT_CLOCK="${D1}T10:00:00+05:30@$(now_ms)*1"
report() {  # report CONFIG OUT ARGS…: sla-report's output in OUT, its exit code in OUT.rc
  local cfg=$1 out=$2; shift 2
  local rc=0
  DAYBREAK_CONFIG=$cfg DAYBREAK_CLOCK=$REPORT_CLOCK "$REPORT" "$@" >"$out" 2>"$out.err" || rc=$?
  echo "$rc" >"$out.rc"
}
report "$LITE_TOML" "$WORK/lite1.json" --date "$D1" --json --html "$WORK/lite1.html"
report "$WORK/pg.toml" "$WORK/pg1.json" --date "$D1" --json --html "$WORK/pg1.html"
report "$LITE_TOML" "$WORK/lite1.txt" --date "$D1"
report "$WORK/pg.toml" "$WORK/pg1.txt" --date "$D1"
report "$LITE_TOML" "$WORK/lite1.list" list --json
report "$WORK/pg.toml" "$WORK/pg1.list" list --json
report "$LITE_TOML" "$WORK/lite1.trend" trend --to "$D1" --days 3 --json
report "$WORK/pg.toml" "$WORK/pg1.trend" trend --to "$D1" --days 3 --json
for f in lite1.json pg1.json lite1.txt pg1.txt lite1.list pg1.list lite1.trend pg1.trend; do
  [ "$(cat "$WORK/$f.rc")" -le 1 ] || { cat "$WORK/$f.err" >&2; fail "sla-report ($f) exited $(cat "$WORK/$f.rc")"; }
done
assert_eq "$(cat "$WORK/pg1.json.rc")" "$(cat "$WORK/lite1.json.rc")" "exit code, PostgreSQL against SQLite"
assert_eq "$(cat "$WORK/pg1.txt.rc")" "$(cat "$WORK/lite1.txt.rc")" "exit code of the text form"
PG_READ=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='read'")
python3 - "$WORK" "$N" "$PG_READ" <<'PY' || fail "the report from PostgreSQL differs from the SQLite one (see above)"
import json, re, sys
w, n, psql_read = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lite = json.load(open(w + "/lite1.json"))
pg = json.load(open(w + "/pg1.json"))
want = json.load(open(w + "/expect1.json"))
STATUS = ["delivered_on_time", "delivered", "read", "unknown", "failed_after_accept", "delivered_sla_pct",
          "read_pct", "unknown_pct", "failed_after_accept_pct", "live_delivered_pct"]
# not vacuous: a real day with failures and every kind of status on SQLite
assert lite["ledger"] == "sqlite" and "notes" not in lite, lite.get("ledger")
assert lite["eligible"] > n * 0.9 and lite["on_time"] > n * 0.9 and lite["attempts"] > lite["eligible"], lite
assert lite["top_failure_reasons"], "no failure reasons on day 1"
assert lite["runs"][0]["stored_report"] is True
# the delivery truth from PostgreSQL: the statuses ingested there, counted (not null, not 0)
for k in ("delivered", "delivered_on_time", "read", "unknown", "failed_after_accept"):
    assert pg[k] == want[k] and want[k] > 0, (k, pg[k], want[k])
assert pg["read"] == psql_read, ("read", pg["read"], "psql", psql_read)
for k in STATUS:
    assert type(pg[k]) in (int, float), (k, pg[k])
    for r in pg["runs"]:
        assert k not in r or type(r[k]) in (int, float), (k, r)
# the documented difference: the ledger's name; the copy brought the closed run's stored report
assert pg["ledger"] == "postgresql", pg["ledger"]
assert "notes" not in pg, pg["notes"]
for r in pg["runs"] + pg["urgent"]:
    assert r["stored_report"] is True, r
def strip(x):
    x = json.loads(json.dumps(x))
    for k in ["ledger", "notes", "generated_at", "generated_at_ms"]: x.pop(k, None)
    for r in x["runs"] + x["urgent"]: r.pop("stored_report", None)
    return x
a, b = strip(lite), strip(pg)
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k): print("field", k, "sqlite:", a.get(k), "postgresql:", b.get(k))
    sys.exit(1)
# the text form: the same lines, the delivered/read/unknown/failed-after-accept line included, but for the note
def lines(p):
    return [l for l in open(p).read().splitlines() if not l.startswith("  note:")]
lt, pt = lines(w + "/lite1.txt"), lines(w + "/pg1.txt")
assert lt == pt, [(x, y) for x, y in zip(lt, pt) if x != y] or (len(lt), len(pt))
assert any(l.startswith("  delivered within deadline ") and "(%d)" % want["read"] in l for l in pt), pt
assert "note:" not in open(w + "/pg1.txt").read()
# the HTML page: the same bytes but for the notes and the line naming the ledger and the time
def page(p):
    h = open(p).read()
    h = re.sub(r"<p class='small note'>.*?</p>", "", h)
    return re.sub(r"<p class='small'>Generated .*? ledger\.</p>", "", h)
lh, ph = page(w + "/lite1.html"), page(w + "/pg1.html")
if lh != ph:
    i = next((i for i in range(min(len(lh), len(ph))) if lh[i] != ph[i]), min(len(lh), len(ph)))
    print("HTML differs at", i, "sqlite:", lh[i - 80:i + 80], "postgresql:", ph[i - 80:i + 80])
    sys.exit(1)
assert "delivered within the deadline (status callbacks)" in ph
# list: the same runs, each with the stored report the copy brought, its SLA % SQLite's exactly
ll = [json.loads(l) for l in open(w + "/lite1.list") if l.strip()]
pl = [json.loads(l) for l in open(w + "/pg1.list") if l.strip()]
assert [(r["run_id"], r["sla_pct"]) for r in ll if r["date"] == "2026-12-14"] == [(r["run_id"], r["sla_pct"]) for r in pl], (ll, pl)
assert all(r["ledger"] == "postgresql" and r["stored_report"] is True and r["sla_pct"] is not None for r in pl), pl
# trend: the same days and figures, the closed run's stored report on both
lt = json.load(open(w + "/lite1.trend"))
pt = json.load(open(w + "/pg1.trend"))
assert pt["ledger"] == "postgresql" and "notes" not in pt and pt["summary"]["runs_without_report"] == 0, pt
assert lt["dates"][-1]["reported_runs"] == 1 and lt["dates"][-1]["eligible"] == lite["eligible"], lt["dates"][-1]
assert pt["dates"][-1]["read"] == want["read"] and pt["summary"]["failed_after_accept"] == want["failed_after_accept"], pt
for t in (lt, pt):
    t.pop("ledger", None); t.pop("notes", None)
assert lt == pt, (lt, pt)
print("day 1: %d eligible, %d on time, %d attempts, %d failure reasons; %d delivered (%d on time), %d read, %d unknown, "
      "%d failed after accept: equal on both ledgers"
      % (pg["eligible"], pg["on_time"], pg["attempts"], len(pg["top_failure_reasons"]), pg["delivered"],
         pg["delivered_on_time"], pg["read"], pg["unknown"], pg["failed_after_accept"]))
PY

# --- 2. a day dispatched on PostgreSQL: sla-report reads it there ---
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D2" --json >"$WORK/migrate2.json"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state='planned'")" "$n2" "day 2 copied to PostgreSQL"
clock2="${D2}T05:59:55+05:30@$(now_ms)*1"
DAYBREAK_CONFIG=$WORK/pg.toml DAYBREAK_CLOCK=$clock2 "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" &
dpid=$!
# the live view from PostgreSQL while the run is dispatched there: a frame a second until it closes
rc=0
DAYBREAK_CONFIG=$WORK/pg.toml DAYBREAK_CLOCK=$clock2 timeout 300 "$REPORT" --watch --run "$run2" --json \
  >"$WORK/watch.ndjson" 2>"$WORK/watch.err" || rc=$?
d2rc=0
wait "$dpid" || d2rc=$?
[ "$d2rc" -le 1 ] || { cat "$WORK/d2.log" >&2; fail "dispatch on PostgreSQL exited $d2rc"; }
assert_eq "$rc" "0" "sla-report --watch on PostgreSQL ($(tail -2 "$WORK/watch.err"))"
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run2")" "closed" "day 2 run state on PostgreSQL"
REPORT_CLOCK="${D2}T10:00:00+05:30@$(now_ms)*1"
report "$WORK/pg.toml" "$WORK/pg2.json" --date "$D2" --json
report "$WORK/pg.toml" "$WORK/pg2.txt" --date "$D2"
report "$WORK/pg.toml" "$WORK/pg2run.json" --run "$run2" --json --html "$WORK/pg2.html"
report "$LITE_TOML" "$WORK/lite2.json" --date "$D2" --json
for f in pg2.json pg2.txt pg2run.json lite2.json; do
  [ "$(cat "$WORK/$f.rc")" -le 1 ] || { cat "$WORK/$f.err" >&2; fail "sla-report ($f) exited $(cat "$WORK/$f.rc")"; }
done
on_time_psql=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state IN ('accepted','delivered','read') AND accepted_at <= deadline_at")
eligible_psql=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state <> 'cancelled'")
dead_psql=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state = 'dead'")
attempts_psql=$(pg "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run2")
[ "$on_time_psql" -gt $((n2 * 9 / 10)) ] || fail "dispatch on PostgreSQL put only $on_time_psql of $n2 on time"
assert_eq "$(json 'j["on_time"]' <"$WORK/pg2.json")" "$on_time_psql" "sla-report on time against psql's count"
assert_eq "$(json 'j["eligible"]' <"$WORK/pg2.json")" "$eligible_psql" "sla-report eligible against psql's count"
assert_eq "$(json 'j["dead"]' <"$WORK/pg2.json")" "$dead_psql" "sla-report dead against psql's count"
assert_eq "$(json 'j["attempts"]' <"$WORK/pg2.json")" "$attempts_psql" "sla-report attempts against psql's count"
assert_eq "$(json 'j["ledger"]' <"$WORK/pg2.json")" "postgresql" "ledger"
assert_eq "$(json 'j["runs"][0]["state"]' <"$WORK/pg2.json")" "closed" "the run's state as PostgreSQL has it"
assert_eq "$(json 'j["on_time"]' <"$WORK/pg2run.json")" "$on_time_psql" "sla-report --run on time"
assert_eq "$(json 'j["report_source"]' <"$WORK/pg2run.json")" "stored" "a closed run on PostgreSQL prints its stored report"
# the report the dispatch stored: once, for its close, its counts psql's; dispatch --json gave its SLA % and exited by it
assert_eq "$(pg "SELECT run_id || ':' || (written_by = 'migrate-ledger')::text FROM run_reports ORDER BY run_id" | tr '\n' ' ')" \
  "$run1:true $run2:false " "stored run reports: day 1's copied by migrate-ledger, day 2's by its dispatch"
assert_eq "$(pg "SELECT COUNT(*) FROM run_reports s JOIN runs r USING (run_id) WHERE s.run_id=$run2 AND s.closed_at = r.finished_at")" "1" \
  "the stored report is for the run's close"
pg "SELECT report FROM run_reports WHERE run_id=$run2" >"$WORK/stored2.json"
assert_eq "$(json 'j["eligible"], j["on_time"], j["dead"], j["attempts"], j["closed"]' <"$WORK/stored2.json")" \
  "$eligible_psql $on_time_psql $dead_psql $attempts_psql True" "the stored report's counts against psql"
python3 - "$WORK/d2.json" "$WORK/stored2.json" "$WORK/pg2run.json" "$run2" "$d2rc" <<'PY' || fail "dispatch --json, its exit code or sla-report --run against the stored report"
import json, sys
d, stored, printed, run, rc = [json.load(open(p)) for p in sys.argv[1:4]] + [int(sys.argv[4]), int(sys.argv[5])]
r = [x for x in d["runs"] if x["run_id"] == run][0]
assert (r["sla_pct"], r["eligible"], r["on_time"]) == (stored["sla_pct"], stored["eligible"], stored["on_time"]), (r, stored["sla_pct"])
assert rc == (1 if stored["sla_pct"] < 99 else 0), (rc, stored["sla_pct"])
for k in ("sla_pct", "eligible", "on_time", "dead", "attempts", "generated_at", "by_tier", "top_failure_reasons"):
    assert printed[k] == stored[k], (k, printed[k], stored[k])
PY
# export reports with the url: the stored reports, streamed from PostgreSQL, day 1's (copied) then day 2's
DAYBREAK_CONFIG=$WORK/pg.toml "$OP" export reports --from "$D1" --to "$D2" >"$WORK/reports.ndjson" || fail "export reports on PostgreSQL exited $?"
assert_eq "$(wc -l <"$WORK/reports.ndjson")" "2" "reports exported"
assert_eq "$(head -1 "$WORK/reports.ndjson" | json 'j["run_id"]')" "$run1" "export reports: day 1's copied report first"
assert_eq "$(tail -1 "$WORK/reports.ndjson" | json 'j["run_id"], j["sla_pct"] == j["report"]["sla_pct"], j["report"]["on_time"]')" \
  "$run2 True $on_time_psql" "export reports streams the stored report"
sla_psql=$(pg "SELECT 100.0 * $on_time_psql / $eligible_psql >= 99")
want_rc=1; [ "$sla_psql" = "t" ] && want_rc=0
assert_eq "$(cat "$WORK/pg2.json.rc")" "$want_rc" "exit code against psql's SLA"
# the SQLite copy never saw the dispatch: what sla-report used to report on a PostgreSQL install
assert_eq "$(json 'j["on_time"]' <"$WORK/lite2.json")" "0" "on time in the SQLite copy"
grep -q "^  eligible $eligible_psql  on time $on_time_psql " "$WORK/pg2.txt" || { cat "$WORK/pg2.txt" >&2; fail "text report figures"; }
! grep -q "note: run reports are not stored" "$WORK/pg2.txt" || fail "the text report says no reports are stored there"
! grep -q "note: delivery statuses" "$WORK/pg2.txt" || fail "the text report says statuses are absent"
grep -q "from the postgresql ledger" "$WORK/pg2.html" || fail "the HTML report does not name its ledger"
grep -q "id='accepted-run-$run2'" "$WORK/pg2.html" || fail "the HTML report has no accepted chart for run $run2"

# Day 1's run as one closed on PostgreSQL before reports were stored there: its report goes, and
# the trend counts it from its deliveries, saying so.
pg "DELETE FROM run_reports WHERE run_id=$run1" >/dev/null
report "$WORK/pg.toml" "$WORK/pg2.trend" trend --to "$D2" --days 2 --json
assert_eq "$(cat "$WORK/pg2.trend.rc")" "0" "trend on PostgreSQL"
assert_eq "$(json 'j["dates"][-1]["on_time"]' <"$WORK/pg2.trend")" "$on_time_psql" "trend: day 2 on time against psql"
assert_eq "$(json 'j["summary"]["days_reported"]' <"$WORK/pg2.trend")" "2" "trend: both days reported"
assert_eq "$(json 'j["notes"]' <"$WORK/pg2.trend" | grep -c "1 closed run has no stored report")" "1" "trend: day 1's run counted, day 2's stored"
# --watch: dispatch's own figures while it ran (a fresh progress on PostgreSQL), then the closed run
accepted_psql=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state IN ('accepted','delivered','read')")
python3 - "$WORK/watch.ndjson" "$run2" "$accepted_psql" "$dead_psql" <<'PY' || fail "sla-report --watch frames: $(tail -c 600 "$WORK/watch.ndjson")"
import json, sys
path, run, accepted, dead = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
frames = [json.loads(l) for l in open(path) if l.strip()]
assert len(frames) >= 2, len(frames)
runs = [f["runs"][0] for f in frames]
assert all(r["run_id"] == run for r in runs), runs
assert any(r["source"] in ("dispatch", "ledger+dispatch") for r in runs), [r["source"] for r in runs]
last = runs[-1]
assert last["closed"] is True, last
assert (last["accepted"], last["dead"]) == (accepted, dead), (last["accepted"], last["dead"], accepted, dead)
PY
DAYBREAK_CONFIG=$WORK/pg.toml "$REPORT" --watch --once --date "$D2" --json >"$WORK/watch-once.json" || fail "sla-report --watch --once exited $?"
assert_eq "$(json 'j["runs"][0]["accepted"], j["runs"][0]["source"]' <"$WORK/watch-once.json")" "$accepted_psql ledger" \
  "sla-report --watch --once after the close"
echo "ok: day 1 equal on both ledgers; day 2 dispatched on PostgreSQL, its report stored once, sla-report $on_time_psql on time of $eligible_psql = psql's count ($dead_psql dead, $attempts_psql attempts); watched live ($(wc -l <"$WORK/watch.ndjson") frames)"
