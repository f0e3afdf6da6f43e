"""Loading valid pipeline files: what each key builds, and running the result."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pipeline_nodes import LINK, CountingInlet, ListOutlet

from databay_bus import Link
from databay_bus.config import LogObserver, Pipeline, load, loads, parse_duration
from databay_bus.config.names import ImportFailed, import_path, resolve
from databay_bus.planners import ApsPlanner, SchedulePlanner
from databay_bus.queue import MemoryQueue, RetryPolicy, SqliteQueue
from databay_bus.records.codecs import JsonCodec, OrjsonCodec, PickleCodec
from databay_bus.routing import InletRouter, MetadataRouter, PredicateRouter


def outlet(pipeline: Pipeline, link: int = 0, index: int = 0) -> ListOutlet:
    found = pipeline.links[link].outlets[index]
    assert isinstance(found, ListOutlet)
    return found


def test_a_minimal_file_builds_an_aps_planner_with_one_link() -> None:
    pipeline = loads(LINK)
    assert isinstance(pipeline.planner, ApsPlanner)
    assert pipeline.planner.links == pipeline.links
    (link,) = pipeline.links
    assert link.tags == ["t"]
    assert link.interval.total_seconds() == 1
    assert isinstance(link.inlets[0], CountingInlet)
    assert outlet(pipeline).name == "x"
    assert link.queue is None
    assert pipeline.queues == []
    assert not pipeline.planner.running


def test_link_options_processors_groupers_and_a_factory() -> None:
    pipeline = loads(
        """
        [[links]]
        tags = ["a", "b"]
        interval = "1m30s"
        inlets = [{type = "pipeline_nodes.CountingInlet", per_pull = 3}]
        outlets = [{type = "pipeline_nodes.ListOutlet", name = "x"}]
        processors = ["pipeline_nodes.add_one", {type = "pipeline_nodes.make_scaler", factor = 10}]
        groupers = ["pipeline_nodes.split_in_pairs"]
        ignore_exceptions = true
        copy_records = false
        inlet_concurrency = 2
        immediate_transfer = false
        """
    )
    (link,) = pipeline.links
    assert link.interval.total_seconds() == 90
    assert (link.ignore_exceptions, link.copy_records) == (True, False)
    assert (link.inlet_concurrency, link.immediate_transfer) == (2, False)
    pipeline.planner.force_transfer()
    batches = [[r.payload["n"] for r in batch] for batch in _batches(outlet(pipeline))]
    assert batches == [[10, 20], [30]]


def _batches(out: ListOutlet) -> list[list[Any]]:
    """ListOutlet keeps one flat list; rebuild the batches from the push calls."""
    return [out.records[i : i + 2] for i in range(0, len(out.records), 2)]


def test_a_single_spec_may_stand_for_a_list() -> None:
    pipeline = loads(
        LINK.replace('["pipeline_nodes.CountingInlet"]', '"pipeline_nodes.CountingInlet"')
    )
    assert len(pipeline.links[0].inlets) == 1


def test_json_files_describe_the_same_pipeline(tmp_path: Path) -> None:
    data = {
        "planner": {"kind": "schedule", "refresh_interval": 0.5},
        "links": [
            {
                "tags": "j",
                "interval": 2,
                "inlets": ["pipeline_nodes.CountingInlet"],
                "outlets": [{"type": "pipeline_nodes.ListOutlet", "name": "x"}],
            }
        ],
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    pipeline = load(path)
    assert isinstance(pipeline.planner, SchedulePlanner)
    assert pipeline.links[0].tags == ["j"]
    assert pipeline.source == str(path)


def test_toml_file_on_disk_and_pipeline_dir(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(LINK.replace('name = "x"', 'name = "${PIPELINE_DIR}"'), encoding="utf-8")
    pipeline = load(path, env={})
    assert outlet(pipeline).name == str(tmp_path.resolve())


def test_environment_variables_defaults_and_escapes() -> None:
    text = LINK.replace('name = "x"', 'name = "${WHO}-${MISSING:-dflt}-$${NOT}"')
    pipeline = loads(text, env={"WHO": "me"})
    assert outlet(pipeline).name == "me-dflt-${NOT}"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.25, 0.25),
        ("500ms", 0.5),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        (".5s", 0.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -1, "0s", "5", "5 parsecs", "s", True, None, float("inf")])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_duration(value)


def test_routers_metadata_inlet_and_predicate() -> None:
    two_outlets = (
        'outlets = [{type = "pipeline_nodes.ListOutlet", name = "x"}, '
        '{type = "pipeline_nodes.ListOutlet", name = "y"}]'
    )
    inlets = (
        'inlets = [{type = "pipeline_nodes.CountingInlet", name = "a", per_pull = 3}, '
        '{type = "pipeline_nodes.CountingInlet", name = "b", kind = "other"}]'
    )
    text = f"""
    [[links]]
    tags = ["meta"]
    interval = 1
    {inlets}
    {two_outlets}
    router = {{type = "metadata", key = "kind", routes = {{count = "x", other = ["x", "y"]}}}}

    [[links]]
    tags = ["inlet"]
    interval = 1
    {inlets}
    {two_outlets}
    router = {{type = "inlet", routes = {{a = "y"}}, default = "*"}}

    [[links]]
    tags = ["predicate"]
    interval = 1
    {inlets}
    {two_outlets}
    [links.router]
    type = "predicate"
    match = "all"
    rules = [
        {{when = "pipeline_nodes.is_big", to = "x"}},
        {{metadata = {{kind = "other"}}, to = ["y"]}},
    ]
    """
    pipeline = loads(text)
    routers = [link.router for link in pipeline.links]
    assert isinstance(routers[0], MetadataRouter)
    assert isinstance(routers[1], InletRouter)
    assert isinstance(routers[2], PredicateRouter)
    pipeline.planner.force_transfer()

    def got(link: int, index: int) -> list[tuple[str, int]]:
        return [
            (r.payload["source"], r.payload["n"]) for r in outlet(pipeline, link, index).records
        ]

    a_all, b_all = [("a", 0), ("a", 1), ("a", 2)], [("b", 0)]
    assert got(0, 0) == a_all + b_all and got(0, 1) == b_all
    assert got(1, 0) == b_all and got(1, 1) == a_all + b_all
    assert got(2, 0) == [("a", 2)] and got(2, 1) == b_all


def test_observers_by_name_function_and_class(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = loads(
        'observers = ["log", {type = "log", level = "WARNING"}, "pipeline_nodes.is_big"]\n' + LINK
    )
    assert isinstance(pipeline.observers[0], LogObserver)
    assert pipeline.observers[1].level == logging.WARNING  # type: ignore[attr-defined]
    assert pipeline.observers[2] is import_path("pipeline_nodes.is_big")
    caplog.set_level(logging.INFO, logger="databay_bus")
    pipeline.observers = pipeline.observers[:2]
    pipeline.planner.remove_observer(import_path("pipeline_nodes.is_big"))
    pipeline.planner.force_transfer()
    assert pipeline.planner.flush_observers(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "databay_bus.observers"]
    assert any(line.startswith("TransferCompleted link=t update=t.0") for line in lines), lines


def test_planner_by_import_path_with_options() -> None:
    pipeline = loads(
        "[planner]\nkind = 'databay_bus.planners.ApsPlanner'\nthreads = 3\n"
        "ignore_exceptions = true\n" + LINK
    )
    assert isinstance(pipeline.planner, ApsPlanner)
    assert pipeline.planner.threads == 3
    assert pipeline.planner.ignore_exceptions is True


def test_shared_sqlite_queue_retry_and_outlet_retry(tmp_path: Path) -> None:
    queue_path = tmp_path / "q.sqlite3"
    text = f"""
    [queue]
    path = "{queue_path}"
    retention = "2h"
    purge_interval = false
    codec = "pickle"
    retry = {{max_attempts = false, initial_delay = "250ms", max_delay = "1m"}}
    {LINK}
    outlet_retry = {{x = {{max_attempts = 2}}}}
    delivery = {{batch_size = 7, max_pending = 100, key = "tee", drain_budget = "1m30s"}}

    [[links]]
    tags = ["second"]
    interval = 1
    inlets = ["pipeline_nodes.CountingInlet"]
    outlets = ["pipeline_nodes.ListOutlet"]
    retry = {{max_attempts = 9}}

    [[links]]
    tags = ["plain"]
    interval = 1
    queue = false
    inlets = ["pipeline_nodes.CountingInlet"]
    outlets = ["pipeline_nodes.ListOutlet"]
    """
    pipeline = loads(text)
    try:
        first, second, plain = pipeline.links
        queue = first.queue
        assert isinstance(queue, SqliteQueue) and queue.path == queue_path
        assert second.queue is queue and plain.queue is None
        assert pipeline.queues == [queue]
        assert queue.retention == 7200 and queue.purge_interval is None
        assert isinstance(queue.codec, PickleCodec)
        delivery: Any = first._delivery
        assert delivery.retry == RetryPolicy(max_attempts=None, initial_delay=0.25, max_delay=60)
        assert delivery.outlet_retry == {"x": RetryPolicy(max_attempts=2)}
        assert (delivery.batch_size, delivery.max_pending, delivery.key) == (7, 100, "tee")
        assert delivery.drain_budget == 90
        assert second._delivery.retry.max_attempts == 9  # type: ignore[attr-defined]
        assert second._delivery.drain_budget is None  # type: ignore[attr-defined]
    finally:
        pipeline.close()


def test_a_link_with_its_own_queue_table() -> None:
    pipeline = loads(LINK + 'queue = {kind = "memory", retention = 60}\n')
    (link,) = pipeline.links
    assert isinstance(link.queue, MemoryQueue)
    assert link.queue.retention == 60


def test_the_orjson_codec_by_name() -> None:
    pipeline = loads(LINK + 'queue = {kind = "memory", codec = "orjson"}\n')
    (link,) = pipeline.links
    assert isinstance(link.queue, MemoryQueue)
    assert isinstance(link.queue.codec, OrjsonCodec)


def test_a_queue_without_codec_gets_the_default_and_json_means_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``codec`` key: the queue's default (OrjsonCodec while orjson imports, else
    JsonCodec); ``codec = "json"`` asks for the standard library, orjson or not."""
    (link,) = loads(LINK + 'queue = {kind = "memory"}\n').links
    assert type(link.queue.codec) is OrjsonCodec
    (link,) = loads(LINK + 'queue = {kind = "memory", codec = "json"}\n').links
    assert type(link.queue.codec) is JsonCodec
    monkeypatch.setitem(sys.modules, "orjson", None)
    (link,) = loads(LINK + 'queue = {kind = "memory"}\n').links
    assert type(link.queue.codec) is JsonCodec


