"""`kluis serve` as an operator meets it: readable logs, a clean stop on SIGTERM, one line for a user error."""

from __future__ import annotations

import socket

from dock_helpers import configure_box, run_kluis


def test_taken_port_is_one_line_and_nothing_left_running(box_dir):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_kluis("serve", "--data", data, "--listen", f"127.0.0.1:{port}", check=False, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert f"Error: web UI: cannot listen on 127.0.0.1:{port}" in err.splitlines()[-1]
    assert "Traceback" not in err and "stopped" in err


def test_serve_stops_cleanly_on_sigterm(box_dir, serve):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    server = serve(data)
    assert server.find(r"INFO +kluis\.dock: mDNS: browsing for _bodycam\._tcp\.local\. on 127\.0\.0\.1")
    assert server.stop() == 0
    assert server.lines[-1].endswith("kluis.serve: stopped")
    assert not [line for line in server.lines if "Traceback" in line or "ERROR" in line]


def test_bad_listen_is_a_usage_error(box_dir):
    result = run_kluis("serve", "--data", box_dir[0], "--listen", "nonsense", check=False)
    assert result.returncode == 1 and "--listen wants HOST:PORT" in result.stderr.decode()
