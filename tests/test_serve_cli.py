"""`trouter serve`'s settings: a value it cannot honour is a one-line error and exit 2, before
anything listens or loads; the banner claims "listening" only once the gateway listens."""

from __future__ import annotations

import math
import os
import socket
import sys

import pytest

from factories import toy_dataset
from trouter.cli.app import run
from trouter.errors import ConfigError
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory):
    router = make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))
    return router.save(tmp_path_factory.mktemp("cli") / "router")


@pytest.fixture(autouse=True)
def _process_settings():
    """`serve` tunes the process for a gateway (thread variables, GIL switch interval)."""
    environ, interval = dict(os.environ), sys.getswitchinterval()
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.setswitchinterval(interval)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "listening on" not in captured.out
    return err


def serve(router_dir, *args: str) -> int:
    db = router_dir.parent / "log.sqlite"
    return run(["serve", "--router", str(router_dir), "--db", str(db), *args])


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_out_of_range_is_refused(router_dir, capsys, port):
    assert serve(router_dir, f"--port={port}") == 2
    assert "--port must be between 1 and 65535" in one_error_line(capsys)


def test_a_busy_port_is_one_line_and_exit_2_without_the_banner(router_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve(router_dir, "--port", str(port)) == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--deadline", "deadline_s must be a finite number"),
        ("--max-queue", "max_queue_s must be a finite number"),
        ("--max-body-mb", "--max-body-mb must be a positive number"),
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_numbers_are_refused(router_dir, capsys, option, says, value):
    assert serve(router_dir, f"{option}={value}") == 2
    assert says in one_error_line(capsys)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_the_config_refuses_non_finite_floats(value):
    with pytest.raises(ConfigError, match="deadline_s must be a finite number"):
        GatewayConfig(deadline_s=value)


def test_a_negative_max_queue_is_refused(router_dir, capsys):
    assert serve(router_dir, "--max-queue=-1") == 2
    assert "max_queue_s (--max-queue) must be 0 or more seconds" in one_error_line(capsys)
