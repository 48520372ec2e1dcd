#!/usr/bin/env bash
# WhatsApp templates per language and header ([[whatsapp.templates]]): content with image,
# document and text headers in English and Hindi goes out through the template approved for its
# language and header, with that template's language code and body parameters. The simulator is
# given the same approved templates and answers 132001 / 132012 / 132000 to any send that does
# not match one, so a wrong routing fails here. Then an item with no template is refused the
# night before: plan-deliveries exits 1 naming the item, language and header, and doctor fails.
source "$(dirname "$0")/common.sh"

D=2026-12-08
templates() {  # the [[whatsapp.templates]] table; $1: also the Hindi document template (1/0)
  for lang in en hi; do
    code=$([ "$lang" = en ] && echo en_US || echo hi)
    for h in text image document; do
      [ "$lang/$h" = hi/document ] && [ "$1" = 0 ] && continue
      printf '[[whatsapp.templates]]\nlanguage = "%s"\nheader = "%s"\nname = "brief_%s_%s"\nlanguage_code = "%s"\n' \
        "$lang" "$h" "$h" "$lang" "$code"
      # the text-header templates carry the title in the header: two body parameters
      [ "$h" = text ] && printf 'body_parameters = ["advisor_name", "body"]\n'
    done
  done
}
sim_args=()
for lang in en hi; do
  code=$([ "$lang" = en ] && echo en_US || echo hi)
  sim_args+=(--template "brief_text_$lang:$code:text:2" --template "brief_image_$lang:$code:image:3"
             --template "brief_document_$lang:$code:document:3")
done
start_sim tpl --mps 80 --time-scale 10 --seed 3 --transient-rate 0 --permanent-rate 0 "${sim_args[@]}"
write_config "$SIM_PORT" "$(templates 1)"

# Generated content in en and hi, text and image headers; every third text item gets a PDF.
"$OP" generate --advisors 120 --date "$D" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels whatsapp >/dev/null
python3 - "$WORK/data/content.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
texts = [r for r in rows if not r["media_url"]]
for r in texts[::3]:
    r["media_url"] = "https://cdn.example.com/daybreak/" + r["content_id"] + ".pdf"
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=rows[0].keys()); w.writeheader(); w.writerows(rows)
PY
"$OP" import content "$WORK/data/content.csv" >/dev/null
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
NIGHT="$(date -d "$D -1 day" +%F)T21:30:00+05:30@$(now_ms)*1"
DAYBREAK_CLOCK=$NIGHT "$ASSIGN" --date "$D" >/dev/null
rc=0; DAYBREAK_CLOCK=$NIGHT "$PLAN" --date "$D" --json >"$WORK/plan.json" 2>"$WORK/plan.log" || rc=$?
assert_eq "$rc" "0" "plan-deliveries with a template for every item"
assert_eq "$(json 'len(j["missing_templates"])' <"$WORK/plan.json")" "0" "missing templates in the plan report"
kinds=$(sql "SELECT COUNT(DISTINCT c.language || CASE WHEN c.media_url = '' THEN 't' WHEN c.media_url LIKE '%.pdf' THEN 'd' ELSE 'i' END)
  FROM deliveries d JOIN content c USING (content_id) WHERE d.date='$D'")
assert_eq "$kinds" "6" "language x header kinds among the planned items"
echo "ok 1: plan-deliveries finds a template for each of 6 language x header kinds"

run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts WHERE error_code LIKE '1320%'")" "0" "template errors from the provider"
assert_eq "$(json 'j["emergency_substitutions"]' <"$WORK/d.json")" "0" "emergency substitutions"
stats=$(sim_stats)
# Each delivery went through its own kind's template, in its language code.
for lang in en hi; do
  code=$([ "$lang" = en ] && echo en_US || echo hi)
  for h in text image document; do
    case $h in text) cond="c.media_url = ''" ;; document) cond="c.media_url LIKE '%.pdf'" ;; *) cond="c.media_url <> '' AND c.media_url NOT LIKE '%.pdf'" ;; esac
    want=$(sql "SELECT COUNT(*) FROM deliveries d JOIN content c USING (content_id) WHERE d.run_id=$run AND c.language='$lang' AND $cond")
    got=$(echo "$stats" | json "j.get('by_template', {}).get('brief_${h}_$lang/$code', 0)")
    assert_eq "$got" "$want" "sends through brief_${h}_$lang ($code)"
  done
done
echo "ok 2: $n deliveries accepted, each through the template of its language and header (the simulator checks name, code, header and parameters)"

# 3. The Hindi document template is withdrawn from the configuration: the night before, the
#    plan names the items that have none and fails; doctor fails its whatsapp_templates row.
write_config "$SIM_PORT" "$(templates 0)"
rc=0; DAYBREAK_CLOCK=$NIGHT "$PLAN" --date "$D" --dry-run --json >"$WORK/plan2.json" 2>"$WORK/plan2.log" || rc=$?
assert_eq "$rc" "1" "plan-deliveries exit code with an item that has no template"
missing=$(json 'sorted({(m["language"], m["header"]) for m in j["missing_templates"]})' <"$WORK/plan2.json")
assert_eq "$missing" "[('hi', 'document')]" "what has no template"
grep -q "no \[\[whatsapp.templates\]\] entry for language hi with a document header" "$WORK/plan2.log" ||
  fail "plan-deliveries did not say which template is missing: $(cat "$WORK/plan2.log")"
rc=0; DAYBREAK_CLOCK=$NIGHT "$OP" doctor --json >"$WORK/doctor.json" 2>/dev/null || rc=$?
row=$(json '[c for c in j["checks"] if c["name"] == "whatsapp_templates"][0]' <"$WORK/doctor.json")
assert_eq "$(json '[c["ok"] for c in j["checks"] if c["name"] == "whatsapp_templates"][0]' <"$WORK/doctor.json")" "False" \
  "doctor's whatsapp_templates row"
case $row in *"hi, document header"*) ;; *) fail "doctor's whatsapp_templates row does not name it: $row" ;; esac
assert_eq "$rc" "1" "doctor's exit code"
echo "ok 3: an item without a template is refused the night before (plan-deliveries exit 1, doctor fails), naming it"
