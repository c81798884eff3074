#!/usr/bin/python3
"""Checks of deploy/ that need no Docker engine, Kubernetes or Grafana server.

Static: every YAML and JSON file parses; docker-compose.yml, the Kubernetes
manifests and the Grafana provisioning reference only files that exist and
agree with each other (names, ports, labels, mount paths); the Dockerfile's
build stage runs what scripts/serve.sh runs (TSHARE_BUILD_PACKAGES of
scripts/lib.sh, the release preset) and the files it copies are enough to
configure that preset; its runtime packages hold every library tshared links;
the PrometheusRule equals alerts.yml; alerts_test.yml tests each alert firing
and not firing; the dashboard has its job/instance variables and filters every
query by them; docs/operations.md documents every metric the dashboard and the
alerts use; the systemd unit passes `systemd-analyze verify` and scores OK in
`systemd-analyze security`.

Runtime (the real tshared): every flag that the deployment files pass exists
(`tshared --help`); tshared starts with the Kubernetes ConfigMap's flag file;
deploy/docker/health_check.py (the image's HEALTHCHECK) reports SERVING for the
Kubernetes probes' services and fails for an unknown service and a closed port.

Usage: deploy_files_test.py --root DIR --tshared BIN
"""

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

from e2e_lib import free_port, start_tshared, stop

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def parse_everything(deploy):
    for path in sorted(glob.glob(os.path.join(deploy, "**", "*.y*ml"),
                                 recursive=True)):
        try:
            load_yaml_all(path)
        except yaml.YAMLError as error:
            failures.append(f"{path} is not YAML: {error}")
    for path in sorted(glob.glob(os.path.join(deploy, "**", "*.json"),
                                 recursive=True)):
        try:
            with open(path) as f:
                json.load(f)
        except ValueError as error:
            failures.append(f"{path} is not JSON: {error}")


def flags_of(args):
    """The --flag names in a list of arguments."""
    return [re.match(r"--([a-z_]+)", a).group(1) for a in args
            if re.match(r"--[a-z_]+", a)]


def check_compose(deploy, used_flags):
    path = os.path.join(deploy, "docker-compose.yml")
    base = os.path.dirname(path)
    compose = load_yaml_all(path)[0]
    services = compose["services"]
    check(set(services) == {"tshared", "prometheus", "grafana"},
          f"compose services {sorted(services)}")
    build = services["tshared"]["build"]
    context = os.path.normpath(os.path.join(base, build["context"]))
    check(os.path.isfile(os.path.join(context, build["dockerfile"])),
          f"compose: {build['dockerfile']} not found in {context}")
    used_flags += flags_of(services["tshared"]["command"])
    metrics_port = None
    for arg in services["tshared"]["command"]:
        if arg.startswith("--metrics_listen="):
            metrics_port = arg.rsplit(":", 1)[1]
    mounts = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                check(os.path.exists(os.path.join(base, source)),
                      f"compose {name}: {source} does not exist")
                mounts[(name, target)] = os.path.normpath(
                    os.path.join(base, source))
            else:
                check(source in compose.get("volumes", {}),
                      f"compose {name}: volume {source} not declared")
    # Prometheus: its config and the rule files the config names.
    prom_config = mounts.get(("prometheus", "/etc/prometheus/prometheus.yml"))
    if check(prom_config, "compose: prometheus.yml not mounted"):
        config = load_yaml_all(prom_config)[0]
        for rule_file in config["rule_files"]:
            check(("prometheus", f"/etc/prometheus/{rule_file}") in mounts,
                  f"compose: rule file {rule_file} not mounted")
        targets = [t for j in config["scrape_configs"]
                   if j["job_name"] == "tshared"
                   for s in j["static_configs"] for t in s["targets"]]
        check(targets == [f"tshared:{metrics_port}"],
              f"prometheus.yml targets {targets}, compose serves metrics on "
              f"tshared:{metrics_port}")
    # Grafana: provisioning folders, and the dashboard where the provider
    # looks for it.
    for kind in ("datasources", "dashboards"):
        check(("grafana", f"/etc/grafana/provisioning/{kind}") in mounts,
              f"compose: grafana provisioning/{kind} not mounted")
    provider = load_yaml_all(os.path.join(
        deploy, "grafana", "provisioning", "dashboards", "tshare.yml"))[0]
    folder = provider["providers"][0]["options"]["path"]
    dashboards = [t for (n, t) in mounts if n == "grafana" and
                  t.startswith(folder + "/") and t.endswith(".json")]
    check(dashboards, f"compose: no dashboard mounted under {folder}")
    datasource = load_yaml_all(os.path.join(
        deploy, "grafana", "provisioning", "datasources",
        "prometheus.yml"))[0]["datasources"][0]
    check(datasource["type"] == "prometheus" and
          "//prometheus:" in datasource["url"],
          f"grafana datasource {datasource}")
    return services["tshared"]["image"]


