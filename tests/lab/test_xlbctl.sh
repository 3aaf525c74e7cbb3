#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# xlbctl against a running xlbd with real traffic: every line -L prints is
# parsed as the kernel's conntrack format and compared, field by field, with
# what the clients sent and which backend answered; the filters, -o, -C, -S,
# -E, -D, -F, service, backend, reload, top; and the control socket's
# robustness (non-root clients, malformed requests, many clients at once).
#
# xlbd only: with XLB_LAB_LB=nft there is no control socket (exit 77).

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $XLB_LAB_LB != xlbd ]]; then
	echo "SKIP: xlbctl talks to xlbd only (load balancer: $XLB_LAB_LB)"
	exit 77
fi
lab_require
if [[ ! -x $XLBCTL ]]; then
	echo "FAIL: $XLBCTL is not built"
	exit 1
fi

# A held client whose first line of output shows sends nothing more, so a
# write to its FIFO after it died must not kill the test: the write fails.
trap '' PIPE

C1=${CLIENT4[c1]} C2=${CLIENT4[c2]} C2_6=${CLIENT6[c2]}

# ------------------------------------------------------------------ clients

# Python: a client that holds its connections. Opens NTCP TCP connections to
# VIP:80, the k-th (from 0) carrying k+1 HTTP/1.1 requests written by hand
# (so the payload bytes each way are known exactly), and one UDP socket per
# size in SIZES, each sending one datagram of that many bytes to VIP:53 and
# reading the answer (one try: the flow must see exactly one packet each
# way). Prints one JSON line: what was sent, received, by which backend.
# Then reads commands on stdin, one per line, and answers each in one line:
#   tcp K   one more request on connection K: "tcp K ok backend=bN port=P"
#   udp K   one more datagram on socket K:    "udp K ok backend=bN port=P bytes=N"
# or "... error REASON". "quit" or EOF ends it.
HELD_CLIENT=$PY_HTTP$'\n'$(cat <<'EOF'
import json, re, socket, sys
vip, ntcp = sys.argv[1], int(sys.argv[2])
sizes = [int(x) for x in sys.argv[3].split(",") if x]
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET

def get(c, path):
    req = ("GET %s HTTP/1.1\r\nHost: xlb-lab\r\n\r\n" % path).encode()
    c.sendall(req)
    head, body = http_head(c)
    body = http_body(c, body, http_length(head))
    m = re.search(r"(?m)^backend=(b[123])$", body.decode())
    return (m.group(1) if m else "?"), len(req), len(head) + 4 + len(body)

def ask(s, size):
    s.sendto(b"u" * size, (vip, 53))
    data, peer = s.recvfrom(65535)
    return data.split(b":")[0].decode(), len(data), peer

tcp, udp = [], []
for k in range(ntcp):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect((vip, 80))
    rec = {"port": c.getsockname()[1], "requests": 0, "sent": 0, "recv": 0, "backends": []}
    for j in range(k + 1):
        b, sent, got = get(c, "/held-%d-%d" % (k, j))
        rec["requests"] += 1
        rec["sent"] += sent
        rec["recv"] += got
        rec["backends"].append(b)
    tcp.append((c, rec))
for size in sizes:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    rec = {"port": s.getsockname()[1], "size": size}
    try:
        b, got, peer = ask(s, size)
        rec.update(backend=b, recv=got, peer="%s,%d" % (peer[0], peer[1]))
    except OSError as e:
        rec.update(backend="none", error=type(e).__name__)
    udp.append((s, rec))
print(json.dumps({"tcp": [r for _, r in tcp], "udp": [r for _, r in udp]}), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    what, k = line.split()
    k = int(k)
    try:
        if what == "tcp":
            c = tcp[k][0]
            b, _, _ = get(c, "/again-%d" % k)
            print("tcp %d ok backend=%s port=%d" % (k, b, c.getsockname()[1]), flush=True)
        else:
            s, rec = udp[k]
            b, got, _ = ask(s, rec["size"])
            print("udp %d ok backend=%s port=%d bytes=%d" % (k, b, s.getsockname()[1], got),
                  flush=True)
    except Exception as e:
        print("%s %d error %s" % (what, k, type(e).__name__), flush=True)
EOF
)

# Python: COUNT datagrams of SIZE bytes to ADDR:53, each from a new socket,
# one try each; per datagram "port=P backend=bN bytes=N" or "port=P noreply".
UDP_ONCE=$(cat <<'EOF'
import socket, sys
addr, size = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
for _ in range(count):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    port = s.getsockname()[1]
    s.sendto(b"q" * size, (addr, 53))
    try:
        data, peer = s.recvfrom(65535)
        print("port=%d backend=%s bytes=%d" % (port, data.split(b":")[0].decode(), len(data)))
    except OSError:
        print("port=%d noreply" % port)
    s.close()
EOF
)

# ------------------------------------------------------------------ checker

# Python: the checks that parse xlbctl's output. `checker SUBCOMMAND ARGS`
# prints PASS:/FAIL: lines (counted by run_checker) and notes.
CHECKER=$(cat <<'EOF'
import ipaddress, json, os, re, socket, struct, subprocess, sys, time

LB_NS, XLBCTL, SOCK = os.environ["LB_NS"], os.environ["XLBCTL"], os.environ["CTL_SOCK"]
BACKEND = {"b1": {4: "198.18.2.2", 6: "2001:2:0:2::2"},
           "b2": {4: "198.18.2.3", 6: "2001:2:0:2::3"},
           "b3": {4: "198.18.3.2", 6: "2001:2:0:3::2"}}
VIP = {4: "198.18.0.100", 6: "2001:2::100"}
HTTP_PORT, UDP_PORT = 8080, 5353
PROTONUM = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
STATES = {"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
          "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}
# The lab's config sets no timeouts: the kernel's defaults (SPEC.md).
TIMEOUT = {"SYN_SENT": 120, "SYN_RECV": 60, "ESTABLISHED": 432000, "FIN_WAIT": 120,
           "CLOSE_WAIT": 60, "LAST_ACK": 30, "TIME_WAIT": 120, "CLOSE": 10, "udp": 30,
           "udp_stream": 120}
# Header bytes per packet: IP (20 / 40) plus TCP (20..60) or UDP (8).
TCP_HDR = {4: (40, 80), 6: (60, 100)}
UDP_HDR = {4: 28, 6: 48}

def ctl(*args, timeout=20):
    p = subprocess.run(["ip", "netns", "exec", LB_NS, XLBCTL, "--socket", SOCK] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr

def check(ok, msg, detail=""):
    print(("PASS: " if ok else "FAIL: ") + msg)
    if not ok and detail:
        for l in str(detail).splitlines()[:16]:
            print("  " + l)
    return bool(ok)

class Bad(ValueError):
    pass

def canon(v):
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        raise Bad("bad address %r" % v)
    if str(a) != v:
        raise Bad("address %r not in canonical form %s" % (v, a))
    return v

def number(v, lo=0, hi=2**64 - 1):
    if not re.fullmatch(r"[0-9]+", v) or not lo <= int(v) <= hi:
        raise Bad("bad number %r" % v)
    return int(v)

def parse(line, kind="list"):
    """One line of `conntrack -L` (kind "list") or `conntrack -E` ("event") in
    the kernel's format, strictly, into a dict. Raises Bad."""
    e = {"line": line}
    s = line
    if kind == "event":
        m = re.match(r"( *)\[(NEW|UPDATE|DESTROY)\] ", s)
        if not m or len(m.group(1)) + len(m.group(2)) + 2 != 9:
            raise Bad("no event tag right-aligned in 9 columns")
        e["event"] = m.group(2)
        s = s[m.end():]
    m = re.match(r"(ipv4|ipv6)( +)([0-9]+) ", s)
    if m:
        if len(m.group(1)) + len(m.group(2)) != 9:
            raise Bad("layer-3 name not padded to 8 columns")
        e["l3"], e["l3num"] = m.group(1), int(m.group(3))
        if (e["l3"], e["l3num"]) not in (("ipv4", 2), ("ipv6", 10)):
            raise Bad("layer-3 %s %d" % (e["l3"], e["l3num"]))
        s = s[m.end():]
    m = re.match(r"([a-z0-9]+)( +)([0-9]+) ", s)
    if not m or len(m.group(1)) + len(m.group(2)) != 9:
        raise Bad("protocol name not padded to 8 columns")
    e["proto"], e["protonum"] = m.group(1), int(m.group(3))
    if PROTONUM.get(e["proto"]) != e["protonum"]:
        raise Bad("protocol %s with number %d" % (e["proto"], e["protonum"]))
    toks = s[m.end():].split(" ")
    if "" in toks:
        raise Bad("two spaces in a row, or a trailing space")

    def take(key):
        if not toks or not toks[0].startswith(key + "="):
            raise Bad("expected %s= at %r" % (key, toks[0] if toks else "the end"))
        return toks.pop(0)[len(key) + 1:]

    def flag(name):
        if toks and toks[0] == name:
            toks.pop(0)
            return True
        return False

    counters = kind == "list" or e.get("event") == "DESTROY"

    def tup():
        t = {"src": canon(take("src")), "dst": canon(take("dst"))}
        if e["proto"] in ("tcp", "udp"):
            t["sport"] = number(take("sport"), 0, 65535)
            t["dport"] = number(take("dport"), 0, 65535)
        elif e["proto"] in ("icmp", "icmpv6"):
            t["type"] = number(take("type"), 0, 255)
            t["code"] = number(take("code"), 0, 255)
            t["id"] = number(take("id"), 0, 65535)
        if counters:
            t["packets"] = number(take("packets"))
            t["bytes"] = number(take("bytes"))
        elif toks and toks[0].startswith("packets="):
            raise Bad("counters on a %s event" % e["event"])
        return t

    if toks and re.fullmatch(r"[0-9]+", toks[0]):
        e["timeout"] = number(toks.pop(0))
    elif kind == "list" or e.get("event") != "DESTROY":
        raise Bad("no timeout")
    if e["proto"] == "tcp":
        if not toks or toks[0] not in STATES:
            raise Bad("tcp entry without a state")
        e["state"] = toks.pop(0)
    e["orig"] = tup()
    e["unreplied"] = flag("[UNREPLIED]")
    e["reply"] = tup()
    e["assured"] = flag("[ASSURED]")
    if toks and toks[0].startswith("mark="):
        e["mark"] = number(take("mark"))
    elif kind == "list":
        raise Bad("no mark=")
    if toks and toks[0].startswith("zone="):
        e["zone"] = number(take("zone"))
    if kind == "list":
        e["use"] = number(take("use"))
    if toks and toks[0].startswith("id="):
        e["id"] = number(take("id"))
    if toks:
        raise Bad("unexpected %r" % " ".join(toks))
    fam = {4: ":" not in e["orig"]["src"], 6: ":" in e["orig"]["src"]}
    e["family"] = 6 if fam[6] else 4
    for t in (e["orig"], e["reply"]):
        for k in ("src", "dst"):
            if (":" in t[k]) != (e["family"] == 6):
                raise Bad("mixed address families")
    if "l3" in e and e["l3"] != "ipv%d" % e["family"]:
        raise Bad("%s prefix on an IPv%d entry" % (e["l3"], e["family"]))
    return e

def key(e):
    return (e["proto"], e["orig"]["src"], e["orig"]["sport"])

def show(k):
    return "%s %s port %d" % k

def dump(*args, kind="list"):
    """-L with args: (rc, entries, bad lines, lines, stderr)."""
    rc, out, err = ctl("-L", *args)
    entries, bad = [], []
    lines = out.splitlines()
    for l in lines:
        try:
            entries.append(parse(l, kind))
        except Bad as x:
            bad.append("%s: %s" % (x, l))
    return rc, entries, bad, lines, err

def count_line(err, n, what="shown"):
    return err.strip() == "xlbctl (xlb): %d flow entries have been %s." % (n, what)

def load_clients(specs):
    """CLIENT,VIP,FILE specs: the held clients' first JSON lines."""
    out = []
    for spec in specs:
        caddr, vip, path = spec.split(",", 2)
        with open(path) as f:
            out.append((caddr, vip, json.loads(f.readline())))
    return out

# ---- 1 and 2: -L field by field, filters, -o, -C, -S

def expected_entries(clients, curl):
    exp = {}
    for caddr, vip, data in clients:
        fam = 6 if ":" in vip else 4
        for t in data["tcp"]:
            exp[("tcp", caddr, t["port"])] = ("held-tcp", fam, caddr, vip, t)
        for u in data["udp"]:
            exp[("udp", caddr, u["port"])] = ("held-udp", fam, caddr, vip, u)
    caddr, port, b = curl.split(",")
    exp[("tcp", caddr, int(port))] = ("curl", 4, caddr, VIP[4], {"port": int(port), "backend": b})
    return exp

def entry_errors(e, what):
    kind, fam, caddr, vip, rec = what
    errs = []

    def want(cond, text):
        if not cond:
            errs.append(text)

    o, r = e["orig"], e["reply"]
    if kind == "held-tcp":
        b = rec["backends"][0]
        want(len(set(rec["backends"])) == 1, "requests of one connection answered by %s" % rec["backends"])
    else:
        b = rec.get("backend")
    want(b in BACKEND, "the client got no answer (%s)" % rec.get("error", b))
    baddr = BACKEND.get(b, {}).get(fam)
    bport = UDP_PORT if kind == "held-udp" else HTTP_PORT
    want(o["src"] == caddr, "orig src=%s, want the client %s" % (o["src"], caddr))
    want(o["dst"] == vip, "orig dst=%s, want the VIP %s" % (o["dst"], vip))
    want(o["sport"] == rec["port"], "orig sport=%d, want %d" % (o["sport"], rec["port"]))
    want(o["dport"] == (53 if kind == "held-udp" else 80), "orig dport=%d" % o["dport"])
    want(r["src"] == baddr, "reply src=%s, want %s's %s" % (r["src"], b, baddr))
    want(r["sport"] == bport, "reply sport=%d, want %d" % (r["sport"], bport))
    want(r["dst"] == caddr, "reply dst=%s, want the client %s" % (r["dst"], caddr))
    want(r["dport"] == rec["port"], "reply dport=%d, want %d" % (r["dport"], rec["port"]))
    want(e.get("mark") == 0, "mark=%s" % e.get("mark"))
    want(e.get("use") == 1, "use=%s" % e.get("use"))
    want(not e["unreplied"], "[UNREPLIED] although the backend answered")
    if kind == "held-tcp":
        lo, hi = TCP_HDR[fam]
        want(e.get("state") == "ESTABLISHED", "state %s, want ESTABLISHED" % e.get("state"))
        want(e["assured"], "not [ASSURED]")
        want(TIMEOUT["ESTABLISHED"] - 600 < e["timeout"] <= TIMEOUT["ESTABLISHED"],
             "timeout %d outside (%d, %d]" % (e["timeout"], TIMEOUT["ESTABLISHED"] - 600,
                                               TIMEOUT["ESTABLISHED"]))
        n = rec["requests"]
        for side, t, payload in (("orig", o, rec["sent"]), ("reply", r, rec["recv"])):
            want(t["packets"] >= 1 + n, "%s packets=%d, want >= %d (handshake + %d requests)"
                 % (side, t["packets"], 1 + n, n))
            want(lo * t["packets"] <= t["bytes"] - payload <= hi * t["packets"],
                 "%s bytes=%d: %d payload bytes + %d packets' headers of %d..%d bytes cannot make that"
                 % (side, t["bytes"], payload, t["packets"], lo, hi))
    elif kind == "held-udp":
        h = UDP_HDR[fam]
        want("state" not in e, "udp with a state")
        want(not e["assured"], "[ASSURED] after one packet each way (the kernel assures a stream)")
        want(0 < e["timeout"] <= TIMEOUT["udp"], "timeout %d outside (0, %d]" % (e["timeout"], TIMEOUT["udp"]))
        want(rec.get("peer") == "%s,53" % vip, "the answer came from %s, not the VIP" % rec.get("peer"))
        want(o["packets"] == 1 and r["packets"] == 1,
             "packets %d/%d, want 1/1" % (o["packets"], r["packets"]))
        want(o["bytes"] == h + rec["size"], "orig bytes=%d, want %d (%d + %d payload)"
             % (o["bytes"], h + rec["size"], h, rec["size"]))
        want(r["bytes"] == h + rec.get("recv", -1), "reply bytes=%d, want %d (%d + %d payload)"
             % (r["bytes"], h + rec.get("recv", -1), h, rec.get("recv", -1)))
    else:
        want(e.get("state") == "TIME_WAIT", "state %s, want TIME_WAIT" % e.get("state"))
        want(e["assured"], "not [ASSURED]")
        want(0 < e["timeout"] <= TIMEOUT["TIME_WAIT"], "timeout %d" % e["timeout"])
    return errs, b

def cmd_list(args):
    curl, specs = args[0], args[1:]
    clients = load_clients(specs)
    exp = expected_entries(clients, curl)
    rc, entries, bad, lines, err = dump()
    check(rc == 0, "1 -L exits 0", err)
    check(not bad and lines, "1 -L: all %d lines parse as conntrack -L lines" % len(lines), "\n".join(bad))
    check(count_line(err, len(lines)), "1 -L: stderr says %d flow entries have been shown" % len(lines), err)
    got = {key(e): e for e in entries}
    check(len(got) == len(entries), "1 -L: each flow listed once")
    missing = set(exp) - set(got)
    extra = set(got) - set(exp)
    check(not missing and not extra,
          "1 -L lists exactly the %d flows the clients made" % len(exp),
          "\n".join(["missing: " + show(k) for k in sorted(missing)] +
                    ["unexpected: " + got[k]["line"] for k in sorted(extra)]))
    for k in sorted(set(exp) & set(got)):
        errs, b = entry_errors(got[k], exp[k])
        e = got[k]
        summary = "%s %s:%d -> %s:%d via %s" % (e["proto"], e["orig"]["src"], e["orig"]["sport"],
                                               e["orig"]["dst"], e["orig"]["dport"], b)
        if e["proto"] == "tcp":
            summary += " %s%s" % (e.get("state"), " ASSURED" if e["assured"] else "")
        summary += " packets=%d/%d bytes=%d/%d" % (e["orig"]["packets"], e["reply"]["packets"],
                                                   e["orig"]["bytes"], e["reply"]["bytes"])
        check(not errs, "1 -L %s" % summary, "\n".join(errs + [e["line"]]))

    full = {key(e): e for e in entries}
    c1, c2v6 = clients[0][0], clients[1][0]
    tcp_b = exp[sorted(k for k in exp if exp[k][0] == "held-tcp" and exp[k][1] == 4)[0]][4]["backends"][0]
    tcp_b6 = exp[sorted(k for k in exp if exp[k][0] == "held-tcp" and exp[k][1] == 6)[0]][4]["backends"][0]
    b4, b6 = BACKEND[tcp_b][4], BACKEND[tcp_b6][6]
    filters = [
        (["-p", "udp"], lambda e: e["proto"] == "udp"),
        (["-p", "tcp", "--dport", "80"], lambda e: e["proto"] == "tcp" and e["orig"]["dport"] == 80),
        (["--dport", "53"], lambda e: e["orig"]["dport"] == 53),
        (["-s", c1], lambda e: e["orig"]["src"] == c1),
        (["-s", c2v6], lambda e: e["orig"]["src"] == c2v6),
        (["-p", "udp", "-s", c1], lambda e: e["proto"] == "udp" and e["orig"]["src"] == c1),
        (["--state", "ESTABLISHED"], lambda e: e.get("state") == "ESTABLISHED"),
        (["--backend", "%s:%d" % (b4, HTTP_PORT)],
         lambda e: e["reply"]["src"] == b4 and e["reply"]["sport"] == HTTP_PORT),
        (["--backend", "[%s]:%d" % (b6, HTTP_PORT)],
         lambda e: e["reply"]["src"] == b6 and e["reply"]["sport"] == HTTP_PORT),
        (["--backend", b4], lambda e: e["reply"]["src"] == b4),
    ]
    for fargs, pred in filters:
        want = {k for k, e in full.items() if pred(e)}
        rc, fe, fbad, flines, ferr = dump(*fargs)
        have = {key(e) for e in fe}
        label = "1 -L %s" % " ".join(fargs)
        ok = rc == 0 and not fbad and have == want and count_line(ferr, len(flines))
        check(ok and 0 < len(want) < len(full),
              "%s lists exactly the %d matching flows of %d" % (label, len(want), len(full)),
              "rc=%d %s\nmissing: %s\nextra: %s\n%s" % (rc, ferr.strip(), sorted(want - have),
                                                       sorted(have - want), "\n".join(fbad)))

    rc, out, err = ctl("-L", "-o", "extended")
    lines = out.splitlines()
    errs = []
    for l in lines:
        try:
            e = parse(l)
        except Bad as x:
            errs.append("%s: %s" % (x, l))
            continue
        pre = "ipv4     2 " if e["family"] == 4 else "ipv6     10 "
        if not l.startswith(pre):
            errs.append("no %r prefix: %s" % (pre, l))
        base = full.get(key(e))
        if not base:
            errs.append("not in -L: " + l)
            continue
        for f in ("proto", "state", "orig", "reply", "assured", "unreplied", "mark", "use"):
            if e.get(f) != base.get(f):
                errs.append("%s differs from -L: %s" % (f, l))
    check(rc == 0 and not errs and len(lines) == len(full),
          "1 -L -o extended: %d lines, each the -L line after 'ipv4     2 ' / 'ipv6     10 '" % len(lines),
          "\n".join(errs))

    rc, out, err = ctl("-L", "-o", "json")
    lines = out.splitlines()
    errs = []
    for l in lines:
        try:
            j = json.loads(l)
            k = (j["proto"], j["orig"]["src"], j["orig"]["sport"])
            base = full[k]
            o, r = base["orig"], base["reply"]
            bep = ("[%s]:%d" if base["family"] == 6 else "%s:%d") % (r["src"], r["sport"])
            pairs = [(j["family"], "ipv%d" % base["family"]), (j["protonum"], base["protonum"]),
                     (j.get("state"), base.get("state")), (j["assured"], base["assured"]),
                     (j["unreplied"], base["unreplied"]), (j["mark"], base["mark"]),
                     (j["use"], base["use"]), (j["backend"], bep)]
            for side, t in (("orig", o), ("reply", r)):
                for f in ("src", "dst", "sport", "dport", "packets", "bytes"):
                    pairs.append((j[side][f], t[f]))
            if any(a != b for a, b in pairs):
                errs.append("differs from -L: %s" % l)
        except (ValueError, KeyError, TypeError) as x:
            errs.append("%s: %s: %s" % (type(x).__name__, x, l))
    check(rc == 0 and not errs and len(lines) == len(full),
          "1 -L -o json: %d lines, each a JSON object agreeing with -L" % len(lines), "\n".join(errs))

    # 2. -C and -S
    rc, out, err = ctl("-C")
    rc2, entries2, _, lines2, _ = dump()
    check(rc == 0 and out.strip() == str(len(lines2)),
          "2 -C prints %s, -L lists %d" % (out.strip(), len(lines2)), err)
    rc, out, err = ctl("-S")
    lines = out.splitlines()
    cpu = [re.fullmatch(r"cpu=([0-9]+) *\t(found=[0-9]+ invalid=[0-9]+ insert=([0-9]+) "
                        r"insert_failed=[0-9]+ drop=[0-9]+ early_drop=[0-9]+ error=[0-9]+ "
                        r"search_restart=[0-9]+ clash_resolve=[0-9]+)( chaintoolong=[0-9]+)? ?", l)
           for l in lines[:-1]]
    tail = re.fullmatch(r"entries=([0-9]+) max=([0-9]+)", lines[-1]) if lines else None
    ids = [int(m.group(1)) for m in cpu if m]
    pads = all(l.startswith("cpu=%-4d\t" % i) for l, i in zip(lines, ids))
    ok = (rc == 0 and len(lines) == 3 and all(cpu) and ids == [0, 1] and pads and tail
          and int(tail.group(1)) == len(lines2) and int(tail.group(2)) == 262144)
    check(ok, "2 -S: cpu=0 and cpu=1 (2 workers) in conntrack -S format, entries=%s max=%s"
          % (tail.group(1) if tail else "?", tail.group(2) if tail else "?"), out + err)
    if ok:
        inserts = sum(int(m.group(3)) for m in cpu)
        check(inserts >= len(lines2), "2 -S: insert= sums to %d, at least the %d flows"
              % (inserts, len(lines2)), out)

# ---- 3: events

def read_events(path):
    evs, bad = [], []
    with open(path) as f:
        for l in f.read().splitlines():
            try:
                evs.append(parse(l, "event"))
            except Bad as x:
                bad.append("%s: %s" % (x, l))
    return evs, bad

def cmd_events_tcp(args):
    path, caddr, port, b = args[0], args[1], int(args[2]), args[3]
    evs, bad = read_events(path)
    check(not bad and evs, "3 -E: all %d lines parse as conntrack -E lines" % len(evs), "\n".join(bad))
    mine = [e for e in evs if e["proto"] == "tcp" and e["orig"]["src"] == caddr
            and e["orig"]["sport"] == port]
    seq = " ".join("[%s]%s" % (e["event"], e.get("state")) for e in mine)
    print("  events of %s:%d: %s" % (caddr, port, seq))
    errs = []
    if not mine:
        errs.append("no events")
    else:
        f = mine[0]
        if not (f["event"] == "NEW" and f.get("state") == "SYN_SENT" and f["unreplied"]
                and 0 < f["timeout"] <= TIMEOUT["SYN_SENT"]):
            errs.append("first is not [NEW] SYN_SENT [UNREPLIED]: " + f["line"])
        if any(e["event"] != "UPDATE" for e in mine[1:]):
            errs.append("a second [NEW] or a [DESTROY] for a live flow")
        est = [i for i, e in enumerate(mine) if e.get("state") == "ESTABLISHED"]
        if not est or not mine[est[0]]["assured"]:
            errs.append("no [UPDATE] ESTABLISHED [ASSURED]")
        elif any(e["unreplied"] for e in mine[est[0]:]):
            errs.append("[UNREPLIED] after the reply")
        closing = {"ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"}
        if est and any(e.get("state") not in closing for e in mine[est[0]:]):
            errs.append("back to a handshake state after ESTABLISHED")
        if mine[-1].get("state") != "TIME_WAIT":
            errs.append("the last event is not TIME_WAIT")
        for e in mine:
            if e["reply"]["src"] != BACKEND[b][4] or e["orig"]["dst"] != VIP[4]:
                errs.append("tuple is not client -> VIP / %s -> client: %s" % (b, e["line"]))
            if "timeout" in e and not 0 < e["timeout"] <= TIMEOUT.get(e.get("state"), 0):
                errs.append("timeout %d above %s's: %s" % (e["timeout"], e.get("state"), e["line"]))
    check(not errs, "3 -E: curl's connection %s:%d went [NEW] SYN_SENT ... ESTABLISHED [ASSURED] ... TIME_WAIT"
          % (caddr, port), "\n".join(errs + [e["line"] for e in mine]))

def cmd_events_udp(args):
    path, caddr, port, b, size, rsize = args[0], args[1], int(args[2]), args[3], int(args[4]), int(args[5])
    evs, bad = read_events(path)
    mine = [e for e in evs if e["proto"] == "udp" and e["orig"]["src"] == caddr
            and e["orig"]["sport"] == port]
    print("  events of udp %s:%d: %s" % (caddr, port, " ".join("[%s]" % e["event"] for e in mine)))
    errs = []
    kinds = [e["event"] for e in mine]
    if kinds != ["NEW", "UPDATE", "DESTROY"]:
        errs.append("want [NEW] [UPDATE] [DESTROY], got %s" % kinds)
    else:
        n, u, d = mine
        if not n["unreplied"] or not 0 < n["timeout"] <= TIMEOUT["udp"]:
            errs.append("[NEW] is not [UNREPLIED] with udp_timeout")
        if u["unreplied"]:
            errs.append("[UPDATE] after the answer still [UNREPLIED]")
        h = UDP_HDR[4]
        if (d["orig"]["packets"], d["orig"]["bytes"], d["reply"]["packets"], d["reply"]["bytes"]) != (1, h + size, 1, h + rsize):
            errs.append("[DESTROY] counters, want packets=1 bytes=%d / packets=1 bytes=%d" % (h + size, h + rsize))
        for e in mine:
            if e["reply"]["src"] != BACKEND[b][4] or e["reply"]["sport"] != UDP_PORT:
                errs.append("reply tuple not from %s: %s" % (b, e["line"]))
    check(not errs, "3 -E: udp %s:%d went [NEW] [UNREPLIED], [UPDATE] replied, and -D gave [DESTROY] with its counters"
          % (caddr, port), "\n".join(errs + [e["line"] for e in mine]))

def cmd_events_filtered(args):
    path, caddr, port = args[0], args[1], int(args[2])
    evs, bad = read_events(path)
    tcp = [e for e in evs if e["proto"] != "udp"]
    mine = [e["event"] for e in evs if e["orig"]["src"] == caddr and e["orig"].get("sport") == port]
    check(not bad and not tcp and mine[:2] == ["NEW", "UPDATE"],
          "3 -E -p udp: %d lines, no tcp (a curl ran meanwhile), the udp exchange's [NEW] [UPDATE]" % len(evs),
          "\n".join(bad + [e["line"] for e in evs]))

# ---- 5: service

CONFIG = [
    ("web", "tcp", "198.18.0.100:80", [("198.18.2.2:8080", 1), ("198.18.2.3:8080", 2), ("198.18.3.2:8080", 1)]),
    ("web6", "tcp", "[2001:2::100]:80", [("[2001:2:0:2::2]:8080", 1), ("[2001:2:0:2::3]:8080", 2), ("[2001:2:0:3::2]:8080", 1)]),
    ("dns", "udp", "198.18.0.100:53", [("198.18.2.2:5353", 1), ("198.18.2.3:5353", 2), ("198.18.3.2:5353", 1)]),
    ("dns6", "udp", "[2001:2::100]:53", [("[2001:2:0:2::2]:5353", 1), ("[2001:2:0:2::3]:5353", 2), ("[2001:2:0:3::2]:5353", 1)]),
]

def parse_service(out):
    svcs, errs = [], []
    for l in out.splitlines():
        m = re.fullmatch(r"service (\S+) (tcp|udp) (\S+) scheduler=maglev table=([0-9]+) backends=([0-9]+) "
                         r"flows=(-?[0-9]+) new/s=([0-9.]+)", l)
        if m:
            svcs.append({"name": m.group(1), "proto": m.group(2), "vip": m.group(3),
                         "n": int(m.group(5)), "flows": int(m.group(6)), "backends": []})
            continue
        m = re.fullmatch(r"  backend (\S+) +state=(\S+) admin=\S+ health=\S+ weight=([0-9]+) flows=(-?[0-9]+) "
                         r"packets=([0-9]+) bytes=([0-9]+) new/s=([0-9.]+)( \(.*\))?", l)
        if m and svcs:
            svcs[-1]["backends"].append({"ep": m.group(1), "state": m.group(2), "weight": int(m.group(3)),
                                         "flows": int(m.group(4)), "packets": int(m.group(5)),
                                         "bytes": int(m.group(6))})
            continue
        errs.append("unparsed: " + l)
    return svcs, errs

def ep(addr, port):
    return ("[%s]:%d" if ":" in addr else "%s:%d") % (addr, port)

def cmd_service(args):
    for attempt in range(3):
        _, e1, _, _, _ = dump()
        rc, out, err = ctl("service")
        _, e2, _, _, _ = dump()
        # Counters and flows move between the snapshots only if a flow came or went.
        if {key(e) for e in e1} == {key(e) for e in e2}:
            break
    svcs, errs = parse_service(out)
    shape = [(s["name"], s["proto"], s["vip"], [(b["ep"], b["weight"]) for b in s["backends"]]) for s in svcs]
    states = {b["state"] for s in svcs for b in s["backends"]}
    check(rc == 0 and not errs and shape == CONFIG and states == {"up"}
          and all(s["n"] == len(s["backends"]) for s in svcs),
          "5 service: web, web6, dns, dns6 with the lab's backends and weights 1/2/1, all up",
          "\n".join(errs) + "\n" + out + err)
    errs = []
    for s in svcs:
        mine = [e for e in e2 if e["proto"] == s["proto"] and ep(e["orig"]["dst"], e["orig"]["dport"]) == s["vip"]]
        if s["flows"] != len(mine):
            errs.append("service %s flows=%d, -L lists %d" % (s["name"], s["flows"], len(mine)))
        if s["flows"] != sum(b["flows"] for b in s["backends"]):
            errs.append("service %s flows=%d, its backends' sum to %d"
                        % (s["name"], s["flows"], sum(b["flows"] for b in s["backends"])))
        for b in s["backends"]:
            theirs = [e for e in mine if ep(e["reply"]["src"], e["reply"]["sport"]) == b["ep"]]
            pk = sum(e["orig"]["packets"] + e["reply"]["packets"] for e in theirs)
            by = sum(e["orig"]["bytes"] + e["reply"]["bytes"] for e in theirs)
            if b["flows"] != len(theirs):
                errs.append("%s backend %s flows=%d, -L lists %d" % (s["name"], b["ep"], b["flows"], len(theirs)))
            if b["packets"] < pk or b["bytes"] < by:
                errs.append("%s backend %s packets=%d bytes=%d, less than its listed flows' %d/%d"
                            % (s["name"], b["ep"], b["packets"], b["bytes"], pk, by))
        print("  %s: flows=%d (%s)" % (s["name"], s["flows"], " ".join(str(b["flows"]) for b in s["backends"])))
    check(not errs and len(e2) > 0,
          "5 service: flows per service and per backend equal -L's (%d flows), packets/bytes cover them" % len(e2),
          "\n".join(errs))

    rc, out, err = ctl("service", "web")
    svcs, errs = parse_service(out)
    check(rc == 0 and not errs and [s["name"] for s in svcs] == ["web"] and len(svcs[0]["backends"]) == 3,
          "5 service web: only web and its 3 backends", out + err)
    rc, out, err = ctl("service", "nosuch")
    check(rc == 1 and not out and "nosuch" in err,
          "5 service nosuch: exit 1, '%s'" % err.strip(), "rc=%d\n%s%s" % (rc, out, err))

# ---- 7: malformed requests, raw

MAGIC = 0x584c4231

def raw(data, shut=True):
    """Send data, read the answer until EOF: (frames, how it ended)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    buf, how = b"", "eof"
    try:
        s.connect(SOCK)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError as x:
        how = "send: " + type(x).__name__
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except socket.timeout:
        how = "timeout"
    except OSError as x:
        how = "reset" if isinstance(x, ConnectionResetError) else type(x).__name__
    s.close()
    frames, i = [], 0
    while i + 5 <= len(buf):
        t, n = buf[i:i + 1], struct.unpack("!I", buf[i + 1:i + 5])[0]
        frames.append((t.decode("latin1"), buf[i + 5:i + 5 + n]))
        i += 5 + n
    if i != len(buf):
        how += " +%d stray bytes" % (len(buf) - i)
    return frames, how

def cmd_malformed(args):
    cases = [
        ("wrong magic", struct.pack("!III", 0xdeadbeef, 1, 2) + b"-C"),
        ("argc 10000", struct.pack("!II", MAGIC, 10000)),
        ("argument of 1 GB", struct.pack("!III", MAGIC, 1, 1 << 30) + b"x" * 4096),
        ("truncated request", struct.pack("!III", MAGIC, 2, 2) + b"-"),
        ("random bytes", os.urandom(512)),
        ("argc 0", struct.pack("!II", MAGIC, 0)),
        ("NUL in an argument", struct.pack("!II", MAGIC, 1) + struct.pack("!I", 3) + b"-\0C"),
        ("nothing at all", b""),
        ("64 arguments of 4096 bytes", struct.pack("!II", MAGIC, 64) + (struct.pack("!I", 4096) + b"a" * 4096) * 64),
    ]
    for name, data in cases:
        frames, how = raw(data)
        types = "".join(t for t, _ in frames)
        text = b"".join(p for t, p in frames if t == "e").decode(errors="replace").strip()
        status = frames[-1][1] if frames and frames[-1][0] == "x" else None
        if frames:
            ok = (status not in (None, b"\x00") and "e" in types and set(types) <= {"e", "x"}
                  and types.endswith("x") and types.count("x") == 1 and "stray" not in how)
            verdict = "error reply '%s'" % text
        else:
            ok = how in ("eof", "reset")
            verdict = "connection closed (%s)" % how
        check(ok, "7 malformed request, %s: %s" % (name, verdict), "frames=%r how=%s" % (frames, how))
    frames, how = raw(struct.pack("!III", MAGIC, 1, 2) + b"-C")
    check(frames and frames[0][0] == "o" and frames[-1] == ("x", b"\x00"),
          "7 a well-formed raw request still answered: -C = %s" % (frames[0][1].decode().strip() if frames else "?"),
          "frames=%r how=%s" % (frames, how))

if __name__ == "__main__":
    cmd = sys.argv[1]
    {"list": cmd_list, "events-tcp": cmd_events_tcp, "events-udp": cmd_events_udp,
     "events-filtered": cmd_events_filtered, "service": cmd_service,
     "malformed": cmd_malformed}[cmd](sys.argv[2:])
EOF
)

# run_checker SUBCOMMAND ARGS: the checker's PASS/FAIL lines counted here; a
# crash of the checker itself is a failure too.
run_checker() {
	local line rc=
	while IFS= read -r line; do
		case $line in
		"PASS: "*) pass "${line#PASS: }";;
		"FAIL: "*) fail "${line#FAIL: }";;
		"CHECKER-EXIT: "*) rc=${line#CHECKER-EXIT: };;
		*) note "$line";;
		esac
	done < <(LB_NS=$LB_NS XLBCTL=$XLBCTL CTL_SOCK=$SOCK "$PY" -c "$CHECKER" "$@" 2>&1
		echo "CHECKER-EXIT: $?")
	[[ $rc == 0 ]] || fail "checker $1 crashed (exit status ${rc:-?})"
}

# ------------------------------------------------------------------ helpers

# ctl_run ARGS: xlbctl's stdout, stderr and status in CTL_OUT, CTL_ERR, CTL_RC.
ctl_run() {
	local errf=$LAB_RUN/ctl.err
	CTL_RC=0
	CTL_OUT=$(lab_xlbctl "$@" 2>"$errf") || CTL_RC=$?
	CTL_ERR=$(cat "$errf")
}

# curl_burst ROLE URL N: N new connections, 10 at a time; one backend name
# (or "failed") per line.
# shellcheck disable=SC2016 # expanded by the inner shells
curl_burst() {
	lab_exec "$1" bash -c 'seq "$1" | xargs -P 10 -I{} sh -c "curl -s --noproxy \"*\" \
		--connect-timeout 3 -m 5 \"\$0?n=\$1\" || echo failed" "$0" {}' "$2" "$3" 2>&1 |
		sed -n 's/^backend=\(b[123]\)$/\1/p; /^failed$/p'
}

# The backend that answered one curl from C1 to VIP4 and its local port:
# "bN PORT", or nothing.
curl_one() {
	local out
	out=$(lab_exec c1 curl -s --noproxy '*' --connect-timeout 3 -m 5 \
		-w 'lport=%{local_port}\n' "http://$VIP4/one" 2>&1)
	echo "$(backend_of "$out") $(sed -n 's/^lport=//p' <<<"$out")"
}

# held_start NAME ROLE VIP NTCP SIZES: a HELD_CLIENT in ROLE, commands on a
# FIFO held open in HELD_FD[NAME], output in $LAB_RUN/NAME.out.
declare -A HELD_FD HELD_PID
held_start() {
	local name=$1 role=$2 fifo=$LAB_RUN/$1.in fd
	mkfifo "$fifo"
	lab_exec "$role" "$PY" -c "$HELD_CLIENT" "$3" "$4" "$5" <"$fifo" >"$LAB_RUN/$name.out" 2>&1 &
	HELD_PID[$name]=$!
	exec {fd}>"$fifo"
	HELD_FD[$name]=$fd
	if ! wait_for_file "$LAB_RUN/$name.out" 150; then
		fail "held client $name produced nothing"
		return 1
	fi
	if ! head -n 1 "$LAB_RUN/$name.out" | grep -q '^{'; then
		fail "held client $name: $(head -n 5 "$LAB_RUN/$name.out")"
		return 1
	fi
}

# held_cmd NAME CMD: send CMD, print the answer line (bounded wait).
held_cmd() {
	local out=$LAB_RUN/$1.out n i
	n=$(wc -l <"$out")
	{ printf '%s\n' "$2" 1>&"${HELD_FD[$1]}"; } 2>/dev/null || { echo "$2 error client-gone"; return; }
	for ((i = 0; i < 100; i++)); do
		if (($(wc -l <"$out") > n)); then
			sed -n "$((n + 1))p" "$out"
			return
		fi
		sleep 0.1
	done
	echo "$2 error no-answer"
}

# held_stop NAME: "quit" (the FIFO's write end is inherited by whatever the
# test started later, so EOF alone may never come).
held_stop() {
	local fd=${HELD_FD[$1]:-}
	[[ -n $fd ]] || return 0
	{ echo quit 1>&"$fd"; } 2>/dev/null
	exec {fd}>&-
	wait "${HELD_PID[$1]}" 2>/dev/null
}

xlbd_alive() {
	local pid
	read -r pid <"$LAB_RUN/xlbd.pid" 2>/dev/null || return 1
	[[ -d /proc/$pid && ! -f $LAB_RUN/xlbd.rc ]]
}

# ------------------------------------------------------------------ checks

lab_begin ctl
LB_NS=$(lab ns lb)
SOCK=$LAB_RUN/xlb.sock

# 1, 2. A curl (a TIME_WAIT flow), then held TCP connections and UDP
# exchanges from C1 (IPv4, on the segment) and C2 (IPv6, behind the router).
t_list() {
	local curl b port
	curl=$(curl_one)
	read -r b port <<<"$curl"
	if [[ -z $b || -z $port ]]; then
		fail "1 a first curl through $VIP4 failed"
		return
	fi
	held_start h4 c1 "$VIP4" 3 "1,100,1000" || return
	held_start h6 c2 "$VIP6" 2 "7,1200" || return
	sleep 0.3   # the last ACKs of the clients, so nothing moves while we look
	run_checker list "$C1,$port,$b" "$C1,$VIP4,$LAB_RUN/h4.out" "$C2_6,$VIP6,$LAB_RUN/h6.out"
}

# events_ready FILE: UDP probes (C2 to VIP6: no filter of check 4 matches
# them) until one shows in FILE, so the -E writing it is following before
# the traffic under test starts.
events_ready() {
	local i j port
	for ((i = 0; i < 10; i++)); do
		port=$(lab_exec c2 "$PY" -c "$UDP_ONCE" "$VIP6" 1 | sed -n 's/^port=\([0-9]*\) .*/\1/p')
		for ((j = 0; j < 10; j++)); do
			[[ -n $port ]] && grep -q "sport=$port " "$1" && return 0
			sleep 0.1
		done
	done
	return 1
}

# 3. -E follows a curl and a UDP exchange; -D's [DESTROY]; -E -p udp.
t_events() {
	local ev=$LAB_RUN/events.out epid b port i udp uport ub ubytes
	ip netns exec "$LB_NS" "$XLBCTL" --socket "$SOCK" -E >"$ev" 2>"$LAB_RUN/events.err" &
	epid=$!
	events_ready "$ev" || fail "3 -E shows no event of a UDP probe"
	read -r b port <<<"$(curl_one)"
	udp=$(lab_exec c1 "$PY" -c "$UDP_ONCE" "$VIP4" 21)
	read -r uport ub ubytes <<<"$(sed -n 's/^port=\([0-9]*\) backend=\(b[123]\) bytes=\([0-9]*\)$/\1 \2 \3/p' <<<"$udp")"
	for ((i = 0; i < 100; i++)); do
		grep -q "TIME_WAIT src=$C1 dst=$VIP4 sport=$port " "$ev" && break
		sleep 0.1
	done
	if [[ -n $uport ]]; then
		ctl_run -D -p udp -s "$C1" --sport "$uport"
		if [[ $CTL_RC == 0 && $CTL_ERR == *": 1 flow entries have been deleted." ]]; then
			pass "3 -D -p udp -s $C1 --sport $uport: 1 flow deleted"
		else
			fail "3 -D -p udp -s $C1 --sport $uport: status $CTL_RC, '$CTL_ERR'"
		fi
		for ((i = 0; i < 100; i++)); do
			grep -q "DESTROY.*sport=$uport " "$ev" && break
			sleep 0.1
		done
	fi
	kill "$epid" 2>/dev/null
	wait "$epid" 2>/dev/null
	if [[ -z $b || -z $port || -z $uport ]]; then
		fail "3 -E: the curl ($b $port) or the UDP exchange ($udp) failed"
		return
	fi
	run_checker events-tcp "$ev" "$C1" "$port" "$b"
	run_checker events-udp "$ev" "$C1" "$uport" "$ub" 21 "$ubytes"
	[[ -s $LAB_RUN/events.err ]] && note "-E stderr: $(head -c 300 "$LAB_RUN/events.err")"

	ip netns exec "$LB_NS" "$XLBCTL" --socket "$SOCK" -E -p udp >"$ev.udp" 2>&1 &
	epid=$!
	events_ready "$ev.udp" || fail "3 -E -p udp shows no event of a UDP probe"
	curl_one >/dev/null
	udp=$(lab_exec c1 "$PY" -c "$UDP_ONCE" "$VIP4" 5)
	uport=$(sed -n 's/^port=\([0-9]*\) backend=b.*/\1/p' <<<"$udp")
	for ((i = 0; i < 100; i++)); do
		grep -q "UPDATE.*sport=$uport " "$ev.udp" && break
		sleep 0.1
	done
	sleep 0.3   # time for the curl's events, were they to leak through
	kill "$epid" 2>/dev/null
	wait "$epid" 2>/dev/null
	if [[ -z $uport ]]; then
		fail "3 -E -p udp: the UDP exchange failed ($udp)"
	else
		run_checker events-filtered "$ev.udp" "$C1" "$uport"
	fi
}

# 4. -D with filters, a UDP socket after its flow is deleted, -F.
t_delete() {
	local out p1 p2 p3 a n before after udpline want got

	out=$(lab_exec c2 "$PY" -c "$UDP_ONCE" "$VIP4" 30 2)
	p1=$(sed -n '1s/^port=\([0-9]*\) backend=b.*/\1/p' <<<"$out")
	p2=$(sed -n '2s/^port=\([0-9]*\) backend=b.*/\1/p' <<<"$out")
	p3=$(lab_exec c1 "$PY" -c "$UDP_ONCE" "$VIP4" 30 | sed -n 's/^port=\([0-9]*\) backend=b.*/\1/p')
	if [[ -z $p1 || -z $p2 || -z $p3 ]]; then
		fail "4 UDP exchanges from c2 and c1 failed: $out"
		return
	fi
	before=$(lab_xlbctl -L 2>/dev/null | flow_keys 5)
	ctl_run -D -p udp -s "$C2"
	got=$(flow_keys 0 <<<"$CTL_OUT" | xargs)
	want=$(printf "udp src=$C2 sport=%s\n" "$p1" "$p2" | sort | xargs)
	if [[ $CTL_RC == 0 && $CTL_ERR == "xlbctl (xlb): 2 flow entries have been deleted." && $got == "$want" ]]; then
		pass "4 -D -p udp -s $C2: deleted and printed exactly c2's 2 UDP flows ($want)"
	else
		fail "4 -D -p udp -s $C2: status $CTL_RC, stderr '$CTL_ERR', printed '$got', want '$want'"
	fi
	after=$(lab_xlbctl -L 2>/dev/null | flow_keys 0)
	a=$(comm -23 <(echo "$before") <(echo "$after") | grep -c . || true)
	if ((a == 2)) && ! grep -q "src=$C2 " <<<"$after" && grep -q "sport=$p3\$" <<<"$after"; then
		pass "4 -D: the other flows stay (c1's UDP flow, the TCP flows)"
	else
		fail "4 -D: $a flows vanished, want 2; after:"; note "$after"
	fi
	ctl_run -D -p udp --dport 9
	if [[ $CTL_ERR == "xlbctl (xlb): 0 flow entries have been deleted." && -z $CTL_OUT ]]; then
		pass "4 -D matching nothing: '0 flow entries have been deleted.' (status $CTL_RC)"
	else
		fail "4 -D matching nothing: status $CTL_RC, '$CTL_OUT' '$CTL_ERR'"
	fi

	# The held client's first UDP socket: a packet now, its flow deleted,
	# a packet again.
	udpline=$(held_cmd h4 "udp 0")
	p1=$(sed -n 's/^udp 0 ok backend=b[123] port=\([0-9]*\) .*/\1/p' <<<"$udpline")
	if [[ -z $p1 ]]; then
		fail "4 held UDP socket: $udpline"
		return
	fi
	ctl_run -D -p udp -s "$C1" --sport "$p1"
	n=$CTL_ERR
	udpline=$(held_cmd h4 "udp 0")
	ctl_run -L -p udp -s "$C1" --sport "$p1"
	# Payload 1 byte out, "bN:u" back: 28 + 1 and 28 + 4 bytes.
	local fresh="sport=$p1 dport=53 packets=1 bytes=29 src=[^ ]* dst=$C1 sport=5353 dport=$p1 packets=1 bytes=32 "
	if [[ $n == *": 1 flow entries have been deleted." && $udpline == "udp 0 ok "* &&
		$(grep -c . <<<"$CTL_OUT") == 1 && $CTL_OUT =~ $fresh ]]; then
		pass "4 UDP socket $p1 after its flow was deleted: answered ($udpline), a new entry with packets=1"
	else
		fail "4 UDP socket $p1 after -D: -D said '$n', client '$udpline', -L:"; note "$CTL_OUT"
	fi

	# -F, then the held TCP connections (tcp_loose picks them up), new
	# connections and UDP.
	ctl_run -F
	n=$(lab_xlbctl -C 2>&1)
	if [[ $CTL_RC == 0 && $CTL_ERR == *"emptied"* && $n == 0 ]]; then
		pass "4 -F: '$CTL_ERR', -C -> 0"
	else
		fail "4 -F: status $CTL_RC, '$CTL_ERR', -C -> '$n'"
	fi
	local k line first
	for k in 0 1 2; do
		line=$(held_cmd h4 "tcp $k")
		first=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["tcp"][int(sys.argv[2])]["backends"][0])' \
			"$LAB_RUN/h4.out" "$k")
		if [[ $line == "tcp $k ok backend=$first "* ]]; then
			pass "4 after -F, held connection $k carries on with $first (picked up mid-stream, tcp_loose=1)"
		else
			fail "4 after -F, held connection $k (was on $first): $line"
		fi
	done
	out=$(curl_burst c1 "http://$VIP4/" 5)
	udpline=$(lab_exec c1 "$PY" -c "$UDP_ONCE" "$VIP4" 3)
	n=$(lab_xlbctl -C 2>&1)
	if [[ $(grep -c '^b[123]$' <<<"$out") == 5 && $udpline == *backend=b* && $n -ge 7 ]]; then
		pass "4 after -F: 5 new connections and UDP answered, -C -> $n"
	else
		fail "4 after -F: curls '$(xargs <<<"$out")', udp '$udpline', -C -> $n"
	fi
}

# 5. service, against -L.
t_service() {
	run_checker service
}

# flow_keys MIN_TIMEOUT: "PROTO src=A sport=P" of each -L line on stdin
# whose timeout is at least MIN_TIMEOUT, sorted.
flow_keys() {
	awk -v min="$1" '$3 >= min {
		s = ""; p = ""
		for (i = 4; i <= NF; i++) {
			if (s == "" && $i ~ /^src=/) s = $i
			if (p == "" && $i ~ /^sport=/) p = $i
		}
		print $1, s, p }' | sort
}

# backend_line SERVICE EP: the service's line for backend EP.
backend_line() {
	lab_xlbctl service "$1" 2>&1 | grep -F "  backend $2 "
}

# 6. backend weight / drain / up, bad input, reload.
t_backend() {
	local ep=198.18.2.2:8080 out n line
	ctl_run backend web "$ep" weight 0
	line=$(backend_line web "$ep")
	out=$(curl_burst c1 "http://$VIP4/" 30)
	n=$(grep -c '^b1$' <<<"$out")
	if [[ $CTL_RC == 0 && $CTL_OUT == "service web backend $ep: admin=up weight=0 state=draining" && $line == *state=draining*weight=0* &&
		$(grep -c '^b[23]$' <<<"$out") == 30 ]]; then
		pass "6 backend web $ep weight 0: 30 new connections, none on b1 (service: ${line//  / })"
	else
		fail "6 backend weight 0: status $CTL_RC '$CTL_OUT' '$CTL_ERR'; b1 got $n of 30; answers $(sort <<<"$out" | uniq -c | xargs)"
	fi

	ctl_run backend web "$ep" weight 5
	line=$(backend_line web "$ep")
	out=$(curl_burst c1 "http://$VIP4/" 60)
	n=$(grep -c '^b1$' <<<"$out")
	# 5 of 8 shares: 37.5 of 60 expected; 25 is 3.3 sd below (and 2.9 sd
	# above what weight 1 of 4 would give).
	if [[ $CTL_RC == 0 && $CTL_OUT == "service web backend $ep: admin=up weight=5 state=up" && $line == *weight=5* ]] &&
		(($(grep -c '^b[123]$' <<<"$out") == 60 && n >= 25)); then
		pass "6 backend web $ep weight 5: b1 took $n of 60 new connections"
	else
		fail "6 backend weight 5: status $CTL_RC '$CTL_OUT' '$CTL_ERR'; answers $(sort <<<"$out" | uniq -c | xargs)"
	fi

	ctl_run backend web "$ep" drain
	line=$(backend_line web "$ep")
	out=$(curl_burst c1 "http://$VIP4/" 30)
	if [[ $CTL_RC == 0 && $CTL_OUT == *"admin=draining"* && $line == *state=draining* &&
		$(grep -c '^b[23]$' <<<"$out") == 30 ]]; then
		pass "6 backend web $ep drain: state=drain, 30 new connections, none on b1"
	else
		fail "6 backend drain: status $CTL_RC '$CTL_OUT' '$CTL_ERR', service '$line'; answers $(sort <<<"$out" | uniq -c | xargs)"
	fi

	ctl_run backend web "$ep" up
	line=$(backend_line web "$ep")
	out=$(curl_burst c1 "http://$VIP4/" 30)
	n=$(grep -c '^b1$' <<<"$out")
	if [[ $CTL_RC == 0 && $CTL_OUT == *"admin=up weight=5 state=up"* && $line == *state=up* ]] &&
		(($(grep -c '^b[123]$' <<<"$out") == 30 && n > 0)); then
		pass "6 backend web $ep up: state=up weight=5 again, b1 took $n of 30"
	else
		fail "6 backend up: status $CTL_RC '$CTL_OUT' '$CTL_ERR', service '$line'; answers $(sort <<<"$out" | uniq -c | xargs)"
	fi

	local bad
	for bad in "nosuch $ep weight 1|nosuch" "web 198.18.2.99:8080 weight 1|198.18.2.99" \
		"web $ep weight -1|-1" "web $ep weight 65536|65536" "web $ep weight many|many" \
		"web notanaddress weight 1|notanaddress" "web $ep sideways|usage" "web $ep|usage"; do
		# shellcheck disable=SC2086 # the words are the arguments
		ctl_run backend ${bad%|*}
		if [[ $CTL_RC == 1 && -z $CTL_OUT && $CTL_ERR == *"${bad#*|}"* ]]; then
			pass "6 backend ${bad%|*}: exit 1, '$CTL_ERR'"
		else
			fail "6 backend ${bad%|*}: status $CTL_RC, stdout '$CTL_OUT', stderr '$CTL_ERR'"
		fi
	done
	line=$(backend_line web "$ep")
	[[ $line == *"state=up admin=up health=up weight=5 "* ]] || fail "6 rejected backend commands changed b1: $line"

	ctl_run reload
	line=$(backend_line web "$ep")
	if [[ $CTL_RC == 0 && $CTL_OUT == "configuration reloaded" && $line == *"state=up admin=up health=up weight=1 "* ]]; then
		pass "6 reload: exit 0, 'configuration reloaded', b1 back to the file's weight 1"
	else
		fail "6 reload: status $CTL_RC, '$CTL_OUT' '$CTL_ERR', b1: $line"
	fi

	local ini=$LAB_RUN/xlb.ini
	cp "$ini" "$ini.good"
	sed 's/^\[global\]$/&\nbogus_key = 1/' "$ini.good" >"$ini.tmp"
	mv -f "$ini.tmp" "$ini"
	ctl_run reload
	mv -f "$ini.good" "$ini"
	out=$(curl_burst c1 "http://$VIP4/" 5)
	line=$(lab_xlbctl service 2>&1 | grep -c '^service ')
	if [[ $CTL_RC == 1 && -z $CTL_OUT && $CTL_ERR == *bogus_key* ]] && xlbd_alive &&
		(($(grep -c '^b[123]$' <<<"$out") == 5 && line == 4)); then
		pass "6 reload of a broken file: exit 1, '$CTL_ERR'; 4 services stay, traffic flows"
	else
		fail "6 reload of a broken file: status $CTL_RC, '$CTL_OUT' '$CTL_ERR'; services $line, answers $(xargs <<<"$out")"
	fi
	ctl_run reload
	[[ $CTL_RC == 0 ]] || fail "6 reload of the restored file: status $CTL_RC, '$CTL_ERR'"
}

# as_nobody XLBCTL ARGS: that xlbctl as user nobody, in the node.
as_nobody() {
	local bin=$1
	shift
	ip netns exec "$LB_NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$bin" --socket "$SOCK" "$@"
}

# 7. The control socket: root only, malformed requests, many clients.
t_robust() {
	local mode owner tmp out rc i bad=0 n
	read -r mode owner <<<"$(stat -c '%A %U' "$SOCK")"
	if [[ $mode == srw------- && $owner == root ]]; then
		pass "7 control socket $SOCK is $mode $owner"
	else
		fail "7 control socket mode $mode owner $owner, want srw------- root"
	fi

	# A copy nobody may run (the build directory may not be theirs).
	tmp=$(mktemp -d)
	chmod 755 "$tmp"
	install -m 755 "$XLBCTL" "$tmp/xlbctl"
	rc=0
	out=$(as_nobody "$tmp/xlbctl" -S 2>&1) || rc=$?
	if [[ $rc == 1 && $out == *"cannot connect to xlbd"*"Permission denied"* && $out != *cpu=* ]]; then
		pass "7 user nobody: exit 1, '$out'"
	else
		fail "7 user nobody: status $rc, '$out'"
	fi
	# Past the file mode (as if an admin opened it up): xlbd itself refuses.
	chmod 0666 "$SOCK"
	rc=0
	out=$(as_nobody "$tmp/xlbctl" -S 2>&1) || rc=$?
	chmod 0600 "$SOCK"
	if [[ $rc == 1 && $out == *"permission denied"* && $out != *cpu=* ]]; then
		pass "7 user nobody on a socket opened to all: xlbd refuses, '$out'"
	else
		fail "7 user nobody on a socket opened to all: status $rc, '$out'"
	fi
	rm -rf -- "$tmp"

	run_checker malformed
	out=$(curl_burst c1 "http://$VIP4/" 3)
	if xlbd_alive && [[ $(grep -c '^b[123]$' <<<"$out") == 3 ]]; then
		pass "7 after the malformed requests xlbd runs and the VIP answers"
	else
		fail "7 after the malformed requests: xlbd alive? $(xlbd_alive && echo yes || echo no); curls: $(xargs <<<"$out")"
	fi

	local pids=()
	for ((i = 0; i < 20; i++)); do
		lab_xlbctl -S >"$LAB_RUN/par.$i" 2>&1 &
		pids+=($!)
	done
	for ((i = 0; i < 20; i++)); do
		rc=0
		wait "${pids[i]}" || rc=$?
		n=$(grep -c '^cpu=' "$LAB_RUN/par.$i")
		if [[ $rc != 0 || $n != 2 ]]; then
			bad=$((bad + 1))
			note "client $i: status $rc: $(head -c 200 "$LAB_RUN/par.$i")"
		fi
	done
	if ((bad == 0)); then
		pass "7 20 clients at once (-S): all answered"
	else
		fail "7 20 clients at once (-S): $bad failed"
	fi

	rc=0
	out=$("$XLBCTL" --help 2>&1) || rc=$?
	if [[ $rc == 0 && $out == Usage:* ]]; then
		pass "7 xlbctl --help: exit 0"
	else
		fail "7 xlbctl --help: status $rc"
	fi
	ctl_run -L --bogus
	if [[ $CTL_RC == 1 && $CTL_ERR == *--bogus* && -z $CTL_OUT ]]; then
		pass "7 xlbctl -L --bogus: exit 1, '$CTL_ERR'"
	else
		fail "7 xlbctl -L --bogus: status $CTL_RC, '$CTL_OUT' '$CTL_ERR'"
	fi
}

# 8. top, two frames.
t_top() {
	ctl_run top -n 2 -i 0.2
	local frames services cpus
	frames=$(grep -c '^xlb top - ' <<<"$CTL_OUT")
	services=$(grep -c '^service ' <<<"$CTL_OUT")
	cpus=$(grep -c '^cpu=' <<<"$CTL_OUT")
	if [[ $CTL_RC == 0 && $frames == 2 && $services == 8 && $cpus == 4 ]]; then
		pass "8 top -n 2 -i 0.2: exit 0, 2 frames, each with 4 services and 2 workers"
	else
		fail "8 top -n 2 -i 0.2: status $CTL_RC, $frames frames, $services service lines, $cpus cpu lines"
		note "$(head -n 12 <<<"$CTL_OUT")"
	fi
}

t_list
t_events
t_delete
t_service
t_backend
t_robust
t_top
held_stop h4
held_stop h6

lab_summary
