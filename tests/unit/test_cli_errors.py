"""``idp serve`` and ``idp audit export`` refuse what cannot work with one readable line
and a non-zero exit, before announcing or doing anything."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from idp.cli import main


@pytest.fixture
def no_server(monkeypatch, tmp_path):
    """gunicorn must never start: the refusal comes first."""
    from idp.cli import gunicorn_app

    def started(*args, **kwargs):
        raise AssertionError("gunicorn was started")

    monkeypatch.setattr(gunicorn_app, "run", started)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))


def serve(*args: str):
    return CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)


def one_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "listening" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("port", ["99999", "0", "65536"])
def test_serve_refuses_a_port_that_does_not_exist(no_server, port):
    assert f"--port {port} is not a TCP port" in one_line(serve("--port", port))


def test_serve_refuses_a_port_already_in_use(no_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(serve("--host", "127.0.0.1", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in line


def test_serve_refuses_a_host_that_does_not_resolve(no_server):
    assert "--host" in one_line(serve("--host", "no-such-host.invalid", "--port", "5000"))


@pytest.mark.parametrize("args", [
    ["--since", "nan"], ["--since", "NaN"], ["--since", "inf"], ["--since", "-inf"],
    ["--since", "1e999"], ["--since", "0", "--until", "nan"], ["--since", "yesterday"]])
def test_audit_export_refuses_times_that_are_not_times(args):
    result = CliRunner().invoke(main, ["audit", "export", *args], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "not a" in result.stderr and result.stdout == ""


def test_audit_export_still_reads_unix_seconds_and_iso_times():
    from idp.cli.audit import parse_time

    assert parse_time(" 1700000000.5 ") == 1700000000.5
    assert parse_time("2024-01-01T08:00:00+08:00") == parse_time("2024-01-01T00:00:00")
