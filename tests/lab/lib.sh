# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034
#
# Shared helpers for the lab tests (sourced, not run).
#
# A lab test builds its own lab (tools/xlb-lab) under a name unique to the
# run, so it never meets a running demo or another test, and removes it on
# exit, whatever the exit. Environment:
#   XLB_BUILD_DIR, XLB_SOURCE_DIR   set by meson
#   XLB_LAB_LB=xlbd|nft             the load balancer under test (default xlbd);
#                                   nft runs the same services on the kernel's
#                                   nftables DNAT, to check the lab and the tests
#                                   themselves, and to compare

LAB_SOURCE_DIR=${XLB_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export XLB_SOURCE_DIR=$LAB_SOURCE_DIR
export XLB_BUILD_DIR=${XLB_BUILD_DIR:-$LAB_SOURCE_DIR/build}
export XLB_LAB_LB=${XLB_LAB_LB:-xlbd}
LAB_TOOL=$LAB_SOURCE_DIR/tools/xlb-lab
PY=/usr/bin/python3

# Python for the lab's HTTP clients, put in front of their code: the head
# of a response (up to the blank line) and the rest already read, its
# Content-Length, and the body read on to n bytes; EOFError when the peer
# closes first. Exactly n: a connection held for more requests keeps the
# next response's bytes for the next call.
PY_HTTP=$(cat <<'EOF'
import re as _http_re
def http_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed")
        buf += d
    return buf.split(b"\r\n\r\n", 1)
def http_length(head):
    return int(_http_re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
def http_body(s, body, n):
    while len(body) < n:
        d = s.recv(min(65536, n - len(body)))
        if not d:
            raise EOFError("closed after %d bytes of %d" % (len(body), n))
        body += d
    return body
EOF
)

VIP4=198.18.0.100
VIP6=2001:2::100
declare -A CLIENT4=([c1]=198.18.0.10 [c2]=198.18.1.10)
declare -A CLIENT6=([c1]=2001:2::10 [c2]=2001:2:0:1::10)

lab_passed=0
lab_failed=0
lab_skipped=0
LAB_RUN=

pass() { lab_passed=$((lab_passed + 1)); echo "PASS: $*"; }
fail() { lab_failed=$((lab_failed + 1)); echo "FAIL: $*"; }
skip() { lab_skipped=$((lab_skipped + 1)); echo "SKIP: $*"; }
note() { echo "      $*"; }

lab() { "$LAB_TOOL" "$@"; }
lab_exec() { "$LAB_TOOL" exec "$@"; }

# Skip (77) without root; fail early and clearly when a tool is missing
# (tools/quickstart installs them all).
lab_require() {
	if [[ $(id -u) != 0 ]]; then
		echo "SKIP: lab tests need root (network namespaces)"
		exit 77
	fi
	local t missing=()
	for t in ip nft ethtool curl ping setsid xargs "$PY"; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if ((${#missing[@]})); then
		echo "FAIL: missing tools: ${missing[*]} (tools/quickstart installs them)"
		exit 1
	fi
	if [[ $XLB_LAB_LB == xlbd && ! -x $XLB_BUILD_DIR/src/xlbd ]]; then
		echo "FAIL: $XLB_BUILD_DIR/src/xlbd is not built"
		exit 1
	fi
}

lab_cleanup() {
	local rc=$?
	trap - EXIT
	if [[ -n $LAB_RUN && $rc != 0 && -f $LAB_RUN/xlbd.log ]]; then
		echo "--- last lines of xlbd.log"
		tail -n 30 "$LAB_RUN/xlbd.log" || true
	fi
	"$LAB_TOOL" down >/dev/null 2>&1 || echo "warning: could not remove lab $XLB_LAB_NAME"
	exit "$rc"
}

# lab_begin TAG: a lab named xlbt-TAG-PID, removed on any exit.
lab_begin() {
	lab_require
	export XLB_LAB_NAME="xlbt-$1-$$"
	trap lab_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	echo "lab $XLB_LAB_NAME, load balancer: $XLB_LAB_LB"
	lab up >/dev/null || { echo "FAIL: lab up"; exit 1; }
	LAB_RUN=$(lab run-dir)
	lab start-backends || { echo "FAIL: backends did not start"; exit 1; }
	lab start-lb || { echo "FAIL: the load balancer ($XLB_LAB_LB) did not start"; exit 1; }
}

lab_is_xlbd() { [[ $XLB_LAB_LB == xlbd ]]; }

# Prints "N passed, N failed" last; non-zero if anything failed.
lab_summary() {
	echo
	((lab_skipped)) && echo "$lab_skipped skipped"
	echo "$lab_passed passed, $lab_failed failed"
	((lab_failed == 0))
}

# http_get ROLE URL: body lines, then remote=ADDR port=PORT.
http_get() { lab http "$@" 2>&1; }

# The backend name in a body, or nothing.
backend_of() { sed -n 's/^backend=\(b[0-9]\)$/\1/p' <<<"$1" | head -n 1; }

# Python: COUNT HTTP/1.1 requests over one TCP connection; prints the
# backend of each answer and the local port, and fails if the client had
# to reconnect (a new local port means a new connection).
KEEPALIVE_CLIENT='
import http.client, sys
host, count = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, 80, timeout=5)
port = None
for i in range(count):
    c.request("GET", "/req%d" % i)
    r = c.getresponse()
    body = r.read().decode()
    p = c.sock.getsockname()[1]
    if port is not None and p != port:
        sys.exit("reconnected: local port %d then %d" % (port, p))
    port = p
    name = [l for l in body.splitlines() if l.startswith("backend=")]
    print("%s port=%d" % (name[0] if name else "backend=?", p))
'

# Python: a connection held across a reload. Opens connections (up to 12)
# until one lands on a backend other than AVOID, writes "first=bN port=P"
# to STATE, waits (at most 90 s) for the file GO, sends one more request
# on the same socket and appends "second=bN port=P".
HELD_CLIENT='
import http.client, os, sys, time
host, avoid, state, go = sys.argv[1:5]
def ask(c):
    c.request("GET", "/held")
    r = c.getresponse()
    body = r.read().decode()
    name = [l[8:] for l in body.splitlines() if l.startswith("backend=")]
    return (name[0] if name else "?"), c.sock.getsockname()[1]
for attempt in range(12):
    c = http.client.HTTPConnection(host, 80, timeout=5)
    name, port = ask(c)
    if name != avoid:
        break
    c.close()
with open(state + ".tmp", "w") as f:
    f.write("first=%s port=%d\n" % (name, port))
os.rename(state + ".tmp", state)
deadline = time.monotonic() + 90
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go within 90 s")
    time.sleep(0.1)
try:
    name, port = ask(c)
except Exception as e:
    name, port = "error:%s" % type(e).__name__, 0
with open(state, "a") as f:
    f.write("second=%s port=%d\n" % (name, port))
'

# wait_for_file FILE TENTHS: bounded wait for FILE to exist.
wait_for_file() {
	local i
	for ((i = 0; i < $2; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.1
	done
	return 1
}

# xdp_mode_of_xlb0: how an XDP program is attached to xlb0 in the node:
# none, native, generic, offload or multi (iproute2's JSON "xdp" mode 0-4).
xdp_mode_of_xlb0() {
	local json mode
	json=$(lab_exec lb ip -j -d link show dev xlb0) || { echo unknown; return; }
	mode=$(grep -o '"xdp":{"mode":[0-9]' <<<"$json" | grep -o '[0-9]$' || true)
	case $mode in
	''|0) echo none;;
	1) echo native;;
	2) echo generic;;
	3) echo offload;;
	4) echo multi;;
	*) echo "mode-$mode";;
	esac
}

