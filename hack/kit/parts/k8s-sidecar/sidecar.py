"""Stand-in for k8s-sidecar (quay.io/kiwigrid/k8s-sidecar), the container Grafana's chart runs
beside Grafana to turn labelled ConfigMaps/Secrets into files (dashboards, datasources).

Configured as the original, by environment (the variables Grafana's chart sets):
  LABEL, LABEL_VALUE      the label selecting the objects (any value when LABEL_VALUE is unset)
  FOLDER                  where each data key becomes a file
  FOLDER_ANNOTATION       annotation naming another folder for an object (default k8s-sidecar-target-directory;
                          relative paths are under FOLDER)
  RESOURCE                configmap, secret or both (default configmap)
  NAMESPACE               comma-separated namespaces, or ALL (default: the pod's own)
  METHOD                  WATCH (default), LIST (write once and exit) or SLEEP (list every SLEEP_TIME s)
  UNIQUE_FILENAMES        true: files are named namespace_kind_name_key, so two objects cannot clash
  REQ_URL, REQ_METHOD, REQ_USERNAME, REQ_PASSWORD, REQ_PAYLOAD
                          a request after every change (Grafana's reload API)
  SCRIPT                  a script run after every change
  WATCH_SERVER_TIMEOUT, WATCH_CLIENT_TIMEOUT, HEALTH_PORT (default 8080: GET /healthz)

Not carried over: keys ending in `.url` (downloads), REQ_* retries/TLS options, logging config.
Kit tooling for machines that reach no image registry; a user's cluster runs the real image.
"""
from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LOCK = threading.Lock()
HEALTH = {"ok": False}


def log(level: str, msg: str, **fields) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    print(json.dumps({"time": now, "level": level.upper(), "msg": msg, **fields}), flush=True)


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


class Settings:
    def __init__(self) -> None:
        self.label = env("LABEL")
        if not self.label:
            raise SystemExit("k8s-sidecar: LABEL must be set (the label selecting ConfigMaps/Secrets)")
        self.label_value = env("LABEL_VALUE")
        self.folder = Path(env("FOLDER") or "")
        if not env("FOLDER"):
            raise SystemExit("k8s-sidecar: FOLDER must be set (where the files are written)")
        self.annotation = env("FOLDER_ANNOTATION", "k8s-sidecar-target-directory")
        resource = env("RESOURCE", "configmap").lower()
        self.kinds = ["configmap", "secret"] if resource == "both" else [resource]
        if not set(self.kinds) <= {"configmap", "secret"}:
            raise SystemExit(f"k8s-sidecar: RESOURCE must be configmap, secret or both, not {resource!r}")
        spec = env("NAMESPACE") or (SA_NAMESPACE.read_text().strip() if SA_NAMESPACE.exists() else "default")
        self.namespaces = None if spec == "ALL" else [n.strip() for n in spec.split(",") if n.strip()]
        self.method = env("METHOD", "WATCH").upper()
        self.sleep = float(env("SLEEP_TIME", "60"))
        self.unique = env("UNIQUE_FILENAMES").lower() == "true"
        self.server_timeout = int(env("WATCH_SERVER_TIMEOUT", "60"))
        self.client_timeout = float(env("WATCH_CLIENT_TIMEOUT", "66"))

    @property
    def selector(self) -> str:
        return f"{self.label}={self.label_value}" if self.label_value else self.label


