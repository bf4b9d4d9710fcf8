"""C31 across processes: two workers sharing one SQLite file refresh an expired connection once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from entra_emulator import Emulator

WORKER = r"""
import json, sys, threading, time
from app import create_app
from app.platform import extensions
settings, code, start_at, threads = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), 10
app = create_app(settings)
out, barrier = [], threading.Barrier(threads)
def call():
    barrier.wait()
    with app.app_context():
        try:
            out.append(extensions.broker().access_token(code)["access_token"])
        except Exception as error:
            out.append("error:" + type(error).__name__)
workers = [threading.Thread(target=call) for _ in range(threads)]
time.sleep(max(0.0, start_at - time.time()))
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_two_processes_twenty_callers_one_refresh(
    app: Flask, entra: Emulator, connect: Any, tmp_path: Path
) -> None:
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    _, code = connect()
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    entra.control("DELETE", "/_emulator/requests")
    settings = {
        key: app.config[key]
        for key in ("DATABASE_URL", "AUTHORITY_HOST", "CLIENT_ID", "CLIENT_SECRET", "CA_FILE")
    } | {"TESTING": True, "INSTANCE_PATH": app.instance_path}
    start_at = str(time.time() + 4)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(settings), code, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    tokens: list[str] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        tokens += json.loads(out.strip().splitlines()[-1])
    assert len(tokens) == 20
    assert not [t for t in tokens if t.startswith("error:")]
    assert len(set(tokens)) == 1
    assert len(entra.request_log(endpoint="token", grant_type="refresh_token")) == 1
