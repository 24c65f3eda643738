"""Language-server latency: the real memlens server through a real LSP client over stdio,
with `ruff server` timed through the same client on the same file as a yardstick.

On a generated 2,000-line model file it measures: start-up to the first inlay hints
(median and max of several starts); p50/p95 of warm inlay hints, hover, code lens, code
actions and pulled diagnostics (also as VS Code pulls them: naming the previous result
id); how long after the last of a burst of keystrokes the pushed diagnostics arrive
(debounced, stale versions dropped); the server's RSS; and whether the server process
imported torch.

Over every ``modeling_*.py`` file of the installed transformers, opened one after another
in one server: the first inlay hints of each newly opened file and its code lenses
(p50/p95/max and the slowest files), the lenses that claim ``≥ 0``, the server's RSS after
them and its longest garbage-collector pause (``memlens.serverStatus``); as a yardstick,
the same files parsed by ``ast.parse`` in this process (what any Python analysis of a newly
opened file pays before it can answer). The CPU (model, flags) and the load average are
recorded: on a shared machine, compare figures of one run with each other.

Goals: start-up ≤ 0.8 s; on the 2,000-line file warm inlay hints p95 ≤ 5 ms and pulled
diagnostics p50 no slower than ruff's; diagnostics within 300 ms of the last keystroke;
over the transformers files first hints p95 < 50 ms and max < 250 ms, zero lenses that
claim ``≥ 0``, no GC pause over 50 ms; RSS < 120 MB; no torch in the server.

Run: .venv/bin/python benchmarks/lsp_latency.py [--modeling-files N]
(writes benchmarks/results/lsp_latency.json; `make bench` runs it with the other
benchmarks; ``--modeling-files N`` takes the first N transformers files only)
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import typing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.protocol import default_converter
from rich.console import Console
from rich.table import Table

LINES = 2000
SAMPLES = 60
STARTS = 5
SCREEN = types.Range(types.Position(0, 0), types.Position(80, 0))
"""What an editor shows of a newly opened file: the range its first hint request asks."""
KEYSTROKES = 15
KEYSTROKE_GAP_S = 0.03
RESULTS = Path(__file__).parent / "results" / "lsp_latency.json"
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "HF_HUB_OFFLINE": "1",
    "MEMLENS_OFFLINE": "1",
    "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="memlens-bench-pyc-"),
}
"""The servers run as installed: with bytecode caches (kept out of the source tree), which
the first start writes."""

_BLOCK = """\
class Block{i}(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = nn.Linear(HIDDEN, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.mlp = nn.ModuleList([nn.Linear(HIDDEN, 4 * HIDDEN) for _ in range(2)])


def load_{i}():
    model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.float32)
    return model.generate(ids, max_new_tokens=128)

"""


def generate_source(lines: int = LINES) -> str:
    """A model file of about ``lines`` lines: many modules and model loads."""
    header = (
        "import torch\nimport torch.nn as nn\nfrom transformers import "
        "AutoModelForCausalLM\n\nHIDDEN = 4096\n\n"
    )
    blocks: list[str] = []
    i = 0
    while (header + "".join(blocks)).count("\n") < lines:
        blocks.append(_BLOCK.format(i=i))
        i += 1
    return header + "".join(blocks)


def capabilities(pull_diagnostics: bool) -> types.ClientCapabilities:
    """What VS Code declares, with or without pull diagnostics."""
    text = types.TextDocumentClientCapabilities(
        inlay_hint=types.InlayHintClientCapabilities(),
        hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(version_support=True),
        diagnostic=types.DiagnosticClientCapabilities() if pull_diagnostics else None,
    )
    return types.ClientCapabilities(
        text_document=text, window=types.WindowClientCapabilities(work_done_progress=True)
    )


def _lenient_converter() -> Any:
    """pygls's converter, plus a pass-through for the notebook-filter union that ruff's
    initialize result uses and cattrs cannot structure (lsprotocol 2025.0.0)."""
    converter = default_converter()

    def is_notebook_filter(kind: Any) -> bool:
        return typing.get_origin(kind) is typing.Union and (
            types.NotebookDocumentFilterNotebookType in typing.get_args(kind)
        )

    converter.register_structure_hook_func(is_notebook_filter, lambda value, _: value)
    return converter


class Session:
    """One language server process and the client talking to it."""

    def __init__(self, command: list[str], pull_diagnostics: bool) -> None:
        self.command = command
        self.pull = pull_diagnostics
        self.client = LanguageClient("memlens-bench", "1", converter_factory=_lenient_converter)
        self.published: dict[int | None, float] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.published.setdefault(params.version, time.perf_counter())

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

    async def start(self, root: Path) -> None:
        await self.client.start_io(*self.command, env=ENV)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=capabilities(self.pull),
                root_uri=root.as_uri(),
                initialization_options={"memlens": {"memoryBudget": "24GiB"}},
            )
        )
        self.client.initialized(types.InitializedParams())

    @property
    def pid(self) -> int:
        server = self.client._server  # the subprocess pygls started
        assert server is not None
        return int(server.pid)

    async def status(self) -> dict[str, Any]:
        """``memlens.serverStatus``."""
        status: dict[str, Any] = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="memlens.serverStatus")
        )
        return status

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri))
        )

    def open(self, uri: str, text: str) -> None:
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


async def timed(samples: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Milliseconds per call, ``samples`` calls in sequence."""
    times = []
    for i in range(samples):
        start = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds."""
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max_ms": ordered[-1],
    }


async def start_to_first_hints(root: Path, uri: str, text: str) -> tuple[Session, float]:
    """A started server with ``text`` open, and ms from launch to its first inlay hints."""
    doc = types.TextDocumentIdentifier(uri=uri)
    started = time.perf_counter()
    session = Session([sys.executable, "-m", "memlens.lsp_server"], pull_diagnostics=True)
    await session.start(root)
    session.open(uri, text)
    window = types.Range(types.Position(0, 0), types.Position(60, 0))
    while not await session.client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=doc, range=window)
    ):
        await asyncio.sleep(0.005)
    return session, (time.perf_counter() - started) * 1000


async def startup(root: Path, text: str) -> dict[str, float]:
    """Start-up to the first hints over ``STARTS`` starts, after one that fills the
    server's code cache as the first start after an install does."""
    uri = (root / "model.py").as_uri()
    times = []
    for _ in range(STARTS + 1):
        session, took = await start_to_first_hints(root, uri, text)
        times.append(took)
        await session.stop()
    return {"first_ms": times[0], **summary(times[1:])}


async def memlens_run(root: Path, text: str) -> dict[str, Any]:
    """Every memlens measurement on the generated file."""
    uri = (root / "model.py").as_uri()
    doc = types.TextDocumentIdentifier(uri=uri)
    session, _ = await start_to_first_hints(root, uri, text)
    lines = text.count("\n")

    def visible(i: int) -> types.Range:
        top = (i * 97) % (lines - 60)
        return types.Range(types.Position(top, 0), types.Position(top + 60, 0))

    client = session.client
    results = {
        "inlay_hints": await timed(
            SAMPLES,
            lambda i: client.text_document_inlay_hint_async(
                types.InlayHintParams(text_document=doc, range=visible(i))
            ),
        ),
        "hover": await timed(
            SAMPLES,
            lambda i: client.text_document_hover_async(
                types.HoverParams(
                    text_document=doc, position=types.Position(17 + 13 * (i % 100), 30)
                )
            ),
        ),
        "code_lens": await timed(
            SAMPLES,
            lambda i: client.text_document_code_lens_async(types.CodeLensParams(text_document=doc)),
        ),
        "code_action": await timed(
            SAMPLES,
            lambda i: client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=doc,
                    range=visible(i),
                    context=types.CodeActionContext(diagnostics=[]),
                )
            ),
        ),
        "diagnostics_pull": await timed(
            SAMPLES,
            lambda i: client.text_document_diagnostic_async(
                types.DocumentDiagnosticParams(text_document=doc)
            ),
        ),
        "diagnostics_pull_with_result_id": await pulls_naming_the_previous_result(client, doc),
    }
    rss = psutil.Process(session.pid).memory_info().rss
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.workerStatus")
    )
    await session.stop()
    push = await diagnostics_after_typing(root, text)
    return {
        "rss_bytes": rss,
        "server_imported_torch": status["server_imports_torch"],
        "requests": {k: summary(v) for k, v in results.items()},
        "diagnostics_after_last_keystroke_ms": push,
    }


