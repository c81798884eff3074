#!/usr/bin/python3
"""End-to-end metrics test: the real tshared, scraped by the real Prometheus
with deploy/prometheus/prometheus.yml (target and intervals substituted) and
deploy/prometheus/alerts.yml, while tshare_traffic_driver drives every service.

Checks that every PromQL query of the Grafana dashboard (deploy/grafana) parses
and returns data, that its template variables find the job and the instance,
that every alert expression parses and every rule evaluates without error, that
TshareDown's expression fires once tshared is gone, and that a metrics port in
use stops a second tshared with a one-line error and exit code 1.

Usage: metrics_e2e.py --root DIR --tshared BIN --driver BIN --prometheus BIN
                      --promtool BIN
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from e2e_lib import (SKIP, Prometheus, fail, free_port, read_line,
                     start_tshared, stop, values)

# $__rate_interval for the test: many 1 s scrapes per window.
RATE_INTERVAL = "30s"


def dashboard_queries(dashboard):
    """(panel title, expr) of every panel target, rows' panels included."""
    out = []

    def walk(panels):
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel.get("title", "?"), target["expr"]))

    walk(dashboard["panels"])
    return out


def substitute(expr, job, instance):
    for name, value in (("job", job), ("instance", instance),
                        ("__rate_interval", RATE_INTERVAL),
                        ("__interval", RATE_INTERVAL)):
        expr = expr.replace("${%s}" % name, value).replace("$" + name, value)
    if "$" in expr.replace("$labels", ""):
        fail(f"unknown template variable left in {expr!r}")
    return expr


def check_port_in_use(tshared, metrics_port):
    """A second tshared on a metrics port in use: one line on stderr, exit 1."""
    result = subprocess.run(
        [tshared, "--listen=127.0.0.1:0",
         f"--metrics_listen=127.0.0.1:{metrics_port}"],
        capture_output=True, timeout=60)
    stderr = result.stderr.decode()
    lines = [l for l in stderr.splitlines() if l.strip()]
    print(f"second tshared on metrics port {metrics_port}: exit "
          f"{result.returncode}, stderr {stderr!r}")
    if result.returncode != 1:
        fail(f"a metrics port in use must exit 1, got {result.returncode}")
    if len(lines) != 1 or "--metrics_listen" not in lines[0]:
        fail(f"a metrics port in use must print one line naming "
             f"--metrics_listen, got {stderr!r}")


