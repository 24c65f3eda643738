"""``memlens chat`` driven through a pipe, as a user's script would (a subprocess reading
stdin line by line). Bad inputs tried: a budget smaller than the system prompt, a
message larger than the budget mid-conversation, an unparsable budget, ``--weights
auto``, ``--warm-bits 3``, ``--max-new-tokens 0``, a missing folder, an encoder without an
LM head, an unknown ``/command``, and Ctrl+C while it waits for input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.fixtures.byte_llama_model import FIXTURE_DIR
from memlens.cli.main import main

TOKEN_BYTES = 4 * 2 * 2 * 64 * 2  # fixture in bf16: 4 layers, K and V, 2 KV heads, dim 64


def _chat(
    lines: list[str], *options: str, model: Path = FIXTURE_DIR
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memlens", "chat", str(model), *options],
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
        ["def f(x):", "", "import os", "/stats", "/reset"],
        "--json",
        "--max-new-tokens",
        "4",
        "--spill-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    first, second, stats, reset = (json.loads(line) for line in done.stdout.splitlines())
    assert first["turn"] == 1 and first["user"] == "def f(x):" and first["reused_tokens"] == 0
    assert first["new_tokens"] == 4 and len(first["reply"].encode()) == 4
    # turn 2 reuses turn 1's prompt and all its reply tokens but the last (fed now)
    assert second["reused_tokens"] == first["prompt_tokens"] + first["new_tokens"] - 1
    assert second["prompt_tokens"] == len(b"\nUser: import os\nAssistant:") + 1
    assert stats["stats"]["tiers"]["hot"]["sessions"] == 1
    assert stats["stats"]["tiers"]["hot"]["hits"] == 2
    assert reset == {"reset": 1}  # the new conversation's session


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
    failed, turn = (json.loads(line) for line in survived.stdout.splitlines())
    assert (failed["turn"], failed["user"], failed["exit_code"]) == (1, "y" * 300, 7)
    assert failed["error"].startswith("session 0 with")
    assert (turn["turn"], turn["user"], turn["new_tokens"]) == (2, "hi", 3)


def test_chat_rejects_bad_options() -> None:
    bad_budget = _chat([], "--budget", "lots")
    assert bad_budget.returncode == 2 and "--budget 'lots' is not a size" in bad_budget.stderr
    auto = _chat([], "--weights", "auto")
    assert auto.returncode == 2 and "run `memlens compress` first" in auto.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--warm-bits", "3"], "invalid choice: 3"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1, got 0"),
        (["--budget=0"], "--budget '0' is not a size"),
    ],
)
def test_chat_rejects_bad_values_before_loading(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["chat", "/nonexistent/model", *options])
    except SystemExit as exc:  # argparse's own refusals
        code = int(str(exc.code))
    assert code == 2 and message in capsys.readouterr().err


def test_chat_on_a_missing_folder_or_an_encoder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", str(tmp_path / "nowhere")]) == 3
    assert "nowhere is not a folder with a model in it" in capsys.readouterr().err
    import transformers

    config = transformers.BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, architectures=["BertModel"],
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(tmp_path)
    assert main(["chat", str(tmp_path)]) == 2
    assert "is an encoder without an LM head: it cannot chat" in capsys.readouterr().err


def test_chat_refuses_unknown_commands_and_quits_on_a_padded_quit() -> None:
    """Regression: ``/stast`` went to the model as a message, and ``/quit `` (a trailing
    space) did not end the chat."""
    done = _chat(["/stast", "/quit ", "never read"], "--json", "--max-new-tokens", "2")
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown command /stast: use /stats, /reset, /quit" in done.stderr


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    # SIGINT raises KeyboardInterrupt even where the test runner's shell ignores it
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from memlens.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    command = ["chat", str(FIXTURE_DIR), "--json", "--max-new-tokens", "2"]
    with subprocess.Popen(
        [sys.executable, "-c", code, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as chat:
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write("def f(x):\n")
        chat.stdin.flush()
        assert json.loads(chat.stdout.readline())["turn"] == 1  # now waiting for a line
        chat.send_signal(signal.SIGINT)
        _, err = chat.communicate(timeout=120)
    assert chat.returncode == 130
    assert err.strip().splitlines()[-1] == "memlens: interrupted" and "Traceback" not in err
