"""A real HTTP process standing in for the `registry:*` container.

Implements the subset of the OCI distribution API the lab and the fakes use:
  GET  /v2/                                  200 {}
  GET  /v2/_catalog
  GET  /v2/<name>/tags/list
  HEAD|GET /v2/<name>/manifests/<ref>        Docker-Content-Digest header
  HEAD|GET /v2/<name>/blobs/<digest>
  POST /v2/<name>/blobs/uploads/  + PUT ...?digest=   (monolithic uploads)
  PUT  /v2/<name>/manifests/<ref>
Storage is registry_store's layout under --root.

Usage: python registry_server.py --port P --root DIR [--host 127.0.0.1]
"""

import argparse
import json
import os
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fakelib import registry_store as rs  # noqa: E402

NAME = r"(?P<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"


def make_handler(root):
    uploads = {}

    class H(BaseHTTPRequestHandler):
        server_version = "fake-registry/3"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

        def _send(self, code, body=b"", ctype="application/json; charset=utf-8", headers=None, head=False):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode() + b"\n"
            self.send_response(code)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _err(self, code, ecode, msg, detail=None, head=False):
            self._send(code, {"errors": [{"code": ecode, "message": msg, "detail": detail}]}, head=head)

        def _route(self, head=False):
            path = urlparse(self.path).path
            if path in ("/v2", "/v2/"):
                return self._send(200, b"{}", head=head)
            if path == "/v2/_catalog":
                return self._send(200, {"repositories": rs.catalog(root)}, head=head)
            m = re.fullmatch(r"/v2/%s/tags/list" % NAME, path)
            if m:
                tags = rs.list_tags(root, m["name"])
                if tags is None:
                    return self._err(404, "NAME_UNKNOWN", "repository name not known to registry",
                                     {"name": m["name"]}, head)
                return self._send(200, {"name": m["name"], "tags": tags}, head=head)
            m = re.fullmatch(r"/v2/%s/manifests/(?P<ref>[^/]+)" % NAME, path)
            if m:
                r = rs.resolve(root, m["name"], m["ref"])
                if not r:
                    det = {"Tag": m["ref"]} if not m["ref"].startswith("sha256:") else {"Digest": m["ref"]}
                    return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown", det, head)
                d, data = r
                try:
                    mt = json.loads(data).get("mediaType") or rs.OCI_MANIFEST
                except Exception:
                    mt = rs.OCI_MANIFEST
                return self._send(200, data, ctype=mt, headers={"Docker-Content-Digest": d, "Etag": '"%s"' % d},
                                  head=head)
            m = re.fullmatch(r"/v2/%s/blobs/(?P<d>sha256:[0-9a-f]{64})" % NAME, path)
            if m:
                data = rs.get_blob(root, m["d"])
                if data is None:
                    return self._err(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": m["d"]}, head)
                return self._send(200, data, ctype="application/octet-stream",
                                  headers={"Docker-Content-Digest": m["d"]}, head=head)
            return self._err(404, "NOT_FOUND", "page not found", head=head)

        def do_GET(self):
            self._route()

        def do_HEAD(self):
            self._route(head=True)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_POST(self):
            u = urlparse(self.path)
            m = re.fullmatch(r"/v2/%s/blobs/uploads/?" % NAME, u.path)
            if not m:
                return self._err(404, "NOT_FOUND", "page not found")
            self._body()
            uid = str(uuid.uuid4())
            uploads[uid] = b""
            self._send(202, b"", headers={"Location": "/v2/%s/blobs/uploads/%s" % (m["name"], uid),
                                          "Docker-Upload-UUID": uid, "Range": "0-0"})

        def do_PATCH(self):
            u = urlparse(self.path)
            m = re.fullmatch(r"/v2/%s/blobs/uploads/(?P<u>[^/]+)" % NAME, u.path)
            if not m or m["u"] not in uploads:
                return self._err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            uploads[m["u"]] += self._body()
            self._send(202, b"", headers={"Location": u.path, "Range": "0-%d" % max(0, len(uploads[m["u"]]) - 1)})

        def do_PUT(self):
            u = urlparse(self.path)
            m = re.fullmatch(r"/v2/%s/blobs/uploads/(?P<u>[^/]+)" % NAME, u.path)
            if m:
                if m["u"] not in uploads:
                    return self._err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
                data = uploads.pop(m["u"]) + self._body()
                want = (parse_qs(u.query).get("digest") or [""])[0]
                d = rs.digest_of(data)
                if want != d:
                    return self._err(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
                rs.put_blob(root, data)
                return self._send(201, b"", headers={"Location": "/v2/%s/blobs/%s" % (m["name"], d),
                                                     "Docker-Content-Digest": d})
            m = re.fullmatch(r"/v2/%s/manifests/(?P<ref>[^/]+)" % NAME, u.path)
            if m:
                data = self._body()
                tag = None if m["ref"].startswith("sha256:") else m["ref"]
                d = rs.put_manifest(root, m["name"], data, tag)
                return self._send(201, b"", headers={"Location": "/v2/%s/manifests/%s" % (m["name"], d),
                                                     "Docker-Content-Digest": d})
            return self._err(404, "NOT_FOUND", "page not found")

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    os.makedirs(a.root, exist_ok=True)
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((a.host, a.port), make_handler(a.root))
    srv.daemon_threads = True
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