# xlbctl as built, and lab_xlbctl ARGS: run it in the node's namespace on
# the lab's control socket (xlb.ini's control_socket).
XLBCTL=$XLB_BUILD_DIR/tools/xlbctl
lab_xlbctl() { ip netns exec "$(lab ns lb)" "$XLBCTL" --socket "$LAB_RUN/xlb.sock" "$@"; }

# lab_backend_kill B: stop backend B's server (tools/lab-backend.py) alone;
# B's namespace stays, nothing listens in it any more. `lab start-backends`
# starts it again (it leaves running ones alone).
lab_backend_kill() {
	local file=$LAB_RUN/backend-$1.pid pid i
	read -r pid <"$file" 2>/dev/null || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	# A pid file left behind must never make us signal someone else.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$file" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# lab_backend_cable B down|up: unplug or plug back backend B's cable (the
# far end of its link: the switch's port, or the router's for b3). Unplugged,
# B vanishes without a word (no RST, no ICMP) as a crashed host does, yet
# keeps its addresses, routes and sockets for when it comes back.
lab_backend_cable() {
	local side=sw
	if [[ $1 == b3 ]]; then
		side=rt
		# The router's end has addresses: its IPv6 ones must survive.
		ip netns exec "$(lab ns rt)" sysctl -qw net.ipv6.conf.b3.keep_addr_on_down=1
	fi
	ip -n "$(lab ns "$side")" link set dev "$1" "$2"
}
