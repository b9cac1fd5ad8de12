"""Axis body-worn systems: Kluis as a content destination for a W800 system controller.

The W800 speaks a small subset of OpenStack Swift (the Axis Body Worn Content Destination API, see
docs/axis.md). Each module here is one idea:

    spec.py         the API's names, metadata and documents: what is valid, nothing stored
    transport.py    the optional end-to-end layer: the box's RSA transport key, key objects, AES-CBC
    accounts.py     one account per W800: credentials, tokens, the bound System ID, the connection file
    destination.py  users, devices, recording containers and their objects; a Complete container
                    becomes catalogued recordings in one transaction
    server.py       the thin aiohttp app `kluis serve` runs on `[axis] listen`

A W800 for the demo and the tests is test equipment, not part of the box: simulators/axis/.
"""
