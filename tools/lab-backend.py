#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A lab backend: names itself in every answer, so a client can tell which
backend the load balancer picked.

HTTP (TCP, both families, keep-alive): any GET answers 200 with
    backend=NAME
    client=ADDR port=PORT
The client line is the peer the backend saw: xlb only rewrites the
destination, so it must be the real client, not the node.

GET /slow?seconds=S&chunk=N (S at most 120, default 5; N at most 65536, default
1000) is a slow download: the same two lines, then N bytes every 100 ms for S
seconds, with a Content-Length that covers all of it, so the client can tell a
transfer that ran to its end from one that was cut.

GET /bytes/N (N at most 64 MiB) answers N bytes of a fixed pseudo-random
pattern (bytes_pattern(N): random.Random(BYTES_SEED), 1 MiB repeated) with
an X-Backend: NAME header, so a client can check every byte of a large
transfer by length and hash.

UDP (both families): each datagram is answered with b"NAME:" + payload,
from the address and port it was sent to.

Runs until SIGTERM or SIGINT, then removes its pid file and exits 0.
"""

import argparse
import http.server
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse


BYTES_SEED = 4242
BYTES_MAX = 64 << 20
_PATTERN = random.Random(BYTES_SEED).randbytes(1 << 20)


def bytes_pattern(n):
    """The first n bytes GET /bytes/n answers."""
    return (_PATTERN * (n // len(_PATTERN) + 1))[:n]


def plain_addr(addr):
    """IPv4 clients reach a dual-stack socket as ::ffff:a.b.c.d; show a.b.c.d."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 so one TCP connection can carry several requests: the lab
    # checks that a connection stays on its backend.
    protocol_version = "HTTP/1.1"
    server_version = "xlb-lab-backend"
    sys_version = ""

    def do_GET(self):
        if self.path.startswith("/bytes/"):
            self.send_pattern(self.path[len("/bytes/"):])
            return
        body = "backend=%s\nclient=%s port=%d\n" % (
            self.server.backend_name, plain_addr(self.client_address[0]),
            self.client_address[1])
        data = body.encode()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/slow":
            self.slow(data, urllib.parse.parse_qs(url.query))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def slow(self, head, query):
        try:
            seconds = min(float(query.get("seconds", ["5"])[0]), 120.0)
            chunk = min(int(query.get("chunk", ["1000"])[0]), 65536)
        except ValueError:
            self.send_error(400, "bad seconds or chunk")
            return
        ticks = max(int(seconds * 10), 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(head) + ticks * max(chunk, 0)))
        self.end_headers()
        try:
            self.wfile.write(head)
            self.wfile.flush()
            for _ in range(ticks):
                time.sleep(0.1)
                self.wfile.write(b"x" * chunk)
                self.wfile.flush()
        except OSError:
            # The client or the load balancer ended the connection: what
            # the lab tests about draining and dead backends.
            self.close_connection = True

    def send_pattern(self, arg):
        if not arg.isdigit() or int(arg) > BYTES_MAX:
            self.send_error(400, "want /bytes/N, N at most %d" % BYTES_MAX)
            return
        n = int(arg)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.send_header("X-Backend", self.server.backend_name)
        self.end_headers()
        step = len(_PATTERN)
        try:
            for off in range(0, n, step):
                self.wfile.write(_PATTERN[:min(step, n - off)])
        except OSError:
            self.close_connection = True

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s: %s %s\n" % (self.server.backend_name,
                                              self.address_string(), fmt % args))


class DualStackHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    # Hundreds of clients connect at once in the lab's load test.
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp_socket(port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    sock.settimeout(0.5)
    return sock


def udp_serve(sock, name, stop):
    prefix = name.encode() + b":"
    while not stop.is_set():
        try:
            payload, peer = sock.recvfrom(65535)
        except socket.timeout:
            continue
        except OSError:
            if stop.is_set():
                return
            raise
        try:
            sock.sendto(prefix + payload, peer)
        except OSError as e:
            # A peer we cannot answer (no route yet) must not end the server.
            sys.stderr.write("%s: udp reply to %s: %s\n" % (name, peer[0], e))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the name put in every answer")
    ap.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    ap.add_argument("--udp-port", type=int, default=0,
                    help="UDP echo port (default: no UDP server)")
    ap.add_argument("--pid-file", help="write the pid here; removed at exit")
    ap.add_argument("--quiet", action="store_true", help="do not log each request")
    args = ap.parse_args()

    stop = threading.Event()
    # Set the handlers before anything can fail half-way, so a SIGTERM that
    # races start-up still ends the process cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    httpd = DualStackHTTPServer(("::", args.port), Handler)
    httpd.backend_name = args.name
    httpd.quiet = args.quiet
    threads = [threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True)]
    udp = None
    if args.udp_port:
        udp = udp_socket(args.udp_port)
        threads.append(threading.Thread(target=udp_serve, args=(udp, args.name, stop),
                                        daemon=True))
    for t in threads:
        t.start()

    if args.pid_file:
        tmp = args.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, args.pid_file)   # readers never see a half-written file
    sys.stderr.write("%s: listening on tcp/%d%s\n" % (
        args.name, args.port, " udp/%d" % args.udp_port if args.udp_port else ""))
    sys.stderr.flush()

    while not stop.wait(0.5):
        pass

    httpd.shutdown()
    httpd.server_close()
    if udp:
        udp.close()
    if args.pid_file:
        try:
            os.unlink(args.pid_file)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
