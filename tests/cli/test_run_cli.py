"""memlens run: the environment the traced command gets, and its service name."""

from __future__ import annotations

import os

from memlens.cli.run import child_environment, service_name


def test_child_environment_and_service_name() -> None:
    command = ["python", "-u", "svc/gateway.py", "--port", "1"]
    assert service_name(command) == "gateway"
    assert service_name(["python", "-m", "pkg.api"]) == "pkg.api"
    assert service_name(["/usr/bin/uvicorn", "app:app"]) == "uvicorn"
    env = child_environment(command, {"PYTHONPATH": "/mine"})
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert paths[0].endswith("_sitecustomize") and paths[-1] == "/mine"
    assert env["OTEL_SERVICE_NAME"] == "gateway"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    kept = child_environment(
        command,
        {"OTEL_SERVICE_NAME": "gw", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:1/v1/traces"},
    )
    assert kept["OTEL_SERVICE_NAME"] == "gw" and "OTEL_EXPORTER_OTLP_ENDPOINT" not in kept
    forced = child_environment(command, {}, service="api", endpoint="http://h:2", memory=False)
    assert (forced["OTEL_SERVICE_NAME"], forced["OTEL_EXPORTER_OTLP_ENDPOINT"]) == (
        "api",
        "http://h:2",
    )
    assert forced["MEMLENS_MEMORY"] == "0"
