"""Built-in responder used when a pod's real code is not available (app/
missing, or a third-party image such as grafana). It answers every path so
connectivity tests work, and says plainly that it is the fake.

Usage: python builtin_app.py PORT NAMESPACE WORKLOAD
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    port, ns, workload = int(sys.argv[1]), sys.argv[2], sys.argv[3]

    class H(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write(fmt % args + "\n")

        def do_GET(self):
            path = self.path.split("?")[0]
            if path in ("/healthz", "/readyz", "/livez", "/-/ready", "/-/healthy", "/api/health"):
                body, ctype = b"ok\n", "text/plain"
            elif path == "/metrics":
                body = ("# HELP fake_builtin_up builtin responder of the fakes\n# TYPE fake_builtin_up gauge\n"
                        "fake_builtin_up{namespace=\"%s\",workload=\"%s\"} 1\n" % (ns, workload)).encode()
                ctype = "text/plain; version=0.0.4"
            else:
                body = (json.dumps({"fake": "builtin-responder", "namespace": ns, "workload": workload,
                                    "path": self.path}) + "\n").encode()
                ctype = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
