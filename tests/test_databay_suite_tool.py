"""tools/databay_suite.py, on a tiny Databay-shaped checkout made here (no Databay needed)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tools import databay_suite
from tools.databay_suite import Outcome, Rule, classify, rewrite_source, summarize

REPO = Path(__file__).resolve().parent.parent

SAMPLE = '''
    import logging
    from unittest import TestCase
    from unittest.mock import patch

    import databay
    from databay import Record
    from databay.link import Link
    from test_utils import helper


    class TestSample(TestCase):
        def test_repr(self):
            self.assertEqual(repr(Record("x")), "Record(payload=x, metadata={})")
            self.assertEqual(helper(), "helper")

        @patch("databay.link.Link.transfer")
        def test_patch_target_rewritten(self, transfer):
            self.assertIs(Link.transfer, transfer)
            self.assertEqual(databay.Link.__module__, "databay_bus.link")

        def test_private(self):
            Link._run

        def test_documented(self):
            self.assertEqual(logging.getLogger("databay").name, "databay_bus")

        def test_unexpected(self):
            self.fail("boom")
'''


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout shaped like Databay's: test/test_utils.py and test/test/unit/test_*.py."""
    root = tmp_path / "databay"
    unit = root / "test" / "test" / "unit"
    unit.mkdir(parents=True)
    (root / "test" / "test_utils.py").write_text("def helper():\n    return 'helper'\n")
    (root / "test" / "test" / "__init__.py").write_text("")
    (unit / "__init__.py").write_text("")
    (unit / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    return root


RULES = (
    Rule("test/unit/test_sample.py::TestSample::test_private", "private", "reads Link._run"),
    Rule("test/unit/*::test_documented", "documented", "logger names", "logging"),
    Rule("test/unit/*::test_never_fails", "private", "stale"),
)


def test_rewrite_touches_only_references_to_the_package() -> None:
    source = (
        "import databay\n"
        "from databay.link import Link  # databay stays in comments\n"
        "x = databay.Link, 'databay', 'databay.link.Link._run', f'{databay}', databay_bus\n"
        "getLogger('databay.Link'); 'see databay docs'\n"
    )
    assert rewrite_source(source) == (
        "import databay_bus\n"
        "from databay_bus.link import Link  # databay stays in comments\n"
        "x = databay_bus.Link, 'databay', 'databay_bus.link.Link._run', f'{databay}', databay_bus\n"
        "getLogger('databay_bus.Link'); 'see databay docs'\n"
    )


def test_classify_and_summarize() -> None:
    outcomes = [
        Outcome("test/unit/test_sample.py::TestSample::test_repr", "passed"),
        Outcome("test/unit/test_sample.py::TestSample::test_private", "failed", "AttributeError"),
        Outcome("test/unit/test_x.py::TestX::test_documented", "failed", "AssertionError"),
        Outcome("test/unit/test_x.py::TestX::test_other", "failed", "AssertionError"),
        Outcome("test/unit/test_x.py::TestX::test_skip", "skipped"),
    ]
    assert classify(outcomes[2].test, RULES) is RULES[1]
    assert classify(outcomes[3].test, RULES) is None
    summary = summarize(outcomes, RULES)
    counts = (summary.passed, summary.private, summary.documented, summary.unexpected)
    assert counts == (1, 1, 1, 1)
    assert summary.skipped == 1 and summary.failed == 3
    assert summary.unused_rules == [RULES[2]]


def test_copy_rewrites_the_copy_only(checkout: Path, tmp_path: Path) -> None:
    suite = databay_suite.copy_suite(checkout, tmp_path / "work")
    assert "import databay_bus" in (suite / "test" / "unit" / "test_sample.py").read_text()
    assert (suite / "test_utils.py").exists()
    assert "import databay\n" in (checkout / "test/test/unit/test_sample.py").read_text()


def test_runs_the_suite_prints_each_test_and_the_summary(
    checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One real run (a pytest subprocess) of the sample against databay_bus."""
    out = tmp_path / "result.json"
    status = databay_suite.main([str(checkout), "--json", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert "Databay (version unknown); the rules were written for 0.3.0" in captured.err
    assert status == 1  # none of the sample's failures is in the real table: all unexpected
    assert re.search(r"^PASSED +test/unit/test_sample.py::TestSample::test_repr$", printed, re.M)
    assert "[unexpected] AssertionError: boom" in printed
    assert printed.rstrip().endswith(
        "2 passed, 3 failed (0 private internal, 0 documented difference, 3 unexpected), "
        "0 skipped"
    )
    report = json.loads(out.read_text())
    assert report["counts"]["unexpected"] == 3
    results = {entry["test"].rsplit("::", 1)[-1]: entry for entry in report["tests"]}
    assert {name: entry["result"] for name, entry in results.items()} == {
        "test_repr": "passed",
        "test_patch_target_rewritten": "passed",  # patch('databay.link...') was rewritten
        "test_private": "failed",
        "test_documented": "failed",
        "test_unexpected": "failed",
    }
    outcomes = [Outcome(e["test"], e["result"], e.get("message", "")) for e in report["tests"]]
    summary = summarize(outcomes, RULES)  # with a table that knows two of the failures
    assert (summary.passed, summary.private, summary.documented, summary.unexpected) == (2, 1, 1, 1)


def test_checkout_version_read_from_setup_py(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("setup(\n    name='databay',\n    version='0.3.0',\n)\n")
    assert databay_suite.checkout_version(tmp_path) == databay_suite.RULES_VERSION
    assert databay_suite.checkout_version(tmp_path / "missing") is None


def test_a_checkout_without_tests_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="sdist has no tests"):
        databay_suite.main([str(tmp_path)])


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_rule_is_well_formed_and_points_at_a_section() -> None:
    page = (REPO / databay_suite.COMPATIBILITY_PAGE).read_text(encoding="utf-8")
    anchors = _anchors(page)
    assert databay_suite.RULES, "the table is empty"
    for rule in databay_suite.RULES:
        assert rule.kind in ("private", "documented"), rule
        assert rule.reason, rule
        assert rule.pattern.startswith("test/"), rule
        if rule.kind == "documented":
            assert rule.section in anchors, f"{rule.pattern}: no section #{rule.section}"
