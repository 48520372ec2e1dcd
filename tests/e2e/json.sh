# Sourced by e2e scripts that read JSON: jq when present, else python3; exits 125 (skip) with neither.
if command -v jq >/dev/null 2>&1; then
  JSON_TOOL=jq
elif command -v python3 >/dev/null 2>&1; then
  JSON_TOOL=python3
else
  echo "SKIP: neither jq nor python3 found" >&2
  exit 125
fi

# jget JSON KEY... → the value at that key path ("" when absent, "false" for false), e.g. jget "$r" by_tier gold eligible
jget() {
  local doc="$1"; shift
  if [[ $JSON_TOOL == jq ]]; then
    jq -r --args 'reduce $ARGS.positional[] as $k (.;
      if type == "array" then .[$k | tonumber] elif type == "object" then .[$k] else null end)
      | if . == null then empty else . end' \
      "$@" <<<"$doc"
  else
    python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
for k in sys.argv[1:]:
    v = v.get(k) if isinstance(v, dict) else (v[int(k)] if isinstance(v, list) and len(v) > int(k) else None)
    if v is None: break
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else v))
' "$@" <<<"$doc"
  fi
}
