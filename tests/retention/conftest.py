"""Fixtures of the retention tests: a box on a real catalog file whose clock the test moves
(tests/moving_clock.py)."""

from tests.moving_clock import clock, clocked_box as rbox  # noqa: F401  (fixtures, under the names the tests use)
