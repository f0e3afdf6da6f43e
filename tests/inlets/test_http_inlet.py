"""HttpInlet against a real aiohttp server on 127.0.0.1 (plain HTTP and TLS via trustme)."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from core_fakes import RecordingOutlet
from http_server import LocalServer

from databay_bus import Link, Record
from databay_bus._concurrency import run_coroutine
from databay_bus.errors import ConfigurationError, HttpInletError
from databay_bus.inlets import HttpInlet
from databay_bus.inlets.base import wrap_pulled
from databay_bus.link import Update

UPDATE = Update(["http"], 0)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def inlets() -> Iterator[list[HttpInlet]]:
    """Inlets made by a test; each one is shut down afterwards so no session leaks."""
    made: list[HttpInlet] = []
    yield made
    for inlet in made:
        inlet.on_shutdown()


def make(inlets: list[HttpInlet], *args: Any, **kwargs: Any) -> HttpInlet:
    inlet = HttpInlet(*args, **kwargs)
    inlets.append(inlet)
    return inlet


def pull(inlet: HttpInlet) -> list[Record]:
    return wrap_pulled(inlet, run_coroutine(inlet.pull(UPDATE)))


def test_json_object_gives_one_record(server: LocalServer, inlets: list[HttpInlet]) -> None:
    inlet = make(inlets, server.url("/object"), metadata={"source": "test"})
    records = pull(inlet)
    assert [r.payload for r in records] == [{"name": "alpha", "value": 1}]
    assert records[0].metadata["source"] == "test"


def test_json_array_gives_one_record_per_element(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    records = pull(make(inlets, server.url("/array")))
    assert [r.payload for r in records] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_text_body_when_json_is_false(server: LocalServer, inlets: list[HttpInlet]) -> None:
    records = pull(make(inlets, server.url("/text"), json=False))
    assert [r.payload for r in records] == ["plain words"]


@pytest.mark.parametrize("json", [True, False])
def test_empty_body_gives_no_record(
    server: LocalServer, inlets: list[HttpInlet], json: bool
) -> None:
    assert pull(make(inlets, server.url("/empty"), json=json)) == []


def test_invalid_json_names_url(server: LocalServer, inlets: list[HttpInlet]) -> None:
    url = server.url("/text")
    with pytest.raises(HttpInletError, match="does not contain valid JSON") as caught:
        pull(make(inlets, url))
    assert url in str(caught.value)
    assert "plain words" in str(caught.value)


def test_invalid_json_is_a_value_error_as_in_databay(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    """Code written for Databay catches ValueError; Databay's phrase stays in the message."""
    with pytest.raises(ValueError, match="Response does not contain valid JSON"):
        pull(make(inlets, server.url("/text")))


@pytest.mark.parametrize("status", [404, 500])
def test_error_status_raises(server: LocalServer, inlets: list[HttpInlet], status: int) -> None:
    url = server.url(f"/status/{status}")
    with pytest.raises(HttpInletError, match=f"HTTP {status}") as caught:
        pull(make(inlets, url))
    assert url in str(caught.value)


def test_slow_response_times_out(server: LocalServer, inlets: list[HttpInlet]) -> None:
    url = server.url("/slow")
    with pytest.raises(HttpInletError, match=r"within 0\.3s") as caught:
        pull(make(inlets, url, timeout=0.3))
    assert url in str(caught.value)


def test_default_timeout_is_set() -> None:
    assert HttpInlet("http://127.0.0.1:9/").timeout == 30.0


