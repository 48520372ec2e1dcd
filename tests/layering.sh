#!/usr/bin/env bash
# The house layering rule (docs/architecture.md): core/domain is pure and includes nothing from
# store, channels, engine, config or app; store, channels and engine never include app.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
bad=0
if grep -nE '#include "(store|channels|engine|config|app)/' "$root"/core/domain/*.{hpp,cpp} 2>/dev/null; then
  echo "FAIL: core/domain includes an I/O layer (above)"; bad=1
fi
if grep -nE '#include "app/' "$root"/core/{store,channels,engine}/*.{hpp,cpp} 2>/dev/null; then
  echo "FAIL: store/channels/engine include app (above)"; bad=1
fi
if grep -nE 'std::chrono::(system|steady|high_resolution)_clock::now|time\(nullptr\)|gettimeofday' "$root"/core/{domain,store,engine}/*.{hpp,cpp} 2>/dev/null | grep -v 'core/domain/clock.cpp'; then
  echo "FAIL: wall clock read outside domain/clock.cpp (above): pass a Clock instead"; bad=1
fi
[ $bad -eq 0 ] && echo "layering ok"
exit $bad
