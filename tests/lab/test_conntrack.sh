#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Conntrack that behaves like Linux nf_conntrack, seen from outside with
# real traffic and xlbctl:
#   1. a TCP connection walks SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT,
#      (CLOSE_WAIT), LAST_ACK, TIME_WAIT; -L shows each state with a
#      remaining timeout within the configured one; -E reports the walk
#   2. entries leave after their timeouts: TIME_WAIT, CLOSE (after a RST),
#      unreplied UDP; a UDP flow answered and continued past 2 s becomes
#      [ASSURED] and lives for udp_timeout_stream
#   3. segments with bad flags or out of the window (crafted with scapy) are
#      dropped, counted as invalid, and change nothing
#   4. ICMP errors are RELATED: path MTU discovery through the VIP (IPv4,
#      IPv6), port unreachable from a backend reaches the client from the VIP
#   5. a SYN flood into a small table ([conntrack] max = 256) early-drops
#      unassured entries while established transfers lose no byte
#
# Distinctive short timeouts make every state's timeout recognisable in -L.
# xlbd only: with XLB_LAB_LB=nft there is no xlbctl (exit 77).

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $XLB_LAB_LB != xlbd ]]; then
	echo "SKIP: the conntrack checks read xlbd's table (load balancer: $XLB_LAB_LB)"
	exit 77
fi
lab_require
for t in tcpdump timeout; do
	command -v "$t" >/dev/null || { echo "FAIL: missing tool: $t"; exit 1; }
done
if ! "$PY" -c 'import scapy.all' 2>/dev/null; then
	echo "FAIL: $PY cannot import scapy (apt-get install python3-scapy)"
	exit 1
fi
if [[ ! -x $XLBCTL ]]; then
	echo "FAIL: $XLBCTL is not built"
	exit 1
fi
trap '' PIPE

C1=${CLIENT4[c1]} C2=${CLIENT4[c2]}
B1=198.18.2.2 B1_6=2001:2:0:2::2
declare -A BACKEND_OF_ADDR=([198.18.2.2]=b1 [198.18.2.3]=b2 [198.18.3.2]=b3
	[2001:2:0:2::2]=b1 [2001:2:0:2::3]=b2 [2001:2:0:3::2]=b3)

# Timeouts (seconds), each distinct, so a timeout in -L names its rule.
declare -A TO=([syn_sent]=41 [syn_recv]=37 [established]=900 [fin_wait]=29
	[close_wait]=19 [last_ack]=17 [time_wait]=5 [close]=3 [unack]=250
	[udp]=4 [udp_stream]=8)
# How far below its configured value a timeout may be when we read it:
# the time between the packet that set it and our -L, with room for a slow
# machine. The GC may take this long again to remove an expired entry.
SLACK=3
SMALL_MAX=256
METRICS=127.0.0.1:9100

# ------------------------------------------------------------------ config

# write_ct_config [MAX]: the lab's services, our timeouts, a metrics
# endpoint, services for the UDP checks: "sink" (b1 drops what it gets,
# so the flow stays unreplied) and "closed" (b1 has no socket on the port:
# ICMP port unreachable), and "bulk" on port 81, the web service without
# B3 for the path MTU check: RT, the router that sends the ICMP error, is
# also the way to B3, and drops the translated error on its way there,
# as any Linux router drops a packet from one of its own addresses.
write_ct_config() {
	local max=${1:-}
	lab write-config >/dev/null || return 1
	local ini=$LAB_RUN/xlb.ini
	sed "s/^\[global\]\$/&\nmetrics = $METRICS/" "$ini" >"$ini.tmp"
	cat >>"$ini.tmp" <<EOF

[conntrack]
${max:+max = $max}
tcp_timeout_syn_sent = ${TO[syn_sent]}
tcp_timeout_syn_recv = ${TO[syn_recv]}
tcp_timeout_established = ${TO[established]}
tcp_timeout_fin_wait = ${TO[fin_wait]}
tcp_timeout_close_wait = ${TO[close_wait]}
tcp_timeout_last_ack = ${TO[last_ack]}
tcp_timeout_time_wait = ${TO[time_wait]}
tcp_timeout_close = ${TO[close]}
tcp_timeout_unacknowledged = ${TO[unack]}
udp_timeout = ${TO[udp]}
udp_timeout_stream = ${TO[udp_stream]}

[service sink]
vip = $VIP4
port = 9
protocol = udp
backends = $B1:9

[service closed]
vip = $VIP4
port = 54
protocol = udp
backends = $B1:5999

[service bulk]
vip = $VIP4
port = 81
protocol = tcp
backends = $B1:8080, 198.18.2.3:8080

[service bulk6]
vip = $VIP6
port = 81
protocol = tcp
backends = [$B1_6]:8080, [2001:2:0:2::3]:8080

[service closed6]
vip = $VIP6
port = 54
protocol = udp
backends = [$B1_6]:5999
EOF
	mv -f "$ini.tmp" "$ini"
}

restart_xlbd() {
	lab stop-xlbd >/dev/null 2>&1
	lab start-xlbd >/dev/null 2>&1
}

# ------------------------------------------------------------------ helpers

# ct_list FILTERS: -L lines (stdout only).
ct_list() { lab_xlbctl -L "$@" 2>/dev/null; }

# ct_stat NAME: NAME= summed over the workers of -S.
ct_stat() {
	lab_xlbctl -S 2>/dev/null | tr -s ' \t' '\n' | awk -F= -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'
}

# metric_drops REASON: xlb_worker_drops_total{reason=REASON} over the workers.
metric_drops() {
	lab_exec lb curl -s --noproxy '*' -m 3 "http://$METRICS/metrics" 2>/dev/null |
		awk -v r="reason=\"$1\"" 'index($0, "xlb_worker_drops_total{") == 1 && index($0, r) { s += $2 } END { print s + 0 }'
}

drop_reasons() {
	lab_exec lb curl -s --noproxy '*' -m 3 "http://$METRICS/metrics" 2>/dev/null |
		awk -F'[{}"= ]+' '/^xlb_worker_drops_total\{/ && $NF > 0 { s[$5] += $NF }
			END { for (r in s) printf "%s=%d ", r, s[r] }'
}