def test_dry_run_never_opens_the_queue_file(tmp_path: Path) -> None:
    queue_path = tmp_path / "never.sqlite3"
    pipeline = loads(f"[queue]\npath = '{queue_path}'\n" + LINK, dry_run=True)
    assert isinstance(pipeline.links[0].queue, MemoryQueue)
    assert not queue_path.exists()
    pipeline.close()


def test_dry_run_still_checks_the_queue_arguments(tmp_path: Path) -> None:
    from databay_bus.errors import ConfigError

    with pytest.raises(ConfigError, match=r"queue\.busy: SqliteQueue takes no argument 'busy'"):
        loads(f"[queue]\npath = '{tmp_path / 'q'}'\nbusy = 3\n" + LINK, dry_run=True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ack_sync = 'sometimes'", r"ack_sync must be 'normal' or 'full', got 'sometimes'"),
        ("busy_timeout = 'long'", r"busy_timeout must be seconds \(finite, >= 0\), got 'long'"),
        ("busy_timeout = inf", r"busy_timeout must be seconds \(finite, >= 0\), got inf"),
        ("busy_timeout = nan", r"busy_timeout must be seconds \(finite, >= 0\), got nan"),
        ("file_mode = 0o7777", r"file_mode must be permission bits .* got 4095"),
    ],
)
def test_dry_run_checks_what_only_sqlitequeue_takes(
    tmp_path: Path, line: str, message: str
) -> None:
    from databay_bus.errors import ConfigError

    queue_path = tmp_path / "never.sqlite3"
    with pytest.raises(ConfigError, match=message):
        loads(f"[queue]\npath = '{queue_path}'\n{line}\n" + LINK, dry_run=True)
    assert not queue_path.exists()


