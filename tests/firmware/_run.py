# Runs one firmware test function under MicroPython:
#     micropython _run.py MODULE TEST
# and says how it ended on its last line (@@PASS, @@SKIP reason, @@FAIL),
# which tests/conftest.py reads.  The unix port has no unittest; this is all
# the harness a firmware test needs.
import sys

import fwtest


def main():
    mod = __import__(sys.argv[1])
    fn = getattr(mod, sys.argv[2])
    try:
        fn()
    except fwtest.Skip as e:
        print("@@SKIP", e.args[0] if e.args else "")
        return
    except BaseException as e:  # noqa: B036 - report everything, then fail
        sys.print_exception(e)
        print("@@FAIL")
        return
    print("@@PASS")


main()