@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_bad_timeout_rejected(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        HttpInlet("http://127.0.0.1:9/", timeout=timeout)


def test_connection_refused_raises(inlets: list[HttpInlet]) -> None:
    with LocalServer() as stopped:
        url = stopped.url("/object")
    with pytest.raises(HttpInletError, match="failed: Client") as caught:
        pull(make(inlets, url))
    assert url in str(caught.value)


def test_method_body_params_and_headers_are_sent(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    inlet = make(
        inlets,
        server.url("/echo"),
        method="post",
        body={"query": "x"},
        params={"page": "2"},
        headers={"X-Token": "abc"},
    )
    (record,) = pull(inlet)
    assert record.payload["method"] == "POST"
    assert record.payload["body"] == '{"query": "x"}'
    assert record.payload["query"] == {"page": "2"}
    assert record.payload["headers"]["X-Token"] == "abc"


def test_headers_attribute_is_read_at_each_pull(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    """Databay's public ``headers`` attribute: changing it changes the next request."""
    inlet = make(inlets, server.url("/echo"), headers={"X-Token": "first"})
    assert inlet.headers == {"X-Token": "first"}
    assert pull(inlet)[0].payload["headers"]["X-Token"] == "first"
    inlet.headers = {"X-Token": "second"}
    assert pull(inlet)[0].payload["headers"]["X-Token"] == "second"
    inlet.headers = None
    assert "X-Token" not in pull(inlet)[0].payload["headers"]


def test_tcp_connector_is_the_pool_in_use(server: LocalServer, inlets: list[HttpInlet]) -> None:
    inlet = make(inlets, server.url("/object"))
    assert inlet.tcp_connector is None  # nothing opened before the first pull
    pull(inlet)
    assert isinstance(inlet.tcp_connector, aiohttp.TCPConnector)
    inlet.on_shutdown()
    assert inlet.tcp_connector is None


def test_text_body_is_sent_as_is(server: LocalServer, inlets: list[HttpInlet]) -> None:
    (record,) = pull(make(inlets, server.url("/echo"), method="PUT", body="raw text"))
    assert (record.payload["method"], record.payload["body"]) == ("PUT", "raw text")


def test_headers_never_logged_or_shown(
    server: LocalServer, inlets: list[HttpInlet], databay_logs: pytest.LogCaptureFixture
) -> None:
    secret = "Bearer TOP-SECRET-TOKEN"
    inlet = make(inlets, server.url("/echo"), headers={"Authorization": secret}, params={"k": "v"})
    pull(inlet)
    failing = make(inlets, server.url("/status/500"), headers={"Authorization": secret})
    with pytest.raises(HttpInletError) as caught:
        pull(failing)
    assert databay_logs.records, "expected HttpInlet to log its requests"
    assert "TOP-SECRET" not in databay_logs.text
    assert "TOP-SECRET" not in repr(inlet) + str(caught.value)


def test_one_session_reused_across_pulls_and_threads(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    inlet = make(inlets, server.url("/object"))
    pull(inlet)
    session = inlet._session
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(pull(inlet)))
    thread.start()
    thread.join(10)
    assert len(results) == 1 and results[0][0].payload["name"] == "alpha"
    assert inlet._session is session
    peers = {peer for _, peer in server.requests}
    assert len(peers) == 1, f"expected one kept-alive connection, saw {peers}"
    inlet.on_shutdown()
    assert session is not None and session.closed
    assert pull(inlet)[0].payload["name"] == "alpha"  # a later pull opens a new session
    assert inlet._session is not session


def test_inlets_share_connections_and_the_last_one_closes_them(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    first = make(inlets, server.url("/echo"), headers={"X-Who": "first"})
    second = make(inlets, server.url("/echo"), headers={"X-Who": "second"})
    assert pull(first)[0].payload["headers"]["X-Who"] == "first"
    assert pull(second)[0].payload["headers"]["X-Who"] == "second"
    assert first._session is not second._session  # own headers, timeout and cookies
    assert first._session is not None and second._session is not None
    connector = first._session.connector
    assert connector is not None and connector is second._session.connector
    peers = {peer for _, peer in server.requests}
    assert len(peers) == 1, f"expected the second inlet to reuse the connection, saw {peers}"
    first.on_shutdown()
    assert not connector.closed  # still used by the second inlet
    assert pull(second)[0].payload["headers"]["X-Who"] == "second"
    second.on_shutdown()
    assert connector.closed
    assert pull(first)[0].payload["headers"]["X-Who"] == "first"  # a new session and connector
    assert first._session is not None and first._session.connector is not connector


def test_link_transfers_close_session_on_shutdown(
    server: LocalServer, inlets: list[HttpInlet]
) -> None:
    inlet = make(inlets, server.url("/array"))
    outlet = RecordingOutlet()
    link = Link(inlet, outlet, interval=1)
    link.on_start()
    link.transfer()
    worker = threading.Thread(target=link.transfer)
    worker.start()
    worker.join(10)
    session = inlet._session
    link.on_shutdown()
    assert [r.payload["n"] for r in outlet.records] == [1, 2, 3, 1, 2, 3]
    assert session is not None and session.closed


def test_subclass_awaiting_super_pull(server: LocalServer, inlets: list[HttpInlet]) -> None:
    class Names(HttpInlet):
        async def pull(self, update: Update) -> Any:
            data = await super().pull(update)
            return [item["n"] * 10 for item in data]

    inlet = Names(server.url("/array"))
    inlets.append(inlet)
    outlet = RecordingOutlet()
    link = Link(inlet, outlet, interval=1)
    link.on_start()
    try:
        link.transfer()
    finally:
        link.on_shutdown()
    assert [r.payload for r in outlet.records] == [10, 20, 30]


@pytest.fixture(scope="module")
def tls() -> tuple[trustme.CA, ssl.SSLContext]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return ca, context


def test_tls_with_cacert(
    tls: tuple[trustme.CA, ssl.SSLContext], tmp_path: Path, inlets: list[HttpInlet]
) -> None:
    ca, context = tls
    cacert = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cacert))
    with LocalServer(context) as secure:
        records = pull(make(inlets, secure.url("/object"), cacert=cacert))
        assert records[0].payload["name"] == "alpha"
        untrusted = make(inlets, secure.url("/object"))
        with pytest.raises(HttpInletError, match=r"(?i)certificate") as caught:
            pull(untrusted)
        assert secure.url("/object") in str(caught.value)
        for inlet in inlets:
            inlet.on_shutdown()


def test_context_holds_the_cacert_tls_context(
    tls: tuple[trustme.CA, ssl.SSLContext], tmp_path: Path
) -> None:
    ca, _ = tls
    cacert = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cacert))
    verifying = HttpInlet("https://localhost/", cacert=cacert)
    assert isinstance(verifying.context, ssl.SSLContext)
    assert verifying.context.verify_mode == ssl.CERT_REQUIRED
    assert verifying.context.check_hostname
    assert HttpInlet("https://localhost/").context is None
    assert HttpInlet("https://localhost/", cacert=False).context is None


def test_missing_cacert_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HttpInlet("https://localhost/", cacert=tmp_path / "missing.pem")


def test_repr_hides_param_values() -> None:
    inlet = HttpInlet("http://h/x", params={"api_key": "s3cr3t"}, method="post", json=False)
    assert (
        repr(inlet) == "HttpInlet(url='http://h/x', method='POST', json=False, params=['api_key'])"
    )


def test_logs_requests(
    server: LocalServer, inlets: list[HttpInlet], databay_logs: pytest.LogCaptureFixture
) -> None:
    pull(make(inlets, server.url("/object")))
    messages = [r.getMessage() for r in databay_logs.records if r.name.endswith("http_inlet")]
    assert any(m == f"http.0 GET {server.url('/object')}" for m in messages), messages
    assert all(r.levelno <= logging.INFO for r in databay_logs.records)
