"""``python -m tests.helpers.shifted_clock <module> [args...]``: run a module (``celery``)
as ``python -m <module>`` would, its clock shifted like the test process's.

With ``--clock-shift-days=N`` (CI runs a year ahead) the tests' own process starts each
test at today + N days; the worker and beat processes they start go through here, so the
real Celery worker reads the same shifted clock (its children inherit it across the fork)
and a test bound to a date is caught whichever process reads the date.
"""

from __future__ import annotations

import datetime as dt
import os
import runpy
import sys

SHIFT_ENV = "CCP_TEST_CLOCK_SHIFT_DAYS"


def main() -> None:
    days = int(os.environ.get(SHIFT_ENV) or 0)
    if days:
        import time_machine

        shifted = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        time_machine.travel(shifted, tick=True).start()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
