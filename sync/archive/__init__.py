"""The central archive: its store (store.py), HTTPS API (server.py) and key handling."""