# tcp_state LINE / ct_timeout LINE: fields of one -L line.
tcp_state() { awk '{ print $4 }' <<<"$1"; }
ct_timeout() { awk '{ print $3 }' <<<"$1"; }

# timeout_ok LINE KEY: the line's timeout is within [TO[KEY] - SLACK, TO[KEY]].
timeout_ok() {
	local t
	t=$(ct_timeout "$1")
	[[ $t =~ ^[0-9]+$ ]] && ((t <= TO[$2] && t >= TO[$2] - SLACK))
}

# wait_state FILTER_ARGS... -- STATE TENTHS: poll -L until its single line
# for the filter shows STATE; prints that line. Fails (printing the last
# line seen) after TENTHS.
wait_state() {
	local args=() state tenths i line=""
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	state=$2 tenths=$3
	for ((i = 0; i < tenths; i++)); do
		line=$(ct_list "${args[@]}")
		if [[ $(tcp_state "$line") == "$state" ]]; then
			echo "$line"
			return 0
		fi
		sleep 0.1
	done
	echo "$line"
	return 1
}

# wait_gone TENTHS FILTER_ARGS...: poll -L until the filter shows nothing.
wait_gone() {
	local tenths=$1 i
	shift
	for ((i = 0; i < tenths; i++)); do
		[[ -z $(ct_list "$@") ]] && return 0
		sleep 0.1
	done
	return 1
}

# nft_rules ROLE RULES...: replace ROLE's filter rules ("in ..." or
# "out ..." each), or remove them all with no RULES.
nft_rules() {
	local role=$1 r
	shift
	{
		echo "table inet xlbt_ct"
		echo "delete table inet xlbt_ct"
		echo "table inet xlbt_ct {"
		echo " chain in { type filter hook input priority 0; policy accept; }"
		echo " chain out { type filter hook output priority 0; policy accept; }"
		echo "}"
		for r in "$@"; do echo "add rule inet xlbt_ct ${r%% *} ${r#* }"; done
	} | lab_exec "$role" nft -f -
}

# ------------------------------------------------------------------ clients

# A TCP client driven line by line on stdin, each command "TAG VERB", each
# answered "TAG ok ..." or "TAG error ...":
#   connect  connect to VIP:80 from the given local port (blocks)
#   get      one HTTP/1.1 request, read the whole answer
#   shut     shutdown(SHUT_WR): our FIN
#   eof      wait for the peer's FIN
#   reset    SO_LINGER 0 and close: a RST
STEP_CLIENT=$PY_HTTP$'\n'$(cat <<'EOF'
import re, socket, struct, sys
vip, lport = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
s.settimeout(30)
for line in sys.stdin:
    tag, verb = line.split()
    try:
        if verb == "connect":
            s.connect((vip, 80))
            print(tag, "ok", flush=True)
        elif verb == "get":
            s.sendall(b"GET /step HTTP/1.1\r\nHost: lab\r\n\r\n")
            head, body = http_head(s)
            body = http_body(s, body, http_length(head))
            m = re.search(rb"backend=(b[123])", body)
            print(tag, "ok", "backend=" + (m.group(1).decode() if m else "?"), flush=True)
        elif verb == "shut":
            s.shutdown(socket.SHUT_WR)
            print(tag, "ok", flush=True)
        elif verb == "eof":
            d = s.recv(1)
            print(tag, "ok" if d == b"" else "error data", flush=True)
        elif verb == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            print(tag, "ok", flush=True)
    except Exception as e:
        print(tag, "error", type(e).__name__, e, flush=True)
EOF
)

# cl_start NAME ROLE VIP LPORT: a STEP_CLIENT fed through a FIFO.
declare -A CL_FD=() CL_PID=()
cl_start() {
	local name=$1 fifo=$LAB_RUN/$1.in fd
	rm -f "$fifo" "$LAB_RUN/$name.out"
	mkfifo "$fifo"
	lab_exec "$2" "$PY" -c "$STEP_CLIENT" "$3" "$4" <"$fifo" >"$LAB_RUN/$name.out" 2>&1 &
	CL_PID[$name]=$!
	exec {fd}>"$fifo"
	CL_FD[$name]=$fd
}

# cl_cmd NAME TAG VERB: send without waiting; cl_wait NAME TAG TENTHS:
# the answer (empty after TENTHS).
cl_cmd() { { echo "$2 $3" 1>&"${CL_FD[$1]}"; } 2>/dev/null; }
cl_wait() {
	local i line
	for ((i = 0; i < $3; i++)); do
		line=$(grep "^$2 " "$LAB_RUN/$1.out" 2>/dev/null | tail -n 1)
		[[ -n $line ]] && { echo "${line#"$2" }"; return 0; }
		sleep 0.1
	done
	return 1
}
cl_stop() {
	local fd=${CL_FD[$1]:-}
	[[ -n $fd ]] || return 0
	exec {fd}>&-
	unset "CL_FD[$1]"
	kill "${CL_PID[$1]}" 2>/dev/null
	wait "${CL_PID[$1]}" 2>/dev/null
}

lport() { echo $((20000 + RANDOM % 20000)); }

# ------------------------------------------------------------------ 1 + 2

