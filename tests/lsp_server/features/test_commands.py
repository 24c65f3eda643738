"""Worker-backed commands through a real client: progress, the memoryReport notification,
cancellation, and recovery when the worker is killed mid-command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from memlens.lsp_server.features.commands import STALE_LINES
from tests.support.lsp_client import open_document
from tests.support.tiny_configs import NEOX_CONFIG

LOADS = """\
import torch
from transformers import AutoModelForCausalLM
big = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.bfloat16)
tiny = AutoModelForCausalLM.from_pretrained("./tiny-llama", dtype=torch.float32)
"""
TINY_PARAMS = 2 * 320 * 64 + 64 + 2 * (64 * 64 * 2 + 32 * 64 * 2 + 3 * 64 * 96 + 2 * 64)


async def execute(client: LanguageClient, command: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(arguments))
    )


_LAST_CLIENT: list[LanguageClient] = []


def progress_messages_seen() -> list[str]:
    return progress_messages(_LAST_CLIENT[-1])[-5:] if _LAST_CLIENT else []


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time: {progress_messages_seen()}")
        await asyncio.sleep(0.05)


def progress_messages(client: LanguageClient) -> list[str]:
    return [
        getattr(r, "message", None) or ""
        for reports in client.progress_reports.values()
        for r in reports
    ]


async def test_estimate_reports_progress_and_notifies(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "commands.py", LOADS)
    notification = asyncio.ensure_future(client.wait_for_notification("memlens/memoryReport"))
    result = await execute(client, "memlens.estimate", uri, 2)
    [estimate] = result["estimates"]
    assert (estimate["source"], estimate["dtype"]) == ("meta", "bf16")
    assert estimate["params"] == 6_738_415_616
    view = await asyncio.wait_for(notification, 10)  # the memory view's payload
    assert view.title == "Estimate · meta-llama/Llama-2-7b-hf"  # JSON arrives as an object
    assert sum(row.params.value for row in view.rows) == 6_738_415_616
    assert view.budget.bytes == 24 * 2**30  # the server's memoryBudget setting
    [reports] = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "done"


async def test_profile_measures_weights_on_disk(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "profile.py", LOADS)
    report = await execute(client, "memlens.profile", uri, 3)
    measured = report["measured"]
    assert measured["weights_bytes"] == TINY_PARAMS * 4 + 2 * 8 * 4  # + rotary buffers
    assert sum(layer["params"] for layer in measured["layers"]) == TINY_PARAMS
    assert measured["peak_bytes"] > measured["weights_bytes"]
    skeleton = await execute(client, "memlens.profile", uri, 2)
    assert skeleton["measured"] is None
    assert "not on disk" in skeleton["notes"][0]


async def test_profile_with_a_compressed_kv_cache(client: LanguageClient, workspace: Path) -> None:
    model = {"model": str(workspace / "tiny-llama"), "dtypes": ["fp32"], "prompt_tokens": 300}
    full = (await execute(client, "memlens.profile", model))["measured"]
    int8 = (await execute(client, "memlens.profile", {**model, "kv": "int8"}))["measured"]
    assert (full["kv_cache"], int8["kv_cache"]) == (None, "int8:g128:r0")
    pairs = [
        (f["kv_cache_bytes"], q["kv_cache_bytes"])
        for f, q in zip(full["layers"], int8["layers"], strict=True)
        if f["kv_cache_bytes"]
    ]
    assert len(pairs) == 2  # both decoder layers held a cache of 308 tokens, 256 quantized
    assert all(0 < quantized < fp32 / 2 for fp32, quantized in pairs)
    with pytest.raises(JsonRpcException, match="--kv"):
        await execute(client, "memlens.profile", {**model, "kv": "int3"})


async def test_compress_plans_exact_sizes(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "compress.py", LOADS)
    report = await execute(client, "memlens.compress", uri, 2)
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert layers["lm_head"]["bytes_before"] == 32000 * 4096 * 2
    assert layers["lm_head"]["bytes_after"] == 32000 * 4096 // 2 + 32000 * 32 * 4
    assert report["measured"] is False and report["ppl_after"] is None


async def test_bad_command_arguments(client: LanguageClient, workspace: Path) -> None:
    padded = "\n" * (STALE_LINES + 1) + LOADS  # line 0 lies beyond a stale lens's reach
    uri = open_document(client, workspace / "bad-args.py", padded)
    for arguments in ((uri, 0), ("file:///not/open.py", 2), ("nonsense",)):
        with pytest.raises(JsonRpcException):
            await execute(client, "memlens.estimate", *arguments)


async def _start_long_profile(client: LanguageClient, workspace: Path) -> tuple[str, Any]:
    _LAST_CLIENT.append(client)
    msg_id = f"long-{time.monotonic_ns()}"
    future = client.protocol.send_request(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(
            command="memlens.profile",
            arguments=[
                {
                    "model": str(workspace / "tiny-llama"),
                    "dtypes": ["fp32"],
                    "prompt_tokens": 8,
                    "new_tokens": 5000,
                }
            ],
        ),
        msg_id=msg_id,
    )
    await wait_until(lambda: any(m.startswith("Generating") for m in progress_messages(client)))
    return msg_id, future


async def test_cancel_stops_the_command_and_keeps_the_worker(
    client: LanguageClient, workspace: Path
) -> None:
    msg_id, future = await _start_long_profile(client, workspace)
    before = await execute(client, "memlens.workerStatus")
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises((JsonRpcException, asyncio.CancelledError)):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    await wait_until(lambda: "cancelled" in progress_messages(client))
    after = await execute(client, "memlens.workerStatus")
    assert after["pid"] == before["pid"] and after["restarts"] == 0
    result = await execute(client, "memlens.estimate", {"model": "gpt2", "dtypes": ["fp32"]})
    assert result["estimates"][0]["params"] == 124_439_808


async def test_killed_worker_is_reported_and_restarted(
    client: LanguageClient, workspace: Path
) -> None:
    _, future = await _start_long_profile(client, workspace)
    status = await execute(client, "memlens.workerStatus")
    os.kill(status["pid"], signal.SIGKILL)
    with pytest.raises(JsonRpcException, match="worker exited"):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    await wait_until(lambda: any("worker exited" in m.message for m in client.messages))
    result = await execute(client, "memlens.estimate", {"model": "gpt2", "dtypes": ["fp32"]})
    assert result["estimates"][0]["params"] == 124_439_808
    restarted = await execute(client, "memlens.workerStatus")
    assert restarted["restarts"] == 1 and restarted["pid"] != status["pid"]
    assert restarted["server_imports_torch"] is False  # all torch work stayed in the worker


async def test_progress_cancel_button_stops_the_command(
    client: LanguageClient, workspace: Path
) -> None:
    """VS Code's cancel button sends window/workDoneProgress/cancel, not $/cancelRequest."""
    _, future = await _start_long_profile(client, workspace)
    token = next(iter(client.progress_reports))
    client.protocol.notify(
        types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token)
    )
    with pytest.raises((JsonRpcException, asyncio.CancelledError)):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    await wait_until(lambda: "cancelled" in progress_messages(client))


