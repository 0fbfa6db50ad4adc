"""The gallery's near-duplicate groups for GET /duplicates, found once per setting.

A search of the whole gallery against itself takes seconds at 60k items, so the groups are
kept for the index's lifetime (a reload brings a new index and an empty cache): one request
computes them while others asking for the same setting wait for that answer.
"""

import threading
from collections import OrderedDict

from indexer.duplicates import find_duplicates, groups_document
from indexer.index_dir import LoadedIndex

SETTINGS_KEPT = 8


class DuplicateGroupsCache:
    def __init__(self, index: LoadedIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._found: OrderedDict[tuple[float, int], dict] = OrderedDict()

    def groups(self, threshold: float, k_features: int) -> dict:
        """groups.json's document for this threshold and candidate budget (verified at keep)."""
        key = (threshold, k_features)
        with self._lock:
            if key not in self._found:
                found = find_duplicates(self.index.vectors, threshold, k_features=k_features)
                self._found[key] = groups_document(found, self.index.ids)
                while len(self._found) > SETTINGS_KEPT:
                    self._found.popitem(last=False)
            self._found.move_to_end(key)
            return self._found[key]
