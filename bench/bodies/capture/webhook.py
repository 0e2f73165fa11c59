"""A capturing validating webhook: saves every AdmissionReview it receives
(with the call's query string in a top-level "query" member, as in
testdata/reviews) and allows it. Usage: webhook.py ADDR:PORT CERT KEY OUTDIR"""
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        review = json.loads(body)
        req = review["request"]
        _, _, query = self.path.partition("?")
        review["query"] = query
        name = "{}-{}-{}.json".format(
            req["operation"].lower(), req["kind"]["kind"].lower(), req.get("name") or "unnamed"
        )
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(review, f, indent=1, sort_keys=True)
            f.write("\n")
        answer = json.dumps({
            "apiVersion": review["apiVersion"], "kind": "AdmissionReview",
            "response": {"uid": req["uid"], "allowed": True},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    addr, cert, key, OUT = sys.argv[1:5]
    host, port = addr.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Capture)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