async def pulls_naming_the_previous_result(
    client: LanguageClient, doc: types.TextDocumentIdentifier
) -> list[float]:
    """Pulled diagnostics as VS Code asks for them: with the last report's result id."""
    previous: str | None = None

    async def pull(i: int) -> None:
        nonlocal previous
        report = await client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=doc, previous_result_id=previous)
        )
        previous = report.result_id

    return await timed(SAMPLES, pull)


def cpu() -> dict[str, Any]:
    """The CPU the run had: model, flags, count, and the load average (other users')."""
    model, flags = "unknown", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.split()
    except OSError:
        pass
    return {"model": model, "flags": flags, "count": os.cpu_count(), "load": os.getloadavg()}


def parse_times(files: list[Path]) -> dict[str, float]:
    """Milliseconds ``ast.parse`` takes on each file (the floor of a first analysis)."""
    times = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        start = time.perf_counter()
        ast.parse(text)
        times[path.name] = (time.perf_counter() - start) * 1000
    return times


def modeling_files() -> list[Path]:
    """Every ``modeling_*.py`` of the installed transformers, by name."""
    import transformers

    models = Path(transformers.__file__).parent / "models"
    return sorted(models.glob("*/modeling_*.py"), key=lambda p: p.name)


async def modeling_run(files: list[Path]) -> dict[str, Any]:
    """Open each file in one server: its first inlay hints and its code lenses, then
    close it. The server's RSS and longest GC pause after all of them."""
    root = files[0].parents[2] if files else Path.cwd()
    session = Session([sys.executable, "-m", "memlens.lsp_server"], pull_diagnostics=True)
    await session.start(root)
    hints: dict[str, float] = {}
    lenses: dict[str, float] = {}
    zero_claims: list[str] = []
    for path in files:
        uri = path.as_uri()
        doc = types.TextDocumentIdentifier(uri=uri)
        session.open(uri, path.read_text(encoding="utf-8"))
        start = time.perf_counter()
        await session.client.text_document_inlay_hint_async(
            types.InlayHintParams(text_document=doc, range=SCREEN)
        )
        hints[path.name] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        found = await session.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=doc)
        )
        lenses[path.name] = (time.perf_counter() - start) * 1000
        zero_claims += [
            f"{path.name}:{lens.range.start.line + 1}"
            for lens in found or []
            if lens.command and lens.command.title.startswith("≥ 0 ")
        ]
        session.close(uri)
    status = await session.status()
    rss = psutil.Process(session.pid).memory_info().rss
    await session.stop()
    parsed = parse_times(files)

    def slowest(times: dict[str, float]) -> list[tuple[str, float]]:
        return sorted(times.items(), key=lambda item: -item[1])[:5]

    return {
        "files": len(files),
        "first_hints": {**summary(list(hints.values())), "slowest": slowest(hints)},
        "code_lens": {**summary(list(lenses.values())), "slowest": slowest(lenses)},
        "ast_parse": {**summary(list(parsed.values())), "slowest": slowest(parsed)},
        "lenses_claiming_zero": len(zero_claims),
        "lenses_claiming_zero_first": zero_claims[:10],
        "rss_bytes": rss,
        "longest_gc_pause_ms": status["longest_gc_pause_ms"],
        "longest_gc_pause_generation": status["longest_gc_pause_generation"],
        "parse_cache": status["parse_cache"],
    }