def check_dockerfile(root, tshared, used_flags):
    path = os.path.join(root, "deploy", "docker", "Dockerfile")
    with open(path) as f:
        text = f.read()
    # Instructions with their continuation lines joined.
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instructions = [l.strip() for l in lines
                    if l.strip() and not l.strip().startswith("#")]
    froms = [i for i in instructions if i.startswith("FROM ")]
    check(len(froms) == 2 and all(f.split()[1] == "debian:bookworm"
                                  for f in froms),
          f"Dockerfile stages: {froms}")
    stage = 0
    build_runs, runtime_runs, copies = [], [], []
    for i in instructions:
        if i.startswith("FROM "):
            stage += 1
        elif i.startswith("RUN "):
            (build_runs if stage == 1 else runtime_runs).append(i[4:])
        elif i.startswith("COPY "):
            copies.append((stage, i.split()[1:]))
    build = " && ".join(build_runs)

    # The build stage does what scripts/serve.sh does.
    with open(os.path.join(root, "scripts", "serve.sh")) as f:
        serve = f.read()
    for step in ('source scripts/lib.sh',
                 'tshare_apt_install "${TSHARE_BUILD_PACKAGES[@]}"',
                 "cmake --preset release",
                 "cmake --build --preset release --target tshared"):
        check(step in build, f"Dockerfile build stage lacks {step!r}")
        check(step.replace("scripts/", "") in serve or step in serve or
              step.startswith("source"),
              f"scripts/serve.sh no longer runs {step!r}")
    check('tshare_apt_install "${TSHARE_BUILD_PACKAGES[@]}"' in serve,
          "scripts/serve.sh does not install TSHARE_BUILD_PACKAGES")
    packages = subprocess.run(
        ["bash", "-c", 'source "$1/scripts/lib.sh" && '
         'echo "${TSHARE_BUILD_PACKAGES[@]}"', "_", root],
        capture_output=True, text=True, check=True).stdout.split()
    check(len(packages) > 5 and "prometheus-cpp-dev" in packages,
          f"TSHARE_BUILD_PACKAGES: {packages}")

    # The build stage's COPY sources exist and are enough to configure the
    # release preset as the Dockerfile does.
    context = tempfile.mkdtemp(prefix="tshare-docker-context-")
    try:
        for stage_no, args in copies:
            if args[0].startswith("--from="):
                continue
            sources, target = args[:-1], args[-1]
            for source in sources:
                full = os.path.join(root, source)
                if not check(os.path.exists(full),
                             f"Dockerfile COPY {source}: not found"):
                    continue
                if stage_no != 1:
                    continue
                # Relative to WORKDIR /src, the build stage's context here.
                if target.endswith("/"):
                    dest = os.path.join(context, target,
                                        os.path.basename(source))
                else:
                    dest = os.path.join(context, target)
                os.makedirs(os.path.dirname(os.path.normpath(dest)),
                            exist_ok=True)
                if os.path.isdir(full):
                    shutil.copytree(full, dest, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns(
                                        "build*", "node_modules"))
                else:
                    shutil.copy(full, dest)
        preset = re.search(r"cmake --preset release[^&]*", build).group(0)
        configure = subprocess.run(
            ["bash", "-c", f"cd {shlex.quote(context)} && {preset}"],
            capture_output=True, text=True)
        check(configure.returncode == 0,
              f"the Dockerfile's copied files do not configure: "
              f"{configure.stdout[-2000:]}{configure.stderr[-2000:]}")
        binary = re.search(r"--from=build (\S+)", text).group(1)
        check(binary == "/src/build/release/service/tshared",
              f"the runtime stage copies {binary}")
        check(os.path.exists(os.path.join(context, "build", "release",
                                          "build.ninja")),
              "the release preset did not generate build/release")
    finally:
        shutil.rmtree(context, ignore_errors=True)

    # Runtime: the packages of every library tshared links directly (apt
    # brings their own dependencies). libc, libstdc++ and libgcc are in the
    # base image.
    runtime = " ".join(runtime_runs)
    install = re.search(r"apt-get install[^&]*", runtime)
    listed = set(install.group(0).split()[2:]) if install else set()
    needed = subprocess.run(["readelf", "-d", tshared], capture_output=True,
                            text=True, check=True).stdout
    libraries = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", needed)
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    libraries = [l for l in libraries
                 if not re.match(r"lib(asan|ubsan|tsan)", l)]  # sanitizers
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True,
                           text=True, check=True).stdout
    paths = {}
    for library in libraries:
        match = re.search(rf"^\s*{re.escape(library)} \(.*\) => (\S+)$",
                          cache, re.M)
        if not check(match, f"tshared needs {library}, unknown to ldconfig"):
            continue
        # dpkg knows a file by the path its package installed it at, which
        # on a merged-/usr system may be the /lib or the /usr/lib spelling.
        path = match.group(1)
        candidates = {path, os.path.realpath(path)}
        for c in list(candidates):
            candidates.add(c[4:] if c.startswith("/usr/") else "/usr" + c)
        paths[library] = candidates
    found = subprocess.run(
        ["dpkg", "-S"] + sorted(set().union(*paths.values())),
        capture_output=True, text=True).stdout
    owners = {}
    for line in found.splitlines():
        package, _, file = line.partition(": ")
        owners[file.strip()] = package.split(":")[0]
    for library, candidates in sorted(paths.items()):
        owner = next((owners[c] for c in sorted(candidates) if c in owners),
                     "")
        check(owner in listed or owner in base,
              f"tshared needs {library} from package {owner or '?'}, not "
              f"installed by the Dockerfile's runtime stage ({sorted(listed)})")
    for package in listed - {"-y", "--no-install-recommends"}:
        known = subprocess.run(["apt-cache", "show", package],
                               capture_output=True).returncode == 0
        check(known, f"Dockerfile runtime package {package} is unknown to apt")

    # Non-root user, health check with the probe that is copied in, the
    # default command's flags.
    users = [i.split()[1] for i in instructions if i.startswith("USER ")]
    check(users and users[-1].split(":")[0] not in ("0", "root"),
          f"runtime USER {users}")
    health = [i for i in instructions if i.startswith("HEALTHCHECK ")]
    check(health and "health_check.py" in health[0],
          f"HEALTHCHECK {health}")
    check(any("deploy/docker/health_check.py" in " ".join(a)
              for s, a in copies if s == 2),
          "the runtime stage does not copy deploy/docker/health_check.py")
    cmd = [i for i in instructions if i.startswith("CMD ")]
    if check(cmd, "Dockerfile has no CMD"):
        used_flags += flags_of(json.loads(cmd[-1][4:]))
    ignore = os.path.join(root, "deploy", "docker", "Dockerfile.dockerignore")
    if check(os.path.isfile(ignore), "Dockerfile.dockerignore missing"):
        with open(ignore) as f:
            check("build*/" in f.read().split(),
                  "Dockerfile.dockerignore does not exclude build trees")