def main():
    parser = argparse.ArgumentParser()
    for flag in ("root", "tshared", "driver", "prometheus", "promtool"):
        parser.add_argument("--" + flag, required=True)
    args = parser.parse_args()
    for tool in (args.prometheus, args.promtool):
        if not os.path.isfile(tool):
            print(f"{tool} is missing: apt-get install prometheus "
                  "(scripts/test.sh installs it)")
            return SKIP

    deploy = os.path.join(args.root, "deploy")
    tmp = tempfile.mkdtemp(prefix="tshare-metrics-e2e-")
    processes = []
    prometheus = None
    try:
        metrics_port = free_port()
        tshared, grpc_address = start_tshared(
            args.tshared, ["--listen=127.0.0.1:0",
                           f"--metrics_listen=127.0.0.1:{metrics_port}",
                           "--pool_threads=2"])
        processes.append(tshared)
        instance = f"127.0.0.1:{metrics_port}"
        print(f"tshared: gRPC {grpc_address}, metrics {instance}")

        check_port_in_use(args.tshared, metrics_port)

        # deploy/prometheus/prometheus.yml with the test's target and 1 s
        # intervals; everything else as shipped.
        with open(os.path.join(deploy, "prometheus", "prometheus.yml")) as f:
            config = yaml.safe_load(f)
        jobs = [j for j in config["scrape_configs"]
                if j["job_name"] == "tshared"]
        if len(jobs) != 1:
            fail("deploy/prometheus/prometheus.yml must have one job "
                 "'tshared'")
        job = jobs[0]
        job["static_configs"] = [{"targets": [instance]}]
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        for rule_file in config["rule_files"]:
            shutil.copy(os.path.join(deploy, "prometheus", rule_file), tmp)
        config_path = os.path.join(tmp, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        subprocess.run([args.promtool, "check", "config", config_path],
                       check=True)

        prometheus = Prometheus(args.prometheus, config_path,
                                os.path.join(tmp, "data"),
                                os.path.join(tmp, "prometheus.log"))
        prometheus.wait_ready()

        driver = subprocess.Popen([args.driver, grpc_address],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        processes.append(driver)
        if read_line(driver, 60) != "ready":
            fail("the traffic driver did not get ready")

        sel = 'job="tshared"'
        prometheus.wait_for(f"up{{{sel}}}", lambda r: values(r) == [1.0],
                            60, "tshared scraped")
        # Enough scrapes with traffic in them for every rate() window.
        prometheus.wait_for(
            f'count_over_time(tshare_revision{{{sel}}}[1m])',
            lambda r: values(r) and values(r)[0] >= 8, 90, "8 scrapes")
        prometheus.wait_for(
            f'sum(increase(grpc_server_handled_total{{{sel},'
            f'grpc_method="Set"}}[{RATE_INTERVAL}]))',
            lambda r: values(r) and values(r)[0] > 0, 60, "Set traffic seen")

        failures = []

        # The dashboard: template variables, then every panel query.
        with open(os.path.join(deploy, "grafana", "tshare.json")) as f:
            dashboard = json.load(f)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for name, want in (("job", "tshared"), ("instance", instance)):
            query = variables[name]["query"]
            query = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            if not match:
                failures.append(f"variable {name}: {query!r} is not "
                                "label_values(selector, label)")
                continue
            expr = f"count by ({match.group(2)}) " \
                   f"({substitute(match.group(1), 'tshared', instance)})"
            answer = prometheus.query(expr)
            found = [s["metric"].get(match.group(2)) for s in
                     answer.get("data", {}).get("result", [])]
            print(f"variable {name}: {expr} -> {found}")
            if want not in found:
                failures.append(f"variable {name}: {expr} found {found}, "
                                f"not {want!r}")

        queries = dashboard_queries(dashboard)
        for title, raw in queries:
            expr = substitute(raw, "tshared", instance)
            answer = prometheus.query(expr)
            if answer.get("status") != "success":
                failures.append(f"panel {title!r}: {expr}: "
                                f"{answer.get('error')}")
                continue
            result = answer["data"]["result"]
            print(f"panel {title!r}: {len(result)} series: {expr}")
            if not result:
                failures.append(f"panel {title!r}: no data for {expr}")

        # A few panels must show what the driver does, not just zeros.
        expectations = [
            (f'sum by (grpc_service, grpc_method) (grpc_server_started_total'
             f'{{{sel},grpc_type!="unary",grpc_method="Watch",'
             f'grpc_service="tshare.v1.Shares"}}) - sum by (grpc_service, '
             f'grpc_method) (grpc_server_handled_total{{{sel},'
             f'grpc_type!="unary",grpc_method="Watch",'
             f'grpc_service="tshare.v1.Shares"}})', 1, "open Shares.Watch"),
            (f"sum(tshare_watches{{{sel}}})", 1, "open watches"),
            (f"sum(tshare_bus_subscriptions{{{sel}}})", 1, "subscriptions"),
            # The driver pauses and resumes the compactor every round, so a
            # scrape may find it paused: both are counted, alive either way.
            (f'sum(tshare_workers{{{sel},state=~"running|paused"}})', 2,
             "live workers (compactor, e2e-worker)"),
            (f'sum(rate(grpc_server_handled_total{{{sel},'
             f'grpc_code="NotFound"}}[{RATE_INTERVAL}]))', None,
             "NotFound answers per second"),
            (f"sum(rate(tshare_bus_delivered_total{{{sel}}}"
             f"[{RATE_INTERVAL}]))", None, "bus deliveries per second"),
            # The server's pool runs the compactor and any bus delivery a
            # publisher hands over; Subscribe streams are fed on the
            # publishing thread, so the count, not its rate, is what must
            # show.
            (f"sum(tshare_pool_task_wait_seconds_count{{{sel}}})", None,
             "pool tasks started"),
        ]
        for expr, want, what in expectations:
            got = values(prometheus.query(expr)["data"]["result"])
            ok = got and (got[0] == want if want is not None else got[0] > 0)
            print(f"{what}: {expr} -> {got}")
            if not ok:
                failures.append(f"{what}: {expr} -> {got}, want "
                                f"{want if want is not None else '> 0'}")

        # The alert rules: each expression parses and runs; each rule is
        # evaluated by Prometheus without error.
        with open(os.path.join(deploy, "prometheus", "alerts.yml")) as f:
            rules = [r for g in yaml.safe_load(f)["groups"]
                     for r in g["rules"]]
        for rule in rules:
            answer = prometheus.query(rule["expr"])
            print(f"alert {rule['alert']}: {answer.get('status')}, "
                  f"{len(answer.get('data', {}).get('result', []))} series")
            if answer.get("status") != "success":
                failures.append(f"alert {rule['alert']}: "
                                f"{answer.get('error')}")
        deadline = time.monotonic() + 30
        while True:
            loaded = {r["name"]: r for g in
                      prometheus.api("rules")["data"]["groups"]
                      for r in g["rules"]}
            pending = [r["alert"] for r in rules
                       if r["alert"] not in loaded or
                       loaded[r["alert"]]["lastEvaluation"].startswith("0001")]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for rule in rules:
            state = loaded.get(rule["alert"])
            if state is None:
                failures.append(f"alert {rule['alert']} not loaded")
            elif state["health"] != "ok":
                failures.append(f"alert {rule['alert']}: health "
                                f"{state['health']}: {state.get('lastError')}")
        firing = [a for a in prometheus.api("alerts")["data"]["alerts"]
                  if a["labels"]["alertname"] != "TshareDown"]
        if firing:
            failures.append(f"alerts active on a healthy server: {firing}")

        # The driver ends its streams and checks that every call went as
        # expected; then tshared stops cleanly.
        driver.stdin.close()
        rest = driver.stdout.read().decode()
        print(f"driver: {rest.strip()}")
        if driver.wait(60) != 0:
            failures.append(f"traffic driver exited {driver.returncode}")
        code = stop(tshared)
        if code != 0:
            failures.append(f"tshared exited {code} on SIGTERM")

        # TshareDown's expression sees the target go.
        down = [r for r in rules if r["alert"] == "TshareDown"][0]["expr"]
        prometheus.wait_for(down, lambda r: len(r) == 1, 30,
                            "TshareDown's expression after tshared stopped")
        print("TshareDown expression fires once tshared is gone")

        if failures:
            for f in failures:
                print(f"FAIL: {f}", file=sys.stderr)
            return 1
        print(f"OK: {len(queries)} dashboard queries, {len(rules)} alert "
              "rules")
        return 0
    finally:
        for process in processes:
            stop(process, sig=9 if process.poll() is None else 15)
        if prometheus is not None:
            prometheus.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
