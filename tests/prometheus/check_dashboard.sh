#!/usr/bin/env bash
# The Grafana dashboard (docs/grafana/daybreak-dashboard.json) imports as is and asks only for
# its Prometheus data source, every panel has a place and a query, and every query is valid
# PromQL (promtool check rules, each expression as a recording rule) naming only metric families
# daybreak writes (the HELP lines of core/engine/metrics.cpp and core/cli/job_metrics.cpp, the
# plan/fallback counters). Exit 125: promtool missing.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v promtool >/dev/null || { echo "skip: promtool missing (Debian package prometheus)"; exit 125; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$root" "$work/rules.yml" <<'PY'
import json, re, sys, glob
root, out = sys.argv[1], sys.argv[2]
d = json.load(open(root + "/docs/grafana/daybreak-dashboard.json"))
assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"], "the dashboard must ask for one Prometheus data source"
assert d["uid"] and d["title"] and d["schemaVersion"] >= 30
src = "".join(open(f).read() for f in glob.glob(root + "/core/**/*.cpp", recursive=True))
known = set(re.findall(r'"(daybreak_[a-z_]+)"', src))
ids, exprs = set(), []
for p in d["panels"]:
    assert p["id"] not in ids, "duplicate panel id %s" % p["id"]
    ids.add(p["id"])
    g = p["gridPos"]
    assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, "panel %s out of the grid" % p["title"]
    if p["type"] == "row":
        continue
    assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
    assert p["targets"], "panel %s has no query" % p["title"]
    for t in p["targets"]:
        e = t["expr"].replace("$instance", ".*")
        for m in re.findall(r'\b(daybreak_[a-z_]+?)(?:_bucket|_sum|_count)?\b(?=[{\s)\[]|$)', e):
            if m not in known and not m.startswith("daybreak_job_") and m + "_total" not in known:
                base = re.sub(r'_(bucket|sum|count)$', '', m)
                assert base in known, "panel %s: %s is not a metric daybreak writes" % (p["title"], m)
        exprs.append(e)
with open(out, "w") as f:
    f.write("groups:\n- name: dashboard\n  rules:\n")
    for i, e in enumerate(exprs):
        f.write("  - record: dashboard:expr%d\n    expr: %s\n" % (i, json.dumps(e)))
print("%d panels, %d queries" % (len(ids), len(exprs)))
PY
promtool check rules "$work/rules.yml"
