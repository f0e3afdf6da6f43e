"""Run Databay 0.3.0's own test suite against the installed databay_bus, and classify failures.

databay_bus promises that Databay 0.3.0 code runs after changing ``databay`` to ``databay_bus``
in its imports. This tool checks that promise with Databay's own tests:

1. it copies the ``test/`` folder of a Databay checkout into a temporary directory;
2. it rewrites every reference to the ``databay`` package: the name ``databay`` in code
   (``import databay``, ``from databay.link import Link``, ``databay.Link``) and dotted paths in
   string literals (``patch('databay.link.Link._run')``, ``getLogger('databay.Link')``); a bare
   ``'databay'`` string (a database name, the root logger's name) is left as it is;
3. it runs pytest on the copy, in a subprocess, against whatever ``databay_bus`` Python imports
   (the installed package; put a source tree first with ``PYTHONPATH``);
4. it prints each test with its outcome, and classifies every failure with the table
   :data:`RULES`: the test patches a private internal of Databay (``private``), it checks a
   behaviour listed in docs/databay-compatibility.md (``documented``, with the section), or
   neither (``unexpected``). The exit status is 1 when a failure is unexpected.

Nothing is fetched: the tool needs a checkout of Databay's *repository*. The sdist on the
package index contains no tests. Get the 0.3.0 release with::

    git clone https://github.com/Voyz/databay /tmp/databay
    git -C /tmp/databay checkout v0.3.0

Run (from the repository root; about a minute, Databay's planner tests sleep)::

    python tools/databay_suite.py /tmp/databay
    python tools/databay_suite.py /tmp/databay --json results.json -- -k test_link

Databay's tests need mongomock and aiohttp (the ``dev`` extra installs both).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMPATIBILITY_PAGE",
    "RULES",
    "RULES_VERSION",
    "Outcome",
    "Rule",
    "Summary",
    "checkout_version",
    "classify",
    "copy_suite",
    "main",
    "rewrite_source",
    "run_suite",
    "summarize",
]

COMPATIBILITY_PAGE = "docs/databay-compatibility.md"
"""The page every ``documented`` rule points into (``section`` is one of its headings)."""

PRIVATE = "private"
DOCUMENTED = "documented"
UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class Rule:
    """Why the tests whose id matches ``pattern`` (an fnmatch pattern) are expected to fail.

    ``kind`` is ``private`` (the test patches or reads a private internal of Databay, which
    databay_bus does not have) or ``documented`` (the test checks a behaviour that differs on
    purpose; ``section`` is the heading of docs/databay-compatibility.md that says why).
    """

    pattern: str
    kind: str
    reason: str
    section: str = ""


def _rules(kind: str, reason: str, section: str, module: str, *names: str) -> list[Rule]:
    """One rule per test ``module::name`` (``module`` holds the class: ``file.py::Class``);
    each of ``names`` may hold several test names separated by white space."""
    tests = [name for chunk in names for name in chunk.split()]
    return [Rule(f"test/{module}::{name}", kind, reason, section) for name in tests]


_APS = "integration/test_aps_planner.py::TestApsPlanner"
_SCHEDULE = "integration/test_schedule_planner.py::TestSchedulePlanner"
_BASE = "unit/test_base_planner.py::TestBasePlanner"
_LINK = "unit/test_link.py::TestLink"
_LINK_I = "integration/test_link_i.py::TestLink"
_INLET = "unit/test_inlet.py::TestInlet"
_OUTLET = "unit/test_outlet.py::TestOutlet"
_HTTP = "unit/unit_inlets/test_http_inlet.py::TestHttpInlet"
_MONGO = "unit/unit_outlets/test_mongo_outlet.py::TestMongoOutlet"
_BUFFERS = "unit/test_buffers.py::TestBuffers"

# Test ids are pytest node ids relative to the copied test/ folder, e.g.
# "test/unit/test_link.py::TestLink::test_transfer". The first matching rule wins. A rule names
# single tests, never a whole file, so a new failure elsewhere in a file shows as unexpected.
RULES: tuple[Rule, ...] = (
    # -- private internals: the test reads, sets, patches or calls a private name of Databay --
    *_rules(
        PRIVATE,
        "mocks Inlet/Outlet with spec= and feeds the link through _pull/_push, Databay's "
        "private coroutines; databay_bus's link calls pull/push",
        "",
        _LINK,
        """test_transfer test_run test_add_inlet test_add_inlet_multiple test_add_inlet_same
        test_add_outlet test_add_outlet_multiple test_add_outlet_same test_remove_inlet
        test_remove_inlet_invalid test_remove_outlet test_remove_outlet_invalid
        test_exception_caught test_exception_inlet test_exception_outlet
        test_generic_error_raised test_ignore_partial_exception test_inlet_concurrency
        test_grouper_exception test_grouper_exception_ignored test_groupers_many_active
        test_groupers_one_active test_groupers_one_passive test_processor_exception
        test_processor_exception_ignored test_processors_change_records
        test_processors_filter_records test_processors_many test_processors_one test_on_start
        test_on_start_already_active test_on_start_inlet_exception_catch
        test_on_start_inlet_exception_raise test_on_start_outlet_exception_catch
        test_on_start_outlet_exception_raise test_on_shutdown test_on_shutdown_already_inactive
        test_on_shutdown_inlet_exception_catch test_on_shutdown_inlet_exception_raise
        test_on_shutdown_outlet_exception_catch
        test_on_shutdown_outlet_exception_raise""",
    ),
    *_rules(
        PRIVATE,
        "mocks the inlet with spec=Inlet and sets its _pull, Databay's private coroutine",
        "",
        "integration/test_buffers_i.py::TestBuffers",
        "test_buffer_count",
        "test_buffer_time",
        "test_flush",
        "test_flush_after_shutdown",
    ),
    *_rules(
        PRIVATE,
        "awaits Inlet._pull, Databay's private wrapper of pull (databay_bus: pull, then "
        "databay_bus.inlets.base.wrap_pulled)",
        "",
        _INLET,
        "test_pull_raw",
        "test_pull_raw_array",
        "test_pull_record",
        "test_pull_record_array",
        "test_pull_multiple_raw",
        "test_pull_multiple_records",
    ),
    *_rules(
        PRIVATE,
        "awaits HttpInlet._pull with aiohttp.ClientSession (and ssl) patched: how HttpInlet "
        "uses aiohttp (one session per inlet on a background loop) is internal",
        "",
        _HTTP,
        """test_json test_html test_invalid_json test_invalid_html test_empty_response
        test_cacert test_params test_params_none test_headers test_pull
        test_dont_read_metadata""",
    ),
    *_rules(
        PRIVATE,
        "awaits Outlet._push, Databay's private wrapper running processors then push",
        "",
        _OUTLET,
        """test_push test_push_async test_processors_one test_processors_many
        test_processors_change_records test_processors_filter_records""",
    ),
    *[
        rule
        for module in (
            "unit/unit_outlets/test_csv_outlet.py::TestCsvOutlet",
            "unit/unit_outlets/test_file_outlet.py::TestFileOutlet",
        )
        for rule in _rules(
            PRIVATE,
            "awaits Outlet._push, Databay's private wrapper running processors then push",
            "",
            module,
            "test_push_append_mode",
            "test_push_write_mode",
            "test_push_custom_files",
        )
    ],
    *_rules(
        PRIVATE,
        "awaits Outlet._push, Databay's private wrapper running processors then push",
        "",
        "unit/unit_outlets/test_print_outlet.py::TestPrintOutlet",
        "test_push",
        "test_push_only_payload",
        "test_push_skip_update",
    ),
    *_rules(
        PRIVATE,
        "sets the private _active flag; databay_bus nodes count their holders instead",
        "",
        _INLET,
        "test_try_shutdown",
        "test_try_shutdown_multiple",
        "test_try_shutdown_race_condition",
        "test_try_start_already_active",
    ),
    *_rules(
        PRIVATE,
        "sets the private _active flag; databay_bus nodes count their holders instead",
        "",
        _OUTLET,
        "test_try_shutdown",
        "test_try_shutdown_multiple",
        "test_try_shutdown_race_condition",
        "test_try_start_already_active",
    ),
    *_rules(
        PRIVATE,
        "sets the private _active flag; databay_bus nodes count their holders instead",
        "",
        _LINK_I,
        "test_on_start_already_active",
        "test_on_shutdown",
    ),
    *_rules(
        PRIVATE,
        "calls MongoOutlet's private helpers _add_collection/_get_collection/"
        "_group_by_collection",
        "",
        _MONGO,
        "test__add_collection",
        "test__add_collection_invalid",
        "test__get_collection",
        "test__get_collection_invalid",
        "test__group_by_collection",
        "test__group_by_collection_list_payload",
    ),
    *_rules(
        PRIVATE,
        "calls Buffer's private _execute/_time_controller",
        "",
        _BUFFERS,
        "test_execute_conjoint_false",
        "test_execute_conjoint_true",
        "test_execute_disjoint",
        "test_time_controller",
    ),
    *_rules(
        PRIVATE,
        "calls _schedule/_unschedule directly or reads planner._scheduler (APScheduler's "
        "scheduler exists only while the planner runs)",
        "",
        _APS,
        "test__schedule",
        "test__unschedule",
        "test__unschedule_invalid",
        "test_pause",
        "test_resume",
        "test_shutdown_paused",
        "test_purge_after_shutdown",
    ),
    *_rules(
        PRIVATE,
        "reads or sets SchedulePlanner's privates (_running, _create_thread_pool, "
        "_refresh_interval as a float, _schedule)",
        "",
        _SCHEDULE,
        """test__run_job test__schedule test_start test_shutdown
        test_start_when_already_running test_invalid_interval test_ignore_exception
        test_raise_exception""",
    ),
    *_rules(PRIVATE, "calls the private _at_exit_callback", "", _BASE, "test_shutdown_at_exit"),
    # -- documented differences: docs/databay-compatibility.md#<section> says what and why -----
    *_rules(
        DOCUMENTED,
        "asserts on logs of 'databay.BasePlanner' / 'databay.Buffer': the loggers are named "
        "after modules (databay_bus.planners.base, databay_bus.processors.buffer)",
        "logging",
        _APS,
        "test_ignore_exception",
        "test_raise_exception",
        "test_uncommon_exception",
    ),
    *_rules(
        DOCUMENTED,
        "asserts on logs of 'databay.BasePlanner': the loggers are named after modules",
        "logging",
        _SCHEDULE,
        "test_uncommon_exception",
        "test_immediate_transfer_exception",
    ),
    *_rules(
        DOCUMENTED,
        "asserts on logs of 'databay.BasePlanner': the loggers are named after modules",
        "logging",
        _BASE,
        "test_force_transfer_exception",
        "test_immediate_transfer_exception",
        "test_link_on_start_exception",
    ),
    *_rules(
        DOCUMENTED,
        "asserts on logs of 'databay.Buffer': the loggers are named after modules",
        "logging",
        _BUFFERS,
        "test_custom_exception",
        "test_custom_exception_conjoint",
    ),
    *_rules(
        DOCUMENTED,
        "expects link.job right after add_links; the built-in planners make jobs at start()",
        "planners",
        _APS,
        "test_add_links",
        "test_add_links_on_init",
        "test_purge",
    ),
    *_rules(
        DOCUMENTED,
        "expects link.job right after add_links; the built-in planners make jobs at start()",
        "planners",
        _SCHEDULE,
        "test_add_links",
        "test_add_links_on_init",
        "test_purge",
    ),
    *_rules(
        DOCUMENTED,
        "expects running to be True at once after Thread(target=planner.start).start(); "
        "it is True once start() has started the nodes and the scheduler",
        "planners",
        _APS,
        "test_start",
        "test_start_shutdown",
    ),
    *_rules(
        DOCUMENTED,
        "expects APScheduler's SchedulerNotRunningError from pause()/resume() right after "
        "shutdown(wait=False) of a planner still starting; both are accepted while starting "
        "(and a stopped planner raises PlannerStateError)",
        "planners",
        _APS,
        "test_pause_shutdown",
        "test_resume_shutdown",
    ),
    *_rules(
        DOCUMENTED,
        "expects the immediate transfer done right after the thread running start() began; the "
        "built-in planners run it on a worker once started (it also reads 'databay.BasePlanner' "
        "logs)",
        "planners",
        _APS,
        "test_immediate_transfer_exception",
    ),
    *_rules(
        DOCUMENTED,
        "databay.config (initialise(), the Windows and Python 3.6 patches) is not provided",
        "installing-and-importing",
        "unit/test_config.py::TestConfig",
        "test_asyncio_monkey_patch",
        "test_asyncio_monkey_patch_no_loop",
        "test_asyncio_monkey_patch_other_error",
        "test_not_windows_1252",
        "test_windows_1252",
        "test_windows_1252_ignored",
        "test_windows_1252_incorrect_ignore",
    ),
    *_rules(
        DOCUMENTED,
        "uses a zero interval, which Link refuses",
        "links",
        _LINK_I,
        "test_await_pull_multiple_sync",
    ),
    *_rules(
        DOCUMENTED,
        "records mocked with spec=Record have a mock id, so the outlet keys documents on it "
        "as for queued records",
        "records-and-updates",
        _MONGO,
        "test_push",
    ),
    *_rules(
        DOCUMENTED,
        "push while not started raises NodeInactiveError instead of returning False",
        "inlets-and-outlets",
        _MONGO,
        "test_push_inactive",
    ),
)


@dataclass(frozen=True)
class Outcome:
    """The result of one test: ``passed``, ``failed`` or ``skipped``, with the failure message."""

    test: str
    result: str
    message: str = ""


@dataclass
class Summary:
    """Counts of one run, and each failure with its classification."""

    passed: int = 0
    skipped: int = 0
    private: int = 0
    documented: int = 0
    unexpected: int = 0
    failures: list[tuple[Outcome, Rule | None]] | None = None
    unused_rules: list[Rule] | None = None

    @property
    def failed(self) -> int:
        """Every failing test, whatever its classification."""
        return self.private + self.documented + self.unexpected


def classify(test: str, rules: Sequence[Rule] = RULES) -> Rule | None:
    """Return the first rule whose pattern matches the test id, or None (unexpected)."""
    for rule in rules:
        if fnmatch.fnmatchcase(test, rule.pattern):
            return rule
    return None


def summarize(outcomes: Iterable[Outcome], rules: Sequence[Rule] = RULES) -> Summary:
    """Count the outcomes and classify each failure; list the rules no failure needed."""
    summary = Summary(failures=[], unused_rules=[])
    used: set[Rule] = set()
    assert summary.failures is not None and summary.unused_rules is not None
    for outcome in outcomes:
        if outcome.result == "passed":
            summary.passed += 1
        elif outcome.result == "skipped":
            summary.skipped += 1
        else:
            rule = classify(outcome.test, rules)
            summary.failures.append((outcome, rule))
            if rule is None:
                summary.unexpected += 1
            else:
                used.add(rule)
                if rule.kind == PRIVATE:
                    summary.private += 1
                else:
                    summary.documented += 1
    summary.unused_rules.extend(rule for rule in rules if rule not in used)
    return summary


_DOTTED = re.compile(r"databay(\.[A-Za-z_]\w*)+")
_VERSION = re.compile(r"""version\s*=\s*['"]([^'"]+)['"]""")

#: The release the rules were written for.
RULES_VERSION = "0.3.0"


def checkout_version(checkout: Path) -> str | None:
    """The version in the checkout's setup.py, or None when it cannot be read."""
    try:
        match = _VERSION.search((checkout / "setup.py").read_text(encoding="utf-8"))
    except OSError:
        return None
    return match.group(1) if match else None


