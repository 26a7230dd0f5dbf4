"""The HPA demo: load the app through a port-forward and watch the HPA scale it.

    doit hpa_demo    port-forward, load /work, live HPA/pod table, summary, SVG timeline
    doit hpa_load    only the load
    doit hpa_watch   only the table, every HPA_PAUSE seconds for HPA_DURATION seconds
    doit hpa_stop    end port-forwards left by a killed run
    doit hpa_reset   once the load has left the HPA's metrics, scale back to its minimum, wait until Ready

The port-forward picks a free local port (tasks/core/portforward.py), is recorded in the
state directory and ends on exit, error, Ctrl-C or SIGTERM.

Note: `kubectl port-forward svc/app` sends every request to *one* pod of the
Service, so the load lands on the first pod; the HPA still sees the average rise
and scales out, which is what the demo shows.
"""
from __future__ import annotations

import math
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tasks.core import console, kube, loadgen, names, portforward, state
from tasks.steps import metrics_server
from tasks.core.errors import LabError
from tasks.core.metrics_text import summarize_metrics
from tasks.core.signals import interrupt_on_sigterm
from tasks.core.stats import histogram_quantile

APP_SELECTOR = names.APP_SELECTOR
TIMELINE = "hpa-timeline.svg"
METRICS_HINT = ("the metrics API (metrics-server) is missing, so the HPA cannot read CPU or memory "
                "and will not scale — metrics-server is needed: run `doit metrics_server`")


# --- reading the HPA and its pods ---------------------------------------------------------------

@dataclass
class Sample:
    """One point of the timeline (seconds since the load started)."""

    t: float
    replicas: int | None
    desired: int | None
    cpu: int | None
    cpu_target: int | None
    rps: float | None = None
    p99: float | None = None  # seconds


def resource_metrics(hpa: dict) -> list[tuple[str, int | None, int | None]]:
    """[(resource, current %, target %)] of an autoscaling/v2 HPA, spec order."""
    spec = (hpa.get("spec") or {}).get("metrics") or []
    current = {}
    for m in (hpa.get("status") or {}).get("currentMetrics") or []:
        if m.get("type") == "Resource":
            res = m.get("resource") or {}
            current[res.get("name")] = (res.get("current") or {}).get("averageUtilization")
    out = []
    for m in spec:
        if m.get("type") != "Resource":
            continue
        res = m.get("resource") or {}
        out.append((res.get("name", "?"), current.get(res.get("name")),
                    (res.get("target") or {}).get("averageUtilization")))
    return out


def metric_text(name: str, current, target) -> str:
    cur = f"{current}%" if current is not None else "<unknown>"
    tgt = f"{target}%" if target is not None else "-"
    return f"{name} {cur}/{tgt}"


def replicas(hpa: dict) -> tuple[int | None, int | None, int, int | None]:
    st = hpa.get("status") or {}
    spec = hpa.get("spec") or {}
    return (st.get("currentReplicas"), st.get("desiredReplicas"), int(spec.get("minReplicas") or 1),
            spec.get("maxReplicas"))


def metrics_unavailable(hpa: dict) -> bool:
    """True when the HPA says it cannot read resource metrics."""
    status, reason, message = kube.condition(hpa, "ScalingActive")
    return status == "False" and ("FailedGetResourceMetric" in reason or "metrics API" in message
                                  or "metrics.k8s.io" in message)


def pod_rows(pods: list[dict]) -> list[list[str]]:
    rows = []
    for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
        st = p.get("status") or {}
        cs = st.get("containerStatuses") or []
        ready = f"{sum(1 for c in cs if c.get('ready'))}/{len(cs) or len((p.get('spec') or {}).get('containers') or [])}"
        phase = "Terminating" if p["metadata"].get("deletionTimestamp") else st.get("phase", "?")
        rows.append([p["metadata"]["name"], ready, phase, (p.get("spec") or {}).get("nodeName") or "<pending>"])
    return rows


