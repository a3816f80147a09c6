"""A bounded, expiring in-memory store of analysis results, shared by the sessions of one server."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from emotion_core.analysis import AnalysisResult


class Results:
    """The analyses of this server's uploads: at most ``max_entries``, each for ``ttl`` seconds, in
    memory only. Not ``st.cache_data``: its element replay forbids the progress bar that a long
    analysis updates from inside (and it would copy a 10-minute result on every rerun)."""

    def __init__(self, max_entries: int = 16, ttl: float = 3600.0):
        self.max_entries, self.ttl = max_entries, ttl
        self._items: OrderedDict[str, tuple[float, AnalysisResult]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> AnalysisResult | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: str, res: AnalysisResult) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), res)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
