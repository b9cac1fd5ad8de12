"""The app layer: the `kluis` command (cli.py, commands/) and the service that wires the box's parts
together (service.py). It may import every other layer; nothing in appliance/, webui/ or sync/ imports it."""
