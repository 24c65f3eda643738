"""memlens.lsp_server.settings: the client's ``memlens.*`` configuration, parsed once."""

from __future__ import annotations

import pytest

from memlens.lsp_server.settings import Settings


def test_the_jaeger_url_loses_its_trailing_slash() -> None:
    settings = Settings.from_client({"jaeger": {"url": "http://localhost:16686/"}})
    assert settings.jaeger_url == "http://localhost:16686"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x", "", "http://a b", 7])
def test_a_jaeger_url_that_is_not_http_gives_no_links(url: object) -> None:
    """The extension sends the setting as typed; a bad one is ignored, not an error."""
    assert Settings.from_client({"jaeger": {"url": url}}).jaeger_url is None


def test_training_devices_are_a_positive_device_count() -> None:
    assert Settings.from_client({"training": {"devices": 8}}).training_devices == 8
    assert Settings.from_client({"training.devices": 4}).training_devices == 4


@pytest.mark.parametrize("devices", [0, -2, 2.5, "8", True])
def test_a_bad_device_count_keeps_one(devices: object) -> None:
    assert Settings.from_client({"training": {"devices": devices}}).training_devices == 1