# 1. The walk of one connection from C1, held at each state by dropping
# packets in the namespaces around the node (never in it): the node sees
# exactly what conntrack would.
t_walk() {
	local p b line ev=$LAB_RUN/walk.events epid ans
	p=$(lport)
	lab_xlbctl -E -p tcp --sport "$p" >"$ev" 2>/dev/null &
	epid=$!
	sleep 0.3
	cl_start walk c1 "$VIP4" "$p"

	# SYN_SENT: the backends do not see our SYNs.
	for b in b1 b2 b3; do nft_rules "$b" "in ip saddr $C1 tcp sport $p drop"; done
	cl_cmd walk c connect
	if line=$(wait_state -p tcp --sport "$p" -- SYN_SENT 50) && [[ $line == *"[UNREPLIED]"* ]] &&
		timeout_ok "$line" syn_sent; then
		pass "1 SYN_SENT [UNREPLIED], timeout $(ct_timeout "$line") of ${TO[syn_sent]}"
	else
		fail "1 SYN_SENT [UNREPLIED] with a timeout within ${TO[syn_sent]}-$SLACK..${TO[syn_sent]}"; note "-L: $line"
	fi

	# SYN_RECV: the backend answers, the client never hears it.
	nft_rules c1 "in ip saddr $VIP4 tcp sport 80 tcp dport $p drop"
	for b in b1 b2 b3; do nft_rules "$b"; done
	if line=$(wait_state -p tcp --sport "$p" -- SYN_RECV 60) && [[ $line != *"[UNREPLIED]"* ]] &&
		timeout_ok "$line" syn_recv; then
		pass "1 SYN_RECV, timeout $(ct_timeout "$line") of ${TO[syn_recv]}"
	else
		fail "1 SYN_RECV (the backend's SYN-ACK seen) with a timeout within ${TO[syn_recv]}-$SLACK..${TO[syn_recv]}"; note "-L: $line"
	fi

	# ESTABLISHED: let the handshake finish, one request and its answer.
	nft_rules c1
	ans=$(cl_wait walk c 100)
	if [[ $ans != ok ]]; then
		fail "1 the client could not connect once the SYN-ACK passes: '$ans'"
		kill "$epid" 2>/dev/null; wait "$epid" 2>/dev/null
		cl_stop walk
		return
	fi
	cl_cmd walk g get
	ans=$(cl_wait walk g 100)
	# The client's ACK of the answer may be delayed; until it passes the
	# answer is unacknowledged data (tcp_timeout_unacknowledged).
	sleep 0.3
	line=$(ct_list -p tcp --sport "$p")
	b=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^src=/ && ++n == 2) print substr($i, 5) }' <<<"$line")
	b=${BACKEND_OF_ADDR[$b]:-}
	if [[ $ans == "ok backend="* && $(tcp_state "$line") == ESTABLISHED && $line == *"[ASSURED]"* ]] &&
		timeout_ok "$line" established; then
		pass "1 ESTABLISHED [ASSURED] on $b after a request, timeout $(ct_timeout "$line") of ${TO[established]}"
	else
		fail "1 ESTABLISHED [ASSURED] with a timeout within ${TO[established]}-$SLACK..${TO[established]}: client '$ans'"; note "-L: $line"
	fi
	if [[ -z $b ]]; then
		fail "1 no backend in the flow's reply tuple: '$line'"
		kill "$epid" 2>/dev/null; wait "$epid" 2>/dev/null
		cl_stop walk
		return
	fi

	# FIN_WAIT: our FIN passes the node, the backend does not get it.
	nft_rules "$b" "in ip saddr $C1 tcp sport $p tcp flags & fin == fin drop"
	cl_cmd walk s shut
	if line=$(wait_state -p tcp --sport "$p" -- FIN_WAIT 50) && timeout_ok "$line" fin_wait; then
		pass "1 FIN_WAIT after the client's FIN, timeout $(ct_timeout "$line") of ${TO[fin_wait]}"
	else
		fail "1 FIN_WAIT with a timeout within ${TO[fin_wait]}-$SLACK..${TO[fin_wait]}"; note "-L: $line"
	fi

	# LAST_ACK: the FIN (retransmitted) reaches the backend, which answers
	# with ACK and FIN; the client's last ACK does not leave C1.
	nft_rules c1 "out ip daddr $VIP4 tcp dport 80 tcp sport $p tcp flags & (fin | syn | rst) == 0 drop"
	nft_rules "$b"
	if line=$(wait_state -p tcp --sport "$p" -- LAST_ACK 80) && timeout_ok "$line" last_ack; then
		pass "1 LAST_ACK after the backend's FIN, timeout $(ct_timeout "$line") of ${TO[last_ack]}"
	else
		fail "1 LAST_ACK with a timeout within ${TO[last_ack]}-$SLACK..${TO[last_ack]}"; note "-L: $line"
	fi

	# TIME_WAIT: the last ACK passes (the backend retransmits its FIN).
	nft_rules c1
	if line=$(wait_state -p tcp --sport "$p" -- TIME_WAIT 100) && timeout_ok "$line" time_wait; then
		pass "1 TIME_WAIT after the client's last ACK, timeout $(ct_timeout "$line") of ${TO[time_wait]}"
		WALK_TW_PORT=$p
	else
		fail "1 TIME_WAIT with a timeout within ${TO[time_wait]}-$SLACK..${TO[time_wait]}"; note "-L: $line"
	fi
	cl_cmd walk e eof
	ans=$(cl_wait walk e 50)
	[[ $ans == ok ]] || fail "1 the client did not see the backend's FIN: '$ans'"
	sleep 0.3
	kill "$epid" 2>/dev/null
	wait "$epid" 2>/dev/null
	cl_stop walk

	# The same walk as -E reported it: the states of NEW and UPDATE events.
	local walk
	walk=$(grep -E '\[(NEW|UPDATE)\]' "$ev" | awk '{ print $5 }' | uniq | xargs)
	case $walk in
	"SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT LAST_ACK TIME_WAIT" | \
	"SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT")
		pass "1 -E reports the walk: $walk";;
	*)
		fail "1 -E reports the walk '$walk', want SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT [CLOSE_WAIT] LAST_ACK TIME_WAIT"
		note "$(head -n 12 "$ev")";;
	esac
}

# 2a. The TIME_WAIT entry of the walk leaves after tcp_timeout_time_wait.
t_time_wait_gone() {
	local p=${WALK_TW_PORT:-}
	if [[ -z $p ]]; then
		fail "2 TIME_WAIT entry gone after ${TO[time_wait]} s: no TIME_WAIT entry to watch (see 1)"
		return
	fi
	if wait_gone $(((TO[time_wait] + SLACK + 2) * 10)) -p tcp --sport "$p"; then
		pass "2 TIME_WAIT entry gone within $((TO[time_wait] + SLACK + 2)) s (tcp_timeout_time_wait = ${TO[time_wait]})"
	else
		fail "2 TIME_WAIT entry still listed $((TO[time_wait] + SLACK + 2)) s later"; note "$(ct_list -p tcp --sport "$p")"
	fi
}