def render(ns: str, elapsed: float | None, hpa: dict, pods: list[dict]) -> str:
    """The live view: one HPA line, then the pods with their node."""
    cur, desired, lo, hi = replicas(hpa)
    parts = [metric_text(*m) for m in resource_metrics(hpa)] or ["no resource metrics"]
    when = f"[{elapsed:4.0f}s] " if elapsed is not None else ""
    head = (f"{when}HPA {names.APP} ({ns}): " + "  ".join(parts) +
            f"  replicas {cur if cur is not None else '?'} → desired {desired if desired is not None else '?'}"
            f"  (min {lo}, max {hi if hi is not None else '?'})")
    rows = pod_rows(pods)
    body = console.table(["POD", "READY", "STATUS", "NODE"], rows) if rows else "no app pods"
    return head + "\n" + "\n".join("  " + line for line in body.splitlines())


def read(lab, ns: str, quiet: bool = True) -> tuple[dict | None, list[dict]]:
    hpa = kube.get_json(lab, "hpa", names.APP, "-n", ns, missing_ok=True, quiet=quiet)
    pods = kube.items(kube.get_json(lab, "pods", "-n", ns, "-l", APP_SELECTOR, quiet=quiet))
    return hpa, pods


def require_hpa(lab, ns: str) -> dict:
    hpa = kube.get_json(lab, "hpa", names.APP, "-n", ns, missing_ok=True)
    if not hpa:
        raise LabError(f"no HorizontalPodAutoscaler {names.APP} in {ns}", "Flux has not applied the app there",
                       "run `doit setup` (or `doit flux_status` to see why)")
    return hpa


def metrics_api_ready(lab) -> bool:
    try:
        return metrics_server.api_available(lab)
    except LabError:
        return False


def to_sample(elapsed: float, hpa: dict | None, rps=None, p99=None) -> Sample:
    hpa = hpa or {}
    cur, desired, _, _ = replicas(hpa)
    cpu = next(((c, tg) for n, c, tg in resource_metrics(hpa) if n == "cpu"), (None, None))
    return Sample(round(elapsed, 2), cur, desired, cpu[0], cpu[1], rps, p99)


def scale_report(samples: list[Sample]) -> tuple[int | None, int | None, float | None, float | None]:
    """(replicas at start, maximum reached, seconds to the first scale-up, seconds to the maximum)."""
    seen = [s for s in samples if s.replicas is not None]
    if not seen:
        return None, None, None, None
    start = seen[0].replicas
    top = max(s.replicas for s in seen)
    first = next((s.t for s in seen if s.replicas > start), None)
    reached = next((s.t for s in seen if s.replicas == top), None) if top > start else None
    return start, top, first, reached


# --- the load: hey or the built-in generator ------------------------------------------------------

