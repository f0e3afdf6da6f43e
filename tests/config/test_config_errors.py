"""Every way a pipeline file can be wrong gets a ConfigError naming the key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_nodes import LINK

from databay_bus.config import load, loads
from databay_bus.errors import ConfigError, ConfigurationError

QUEUE = """
[queue]
kind = "memory"
"""


def link(**changes: str) -> str:
    """LINK with some of its lines replaced or added (``key='toml value'``)."""
    lines = LINK.strip().splitlines()
    out = [lines[0]]
    keys = {line.split("=")[0].strip(): line for line in lines[1:]}
    for key, value in changes.items():
        keys[key] = f"{key} = {value}" if value is not None else ""
    out.extend(line for line in keys.values() if line)
    return "\n".join(out) + "\n"


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(text, source="test.toml", env=env or {})
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert str(error).startswith("test.toml: ")
    return [f"{path}: {reason}" if path else reason for path, reason in error.problems]


CASES = [
    # intervals
    ("interval-negative", link(interval="-5"), "links[0].interval: must be > 0, got -5"),
    ("interval-zero", link(interval="0"), "links[0].interval: must be > 0, got 0"),
    ("interval-unit", link(interval='"5x"'), "links[0].interval: must be a number of seconds"),
    ("interval-type", link(interval="true"), "links[0].interval: must be a number of seconds"),
    ("interval-missing", link(interval=None), "links[0]: a link needs 'interval'"),
    # objects by name
    (
        "cannot-import",
        link(outlets='["acme.sinks.Foo"]'),
        "links[0].outlets[0]: cannot import 'acme.sinks.Foo': No module named 'acme'",
    ),
    (
        "no-attribute",
        link(outlets='["pipeline_nodes.Nope"]'),
        "links[0].outlets[0]: cannot import 'pipeline_nodes.Nope': module 'pipeline_nodes' has "
        "no attribute 'Nope'",
    ),
    ("unknown-short-name", link(inlets='["htp"]'), "links[0].inlets[0]: unknown inlet 'htp'"),
    (
        "unknown-argument",
        link(outlets='[{type = "pipeline_nodes.ListOutlet", nme = "x"}]'),
        "links[0].outlets[0].nme: ListOutlet takes no argument 'nme' (its arguments: name)",
    ),
    (
        "missing-argument",
        link(outlets='[{type = "pipeline_nodes.JsonLinesOutlet"}]'),
        "links[0].outlets[0]: JsonLinesOutlet needs the argument 'path'",
    ),
    (
        "constructor-raises",
        link(router='{type = "metadata", key = "k", routes = "x"}'),
        "links[0].router: MetadataRouter(...) raised ConfigurationError",
    ),
    ("spec-type", link(processors="[3]"), "links[0].processors[0]: must be a name"),
    (
        "spec-without-type",
        link(inlets="[{per_pull = 2}]"),
        "links[0].inlets[0]: a table naming an object needs 'type'",
    ),
    (
        "wrong-kind",
        link(inlets='["pipeline_nodes.ListOutlet"]'),
        "links[0].inlets[0]: 'pipeline_nodes.ListOutlet' gave ListOutlet",
    ),
    (
        "not-callable",
        link(processors='["pipeline_nodes.__all__"]'),
        "links[0].processors[0]: 'pipeline_nodes.__all__' is",
    ),
    ("no-inlets", link(inlets="[]"), "links[0].inlets: a link needs at least one inlet"),
    ("no-outlets", link(outlets=None), "links[0].outlets: a link needs at least one outlet"),
    # structure
    ("unknown-top-key", LINK + "\nextra = 1\n", "links[0].extra: unknown key"),
    ("unknown-top-key-2", "extra = 1\n" + LINK, "extra: unknown key (known keys: log_level"),
    ("unknown-link-key", link(intervall="3"), "links[0].intervall: unknown key"),
    ("no-links", "log_level = 'INFO'\n", "links: must be a non-empty list of link tables"),
    ("links-not-list", "links = 3\n", "links: must be a non-empty list"),
    ("link-not-table", "links = [3]\n", "links[0]: must be a table"),
    ("tags", link(tags="[1]"), "links[0].tags: must be a string or a list of strings"),
    ("bool-option", link(ignore_exceptions='"yes"'), "links[0].ignore_exceptions: must be true"),
    (
        "inlet-concurrency",
        link(inlet_concurrency="0"),
        "links[0].inlet_concurrency: must be an integer >= 1",
    ),
    ("log-level", "log_level = 'LOUD'\n" + LINK, "log_level: must be one of DEBUG"),
    # routers
    (
        "route-to-missing-outlet",
        link(router='{type = "metadata", key = "k", routes = {a = "zz"}}'),
        "links[0].router: MetadataRouter(key='k'): routes['a'] names outlet 'zz'",
    ),
    (
        "rule-without-to",
        link(router='{type = "predicate", rules = [{when = "pipeline_nodes.is_big"}]}'),
        "links[0].router.rules[0]: must be a table with 'to'",
    ),
    (
        "rule-when-and-metadata",
        link(router='{type = "predicate", rules = [{when = "x.y", metadata = {a = 1}, to = "x"}]}'),
        "links[0].router.rules[0]: give exactly one of 'when' and 'metadata'",
    ),
    (
        "rule-unknown-key",
        link(router='{type = "predicate", rules = [{iff = "x.y", to = "x"}]}'),
        "links[0].router.rules[0].iff: unknown key",
    ),
    (
        "rule-when-import",
        link(router='{type = "predicate", rules = [{when = "acme.pred", to = "x"}]}'),
        "links[0].router.rules[0].when: cannot import 'acme.pred'",
    ),
    (
        "rules-not-list",
        link(router='{type = "predicate", rules = 3}'),
        "links[0].router.rules: must be a list of rule tables",
    ),
    # planner
    ("planner-kind", "[planner]\nkind = 'apss'\n" + LINK, "planner: unknown planner 'apss'"),
    (
        "planner-option",
        "[planner]\nthread = 2\n" + LINK,
        "planner.thread: ApsPlanner takes no argument 'thread'",
    ),
    ("planner-links", "[planner]\nlinks = []\n" + LINK, "planner.links: declare links as"),
    (
        "schedule-refresh",
        "[planner]\nkind = 'schedule'\nrefresh_interval = 5\n" + LINK,
        "links[0].interval: ",
    ),
    ("planner-not-table", "planner = 'aps'\n" + LINK, "planner: must be a table"),
    # queue
    ("retention", "[queue]\nretention = -1\n" + LINK, "queue.retention: must be > 0, got -1"),
    ("queue-kind", "[queue]\nkind = 'nosuch'\n" + LINK, "queue: unknown queue 'nosuch'"),
    ("codec", "[queue]\ncodec = 'xml'\n" + LINK, "queue.codec: unknown codec 'xml'"),
    (
        "queue-retry",
        "[queue]\nretry = {max_attempts = 0}\n" + LINK,
        "queue.retry: RetryPolicy(...) raised ConfigurationError: RetryPolicy: max_attempts",
    ),
    (
        "retry-delay",
        "[queue]\nretry = {initial_delay = 'soon'}\n" + LINK,
        "queue.retry.initial_delay: must be a number of seconds",
    ),
    (
        "retry-without-queue",
        link(retry="{max_attempts = 2}"),
        "links[0].retry: only applies to a queued link; add a [queue] table",
    ),
    (
        "retry-with-queue-false",
        QUEUE + link(queue="false", retry="{max_attempts = 2}"),
        "links[0].retry: only applies to a queued link; this link has queue = false",
    ),
    (
        "queue-true-without-table",
        link(queue="true"),
        "links[0].queue: is true but the file has no [queue] table",
    ),
    ("queue-type", QUEUE + link(queue="3"), "links[0].queue: must be true, false or a queue"),
    (
        "outlet-retry-name",
        QUEUE + link(outlet_retry="{nope = {max_attempts = 2}}"),
        "links[0].outlet_retry.nope: the link has no outlet named 'nope' (outlet names: x;",
    ),
    (
        "delivery-key",
        QUEUE + link(delivery="{batchsize = 3}"),
        "links[0].delivery.batchsize: unknown key (known keys: key, max_pending, batch_size, "
        "drain_budget, isolate_poison, max_isolation_pushes)",
    ),
    (
        "delivery-drain-budget-text",
        QUEUE + link(delivery='{drain_budget = "soon"}'),
        "links[0].delivery.drain_budget: must be a number of seconds or a duration like",
    ),
    (
        "delivery-drain-budget-value",
        QUEUE + link(delivery="{drain_budget = -1}"),
        "links[0]: ConfigurationError: ",
    ),
    (
        "delivery-value",
        QUEUE + link(delivery="{batch_size = 0}"),
        "links[0]: ConfigurationError: ",
    ),
    (
        "queued-link-without-tags",
        QUEUE + link(tags="[]"),
        "links[0]: QueueIdentityError: ",
    ),
    (
        "duplicate-outlet-names",
        QUEUE + link(outlets='["pipeline_nodes.ListOutlet", "pipeline_nodes.ListOutlet"]'),
        "links[0]: InvalidNodeError: ",
    ),
    # observers
    ("observers-type", "observers = 'log'\n" + LINK, "observers: must be a list of observers"),
    (
        "observer-import",
        "observers = ['acme.Watcher']\n" + LINK,
        "observers[0]: cannot import 'acme.Watcher'",
    ),
    # variables
    (
        "unset-variable",
        link(outlets='[{type = "pipeline_nodes.ListOutlet", name = "${NOPE}"}]'),
        "links[0].outlets[0].name: environment variable 'NOPE' is not set",
    ),
    # parsing
    ("toml-syntax", "links = [", "invalid TOML: "),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_names_the_key_path_and_the_reason(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = "log_level = 'LOUD'\n" + link(interval="-5", outlets='["acme.sinks.Foo"]')
    problems = problems_of(text)
    assert problems == [
        "log_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL or a number, "
        "got 'LOUD' (str)",
        "links[0].interval: must be > 0, got -5",
        "links[0].outlets[0]: cannot import 'acme.sinks.Foo': No module named 'acme'",
    ]


def test_the_message_lists_every_problem_on_its_own_line() -> None:
    with pytest.raises(ConfigError) as caught:
        loads(link(interval="-5", inlets="[]"), source="p.toml")
    lines = str(caught.value).splitlines()
    assert lines[0] == "p.toml: 2 problems"
    assert lines[1:] == [
        "  links[0].interval: must be > 0, got -5",
        "  links[0].inlets: a link needs at least one inlet",
    ]


def test_one_problem_makes_a_one_line_message() -> None:
    with pytest.raises(ConfigError, match=r"^p.toml: links\[0\].interval: must be > 0, got -5$"):
        loads(link(interval="-5"), source="p.toml")


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml: cannot read the file"):
        load(path)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{links: []}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p\.json: invalid JSON"):
        load(path)


def test_a_json_file_that_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="the file must hold a table at the top"):
        load(path)


def test_a_failed_load_closes_the_queue_it_opened(tmp_path: Path) -> None:
    """A problem after the queue was built must not leave its file locked."""
    queue_path = tmp_path / "q.sqlite3"
    text = f"[queue]\npath = '{queue_path}'\n" + LINK + link(interval="-1")
    with pytest.raises(ConfigError):
        loads(text)
    from databay_bus.queue import SqliteQueue

    with SqliteQueue(queue_path):  # would raise QueueLockedError if still held
        pass