# 2b. A connection reset by the client: CLOSE for tcp_timeout_close, then gone.
t_close() {
	local p line ans
	p=$(lport)
	cl_start rst c1 "$VIP4" "$p"
	cl_cmd rst c connect
	cl_cmd rst g get
	ans=$(cl_wait rst g 50)
	cl_cmd rst r reset
	cl_wait rst r 50 >/dev/null
	cl_stop rst
	if [[ $ans == "ok backend="* ]] && line=$(wait_state -p tcp --sport "$p" -- CLOSE 30) &&
		timeout_ok "$line" close; then
		pass "2 a RST: CLOSE, timeout $(ct_timeout "$line") of ${TO[close]}"
	else
		fail "2 a RST: CLOSE with a timeout within ${TO[close]}-$SLACK..${TO[close]}: client '$ans'"; note "-L: $line"
	fi
	if wait_gone $(((TO[close] + SLACK + 2) * 10)) -p tcp --sport "$p"; then
		pass "2 CLOSE entry gone within $((TO[close] + SLACK + 2)) s"
	else
		fail "2 CLOSE entry still listed $((TO[close] + SLACK + 2)) s later"; note "$(ct_list -p tcp --sport "$p")"
	fi
}

# Python: UDP from a fixed local port to ADDR:PORT; each "send" sends one
# datagram and waits (1 s) for an answer: "TAG ok" or "TAG noreply".
UDP_STEP=$(cat <<'EOF'
import socket, sys
addr, port, lport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
s.settimeout(1)
for line in sys.stdin:
    tag, verb = line.split()
    s.sendto(b"ct-" + tag.encode(), (addr, port))
    try:
        s.recvfrom(2048)
        print(tag, "ok", flush=True)
    except socket.timeout:
        print(tag, "noreply", flush=True)
EOF
)

# 2c. UDP: unreplied, then a stream.
t_udp() {
	local p q line1 line2 ans fd1 fd2 pid1 pid2
	p=$(lport)
	q=$((p + 1))
	nft_rules b1 "in udp dport 9 drop"
	mkfifo "$LAB_RUN/u1.in" "$LAB_RUN/u2.in"
	lab_exec c1 "$PY" -c "$UDP_STEP" "$VIP4" 9 "$p" <"$LAB_RUN/u1.in" >"$LAB_RUN/u1.out" 2>&1 &
	pid1=$!
	exec {fd1}>"$LAB_RUN/u1.in"
	lab_exec c1 "$PY" -c "$UDP_STEP" "$VIP4" 53 "$q" <"$LAB_RUN/u2.in" >"$LAB_RUN/u2.out" 2>&1 &
	pid2=$!
	exec {fd2}>"$LAB_RUN/u2.in"

	echo "a send" >&"$fd1"
	echo "a send" >&"$fd2"
	sleep 1.2   # the unreplied one waits 1 s for nothing
	line1=$(ct_list -p udp --sport "$p")
	line2=$(ct_list -p udp --sport "$q")
	if [[ $line1 == *"[UNREPLIED]"* ]] && timeout_ok "$line1" udp; then
		pass "2 unreplied UDP: [UNREPLIED], timeout $(ct_timeout "$line1") of ${TO[udp]}"
	else
		fail "2 unreplied UDP: [UNREPLIED] with a timeout within ${TO[udp]}-$SLACK..${TO[udp]}"; note "-L: $line1"
	fi
	ans=$(cl_wait u2 a 10)
	if [[ $ans == ok && $line2 != *"[UNREPLIED]"* && $line2 != *"[ASSURED]"* ]] && timeout_ok "$line2" udp; then
		pass "2 answered UDP: neither [UNREPLIED] nor [ASSURED] yet, timeout $(ct_timeout "$line2") of ${TO[udp]}"
	else
		fail "2 answered UDP within 2 s of its start: not [ASSURED], timeout within ${TO[udp]}-$SLACK..${TO[udp]}: client '$ans'"
		note "-L: $line2"
	fi
	# The kernel's rule: a reply seen, and traffic more than 2 s after the
	# first packet, make a stream.
	sleep 1.5
	echo "b send" >&"$fd2"
	ans=$(cl_wait u2 b 20)
	line2=$(ct_list -p udp --sport "$q")
	if [[ $ans == ok && $line2 == *"[ASSURED]"* ]] && timeout_ok "$line2" udp_stream &&
		(($(ct_timeout "$line2") > TO[udp])); then
		pass "2 UDP continued after 2 s: [ASSURED], timeout $(ct_timeout "$line2") of udp_timeout_stream ${TO[udp_stream]}"
	else
		fail "2 UDP continued after 2 s: [ASSURED] with a timeout within ${TO[udp_stream]}-$SLACK..${TO[udp_stream]}: client '$ans'"
		note "-L: $line2"
	fi
	if wait_gone $(((TO[udp] + SLACK + 1) * 10)) -p udp --sport "$p"; then
		pass "2 unreplied UDP gone within $((TO[udp] + SLACK + 1)) s of its packet"
	else
		fail "2 unreplied UDP still listed $((TO[udp] + SLACK + 1)) s after its packet"; note "$(ct_list -p udp --sport "$p")"
	fi
	line2=$(ct_list -p udp --sport "$q")
	if [[ -n $line2 ]]; then
		pass "2 the UDP stream outlives udp_timeout (${TO[udp]} s): timeout $(ct_timeout "$line2")"
	else
		fail "2 the UDP stream is gone after udp_timeout, want udp_timeout_stream (${TO[udp_stream]} s)"
	fi
	if wait_gone $(((TO[udp_stream] + SLACK) * 10)) -p udp --sport "$q"; then
		pass "2 UDP stream gone within udp_timeout_stream"
	else
		fail "2 UDP stream still listed after udp_timeout_stream + $SLACK s"; note "$(ct_list -p udp --sport "$q")"
	fi
	exec {fd1}>&- {fd2}>&-
	kill "$pid1" "$pid2" 2>/dev/null
	wait "$pid1" "$pid2" 2>/dev/null
	nft_rules b1
}

