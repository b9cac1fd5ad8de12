"""A bodycam in its dock, the camera end of the dock protocol (`kluis camera-sim`): state.py keeps its files,
camera.py runs it."""