def rewrite_source(source: str) -> str:
    """Return ``source`` with each reference to the ``databay`` package made to ``databay_bus``.

    Rewritten: the name ``databay`` (imports and attribute access) and string literals holding a
    dotted path that starts with ``databay.`` (``patch()`` targets, child logger names).
    """
    edits: list[tuple[int, int, int, str]] = []  # (row, start col, end col, new text)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.NAME and token.string == "databay":
            edits.append((token.start[0], token.start[1], token.end[1], "databay_bus"))
        elif token.type == tokenize.STRING and token.start[0] == token.end[0]:
            text = token.string
            quote_at = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
            body = text[quote_at:].strip("'\"")
            if _DOTTED.fullmatch(body):
                new = text[:quote_at] + text[quote_at:].replace("databay", "databay_bus", 1)
                edits.append((token.start[0], token.start[1], token.end[1], new))
    lines = source.splitlines(keepends=True)
    for row, start, end, new in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + new + line[end:]
    return "".join(lines)


def copy_suite(checkout: Path, destination: Path) -> Path:
    """Copy ``checkout/test`` to ``destination/test``, rewriting its Python files; return it."""
    source = checkout / "test"
    if not source.is_dir():
        raise SystemExit(
            f"{checkout}: no test/ folder. Databay's sdist has no tests; use a checkout of its "
            "repository (git clone https://github.com/Voyz/databay; git checkout v0.3.0)."
        )
    target = destination / "test"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(rewrite_source(text), encoding="utf-8")
    return target