async def diagnostics_after_typing(root: Path, text: str) -> float:
    """Type a burst of keystrokes; ms from the last one to its version's diagnostics."""
    uri = (root / "typing.py").as_uri()
    session = Session([sys.executable, "-m", "memlens.lsp_server"], pull_diagnostics=False)
    await session.start(root)
    session.open(uri, text)
    await asyncio.sleep(1.0)
    version = 1
    last = 0.0
    for i in range(KEYSTROKES):
        version += 1
        position = types.Position(5, 13 + i)
        session.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(position, position), text="0"
                    )
                ],
            )
        )
        last = time.perf_counter()
        await asyncio.sleep(KEYSTROKE_GAP_S)
    while version not in session.published:
        await asyncio.sleep(0.002)
    stale = [v for v in session.published if v is not None and 1 < v < version]
    await session.stop()
    if stale:
        raise AssertionError(f"diagnostics were published for stale versions {stale}")
    return (session.published[version] - last) * 1000


async def ruff_run(root: Path, text: str) -> dict[str, dict[str, float]]:
    """`ruff server` answering pulled diagnostics for the same file through the same client,
    without and with the previous result id."""
    uri = (root / "model.py").as_uri()
    session = Session([str(Path(sys.executable).parent / "ruff"), "server"], pull_diagnostics=True)
    await session.start(root)
    session.open(uri, text)
    doc = types.TextDocumentIdentifier(uri=uri)
    times = await timed(
        SAMPLES,
        lambda i: session.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=doc)
        ),
    )
    with_id = await pulls_naming_the_previous_result(session.client, doc)
    await session.stop()
    return {"diagnostics_pull": summary(times), "diagnostics_pull_with_result_id": summary(with_id)}


