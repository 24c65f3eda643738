"""``memlens chat`` driven through a pipe, as a user's script would (a subprocess reading
stdin line by line). Bad inputs tried: a budget smaller than the system prompt, a
message larger than the budget mid-conversation, an unparsable budget, ``--weights
auto``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from memlens.engine.fixtures import FIXTURE_DIR

TOKEN_BYTES = 4 * 2 * 2 * 64 * 2  # fixture in bf16: 4 layers, K and V, 2 KV heads, dim 64


def _chat(lines: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memlens", "chat", str(FIXTURE_DIR), *options],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_chat_streams_replies_and_answers_its_commands(tmp_path: Path) -> None:
    done = _chat(
        ["def f(x):", "/stats", "/reset", "import os", "/quit", "never read"],
        "--system",
        "Python.",
        "--max-new-tokens",
        "5",
        "--spill-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    stats = next(i for i, line in enumerate(out) if line.startswith("budget 512.0 MiB"))
    assert out[stats + 1].startswith("hot: 1 sessions") and "1 hits" in out[stats + 1]
    assert out[stats + 2].startswith("warm: 0 sessions")
    assert len(out) == stats + 5  # a reply line before the stats, one after, nothing more


def test_chat_json_reports_each_turn_reusing_the_cache(tmp_path: Path) -> None:
    done = _chat(
        ["def f(x):", "", "import os", "/stats"],
        "--json",
        "--max-new-tokens",
        "4",
        "--spill-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    first, second, stats = (json.loads(line) for line in done.stdout.splitlines())
    assert first["turn"] == 1 and first["user"] == "def f(x):" and first["reused_tokens"] == 0
    assert first["new_tokens"] == 4 and len(first["reply"].encode()) == 4
    # turn 2 reuses turn 1's prompt and all its reply tokens but the last (fed now)
    assert second["reused_tokens"] == first["prompt_tokens"] + first["new_tokens"] - 1
    assert second["prompt_tokens"] == len(b"\nUser: import os\nAssistant:") + 1
    assert stats["stats"]["tiers"]["hot"]["sessions"] == 1
    assert stats["stats"]["tiers"]["hot"]["hits"] == 2


def test_chat_budget_errors_are_clear_and_a_failed_turn_does_not_end_the_chat() -> None:
    refused = _chat(["hi"], "--system", "x" * 200, "--budget", f"{100 * TOKEN_BYTES}")
    assert refused.returncode == 7
    assert "the system prompt needs" in refused.stderr
    assert "more than the whole session budget of 200.0 KiB" in refused.stderr
    survived = _chat(
        ["y" * 300, "hi"], "--budget", f"{100 * TOKEN_BYTES}", "--max-new-tokens", "3", "--json"
    )
    assert survived.returncode == 7
    assert "memlens: error: session 0 with" in survived.stderr
    (turn,) = (json.loads(line) for line in survived.stdout.splitlines())
    assert turn["user"] == "hi" and turn["new_tokens"] == 3


def test_chat_rejects_bad_options() -> None:
    bad_budget = _chat([], "--budget", "lots")
    assert bad_budget.returncode == 2 and "--budget 'lots' is not a size" in bad_budget.stderr
    auto = _chat([], "--weights", "auto")
    assert auto.returncode == 2 and "run `memlens compress` first" in auto.stderr