def check_kubernetes(deploy, image, used_flags):
    docs = {}
    for path in glob.glob(os.path.join(deploy, "k8s", "*.yaml")):
        for doc in load_yaml_all(path):
            docs[doc["kind"]] = doc
    check(set(docs) == {"Deployment", "Service", "ConfigMap",
                        "ServiceMonitor", "PrometheusRule"},
          f"k8s kinds {sorted(docs)}")
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    check(selector.items() <= pod_labels.items(),
          "Deployment selector does not match its pods")
    check(service["spec"]["selector"].items() <= pod_labels.items(),
          "Service selector does not match the pods")
    container = pod["spec"]["containers"][0]
    check(container["image"] == image,
          f"k8s image {container['image']} != compose image {image}")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        check(port["targetPort"] in ports,
              f"Service port {port['name']} targets unknown "
              f"{port['targetPort']}")
    monitor = docs["ServiceMonitor"]
    check(monitor["spec"]["selector"]["matchLabels"].items() <=
          service["metadata"]["labels"].items(),
          "ServiceMonitor does not select the Service")
    check(service["metadata"]["name"] == "tshared",
          "the Service must be named tshared: the job label of the alerts")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        check(endpoint["port"] in service_ports,
              f"ServiceMonitor port {endpoint['port']} not in the Service")
    probes = {}
    for kind in ("livenessProbe", "readinessProbe"):
        probe = container.get(kind, {}).get("grpc")
        if check(probe, f"{kind} is not a grpc probe"):
            check(probe["port"] == ports["grpc"],
                  f"{kind} port {probe['port']} != grpc port")
            probes[kind] = probe.get("service", "")
    # The flag file: mounted from the ConfigMap where --flagfile reads it.
    configmap = docs["ConfigMap"]
    flagfile = [a for a in container["args"] if a.startswith("--flagfile=")]
    flag_text = None
    if check(len(flagfile) == 1, "container args lack --flagfile"):
        path = flagfile[0].split("=", 1)[1]
        mount = [m for m in container["volumeMounts"]
                 if path.startswith(m["mountPath"] + "/")]
        volume = [v for v in pod["spec"]["volumes"]
                  if mount and v["name"] == mount[0]["name"]]
        key = os.path.basename(path)
        check(volume and volume[0]["configMap"]["name"] ==
              configmap["metadata"]["name"] and key in configmap["data"],
              f"--flagfile={path} is not the ConfigMap's {key}")
        flag_text = configmap["data"].get(key)
        used_flags += flags_of(flag_text.split())
    with open(os.path.join(deploy, "prometheus", "alerts.yml")) as f:
        alerts = yaml.safe_load(f)
    check(docs["PrometheusRule"]["spec"]["groups"] == alerts["groups"],
          "k8s/prometheusrule.yaml differs from prometheus/alerts.yml")
    return probes, flag_text


