"""An HTTP JSON-RPC proxy in front of anvil that fails requests on demand (tests of RPC outages)."""

from __future__ import annotations

from typing import Any


class FlakyProxy:
    """An HTTP JSON-RPC proxy in front of anvil: 503 to the next ``fail`` requests; the next ``lose`` requests
    reach anvil but their replies are lost (503), like a load balancer dropping a connection."""

    def __init__(self, upstream: str, fail: int) -> None:
        import http.server
        import threading
        import urllib.request

        self.fail = fail
        self.lose = 0
        self.skip = 0  # requests forwarded normally before ``lose`` starts
        self.seen = 0
        self.down = False  # while True every request gets a 503 (an outage)
        self.failed = 0  # requests answered with a 503 so far
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.seen += 1
                if proxy.down or proxy.fail > 0:
                    proxy.failed += 1
                    proxy.fail = max(0, proxy.fail - 1)
                    self.send_response(503)
                    self.end_headers()
                    return
                req = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    data = resp.read()
                if proxy.skip > 0:
                    proxy.skip -= 1
                elif proxy.lose > 0:
                    proxy.lose -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
