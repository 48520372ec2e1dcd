#!/usr/bin/env bash
# The house layering rule (docs/architecture.md "Layers"): core/domain is pure and includes
# nothing else of core/; config, store and channels stay below engine; nothing below the use
# cases includes them; the use cases (core/app) never include their command front ends (core/cli).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
bad=0
check() {  # check "what is wrong" regex files...
  local what=$1 re=$2
  shift 2
  if grep -nE "$re" "$@" 2>/dev/null; then
    echo "FAIL: $what (above)"
    bad=1
  fi
}
shopt -s nullglob
check "core/domain includes an I/O layer" '#include "(store|channels|engine|config|app|cli)/' "$root"/core/domain/*.{hpp,cpp}
check "core/config includes store, channels, engine, app or cli" '#include "(store|channels|engine|app|cli)/' "$root"/core/config/*.{hpp,cpp}
check "core/store includes config, channels, engine, app or cli" '#include "(config|channels|engine|app|cli)/' "$root"/core/store/*.{hpp,cpp}
check "core/channels includes store, engine, app or cli" '#include "(store|engine|app|cli)/' "$root"/core/channels/*.{hpp,cpp}
check "core/engine includes app or cli" '#include "(app|cli)/' "$root"/core/engine/*.{hpp,cpp}
check "a use case (core/app) includes a command front end (core/cli)" '#include "cli/' "$root"/core/app/*.{hpp,cpp}
if grep -nE 'std::chrono::(system|steady|high_resolution)_clock::now|time\(nullptr\)|gettimeofday' "$root"/core/{domain,store,engine}/*.{hpp,cpp} 2>/dev/null | grep -v 'core/domain/clock.cpp'; then
  echo "FAIL: wall clock read outside domain/clock.cpp (above): pass a Clock instead"; bad=1
fi
[ $bad -eq 0 ] && echo "layering ok"
exit $bad
