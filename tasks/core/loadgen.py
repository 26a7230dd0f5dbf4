"""HTTP load for the HPA demo: `hey` when installed, else a built-in generator.

The built-in generator is bounded in time *and* count and stops by itself:

- `concurrency` threads, each with one keep-alive TCP connection and a minimal
  HTTP/1.1 client on a raw socket (request bytes prepared once; the response is
  parsed just enough to find its status and its end). Blocking socket calls
  release the GIL, and the per-request Python work is a few microseconds, so
  on 2 cores it reaches a good share of `hey`'s rate (hack/bench/loadgen_bench.py).
- latencies are kept exactly (one float per request), so its percentiles are
  computed like hey's, not estimated.
- `Summary` is the hey-like report: total, requests/s, p50/p90/p99, status codes,
  errors by kind.

Pure Python, stdlib only; nothing here talks to the cluster.
"""
from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tasks.core.stats import percentile

MAX_REQUESTS = 5_000_000  # hard bound on one run, whatever the duration
REQUEST_TIMEOUT = 10.0  # seconds for one request (connect + response)


# --- results -------------------------------------------------------------------

@dataclass
class Summary:
    """What one run did: the hey-like report."""

    total: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful responses only
    codes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    tool: str = "built-in"

    @property
    def rps(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def quantiles(self) -> dict[int, float | None]:
        ordered = sorted(self.latencies)
        return {q: percentile(ordered, q) for q in (50, 90, 99)}

    def lines(self) -> list[str]:
        qs = self.quantiles()
        out = ["Summary:",
               f"  Total:        {self.elapsed:.4f} secs",
               f"  Requests:     {self.total}",
               f"  Requests/sec: {self.rps:.1f}"]
        if self.latencies:
            out.append(f"  Slowest:      {max(self.latencies):.4f} secs")
            out.append(f"  Fastest:      {min(self.latencies):.4f} secs")
            out.append(f"  Average:      {sum(self.latencies) / len(self.latencies):.4f} secs")
        out.append("")
        out.append("Latency distribution:")
        for q, v in qs.items():
            out.append(f"  {q}% in {v:.4f} secs" if v is not None else f"  {q}% in -")
        out.append("")
        out.append("Status code distribution:")
        for code, n in sorted(self.codes.items()):
            out.append(f"  [{code}]\t{n} responses")
        if not self.codes:
            out.append("  (no responses)")
        if self.errors:
            out.append("")
            out.append("Error distribution:")
            for kind, n in sorted(self.errors.items(), key=lambda kv: -kv[1]):
                out.append(f"  [{n}]\t{kind}")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


# --- a minimal keep-alive HTTP/1.1 client ----------------------------------------------

class BadResponse(Exception):
    """The server answered something that is not HTTP/1.x."""


def error_kind(exc: BaseException) -> str:
    """A short, stable name for an error, like hey's error distribution."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        return "broken pipe"
    if isinstance(exc, BadResponse):
        return f"bad response: {exc}" if str(exc) else "bad response"
    if isinstance(exc, socket.gaierror):
        return "name resolution failed"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


class Connection:
    """One keep-alive connection; `get()` returns (status, body length)."""

    def __init__(self, host: str, port: int, request: bytes, timeout: float):
        self.addr = (host, port)
        self.request = request
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self) -> None:
        sock = socket.create_connection(self.addr, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = b""

    def get(self) -> int:
        reused = self.sock is not None
        if not reused:
            self._connect()
        try:
            return self._exchange()
        except (ConnectionResetError, BrokenPipeError, BadResponse) as exc:
            # A keep-alive connection the server closed while idle: retry once, fresh.
            self.close()
            if reused and (not isinstance(exc, BadResponse) or str(exc) == "connection closed"):
                self._connect()
                return self._exchange()
            raise

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise BadResponse("connection closed")
        return chunk

    def _exchange(self) -> int:
        self.sock.sendall(self.request)
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            buf += self._recv()
            end = buf.find(b"\r\n\r\n")
        head = buf[:end]
        rest = buf[end + 4:]
        if not head.startswith(b"HTTP/1."):
            self.close()
            raise BadResponse("not HTTP/1.x")
        try:
            status = int(head[9:12])
        except ValueError:
            self.close()
            raise BadResponse("bad status line") from None
        length = -1
        chunked = False
        close = head.startswith(b"HTTP/1.0")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            rest = self._read_chunked(rest)
        elif length >= 0:
            while len(rest) < length:
                rest += self._recv()
            rest = rest[length:]
        else:  # body ends when the server closes
            try:
                while self.sock.recv(65536):
                    pass
            except OSError:
                pass
            close, rest = True, b""
        if close:
            self.close()
        else:
            self.buf = rest
        return status

    def _read_chunked(self, buf: bytes) -> bytes:
        while True:
            end = buf.find(b"\r\n")
            while end < 0:
                buf += self._recv()
                end = buf.find(b"\r\n")
            size = int(buf[:end].split(b";")[0], 16)
            buf = buf[end + 2:]
            if size == 0:  # trailers, then an empty line
                while True:
                    end = buf.find(b"\r\n")
                    while end < 0:
                        buf += self._recv()
                        end = buf.find(b"\r\n")
                    line, buf = buf[:end], buf[end + 2:]
                    if not line:
                        return buf
            while len(buf) < size + 2:
                buf += self._recv()
            buf = buf[size + 2:]


def build_request(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    hostport = host if port == 80 else f"{host}:{port}"
    request = (f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: gitops-lab-loadgen\r\n"
               f"Accept: */*\r\n\r\n").encode()
    return host, port, request


# --- the generator ---------------------------------------------------------------

class LoadGen:
    """`concurrency` workers sending GETs to `url` for `duration` seconds (or `max_requests`).

    start() returns at once; progress()/window() read live figures; wait() joins;
    stop() ends it early. Each worker finishes the request it has in flight.
    """

    def __init__(self, url: str, duration: float, concurrency: int, *, max_requests: int = MAX_REQUESTS,
                 timeout: float = REQUEST_TIMEOUT):
        if duration <= 0 and max_requests <= 0:
            raise ValueError("need a duration or a request count")
        self.host, self.port, self.request = build_request(url)
        self.url = url
        self.duration = float(duration)
        self.concurrency = max(1, int(concurrency))
        self.max_requests = int(max_requests)
        self.timeout = timeout
        self._stop = threading.Event()
        self._tickets = itertools.count()
        self._threads: list[threading.Thread] = []
        # Appends from many threads: list.append is atomic in CPython.
        self._done: list[float] = []  # completion time (monotonic) of every request, ok or not
        self._lat: list[float] = []  # latency of every response
        self._codes: list[int] = []  # status of every response (parallel to _lat)
        self._errors: list[str] = []
        self.started = 0.0
        self.finished = 0.0

    # -- running -------------------------------------------------------------------------
    def start(self) -> "LoadGen":
        self.started = time.monotonic()
        self.deadline = self.started + self.duration if self.duration > 0 else math.inf
        for n in range(self.concurrency):
            th = threading.Thread(target=self._worker, name=f"loadgen-{n}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def _worker(self) -> None:
        conn = Connection(self.host, self.port, self.request, self.timeout)
        done, lat, codes, errors = self._done, self._lat, self._codes, self._errors
        stop, deadline, limit, tickets = self._stop, self.deadline, self.max_requests, self._tickets
        clock = time.perf_counter
        mono = time.monotonic
        try:
            while not stop.is_set():
                now = mono()
                if now >= deadline or next(tickets) >= limit:
                    break
                t0 = clock()
                try:
                    status = conn.get()
                except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                    conn.close()
                    errors.append(error_kind(exc))
                    done.append(mono())
                    if not stop.is_set():
                        stop.wait(0.05)  # do not spin on a refused connection
                    continue
                lat.append(clock() - t0)
                codes.append(status)
                done.append(mono())
        finally:
            conn.close()

    def running(self) -> bool:
        return any(th.is_alive() for th in self._threads)

    def wait(self, timeout: float | None = None) -> bool:
        """Join the workers; True when all ended."""
        end = None if timeout is None else time.monotonic() + timeout
        for th in self._threads:
            th.join(None if end is None else max(0.0, end - time.monotonic()))
        alive = self.running()
        if not alive and not self.finished:
            self.finished = time.monotonic()
        return not alive

    def stop(self) -> None:
        self._stop.set()

    # -- figures -------------------------------------------------------------------------
    def count(self) -> int:
        return len(self._done)

    def window(self, seconds: float) -> tuple[float, float | None]:
        """(requests/s, p99 in s) over the last `seconds`."""
        now = time.monotonic()
        since = now - seconds
        done = self._done
        n = 0
        for i in range(len(done) - 1, -1, -1):
            if done[i] < since:
                break
            n += 1
        lat = self._lat
        recent = sorted(lat[max(0, len(lat) - n):])
        return n / seconds if seconds > 0 else 0.0, percentile(recent, 99)

    def progress_line(self) -> str:
        elapsed = time.monotonic() - self.started
        rps, p99 = self.window(1.0)
        errors = len(self._errors)
        bad = sum(1 for c in self._codes[-2000:] if c >= 500)
        p99s = f"{p99 * 1000:.0f}ms" if p99 is not None else "-"
        return (f"  {elapsed:5.1f}s  {self.count():>8} requests  {rps:7.0f} req/s  p99 {p99s:>6}  "
                f"errors {errors}" + (f"  5xx(recent) {bad}" if bad else ""))

    def summary(self) -> Summary:
        end = self.finished or time.monotonic()
        n = min(len(self._lat), len(self._codes))
        return Summary(total=len(self._done), elapsed=end - self.started, latencies=list(self._lat[:n]),
                       codes=Counter(self._codes[:n]), errors=Counter(self._errors))


def run(url: str, duration: float, concurrency: int, *, max_requests: int = MAX_REQUESTS,
        timeout: float = REQUEST_TIMEOUT, progress=print, every: float = 1.0) -> Summary:
    """Load `url` and return the summary; `progress(line)` every `every` seconds (None: silent).

    Ctrl-C stops the workers and still returns what was measured.
    """
    gen = LoadGen(url, duration, concurrency, max_requests=max_requests, timeout=timeout).start()
    try:
        next_tick = time.monotonic() + every
        while not gen.wait(timeout=max(0.0, next_tick - time.monotonic())):
            if progress:
                progress(gen.progress_line())
            next_tick += every
    finally:
        gen.stop()
        gen.wait(timeout + 1)
    return gen.summary()
