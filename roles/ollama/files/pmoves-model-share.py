# Copyright: pmoves.fleet developers (run by systemd with pmoves_ollama_share_python; no shebang)
# Apache-2.0
"""pmoves-model-share: serve an Ollama model store read-only over HTTP, for peers of the fleet.

The ollama role runs it (systemd unit pmoves-model-share) on the nodes the plan makes the seed
of a model, bound to the node's reachable address; the other holders of the model copy it with
pmoves.fleet.ollama_blob_sync (src: http://<seed>:<port>), which verifies every blob's sha256.

Only two kinds of path are served, both validated before any file is opened:

    GET|HEAD /manifests/<host>/<namespace>/<model>/<tag>
    GET|HEAD /blobs/sha256-<64 hex>

No directory listing, no other method, nothing outside the store (symlinks followed, then checked).
Standard library only; runs on Python 3.8.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_HOST = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,254}"  # a registry host may carry a port (hub.lan:5000)
MANIFEST_RE = re.compile(rf"^/manifests/{_HOST}/{_PART}/{_PART}/[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}$")
BLOB_RE = re.compile(r"^/blobs/sha256-[0-9a-f]{64}$")
COPY_CHUNK = 1024 * 1024


def store_file(root: str, url_path: str) -> str | None:
    """The file a request path names inside the store ``root``, or None (not a served path, outside, missing)."""
    path = url_path.split("?", 1)[0]
    if ".." in path or not (MANIFEST_RE.match(path) or BLOB_RE.match(path)):
        return None
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, path.lstrip("/")))
    if not real.startswith(real_root.rstrip(os.sep) + os.sep) or not os.path.isfile(real):
        return None
    return real


class ShareHandler(BaseHTTPRequestHandler):
    server_version = "pmoves-model-share/1"
    protocol_version = "HTTP/1.1"
    root = "."

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _refuse(self, status: HTTPStatus) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Connection", "close")  # the request body is not read: do not parse it as a request
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, send_body: bool) -> None:
        path = store_file(self.root, self.path)
        if path is None:
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the headers
        except OSError:
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if send_body:
                shutil.copyfileobj(handle, self.wfile, COPY_CHUNK)

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)

    def _not_allowed(self) -> None:
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


def make_server(root: str, bind: str, port: int) -> ThreadingHTTPServer:
    """A share of ``root`` on ``bind``:``port`` (port 0: a free one), not yet serving."""
    handler = type("BoundShareHandler", (ShareHandler,), {"root": os.path.realpath(root)})
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_class = type("ShareServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
    return server_class((bind.strip("[]"), port), handler)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve an Ollama model store (manifests/, blobs/) read-only.")
    parser.add_argument("--root", required=True, help="the model store (OLLAMA_MODELS)")
    parser.add_argument("--bind", required=True, help="address to listen on (the node's reachable address)")
    parser.add_argument("--port", type=int, default=11435)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        parser.error(f"{args.root} is not a directory")
    server = make_server(args.root, args.bind, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
