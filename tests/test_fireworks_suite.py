"""Issue 2, acceptance 4: FireWorks' own test suite passes against the embedded server.

``.ci/run`` runs the suite beside the rehearsal and hands its result file to this test
(``$ARGYRO_FIREWORKS_SUITE_JSON``); without it the suite runs here. FireWorks' tests hard-code
localhost:27017. If a server answers there (``.ci/run`` starts one), it is used; otherwise one is
started for this test if the port is free; if the port is taken by something that is not a MongoDB
server the test fails and says so (never silently skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from argyro_fw.db.embedded import EmbeddedServer, port_in_use
from conftest import REPO

# Failures we cannot fix on our side, with their reason. Empty: every failure seen so far is fixed
# (missing test data restored from ../shared, igraph/graphviz installed, monty zopen fixed by
# argyro_fw.compat).
KNOWN_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="module")
def server_27017(tmp_path_factory):
    probe = EmbeddedServer(tmp_path_factory.mktemp("probe"))
    if probe.ping(27017, timeout_s=1.0):
        yield
        return
    if port_in_use("127.0.0.1", 27017):
        pytest.fail("port 27017 is taken by something that does not answer MongoDB ping; FireWorks' suite needs it")
    server = EmbeddedServer(tmp_path_factory.mktemp("fwsuite-db"))
    server.start(port=27017)
    yield
    server.stop()


@pytest.fixture(scope="module")
def suite_result():
    """(result, output) of tests/fireworks_suite.py: the run `.ci/run` made beside the rehearsal (its result file and
    log in $ARGYRO_FIREWORKS_SUITE_JSON / _LOG), else a run here against localhost:27017."""
    done = os.environ.get("ARGYRO_FIREWORKS_SUITE_JSON")
    if done:
        out, log = Path(done), Path(os.environ.get("ARGYRO_FIREWORKS_SUITE_LOG", done + ".log"))
        assert out.is_file(), f"$ARGYRO_FIREWORKS_SUITE_JSON={done}: no result (the suite's log: {log})"
        return json.loads(out.read_text()), (log.read_text() if log.is_file() else "")
    return None


@pytest.mark.slow
def test_fireworks_own_suite(suite_result, request, tmp_path):
    if suite_result is None:
        request.getfixturevalue("server_27017")
        out = tmp_path / "suite.json"
        proc = subprocess.run(
            [sys.executable, str(REPO / "tests" / "fireworks_suite.py"), "--json", str(out)],
            capture_output=True, text=True, timeout=1500,
        )
        result, output = json.loads(out.read_text()), proc.stdout
    else:
        result, output = suite_result
        print("(the run .ci/run made beside the rehearsal)")
    print(output[-3000:])
    unexpected = [f for f in result["failures"] if f not in KNOWN_FAILURES]
    assert not unexpected, f"FireWorks tests failing on the embedded server: {unexpected}\n{output[-3000:]}"
    assert result["passed"] >= 170, result
