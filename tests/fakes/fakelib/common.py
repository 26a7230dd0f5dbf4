"""Shared machinery: state file (flock-guarded JSON), call log, failure
injection, process helpers."""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

FAKELIB_DIR = os.path.dirname(os.path.abspath(__file__))
FAKES_DIR = os.path.dirname(FAKELIB_DIR)


class Exit(Exception):
    def __init__(self, rc=0):
        super().__init__(rc)
        self.rc = rc


def out(s="", end="\n"):
    sys.stdout.write(s + end)
    sys.stdout.flush()


def err(s="", end="\n"):
    sys.stderr.write(s + end)
    sys.stderr.flush()


def fail(msg, rc=1):
    err(msg)
    raise Exit(rc)


def state_dir():
    d = os.environ.get("FAKE_STATE_DIR")
    if not d:
        sys.stderr.write("fake: FAKE_STATE_DIR not set\n")
        sys.exit(2)
    os.makedirs(d, exist_ok=True)
    return d


def empty_state():
    return {
        "docker": {"containers": {}, "images": {}, "networks": {
            "bridge": {"name": "bridge", "id": sha_hex("network-bridge"), "driver": "bridge"},
            "host": {"name": "host", "id": sha_hex("network-host"), "driver": "host"},
            "none": {"name": "none", "id": sha_hex("network-none"), "driver": "null"},
        }, "volumes": {}},
        "kubeconfigs": {},
        "clusters": {},
        "background": {},
        "apps": {},
        "git_repos": {},
        "load": {},
        "seq": 0,
    }


class State:
    """Exclusive lock over STATE/state.json for the duration of a call (or
    until release())."""

    def __init__(self, sdir=None):
        self.dir = sdir or state_dir()
        self.path = os.path.join(self.dir, "state.json")
        self._lockf = None
        self._text = None  # state.json as read, to skip writing it back unchanged
        self.data = None

    def acquire(self):
        if self._lockf is None:
            self._lockf = open(os.path.join(self.dir, "state.lock"), "a+")
            fcntl.flock(self._lockf, fcntl.LOCK_EX)
            try:
                with open(self.path) as f:
                    self._text = f.read()
                self.data = json.loads(self._text)
            except FileNotFoundError:
                self._text = None
                self.data = empty_state()
            base = empty_state()
            for k, v in base.items():
                self.data.setdefault(k, v)
        return self.data

    def save(self):
        if self._lockf is None:
            return
        # Compact: json's C encoder only serves indent=None, and the state of a built lab is ~1 MB,
        # which the pure-Python encoder takes ~10x longer to write on every call. A call that
        # changed nothing writes nothing.
        text = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        if text == self._text:
            return
        tmp = self.path + ".tmp.%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)
        self._text = text

    def release(self, save=True):
        if self._lockf is not None:
            if save:
                self.save()
            fcntl.flock(self._lockf, fcntl.LOCK_UN)
            self._lockf.close()
            self._lockf = None

    @property
    def held(self):
        return self._lockf is not None

    def next_seq(self):
        self.data["seq"] = self.data.get("seq", 0) + 1
        return self.data["seq"]


@contextlib.contextmanager
def locked_state(sdir=None):
    st = State(sdir)
    st.acquire()
    try:
        yield st
    finally:
        st.release()


# ---------------------------------------------------------------- ids, time

def sha_hex(s):
    if isinstance(s, str):
        s = s.encode()
    return hashlib.sha256(s).hexdigest()


def rand_hex(n=64):
    return "".join(random.choice("0123456789abcdef") for _ in range(n))


def now_iso(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def parse_duration(s):
    """Go time.ParseDuration subset -> seconds (float). Raises ValueError."""
    import re
    if s in ("0",):
        return 0.0
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)", s or "")
    if not m:
        raise ValueError('time: invalid duration "%s"' % s)
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s):
        mult = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
        total += float(num) * mult
    return total


def fmt_duration(sec):
    """Go-style duration string (1m0s, 5m0s, 30s)."""
    sec = int(sec)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