# ------------------------------------------------------------------ 3

# Python, in C1: one real connection to VIP:80 from LPORT (one request,
# watched with a sniffer to learn both sides' next sequence numbers), then
# commands on stdin, each "TAG KIND", answered "TAG sent ..." or
# "TAG ok/error" for "get":
#   synfin synrst null fin xmas   bad flags on the connection's tuple
#   rst_oow                       RST far outside the window
#   data_oow                      data far beyond the window
#   ack_oow                       ACK of data never sent
#   new_synfin new_null new_fin new_xmas   bad flags from a fresh port
#   ack                           a valid in-window pure ACK (the control)
#   get                           one more request on the real socket
CRAFT=$PY_HTTP$'\n'$(cat <<'EOF'
import re, socket, sys, json
from scapy.all import Ether, IP, TCP, AsyncSniffer, conf, get_if_hwaddr, sendp
conf.verb = 0
vip, lport, vip_mac, fresh = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
iface = "eth0"
sn = AsyncSniffer(iface=iface, store=True,
                  lfilter=lambda p: TCP in p and lport in (p[TCP].sport, p[TCP].dport))
sn.start()
import time
time.sleep(0.5)
s = socket.socket()
s.bind(("0.0.0.0", lport))
s.settimeout(5)
def get():
    s.sendall(b"GET /craft HTTP/1.1\r\nHost: lab\r\n\r\n")
    head, body = http_head(s)
    body = http_body(s, body, http_length(head))
    return re.search(rb"backend=(b[123])", body).group(1).decode()
s.connect((vip, 80))
b = get()
time.sleep(0.5)
pkts = sn.stop()
mine = [p[TCP] for p in pkts if p[IP].src != vip]
theirs = [p[TCP] for p in pkts if p[IP].src == vip]
snd = max((t.seq + len(t.payload)) & 0xffffffff for t in mine if not t.flags.S)
rcv = max((t.seq + len(t.payload)) & 0xffffffff for t in theirs if not t.flags.S)
print(json.dumps({"backend": b, "snd": snd, "rcv": rcv}), flush=True)
me = get_if_hwaddr(iface)
def frame(sport, flags, seq, ack, payload=b""):
    return Ether(src=me, dst=vip_mac) / IP(src=s.getsockname()[0], dst=vip) / \
        TCP(sport=sport, dport=80, flags=flags, seq=seq & 0xffffffff, ack=ack & 0xffffffff,
            window=502) / payload
far = 1 << 30
kinds = {
    "synfin": (lport, "SF", snd, 0), "synrst": (lport, "SR", snd, 0),
    "null": (lport, "", snd, 0), "fin": (lport, "F", snd, 0),
    "xmas": (lport, "FSRPAU", snd, rcv),
    "rst_oow": (lport, "R", snd + far, 0),
    "data_oow": (lport, "PA", snd + far, rcv, b"X" * 20),
    "ack_oow": (lport, "A", snd, rcv + far),
    "new_synfin": (fresh, "SF", 1000, 0), "new_null": (fresh, "", 1000, 0),
    "new_fin": (fresh, "F", 1000, 0), "new_xmas": (fresh, "FSRPAU", 1000, 1),
    "ack": (lport, "A", snd, rcv),
}
for line in sys.stdin:
    tag, kind = line.split()
    try:
        if kind == "get":
            print(tag, "ok", get(), flush=True)
            continue
        k = kinds[kind]
        sendp(frame(*k), iface=iface)
        print(tag, "sent", kind, "sport=%d flags=%s seq=%d" % (k[0], k[1] or "none", k[2] & 0xffffffff), flush=True)
    except Exception as e:
        print(tag, "error", type(e).__name__, e, flush=True)
EOF
)

# bpf filter (for tcpdump -r) that matches what KIND sends, at the backend.
kind_filter() {
	local sport=$1 kind=$2 snd=$3 rcv=$4 far=$((1 << 30))
	local base="src host $C1 and tcp src port $sport"
	case $kind in
	synfin|new_synfin) echo "$base and tcp[tcpflags] & (tcp-syn|tcp-fin) == (tcp-syn|tcp-fin)";;
	synrst) echo "$base and tcp[tcpflags] & (tcp-syn|tcp-rst) == (tcp-syn|tcp-rst)";;
	null|new_null) echo "$base and tcp[tcpflags] & 0x3f == 0";;
	fin|new_fin) echo "$base and tcp[tcpflags] & 0x3f == tcp-fin";;
	xmas|new_xmas) echo "$base and tcp[tcpflags] & 0x3f == 0x3f";;
	rst_oow) echo "$base and tcp[tcpflags] & 0x3f == tcp-rst and tcp[4:4] == $(((snd + far) & 0xffffffff))";;
	data_oow) echo "$base and tcp[4:4] == $(((snd + far) & 0xffffffff))";;
	ack_oow) echo "$base and tcp[8:4] == $(((rcv + far) & 0xffffffff))";;
	ack) echo "$base and tcp[tcpflags] & 0x3f == tcp-ack and tcp[4:4] == $snd and tcp[8:4] == $rcv";;
	esac
}

