"""KV cache configs (memlens/engine/kv/config.py): the ``--kv`` syntax, labels and JSON
round trips, bad values."""

from __future__ import annotations

import json

import pytest

from memlens.engine.kv.config import (
    HeavyHitterEviction,
    KVCacheConfig,
    SinkWindowEviction,
    kv_config_from_json,
    kv_config_to_json,
    parse_kv,
)
from memlens.errors import ConfigError, UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int8", KVCacheConfig(bits=8)),
        ("INT4:g32", KVCacheConfig(bits=4, group_size=32)),
        ("int4:r128", KVCacheConfig(bits=4, residual_tokens=128)),
        ("sinks:4+window:508", KVCacheConfig(bits=None, eviction=SinkWindowEviction(4, 508))),
        ("h2o:0.25", KVCacheConfig(bits=None, eviction=HeavyHitterEviction(budget_fraction=0.25))),
        (
            "int8:g32:r16, h2o:1024",
            KVCacheConfig(8, 32, 16, HeavyHitterEviction(budget_tokens=1024)),
        ),
    ],
)
def test_kv_syntax_labels_and_json_round_trip(text: str, expected: KVCacheConfig) -> None:
    config = parse_kv(text)
    assert config == expected
    assert parse_kv(config.label()) == config
    assert kv_config_from_json(json.loads(json.dumps(kv_config_to_json(config)))) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("int3", "use \\[int8"),
        ("int8:x4", "use \\[int8"),
        ("int8:g", "use \\[int8"),
        ("int8:g32:g64", "use \\[int8"),
        ("int8,int4", "use \\[int8"),
        ("int8,", "use \\[int8"),
        ("", "use \\[int8"),
        ("sinks:4", "use \\[int8"),
        ("sinks:4+window:0", "window ≥ 1"),
        ("h2o:1.5", "fraction must be in \\(0, 1\\)"),
        ("h2o:many", "use \\[int8"),
        ("h2o:1", "at least 2 tokens"),
        ("int4:g3", "even number"),
        ("int4:r-1", "residual tokens must be ≥ 0"),
    ],
)
def test_bad_kv_syntax_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_kv(text)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"bits": 8},
        {**kv_config_to_json(KVCacheConfig()), "version": 99},
        {**kv_config_to_json(KVCacheConfig()), "bits": 5},
        {**kv_config_to_json(KVCacheConfig()), "eviction": {"policy": "lru"}},
        {**kv_config_to_json(KVCacheConfig()), "colour": "blue"},
    ],
)
def test_bad_kv_config_json_is_a_config_error(data: object) -> None:
    with pytest.raises(ConfigError, match="KV cache config"):
        kv_config_from_json(data)


def test_config_checks_its_values() -> None:
    with pytest.raises(UsageError, match="bits must be 8, 4 or None"):
        KVCacheConfig(bits=3)
    with pytest.raises(UsageError, match="residual tokens"):
        KVCacheConfig(residual_tokens=-1)
    with pytest.raises(UsageError, match="exactly one budget"):
        HeavyHitterEviction()
    with pytest.raises(UsageError, match="recent share"):
        HeavyHitterEviction(budget_tokens=8, recent=0)
