"""Test and demo equipment: simulated cameras that talk to the box from the outside, as real ones do.

Only the app layer's demo and simulator commands (appliance/app/commands/) and the tests import this
package; the box's own code never does (tests/test_layers.py)."""
