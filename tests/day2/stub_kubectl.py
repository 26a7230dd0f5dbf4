"""A tiny kubectl stand-in for the process-level tests of tests/day2 (not the shared fakes).

    get hpa|pods|apiservice|deployment ... -o json   canned JSON
    port-forward ...                                 serves /readyz, /healthz, /work on a free
                                                     port, prints kubectl's "Forwarding from" line
Its pid for port-forward is appended to $STUB_DIR/port-forward.pids.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def get(args):
    kind = args[args.index("get") + 1]
    if kind == "hpa":
        doc = {"kind": "HorizontalPodAutoscaler",
               "spec": {"minReplicas": 1, "maxReplicas": 2,
                        "metrics": [{"type": "Resource",
                                     "resource": {"name": "cpu", "target": {"averageUtilization": 70}}}]},
               "status": {"currentReplicas": 1, "desiredReplicas": 2,
                          "currentMetrics": [{"type": "Resource",
                                              "resource": {"name": "cpu", "current": {"averageUtilization": 99}}}]}}
    elif kind == "pods":
        doc = {"kind": "PodList", "items": [{"metadata": {"name": "app-1"}, "spec": {"nodeName": "w1"},
                                             "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}}]}
    elif kind == "apiservice":
        doc = {"status": {"conditions": [{"type": "Available", "status": "True"}]}}
    else:
        sys.stderr.write(f'Error from server (NotFound): {kind} not found\n')
        return 1
    print(json.dumps(doc))
    return 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/work":
            time.sleep(0.05)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def port_forward():
    with open(os.path.join(os.environ["STUB_DIR"], "port-forward.pids"), "a") as f:
        f.write(f"{os.getpid()}\n")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(f"Forwarding from 127.0.0.1:{srv.server_address[1]} -> 8000", flush=True)
    srv.serve_forever()


def main(args):
    if "port-forward" in args:
        port_forward()
        return 0
    if "get" in args:
        return get(args)
    sys.stderr.write(f"stub kubectl: unsupported {args}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
