"""A blocking start() in the main thread shuts down gracefully on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from processes import reaped

CHILD = textwrap.dedent(
    """
    import sys
    from databay_bus import Inlet, Link, Outlet
    from databay_bus.planners import ApsPlanner, SchedulePlanner

    class Ticks(Inlet):
        def pull(self, update):
            return update.transfer_number

    class Announcing(Outlet):
        def push(self, records, update):
            if update.transfer_number == 0:
                print("ready", flush=True)

        def on_shutdown(self):
            print("on_shutdown ran", flush=True)

    kind = sys.argv[1]
    link = Link(Ticks(), Announcing(), 0.1)
    if kind == "aps":
        planner = ApsPlanner(link, threads=2)
    else:
        planner = SchedulePlanner(link, threads=2, refresh_interval=0.1)
    planner.start()  # blocks until the signal
    print("start returned", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("kind", ["aps", "schedule"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_a_blocking_planner_down(kind: str, signum: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", CHILD, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(child):
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out.splitlines() == ["on_shutdown ran", "start returned"]
    assert "Traceback" not in err


STARTING_CHILD = textwrap.dedent(
    """
    import time
    from databay_bus import Inlet, Link, Outlet
    from databay_bus.planners import SchedulePlanner

    class Quick(Inlet):
        def pull(self, update):
            return 1

    class Closing(Outlet):
        def push(self, records, update):
            pass

        def on_shutdown(self):
            print("on_shutdown ran", flush=True)

    class SlowToStart(Inlet):
        def on_start(self):
            print("starting", flush=True)
            time.sleep(30)

        def pull(self, update):
            return 1

    first = Link(Quick(), Closing(), 1)
    second = Link(SlowToStart(), Closing(), 1)
    SchedulePlanner([first, second]).start()
    print("start returned", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_while_nodes_are_still_starting() -> None:
    child = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", STARTING_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(child):
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "starting"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out.splitlines() == ["on_shutdown ran", "start returned"]
