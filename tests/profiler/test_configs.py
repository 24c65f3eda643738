"""Model references resolve offline first (memlens/profiler/configs.py); bad ones fail
with a clear error that says what to do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memlens.errors import ConfigError, ModelNotFoundError
from memlens.profiler.configs import known_models, resolve_config

LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 320,
}


def test_directory_with_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    resolved = resolve_config(str(tmp_path))
    assert resolved.origin == "path"
    assert resolved.config == LLAMA
    assert resolved.location == str(tmp_path / "config.json")


def test_config_json_path(tmp_path: Path) -> None:
    path = tmp_path / "my-config.json"
    path.write_text(json.dumps(LLAMA))
    assert resolve_config(str(path)).config == LLAMA


def test_directory_without_config_json(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"has no config\.json"):
        resolve_config(str(tmp_path))


def test_missing_path() -> None:
    with pytest.raises(ModelNotFoundError, match="no such file"):
        resolve_config("./does/not/exist.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"model_type": "llama", "hidden_size": 6', "not valid JSON"),  # truncated
        ("\x00\x01garbage", "not valid JSON"),
        ("[1, 2, 3]", "JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_corrupt_config_json(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve_config(str(tmp_path))


def test_hf_cache_snapshot_is_used_before_the_built_in_table(hf_cache: Path) -> None:
    repo = hf_cache / "models--openai-community--gpt2"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({**LLAMA, "vocab_size": 999}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    resolved = resolve_config("openai-community/gpt2")
    assert resolved.origin == "hf-cache"
    assert resolved.config["vocab_size"] == 999


def test_built_in_table_by_id_and_alias_case_insensitive() -> None:
    assert resolve_config("meta-llama/Llama-2-7b-hf").origin == "built-in"
    assert resolve_config("GPT2").model == "openai-community/gpt2"
    assert resolve_config("bert-base-uncased").config["model_type"] == "bert"
    required = {
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-13b-hf",
        "meta-llama/Llama-2-70b-hf",
        "meta-llama/Meta-Llama-3-8B",
        "meta-llama/Meta-Llama-3-70B",
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-70B",
        "mistralai/Mistral-7B-v0.1",
        "mistralai/Mixtral-8x7B-v0.1",
        "Qwen/Qwen2.5-0.5B",
        "Qwen/Qwen2.5-7B",
        "Qwen/Qwen2.5-72B",
        "THUDM/glm-4-9b-hf",
        "microsoft/Phi-3-mini-4k-instruct",
        "google/gemma-2-9b",
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "openai-community/gpt2",
        "google-bert/bert-base-uncased",
    }
    assert required <= set(known_models())


def test_unknown_id_offline_says_how_to_fix() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_config("someone/unknown-model")
    message = str(info.value)
    assert "offline" in message and "config.json" in message


def test_not_an_id_or_path() -> None:
    with pytest.raises(ModelNotFoundError, match="neither a local path nor a model id"):
        resolve_config("what is this?")


class _Hub(BaseHTTPRequestHandler):
    delay_s = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay_s)
        if self.path == "/org/tiny/resolve/main/config.json":
            body = json.dumps(LLAMA).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Hub]]:
    """A hub stand-in on loopback: the real HTTP code path without the internet."""
    handler = type("Hub", (_Hub,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("MEMLENS_OFFLINE")
    yield handler
    server.shutdown()


def test_hub_fetches_config_json_only_when_online(local_hub: type[_Hub]) -> None:
    resolved = resolve_config("org/tiny")
    assert resolved.origin == "hub" and resolved.config == LLAMA
    with pytest.raises(ModelNotFoundError, match="HTTP 404"):
        resolve_config("org/missing")


def test_hub_is_never_asked_when_offline(
    local_hub: type[_Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="offline"):
        resolve_config("org/tiny")
    with pytest.raises(ModelNotFoundError, match="offline"):
        resolve_config("org/tiny", allow_network=False)


def test_hub_lookup_is_time_boxed(local_hub: type[_Hub]) -> None:
    local_hub.delay_s = 2.0
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="could not be reached"):
        resolve_config("org/tiny", timeout_s=0.3)
    assert time.monotonic() - started < 1.9


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nonexist/x.json", "no such file"),  # shaped like an id, but a path
        ("~no-such-user-memlens/config.json", "no such file"),
        ("/dev/null", "neither a config.json file nor a model directory"),
    ],
)
def test_odd_paths_get_clear_errors(ref: str, message: str) -> None:
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_config(ref)


def test_broken_hf_cache_entries_are_skipped(hf_cache: Path) -> None:
    repo = hf_cache / "models--openai-community--gpt2"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "snapshots" / "dangling").symlink_to(hf_cache / "missing")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_bytes(b"\xff\xfe")
    assert resolve_config("openai-community/gpt2").origin == "built-in"
