#!/usr/bin/env bash
# Every binary's --help and its man page agree on the long options:
#  1. every --option a binary's --help lists (and, for binaries with subcommands such as
#     `daybreak dead list` or `sla-report trend`, every subcommand's --help, recursively) appears
#     in man/<binary>.1;
#  2. every --option the man page documents (in SYNOPSIS, in an OPTIONS section, or as the tag
#     of a .TP item) is one the binary or one of its subcommands accepts.
# Options a page names for another program (`daybreak-sim --callback-url` in
# daybreak-callbacks(1)) are prose, not SYNOPSIS/OPTIONS/tags, so they are not checked here.
source "$(dirname "$0")/common.sh"
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MANDIR=${DAYBREAK_MAN_DIR:-$SRC/man}
BINARIES="assign-fallback plan-deliveries dispatch sla-report daybreak daybreak-sim daybreak-callbacks"

# help_options EXE [SUB...]: the long options of `EXE SUB... --help` and of every subcommand it
# lists, recursively, one per line.
help_options() {
  local out sub
  out=$(timeout 10 "$@" --help 2>&1) || fail "$* --help exited $?"
  grep -qi "usage" <<<"$out" || fail "$* --help printed no usage"
  # Option names are the first column: "  -h,--help  …", "  --run INT ...  …"
  sed -n 's/^  \{1,4\}\(-[^ ]*\).*/\1/p' <<<"$out" | tr ',' '\n' | grep -E '^--[a-z]' || true
  # Subcommands: the lines under "Subcommands:" up to the next blank line
  for sub in $(awk '/^Subcommands:/{on=1; next} on && /^$/{on=0} on && /^  [a-z]/{print $1}' <<<"$out"); do
    help_options "$@" "$sub"
  done
}

# man_documented PAGE: the long options PAGE documents: SYNOPSIS, (GLOBAL) OPTIONS sections and
# .TP tags. man_mentions PAGE: every long option written anywhere in PAGE.
man_documented() {
  python3 - "$1" <<'PY'
import re, sys
opt = re.compile(r'\\-\\-([a-z][a-z0-9]*(?:\\-[a-z0-9]+)*)')
section, after_tp, found = "", False, set()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith(".SH"):
        section = line[3:].strip().strip('"').upper()
        continue
    take = section in ("SYNOPSIS", "OPTIONS", "GLOBAL OPTIONS") or after_tp
    after_tp = line.startswith(".TP")
    if take:
        for m in opt.finditer(line):
            found.add("--" + m.group(1).replace("\\-", "-"))
print("\n".join(sorted(found)))
PY
}
man_mentions() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
found = {"--" + m.group(1).replace("\\-", "-") for m in re.finditer(r'\\-\\-([a-z][a-z0-9]*(?:\\-[a-z0-9]+)*)', text)}
found |= set(re.findall(r'(?<![\w\\-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)', text))
print("\n".join(sorted(found)))
PY
}

problems=0
checked=0
for b in $BINARIES; do
  exe=$DAYBREAK_BIN/$b/$b
  page=$MANDIR/$b.1
  [ -x "$exe" ] || fail "binary not built: $exe"
  [ -f "$page" ] || fail "no man page for $b: $page"
  help_options "$exe" | grep -vx -e '--help' -e '--help-all' | sort -u >"$WORK/$b.help"
  [ -s "$WORK/$b.help" ] || fail "$b --help: no options found (did the help format change?)"
  man_mentions "$page" | sort -u >"$WORK/$b.mentions"
  man_documented "$page" | sort -u >"$WORK/$b.documented"
  missing=$(comm -23 "$WORK/$b.help" "$WORK/$b.mentions")
  unknown=$(comm -13 "$WORK/$b.help" "$WORK/$b.documented" | grep -vx -e '--help' -e '--help-all' || true)
  for o in $missing; do echo "FAIL: $b: $o is in --help but not in man/$b.1" >&2; problems=$((problems + 1)); done
  for o in $unknown; do echo "FAIL: $b: man/$b.1 documents $o, which no --help of $b lists" >&2; problems=$((problems + 1)); done
  checked=$((checked + $(wc -l <"$WORK/$b.help")))
done
[ "$problems" -eq 0 ] || fail "$problems mismatch(es) between --help and the man pages"
echo "ok: $checked long options of $(wc -w <<<"$BINARIES") binaries (and their subcommands) agree with their man pages"

# The check can fail: a page with one option taken out is caught.
b=dispatch
sed 's/\\-\\-lookahead/\\-\\-look\\-ahead/g' "$MANDIR/$b.1" >"$WORK/mutant.1"
man_mentions "$WORK/mutant.1" | sort -u >"$WORK/mutant.mentions"
comm -23 "$WORK/$b.help" "$WORK/mutant.mentions" | grep -qx -- '--lookahead' || fail "self-check: a page without --lookahead passed"
man_documented "$WORK/mutant.1" | sort -u | comm -13 "$WORK/$b.help" - | grep -qx -- '--look-ahead' ||
  fail "self-check: a page documenting an unknown --look-ahead passed"
echo "ok: self-check: an option removed from or invented in a page is caught"