class Writer:
    """The files of each object, so an update or a delete removes what the object no longer holds."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.owned: dict[tuple[str, str, str], set[Path]] = {}

    def folder_for(self, obj) -> Path:
        target = (obj.metadata.annotations or {}).get(self.cfg.annotation)
        if not target:
            return self.cfg.folder
        path = Path(target)
        return path if path.is_absolute() else self.cfg.folder / path

    def files(self, kind: str, obj) -> dict[Path, bytes]:
        folder = self.folder_for(obj)
        out: dict[Path, bytes] = {}
        data = obj.data or {}
        for key, value in data.items():
            raw = base64.b64decode(value) if kind == "secret" else value.encode()
            out[folder / self.name(kind, obj, key)] = raw
        for key, value in (getattr(obj, "binary_data", None) or {}).items():
            out[folder / self.name(kind, obj, key)] = base64.b64decode(value)
        return out

    def name(self, kind: str, obj, key: str) -> str:
        return f"{obj.metadata.namespace}_{kind}_{obj.metadata.name}_{key}" if self.cfg.unique else key

    def apply(self, kind: str, event: str, obj) -> bool:
        ident = (kind, obj.metadata.namespace, obj.metadata.name)
        with LOCK:
            old = self.owned.get(ident, set())
            new = {} if event == "DELETED" else self.files(kind, obj)
            changed = False
            for path in old - set(new):
                if path.exists():
                    path.unlink()
                    log("info", "removed file", file=str(path), resource=f"{kind}/{ident[1]}/{ident[2]}")
                    changed = True
            for path, body in new.items():
                if path.exists() and path.read_bytes() == body:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(body)
                tmp.replace(path)
                log("info", "wrote file", file=str(path), resource=f"{kind}/{ident[1]}/{ident[2]}")
                changed = True
            if new:
                self.owned[ident] = set(new)
            else:
                self.owned.pop(ident, None)
            return changed


def after_change() -> None:
    url = env("REQ_URL")
    if url:
        req = urllib.request.Request(url, method=env("REQ_METHOD", "GET").upper(),
                                     data=env("REQ_PAYLOAD").encode() or None,
                                     headers={"Content-Type": "application/json"})
        user, password = env("REQ_USERNAME"), env("REQ_PASSWORD")
        if user:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                log("info", "request after change", url=url, status=res.status)
        except OSError as exc:  # Grafana not up yet: the next change asks again
            log("warning", "request after change failed", url=url, error=str(exc))
    script = env("SCRIPT")
    if script:
        subprocess.run([script], check=False)


def lister(kind: str, namespace: str | None):
    """(the client's list method, its positional args): bound methods, not wrappers, because
    the client's watch reads the method's name and docstring to decode events."""
    core = client.CoreV1Api()
    if kind == "configmap":
        return (core.list_config_map_for_all_namespaces, ()) if namespace is None \
            else (core.list_namespaced_config_map, (namespace,))
    return (core.list_secret_for_all_namespaces, ()) if namespace is None \
        else (core.list_namespaced_secret, (namespace,))


def list_once(cfg: Settings, writer: Writer) -> bool:
    """Every selected object's files written; the files of objects gone since the last list removed."""
    changed, seen = False, set()
    for kind in cfg.kinds:
        for ns in cfg.namespaces or [None]:
            method, args = lister(kind, ns)
            for obj in method(*args, label_selector=cfg.selector).items:
                seen.add((kind, obj.metadata.namespace, obj.metadata.name))
                changed |= writer.apply(kind, "ADDED", obj)
    for kind, ns, name in set(writer.owned) - seen:
        gone = client.V1ConfigMap(metadata=client.V1ObjectMeta(namespace=ns, name=name))
        changed |= writer.apply(kind, "DELETED", gone)
    return changed


def watch_forever(cfg: Settings, writer: Writer, kind: str, namespace: str | None) -> None:
    method, args = lister(kind, namespace)
    while True:
        try:
            for item in watch.Watch().stream(method, *args, label_selector=cfg.selector,
                                             timeout_seconds=cfg.server_timeout,
                                             _request_timeout=cfg.client_timeout):
                if item["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    if writer.apply(kind, item["type"], item["object"]):
                        after_change()
            HEALTH["ok"] = True
        except ApiException as exc:
            log("error", "watch failed", resource=kind, namespace=namespace or "ALL", status=exc.status,
                reason=exc.reason)
            time.sleep(5)
        except Exception as exc:  # connection reset, client timeout: the next watch resumes
            log("warning", "watch ended", resource=kind, namespace=namespace or "ALL", error=repr(exc))
            time.sleep(1)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        ok = self.path.startswith("/healthz") and HEALTH["ok"]
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"not ready")

    def log_message(self, *args) -> None:
        pass


def main() -> int:
    cfg = Settings()
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    writer = Writer(cfg)
    cfg.folder.mkdir(parents=True, exist_ok=True)
    log("info", "starting", label=cfg.selector, folder=str(cfg.folder), resources=cfg.kinds,
        namespaces=cfg.namespaces or "ALL", method=cfg.method)
    if list_once(cfg, writer):
        after_change()
    HEALTH["ok"] = True
    if cfg.method == "LIST":
        return 0
    server = http.server.ThreadingHTTPServer(("", int(env("HEALTH_PORT", "8080"))), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if cfg.method == "SLEEP":
        while True:
            time.sleep(cfg.sleep)
            if list_once(cfg, writer):
                after_change()
    threads = [threading.Thread(target=watch_forever, args=(cfg, writer, kind, ns), daemon=True)
               for kind in cfg.kinds for ns in cfg.namespaces or [None]]
    for t in threads:
        t.start()
    while all(t.is_alive() for t in threads):
        time.sleep(1)
    return 1


if __name__ == "__main__":
    sys.exit(main())
