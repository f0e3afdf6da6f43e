"""The built wheel works on its own: installed into a fresh venv, a tester subclass passes.

Slow (builds a wheel, makes a venv, installs the runtime dependencies from the package
index), so it is marked ``slow``; it still runs in the default suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = textwrap.dedent(
    """
    import random

    from databay_bus import Inlet, Outlet
    from databay_bus.inlets import RandomIntInlet
    from databay_bus.outlets import CsvOutlet
    from databay_bus.testing import FakeClock, InletTester, OutletTester


    class MyInlet(Inlet):
        def pull(self, update):
            return [1, 2, 3]


    class TestInlets(InletTester):
        def get_inlet(self):
            return [MyInlet(), RandomIntInlet(rng=random.Random(1))]


    class TestOutlets(OutletTester):
        def get_outlet(self):
            import tempfile, os
            return CsvOutlet(os.path.join(tempfile.mkdtemp(), "out.csv"))


    def test_installed_not_the_source_tree():
        import databay_bus
        assert "site-packages" in databay_bus.__file__, databay_bus.__file__
        assert FakeClock().time() > 0
    """
)


def _pip_version() -> tuple[int, ...]:
    """This interpreter's pip version (``pip --python`` exists from 22.3)."""
    from importlib.metadata import version

    return tuple(int(part) for part in version("pip").split(".")[:2] if part.isdigit())


def run(command: list[str], cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_and_testers_run(tmp_path: Path) -> None:
    # Build from a copy: building in place would leave build/ and *.egg-info in the tree.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "databay_bus", source / "databay_bus", ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "setup.py"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(dist),
            str(source),
        ],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("databay_bus-*.whl")
    venv = tmp_path / "venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    if _pip_version() >= (22, 3):
        # A venv without pip of its own (bootstrapping pip into it was a third of this test's
        # time), filled by this interpreter's pip: the venv still sees nothing but the wheel
        # and what it depends on.
        run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
        installer = [sys.executable, "-m", "pip", "--python", str(python)]
    else:
        run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
        installer = [str(python), "-m", "pip"]
    run([*installer, "install", "-q", str(wheel), "pytest"], cwd=tmp_path)
    (tmp_path / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    out = run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"], tmp_path
    )
    assert "11 passed" in out, out
    typed = run(
        [
            str(python),
            "-c",
            "import databay_bus, pathlib; "
            "print((pathlib.Path(databay_bus.__file__).parent / 'py.typed').exists())",
        ],
        cwd=tmp_path,
    )
    assert typed.strip() == "True"
