"""The gallery's near-duplicate groups for GET /duplicates, found once per setting.

A search of the whole gallery against itself takes seconds at 60k items, so the groups are
kept for the index's lifetime (a reload brings a new index and an empty cache): one request
computes them while others asking for the same setting wait for that answer.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from indexer.duplicates import find_duplicates, groups_document

SETTINGS_KEPT = 8


class DuplicateGroupsCache:
    """`gallery_vectors`: every item's vector and id (one index, or all shards of a cluster),
    read when the first setting is asked for."""

    def __init__(self, gallery_vectors: Callable[[], tuple[np.ndarray, list[str]]]) -> None:
        self.gallery_vectors = gallery_vectors
        self._lock = threading.Lock()
        self._found: OrderedDict[tuple[float, int], dict] = OrderedDict()

    def groups(self, threshold: float, k_features: int) -> dict:
        """groups.json's document for this threshold and candidate budget (verified at keep)."""
        key = (threshold, k_features)
        with self._lock:
            if key not in self._found:
                vectors, ids = self.gallery_vectors()
                found = find_duplicates(vectors, threshold, k_features=k_features)
                self._found[key] = groups_document(found, ids)
                while len(self._found) > SETTINGS_KEPT:
                    self._found.popitem(last=False)
            self._found.move_to_end(key)
            return self._found[key]
