#!/usr/bin/env python3
"""Turns bench/compare.sh's results into the "Servers side by side" section of
docs/benchmarks.md: medians over repetitions, tshared/peer ratios, the targets and whether
they hold, the exact commands, the machine, and one gnuplot PNG per scenario.

  compare_report.py --results R.jsonl --machine M.json --mode quick \
      --fragment out.md [--doc docs/benchmarks.md] --charts docs/benchmarks [--check]

--doc replaces the text between <!-- compare:begin --> and <!-- compare:end --> (adding the
section with its heading at the end if the page has no markers) and leaves the rest of the
page alone. --check exits 1 if any run failed, reported errors or measured nothing (the smoke
test's assertion that the tools work; no speed is asserted).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"
HEADING = "## Servers side by side"

SERVERS = [("tshared", "tshared"), ("etcd", "etcd"), ("redis", "Redis"), ("cq", "cq_server")]

# id -> (title, what each server runs). Latency scenarios chart p50/p99 instead of ops/s.
SCENARIOS = [
    ("put", "Set, 16 clients", {
        "tshared": "Shares.Set", "etcd": "KV.Put", "redis": "redis-benchmark SET"}),
    ("get", "Get, 16 clients", {
        "tshared": "Shares.Get", "etcd": "KV.Range, serializable", "redis": "redis-benchmark GET",
        "cq": "Shares.Get on cq_server"}),
    ("get-linearizable", "Get, linearizable (etcd only)", {"etcd": "KV.Range, linearizable"}),
    ("get-serial", "Get, 1 client, 1 in flight (latency)", {
        "tshared": "Shares.Get", "etcd": "KV.Range, serializable", "redis": "redis-benchmark -c 1 GET",
        "cq": "Shares.Get on cq_server"}),
    ("add", "add 1, 10,000 keys", {
        "tshared": "Shares.Update add", "etcd": "Range + Txn(mod_revision) retry loop",
        "redis": "redis-benchmark INCR"}),
    ("add-hot", "add 1, one hot key", {
        "tshared": "Shares.Update add", "etcd": "Range + Txn(mod_revision) retry loop",
        "redis": "redis-benchmark INCR counter:hot"}),
    ("cas", "read, then conditional write, retried on conflict", {
        "tshared": "Get + Set(if_version) loop", "etcd": "Range + Txn(mod_revision) loop"}),
    ("mixed", "90 % get, 10 % set", {"tshared": "Get / Set", "etcd": "Range / Put"}),
    ("session-put", "16 sets per frame, 16 clients", {
        "tshared": "Shares.Session, 16 ops a frame", "etcd": "Txn of 16 puts",
        "redis": "redis-benchmark -P 16 SET"}),
    ("session-get", "16 gets per frame, 16 clients", {
        "tshared": "Shares.Session, 16 ops a frame", "etcd": "Txn of 16 serializable ranges",
        "redis": "redis-benchmark -P 16 GET"}),
    ("watch", "watch: events delivered/s, writers closed loop", {
        "tshared": "Shares.Watch, keys per stream", "etcd": "Watch, one create per key"}),
    ("watch-1k", "watch at 1,000 writes/s: put->event latency", {
        "tshared": "Shares.Watch", "etcd": "Watch"}),
    ("pubsub-1", "pub/sub, 1 subscriber: deliveries/s", {
        "tshared": "Session publish ops, 16 unanswered / Subscribe, max_batch 64", "redis": "16 PUBLISH pipelined / SUBSCRIBE (RESP)"}),
    ("pubsub-10", "pub/sub, 10 subscribers: deliveries/s", {
        "tshared": "Session publish ops, 16 unanswered / Subscribe, max_batch 64", "redis": "16 PUBLISH pipelined / SUBSCRIBE (RESP)"}),
    ("pubsub-100", "pub/sub, 100 subscribers: deliveries/s", {
        "tshared": "Session publish ops, 16 unanswered / Subscribe, max_batch 64", "redis": "16 PUBLISH pipelined / SUBSCRIBE (RESP)"}),
    ("idle-conns", "Get, 16 clients, beside 1,000 idle connections", {
        "tshared": "Shares.Get", "etcd": "KV.Range, serializable", "redis": "redis-benchmark GET + -I"}),
]
LATENCY_IDS = {"get-serial", "watch-1k"}
TITLES = {sid: title for sid, title, _ in SCENARIOS}


def median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


class Table:
    """Medians per (layout, server, id)."""

    def __init__(self, runs):
        self.groups = {}
        self.cmds = {}
        self.failures = []
        for r in runs:
            key = (r["layout"], r["server"], r["id"])
            res = r["result"]
            self.cmds.setdefault((r["server"], r["id"]), r["cmd"])
            if "error" in res:
                self.failures.append((r, res["error"]))
                continue
            if "not_applicable" in res:
                continue
            self.groups.setdefault(key, []).append(res)
        self.layouts = []
        for r in runs:
            if r["id"] != "memory" and r["layout"] not in self.layouts:
                self.layouts.append(r["layout"])

    def get(self, layout, server, sid, field):
        rs = self.groups.get((layout, server, sid))
        if not rs:
            return None
        return median([r.get(field) for r in rs])

    def n(self, layout, server, sid):
        return len(self.groups.get((layout, server, sid), []))

    def memory(self, server, field):
        for (layout, s, sid), rs in self.groups.items():
            if s == server and sid == "memory":
                return median([r.get(field) for r in rs])
        return None


def fmt_rate(x):
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M/s"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k/s"
    return f"{x:.0f}/s"


def fmt_us(x):
    if x is None:
        return "—"
    if x >= 10000:
        return f"{x / 1000:.0f} ms"
    if x >= 1000:
        return f"{x / 1000:.1f} ms"
    return f"{x:.0f} µs"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def cell(t, layout, server, sid):
    ops = t.get(layout, server, sid, "ops_per_sec")
    if ops is None:
        return "—"
    p50 = t.get(layout, server, sid, "p50_us")
    p99 = t.get(layout, server, sid, "p99_us")
    return f"{fmt_rate(ops)}<br>p50 {fmt_us(p50)} · p99 {fmt_us(p99)}"


def targets(t, layout):
    """(target, measured, holds) rows; None holds = not measured."""
    rows = []
    g = lambda s, i, f="ops_per_sec": t.get(layout, s, i, f)

    def ratio_row(text, a, b, need, what):
        if a is None or b is None or b == 0:
            rows.append((text, f"{what}: not measured", None))
            return
        r = a / b
        rows.append((text, f"{what}: {fmt_rate(a)} vs {fmt_rate(b)} = **{r:.2f}×**", r >= need))

    ratio_row("Set ≥ 3× etcd Put", g("tshared", "put"), g("etcd", "put"), 3, "put")
    ratio_row("Get ≥ 1.5× etcd serializable Range", g("tshared", "get"), g("etcd", "get"), 1.5, "get")
    ratio_row("add on a hot key ≥ 10× etcd's Txn loop", g("tshared", "add-hot"),
              g("etcd", "add-hot"), 10, "add-hot")
    ratio_row("watch events delivered/s ≥ 3× etcd", g("tshared", "watch"), g("etcd", "watch"), 3,
              "watch")
    p99 = g("tshared", "watch-1k", "p99_us")
    rows.append(("put→event p99 ≤ 5 ms at 1,000 watchers and 1,000 writes/s",
                 "not measured" if p99 is None else f"tshared p99 **{fmt_us(p99)}** "
                 f"(etcd {fmt_us(g('etcd', 'watch-1k', 'p99_us'))})",
                 None if p99 is None else p99 <= 5000))
    ratio_row("unary Set ≥ 0.35× redis-benchmark SET (16 clients)", g("tshared", "put"),
              g("redis", "put"), 0.35, "put")
    ratio_row("unary Get ≥ 0.35× redis-benchmark GET (16 clients)", g("tshared", "get"),
              g("redis", "get"), 0.35, "get")
    ratio_row("Session sets ≥ 1× redis-benchmark -P 16 SET", g("tshared", "session-put"),
              g("redis", "session-put"), 1, "session-put")
    ratio_row("Session gets ≥ 1× redis-benchmark -P 16 GET", g("tshared", "session-get"),
              g("redis", "session-get"), 1, "session-get")
    ratio_row("pub/sub deliveries ≥ 0.3× Redis, 10 subscribers", g("tshared", "pubsub-10"),
              g("redis", "pubsub-10"), 0.3, "pubsub-10")
    a, b = g("tshared", "get-serial", "p50_us"), g("redis", "get-serial", "p50_us")
    rows.append(("serial Get p50 ≤ 2.5× Redis GET p50",
                 "not measured" if a is None or b is None else
                 f"{fmt_us(a)} vs {fmt_us(b)} = **{a / b:.2f}×**",
                 None if a is None or b is None else a <= 2.5 * b))
    for sid in ("put", "get"):
        p50, p99 = g("tshared", sid, "p50_us"), g("tshared", sid, "p99_us")
        rows.append((f"p99 ≤ 4× tshared's own p50 ({sid}, 16 clients)",
                     "not measured" if p50 is None or p99 is None else
                     f"p50 {fmt_us(p50)}, p99 {fmt_us(p99)} = **{p99 / p50:.2f}×**",
                     None if p50 is None or p99 is None else p99 <= 4 * p50))
    a, b = t.memory("tshared", "bytes_per_key"), t.memory("redis", "bytes_per_key")
    keys = t.memory("tshared", "keys")
    rows.append((f"memory per key ({keys or 0:,.0f} × 64 B) ≤ 2× Redis",
                 "not measured" if a is None or b is None else
                 f"{a:.0f} B vs {b:.0f} B = **{a / b:.2f}×**",
                 None if a is None or b is None or b <= 0 else a <= 2 * b))
    ratio_row("callback server ≥ 0.75× the completion-queue server's Get", g("tshared", "get"),
              g("cq", "get"), 0.75, "get")
    return rows


def chart(t, sid, charts_dir, gnuplot):
    """One PNG per scenario: median per server, one bar per layout."""
    servers = [(s, name) for s, name in SERVERS if any(t.n(l, s, sid) for l in t.layouts)]
    if not servers or not gnuplot:
        return None
    latency = sid in LATENCY_IDS
    dat = os.path.join(charts_dir, f".{sid}.dat")
    cols = []
    if latency:
        cols = [(l, f) for l in t.layouts for f in ("p50_us", "p99_us")]
    else:
        cols = [(l, "ops_per_sec") for l in t.layouts]
    with open(dat, "w") as f:
        for s, name in servers:
            vals = []
            for l, field in cols:
                v = t.get(l, s, sid, field)
                vals.append("0" if v is None else f"{v:.3f}")
            f.write(f'"{name}" ' + " ".join(vals) + "\n")
    png = os.path.join(charts_dir, f"{sid}.png")
    ylabel = "latency, µs (lower is better)" if latency else "ops/s (higher is better)"
    if sid.startswith("watch") and not latency:
        ylabel = "events delivered/s"
    if sid.startswith("pubsub"):
        ylabel = "deliveries/s"
    titles = [f"{l} {field.replace('_us', '')}" if latency else l for l, field in cols]
    plots = ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{titles[i]}'" for i in range(len(cols)))
    script = f"""
