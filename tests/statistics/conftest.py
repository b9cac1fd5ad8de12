"""Fixtures of the statistics tests: a box on a real catalog file whose clock the test moves
(tests/moving_clock.py), with the role users of tests/conftest.py."""

from tests.moving_clock import clock, clocked_box as sbox  # noqa: F401  (fixtures, under the names the tests use)