def check_alert_tests(deploy):
    with open(os.path.join(deploy, "prometheus", "alerts.yml")) as f:
        names = [r["alert"] for g in yaml.safe_load(f)["groups"]
                 for r in g["rules"]]
    with open(os.path.join(deploy, "prometheus", "alerts_test.yml")) as f:
        tests = yaml.safe_load(f)["tests"]
    firing, quiet = set(), set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(
                case["alertname"])
    for name in names:
        check(name in firing, f"alerts_test.yml never sees {name} fire")
        check(name in quiet, f"alerts_test.yml never sees {name} quiet")
    return names


def metric_names(expr):
    """Metric names in a PromQL expression (identifiers before { or [)."""
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*\{", expr))
    return {n for n in names if n not in ("by", "without", "on", "ignoring")}


def check_dashboard_and_docs(root, alert_names):
    deploy = os.path.join(root, "deploy")
    with open(os.path.join(deploy, "grafana", "tshare.json")) as f:
        dashboard = json.load(f)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    check({"job", "instance"} <= variables,
          f"dashboard variables {sorted(variables)}")
    exprs, ids = [], []

    def walk(panels):
        for panel in panels:
            ids.append(panel["id"])
            walk(panel.get("panels", []))
            if panel["type"] == "row":
                continue
            targets = [t["expr"] for t in panel.get("targets", [])
                       if t.get("expr")]
            check(targets, f"panel {panel['title']!r} has no query")
            exprs.extend(targets)

    walk(dashboard["panels"])
    check(len(ids) == len(set(ids)), "dashboard panel ids repeat")
    for expr in exprs:
        check('job=~"$job"' in expr and 'instance=~"$instance"' in expr,
              f"dashboard query not filtered by $job and $instance: {expr}")
    with open(os.path.join(deploy, "prometheus", "alerts.yml")) as f:
        alert_exprs = [r["expr"] for g in yaml.safe_load(f)["groups"]
                       for r in g["rules"]]
    used = set()
    for expr in exprs + alert_exprs:
        used |= metric_names(expr)
    docs_path = os.path.join(root, "docs", "operations.md")
    if check(os.path.isfile(docs_path), "docs/operations.md missing"):
        with open(docs_path) as f:
            text = f.read()
        monitoring = text[text.find("## Monitoring"):]
        check("## Monitoring" in text, "docs/operations.md has no Monitoring")
        for name in sorted(used):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            check(re.search(rf"`{base}[`{{]", monitoring),
                  f"docs/operations.md does not document {base}")
        for name in alert_names:
            check(name in monitoring,
                  f"docs/operations.md does not explain alert {name}")


def check_systemd(root, tshared, used_flags):
    unit = os.path.join(root, "deploy", "systemd", "tshared.service")
    with open(unit) as f:
        text = f.read()
    for directive in ("DynamicUser=yes", "ProtectSystem=strict",
                      "NoNewPrivileges=yes", "PrivateTmp=yes",
                      "ProtectHome=yes", "CapabilityBoundingSet="):
        check(re.search(rf"^{re.escape(directive)}\s*$", text, re.M),
              f"systemd unit lacks {directive}")
    exec_start = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
    used_flags += flags_of(exec_start.group(2).split())
    analyze = shutil.which("systemd-analyze")
    if not check(analyze, "systemd-analyze missing (apt-get install systemd)"):
        return
    tmp = tempfile.mkdtemp(prefix="tshare-systemd-")
    try:
        copy = os.path.join(tmp, "tshared.service")
        with open(copy, "w") as f:
            f.write(text.replace(f"ExecStart={exec_start.group(1)}",
                                 f"ExecStart={os.path.realpath(tshared)}"))
        verify = subprocess.run([analyze, "verify", copy],
                                capture_output=True, text=True, timeout=60)
        check(verify.returncode == 0 and not verify.stdout.strip() and
              not verify.stderr.strip(),
              f"systemd-analyze verify: {verify.stdout}{verify.stderr}")
        security = subprocess.run(
            [analyze, "security", "--offline=yes", copy],
            capture_output=True, text=True, timeout=60)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)",
                          security.stdout)
        check(level and float(level.group(1)) <= 2.0,
              f"systemd-analyze security: {level.group(0) if level else security.stderr}")
        print(f"systemd: {level.group(0) if level else '?'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_runtime(root, tshared, used_flags, probes, flag_text):
    help_text = subprocess.run([tshared, "--helpfull"], capture_output=True,
                               text=True, timeout=30)
    known = set(re.findall(r"-{1,2}([a-z_]+) \(", help_text.stdout +
                           help_text.stderr))
    for flag in sorted(set(used_flags)):
        check(flag == "flagfile" or flag in known,
              f"deployment files pass --{flag}, which tshared does not know")

    # The interpreter this test runs with: /usr/bin/python3, whose
    # python3-grpcio the probe needs.
    probe = [sys.executable,
             os.path.join(root, "deploy", "docker", "health_check.py")]
    tmp = tempfile.mkdtemp(prefix="tshare-flags-")
    process = None
    try:
        flagfile = os.path.join(tmp, "tshared.flags")
        with open(flagfile, "w") as f:
            f.write(flag_text or "")
        # The ConfigMap's flags, then this machine's free ports.
        process, address = start_tshared(
            tshared, [f"--flagfile={flagfile}", "--listen=127.0.0.1:0",
                      f"--metrics_listen=127.0.0.1:{free_port()}"])
        for kind, service in sorted(probes.items()):
            result = subprocess.run(probe + [address, service],
                                    capture_output=True, text=True,
                                    timeout=30)
            check(result.returncode == 0,
                  f"{kind} ({service!r}) is not SERVING: {result.stdout}")
        result = subprocess.run(probe + [address, "no.such.Service"],
                                capture_output=True, text=True, timeout=30)
        check(result.returncode == 1 and "NOT_FOUND" in result.stdout,
              f"health probe of an unknown service: {result.returncode} "
              f"{result.stdout}")
        code = stop(process)
        check(code == 0, f"tshared with the ConfigMap flags exited {code}")
        result = subprocess.run(probe + [address], capture_output=True,
                                text=True, timeout=30)
        check(result.returncode == 1,
              f"health probe of a stopped server: {result.returncode} "
              f"{result.stdout}")
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--tshared", required=True)
    args = parser.parse_args()
    deploy = os.path.join(args.root, "deploy")
    used_flags = []
    parse_everything(deploy)
    if failures:  # nothing below can read a file that does not parse
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
        return 1
    def run(step, *step_args):
        """Runs one group of checks; an error in it is one more failure."""
        try:
            return step(*step_args)
        except (Exception, SystemExit) as error:  # pylint: disable=broad-except
            failures.append(f"{step.__name__}: {type(error).__name__}: "
                            f"{error}")
            return None

    image = run(check_compose, deploy, used_flags)
    run(check_dockerfile, args.root, args.tshared, used_flags)
    probes, flag_text = run(check_kubernetes, deploy, image,
                            used_flags) or ({}, None)
    alert_names = run(check_alert_tests, deploy) or []
    run(check_dashboard_and_docs, args.root, alert_names)
    run(check_systemd, args.root, args.tshared, used_flags)
    run(check_runtime, args.root, args.tshared, used_flags, probes,
        flag_text)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print(f"{len(failures)} failures; flags checked: "
          f"{sorted(set(used_flags))}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
