"""Pipeline-file keys for running unattended: pull retries and poison-record isolation."""

from __future__ import annotations

import pytest

from databay_bus.config import loads
from databay_bus.errors import ConfigError
from databay_bus.queue import RetryPolicy

LINK = """
[[links]]
tags = ["t"]
interval = 1
inlets = [{type = "pipeline_nodes.CountingInlet", name = "src"}]
outlets = [{type = "pipeline_nodes.ListOutlet", name = "x"}]
"""


def test_pull_retry_and_inlet_retry() -> None:
    pipeline = loads(
        LINK + 'pull_retry = {max_attempts = 3, initial_delay = "2s"}\n'
        "inlet_retry = {src = {max_attempts = false}}\n"
    )
    pulls = pipeline.links[0]._pulls
    assert pulls is not None
    assert pulls.policy == RetryPolicy(max_attempts=3, initial_delay=2.0)
    assert pulls.per_inlet == {"src": RetryPolicy(max_attempts=None)}


def test_inlet_retry_names_an_existing_inlet() -> None:
    with pytest.raises(ConfigError, match=r"links\[0\]\.inlet_retry\.nope: the link has no inlet"):
        loads(LINK + "inlet_retry = {nope = {max_attempts = 2}}\n")


def test_bad_pull_retry_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"links\[0\]\.pull_retry"):
        loads(LINK + "pull_retry = {max_attempts = -1}\n")


def test_poison_isolation_options() -> None:
    pipeline = loads(
        '[queue]\nkind = "memory"\n'
        + LINK
        + "delivery = {isolate_poison = false, max_isolation_pushes = 7}\n"
    )
    delivery = pipeline.links[0]._delivery
    assert getattr(delivery, "isolate_poison", None) is False
    assert getattr(delivery, "max_isolation_pushes", None) == 7
