"""TAP output for the stdlib-only Python tests: ok() prints one numbered
result line at once (meson reads them as they come), plan() the closing
"1..N" line; exit_status() is 1 when any check failed."""

import sys

_count = 0
_failed = 0


def ok(cond, name):
    """Prints "ok N - name" or "not ok N - name"; returns cond."""
    global _count, _failed
    _count += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (_count, name))
    if not cond:
        _failed += 1
    sys.stdout.flush()
    return cond


def failed():
    return _failed


def plan():
    print("1..%d" % _count)


def exit_status():
    return 1 if _failed else 0