def age(ts):
    """kubectl-style age from an ISO timestamp."""
    try:
        t = time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except Exception:
        return "<unknown>"
    d = max(0, int(time.time() - t))
    if d < 120:
        return "%ds" % d
    if d < 600:
        return "%dm%ds" % (d // 60, d % 60) if d % 60 else "%dm" % (d // 60)
    if d < 3 * 3600:
        return "%dm" % (d // 60)
    if d < 48 * 3600:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


# ---------------------------------------------------------------- call log & injection

def log_call(tool, argv, mutating, rc, t):
    sdir = os.environ.get("FAKE_STATE_DIR")
    if not sdir:
        return
    line = json.dumps({"tool": tool, "argv": list(argv), "mutating": bool(mutating), "rc": rc, "t": t,
                       "end": time.time()})
    fd = os.open(os.path.join(sdir, "calls.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _prefixes(text):
    return [p.strip() for p in (text or "").split(";") if p.strip()]


def _matches(prefix, tool, words):
    pw = prefix.split()
    if not pw or pw[0] != tool:
        return False
    pw = pw[1:]
    return words[:len(pw)] == pw


def check_injection(tool, words):
    """FAKE_FAIL / STATE/fail -> exit 1; FAKE_PAUSE_AT -> touch STATE/paused, sleep."""
    sdir = state_dir()
    prefixes = _prefixes(os.environ.get("FAKE_FAIL"))
    try:
        with open(os.path.join(sdir, "fail")) as f:
            prefixes += _prefixes(f.read().replace("\n", ";"))
    except FileNotFoundError:
        pass
    for p in prefixes:
        if _matches(p, tool, words):
            err("fake: injected failure: %s" % p)
            raise Exit(1)
    for p in _prefixes(os.environ.get("FAKE_PAUSE_AT")):
        if _matches(p, tool, words):
            with open(os.path.join(sdir, "paused"), "w") as f:
                f.write("%d %s\n" % (os.getpid(), p))
            deadline = time.time() + 60
            while time.time() < deadline:
                time.sleep(0.2)
                if not os.path.exists(os.path.join(sdir, "paused")):
                    break


def daemon_down():
    return os.path.exists(os.path.join(state_dir(), "daemon_down"))


DAEMON_DOWN_MSG = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def run_tool(tool, argv, classify, main):
    """Common entry: state dir check, classify, injection, run, log."""
    state_dir()
    t = time.time()
    try:
        words, mutating = classify(argv)
    except Exception:
        words, mutating = [a for a in argv if not a.startswith("-")], True
    rc = 0
    logged = [False]

    def do_log(code):
        if not logged[0]:
            logged[0] = True
            log_call(tool, argv, mutating, code, t)

    def on_term(signum, frame):
        do_log(-signum)
        kill_children()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        check_injection(tool, words)
        rc = main(argv) or 0
    except Exit as e:
        rc = e.rc
    except KeyboardInterrupt:
        rc = 130
    except BrokenPipeError:
        rc = 0
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
    do_log(rc)
    return rc


# ---------------------------------------------------------------- processes

_children = []


def kill_children():
    # A port-forward's app child is the fake's private stand-in, not a pod being terminated
    # (a real port-forward has no child): it ends at once, without a graceful shutdown.
    for p in _children:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except Exception:
            try:
                p.kill()
            except Exception:
                pass
    for p in _children:
        try:
            p.wait(2)
        except Exception:
            pass
    if _children and os.environ.get("FAKE_STATE_DIR"):
        try:
            with locked_state() as st:
                for p in _children:
                    st.data["background"].pop(str(p.pid), None)
                st.data["background"].pop(str(os.getpid()), None)
        except Exception:
            pass
    del _children[:]


def _pdeathsig():
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(cmd, env=None, cwd=None, logfile=None, tie_to_parent=False):
    """Start a process in its own session. tie_to_parent: dies with us."""
    lf = open(logfile, "ab") if logfile else subprocess.DEVNULL

    def pre():
        os.setsid()
        if tie_to_parent:
            _pdeathsig()

    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                         preexec_fn=pre, close_fds=True)
    if tie_to_parent:
        _children.append(p)
    return p


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombie check
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return False
    except Exception:
        pass
    return True


def kill_pid(pid, wait=2.0):
    pid = int(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except Exception:
            try:
                os.kill(pid, sig)
            except Exception:
                return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                r, _ = os.waitpid(pid, os.WNOHANG)
                if r == pid:
                    return
            except ChildProcessError:
                pass
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def port_busy(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
    try:
        s.bind((host, int(port)))
        return False
    except OSError as e:
        return e.errno in (errno.EADDRINUSE, errno.EACCES)
    finally:
        s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=0.3):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def register_bg(st, pid, kind, desc):
    st.data["background"][str(pid)] = {"kind": kind, "desc": desc, "started": time.time()}


def real_kubectl():
    return os.environ.get("FAKE_REAL_KUBECTL", "/usr/bin/kubectl")


class _Yaml:
    """PyYAML, parsing with LibYAML when PyYAML has it (several times faster on kustomize output).
    What the C parser refuses is parsed again by the pure-Python one, so errors read as before."""

    def __init__(self, yaml):
        self._yaml = yaml
        self._loader = getattr(yaml, "CSafeLoader", None)

    def __getattr__(self, name):
        return getattr(self._yaml, name)

    def safe_load(self, stream):
        if self._loader is None:
            return self._yaml.safe_load(stream)
        text = stream if isinstance(stream, (str, bytes)) else stream.read()
        try:
            return self._yaml.load(text, Loader=self._loader)
        except self._yaml.YAMLError:
            return self._yaml.safe_load(text)

    def safe_load_all(self, stream):
        if self._loader is None:
            return self._yaml.safe_load_all(stream)
        text = stream if isinstance(stream, (str, bytes)) else stream.read()
        try:
            return list(self._yaml.load_all(text, Loader=self._loader))
        except self._yaml.YAMLError:
            return self._yaml.safe_load_all(text)


_yaml = None


def load_yaml():
    global _yaml
    if _yaml is None:
        try:
            import yaml  # noqa
        except ImportError:
            sys.stderr.write("fake: PyYAML is required by the fakes (pip install pyyaml) for the python3 first on PATH "
                             "(%s)\n" % sys.executable)
            sys.exit(3)
        _yaml = _Yaml(yaml)
    return _yaml
