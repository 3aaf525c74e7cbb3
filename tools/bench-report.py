#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Figures, ratios and the plot of a tools/bench run, from results.jsonl.

Definitions (docs/PERFORMANCE.md, "Lab harness"):
  max pps      data segments back at the client per second at maximum load
               (each one crossed the node twice: request and reply)
  no-loss pps  the same at the highest offered rate that lost at most
               loss_tol of the segments
  conn/s       SYN-ACKs back at the client per second, all-SYN load
  +p50, +p99   latency at the fixed rate minus the direct path's
  node ns/pkt  the node's CPU per packet crossing it, at the fixed rate:
               (lab CPU per round trip - the same for the direct path) / 2,
               where lab CPU = the generator's thread + the balancer's
               threads + the ksoftirqd threads (scheduler clock), which is
               where all softirq work of the lab runs: other programs on the
               machine do not count
  lab ns/rt@max  lab CPU per delivered round trip at maximum load (the
               generator's own work included; no idle wake-ups left in it)
  proc ns/pkt  the balancer process's own threads (xlbd, xlb-bench-fwd) per
               packet crossing the node, at the fixed rate
"""
import argparse
import json
import sys


def rate(t, key="got_data"):
    return t[key] / t["secs"] if t and t["secs"] > 0 else 0.0


def trials(cell, kind):
    return [t for t in cell["trials"] if t["kind"] == kind]


def lab_ns(t):
    """CPU ns of the lab's own threads in a trial (see the docstring)."""
    c = t["cpu"]
    return c["gen_ns"] + c["lb_ns"] + c.get("ksoftirqd_ns", 0)


def busy_net(cell, t):
    """Busy CPU ns of a trial, less the background measured before it."""
    return t["cpu"]["busy_ns"] - cell["background_busy"] * t["cpu"]["all_ns"]


def summarize(cell, direct):
    s = {"system": cell["label"], "family": cell["family"], "flows": cell["flows"],
         "size": cell["size"], "established": cell["established"],
         "background_busy": cell["background_busy"]}
    mx = (trials(cell, "max") or [None])[0]
    s["max_pps"] = rate(mx)
    s["max_loss"] = mx["loss"] if mx else None
    s["max_p99_ns"] = mx["p99_ns"] if mx else None
    ok = [t for t in trials(cell, "search") if t["loss"] <= cell["loss_tol"]]
    best = max(ok, key=rate) if ok else None
    s["noloss_pps"] = rate(best) if best else 0.0
    s["noloss_p99_ns"] = best["p99_ns"] if best else None
    conns = (trials(cell, "conns") or [None])[0]
    s["conns_per_s"] = rate(conns, "got_synack")
    s["conns_loss"] = conns["loss"] if conns else None
    fx = (trials(cell, "fixed") or [None])[0]
    if fx:
        s["fixed_rate"] = fx["rate"]
        s["fixed_loss"] = fx["loss"]
        s["p50_ns"], s["p99_ns"] = fx["p50_ns"], fx["p99_ns"]
        got = max(fx["got_data"], 1)
        s["machine_ns_per_rt"] = busy_net(cell, fx) / got
        s["lab_ns_per_rt"] = lab_ns(fx) / got
        s["proc_ns_per_pkt"] = fx["cpu"]["lb_ns"] / (2 * got) if fx["cpu"]["lb_ns"] else None
        dfx = (trials(direct, "fixed") or [None])[0] if direct else None
        if dfx and cell is not direct:
            dgot = max(dfx["got_data"], 1)
            s["added_p50_ns"] = fx["p50_ns"] - dfx["p50_ns"]
            s["added_p99_ns"] = fx["p99_ns"] - dfx["p99_ns"]
            s["node_ns_per_pkt"] = (lab_ns(fx) / got - lab_ns(dfx) / dgot) / 2
    if mx:
        s["machine_ns_per_rt_max"] = busy_net(cell, mx) / max(mx["got_data"], 1)
        s["lab_ns_per_rt_max"] = lab_ns(mx) / max(mx["got_data"], 1)
        s["proc_ns_per_pkt_max"] = (mx["cpu"]["lb_ns"] / (2 * max(mx["got_data"], 1))
                                    if mx["cpu"]["lb_ns"] else None)
    return s


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "us":
        return "%.1f" % (v / 1000)
    if unit == "k":
        return "%.1f" % (v / 1000)
    if unit == "x":
        return "%.2f" % v
    return "%.0f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--env")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    a = ap.parse_args()

    cells = [json.loads(l) for l in open(a.results) if l.strip()]
    direct = {c["family"]: c for c in cells if c["label"] == "direct"}
    rows = [summarize(c, direct.get(c["family"])) for c in cells]
    env = open(a.env).read().strip() if a.env else ""
    if env:
        print(env)
    bg = max((r["background_busy"] for r in rows), default=0)
    if bg > 0.05:
        print("WARNING: other programs kept up to %.0f%% of the machine busy before a cell: "
              "they took cycles from every system (CPU figures count only the lab's threads)"
              % (bg * 100))
    print()
    hdr = ("fam", "flows", "system", "max kpps", "loss%", "no-loss kpps", "kconn/s",
           "p50 us", "p99 us", "+p50 us", "+p99 us", "node ns/pkt", "proc ns/pkt", "lab ns/rt@max")
    print("%-3s %8s %-7s %9s %6s %12s %8s %7s %7s %7s %7s %11s %11s %13s" % hdr)
    for r in rows:
        print("%-3s %8d %-7s %9s %6s %12s %8s %7s %7s %7s %7s %11s %11s %13s" % (
            "v%d" % r["family"], r["flows"], r["system"], fmt(r["max_pps"], "k"),
            "%.1f" % (100 * r["max_loss"]) if r["max_loss"] is not None else "-",
            fmt(r["noloss_pps"], "k"), fmt(r["conns_per_s"], "k"),
            fmt(r.get("p50_ns"), "us"), fmt(r.get("p99_ns"), "us"),
            fmt(r.get("added_p50_ns"), "us"), fmt(r.get("added_p99_ns"), "us"),
            fmt(r.get("node_ns_per_pkt")), fmt(r.get("proc_ns_per_pkt")),
            fmt(r.get("lab_ns_per_rt_max"))))

    # Ratios measured in this run: per family and flow count.
    by = {(r["family"], r["flows"], r["system"]): r for r in rows}
    ratios = []
    print()
    print("ratios (same run)        max pps  no-loss  conn/s  node CPU/pkt (lower is better)")
    for (fam, flows, system), r in sorted(by.items()):
        if system != "xlb":
            continue
        for other in ("kernel", "limit"):
            o = by.get((fam, flows, other))
            if not o:
                continue
            x = {"family": fam, "flows": flows, "what": "xlb/" + other,
                 "max_pps": ratio(r["max_pps"], o["max_pps"]),
                 "noloss_pps": ratio(r["noloss_pps"], o["noloss_pps"]),
                 "conns_per_s": ratio(r["conns_per_s"], o["conns_per_s"]),
                 "node_cpu_per_pkt": ratio(r.get("node_ns_per_pkt"), o.get("node_ns_per_pkt"))}
            ratios.append(x)
            print("v%d %8d %-12s %7s %8s %7s %8s" % (
                fam, flows, x["what"], fmt(x["max_pps"], "x"), fmt(x["noloss_pps"], "x"),
                fmt(x["conns_per_s"], "x"), fmt(x["node_cpu_per_pkt"], "x")))
    for fam in sorted({r["family"] for r in rows}):
        flows = sorted({r["flows"] for r in rows if r["family"] == fam and r["system"] != "direct"})
        if len(flows) < 2:
            continue
        lo = 1000 if 1000 in flows else flows[0]
        hi = flows[-1]
        for system in ("kernel", "xlb", "limit"):
            a_, b_ = by.get((fam, hi, system)), by.get((fam, lo, system))
            if not a_ or not b_:
                continue
            x = {"family": fam, "flows": hi, "what": "%s %d/%d flows" % (system, hi, lo),
                 "max_pps": ratio(a_["max_pps"], b_["max_pps"]),
                 "noloss_pps": ratio(a_["noloss_pps"], b_["noloss_pps"]),
                 "conns_per_s": ratio(a_["conns_per_s"], b_["conns_per_s"]),
                 "node_cpu_per_pkt": ratio(a_.get("node_ns_per_pkt"), b_.get("node_ns_per_pkt"))}
            ratios.append(x)
            print("v%d %8d %-12s %7s %8s %7s %8s" % (
                fam, hi, "%s %s/%s" % (system, hi, lo), fmt(x["max_pps"], "x"),
                fmt(x["noloss_pps"], "x"), fmt(x["conns_per_s"], "x"),
                fmt(x["node_cpu_per_pkt"], "x")))

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"environment": env, "cells": rows, "ratios": ratios}, f, indent=1)
    if a.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("no plot: python3-matplotlib is not installed", file=sys.stderr)
            return
        fig, ax = plt.subplots(figsize=(7, 4.5))
        colors = {"kernel": "tab:blue", "xlb": "tab:red", "limit": "tab:green"}
        for system in ("kernel", "xlb", "limit"):
            pts = sorted((r["flows"], r["max_pps"], r["noloss_pps"]) for r in rows
                         if r["family"] == 4 and r["system"] == system)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] / 1000 for p in pts], "o-", color=colors[system],
                    label=system + " (max load)")
            ax.plot(xs, [p[2] / 1000 for p in pts], "s--", color=colors[system],
                    label=system + " (no loss)")
        ax.set_xscale("log")
        ax.set_xlabel("flows (IPv4)")
        ax.set_ylabel("delivered kpps (round trips through the node)")
        ax.set_title("tools/bench: throughput against flow count")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=100)


if __name__ == "__main__":
    main()