def main() -> None:
    """Run both servers, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modeling-files", type=int, metavar="N", help="only the first N transformers files"
    )
    args = parser.parse_args()
    machine = cpu()
    root = Path(tempfile.mkdtemp(prefix="memlens-bench-"))
    text = generate_source()
    (root / "model.py").write_text(text)
    started = asyncio.run(startup(root, text))
    ours = asyncio.run(memlens_run(root, text))
    ruff = asyncio.run(ruff_run(root, text))
    files = modeling_files()[: args.modeling_files]
    modeling = asyncio.run(modeling_run(files))
    console = Console()
    table = Table(title=f"memlens language server on a {text.count(chr(10))}-line file")
    for name in ("request", "p50 ms", "p95 ms", "goal"):
        table.add_column(name, justify="left" if name == "request" else "right")
    goals = {"inlay_hints": "p95 ≤ 5", "diagnostics_pull": "p50 ≤ ruff's"}
    for name, figures in ours["requests"].items():
        table.add_row(
            name, f"{figures['p50_ms']:.2f}", f"{figures['p95_ms']:.2f}", goals.get(name, "")
        )
    for name, figures in ruff.items():
        table.add_row(
            f"ruff server: {name}", f"{figures['p50_ms']:.2f}", f"{figures['p95_ms']:.2f}", ""
        )
    console.print(table)
    ratio = ours["requests"]["diagnostics_pull"]["p50_ms"] / ruff["diagnostics_pull"]["p50_ms"]
    ratio_with_id = (
        ours["requests"]["diagnostics_pull_with_result_id"]["p50_ms"]
        / ruff["diagnostics_pull_with_result_id"]["p50_ms"]
    )
    files_table = Table(title=f"first opening of {modeling['files']} transformers modeling files")
    for name in ("request", "p50 ms", "p95 ms", "max ms", "goal", "slowest files"):
        files_table.add_column(
            name, justify="left" if name in ("request", "slowest files") else "right"
        )
    for name, goal in (
        ("first_hints", "p95 < 50, max < 250"),
        ("code_lens", ""),
        ("ast_parse", "yardstick"),
    ):
        figures = modeling[name]
        files_table.add_row(
            name,
            f"{figures['p50_ms']:.2f}",
            f"{figures['p95_ms']:.2f}",
            f"{figures['max_ms']:.2f}",
            goal,
            ", ".join(f"{file} {ms:.0f}" for file, ms in figures["slowest"][:3]),
        )
    console.print(files_table)
    machine["load_after"] = os.getloadavg()
    console.print(
        f"CPU: {machine['model']} × {machine['count']} ({len(machine['flags'])} flags: "
        f"{' '.join(f for f in machine['flags'] if f.startswith(('avx', 'sse4')))}); "
        f"load average {machine['load'][0]:.1f} at the start, "
        f"{machine['load_after'][0]:.1f} at the end"
    )
    console.print(
        f"start-up to first inlay hints: median {started['p50_ms']:.0f} ms, "
        f"max {started['max_ms']:.0f} ms over {STARTS} starts (goal ≤ 800); "
        f"first start after an install {started['first_ms']:.0f} ms\n"
        f"after the transformers files: server RSS {modeling['rss_bytes'] / 2**20:.1f} MiB, "
        f"longest GC pause {modeling['longest_gc_pause_ms']:.1f} ms "
        f"(generation {modeling['longest_gc_pause_generation']}; goal ≤ 50), "
        f"lenses claiming ≥ 0: {modeling['lenses_claiming_zero']} (goal 0)\n"
        f"diagnostics after the last keystroke: "
        f"{ours['diagnostics_after_last_keystroke_ms']:.0f} ms (goal < 300)\n"
        f"server RSS: {ours['rss_bytes'] / 2**20:.1f} MiB (goal < 120)\n"
        f"server imported torch: {ours['server_imported_torch']}\n"
        f"memlens pulled diagnostics p50 / ruff's: {ratio:.2f}× "
        f"(naming the previous result id: {ratio_with_id:.2f}×)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "cpu": machine,
                "lines": text.count("\n"),
                "startup_to_first_hints_ms": started,
                "memlens": ours,
                "ruff": ruff,
                "diagnostics_ratio_vs_ruff": ratio,
                "diagnostics_ratio_vs_ruff_with_result_id": ratio_with_id,
                "transformers_modeling_files": modeling,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
