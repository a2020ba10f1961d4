"""docker-compose.yml describes the production topology: check its services and their wiring
(no Docker engine runs on CI machines, so it is parsed, not started)."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_it_has_the_production_services(compose):
    assert set(compose["services"]) >= {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "beat"}


def test_it_wires_every_app_service_to_postgres_and_redis(compose):
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["PRODUCTION"] == "1"
        assert "redis" in compose["services"][name]["depends_on"]


def test_it_reserves_gpus_for_the_gpu_worker_on_a_hardware_queue(compose):
    gpu = compose["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    queue = gpu["command"][gpu["command"].index("-Q") + 1]
    assert queue.startswith("${GPU_QUEUE") or queue.startswith("gpu.")
    assert gpu["build"]["target"] == "gpu"


def test_housekeeping_has_its_own_worker_apart_from_training(compose):
    cpu = compose["services"]["worker-cpu"]["command"]
    assert cpu[cpu.index("-Q") + 1] == "cpu"
    default = compose["services"]["worker-default"]["command"]
    assert default[default.index("-Q") + 1] == "default" and default[default.index("--concurrency") + 1] == "1"
    assert "/data/runs" in {v.split(":")[1] for v in compose["services"]["worker-default"]["volumes"]}  # ingest writes there


def test_it_shares_run_and_model_volumes(compose):
    for name in ("web", "worker-cpu", "worker-gpu"):
        mounts = {v.split(":")[1] for v in compose["services"][name]["volumes"]}
        assert {"/data/models", "/data/runs"} <= mounts
    assert {"models", "runs"} <= set(compose["volumes"])


def test_it_builds_from_a_dockerfile_with_cpu_and_cuda_targets(compose):
    dockerfile = (REPO / compose["services"]["web"]["build"]["dockerfile"]).read_text()
    assert "AS cpu" in dockerfile and "AS gpu" in dockerfile and "nvidia/cuda" in dockerfile


# --- the schema, and production as shipped ------------------------------------------------------------
def schema_errors(document) -> list[str]:
    """Errors against the Compose Specification's JSON schema (tests/data/compose-spec.json: the
    schema docker-compose 1.29 ships, plus the top-level `name` the specification added later)."""
    import json

    import jsonschema

    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(document)]


def test_it_follows_the_compose_specification(compose):
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_key(compose):
    import copy

    broken = copy.deepcopy(compose)
    broken["services"]["web"]["helthcheck"] = broken["services"]["web"].pop("healthcheck")
    broken["services"]["proxy"]["ports"] = "80:80"

    errors = schema_errors(broken)
    assert any("helthcheck" in e for e in errors) and any(e.startswith("services/proxy/ports") for e in errors)


def test_only_the_tls_proxy_is_published_and_only_it_is_trusted(compose):
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    proxy_ip = services["proxy"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    import ipaddress

    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    trusted = services["web"]["environment"]["TRUSTED_PROXIES"].split(",")
    assert trusted == [proxy_ip, "127.0.0.1"]
    caddyfile = (REPO / "docker" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile and "./docker/Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]


def test_the_web_healthcheck_is_a_script_the_image_ships(compose):
    check = compose["services"]["web"]["healthcheck"]["test"]
    assert check == ["CMD", "python", "docker/healthcheck.py"]
    assert "COPY docker/healthcheck.py docker/healthcheck.py" in (REPO / "docker" / "Dockerfile").read_text()