def test_run_stops_after_the_requested_transfers_and_closes_the_queue() -> None:
    pipeline = loads("[queue]\nkind = 'memory'\n" + LINK.replace("interval = 1", "interval = 0.05"))
    reason = pipeline.run(transfers=3)
    assert reason == "transfers"
    assert pipeline.final_metrics is not None
    (entry,) = pipeline.final_metrics["links"]
    assert entry["transfers"] >= 3
    assert entry["queue"]["pending"] == 0
    assert len(outlet(pipeline).records) == entry["records_pulled"]
    assert not pipeline.planner.running


def test_run_stops_when_the_event_is_set_and_reports_status() -> None:
    pipeline = loads(LINK.replace("interval = 1", "interval = 0.05"))
    stop = threading.Event()
    lines: list[str] = []

    def status(line: str) -> None:
        lines.append(line)
        stop.set()

    assert pipeline.run(stop=stop, status_interval=0.1, status=status) == "stopped"
    assert lines and lines[0].startswith("t: transfers=")


def test_run_stops_after_the_duration() -> None:
    pipeline = loads(LINK)
    assert pipeline.run(duration=0.2) == "duration"


def test_run_reports_failed_when_the_planner_stops_itself() -> None:
    """An unignored outlet failure makes the planner shut down; run() says so."""
    pipeline = loads(
        LINK.replace("interval = 1", "interval = 0.05").replace(
            'outlets = [{type = "pipeline_nodes.ListOutlet", name = "x"}]',
            'outlets = [{type = "pipeline_nodes.FlakyFileOutlet", path = "unused", '
            'broken_flag = "/"}]',
        )
    )
    assert pipeline.run(duration=30) == "failed"