t_bad() {
	local p fresh mac fd pid info b snd rcv kind i inv0 inv1 m0 m1 line0 line1 ans seen pcap
	p=$(lport)
	fresh=$((p + 1))
	mac=$(lab_exec lb cat /sys/class/net/xlb0/address)
	mkfifo "$LAB_RUN/craft.in"
	lab_exec c1 "$PY" -c "$CRAFT" "$VIP4" "$p" "$mac" "$fresh" <"$LAB_RUN/craft.in" >"$LAB_RUN/craft.out" 2>"$LAB_RUN/craft.err" &
	pid=$!
	exec {fd}>"$LAB_RUN/craft.in"
	for ((i = 0; i < 150; i++)); do
		info=$(grep -m1 '^{' "$LAB_RUN/craft.out" 2>/dev/null) && break
		sleep 0.1
	done
	if [[ -z $info ]]; then
		fail "3 the scapy client did not set up its connection"; note "$(tail -n 5 "$LAB_RUN/craft.err")"
		exec {fd}>&-; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
		return
	fi
	read -r b snd rcv <<<"$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["backend"], d["snd"], d["rcv"])' "$info")"
	note "connection $C1:$p -> $VIP4:80 on $b, next seq $snd, next ack $rcv"

	# Every backend listens, in case something leaked to another.
	pcap=$LAB_RUN/bad
	local tds=()
	for i in b1 b2 b3; do
		# ip netns exec and timeout both pass our SIGINT on to tcpdump.
		ip netns exec "$(lab ns "$i")" timeout 90 tcpdump -i eth0 -n -U -w "$pcap.$i.pcap" "src host $C1 and tcp" 2>"$pcap.$i.err" &
		tds+=($!)
	done
	for ((i = 0; i < 50; i++)); do
		(($(grep -l listening "$pcap".b?.err 2>/dev/null | wc -l) == 3)) && break
		sleep 0.1
	done

	line0=$(ct_list -p tcp --sport "$p")
	m0=$(metric_drops invalid)
	for kind in synfin synrst null fin xmas rst_oow data_oow ack_oow new_synfin new_null new_fin new_xmas ack; do
		inv0=$(ct_stat invalid)
		echo "$kind $kind" >&"$fd"
		ans=$(cl_wait craft "$kind" 50)
		sleep 0.3
		inv1=$(ct_stat invalid)
		line1=$(ct_list -p tcp --sport "$p")
		CRAFT_INV[$kind]=$((inv1 - inv0))
		CRAFT_STATE[$kind]=$(tcp_state "$line1")
		CRAFT_NEW[$kind]=$(ct_list -p tcp --sport "$fresh" | wc -l)
		[[ $ans == sent* ]] || note "$kind: $ans"
	done
	m1=$(metric_drops invalid)
	echo "g get" >&"$fd"
	ans=$(cl_wait craft g 60)
	line1=$(ct_list -p tcp --sport "$p")
	sleep 0.5
	for i in "${tds[@]}"; do kill -INT "$i" 2>/dev/null; done
	for i in "${tds[@]}"; do wait "$i" 2>/dev/null; done
	exec {fd}>&-
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null

	if [[ $(tcp_state "$line0") != ESTABLISHED ]]; then
		fail "3 the crafted packets' connection is not ESTABLISHED before them"; note "-L: $line0"
	fi
	local what
	for kind in synfin synrst null fin xmas rst_oow data_oow ack_oow new_synfin new_null new_fin new_xmas; do
		case $kind in
		new_*) what="on a fresh tuple (sport $fresh)"; i=$fresh;;
		*) what="on the established connection"; i=$p;;
		esac
		seen=0
		for b in b1 b2 b3; do
			seen=$((seen + $(tcpdump -r "$pcap.$b.pcap" -n "$(kind_filter "$i" "$kind" "$snd" "$rcv")" 2>/dev/null | wc -l)))
		done
		local bad=""
		((seen == 0)) || bad+=" reached a backend ($seen);"
		((CRAFT_INV[$kind] >= 1)) || bad+=" invalid +${CRAFT_INV[$kind]};"
		if [[ $kind == new_* ]]; then
			((CRAFT_NEW[$kind] == 0)) || bad+=" created an entry;"
		elif [[ ${CRAFT_STATE[$kind]} != ESTABLISHED ]]; then
			bad+=" state now ${CRAFT_STATE[$kind]:-gone};"
		fi
		if [[ -z $bad ]]; then
			pass "3 $kind $what: dropped, invalid +${CRAFT_INV[$kind]}, state unchanged"
		else
			fail "3 $kind $what:$bad"
		fi
	done
	seen=0
	for b in b1 b2 b3; do
		seen=$((seen + $(tcpdump -r "$pcap.$b.pcap" -n "$(kind_filter "$p" ack "$snd" "$rcv")" 2>/dev/null | wc -l)))
	done
	if ((seen >= 1 && CRAFT_INV[ack] == 0)) && [[ ${CRAFT_STATE[ack]} == ESTABLISHED ]]; then
		pass "3 control: a valid in-window ACK crafted the same way reaches the backend, invalid +0"
	else
		fail "3 control: a valid in-window ACK: seen at the backends $seen times, invalid +${CRAFT_INV[ack]}, state ${CRAFT_STATE[ack]}"
	fi
	if [[ $ans == "ok "* && $(tcp_state "$line1") == ESTABLISHED ]]; then
		pass "3 the connection still works after them ($ans), ESTABLISHED"
	else
		fail "3 the connection after the crafted packets: client '$ans'"; note "-L: $line1"
	fi
	if ((m1 - m0 >= 12)); then
		pass "3 metrics: xlb_worker_drops_total{reason=\"invalid\"} +$((m1 - m0))"
	else
		fail "3 metrics: xlb_worker_drops_total{reason=\"invalid\"} +$((m1 - m0)), want >= 12; drops: $(drop_reasons)"
	fi
}
declare -A CRAFT_INV=() CRAFT_STATE=() CRAFT_NEW=()

# ------------------------------------------------------------------ 4

# Python: GET /bytes/N from VIP:PORT; prints "ok backend=bN bytes=N" when
# every byte matches the pattern lab-backend.py serves, else "error ...".
BULK_GET=$PY_HTTP$'\n'$(cat <<'EOF'
import hashlib, importlib.util, re, socket, sys
spec = importlib.util.spec_from_file_location("lab_backend", sys.argv[3])
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)
vip, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[5]))
got = 0
try:
    s.connect((vip, port))
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: lab\r\n\r\n" % n)
    head, body = http_head(s)
    m = re.search(rb"(?im)^x-backend: *(b[123])", head)
    body = http_body(s, body, n)
    got = len(body)
    ok = hashlib.sha256(body).digest() == hashlib.sha256(lb.bytes_pattern(n)).digest()
    print("%s backend=%s bytes=%d" % ("ok" if ok else "error corrupt", m.group(1).decode() if m else "?", got))
