"""Errors a user or a device can cause. The CLI and the web layer show their message, never a traceback."""


class KluisError(Exception):
    """Base for every expected failure: bad input, wrong secret, damaged data, missing things."""


class ContainerError(KluisError):
    """A recording container is malformed, truncated or fails authentication."""


class WrongSecret(KluisError):
    """A password or recovery key does not open the key slot."""


class NotFound(KluisError):
    """An id (recording, user, device) that the catalog does not know."""


class NotInitialized(KluisError):
    """The data directory is missing or was never set up with `kluis init`."""

    @classmethod
    def unless(cls, data_dir, database: str, what: str, init: str):
        """data_dir as a Path, if it holds its database file; else this error, naming the command that makes one."""
        from pathlib import Path

        path = Path(data_dir)
        if not (path / database).exists():
            raise cls(f"no {what} at {path} (run: {init} --data {path})")
        return path


class StorageFull(KluisError):
    """The data directory has no room left; nothing stored was harmed."""


class ProtocolError(KluisError):
    """A peer sent what its protocol does not allow. The message first, as every KluisError; `status` is
    the HTTP status to answer with, `code` a short machine-readable reason. Each protocol (the dock's,
    the archive's) has its own subclass, so neither catches the other's."""

    def __init__(self, message: str, status: int = 400, code: str = "malformed"):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def message(self) -> str:
        return str(self)
