#!/usr/bin/python3
"""Turns core_bench JSON runs into the core table of docs/benchmarks.md.

  build/release/bench/core_bench --benchmark_repetitions=5 \
      --benchmark_report_aggregates_only=true --benchmark_format=json > default.json
  build/release/bench/core_bench --mutex_deadlock_detection=false \
      --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
      --benchmark_format=json > nodetect.json
  bench/core_report.py default.json nodetect.json --doc docs/benchmarks.md

Each run is one column group: the median over the repetitions of each tshare benchmark,
of its baseline, and their ratio (tshare / baseline; below 1 is faster than the baseline).
Times are wall time per operation (per task or message for the pool and the bus). The
section between <!-- core:begin --> and <!-- core:end --> is replaced; without --doc the
table goes to standard output.
"""

import argparse
import json
import re
import sys

# tshare benchmark prefix -> (baseline prefix, what it is, target ratio or None)
PAIRS = [
    ("BM_Share_Get", "BM_Baseline_MutexInt_Get", "Share<int64_t>::Get vs absl::Mutex + int64_t", 1.5),
    ("BM_Share_Set", "BM_Baseline_MutexInt_Set", "Share<int64_t>::Set vs absl::Mutex + int64_t", 1.5),
    ("BM_Share_Update", "BM_Baseline_MutexInt_Update", "Share<int64_t>::Update vs absl::Mutex + int64_t", 1.5),
    ("BM_AtomicShare_Add", "BM_Baseline_StdAtomic_FetchAdd", "AtomicShare<int64_t>::Add vs std::atomic fetch_add", 1.5),
    ("BM_AtomicShare_Update", "BM_Baseline_StdAtomic_CasLoop", "AtomicShare<int64_t>::Update vs std::atomic CAS loop", 1.5),
    ("BM_AtomicShare_String_Update", "BM_Baseline_MutexString_Update", "AtomicShare<std::string>::Update vs absl::Mutex + std::string updated in place", None),
    ("BM_AtomicShare_String_Update", "BM_Baseline_CowString_Update", "AtomicShare<std::string>::Update vs copy-on-write by hand (absl::Mutex + shared_ptr<const std::string>)", 1.5),
    ("BM_ThreadPool_EmptyTasks", "BM_Baseline_PlainPool_EmptyTasks", "ThreadPool vs plain mutex+condvar pool, per empty task", 1.0),
    ("BM_MessageBus_PublishToDelivery", None, "MessageBus publish -> handler ran, one message", None),
    ("BM_MessageBus_Burst", None, "MessageBus burst of 10,000, per message", None),
]

# Per-iteration work of the benchmarks that process many items per iteration.
ITEMS_PER_ITERATION = {"BM_ThreadPool_EmptyTasks": 10000,
                       "BM_Baseline_PlainPool_EmptyTasks": 10000,
                       "BM_MessageBus_Burst": 10000}


def unit_ns(b):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def medians(run):
    """{(prefix, variant): ns per operation} from the median aggregates of one run."""
    out = {}
    for b in run["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        m = re.match(r"(BM_[A-Za-z_]+?)(?:/(\d+))?(?:/real_time)?(?:/threads:(\d+))?$", name)
        if not m:
            continue
        prefix, arg, threads = m.group(1), m.group(2), m.group(3)
        variant = f"{arg} threads" if arg else (f"{threads} threads" if threads else "")
        if prefix.startswith("BM_ThreadPool") or prefix.startswith("BM_Baseline_PlainPool"):
            variant = f"{arg} threads"
        ns = unit_ns(b) / ITEMS_PER_ITERATION.get(prefix, 1)
        out[(prefix, variant)] = ns
    return out


def fmt(ns):
    return f"{ns:,.0f} ns" if ns >= 100 else f"{ns:.1f} ns"


def table(runs):
    labels = []
    for run in runs:
        ctx = run["context"]
        detect = ctx.get("mutex_deadlock_detection", "true")
        labels.append("deadlock detection on (Debian Abseil default)" if detect == "true"
                      else "deadlock detection off")
    per_run = [medians(r) for r in runs]
    head = "| benchmark | variant | target |"
    rule = "|---|---|---|"
    for label in labels:
        head += f" tshare, {label} | baseline | ratio |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    variants = sorted({v for m in per_run for (_, v) in m}, key=lambda v: (len(v), v))
    for prefix, base, what, target in PAIRS:
        for variant in variants:
            if not any((prefix, variant) in m for m in per_run):
                continue
            row = f"| {what} | {variant or '-'} | {'≤ %.1f×' % target if target else '-'} |"
            for m in per_run:
                t = m.get((prefix, variant))
                b = m.get((base, variant)) if base else None
                ratio = f"{t / b:.2f}×" if t is not None and b else "-"
                row += f" {fmt(t) if t is not None else '-'} | {fmt(b) if b else '-'} | {ratio} |"
            lines.append(row)
    ctx = runs[0]["context"]
    machine = (f"{ctx.get('host_name')}, {ctx.get('num_cpus')} CPUs at "
               f"{ctx.get('mhz_per_cpu')} MHz, load average "
               f"{', '.join('%.2f' % x for x in ctx.get('load_avg', []))} at start, "
               f"{ctx.get('date')}; core_bench built by the release preset (-O2)")
    return "\n".join(lines), machine


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="core_bench --benchmark_format=json output")
    parser.add_argument("--doc", help="markdown file whose core section to replace")
    parser.add_argument("--command", default="", help="the commands that made the runs")
    args = parser.parse_args()
    runs = []
    for path in args.runs:
        with open(path) as f:
            runs.append(json.load(f))
    body, machine = table(runs)
    section = f"Machine: {machine}.\n\n{body}\n"
    if args.command:
        section = f"```sh\n{args.command.strip()}\n```\n\n" + section
    if not args.doc:
        print(section)
        return 0
    with open(args.doc) as f:
        doc = f.read()
    begin, end = "<!-- core:begin -->", "<!-- core:end -->"
    if begin not in doc or end not in doc:
        print(f"core_report.py: {args.doc} has no {begin} ... {end} section", file=sys.stderr)
        return 1
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(args.doc, "w") as f:
        f.write(f"{head}{begin}\n{section}{end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
