"""hack/bench/real_bench.py reads each phase of a run from the lab's own output: both the `flux reconcile`
lines of an older checkout and the lab's request (one annotation, then one watch per object)."""
from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("real_bench", ROOT / "hack" / "bench" / "real_bench.py")
real_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_bench)

KS = "kustomizations.kustomize.toolkit.fluxcd.io"
TOKEN = "2026-12-07T04:00:00.000000Z"


def run(lines: list[tuple[float, str]], wall: float) -> "real_bench.Run":
    r = object.__new__(real_bench.Run)
    r.lines, r.wall, r.rc = lines, wall, 0
    return r


def cmd(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in args)  # as the lab echoes a command (tasks/core/tools.py: shown)


def test_the_request_lines_give_each_environments_reconcile_from_its_annotation_to_its_watchs_end():
    annotate = cmd("kubectl", "--context", "kind-x", "-n", "flux-system", "annotate", "--overwrite",
                   *(f"{KS}/apps-{e}" for e in ("dev", "staging", "production")),
                   f"reconcile.fluxcd.io/requestedAt={TOKEN}")

    def wait(env):
        return cmd("kubectl", "--context", "kind-x", "-n", "flux-system", "wait", f"{KS}/apps-{env}",
                   f"--for=jsonpath={{.status.lastHandledReconcileAt}}={TOKEN}", "--timeout=5m", "-o", "json")

    lines = [(1.0, "▶ image: build"), (3.0, "  ✓ image done in 2.0s"),
             (3.1, "▶ sync: publish and reconcile"),
             (4.3, f"  $ {annotate} (200ms)"),  # arrives when it ends: began at 4.1
             (10.3, f"  $ {wait('dev')} (6.0s)"), (12.3, f"  $ {wait('staging')} (8.0s)"),
             (11.3, f"  $ {wait('production')} (7.0s)"),
             (12.5, "  ✓ sync done in 9.4s"), (13.0, "▶ verify: x"), (13.6, "  ✓ verify done in 600ms")]
    found = run(lines, 14.0).phases()
    assert round(found["publish"], 2) == 1.0  # sync's start to the annotation's
    assert round(found["reconcile"], 2) == 8.2  # the annotation's start to the last watch's end
    assert round(found["  apps-dev reconcile"], 2) == 6.2
    assert round(found["  apps-staging reconcile"], 2) == 8.2
    assert round(found["  apps-production reconcile"], 2) == 7.2
    assert found["build"] == 2.0 and found["verify"] == 0.6 and found["served (whole run)"] == 14.0


def test_flux_reconcile_lines_of_an_older_checkout_still_give_the_phases():
    def flux(env, took):
        return f"  $ flux reconcile kustomization apps-{env} -n flux-system --context kind-x --timeout=5m ({took})"

    lines = [(0.0, "▶ sync: publish and reconcile"), (10.0, flux("dev", "8.0s")), (11.0, flux("staging", "9.0s")),
             (10.5, flux("production", "8.5s")), (11.2, "  ✓ sync done in 11.2s")]
    found = run(lines, 12.0).phases()
    assert round(found["publish"], 2) == 2.0 and round(found["reconcile"], 2) == 9.0
    assert found["  apps-dev reconcile"] == 8.0 and found["  apps-staging reconcile"] == 9.0
