"""An Axis W800 system controller, the client of the Axis content destination API (`kluis axis-sim`):
protocol.py (names, connection file), clips.py (clips and their encryption), recording.py (one upload),
w800.py (the controller)."""
