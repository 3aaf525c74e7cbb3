#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Dead backends, end to end: health checks notice a backend that died and
# its flows go at once (UDP streams move, TCP clients get a RST), a draining
# backend keeps its transfers and takes no new connections, a reload that
# removes a backend purges its flows and one that adds a backend moves only
# new connections, a service with no backend up rejects (or drops) new
# connections, and a backend that comes back takes new connections again
# while existing ones stay where they are.
#
# Backends die in two ways: their cable is unplugged (lab_backend_cable: the
# host vanishes silently, as a crashed one does) or their server is stopped
# (lab_backend_kill: the host answers with RST / ICMP port unreachable).
# The health checks are short (below), so a backend is known dead within
# BOUND seconds: fall x interval + timeout, plus slack for the scheduling.
#
# xlbd only: with XLB_LAB_LB=nft there are no health checks (exit 77).

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $XLB_LAB_LB != xlbd ]]; then
	echo "SKIP: health checks and backend states are xlbd's (load balancer: $XLB_LAB_LB)"
	exit 77
fi
lab_require
if [[ ! -x $XLBCTL ]]; then
	echo "FAIL: $XLBCTL is not built"
	exit 1
fi

C1=${CLIENT4[c1]}
declare -A B4=([b1]=198.18.2.2 [b2]=198.18.2.3 [b3]=198.18.3.2)
BACKENDS=(b1 b2 b3)
WEIGHTS=b1=1,b2=2,b3=1          # the lab's default

INTERVAL_MS=200 TIMEOUT_MS=100 FALL=2 RISE=2 SLACK_MS=1500
BOUND_MS=$((FALL * INTERVAL_MS + TIMEOUT_MS + SLACK_MS))
BOUND=$(awk -v ms="$BOUND_MS" 'BEGIN { printf "%.1f", ms / 1000 }')

# Every config this test loads: short checks on web (http) and dns (udp);
# web6 and dns6 keep health = none. Extra --set arguments come after.
HEALTH_SET=()
for svc_health in web=http dns=udp; do
	s=${svc_health%=*}
	HEALTH_SET+=(--set "$s.health=${svc_health#*=}" --set "$s.health_interval_ms=$INTERVAL_MS"
		--set "$s.health_timeout_ms=$TIMEOUT_MS" --set "$s.health_fall=$FALL"
		--set "$s.health_rise=$RISE")
done
for s in web6 dns dns6; do HEALTH_SET+=(--set "$s.on_backend_down=reset"); done
WEB_ON_DOWN=reset               # web's on_backend_down in the next config

# ------------------------------------------------------------------ clients

# Python: one UDP socket streams RATE datagrams a second to ADDR:PORT for
# SECONDS. Prints "sport P", then per answer "r TIME NAME FROM_ADDR
# FROM_PORT" (TIME: epoch seconds, as date +%s.%N and tcpdump -tt), then
# "end sent=N". Unconnected, so the true source of every answer shows.
UDP_STREAM=$(cat <<'EOF'
import select, socket, sys, time
addr, port, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
print("sport %d" % s.getsockname()[1], flush=True)
start = time.monotonic()
end, nxt, seq = start + secs, start, 0
while True:
    now = time.monotonic()
    if now >= end + 0.5:
        break
    if now >= nxt and now < end:
        s.sendto(b"s%d" % seq, (addr, port))
        seq += 1
        nxt += 1.0 / rate
    wake = min(nxt, end + 0.5) if now < end else end + 0.5
    r, _, _ = select.select([s], [], [], max(0.0, wake - time.monotonic()))
    if r:
        try:
            data, peer = s.recvfrom(2048)
        except OSError as e:
            print("e %.6f %s" % (time.time(), type(e).__name__), flush=True)
            continue
        name = data.split(b":")[0].decode(errors="replace")
        print("r %.6f %s %s %d" % (time.time(), name, peer[0], peer[1]), flush=True)
print("end sent=%d" % seq, flush=True)
EOF
)