_PLUGIN = '''
"""Written by tools/databay_suite.py: records each test's outcome as one JSON line."""
import json
import os

_RESULTS = {}


def pytest_collection_finish(session):
    for item in session.items:  # a test pytest never gets to run stays failed: "not run"
        _RESULTS[item.nodeid] = {"result": "failed", "message": "not run", "ran": False}


def pytest_runtest_logreport(report):
    entry = _RESULTS.setdefault(report.nodeid, {"result": "failed", "message": "", "ran": False})
    if not entry["ran"]:
        entry.update(result="passed", message="", ran=True)
    if report.failed and entry["result"] != "failed":
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        entry.update(result="failed", message=message.splitlines()[0] if message else "")
    elif report.skipped and entry["result"] == "passed":
        entry["result"] = "skipped"


def pytest_collectreport(report):
    if report.failed:
        errors = [x for x in str(report.longrepr).splitlines() if x.startswith("E ")]
        message = errors[-1][1:].strip() if errors else "collection failed"
        _RESULTS[report.nodeid] = {"result": "failed", "message": message, "ran": True}


def pytest_sessionfinish(session):
    with open(os.environ["DATABAY_SUITE_RESULTS"], "w", encoding="utf-8") as out:
        for test, entry in _RESULTS.items():
            out.write(json.dumps({"test": test, **entry}) + "\\n")
'''


