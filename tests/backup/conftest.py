"""Fixtures of the backup tests: a box on a real catalog whose clock the test moves (tests/moving_clock.py)."""

from tests.moving_clock import clock, clocked_box as cbox  # noqa: F401  (fixtures, under the names the tests use)
from sshd_server import sshd  # noqa: F401,E402  (a real OpenSSH server for the network target's tests)