# Python: N keep-alive HTTP connections to VIP:80, one request each; prints
# "conn I LPORT BACKEND" per connection and "ready", then waits (90 s at
# most) for the file GO and
#   MODE watch: waits WAIT seconds on every connection at once in a
#     blocking recv and prints "end I TIME KIND", KIND reset (a RST),
#     eof, data, timeout (nothing happened) or the error's name;
#   MODE again: sends one more request on every connection at once, each
#     waiting WAIT seconds at most, and prints "again I BACKEND" or
#     "again I error:NAME" (error:TimeoutError: no answer).
HOLD_CLIENT=$PY_HTTP$'\n'$(cat <<'EOF'
import os, re, socket, sys, threading, time
vip, n, mode, go, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
out = threading.Lock()
def say(*a):
    with out:
        print(*a, flush=True)
def get(c, path):
    c.sendall(("GET %s HTTP/1.1\r\nHost: lab\r\n\r\n" % path).encode())
    head, body = http_head(c)
    body = http_body(c, body, http_length(head))
    m = re.search(rb"(?m)^backend=(b[0-9])$", body)
    return m.group(1).decode() if m else "?"
conns = []
for i in range(n):
    c = socket.create_connection((vip, 80), timeout=5)
    b = get(c, "/hold-%d" % i)
    conns.append((c, b))
    say("conn %d %d %s" % (i, c.getsockname()[1], b))
say("ready")
deadline = time.monotonic() + 90
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go within 90 s")
    time.sleep(0.02)
def watch(i, c):
    c.settimeout(wait)
    try:
        kind = "data" if c.recv(100) else "eof"
    except socket.timeout:
        kind = "timeout"
    except ConnectionResetError:
        kind = "reset"
    except OSError as e:
        kind = type(e).__name__
    say("end %d %.6f %s" % (i, time.time(), kind))
if mode == "watch":
    ts = [threading.Thread(target=watch, args=(i, c)) for i, (c, _) in enumerate(conns)]
else:
    def again(i, c):
        c.settimeout(wait)
        try:
            say("again %d %s" % (i, get(c, "/again-%d" % i)))
        except Exception as e:
            say("again %d error:%s" % (i, type(e).__name__))
    ts = [threading.Thread(target=again, args=(i, c)) for i, (c, _) in enumerate(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
EOF
)

# Python: a slow download of SECONDS from VIP:80 (lab-backend.py's /slow):
# "backend NAME lport P" once the first line is in, then "done TIME
# bytes=N want=M" or "error TIME NAME bytes=N want=M".
SLOW_CLIENT=$PY_HTTP$'\n'$(cat <<'EOF'
import re, socket, sys, time
vip, secs = sys.argv[1], sys.argv[2]
got, want = 0, -1
try:
    c = socket.create_connection((vip, 80), timeout=10)
    c.sendall(("GET /slow?seconds=%s&chunk=1000 HTTP/1.1\r\nHost: lab\r\n\r\n" % secs).encode())
    head, body = http_head(c)
    want = http_length(head)
    while b"\n" not in body:
        d = c.recv(65536)
        if not d:
            raise EOFError("closed")
        body += d
    print("backend %s lport %d" % (body.split(b"\n")[0].decode().replace("backend=", ""),
                                   c.getsockname()[1]), flush=True)
    got = len(body)
    while got < want:
        d = c.recv(65536)
        if not d:
            raise EOFError("closed early")
        got += len(d)
    print("done %.6f bytes=%d want=%d" % (time.time(), got, want), flush=True)
except Exception as e:
    print("error %.6f %s bytes=%d want=%d" % (time.time(), type(e).__name__, got, want),
          flush=True)
EOF
)

# Python: one new connection to ADDR:PORT over PROTO, waiting WAIT seconds:
# "refused SECS", "timeout SECS", "answer BACKEND SECS" or "other NAME SECS".
# UDP uses a connected socket, so an ICMP port unreachable shows as
# ConnectionRefusedError.
PROBE=$(cat <<'EOF'
import re, socket, sys, time
addr, proto, port, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
t = time.monotonic()
def took():
    return "%.3f" % (time.monotonic() - t)
try:
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(wait)
        s.connect((addr, port))
        s.sendall(b"GET /probe HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        m = re.search(rb"(?m)^backend=(b[0-9])$", data)
        print("answer %s %s" % (m.group(1).decode() if m else "?", took()))
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.connect((addr, port))
        s.settimeout(wait)
        s.send(b"probe")
        data = s.recv(2048)
        print("answer %s %s" % (data.split(b":")[0].decode(errors="replace"), took()))
except ConnectionRefusedError:
    print("refused " + took())
except socket.timeout:
    print("timeout " + took())
except OSError as e:
    print("other %s %s" % (type(e).__name__, took()))
EOF
)

# ------------------------------------------------------------------ helpers

NS_LB='' NS_SW=''
SOCK=

# ctl ARGS: xlbctl; stdout+stderr in CTL_OUT, status in CTL_RC.
ctl() {
	CTL_RC=0
	CTL_OUT=$(lab_xlbctl "$@" 2>&1) || CTL_RC=$?
}

declare -A B6=([b1]=2001:2:0:2::2 [b2]=2001:2:0:2::3 [b3]=2001:2:0:3::2)

# ep_of B PORT: B's IPv4 endpoint; ep_of6 B PORT: its IPv6 one.
ep_of() { echo "${B4[$1]}:$2"; }
ep_of6() { echo "[${B6[$1]}]:$2"; }

# svc_ep SERVICE B: B's endpoint in SERVICE (web, web6, dns, dns6).
svc_ep() {
	local port=8080
	[[ $1 == dns* ]] && port=5353
	if [[ $1 == *6 ]]; then ep_of6 "$2" $port; else ep_of "$2" $port; fi
}

# backend_state SERVICE B: B's state in `xlbctl service` (up, draining, down).
backend_state() {
	local ep
	ep=$(svc_ep "$1" "$2")
	lab_xlbctl service "$1" 2>/dev/null |
		awk -v ep="$ep" '$1 == "backend" && $2 == ep { sub(/^state=/, "", $3); print $3 }'
}

# wait_state SERVICE B STATE TENTHS: bounded wait; WAITED: seconds waited.
wait_state() {
	local i t0 now
	t0=$(date +%s%N)
	for ((i = 0; i < $4; i++)); do
		if [[ $(backend_state "$1" "$2") == "$3" ]]; then
			now=$(date +%s%N)
			WAITED=$(awk -v d=$((now - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')
			return 0
		fi
		sleep 0.1
	done
	WAITED=never
	return 1
}

# config WEIGHTS [--set SVC.KEY=VALUE...]: the health settings plus these,
# loaded with `xlbctl reload` (which returns once the new config is live).
config() {
	local w=$1
	shift
	if ! lab write-config --weights "$w" "${HEALTH_SET[@]}" \
		--set "web.on_backend_down=$WEB_ON_DOWN" "$@" >/dev/null; then
		fail "config: write-config --weights $w $* failed"
		return 1
	fi
	ctl reload
	if [[ $CTL_RC != 0 ]]; then
		fail "config: xlbctl reload (weights $w $*): status $CTL_RC: $CTL_OUT"
		return 1
	fi
}

# all_up SERVICE...: admin up everywhere, then wait for the checks.
all_up() {
	local svc b ok=0
	for svc in "$@"; do
		for b in "${BACKENDS[@]}"; do
			lab_xlbctl backend "$svc" "$(svc_ep "$svc" "$b")" up >/dev/null 2>&1
		done
	done
	for svc in "$@"; do
		for b in "${BACKENDS[@]}"; do
			wait_state "$svc" "$b" up 50 || { note "$svc $b not up: $(backend_state "$svc" "$b")"; ok=1; }
		done
	done
	return $ok
}

# burst URL N: N new connections from C1, 10 at a time; one backend name (or
# "failed") per line.
# shellcheck disable=SC2016 # expanded by the inner shells
burst() {
	lab_exec c1 bash -c 'seq "$1" | xargs -P 10 -I{} sh -c "curl -s --noproxy \"*\" \
		--connect-timeout 2 -m 4 \"\$0?n=\$1\" || echo failed" "$0" {}' "$1" "$2" 2>&1 |
		sed -n 's/^backend=\(b[123]\)$/\1/p; /^failed$/p'
}

counts() { grep . <<<"$1" | sort | uniq -c | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 }'; }

# wait_line FILE REGEX TENTHS: bounded wait for a line in FILE.
wait_line() {
	local i
	for ((i = 0; i < $3; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# hold_start NAME VIP N MODE WAIT: a HOLD_CLIENT in C1, output in
# $LAB_RUN/NAME.out, pid in HOLD_PID, go file in HOLD_GO; waits for "ready".
hold_start() {
	HOLD_OUT=$LAB_RUN/$1.out HOLD_GO=$LAB_RUN/$1.go
	rm -f "$HOLD_OUT" "$HOLD_GO"
	lab_exec c1 "$PY" -c "$HOLD_CLIENT" "$2" "$3" "$4" "$HOLD_GO" "$5" >"$HOLD_OUT" 2>&1 &
	HOLD_PID=$!
	if ! wait_line "$HOLD_OUT" '^ready$' 100; then
		note "hold client: $(tail -n 3 "$HOLD_OUT")"
		touch "$HOLD_GO"
		wait "$HOLD_PID"
		return 1
	fi
}

# hold_backends: "I BACKEND" per connection of the last hold client.
hold_backends() { awk '$1 == "conn" { print $2, $4 }' "$HOLD_OUT"; }

# capture_start NS IFACE FILE FILTER: tcpdump in NS (bounded: 60 s, 20000
# packets); pid (of timeout(1), which passes SIGINT on) in CAP_PID.
capture_start() {
	rm -f "$3" "$3.err"
	ip netns exec "$1" timeout -s INT 60 tcpdump -i "$2" -n -U -c 20000 -w "$3" "$4" 2>"$3.err" &
	CAP_PID=$!
	wait_line "$3.err" 'listening on' 50 || { note "tcpdump: $(cat "$3.err")"; return 1; }
}

capture_stop() {
	kill -INT "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# now: epoch seconds with nanoseconds (the clock tcpdump -tt and the Python
# clients' time.time() use).
now() { date +%s.%N; }

# ------------------------------------------------------------------ 1. UDP

# 1. A UDP stream to a backend that dies: after BOUND the answers come from
# another backend, and nothing more is sent to the dead one, also once it is
# back on the wire with nothing listening.
t_udp_dead() {
	local seg=$LAB_RUN/t1-seg.pcap dead=$LAB_RUN/t1-dead.pcap out=$LAB_RUN/t1-stream.out
	local spid seg_pid dead_pid sport d t0 trev
	capture_start "$NS_SW" lb "$seg" "udp and src host $C1 and dst port 5353" || {
		fail "1 udp: tcpdump on the node's switch port did not start"; return; }
	seg_pid=$CAP_PID
	lab_exec c1 "$PY" -c "$UDP_STREAM" "$VIP4" 53 50 9 >"$out" 2>&1 &
	spid=$!
	if ! wait_line "$out" '^r ' 50; then
		fail "1 udp: the stream got no answer"; note "$(head -n 3 "$out")"
		wait "$spid"; capture_stop "$seg_pid"
		return
	fi
	sport=$(awk '$1 == "sport" { print $2 }' "$out")
	d=$(awk '$1 == "r" { print $3; exit }' "$out")
	if [[ ! -v B4[$d] ]]; then
		fail "1 udp: answered by '$d'"; wait "$spid"; capture_stop "$seg_pid"
		return
	fi
	note "UDP stream from $C1:$sport to $VIP4:53 on $d; unplugging $d and stopping its server"
	t0=$(now)
	lab_backend_cable "$d" down
	lab_backend_kill "$d"
	DEAD_UDP=$d
	sleep $((BOUND_MS / 1000 + 1))
	# Back on the wire, same address, nothing listening on udp/5353: every
	# datagram the node still sends there would be seen here. The node's
	# own udp checks (src 198.18.2.1) arrive too and show the capture works.
	capture_start "$(lab ns "$d")" eth0 "$dead" "udp and dst port 5353" || {
		fail "1 udp: tcpdump in $d did not start"; wait "$spid"; capture_stop "$seg_pid"; return; }
	dead_pid=$CAP_PID
	trev=$(now)
	lab_backend_cable "$d" up
	wait "$spid"
	sleep 0.3
	capture_stop "$dead_pid"
	capture_stop "$seg_pid"

	# What left the node for the dead backend, from the switch port's view.
	local sent last n_before n_after figure
	sent=$(tcpdump -r "$seg" -n -tt "src port $sport" 2>/dev/null |
		awk -v dst="${B4[$d]}.5353:" '$5 == dst { print $1 }')
	n_before=$(awk -v t0="$t0" '$1 < t0' <<<"$sent" | grep -c .)
	last=$(tail -n 1 <<<"$sent")
	n_after=$(awk -v t="$t0" -v b="$BOUND" '$1 > t + b' <<<"$sent" | grep -c .)
	figure=$(awk -v l="${last:-0}" -v t="$t0" 'BEGIN { printf "%.3f", l - t }')
	LAST_PACKET_FIGURE=$figure
	if ((n_before == 0)); then
		fail "1 udp: the capture on the switch saw nothing of the stream to $d before the kill"
	elif ((n_after == 0)) && awk -v f="$figure" -v b="$BOUND" 'BEGIN { exit !(f <= b) }'; then
		pass "1 udp: last datagram to dead $d left the node $figure s after the kill (bound $BOUND s; $n_before before the kill)"
	else
		fail "1 udp: datagrams still sent to dead $d: last $figure s after the kill, $n_after after the $BOUND s bound"
	fi

	# The answers after the bound: from another backend, from VIP4:53.
	local after names bad_src
	after=$(awk -v t="$t0" -v b="$BOUND" '$1 == "r" && $2 > t + b' "$out")
	names=$(awk '{ print $3 }' <<<"$after" | grep . | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
	bad_src=$(awk -v vip="$VIP4" '$4 != vip || $5 != 53' <<<"$after" | grep -c .)
	local first_other
	first_other=$(awk -v t="$t0" -v d="$d" '$1 == "r" && $2 > t && $3 != d { print $2; exit }' "$out")
	if (($(grep -c . <<<"$after") >= 100)) && ! grep -qw "$d" <<<"$names" && ((bad_src == 0)); then
		pass "1 udp: $(grep -c . <<<"$after") answers after the bound, all from $VIP4:53 and other backends (${names% }); first $(awk -v a="$first_other" -v t="$t0" 'BEGIN { printf "%.3f", a - t }') s after the kill"
	else
		fail "1 udp: answers after the bound: ${names:-none} ($bad_src not from $VIP4:53); stream: $(tail -n 1 "$out")"
	fi

	local n_stream n_checks
	n_stream=$(tcpdump -r "$dead" -n "src host $C1 and src port $sport" 2>/dev/null | grep -c .)
	n_checks=$(tcpdump -r "$dead" -n "not src host $C1" 2>/dev/null | grep -c .)
	local span
	span=$(awk -v a="$trev" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	if ((n_stream > 0)); then
		fail "1 udp: $n_stream datagrams of the stream reached $d after it came back (dead, nothing listening)"
	elif ((n_checks == 0)); then
		fail "1 udp: the capture in revived $d saw nothing at all, not even health checks ($(tail -n 1 "$dead.err"))"
	else
		pass "1 udp: $d back on the wire with nothing listening: 0 datagrams of the stream in ${span} s ($n_checks health checks did arrive)"
	fi
}

# ------------------------------------------------------------------ 6. comeback

# 6. The backend comes back (its server restarted): health checks bring it
# up, new connections and datagrams reach it again, connections opened
# while it was down keep their backends.
t_comeback() {
	local d=$1 line b i bad=0 out n
	if ! wait_state web "$d" down 30; then
		fail "6 comeback: $d (server stopped) is not down in web: $(backend_state web "$d")"
	fi
	hold_start t6 "$VIP4" 12 again 5 || { fail "6 comeback: hold client did not start"; return; }
	if hold_backends | grep -qw "$d"; then
		fail "6 comeback: a new connection went to $d while it was down: $(hold_backends | xargs)"
	fi
	local t_start
	t_start=$(now)
	lab start-backends >/dev/null 2>&1
	if wait_state web "$d" up 100 && wait_state dns "$d" up 50; then
		pass "6 comeback: $d's server restarted; up again in web and dns $(awk -v a="$(now)" -v b="$t_start" 'BEGIN { printf "%.2f", a - b }') s later (rise $RISE x $INTERVAL_MS ms)"
	else
		fail "6 comeback: $d not up 10 s after its server restarted: web $(backend_state web "$d"), dns $(backend_state dns "$d")"
	fi
	out=$(burst "http://$VIP4/" 30)
	n=$(grep -c "^$d\$" <<<"$out")
	if (($(grep -c '^b[123]$' <<<"$out") == 30 && n > 0)); then
		pass "6 comeback: 30 new connections, $d took $n ($(counts "$out"))"
	else
		fail "6 comeback: new connections after $d came back: $(counts "$out")"
	fi
	out=$(lab udp c1 "$VIP4" 53 back 30 2>&1)
	n=$(grep -c "data=$d:" <<<"$out")
	if (($(grep -c '^from=' <<<"$out") == 30 && n > 0)); then
		pass "6 comeback: 30 new UDP flows, $d answered $n"
	else
		fail "6 comeback: UDP after $d came back: $n of $(grep -c '^from=' <<<"$out") answers from $d"
	fi
	touch "$HOLD_GO"
	wait "$HOLD_PID"
	while read -r i b; do
		line=$(awk -v i="$i" '$1 == "again" && $2 == i { print $3 }' "$HOLD_OUT")
		[[ $line == "$b" ]] || { bad=$((bad + 1)); note "connection $i: on $b, then '$line'"; }
	done < <(hold_backends)
	if ((bad == 0)) && [[ -n $(hold_backends) ]]; then
		pass "6 comeback: 12 connections opened while $d was down stay on their backends ($(counts "$(hold_backends | awk '{ print $2 }')"))"
	else
		fail "6 comeback: $bad of 12 held connections changed backend or failed"
	fi
}

# ------------------------------------------------------------------ 2. TCP

# hold_verdict D T0 LIMIT WHAT: checks a finished watch client: every
# connection on D saw a RST within LIMIT s of T0, every other one nothing.
hold_verdict() {
	local d=$1 t0=$2 limit=$3 what=$4 i b kind t on_d=0 bad=0 worst=0 others=0 others_bad=0
	while read -r i b; do
		read -r t kind <<<"$(awk -v i="$i" '$1 == "end" && $2 == i { print $3, $4 }' "$HOLD_OUT")"
		if [[ $b == "$d" ]]; then
			on_d=$((on_d + 1))
			if [[ $kind == reset ]] && awk -v t="$t" -v t0="$t0" -v l="$limit" 'BEGIN { exit !(t - t0 <= l) }'; then
				worst=$(awk -v t="$t" -v t0="$t0" -v w="$worst" 'BEGIN { d = t - t0; printf "%.3f", (d > w ? d : w) }')
			else
				bad=$((bad + 1))
				note "connection $i on $d: ${kind:-no result} $(awk -v t="${t:-0}" -v t0="$t0" 'BEGIN { printf "%.3f", t - t0 }') s after"
			fi
		else
			others=$((others + 1))
			[[ $kind == timeout ]] || { others_bad=$((others_bad + 1)); note "connection $i on $b: $kind"; }
		fi
	done < <(hold_backends)
	if ((on_d == 0)); then
		fail "$what: no held connection on $d"
	elif ((bad == 0)); then
		pass "$what: all $on_d connections on $d got a RST, the last $worst s after (limit $limit s)"
	else
		fail "$what: $bad of $on_d connections on $d saw no RST within $limit s"
	fi
	if ((others_bad == 0)); then
		pass "$what: the $others connections on other backends were left alone"
	else
		fail "$what: $others_bad of $others connections on other backends were disturbed"
	fi
}

# again_verdict D ON_D WHAT: checks a finished again client: connections on
# D answered ON_D ("D" itself, or error:NAME), every other one its backend.
again_verdict() {
	local d=$1 want=$2 what=$3 i b got on_d=0 bad=0 others=0 others_bad=0
	while read -r i b; do
		got=$(awk -v i="$i" '$1 == "again" && $2 == i { print $3 }' "$HOLD_OUT")
		if [[ $b == "$d" ]]; then
			on_d=$((on_d + 1))
			[[ $got == "$want" ]] || { bad=$((bad + 1)); note "connection $i on $d: '$got'"; }
		else
			others=$((others + 1))
			[[ $got == "$b" ]] || { others_bad=$((others_bad + 1)); note "connection $i on $b: '$got'"; }
		fi
	done < <(hold_backends)
	if ((on_d == 0)); then
		fail "$what: no held connection on $d"
	elif ((bad == 0 && others_bad == 0)); then
		pass "$what: the next request on $d's $on_d connections: $want; the $others others answered by their backends"
	else
		fail "$what: $bad of $on_d connections on $d did not get '$want', $others_bad of $others others changed"
	fi
}

# pick_hold_backend: the backend of the first held connection.
pick_hold_backend() { hold_backends | awk 'NR == 1 { print $2 }'; }

# 2. Keep-alive TCP clients to a backend whose cable is pulled get a RST
# within BOUND; new connections go to the others; back on the wire, it
# comes back. Then the same with `xlbctl backend ... down` on a live
# backend: the backend's side of each connection is reset too.
t_tcp_dead() {
	local d t0 out wait_s
	wait_s=$((BOUND_MS / 1000 + 3))
	hold_start t2 "$VIP4" 12 watch "$wait_s" || { fail "2 tcp: hold client did not start"; return; }
	d=$(pick_hold_backend)
	note "12 keep-alive connections: $(counts "$(hold_backends | awk '{ print $2 }')"); unplugging $d"
	t0=$(now)
	lab_backend_cable "$d" down
	touch "$HOLD_GO"
	wait "$HOLD_PID"
	hold_verdict "$d" "$t0" "$BOUND" "2 tcp: $d unplugged"
	out=$(burst "http://$VIP4/" 30)
	if (($(grep -c '^b[123]$' <<<"$out") == 30)) && ! grep -qx "$d" <<<"$out"; then
		pass "2 tcp: 30 new connections while $d is dead all answered elsewhere ($(counts "$out"))"
	else
		fail "2 tcp: new connections while $d is dead: $(counts "$out")"
	fi
	lab_backend_cable "$d" up
	if wait_state web "$d" up 100; then
		pass "6 comeback: $d plugged back in, up within $WAITED s"
	else
		fail "6 comeback: $d plugged back in, still $(backend_state web "$d") after 10 s"
	fi

	# Admin down with the backend alive: RSTs both ways.
	hold_start t2b "$VIP4" 12 watch 3 || { fail "2 tcp down: hold client did not start"; return; }
	d=$(pick_hold_backend)
	local ports
	ports=$(awk -v d="$d" '$1 == "conn" && $4 == d { print $3 }' "$HOLD_OUT" | xargs)
	t0=$(now)
	ctl backend web "$(ep_of "$d" 8080)" down
	touch "$HOLD_GO"
	wait "$HOLD_PID"
	[[ $CTL_RC == 0 ]] || fail "2 tcp down: xlbctl backend web $(ep_of "$d" 8080) down: $CTL_OUT"
	hold_verdict "$d" "$t0" 1.0 "2 tcp: xlbctl backend web $(ep_of "$d" 8080) down"
	# The backend's own sockets: reset too, so none of those client ports
	# is still established on it.
	local left p i
	for ((i = 0; i < 20; i++)); do
		left=""
		for p in $ports; do
			lab_exec "$d" ss -Htn state established "( sport = :8080 and dport = :$p )" | grep -q . &&
				left+=" $p"
		done
		[[ -z $left ]] && break
		sleep 0.1
	done
	if [[ -z $left ]]; then
		pass "2 tcp down: $d's own ends of those connections are gone (RST reached the backend)"
	else
		fail "2 tcp down: $d still has established connections from client ports$left"
	fi
	ctl backend web "$(ep_of "$d" 8080)" up

	# on_backend_down = drop: the backend's flows stay, their packets are
	# dropped (no RST); keep: they still reach it.
	local mode want
	for mode in drop keep; do
		WEB_ON_DOWN=$mode
		config "$WEIGHTS" && all_up web >/dev/null
		hold_start "t2-$mode" "$VIP4" 12 again 1.5 || { fail "2 on_backend_down = $mode: hold client did not start"; continue; }
		d=$(pick_hold_backend)
		ctl backend web "$(ep_of "$d" 8080)" down
		sleep 0.3
		touch "$HOLD_GO"
		wait "$HOLD_PID"
		want=error:TimeoutError
		[[ $mode == keep ]] && want=$d
		again_verdict "$d" "$want" "2 on_backend_down = $mode, backend web $(ep_of "$d" 8080) down"
		ctl backend web "$(ep_of "$d" 8080)" up
	done
	WEB_ON_DOWN=reset
}

# ------------------------------------------------------------------ 3. drain

# slow_start SECONDS NAME: a slow download in C1; SLOW_OUT, SLOW_PID,
# SLOW_BACKEND once it started.
slow_start() {
	SLOW_OUT=$LAB_RUN/$2.out
	lab_exec c1 "$PY" -c "$SLOW_CLIENT" "$VIP4" "$1" >"$SLOW_OUT" 2>&1 &
	SLOW_PID=$!
	SLOW_BACKEND=
	wait_line "$SLOW_OUT" '^(backend|error) ' 50 || return 1
	SLOW_BACKEND=$(awk '$1 == "backend" { print $2 }' "$SLOW_OUT")
	[[ -v B4[$SLOW_BACKEND] ]]
}

# weights_with B W: the lab's default weights with B's set to W.
weights_with() { echo "${WEIGHTS/$1=[0-9]/$1=$2}"; }

# drain_case HOW: a 6 s download keeps going to its end while 30 new
# connections avoid its backend, drained by HOW (ctl or reload).
drain_case() {
	local how=$1 d out res what
	slow_start 6 "t3-$how" || { fail "3 drain ($how): the slow download did not start: $(cat "$SLOW_OUT")"; wait "$SLOW_PID"; return; }
	d=$SLOW_BACKEND
	if [[ $how == ctl ]]; then
		what="xlbctl backend web $(ep_of "$d" 8080) drain"
		ctl backend web "$(ep_of "$d" 8080)" drain
		[[ $CTL_RC == 0 ]] || fail "3 $what: $CTL_OUT"
	else
		what="reload with $(weights_with "$d" 0)"
		config "$(weights_with "$d" 0)"
	fi
	out=$(burst "http://$VIP4/" 30)
	if (($(grep -c '^b[123]$' <<<"$out") == 30)) && ! grep -qx "$d" <<<"$out"; then
		pass "3 drain, $what: 30 new connections, none on $d ($(counts "$out")), state $(backend_state web "$d")"
	else
		fail "3 drain, $what: new connections $(counts "$out") (want 30, none on $d)"
	fi
	wait "$SLOW_PID"
	res=$(tail -n 1 "$SLOW_OUT")
	if [[ $res =~ ^done\ [0-9.]+\ bytes=([0-9]+)\ want=([0-9]+)$ ]] && ((BASH_REMATCH[1] == BASH_REMATCH[2])); then
		pass "3 drain, $what: the download from $d ran to its end (${BASH_REMATCH[1]} bytes)"
	else
		fail "3 drain, $what: the download from $d did not finish: $res"
	fi
	if [[ $how == ctl ]]; then
		ctl backend web "$(ep_of "$d" 8080)" up
	else
		config "$WEIGHTS"
	fi
}

# 3. Drain: by xlbctl and by weight 0; then drain_timeout = 3 ends a
# transfer still running after 3 s with RSTs (on_backend_down = reset).
t_drain() {
	drain_case ctl
	drain_case reload
	config "$WEIGHTS" --set web.drain_timeout=3 || return
	local d t0 res t_end
	slow_start 15 t3-timeout || { fail "3 drain_timeout: the slow download did not start: $(cat "$SLOW_OUT")"; wait "$SLOW_PID"; return; }
	d=$SLOW_BACKEND
	t0=$(now)
	ctl backend web "$(ep_of "$d" 8080)" drain
	wait "$SLOW_PID"
	res=$(tail -n 1 "$SLOW_OUT")
	t_end=$(awk '{ print $2 }' <<<"$res")
	local took
	took=$(awk -v a="${t_end:-0}" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
	if [[ $res == "error "*" ConnectionResetError "* ]] &&
		awk -v t="$took" -v b="$BOUND" 'BEGIN { exit !(t >= 2.9 && t <= 3 + b) }'; then
		pass "3 drain_timeout = 3: the download from draining $d was reset $took s after the drain"
	else
		fail "3 drain_timeout = 3: the download from $d, drained at 0 s, ended at $took s: $res (want a reset at 3 s)"
	fi
	ctl backend web "$(ep_of "$d" 8080)" up
	config "$WEIGHTS"
}

# ------------------------------------------------------------------ 4. reload

# 4. A reload that removes a backend purges its flows ([DESTROY], -L empty,
# clients reset); one that adds a backend moves only new connections.
t_reload() {
	local d ev=$LAB_RUN/t4-events.out evpid t0 left i n_destroy on_d w
	hold_start t4 "$VIP4" 12 watch 3 || { fail "4 reload: hold client did not start"; return; }
	d=$(pick_hold_backend)
	on_d=$(awk -v d="$d" '$1 == "conn" && $4 == d' "$HOLD_OUT" | grep -c .)
	ip netns exec "$NS_LB" timeout -s INT 30 "$XLBCTL" --socket "$SOCK" -E -p tcp >"$ev" 2>&1 &
	evpid=$!
	sleep 1
	w=$(tr , '\n' <<<"$WEIGHTS" | grep -v "^$d=" | paste -sd,)
	t0=$(now)
	config "$w"
	touch "$HOLD_GO"
	for ((i = 0; i < 30; i++)); do
		left=$(lab_xlbctl -L --backend "$(ep_of "$d" 8080)" 2>/dev/null | grep -c .)
		((left == 0)) && break
		sleep 0.1
	done
	if ((left == 0)); then
		pass "4 reload without $d: xlbctl -L --backend $(ep_of "$d" 8080) lists no flow"
	else
		fail "4 reload without $d: -L --backend $(ep_of "$d" 8080) still lists $left flows"
	fi
	wait "$HOLD_PID"
	sleep 0.3
	kill -INT "$evpid" 2>/dev/null
	wait "$evpid" 2>/dev/null
	n_destroy=$(grep -E "^ *\[DESTROY\] tcp .* src=${B4[$d]//./\\.} dst=${C1//./\\.} sport=8080 " "$ev" | grep -c .)
	if ((n_destroy >= on_d)); then
		pass "4 reload without $d: xlbctl -E shows $n_destroy [DESTROY] of $d's flows ($on_d held)"
	else
		fail "4 reload without $d: $n_destroy [DESTROY] events for $d's flows, $on_d held; -E: $(grep -c . "$ev") lines: $(grep -m 2 DESTROY "$ev")"
	fi
	hold_verdict "$d" "$t0" 1.0 "4 reload without $d"

	# Add b3 to a service without it.
	config b1=1,b2=2 || return
	hold_start t4b "$VIP4" 12 again 5 || { fail "4 reload add: hold client did not start"; return; }
	config "$WEIGHTS" || { touch "$HOLD_GO"; wait "$HOLD_PID"; return; }
	local out n bad=0 b line
	out=$(burst "http://$VIP4/" 40)
	n=$(grep -c '^b3$' <<<"$out")
	if (($(grep -c '^b[123]$' <<<"$out") == 40 && n > 0)); then
		pass "4 reload adding b3: 40 new connections, b3 took $n ($(counts "$out"))"
	else
		fail "4 reload adding b3: new connections $(counts "$out")"
	fi
	touch "$HOLD_GO"
	wait "$HOLD_PID"
	while read -r i b; do
		line=$(awk -v i="$i" '$1 == "again" && $2 == i { print $3 }' "$HOLD_OUT")
		[[ $line == "$b" ]] || { bad=$((bad + 1)); note "connection $i: on $b, then '$line'"; }
	done < <(hold_backends)
	if ((bad == 0)); then
		pass "4 reload adding b3: the 12 held connections keep their backends"
	else
		fail "4 reload adding b3: $bad of 12 held connections changed backend or failed"
	fi
}

# ------------------------------------------------------------------ 5. no backend

# set_all SERVICE STATE [EXCEPT_B EXCEPT_STATE]
set_all() {
	local b
	for b in "${BACKENDS[@]}"; do
		if [[ $b == "${3:-}" ]]; then
			lab_xlbctl backend "$1" "$(svc_ep "$1" "$b")" "$4" >/dev/null 2>&1
		else
			lab_xlbctl backend "$1" "$(svc_ep "$1" "$b")" "$2" >/dev/null 2>&1
		fi
	done
}

# probe WHAT ADDR PROTO PORT WAIT WANT: one PROBE; WANT refused (within 1 s)
# or timeout.
probe() {
	local what=$1 want=$6 out
	out=$(lab_exec c1 "$PY" -c "$PROBE" "$2" "$3" "$4" "$5" 2>&1)
	if [[ $want == refused && $out =~ ^refused\ ([0-9.]+)$ ]] &&
		awk -v t="${BASH_REMATCH[1]}" 'BEGIN { exit !(t < 1) }'; then
		pass "$what: $3 to $2:$4 refused in ${out#refused } s"
	elif [[ $want == timeout && $out == timeout* ]]; then
		pass "$what: $3 to $2:$4 unanswered for $5 s (dropped)"
	else
		fail "$what: $3 to $2:$4: '$out', want $want"
	fi
}

t_no_backend() {
	local svc
	for svc in web web6 dns dns6; do set_all "$svc" down; done
	probe "5 no_backend = reject, all down" "$VIP4" tcp 80 3 refused
	probe "5 no_backend = reject, all down" "$VIP4" udp 53 3 refused
	probe "5 no_backend = reject, all down" "$VIP6" tcp 80 3 refused
	probe "5 no_backend = reject, all down" "$VIP6" udp 53 3 refused

	config "$WEIGHTS" --set all.no_backend=drop || return
	for svc in web web6 dns dns6; do set_all "$svc" down; done
	probe "5 no_backend = drop, all down" "$VIP4" tcp 80 2 timeout
	probe "5 no_backend = drop, all down" "$VIP4" udp 53 2 timeout

	# One draining, the others down: the draining one takes new connections
	# (drain_fallback = 1, the default) or nobody does (0).
	config "$WEIGHTS" || return
	set_all web down b2 drain
	local out
	out=$(burst "http://$VIP4/" 20)
	if [[ $(grep -c '^b2$' <<<"$out") == 20 ]]; then
		pass "5 drain_fallback = 1: b2 draining, b1 b3 down: 20 new connections all on b2"
	else
		fail "5 drain_fallback = 1: b2 draining, b1 b3 down: $(counts "$out") (want b2=20)"
	fi
	config "$WEIGHTS" --set web.drain_fallback=0 || return
	set_all web down b2 drain
	probe "5 drain_fallback = 0, b2 draining, b1 b3 down" "$VIP4" tcp 80 3 refused

	# Every backend dead (unplugged), found by the health checks.
	config "$WEIGHTS" || return
	all_up web dns
	local b
	for b in "${BACKENDS[@]}"; do lab_backend_cable "$b" down; done
	sleep "$BOUND"
	note "b1 b2 b3 unplugged $BOUND s ago: web $(for b in "${BACKENDS[@]}"; do backend_state web "$b"; done | xargs)"
	probe "5 all unplugged, health checks" "$VIP4" tcp 80 3 refused
	probe "5 all unplugged, health checks" "$VIP4" udp 53 3 refused
	for b in "${BACKENDS[@]}"; do lab_backend_cable "$b" up; done
	if all_up web dns; then
		pass "6 comeback: b1 b2 b3 plugged back in, all up in web and dns"
	else
		fail "6 comeback: not all up again after plugging b1 b2 b3 back in"
	fi
	out=$(burst "http://$VIP4/" 30)
	if [[ $(grep -c '^b[123]$' <<<"$out") == 30 ]]; then
		pass "6 comeback: 30 new connections answered again ($(counts "$out"))"
	else
		fail "6 comeback: new connections after all came back: $(counts "$out")"
	fi
}

# ------------------------------------------------------------------ main

# restore: between checks, whatever the last one left behind: every cable
# plugged in, every server running, the base config, every backend up.
restore() {
	local b
	for b in "${BACKENDS[@]}"; do lab_backend_cable "$b" up; done
	lab start-backends >/dev/null 2>&1
	config "$WEIGHTS" || return
	if ! all_up web dns >/dev/null; then
		note "restore: not every backend is up: $(for b in "${BACKENDS[@]}"; do backend_state web "$b"; done | xargs)"
	fi
}

DEAD_UDP='' LAST_PACKET_FIGURE=''
T_START=$(date +%s)
lab_begin be
NS_LB=$(lab ns lb) NS_SW=$(lab ns sw) SOCK=$LAB_RUN/xlb.sock
echo "health checks: interval $INTERVAL_MS ms, timeout $TIMEOUT_MS ms, fall $FALL, rise $RISE; bound $BOUND s"
if config "$WEIGHTS" && all_up web dns; then
	pass "0 health checks on web (http) and dns (udp): every backend up"
else
	fail "0 health checks on web and dns: not every backend up"
fi

t_udp_dead
[[ -n $DEAD_UDP ]] && t_comeback "$DEAD_UDP"
restore
t_tcp_dead
restore
t_drain
restore
t_reload
restore
t_no_backend

echo
echo "measured: last datagram sent to the dead backend ${LAST_PACKET_FIGURE:-?} s after it died (bound $BOUND s)"
echo "test time: $(($(date +%s) - T_START)) s"
lab_summary
