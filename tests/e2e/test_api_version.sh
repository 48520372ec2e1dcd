#!/usr/bin/env bash
# The configured Graph API version against Meta's dated table (docs/whatsapp-errors.md), under an
# injected clock (DAYBREAK_CLOCK): `daybreak doctor` passes 61 days before v21.0's end
# (2027-01-21), warns from 60 days before (WARN, exit 0), fails after it (FAIL, exit 1); the
# default version (v26.0, no end announced) passes. The nightly plan-deliveries warns the same
# way and exits 1 once the version has expired.
source "$(dirname "$0")/common.sh"

start_sim ver --mps 80 --time-scale 10 --seed 1
write_config "$SIM_PORT"
sed -i 's#^\(graph_base = .*\)$#\1\napi_version = "v21.0"#' "$WORK/daybreak.toml"
grep -q '^api_version = "v21.0"$' "$WORK/daybreak.toml" || fail "config not written as intended"

# doctor_at DATE: runs doctor at 21:45 IST on DATE; sets RC and OUT
doctor_at() { RC=0; OUT=$(DAYBREAK_CLOCK="${1}T21:45:00+05:30@$(now_ms)*1" "$OP" doctor --json --min-free-mb 1 2>"$WORK/doctor.err") || RC=$?; }
row() { echo "$OUT" | json "[c.get('$2', False) for c in j['checks'] if c['name']=='whatsapp_api_version'][0]" | sed "s/^/$1=/"; }
msg() { echo "$OUT" | json "[c['message'] for c in j['checks'] if c['name']=='whatsapp_api_version'][0]"; }

doctor_at 2026-11-21
assert_eq "$(row ok ok) $(row warn warn)" "ok=True warn=False" "61 days before the end"
msg | grep -q "available until 2027-01-21 (61 days left)" || fail "message: $(msg)"

doctor_at 2026-11-22
assert_eq "$(row ok ok) $(row warn warn)" "ok=True warn=True" "60 days before the end"
msg | grep -q "60 day(s) left): move to v26.0" || fail "message: $(msg)"
text=$(DAYBREAK_CLOCK="2026-11-22T21:45:00+05:30@$(now_ms)*1" "$OP" doctor --min-free-mb 1 2>/dev/null || true)
grep -q "^WARN  whatsapp_api_version: " <<<"$text" || fail "the text report does not show WARN"

doctor_at 2027-01-21
assert_eq "$(row ok ok) $(row warn warn)" "ok=True warn=True" "its last day"

doctor_at 2027-01-22
assert_eq "$RC" "1" "doctor exit after the end"
assert_eq "$(row ok ok)" "ok=False" "after the end"
msg | grep -q "was available until 2027-01-21 (1 day(s) ago)" || fail "message: $(msg)"

# The default version: no end announced
sed -i '/^api_version = "v21.0"$/d' "$WORK/daybreak.toml"
doctor_at 2027-01-22
assert_eq "$(row ok ok) $(row warn warn)" "ok=True warn=False" "default api_version"
msg | grep -q "v26.0: no end date announced" || fail "message: $(msg)"

# The nightly check: plan-deliveries warns within 60 days, fails (exit 1) after the end.
sed -i 's#^\(graph_base = .*\)$#\1\napi_version = "v21.0"#' "$WORK/daybreak.toml"
D=2026-12-07
seed_day 20 "$D"
rc=0
DAYBREAK_CLOCK="2026-12-06T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$D" --json >"$WORK/p1.json" 2>"$WORK/p1.log" || rc=$?
assert_eq "$rc" "0" "plan exit 46 days before the end"
assert_eq "$(json 'j["whatsapp_api_version"]["level"]' <"$WORK/p1.json")" "warn" "plan report level"
assert_eq "$(json 'j["whatsapp_api_version"]["days_left"]' <"$WORK/p1.json")" "46" "plan report days left"
grep -q "v21.0 is available until 2027-01-21" "$WORK/p1.log" || fail "plan-deliveries logged no warning"
# The day after v21.0's end: seeded with the default version, then planned again with v21.0.
D2=2027-01-23
sed -i '/^api_version = "v21.0"$/d' "$WORK/daybreak.toml"
seed_day 20 "$D2"
sed -i 's#^\(graph_base = .*\)$#\1\napi_version = "v21.0"#' "$WORK/daybreak.toml"
rc=0
DAYBREAK_CLOCK="2027-01-22T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$D2" --json >"$WORK/p2.json" 2>"$WORK/p2.log" || rc=$?
assert_eq "$rc" "1" "plan exit after the end"
assert_eq "$(json 'j["whatsapp_api_version"]["level"]' <"$WORK/p2.json")" "expired" "plan report level after the end"
grep -q "was available until 2027-01-21" "$WORK/p2.log" || fail "plan-deliveries logged no error"
echo "ok: doctor and plan-deliveries date whatsapp.api_version v21.0 against 2027-01-21"
