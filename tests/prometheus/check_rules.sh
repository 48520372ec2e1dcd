#!/usr/bin/env bash
# The shipped Prometheus rules are valid (promtool check rules) and fire when, and only when, they
# should (promtool test rules over every tests/prometheus/*.test.yml). Exit 125: promtool missing.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v promtool >/dev/null || { echo "skip: promtool missing (Debian package prometheus)"; exit 125; }
promtool check rules "$root"/docs/prometheus/*.rules.yml
cd "$root/tests/prometheus"  # rule_files in the tests are relative to them
promtool test rules ./*.test.yml
