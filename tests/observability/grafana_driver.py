"""Runs tasks.day2.grafana.grafana(t) in its own process, as `doit grafana` does,
against whatever kubectl KUBECTL names (the fakes in the tests).

    python grafana_driver.py return     hold: fetch /api/health through the forward, then return
    python grafana_driver.py interrupt  hold: raise KeyboardInterrupt (Ctrl-C while waiting)
    python grafana_driver.py wait       the real default: wait until SIGINT/SIGTERM
"""
import os
import pathlib
import sys
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tasks.core import config, tools
from tasks.day2 import grafana


def main() -> int:
    mode = sys.argv[1]
    cfg = config.load({}, env=os.environ)
    t = tools.Tools(cfg)

    def fetch_then_return(base):
        with urllib.request.urlopen(base + "/api/health", timeout=5) as res:
            print(f"HELD {base} {res.status}", flush=True)

    def interrupt(base):
        print(f"HELD {base}", flush=True)
        raise KeyboardInterrupt

    hold = {"return": fetch_then_return, "interrupt": interrupt, "wait": None}[mode]
    result = grafana.grafana(t, hold=hold)
    print(f"RETURNED {sorted(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