except Exception as e:
    print("error %s %s after %d bytes" % (type(e).__name__, e, got))
EOF
)

# Python: UDP to VIP:54 (a closed port on the backend), connected socket
# with IP(V6)_RECVERR: "refused offender=ADDR type=T code=C" or "noanswer".
UDP_REFUSED=$(cat <<'EOF'
import socket, struct, sys
vip = sys.argv[1]
v6 = ":" in vip
IP_RECVERR, IPV6_RECVERR = 11, 25    # linux/in.h, linux/in6.h
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
else:
    s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
s.connect((vip, 54))
s.settimeout(1)
for _ in range(4):
    s.send(b"anyone?")
    try:
        s.recv(100)
        print("answered"); sys.exit()
    except ConnectionRefusedError:
        pass
    except socket.timeout:
        continue
    _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for lvl, typ, data in anc:
        errno_, origin, itype, icode = struct.unpack_from("=IBBB", data)
        off = data[16:]
        if v6:
            addr = socket.inet_ntop(socket.AF_INET6, off[8:24])
        else:
            addr = socket.inet_ntop(socket.AF_INET, off[4:8])
        print("refused offender=%s type=%d code=%d" % (addr, itype, icode)); sys.exit()
    print("refused offender=? type=? code=?"); sys.exit()
print("noanswer")
EOF
)

t_pmtu() {
	local i out4 out6 pid4 pid6 f4=$LAB_RUN/pmtu4.out f6=$LAB_RUN/pmtu6.out b mtu u0 u1
	lab_exec rt ip link set c2 mtu 1280
	u0=$(metric_drops unsupported)
	lab_exec c2 "$PY" -c "$BULK_GET" "$VIP4" 200000 "$LAB_SOURCE_DIR/tools/lab-backend.py" 81 15 >"$f4" 2>&1 &
	pid4=$!
	lab_exec c2 "$PY" -c "$BULK_GET" "$VIP6" 200000 "$LAB_SOURCE_DIR/tools/lab-backend.py" 81 15 >"$f6" 2>&1 &
	pid6=$!
	wait "$pid4" "$pid6"
	u1=$(metric_drops unsupported)
	out4=$(cat "$f4") out6=$(cat "$f6")
	local fam out addr
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then out=$out4 addr=$C2; else out=$out6 addr=${CLIENT6[c2]}; fi
		# The backend's route cache: a PMTU learnt from the translated
		# ICMP error. When no header arrived, whichever backend it was.
		b=$(sed -n 's/.*backend=\(b[123]\).*/\1/p' <<<"$out")
		mtu=""
		for i in ${b:-b1 b2}; do
			mtu+=$(lab_exec "$i" ip -"$fam" route get "$addr" 2>/dev/null | grep -o 'mtu [0-9]*' | sed "s/^/$i: /" | head -n 1)
		done
		if [[ $out == "ok "* ]]; then
			pass "4 PMTU IPv$fam: C2 behind a 1280-byte link downloads 200000 bytes via the VIP intact ($out; route cache $mtu)"
		else
			fail "4 PMTU IPv$fam: 200000 bytes via the VIP to C2 behind a 1280-byte link: $out; backend ${b:-unknown}; route caches of the backends: '${mtu:-no PMTU learnt}'"
		fi
	done
	(((u1 - u0) == 0)) || note "the node dropped $((u1 - u0)) frames as 'unsupported' meanwhile (drops: $(drop_reasons))"
	lab_exec rt ip link set c2 mtu 1500

	local vip want
	for vip in "$VIP4" "$VIP6"; do
		out=$(lab_exec c1 timeout 20 "$PY" -c "$UDP_REFUSED" "$vip" 2>&1)
		if [[ $vip == *:* ]]; then want="refused offender=$vip type=1 code=4"; else want="refused offender=$vip type=3 code=3"; fi
		if [[ $out == "$want" ]]; then
			pass "4 UDP to a closed port behind $vip:54: ConnectionRefusedError, port unreachable from the VIP ($out)"
		else
			fail "4 UDP to a closed port behind $vip:54: '$out', want '$want'; drops: $(drop_reasons)"
		fi
	done
}

# ------------------------------------------------------------------ 5

# Python: keep-alive downloads of /bytes/N from VIP:80 until the file STOP
# exists, each checked whole; counts those that ended while the file FLOOD
# existed. Writes "first" to READY after the first, then at the end one
# line "ok|error chunks=N during=N bytes=N port=P backend=bN [reason]".
LONG_GET=$PY_HTTP$'\n'$(cat <<'EOF'
import hashlib, importlib.util, os, re, socket, sys, time
spec = importlib.util.spec_from_file_location("lab_backend", sys.argv[2])
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)
vip, n, ready, flood, stop = sys.argv[1], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
want = hashlib.sha256(lb.bytes_pattern(n)).digest()
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(15)
chunks = during = total = 0
backend = "?"
why = ""
port = 0
deadline = time.monotonic() + 120
try:
    s.connect((vip, 80))
    port = s.getsockname()[1]
    while not os.path.exists(stop) and time.monotonic() < deadline:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: lab\r\n\r\n" % n)
        head, body = http_head(s)
        m = re.search(rb"(?im)^x-backend: *(b[123])", head)
        backend = m.group(1).decode() if m else "?"
        body = http_body(s, body, n)
        total += len(body)
        if len(body) != n or hashlib.sha256(body).digest() != want:
            raise ValueError("chunk %d corrupt" % chunks)
        chunks += 1
        if os.path.exists(flood):
            during += 1
        if chunks == 1:
            open(ready, "w").write("first\n")
except Exception as e:
    why = "%s: %s" % (type(e).__name__, e)
print("%s chunks=%d during=%d bytes=%d port=%d backend=%s %s" % (
    "error" if why else "ok", chunks, during, total, port, backend, why))
EOF
)