def run_suite(
    suite: Path,
    pytest_args: Sequence[str] = (),
    timeout: float = 900.0,
    test_timeout: float = 60.0,
) -> list[Outcome]:
    """Run pytest on the copied ``suite`` folder in a subprocess and return each test's outcome.

    ``test_timeout`` fails a single hung test (with pytest-timeout, when installed); ``timeout``
    bounds the whole run. pytest's own output goes to ``pytest.log`` beside the suite.
    """
    work = suite.parent
    plugin_dir = work / "_plugin"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "databay_suite_plugin.py").write_text(textwrap.dedent(_PLUGIN), "utf-8")
    # An ini file of our own, so no configuration of the surrounding project applies.
    # Databay's suite is a unittest suite: only TestCase classes hold tests. A module-level
    # ``async def test_coroutine`` helper would otherwise be collected as a test.
    ini = "[pytest]\npython_functions = databay_suite_collects_no_plain_functions\n"
    if importlib.util.find_spec("pytest_timeout") is not None:
        ini += f"timeout = {test_timeout:g}\ntimeout_method = signal\n"
    (suite / "pytest.ini").write_text(ini, encoding="utf-8")
    results = work / "results.jsonl"
    env = dict(os.environ)
    paths = [str(suite), str(plugin_dir)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["DATABAY_SUITE_RESULTS"] = str(results)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "databay_suite_plugin",
        "-p",
        "no:cacheprovider",
        "-v",
        "--continue-on-collection-errors",
        "--tb=native",  # pytest's own traceback formatting crashed once on these tests
        "--rootdir",
        str(suite),
        "-c",
        str(suite / "pytest.ini"),
        *pytest_args,
    ]
    with open(work / "pytest.log", "wb") as log:
        subprocess.run(
            command,
            cwd=suite,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if not results.exists():
        raise SystemExit("pytest did not run (no results written); run it by hand to see why")
    outcomes = []
    for line in results.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        outcomes.append(Outcome(entry["test"], entry["result"], entry["message"]))
    return sorted(outcomes, key=lambda outcome: outcome.test)


def _report(outcomes: Sequence[Outcome], summary: Summary) -> str:
    labels = {id(outcome): "" for outcome in outcomes}
    assert summary.failures is not None and summary.unused_rules is not None
    for outcome, rule in summary.failures:
        if rule is None:
            labels[id(outcome)] = f"  [{UNEXPECTED}] {outcome.message}"
        elif rule.kind == PRIVATE:
            labels[id(outcome)] = f"  [{PRIVATE}] {rule.reason}"
        else:
            labels[id(outcome)] = (
                f"  [{DOCUMENTED}: {COMPATIBILITY_PAGE}#{rule.section}] {rule.reason}"
            )
    lines = [f"{o.result.upper():8} {o.test}{labels[id(o)]}" for o in outcomes]
    lines.append("")
    if summary.unused_rules:
        lines.append("rules that matched no failure (the difference may be gone; drop them):")
        lines.extend(f"  {rule.pattern}" for rule in summary.unused_rules)
        lines.append("")
    lines.append(
        f"{summary.passed} passed, {summary.failed} failed "
        f"({summary.private} private internal, {summary.documented} documented difference, "
        f"{summary.unexpected} unexpected), {summary.skipped} skipped"
    )
    return "\n".join(lines)


def _as_json(outcomes: Sequence[Outcome], summary: Summary) -> dict[str, object]:
    rules = {id(outcome): rule for outcome, rule in summary.failures or []}
    tests = []
    for outcome in outcomes:
        entry: dict[str, object] = {"test": outcome.test, "result": outcome.result}
        if outcome.result == "failed":
            rule = rules.get(id(outcome))
            entry["message"] = outcome.message
            entry["kind"] = rule.kind if rule else UNEXPECTED
            entry["reason"] = rule.reason if rule else None
            entry["section"] = rule.section or None if rule else None
        tests.append(entry)
    counts = {
        "passed": summary.passed,
        PRIVATE: summary.private,
        DOCUMENTED: summary.documented,
        UNEXPECTED: summary.unexpected,
        "skipped": summary.skipped,
    }
    return {"counts": counts, "tests": tests}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns 1 when a failure is unexpected."""
    parser = argparse.ArgumentParser(
        description="Run Databay 0.3.0's test suite against databay_bus and classify failures.",
        epilog="Arguments after -- go to pytest.",
    )
    parser.add_argument("checkout", type=Path, help="a checkout of Databay's repository (0.3.0)")
    parser.add_argument("--json", type=Path, help="also write the outcomes and counts here")
    parser.add_argument("--keep", action="store_true", help="keep the rewritten copy; print it")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument(
        "--test-timeout", type=float, default=60.0, help="seconds before one test counts as hung"
    )
    args, pytest_args = parser.parse_known_args(argv)
    pytest_args = [arg for arg in pytest_args if arg != "--"]
    version = checkout_version(args.checkout)
    if version != RULES_VERSION:
        print(
            f"warning: {args.checkout} holds Databay {version or '(version unknown)'}; the "
            f"rules were written for {RULES_VERSION}",
            file=sys.stderr,
        )
    work = Path(tempfile.mkdtemp(prefix="databay_suite_"))
    try:
        suite = copy_suite(args.checkout, work)
        outcomes = run_suite(suite, pytest_args, args.timeout, args.test_timeout)
    finally:
        if args.keep:
            print(f"rewritten suite kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(outcomes)
    print(_report(outcomes, summary))
    if args.json:
        args.json.write_text(json.dumps(_as_json(outcomes, summary), indent=2) + "\n", "utf-8")
    return 1 if summary.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
