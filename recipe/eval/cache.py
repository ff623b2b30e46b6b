"""mteb's on-disk embedding cache (`NumpyCache`: vectors.npy, index.json, dimension), made to
survive a kill and to heal a damaged entry.

mteb rewrites index.json and dimension in place after every encode, so a kill in the middle
leaves a cut JSON file, and its `load` then raises on every later run (the task fails, exit 1,
the file unnamed). Here both are written under a temporary name and renamed (after the vectors
are flushed, so the index never names a row that is not on disk), and a cache whose files do
not read back (cut JSON, a dimension that is not a number, an index naming rows past the end of
vectors.npy) is named in one line, dropped and computed again.
"""

from __future__ import annotations

import json

from mteb.models.cache_wrappers.cache_backends.numpy_cache import NumpyCache

from .. import files, log
from ..errors import first_line


class DamagedCache(ValueError):
    """One of the cache's files does not read back; the message says which and how."""


class SafeNumpyCache(NumpyCache):
    def save(self) -> None:
        if self.vectors is not None:
            self.vectors.flush()
        index = {str(h): int(i) for h, i in self.hash_to_index.items()}
        files.write_text(self.index_file, json.dumps(index))
        if self.vector_dim is not None:
            files.write_text(self.dimension_file, str(self.vector_dim))

    def load(self) -> None:
        try:
            self._load_checked()
        except DamagedCache as e:
            log.note(f"{e}; dropped, computing its embeddings again")
            for path in (self.index_file, self.vectors_file, self.dimension_file):
                path.unlink(missing_ok=True)
            self.hash_to_index, self.vectors, self.vector_dim = {}, None, None

    def _load_checked(self) -> None:
        if self.dimension_file.exists():
            text = self.dimension_file.read_text(encoding="utf-8", errors="replace").strip()
            if not text.isdigit() or int(text) < 1:
                raise DamagedCache(f"{self.dimension_file}: a damaged embedding cache entry "
                                   f"(dimension {text[:20]!r} is not a number)")
            self.vector_dim = int(text)
        if not (self.index_file.exists() and self.vectors_file.exists()):
            return  # nothing cached yet (mteb starts an empty cache the same way)
        try:
            index = json.loads(self.index_file.read_bytes())
            if not isinstance(index, dict):
                raise ValueError("not a JSON object")
            self.hash_to_index = {str(h): int(i) for h, i in index.items()}
        except (ValueError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise DamagedCache(f"{self.index_file}: a damaged embedding cache entry "
                               f"({first_line(e, 100)})") from None
        if self.vector_dim is None:
            raise DamagedCache(f"{self.dimension_file}: missing beside {self.index_file.name}")
        self.vectors = self._open_vectors_file(self.vector_dim)
        rows = len(self.vectors)
        if self.hash_to_index and max(self.hash_to_index.values()) >= rows:
            self.vectors = None
            raise DamagedCache(f"{self.vectors_file}: a damaged embedding cache entry (index.json names rows up to "
                               f"{max(self.hash_to_index.values())}, the file holds {rows})")

