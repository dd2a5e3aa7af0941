"""Session fixtures of the real-server tier: build (once, cached), generate the model, start both servers.

``built`` builds what is missing (``real.build``: minutes the first time on a fresh
machine, seconds after) with its progress shown even under pytest's capture.
``llama_server`` and ``llama_cpp_python`` start the engines on free 127.0.0.1 ports,
wait until each answers its readiness endpoint, and stop them at the end of the
session, whatever happened. Every test in this directory is marked ``real``:
``scripts/test -m "not real"`` skips the tier (and its build).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from real.build import Built, build
from real.endpoints import ENDPOINTS, Endpoint
from real.proxy import RecordingProxy
from real.servers import RunningServer, start_llama_cpp_python, start_llama_server

HERE = Path(__file__).resolve().parent
# test_conformance_run reuses tests/providers/test_conformance.py, which pytest puts on
# sys.path only when it collects that directory.
if str(HERE.parent / "providers") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "providers"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Before pytest's own -m selection, which runs after this hook.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def built(pytestconfig: pytest.Config) -> Built:
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    assert capture is not None
    try:
        with capture.global_and_fixture_disabled():
            made: Built = build()
            return made
    except (OSError, RuntimeError) as error:
        raise RuntimeError(
            f'the real-server tier could not be built ({error}); skip it with scripts/test -m "not real"'
        ) from error


@pytest.fixture(scope="session")
def llama_server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_llama_server(built, tmp_path_factory.mktemp("logs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_cpp_python(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_llama_cpp_python(built, tmp_path_factory.mktemp("logs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[Callable[[RunningServer], Awaitable[RecordingProxy]]]:
    """``await proxy(server)``: a recording proxy in front of ``server``, closed after the test."""
    made: list[RecordingProxy] = []

    async def start(server: RunningServer) -> RecordingProxy:
        recording = await RecordingProxy(server.origin).start()
        made.append(recording)
        return recording

    yield start
    for recording in made:
        await recording.close()


@pytest.fixture(params=ENDPOINTS, ids=[endpoint.id for endpoint in ENDPOINTS])
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    chosen: Endpoint = request.param
    return chosen


@pytest.fixture
def server(endpoint: Endpoint, request: pytest.FixtureRequest) -> RunningServer:
    """The running server ``endpoint`` talks to (started on first use, for the session)."""
    running: RunningServer = request.getfixturevalue(endpoint.server)
    return running
