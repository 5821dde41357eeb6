# Runs one firmware test function under MicroPython:
#     micropython _run.py MODULE TEST [frozen]
# and says how it ended on its last line (@@PASS, @@SKIP reason, @@FAIL),
# which tests/conftest.py reads.  The unix port has no unittest; this is all
# the harness a firmware test needs.  "frozen": the port has the rumor
# package frozen in, and the test fails unless every rumor module it loaded
# came from the image (a frozen module's __file__ is its name in the
# manifest, "rumor/x.py", which no file on the path has).
import os
import sys

import fwtest


def from_files():
    """The rumor modules loaded from a file rather than the frozen image."""
    bad = []
    for name, m in sys.modules.items():
        if name != "rumor" and not name.startswith("rumor."):
            continue
        f = getattr(m, "__file__", "")
        want = name.replace(".", "/") + ("/__init__.py" if name == "rumor" else ".py")
        try:
            os.stat(f)
            found = True
        except OSError:
            found = False
        if f != want or found:
            bad.append("%s from %s" % (name, f))
    return bad


def main():
    frozen = len(sys.argv) > 3 and sys.argv[3] == "frozen"
    mod = __import__(sys.argv[1])
    fn = getattr(mod, sys.argv[2])
    try:
        fn()
        if frozen:
            bad = from_files()
            if bad or "rumor" not in sys.modules:
                raise AssertionError("not the frozen package: " + (", ".join(bad) or "rumor not loaded"))
    except fwtest.Skip as e:
        print("@@SKIP", e.args[0] if e.args else "")
        return
    except BaseException as e:  # noqa: B036 - report everything, then fail
        sys.print_exception(e)
        print("@@FAIL")
        return
    print("@@PASS")


main()
