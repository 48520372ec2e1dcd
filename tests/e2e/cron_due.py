#!/usr/bin/env python3
"""cron_due.py CRONTAB: print the commands of CRONTAB due at the current minute, one a line.

Evaluates the crontab the way Debian's cron does for what daybreak uses: VAR=value lines
(CRON_TZ sets the zone of the entries after it), five fields with *, lists, ranges and steps.
"Now" is the process's clock, so `faketime` moves it; the machine's TZ only matters through
CRON_TZ being absent. Used by tests/e2e/test_cron.sh.
"""
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def field_matches(spec, value, lo, hi):
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, s = part.split("/")
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a, b = (int(x) for x in part.split("-"))
        else:
            a = b = int(part)
        if a <= value <= b and (value - a) % step == 0:
            return True
    return False


def due(path, now_utc):
    tz = None  # None: the machine's local zone, as cron without CRON_TZ
    out = []
    for raw in open(path):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split(None, 1)[0]
        if "=" in head and not head[0].isdigit() and head[0] != "*":
            name, value = line.split("=", 1)
            if name.strip() == "CRON_TZ":
                tz = ZoneInfo(value.strip())
            continue
        f = line.split(None, 5)
        local = now_utc.astimezone(tz) if tz else now_utc.astimezone()
        dow = (local.weekday() + 1) % 7  # cron: 0 = Sunday
        if (field_matches(f[0], local.minute, 0, 59) and field_matches(f[1], local.hour, 0, 23)
                and field_matches(f[2], local.day, 1, 31) and field_matches(f[3], local.month, 1, 12)
                and field_matches(f[4].replace("7", "0"), dow, 0, 6)):
            out.append(f[5])
    return out


if __name__ == "__main__":
    now = datetime.fromtimestamp(time.time(), timezone.utc)
    for cmd in due(sys.argv[1], now):
        print(cmd)
