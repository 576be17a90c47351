"""The store interface. Values are JSON documents; every key has a time to live."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class StoreUnavailable(RuntimeError):
    """The store's server could not be reached (or did not answer in time).

    Never caught to carry on as if a key were absent: an unreadable revocation list or
    lockout is not an empty one. The app answers 503 (``idp.availability``)."""


class Store(ABC):
    backend = "abstract"

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers (``/readyz``)."""
        self.get("readyz:ping")

    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl: float) -> None:
        """Write (or overwrite) with a fresh time to live."""

    @abstractmethod
    def add(self, key: str, value: Any, ttl: float) -> bool:
        """Write only if absent; True if written. The basis of replay detection."""

    @abstractmethod
    def take(self, key: str) -> Any | None:
        """Read and delete in one atomic step, so a single-use value is used once."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def incr(self, key: str, ttl: float) -> int:
        """Add one; the time to live starts with the first increment (a fixed window)."""

    @abstractmethod
    def append(self, key: str, value: Any, ttl: float) -> None:
        """Add to a list and extend the list's time to live."""

    def append_many(self, items: list[tuple[str, Any, float]]) -> None:
        """``append`` each (key, value, ttl), in one round trip where the backend can.
        Each append stays atomic on its own key; together they are not a transaction
        (a caller reading one list never relies on another)."""
        for key, value, ttl in items:
            self.append(key, value, ttl)

    @abstractmethod
    def members(self, key: str) -> list[Any]:
        """The list written by ``append`` (empty when absent)."""

    @abstractmethod
    def touch(self, key: str, ttl: float) -> bool:
        """Extend the time to live; False when the key is gone."""
