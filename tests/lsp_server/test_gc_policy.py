"""The collector around analyses (memlens/lsp_server/gc_policy.py)."""

from __future__ import annotations

import gc
import weakref

import pytest

from memlens.lsp_server.gc_policy import GcPolicy


@pytest.fixture
def collector_state():
    """Leave the process's collector as it was found (enabled, nothing frozen by us)."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


@pytest.mark.usefixtures("collector_state")
def test_inactive_policy_leaves_the_collector_alone() -> None:
    policy = GcPolicy()
    frozen = gc.get_freeze_count()
    with policy.analysis():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("collector_state")
def test_an_analysis_runs_without_collections_and_what_it_leaves_is_frozen() -> None:
    policy = GcPolicy()
    policy.install()
    kept: list[object] = []
    with policy.analysis():
        assert not gc.isenabled()
        kept.append([[] for _ in range(100)])  # tracked objects that outlive it
        with policy.analysis():  # nested: the outer one decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= 101
    assert not any(o is kept[0] for o in gc.get_objects())  # out of the collector's view


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("collector_state")
def test_garbage_made_before_an_analysis_is_collected_not_frozen() -> None:
    policy = GcPolicy()
    policy.install()
    gc.collect()
    gc.disable()  # the cycle must still be there when the analysis starts
    garbage = weakref.ref(_Cycle())  # only the collector can free it
    gc.enable()
    with policy.analysis():
        pass
    assert garbage() is None  # freed, not frozen for good


@pytest.mark.usefixtures("collector_state")
def test_an_analysis_that_raises_restores_the_collector() -> None:
    policy = GcPolicy()
    policy.install()
    with pytest.raises(ValueError), policy.analysis():
        raise ValueError("bad input")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_a_disabled_collector_stays_disabled() -> None:
    policy = GcPolicy()
    policy.install()
    gc.disable()
    frozen = gc.get_freeze_count()
    with policy.analysis():
        pass
    assert not gc.isenabled()
    assert gc.get_freeze_count() == frozen