class HeyLoad:
    """`hey -z Ns -c C url`, its report captured to a file and printed at the end."""

    tool = "hey"

    def __init__(self, url: str, duration: int, concurrency: int):
        self.url, self.duration, self.concurrency = url, duration, concurrency
        self.log = state.path("hey.log")
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> "HeyLoad":
        console.say(f"  $ hey -z {self.duration}s -c {self.concurrency} {self.url} &", "dim")
        self.window(0)  # baseline of the pod's counters
        self.started = time.monotonic()
        with open(self.log, "w") as out:
            # Same process group: a terminal Ctrl-C reaches hey too (it then prints its report).
            self.proc = subprocess.Popen([shutil.which("hey") or "hey", "-z", f"{self.duration}s",
                                          "-c", str(self.concurrency), self.url],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def progress_line(self) -> str | None:
        return None  # hey prints nothing while it runs; the table every HPA_PAUSE shows progress

    def window(self, seconds: float):
        """(req/s, p99) of /work since the last call, from the pod's own /metrics.

        A port-forward sends everything to one pod, so its counters see all of hey's load.
        """
        base = self.url.rsplit("/", 1)[0]
        try:
            with urllib.request.urlopen(base + "/metrics", timeout=2) as res:
                text = res.read().decode()
            summary = summarize_metrics(text)
        except (LabError, OSError, ValueError):
            return None, None
        now = time.monotonic()
        count = summary["by_endpoint"].get("/work", 0.0)
        buckets = summary["buckets"].get("/work", {})
        prev, self._prev = getattr(self, "_prev", None), (now, count, buckets)
        if prev is None or now <= prev[0]:
            return None, None
        delta = [(le, n - prev[2].get(le, 0.0)) for le, n in sorted(buckets.items())]
        return (count - prev[1]) / (now - prev[0]), histogram_quantile(0.99, delta)

    def stop(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGINT)  # hey stops and still prints its report
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def report(self) -> str:
        text = self.log.read_text() if self.log.exists() else ""
        # Keep the summary, the percentiles and the codes; drop the histogram bars.
        keep, skip = [], False
        for line in text.splitlines():
            if line.startswith("Response time histogram"):
                skip = True
            elif line.startswith(("Latency distribution", "Status code", "Error distribution")):
                skip = False
            elif line.startswith("Details"):
                skip = True
            if not skip:
                keep.append(line)
        return "\n".join(keep).strip() or "hey printed nothing"


class BuiltinLoad:
    tool = "built-in"

    def __init__(self, url: str, duration: int, concurrency: int):
        self.gen = loadgen.LoadGen(url, duration, concurrency)

    def start(self) -> "BuiltinLoad":
        console.say(f"  built-in load generator: {self.gen.concurrency} connections, {self.gen.duration:.0f}s, "
                    f"GET {self.gen.url} (hey not installed)", "dim")
        self.gen.start()
        return self

    def running(self) -> bool:
        return self.gen.running()

    def wait(self, timeout=None) -> bool:
        return self.gen.wait(timeout)

    def progress_line(self) -> str:
        return self.gen.progress_line()

    def window(self, seconds: float):
        return self.gen.window(seconds)

    def stop(self) -> None:
        self.gen.stop()
        self.gen.wait(2)

    def report(self) -> str:
        return self.gen.summary().text()


def make_load(url: str, duration: int, concurrency: int, use_hey: bool | None = None):
    if use_hey is None:
        use_hey = shutil.which("hey") is not None
    return (HeyLoad if use_hey else BuiltinLoad)(url, duration, concurrency)


# --- plumbing ---------------------------------------------------------------------------------------

def wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as res:
                if res.status == 200:
                    return
                last = f"HTTP {res.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() > deadline:
            raise LabError(f"the app did not become ready within {timeout:.0f}s ({last} from /readyz)",
                           "its pods are starting or failing",
                           "look at `kubectl get pods` and `kubectl logs deploy/app` in that namespace")
        time.sleep(0.5)


def _settings(cfg) -> tuple[str, int, int, int]:
    duration = int(cfg.HPA_DURATION)
    if duration < 1:
        raise LabError(f"HPA_DURATION={cfg.HPA_DURATION} is too short", "the load needs at least 1 second",
                       "use e.g. HPA_DURATION=60")
    return cfg.HPA_NAMESPACE, duration, int(cfg.HPA_CONCURRENCY), int(cfg.HPA_PAUSE)


def _show(ns, elapsed, hpa, pods) -> None:
    if hpa is None:
        console.warn(f"HPA {names.APP} in {ns} disappeared")
        return
    print(render(ns, elapsed, hpa, pods), flush=True)


# --- tasks --------------------------------------------------------------------------------------------

def hpa_demo(lab) -> dict:
    ns, duration, concurrency, pause = _settings(lab.cfg)
    if lab.dry_run:
        console.info(f"dry run: would port-forward to svc/{names.APP} in {ns}, load /work for {duration}s "
                     f"at {concurrency} and watch the HPA every {pause}s (changes nothing in the cluster)")
        return {}
    hpa = require_hpa(lab, ns)
    metrics_ok = metrics_api_ready(lab)
    if not metrics_ok:
        console.warn(METRICS_HINT)
    samples: list[Sample] = []
    load = None
    interrupted = False
    try:
        with interrupt_on_sigterm(), portforward.forward(lab, ns) as base:
            console.info(f"port-forward {base} → svc/{names.APP}:{names.APP_PORT} in {ns}; waiting for /readyz")
            wait_ready(base)
            hpa, pods = read(lab, ns)
            _show(ns, 0, hpa, pods)
            samples.append(to_sample(0, hpa))
            load = make_load(base + "/work", duration, concurrency)
            try:
                load.start()
                started = time.monotonic()
                next_progress, next_sample = started + 1, started + pause
                while not load.wait(max(0.0, min(next_progress, next_sample) - time.monotonic())):
                    now = time.monotonic()
                    if now >= next_progress:
                        line = load.progress_line()
                        if line:
                            console.say(line)
                        next_progress += 1
                    if now >= next_sample:
                        hpa, pods = read(lab, ns)
                        rps, p99 = load.window(min(pause, now - started))
                        samples.append(to_sample(now - started, hpa, rps, p99))
                        _show(ns, now - started, hpa, pods)
                        next_sample += pause
                        if now - started > duration + 60:  # never outlive a stuck load
                            break
                hpa, pods = read(lab, ns)
                end = time.monotonic() - started
                samples.append(to_sample(end, hpa, *load.window(min(pause, max(end, 0.001)))))
                _show(ns, end, hpa, pods)
            finally:
                load.stop()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if load is not None:
            print()
            console.say(f"load ({load.tool}):", "bold")
            for line in load.report().splitlines():
                console.info(line)
    # Interrupted: the load ran only as long as the last sample says, not HPA_DURATION.
    _conclude(samples, hpa, metrics_ok, round(samples[-1].t) if interrupted and samples else duration)
    path = _timeline(samples, ns)
    if interrupted:
        raise LabError("hpa_demo interrupted", "the port-forward and the load were stopped",
                       "`doit hpa_reset` scales the app back down")
    return {"max_replicas": scale_report(samples)[1], "timeline": str(path) if path else ""}


def _conclude(samples: list[Sample], hpa: dict | None, metrics_ok: bool, duration: int) -> None:
    start, top, first, reached = scale_report(samples)
    print()
    if top is None:
        console.warn("no HPA status was read")
    elif top > start:
        console.ok(f"scaled from {start} to {top} replicas: first scale-up after {first:.0f}s, "
                   f"maximum reached after {reached:.0f}s of load")
    else:
        console.warn(f"no scale-up within {duration}s (replicas stayed at {start}); the HPA reacts to the "
                     f"average over its pods — try a longer HPA_DURATION or a higher HPA_CONCURRENCY")
    if not metrics_ok or (hpa and metrics_unavailable(hpa)):
        console.warn(METRICS_HINT)
    console.info("`doit hpa_reset` scales back to the minimum now (the HPA would after ~5 minutes)")


def _timeline(samples: list[Sample], ns: str):
    if len(samples) < 2:
        return None
    try:
        from tasks.core import svg
    except ImportError:
        return None
    path = state.path(TIMELINE)
    svg.write_timeline(samples, path, title=f"HPA {names.APP} in {ns}")
    console.info(f"timeline: {path}")
    return path


def hpa_load(lab) -> dict:
    ns, duration, concurrency, _ = _settings(lab.cfg)
    if lab.dry_run:
        console.info(f"dry run: would port-forward to svc/{names.APP} in {ns} and load /work for {duration}s")
        return {}
    try:
        with interrupt_on_sigterm(), portforward.forward(lab, ns) as base:
            console.info(f"port-forward {base} → svc/{names.APP}:{names.APP_PORT} in {ns}; waiting for /readyz")
            wait_ready(base)
            load = make_load(base + "/work", duration, concurrency)
            try:
                load.start()
                next_progress = time.monotonic() + 1
                while not load.wait(max(0.0, next_progress - time.monotonic())):
                    line = load.progress_line()
                    if line:
                        console.say(line)
                    next_progress += 1
            finally:
                load.stop()
                for line in load.report().splitlines():
                    console.info(line)
    except KeyboardInterrupt:
        raise LabError("hpa_load interrupted", "the port-forward and the load were stopped") from None
    return {}


def hpa_watch(lab) -> None:
    ns, duration, _, pause = _settings(lab.cfg)
    require_hpa(lab, ns)
    if not metrics_api_ready(lab):
        console.warn(METRICS_HINT)
    started = time.monotonic()
    try:
        while True:
            hpa, pods = read(lab, ns)
            elapsed = time.monotonic() - started
            _show(ns, elapsed, hpa, pods)
            if elapsed + pause > duration:
                break
            time.sleep(max(0.0, started + math.floor(elapsed / pause + 1) * pause - time.monotonic()))
    except KeyboardInterrupt:
        console.info("stopped")


def hpa_stop(lab) -> None:
    ended = portforward.stop_leftovers()
    if ended:
        console.ok(f"ended {ended} leftover port-forward(s)")
    else:
        console.info("no leftover port-forwards")


# The HPA controller's defaults (kube-controller-manager): a metric within 10 % of its target asks
# for no change; scale-up stabilization 0 s, scale-down 300 s unless spec.behavior says otherwise.
TOLERANCE = 0.1


def recommendation(hpa: dict) -> int | None:
    """The replicas the HPA's current metrics ask for, before its stabilization windows (None: no metrics).

    The controller's own rule: ceil(currentReplicas × current/target) per metric, no change within the
    tolerance, the highest of the metrics.
    """
    cur = (hpa.get("status") or {}).get("currentReplicas")
    metrics = [(current, target) for _, current, target in resource_metrics(hpa) if current is not None and target]
    if not cur or not metrics:
        return None
    asks = [cur if abs(current / target - 1) <= TOLERANCE else math.ceil(cur * current / target)
            for current, target in metrics]
    return max(asks)


def wait_until_unloaded(lab, ns: str, low: int, timeout: float, poll: float = 5) -> None:
    """Wait until the HPA's metrics no longer carry load that would keep more than `low` replicas.

    Scaling down earlier is undone: with a scale-up stabilization of 0 s the HPA raises the replicas
    again on its next sync, and its 300 s scale-down window then holds them there. The metrics lag
    the load by up to a metrics-server resolution plus an HPA sync, so a demo that just ended still
    shows for a while.
    """
    deadline = time.monotonic() + timeout
    said = False
    while True:
        hpa = require_hpa(lab, ns)
        asks = recommendation(hpa)
        if asks is None or asks <= low:
            return
        loaded = "  ".join(metric_text(*m) for m in resource_metrics(hpa))
        if not said:
            console.info(f"HPA {names.APP} ({ns}) still sees load ({loaded}: {asks} replicas); waiting for it to leave "
                         "its metrics before scaling down")
            said = True
        if time.monotonic() > deadline:
            raise LabError(f"HPA {names.APP} in {ns} still sees load after {timeout:.0f}s ({loaded}: it asks for {asks} "
                           f"replicas, the minimum is {low})",
                           "scaling down now would be undone at once (the HPA's scale-up stabilization is 0 s), "
                           "then held by its 300 s scale-down window",
                           "stop the load (`doit hpa_stop`, or end a running `doit hpa_load`/`hpa_demo`), then run "
                           "`doit hpa_reset` again")
        time.sleep(poll)


def hpa_reset(lab, timeout: float = 180, unload_timeout: float = 180) -> None:
    """Back to the HPA's minimum, the way the HPA accepts it.

    First the load must be gone from the HPA's metrics (see wait_until_unloaded); then scaling the
    Deployment to minReplicas sticks: the HPA's recommendation is then at most that minimum, and a
    scale-down window only delays the HPA's own scale-downs, it never raises the replicas.
    """
    ns = lab.cfg.HPA_NAMESPACE
    hpa = require_hpa(lab, ns)
    low = int((hpa.get("spec") or {}).get("minReplicas") or 1)
    pause = int(lab.cfg.HPA_PAUSE)  # seconds between samples, as in hpa_watch
    if not lab.dry_run:
        wait_until_unloaded(lab, ns, low, unload_timeout, poll=pause)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", ns, "scale", f"deployment/{names.APP}", f"--replicas={low}"),
             timeout=60)
    if lab.dry_run:
        return
    deadline = time.monotonic() + timeout
    while True:
        dep = kube.get_json(lab, "deployment", names.APP, "-n", ns, quiet=True)
        want = (dep.get("spec") or {}).get("replicas")
        if want is not None and want > low:
            hpa = require_hpa(lab, ns)
            raise LabError(f"the HPA scaled deployment/{names.APP} in {ns} back to {want}",
                           "its metrics show load again (" + ("  ".join(metric_text(*m) for m in resource_metrics(hpa))
                                                            or "no resource metrics") + ")",
                           "stop the load (`doit hpa_stop`), then run `doit hpa_reset` again")
        st = dep.get("status") or {}
        have, ready = st.get("replicas", 0), st.get("readyReplicas", 0)
        pods = [p for p in kube.items(kube.get_json(lab, "pods", "-n", ns, "-l", APP_SELECTOR, quiet=True))
                if not p["metadata"].get("deletionTimestamp")]
        if have == low and ready == low and len(pods) <= low:
            break
        if time.monotonic() > deadline:
            raise LabError(f"deployment/{names.APP} in {ns} did not settle at {low} ready replicas within {timeout:.0f}s",
                           f"it has {ready}/{have} ready", f"look at `kubectl -n {ns} get pods`")
        time.sleep(min(2, pause))
    console.ok(f"deployment/{names.APP} in {ns}: {low}/{low} ready (the HPA minimum)")
