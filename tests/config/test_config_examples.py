"""The example pipeline files load, and docs/config.md shows the complete example verbatim."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from databay_bus.config import load, loads
from databay_bus.errors import ConfigError
from databay_bus.queue import MemoryQueue
from databay_bus.routing import InletRouter, PredicateRouter

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "examples" / "pipelines" / "full.toml"


def test_the_full_example_loads_with_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # python_path edits it
    pipeline = load(FULL, dry_run=True, env={})
    try:
        assert [link.tags for link in pipeline.links] == [["prices"], ["sensors"], ["alerts"]]
        prices, sensors, alerts = pipeline.links
        assert isinstance(prices.queue, MemoryQueue)  # dry run: no file opened
        assert sensors.queue is prices.queue and alerts.queue is None
        assert prices._delivery.drain_budget == 10  # type: ignore[attr-defined]
        assert isinstance(sensors.router, InletRouter)
        assert isinstance(alerts.router, PredicateRouter)
        assert pipeline.planner.threads == 8  # type: ignore[attr-defined]
        assert "headers=***" in pipeline.describe()
        assert str(FULL.parent) in sys.path
    finally:
        pipeline.close()


def test_docs_show_the_full_example_as_it_is() -> None:
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert FULL.read_text(encoding="utf-8").strip() in docs


def test_the_json_sample_of_the_docs_loads() -> None:
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    sample = docs.split("The same file as JSON starts like this:\n\n```json\n", 1)[1]
    pipeline = loads(sample.split("```", 1)[0], fmt="json", dry_run=True)
    assert pipeline.links[0].tags == ["prices"]
    pipeline.close()


def test_python_path_puts_a_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "my_local_nodes.py").write_text(
        "from pipeline_nodes import ListOutlet as LocalOutlet\n__all__ = ['LocalOutlet']\n",
        encoding="utf-8",
    )
    (tmp_path / "p.toml").write_text(
        'python_path = "${PIPELINE_DIR}"\n[[links]]\ninterval = 1\n'
        'inlets = ["pipeline_nodes.CountingInlet"]\noutlets = ["my_local_nodes.LocalOutlet"]\n',
        encoding="utf-8",
    )
    pipeline = load(tmp_path / "p.toml")
    assert type(pipeline.links[0].outlets[0]).__name__ == "ListOutlet"
    assert sys.path[0] == str(tmp_path.resolve())


def test_python_path_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"python_path\[0\]: no directory '/no/such/dir'"):
        loads("python_path = ['/no/such/dir']\n[[links]]\ninterval = 1\n")


def test_an_outlets_own_processors_are_named_like_the_links() -> None:
    pipeline = loads(
        "[[links]]\ninterval = 1\ninlets = ['pipeline_nodes.CountingInlet']\n"
        "outlets = [{type = 'print', processors = ['pipeline_nodes.double_processor']}]\n"
    )
    from pipeline_nodes import double_processor

    assert pipeline.links[0].outlets[0].processors == [double_processor]


def test_an_outlet_processor_that_does_not_import() -> None:
    with pytest.raises(ConfigError, match=r"links\[0\]\.outlets\[0\]\.processors\[0\]: cannot"):
        loads(
            "[[links]]\ninterval = 1\ninlets = ['pipeline_nodes.CountingInlet']\n"
            "outlets = [{type = 'print', processors = ['acme.nope']}]\n"
        )
