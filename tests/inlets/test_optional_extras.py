"""Without aiohttp/pymongo: databay_bus imports, and HttpInlet/MongoOutlet name their extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["aiohttp"] = None   # makes 'import aiohttp' raise ImportError
    sys.modules["pymongo"] = None
    import databay_bus, databay_bus.inlets, databay_bus.outlets
    from databay_bus.errors import MissingDependencyError
    for module, name in ((databay_bus.inlets, "HttpInlet"), (databay_bus.outlets, "MongoOutlet")):
        try:
            getattr(module, name)
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(name, "->", exc)
        else:
            raise SystemExit(name + " imported without its dependency")
    try:
        from databay_bus.inlets import HttpInlet
    except ImportError as exc:
        print("from-import ->", type(exc).__name__)
    """
)


@pytest.mark.timeout(60)
def test_missing_extras_raise_missing_dependency_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "'aiohttp'" in lines[0] and "databay_bus[http]" in lines[0]
    assert "'pymongo'" in lines[1] and "databay_bus[mongo]" in lines[1]
    assert lines[2] == "from-import -> MissingDependencyError"
