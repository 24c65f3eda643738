"""Weight configs (memlens/engine/weights/config.py): JSON round trips, CLI syntax, bad values."""

from __future__ import annotations

import pytest

from memlens.engine.weights.config import (
    CONFIG_VERSION,
    AutoWeightConfig,
    Int4WeightConfig,
    Int8DynWeightConfig,
    Int8WeightConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
    config_from_json,
    config_to_json,
    parse_weights,
)
from memlens.errors import ConfigError, UsageError

CONFIGS = [
    Int8WeightConfig(skip=("lm_head",)),
    Int4WeightConfig(group_size=64),
    Int8DynWeightConfig(skip=("lm_head",)),
    LowRankWeightConfig(energy=0.9, max_error=0.05),
    MixedWeightConfig(
        default=Int4WeightConfig(group_size=32),
        overrides=(("*.mlp.*", Int8WeightConfig()), ("lm_head", None)),
    ),
    AutoWeightConfig(budget_bytes=10**9, lm_head=None),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.scheme)
def test_json_round_trip(config: object) -> None:
    data = config_to_json(config)  # type: ignore[arg-type]
    assert data is not None and data["version"] == CONFIG_VERSION
    assert config_from_json(data) == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int8", Int8WeightConfig()),
        ("int8-dyn", Int8DynWeightConfig()),
        ("int4", Int4WeightConfig(group_size=128)),
        ("INT4:g64", Int4WeightConfig(group_size=64)),
        ("int4:32", Int4WeightConfig(group_size=32)),
        ("lowrank", LowRankWeightConfig(energy=0.99)),
        ("lowrank:0.9", LowRankWeightConfig(energy=0.9)),
        ("auto", AutoWeightConfig()),
    ],
)
def test_cli_weights_syntax(text: str, expected: object) -> None:
    assert parse_weights(text) == expected


@pytest.mark.parametrize(
    "text",
    ["int3", "int4:g48", "int4:gx", "lowrank:1.5", "int8:g64", "int8-dyn:g64", "int8dyn", ""],
)
def test_bad_weights_syntax_names_the_choices(text: str) -> None:
    with pytest.raises(UsageError):
        parse_weights(text)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"scheme": "int2", "version": CONFIG_VERSION},
        {"scheme": "int8", "version": 1},
        {"scheme": "int4", "version": CONFIG_VERSION, "group_size": 48},
        {"scheme": "int4", "version": CONFIG_VERSION, "bogus": 1, "group_size": "x"},
        {"scheme": "mixed", "version": CONFIG_VERSION, "default": {"scheme": "nope"}},
    ],
)
def test_bad_json_is_a_config_error(data: object) -> None:
    with pytest.raises(ConfigError):
        config_from_json(data)


def test_bad_auto_settings() -> None:
    with pytest.raises(UsageError, match="error target or a byte budget"):
        AutoWeightConfig(max_error=None)
    with pytest.raises(UsageError, match="positive"):
        AutoWeightConfig(budget_bytes=0)
    with pytest.raises(UsageError, match="candidate"):
        AutoWeightConfig(candidates=())
    with pytest.raises(UsageError, match="energy"):
        LowRankWeightConfig(energy=0)