def test_describe_shows_the_resolved_pipeline_and_masks_secrets() -> None:
    text = (
        "log_level = 'DEBUG'\nobservers = ['log']\n[queue]\nkind = 'memory'\n"
        + LINK.replace(
            '["pipeline_nodes.CountingInlet"]',
            '[{type = "pipeline_nodes.CountingInlet", name = "${TOKEN}"}]',
        )
        + 'processors = ["pipeline_nodes.add_one"]\n'
        + 'router = {type = "metadata", key = "kind", routes = {count = "x"}}\n'
    )
    pipeline = loads(text, env={"TOKEN": "in"})
    shown = pipeline.describe()
    assert "planner: ApsPlanner (aps)" in shown
    assert "log level: DEBUG" in shown
    assert "link 't' every 1s (queued)" in shown
    assert "inlet: pipeline_nodes.CountingInlet name='in'" in shown
    assert "processor: pipeline_nodes.add_one" in shown
    assert "router: metadata key='kind' routes={count='x'}" in shown
    from databay_bus.config.pipeline import _args

    assert _args({"headers": {"Authorization": "Bearer x"}, "password": "p", "url": "u"}) == (
        " headers=*** password=*** url='u'"
    )


def test_names_resolve_short_names_and_import_paths() -> None:
    assert resolve("router", "Metadata") is MetadataRouter
    assert import_path("databay_bus.link:Link") is Link
    assert import_path("databay_bus.link.Link") is Link
    with pytest.raises(ImportFailed, match="not an import path"):
        import_path("a..b")
    with pytest.raises(ImportFailed, match="unknown inlet 'zzz'"):
        resolve("inlet", "zzz")
