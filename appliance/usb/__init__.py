"""Bodycams that dock as USB mass storage: recognised by a profile, registered by the keeper,
ingested when plugged in, emptied only after every file is sealed, committed and read back.

    profiles.py   camera profiles: data (TOML), not code; which camera this is, where its recordings are,
                  how to read their times and the camera's clock, whether files may be deleted
    profiles/     the shipped profiles (generic, novatek, serialfile)
    volume.py     a plugged-in volume: mount it (when given a device), its label, its USB identity
    ingest.py     one camera's ingest: seal, commit, read back, delete, sync, report progress
"""