set terminal pngcairo size 720,360 font ',10' noenhanced
set output '{png}'
set title "{TITLES[sid]}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "{ylabel}"
set yrange [0:*]
set grid ytics
set key top right
set format y "{'%g' if latency else '%.1s%c'}"
plot {plots}
"""
    subprocess.run([gnuplot], input=script, text=True, check=True, capture_output=True)
    os.remove(dat)
    return png


def memory_chart(t, charts_dir, gnuplot):
    keys = t.memory("tshared", "keys") or t.memory("redis", "keys") or 0
    rows = [(name, t.memory(s, "bytes_per_key")) for s, name in SERVERS if s != "cq"]
    rows = [(n, v) for n, v in rows if v is not None]
    if not rows or not gnuplot:
        return None
    dat = os.path.join(charts_dir, ".memory.dat")
    with open(dat, "w") as f:
        for n, v in rows:
            f.write(f'"{n}" {v:.1f}\n')
    png = os.path.join(charts_dir, "memory.png")
    script = f"""
set terminal pngcairo size 720,360 font ',10' noenhanced
set output '{png}'
set title "RSS growth per key, {keys:,.0f} keys of 64 bytes"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.6
set ylabel "bytes per key (lower is better)"
set yrange [0:*]
set grid ytics
unset key
plot '{dat}' using 2:xtic(1)
"""
    subprocess.run([gnuplot], input=script, text=True, check=True, capture_output=True)
    os.remove(dat)
    return png


def render(t, machine, mode, charts_dir, chart_rel):
    out = []
    m = machine
    out.append(f"Generated by `{m['command']}` ({mode} mode, {m['date']}, {m['elapsed_s']} s). "
               "Every figure is the median of the repetitions; each server was restarted for "
               "every scenario.")
    out.append("")
    out.append(f"Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['memory']} RAM, Linux "
               f"{m['kernel']}. Peers: {m['etcd']}; {m['redis']}; gRPC {m['grpc']} (the "
               "client of tshared, etcd and cq_server is the same tshare-bench).")
    out.append("")
    out.append("Shape: 16 clients on 16 connections with one request in flight each, 16-byte "
               "keys, 64-byte values, 10,000 keys; redis-benchmark with `-c 16 -d 64 -r 10000`. "
               "Layouts: **pinned** = server on CPU 0, client on CPU 1 (`taskset`); **free** = "
               "both on every CPU.")
    out.append("")
    main_layout = "pinned" if "pinned" in t.layouts else (t.layouts[0] if t.layouts else None)
    if main_layout:
        out.append(f"### Targets ({main_layout} layout)")
        out.append("")
        out.append("| target | measured | holds |")
        out.append("|---|---|---|")
        for text, measured, holds in targets(t, main_layout):
            verdict = "—" if holds is None else ("yes" if holds else "**no**")
            out.append(f"| {text} | {measured} | {verdict} |")
        out.append("")
    for layout in t.layouts:
        out.append(f"### Results, {layout} layout")
        out.append("")
        out.append("| scenario | tshared | etcd | Redis | cq_server | tshared ÷ etcd | "
                   "tshared ÷ Redis | tshared CPU s · ops per CPU-s |")
        out.append("|---|---|---|---|---|---|---|---|")
        for sid, title, _ in SCENARIOS:
            if not any(t.n(layout, s, sid) for s, _ in SERVERS):
                continue
            ts = t.get(layout, "tshared", sid, "ops_per_sec")
            cpu = t.get(layout, "tshared", sid, "server_cpu_s")
            eff = t.get(layout, "tshared", sid, "ops_per_server_cpu_s")
            cpu_cell = "—" if cpu is None else f"{cpu:.2f} · {fmt_rate(eff).replace('/s', '')}"
            out.append(
                f"| `{sid}` {title} | {cell(t, layout, 'tshared', sid)} | "
                f"{cell(t, layout, 'etcd', sid)} | {cell(t, layout, 'redis', sid)} | "
                f"{cell(t, layout, 'cq', sid)} | "
                f"{fmt_ratio(ts, t.get(layout, 'etcd', sid, 'ops_per_sec'))} | "
                f"{fmt_ratio(ts, t.get(layout, 'redis', sid, 'ops_per_sec'))} | {cpu_cell} |")
        out.append("")
        out.append(f"CPU use over the measured window, {layout} layout (percent of one core; "
                   "100 % on the pinned layout means that side had its core to itself and "
                   "used all of it):")
        out.append("")
        out.append("| scenario | tshared server | tshare-bench vs tshared | etcd server | "
                   "tshare-bench vs etcd | Redis server | cq_server |")
        out.append("|---|---|---|---|---|---|---|")

        def pct(server, sid, field):
            v = t.get(layout, server, sid, field)
            d = t.get(layout, server, sid, "duration_s")
            if v is None:
                return "—"
            if not d:  # redis-benchmark runs: CPU over the run, rate known
                ops, rate = t.get(layout, server, sid, "ops"), t.get(layout, server, sid,
                                                                   "ops_per_sec")
                d = ops / rate if ops and rate else None
            return "—" if not d else f"{100 * v / d:.0f} %"

        for sid, title, _ in SCENARIOS:
            if not any(t.n(layout, s, sid) for s, _ in SERVERS):
                continue
            out.append(f"| `{sid}` | {pct('tshared', sid, 'server_cpu_s')} | "
                       f"{pct('tshared', sid, 'client_cpu_s')} | {pct('etcd', sid, 'server_cpu_s')} | "
                       f"{pct('etcd', sid, 'client_cpu_s')} | {pct('redis', sid, 'server_cpu_s')} | "
                       f"{pct('cq', sid, 'server_cpu_s')} |")
        out.append("")
        extra = []
        for sid in ("watch", "watch-1k", "pubsub-1", "pubsub-10", "pubsub-100"):
            for s, name in SERVERS:
                w = t.get(layout, s, sid, "writes_per_sec")
                if w is None:
                    continue
                c, d = t.get(layout, s, sid, "conflated"), t.get(layout, s, sid, "dropped")
                extra.append(f"`{sid}` {name}: {fmt_rate(w)} writes, write p50 "
                             f"{fmt_us(t.get(layout, s, sid, 'write_p50_us'))}, p99 "
                             f"{fmt_us(t.get(layout, s, sid, 'write_p99_us'))}"
                             + (f", conflated {c:.0f}, dropped {d:.0f}" if (c or d) else ""))
        if extra:
            out.append("Writers of the streaming scenarios: " + "; ".join(extra) + ".")
            out.append("")
    mem = [(name, t.memory(s, "bytes_per_key"), t.memory(s, "rss_after_kb"),
            t.memory(s, "load_seconds")) for s, name in SERVERS if s != "cq"]
    if any(v is not None for _, v, _, _ in mem):
        keys = t.memory("tshared", "keys") or t.memory("redis", "keys") or t.memory("etcd", "keys")
        out.append(f"### Memory: {keys:,.0f} keys of 64 bytes")
        out.append("")
        out.append("| server | RSS after load | RSS growth per key | load time |")
        out.append("|---|---|---|---|")
        for name, per_key, rss, secs in mem:
            if per_key is None:
                continue
            out.append(f"| {name} | {rss / 1024:.0f} MiB | {per_key:.0f} B | {secs:.1f} s |")
        out.append("")
        out.append("tshared keeps its defaults, so its figure includes the watch history of the "
                   "last 100,000 changes (`--history`); etcd's includes its bbolt file mapped "
                   "into memory (on tmpfs) and every revision since the start.")
        out.append("")
    gnuplot = shutil.which("gnuplot")
    if charts_dir:
        os.makedirs(charts_dir, exist_ok=True)
        pngs = []
        for sid, _, _ in SCENARIOS:
            p = chart(t, sid, charts_dir, gnuplot)
            if p:
                pngs.append((sid, p))
        p = memory_chart(t, charts_dir, gnuplot)
        if p:
            pngs.append(("memory", p))
        if pngs:
            out.append("### Charts")
            out.append("")
            for sid, p in pngs:
                out.append(f"![{sid}]({chart_rel}/{os.path.basename(p)})")
            out.append("")
        elif not gnuplot:
            out.append("(gnuplot is not installed: no charts.)")
            out.append("")
    out.append("### What each scenario runs")
    out.append("")
    out.append("| scenario | tshared | etcd | Redis |")
    out.append("|---|---|---|---|")
    for sid, title, what in SCENARIOS:
        out.append(f"| `{sid}` | {what.get('tshared', '—')} | {what.get('etcd', 'not applicable')}"
                   f" | {what.get('redis', 'not measured')} |")
    out.append("")
    out.append("<details><summary>Exact commands (first repetition; ports vary per run)</summary>")
    out.append("")
    out.append("```")
    for (server, sid), cmd in sorted(t.cmds.items()):
        if cmd:
            out.append(f"# {server} {sid}")
            out.append(cmd)
    out.append("```")
    out.append("")
    out.append("</details>")
    if t.failures:
        out.append("")
        out.append("Failed runs: " + "; ".join(
            f"{r['server']} {r['id']} ({r['layout']}, rep {r['rep']}): {e}" for r, e in t.failures))
    return "\n".join(out) + "\n"


def splice(doc, body):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    elif HEADING in text:
        head, tail = text.split(HEADING, 1)
        text = head + HEADING + "\n\n" + block + "\n" + tail
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"
    with open(doc, "w") as f:
        f.write(text)


def check(runs):
    bad = []
    for r in runs:
        res = r["result"]
        what = f"{r['server']} {r['id']} ({r['layout']}, rep {r['rep']})"
        if "error" in res:
            bad.append(f"{what}: {res['error']}")
        elif "not_applicable" in res:
            continue
        elif r["id"] == "memory":
            if not res.get("keys") or res.get("rss_after_kb", 0) <= 0:
                bad.append(f"{what}: no memory figure")
        elif not res.get("ops"):
            bad.append(f"{what}: measured nothing ({res.get('first_error', 'no ops')})")
        elif res.get("errors"):
            bad.append(f"{what}: {res['errors']} errors ({res.get('first_error', '')})")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--fragment", required=True)
    ap.add_argument("--doc")
    ap.add_argument("--charts")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    runs = load(a.results)
    machine = json.load(open(a.machine))
    t = Table(runs)
    # Charts are linked relative to the page (or to the fragment when there is no page).
    page = a.doc or a.fragment
    chart_rel = os.path.relpath(a.charts or ".", os.path.dirname(os.path.abspath(page)))
    body = render(t, machine, a.mode, a.charts, chart_rel)
    with open(a.fragment, "w") as f:
        f.write(body)
    if a.doc:
        splice(a.doc, body)
    if a.check:
        bad = check(runs)
        for b in bad:
            print(f"compare_report: {b}", file=sys.stderr)
        if bad:
            return 1
        print(f"compare_report: {len(runs)} runs, all measured something, no errors",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
