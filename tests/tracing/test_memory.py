"""memlens.tracing.memory: the entry point a process reports, the interval setting, backing
off from endpoints that refuse metrics, and real ``memlens run`` processes whose memory
metrics reach the collector's store."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from memlens.tracing.memory import (
    DEFAULT_INTERVAL_S,
    _BackingOffExporter,
    _vm_hwm_bytes,
    entry_point,
    interval_from_env,
)
from memlens.tracing.store import TraceStore
from tests.support.collector_process import RunningCollector, stop_collector

SERVICE = textwrap.dedent(
    """
    import os, sys, time
    blob = bytearray(96 * 1024 * 1024)  # touched: zero-filled pages are resident
    print(os.getpid(), flush=True)
    time.sleep(1.0)
    del blob
    time.sleep(0.6)
    """
)


def test_entry_point_of_a_script_a_module_a_package_and_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "svc.py").write_text("")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("raise SystemExit('imported')")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "api.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    python = sys.executable
    assert entry_point(["svc.py", "--port", "1"], [python, "svc.py"]) == str(tmp_path / "svc.py")
    # from sitecustomize, argv[0] is still "-m"; the package must not be imported (run)
    assert entry_point(["-m", "x"], [python, "-u", "-m", "pkg.sub.api", "x"]) == str(
        tmp_path / "pkg" / "sub" / "api.py"
    )
    assert entry_point(["-m"], [python, "-mpkg"]) == str(tmp_path / "pkg" / "__main__.py")
    assert entry_point(["-m"], [python, "-m", "no_such_module_here"]) is None
    assert entry_point(["-m"], [python, "-m", "svc.inner"]) is None  # svc is not a package
    assert entry_point(["-c"], [python, "-c", "pass"]) is None
    assert entry_point([""], [python]) is None
    assert entry_point(["missing.py"], [python, "missing.py"]) is None


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "nan", "inf", ""])
def test_bad_interval_falls_back_to_the_default_with_a_warning(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert interval_from_env({"MEMLENS_MEMORY_INTERVAL_S": raw}) == DEFAULT_INTERVAL_S
    assert "MEMLENS_MEMORY_INTERVAL_S" in caplog.text


def test_interval_from_env() -> None:
    assert interval_from_env({}) == DEFAULT_INTERVAL_S
    assert interval_from_env({"MEMLENS_MEMORY_INTERVAL_S": "0.25"}) == 0.25


def _run(collector: RunningCollector, cwd: Path, *command: str) -> int:
    env = {**os.environ, "MEMLENS_MEMORY_INTERVAL_S": "0.2"}
    result = subprocess.run(
        [sys.executable, "-m", "memlens", "run", "--endpoint", collector.endpoint, "--", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[0])


def test_memlens_run_samples_memory_into_the_store(
    collector: RunningCollector, tmp_path: Path
) -> None:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "worker.py").write_text(SERVICE)
    script_pid = _run(collector, tmp_path, sys.executable, "svc.py")
    module_pid = _run(collector, tmp_path, sys.executable, "-m", "pkg.worker")
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        peaks = store.memory_peaks()
        latest = store.latest_received_ns()
    assert [(p.service, p.pid, p.entry_point) for p in peaks] == [
        ("pkg.worker", module_pid, str(tmp_path / "pkg" / "worker.py")),
        ("svc", script_pid, str(tmp_path / "svc.py")),
    ]
    for peak in peaks:
        # the 96 MiB buffer was resident at some reading, and freed by the last one
        assert peak.peak_rss_bytes > 96 * 1024 * 1024
        assert peak.latest_rss_bytes < peak.peak_rss_bytes - 48 * 1024 * 1024
        assert 0 < peak.latest_ns <= latest


SPIKE = textwrap.dedent(
    """
    import os, time
    time.sleep(0.3)
    spike = bytearray(256 * 1024 * 1024)  # touched, then freed long before any reading
    del spike
    print(os.getpid(), flush=True)
    time.sleep(0.5)
    """
)
"""A service whose memory spikes by 256 MiB for a few milliseconds, well inside one
sampling interval."""


def test_a_spike_shorter_than_the_interval_is_caught_by_the_os_peak(
    collector: RunningCollector, tmp_path: Path
) -> None:
    # regression: the peak was the largest sample, and a spike between samples was missed
    (tmp_path / "spike.py").write_text(SPIKE)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "memlens", "run", "--memory-interval", "5"),
            *("--endpoint", collector.endpoint, "--", sys.executable, "spike.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[0])
    stop_collector(collector)
    with sqlite3.connect(collector.db) as conn:
        (sampled, os_peak) = conn.execute(
            "SELECT MAX(rss_bytes), MAX(peak_rss_bytes) FROM memory_samples WHERE pid = ?",
            (pid,),
        ).fetchone()
    with TraceStore(collector.db, readonly=True) as store:
        (peak,) = store.memory_peaks()
    # the readings (the one at exit) never saw the spike; the OS's high-water mark did
    assert sampled < os_peak - 200 * 1024 * 1024
    assert peak.peak_rss_bytes == os_peak > 256 * 1024 * 1024
    assert peak.latest_rss_bytes == sampled


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n", 2048 * 1024),
        ("Name:\tpython\n", None),
    ],
)
def test_vm_hwm_is_read_in_kib(status: str, expected: int | None) -> None:
    assert _vm_hwm_bytes(status) == expected


def test_no_memory_sends_no_metrics(collector: RunningCollector, tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text(SERVICE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "memlens",
            "run",
            "--no-memory",
            "--endpoint",
            collector.endpoint,
            "--",
            sys.executable,
            "svc.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "MEMLENS_MEMORY_INTERVAL_S": "0.2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        assert store.memory_peaks() == []


@pytest.mark.parametrize("interval", ["0", "-2", "nan", "inf"])
def test_memlens_run_rejects_a_bad_memory_interval(interval: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "memlens",
            "run",
            "--memory-interval",
            interval,
            "--",
            sys.executable,
            "-c",
            "pass",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--memory-interval" in result.stderr


CUDA_SERVICE = textwrap.dedent(
    """
    import os, time
    import torch
    block = torch.empty(64 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    print(os.getpid(), flush=True)
    time.sleep(1.0)
    """
)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
def test_cuda_allocator_bytes_are_sampled_once_cuda_is_initialised(
    collector: RunningCollector, tmp_path: Path
) -> None:
    (tmp_path / "gpu.py").write_text(CUDA_SERVICE)
    (tmp_path / "cpu.py").write_text(
        "import os, time, torch\nprint(os.getpid())\ntime.sleep(0.8)\n"
    )
    gpu_pid = _run(collector, tmp_path, sys.executable, "gpu.py")
    cpu_pid = _run(collector, tmp_path, sys.executable, "cpu.py")
    stop_collector(collector)
    with sqlite3.connect(collector.db) as conn:
        rows = conn.execute(
            "SELECT pid, MAX(cuda_allocated_bytes), MAX(cuda_reserved_bytes), COUNT(*) "
            "FROM memory_samples GROUP BY pid"
        ).fetchall()
    by_pid = {pid: (allocated, reserved, n) for pid, allocated, reserved, n in rows}
    allocated, reserved, samples = by_pid[gpu_pid]
    assert samples >= 2 and allocated >= 64 * 1024 * 1024 and reserved >= allocated
    # torch imported but CUDA never initialised: no CUDA columns, and no CUDA context made
    assert by_pid[cpu_pid][:2] == (None, None)


class _Scripted(MetricExporter):
    """Answers exports with the given results, in turn, and counts them."""

    def __init__(self, results: list[MetricExportResult]) -> None:
        super().__init__()
        self.results = results
        self.calls = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.calls += 1
        return self.results.pop(0)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


def test_failed_exports_back_off_and_recover() -> None:
    ok, failed = MetricExportResult.SUCCESS, MetricExportResult.FAILURE
    inner = _Scripted([failed, failed, failed, ok, ok])
    exporter = _BackingOffExporter(inner)
    data = MetricsData(resource_metrics=[])
    tried = []
    for _ in range(12):
        before = inner.calls
        exporter.export(data)
        tried.append(inner.calls > before)
    # fail, skip 1, fail, skip 2, fail, skip 4, then success resets: every reading goes out
    assert tried == [True, False, True, False, False, True] + [False] * 4 + [True, True]


def test_an_endpoint_without_metrics_is_not_asked_every_interval(tmp_path: Path) -> None:
    """Regression: a Jaeger as the OTLP endpoint got a metrics request (and the service's
    stderr an error) every second."""
    requests: list[str] = []

    class NoMetrics(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoMetrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "svc.py").write_text("import time\nprint(0)\ntime.sleep(2.5)\n")
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "memlens", "run", "--memory-interval", "0.05"),
                *("--endpoint", f"http://127.0.0.1:{server.server_address[1]}"),
                *("--", sys.executable, "svc.py"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    tries = requests.count("/v1/metrics")
    assert 2 <= tries <= 8, tries  # ~50 readings in 2.5 s
