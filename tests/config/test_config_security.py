"""Issue 14's config items: variables, what a named object may be before it is called, secrets
kept out of ``validate``'s output and error messages, planner options checked by ``validate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from databay_bus.config import load, loads
from databay_bus.errors import ConfigError

LINK = """
[[links]]
tags = ["t"]
interval = 1
inlets = [{{type = "pipeline_nodes.CountingInlet", kind = "{kind}"}}]
outlets = [{outlet}]
"""
OUTLET = '{type = "pipeline_nodes.ListOutlet", name = "x"}'


def link(kind: str = "count", outlet: str = OUTLET, extra: str = "") -> str:
    return LINK.format(kind=kind, outlet=outlet) + extra


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(text, source="test.toml", env=env or {}, dry_run=True)
    return [f"{path}: {reason}" for path, reason in caught.value.problems]


# -- variables ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["${HOME", "a${HOME:-x", "${1A}", "${}", "x ${ y"])
def test_an_unterminated_or_malformed_variable_is_an_error(text: str) -> None:
    problems = problems_of(link(kind=text), env={"HOME": "/home/u"})
    assert any(
        p.startswith("links[0].inlets[0].kind: malformed variable") and "$$" in p for p in problems
    ), problems


def test_a_double_dollar_still_makes_a_literal_brace() -> None:
    pipeline = loads(link(kind="$${HOME"), env={"HOME": "/home/u"})
    assert pipeline.links[0].inlets[0].metadata["kind"] == "${HOME"


def test_pipeline_dir_is_the_files_directory_even_when_the_environment_sets_it(
    tmp_path: Path,
) -> None:
    file = tmp_path / "p.toml"
    file.write_text(link(kind="${PIPELINE_DIR}"), encoding="utf-8")
    pipeline = load(file, env={"PIPELINE_DIR": "/somewhere/else"})
    assert pipeline.links[0].inlets[0].metadata["kind"] == str(tmp_path.resolve())


# -- only objects of the right kind are called --------------------------------------------------

HARMFUL = [
    ("inlet-function", 'inlets = [{type = "os.system", command = "touch {mark}"}]'),
    ("outlet-class", 'outlets = [{type = "subprocess.Popen", args = "touch {mark}"}]'),
    ("processor-function", 'processors = [{type = "os.system", command = "touch {mark}"}]'),
    ("processor-class", 'processors = [{type = "subprocess.Popen", args = "touch {mark}"}]'),
    ("router-class", 'router = {type = "subprocess.Popen", args = "touch {mark}"}'),
]


@pytest.mark.parametrize(("case", "line"), HARMFUL, ids=[c for c, _ in HARMFUL])
def test_validate_never_calls_what_is_not_a_node_class_or_a_marked_factory(
    tmp_path: Path, case: str, line: str
) -> None:
    mark = tmp_path / "ran"
    key = line.split(" =")[0]
    lines = [item for item in link().splitlines() if not item.startswith(f"{key} =")]
    text = "\n".join([*lines, line.replace("{mark}", str(mark))]) + "\n"
    problems = problems_of(text)
    assert not mark.exists(), f"{case}: the named object was called"
    assert any("not called" in p for p in problems), problems


@pytest.mark.parametrize(
    "top",
    [
        '[planner]\nkind = "subprocess.Popen"\nargs = "touch {mark}"\n',
        '[queue]\nkind = "subprocess.Popen"\nargs = "touch {mark}"\n',
        '[queue]\ncodec = {{type = "subprocess.Popen", args = "touch {mark}"}}\n',
        'observers = [{{type = "os.system", command = "touch {mark}"}}]\n',
    ],
    ids=["planner", "queue", "codec", "observer"],
)
def test_top_level_objects_are_checked_before_they_are_called(tmp_path: Path, top: str) -> None:
    mark = tmp_path / "ran"
    problems = problems_of(top.format(mark=mark) + link())
    assert not mark.exists()
    assert any("not called" in p for p in problems), problems


def test_a_function_is_called_only_when_marked_as_a_factory() -> None:
    problems = problems_of(
        link(extra='processors = [{type = "pipeline_nodes.unmarked_scaler", factor = 2}]\n')
    )
    assert problems == [
        "links[0].processors[0]: 'pipeline_nodes.unmarked_scaler' is a function not marked "
        "as a factory (@databay_bus.config.factory), so it was not called"
    ]
    marked = loads(link(extra='processors = [{type = "pipeline_nodes.make_scaler", factor = 2}]\n'))
    assert len(marked.links[0].processors) == 1


# -- secrets ------------------------------------------------------------------------------------


def test_validate_masks_tokens_in_urls() -> None:
    text = link(
        outlet=OUTLET,
        extra="[links.delivery]\n",
    ).replace('kind = "count"', 'kind = "https://bob:${PASS}@h.example/x?api_key=${KEY}&page=2"')
    text = text.replace("[links.delivery]\n", "")
    pipeline = loads(text, env={"PASS": "hunter2", "KEY": "k3y-s3cr3t"})
    shown = pipeline.describe()
    assert "hunter2" not in shown and "k3y-s3cr3t" not in shown, shown
    assert "https://bob:***@h.example/x?api_key=***&page=***" in shown


def test_errors_never_echo_an_expanded_secret() -> None:
    text = link(outlet='{type = "pipeline_nodes.ListOutlet", name = "${API_TOKEN}", nme = 1}')
    text += 'ignore_exceptions = "${DB_PASSWORD}"\n'
    problems = problems_of(text, env={"API_TOKEN": "tok-123456", "DB_PASSWORD": "pw-654321"})
    joined = "\n".join(problems)
    assert "tok-123456" not in joined and "pw-654321" not in joined, joined
    assert "links[0].ignore_exceptions: must be true or false, got '***' (str)" in problems


def test_errors_mask_tokens_in_urls() -> None:
    text = link(extra='copy_records = "https://u:${PASS}@h.example/?token=${T}"\n')
    joined = "\n".join(problems_of(text, env={"PASS": "pw-1", "T": "t-2"}))
    assert "pw-1" not in joined and "t-2" not in joined, joined
    assert "https://u:***@h.example/?token=***" in joined


# -- planner options ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["aps", "schedule"])
@pytest.mark.parametrize("threads", ["0", "-1", "'4'", "true"])
def test_validate_reports_bad_planner_threads(kind: str, threads: str) -> None:
    problems = problems_of(f'[planner]\nkind = "{kind}"\nthreads = {threads}\n' + link())
    assert len(problems) == 1 and problems[0].startswith("planner.threads: "), problems
    assert "must be an int >= 1" in problems[0]