# Python, in C1: COUNT SYNs to VIP:80 from distinct source ports, about
# RATE a second, through a packet socket; prints how many were sent.
SYN_FLOOD=$(cat <<'EOF'
import random, socket, sys, time
from scapy.all import Ether, IP, TCP, get_if_hwaddr
vip, mac, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
src = sys.argv[5]
me = get_if_hwaddr("eth0")
ports = random.sample(range(1024, 65536), count)
frames = [bytes(Ether(src=me, dst=mac) / IP(src=src, dst=vip) /
                TCP(sport=p, dport=80, flags="S", seq=random.getrandbits(32), window=64240))
          for p in ports]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
start = time.monotonic()
for i, f in enumerate(frames):
    s.send(f)
    ahead = start + i / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print(len(frames))
EOF
)

t_flood() {
	write_ct_config "$SMALL_MAX" || { fail "5 writing the config with max = $SMALL_MAX"; return; }
	if ! restart_xlbd; then
		fail "5 xlbd did not restart with [conntrack] max = $SMALL_MAX"
		return
	fi
	local mac k pids=() ed0 ed1 dr0 dr1 maxc=0 c sent out workers
	mac=$(lab_exec lb cat /sys/class/net/xlb0/address)
	rm -f "$LAB_RUN"/long.* "$LAB_RUN/flooding" "$LAB_RUN/stop"
	for k in 0 1 2 3; do
		local vip=$VIP4
		((k % 2)) && vip=$VIP6
		lab_exec c2 "$PY" -c "$LONG_GET" "$vip" "$LAB_SOURCE_DIR/tools/lab-backend.py" 262144 \
			"$LAB_RUN/long.$k.ready" "$LAB_RUN/flooding" "$LAB_RUN/stop" >"$LAB_RUN/long.$k.out" 2>&1 &
		pids+=($!)
	done
	for k in 0 1 2 3; do wait_for_file "$LAB_RUN/long.$k.ready" 150 || note "download $k did not start"; done
	ed0=$(ct_stat early_drop) dr0=$(ct_stat drop)
	# The node's SYN-ACKs must not be answered with RSTs by C1, or the
	# flood's entries would close: they stay SYN_RECV, unassured.
	nft_rules c1 "out ip daddr $VIP4 tcp flags & rst == rst drop"
	touch "$LAB_RUN/flooding"
	lab_exec c1 "$PY" -c "$SYN_FLOOD" "$VIP4" "$mac" 3000 600 "$C1" >"$LAB_RUN/flood.out" 2>&1 &
	local fpid=$!
	while [[ -d /proc/$fpid ]]; do
		c=$(lab_xlbctl -C 2>/dev/null)
		[[ $c =~ ^[0-9]+$ ]] && ((c > maxc)) && maxc=$c
		sleep 0.3
	done
	wait "$fpid"
	sent=$(tail -n 1 "$LAB_RUN/flood.out")
	sleep 1   # the downloads carry on after the flood
	rm -f "$LAB_RUN/flooding"
	touch "$LAB_RUN/stop"
	for k in 0 1 2 3; do wait "${pids[k]}"; done
	ed1=$(ct_stat early_drop) dr1=$(ct_stat drop)
	c=$(lab_xlbctl -C 2>/dev/null)
	workers=$(lab_xlbctl -S 2>/dev/null | grep -c '^cpu=')
	nft_rules c1

	for k in 0 1 2 3; do
		out=$(tail -n 1 "$LAB_RUN/long.$k.out")
		local during=${out#*during=}
		during=${during%% *}
		if [[ $out == "ok "* ]] && ((during >= 1)); then
			pass "5 long download $k through the flood: every byte ($out)"
		else
			fail "5 long download $k through the flood: $out"
		fi
	done
	if [[ $sent =~ ^[0-9]+$ ]] && ((sent == 3000)); then
		note "flood: $sent SYNs from distinct ports; -C peaked at $maxc; early_drop +$((ed1 - ed0)), drop +$((dr1 - dr0))"
	else
		fail "5 the SYN flood did not run: $(tail -n 3 "$LAB_RUN/flood.out")"
	fi
	if ((ed1 - ed0 > 0)); then
		pass "5 -S early_drop +$((ed1 - ed0)) (drop +$((dr1 - dr0))): unassured entries made room"
	else
		fail "5 -S early_drop +$((ed1 - ed0)), drop +$((dr1 - dr0)): want early_drop > 0 with $sent SYNs into max = $SMALL_MAX"
	fi
	# The flood's entries stay (SYN_RECV, ${TO[syn_recv]} s): the table is
	# still full, and within max.
	if [[ $c =~ ^[0-9]+$ ]] && ((c >= SMALL_MAX - 8 && c <= SMALL_MAX)); then
		pass "5 -C after the flood: $c, full and within max = $SMALL_MAX"
	else
		fail "5 -C after the flood: '$c', want near but not over max = $SMALL_MAX"
	fi
	# As the kernel's nf_conntrack_count, a worker reserves its new entry's
	# place before it evicts one: while SYNs arrive -C may read one over
	# max per worker, never more.
	if ((maxc <= SMALL_MAX + workers)); then
		pass "5 -C during the flood peaked at $maxc (max = $SMALL_MAX, $workers workers)"
	else
		fail "5 -C during the flood peaked at $maxc, over max = $SMALL_MAX + $workers workers"
	fi
}

# ------------------------------------------------------------------ run

lab_begin ct
write_ct_config || { fail "writing the config"; lab_summary; exit 1; }
if ! restart_xlbd; then
	fail "xlbd did not start with the conntrack config"
	tail -n 5 "$LAB_RUN/xlbd.log"
	lab_summary
	exit 1
fi
# timed CHECK: run it, note how long it took (the whole test must stay
# well under meson's timeout).
timed() {
	local t0=$SECONDS
	"$@"
	note "($1: $((SECONDS - t0)) s)"
}

WALK_TW_PORT=
timed t_walk
timed t_time_wait_gone
timed t_close
timed t_udp
timed t_bad
timed t_pmtu
timed t_flood
lab_summary