async def test_untrusted_workspace_runs_no_worker(
    untrusted_client: LanguageClient, workspace: Path
) -> None:
    client = untrusted_client
    uri = open_document(client, workspace / "untrusted.py", LOADS)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert not any(lens.command.command.startswith("memlens.") for lens in lenses)
    with pytest.raises(JsonRpcException, match="not trusted"):
        await execute(client, "memlens.estimate", uri, 2)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(10, 0)),
        )
    )
    assert any("12.6 GiB bf16" in h.label for h in hints)
    assert (await execute(client, "memlens.workerStatus"))["pid"] is None


async def test_hover_uses_the_workers_exact_estimate(
    client: LanguageClient, workspace: Path
) -> None:
    """A family without analytic formulas: no figure until the worker builds it exactly."""
    folder = workspace / "neox"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(NEOX_CONFIG))
    text = 'from transformers import AutoModel\nm = AutoModel.from_pretrained("./neox")\n'
    uri = open_document(client, workspace / "neox.py", text)
    position = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(1, 10)
    )
    before = await client.text_document_hover_async(position)
    assert "no estimate" in before.contents.value
    await execute(client, "memlens.estimate", uri, 1)
    after = await client.text_document_hover_async(position)
    assert "gpt\\_neox · 99.8K params · bf16 (meta)" in after.contents.value
    assert "no analytic formulas" in after.contents.value


async def test_compress_takes_the_quick_picks_choice_and_the_clients_progress_token(
    client: LanguageClient, workspace: Path
) -> None:
    """Issue 17: the extension shows the progress as a cancellable notification on a token
    it sends, and Compress… runs the scheme its quick pick chose."""
    uri = open_document(client, workspace / "compress_choice.py", LOADS)
    client.progress_reports["memlens-test-token"] = []  # the client's own token
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="memlens.compress",
            arguments=[uri, 2, {"weights": "int8"}],
            work_done_token="memlens-test-token",
        )
    )
    assert report["config"]["scheme"] == "int8"
    reports = client.progress_reports["memlens-test-token"]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "done"
    for bad in ({"weights": 8}, "int8", {"weights": "auto", "max_error": "2%"}):
        with pytest.raises(JsonRpcException, match=r"third argument|max_error"):
            await execute(client, "memlens.compress", uri, 2, bad)
