#!/usr/bin/env python3
"""GET /v1/hardware: the node's detected hardware, chosen profile and capabilities (seed 001).

Serves the JSON document the pmoves.fleet.forge role writes from discovered facts, re-read on
each request so a new profile shows without a restart. Standard library only.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(document_path):
    class Handler(BaseHTTPRequestHandler):
        server_version = "pmoves-hardware-api/1"

        def do_GET(self):
            if self.path.rstrip("/") not in ("/v1/hardware", "/health"):
                self._send(404, {"error": f"no route {self.path}"})
                return
            try:
                with open(document_path) as handle:
                    document = json.load(handle)
            except (OSError, ValueError) as exc:
                self._send(503, {"error": f"hardware document unavailable: {exc}"})
                return
            self._send(200, document if self.path.startswith("/v1") else {"status": "ok"})

        def _send(self, status, body):
            payload = json.dumps(body, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9106)
    parser.add_argument("--document", default="/etc/pmoves/forge/hardware.json")
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), make_handler(args.document)).serve_forever()


if __name__ == "__main__":
    main()
