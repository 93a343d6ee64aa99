"""The examples (the reference README's, endpoints from the environment) run
unchanged and their rows arrive."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, compile_proto_file

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("examples")
    for name in os.listdir(EXAMPLES):
        if name.endswith((".py", ".proto")):
            shutil.copy(os.path.join(EXAMPLES, name), d / name)
    compile_proto_file(str(d / "record.proto"), str(d), load=False)
    return d


@pytest.mark.parametrize("script,rows,proto", [
    ("sync_json.py", 100, False), ("async_json.py", 1000, False),
    ("sync_proto.py", 100, True), ("async_proto.py", 100, True),
    ("failure_handling.py", 100, False),
])
def test_example(server, table, example_dir, script, rows, proto):
    env = dict(os.environ, ZEROBUS_SERVER_ENDPOINT=server.endpoint,
               ZEROBUS_WORKSPACE_URL=server.http_url, ZEROBUS_TABLE=table,
               ZEROBUS_CLIENT_ID=CLIENT_ID, ZEROBUS_CLIENT_SECRET=CLIENT_SECRET)
    r = subprocess.run([sys.executable, script], cwd=str(example_dir), env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = server.rows(table, "device_name, temp, humidity")
    assert len(got) == rows
    if script == "sync_json.py":
        assert got == [("sensor-%d" % (i % 10), 20 + i % 15, 50 + i % 40) for i in range(100)]
    if proto:
        assert got[0][0] is not None
