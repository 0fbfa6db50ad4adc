"""manifest.json, an index directory's description of itself (DESIGN.md, "Index directory").

One frozen record, read and validated only by `read_manifest` and written only through
`Manifest.to_json`, so readers use attributes and every problem in a file is named once, by
field. It needs no torch, FAISS or NumPy: everything that serves an index reads it.

Format 3: every index holds content hashes (sha256.txt), its model as ONNX (model/model.onnx)
and, for a large gallery, the 4-bit codes of its fast budgets ("four_bit"), built with the index
so that a search process only reads them. Older formats are refused with the command that
rebuilds them.
"""

import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

INDEX_FORMAT = 3
MANIFEST_FILE = "manifest.json"
METRIC = "cosine over the first k importance-ordered dimensions"
_MISSING = object()


@dataclass(frozen=True)
class ModelRecord:
    """The model whose embeddings the index holds (its files are in the index's model/)."""

    id: str
    weights_sha256: str
    config_sha256: str
    loss: str | None  # the training loss, as the checkpoint's config names it
    embedding_dim: int  # D: dimensions the model embeds, of which the index keeps `keep`


@dataclass(frozen=True)
class SkippedFile:
    """A gallery file left out of the index, with a short reason (no paths, no stack traces)."""

    path: str
    reason: str


@dataclass(frozen=True)
class FourBitBudget:
    """4-bit codes of the first `features` columns (file `codes_file(features)`), and how
    many of the candidates they rank first are re-scored exactly for a top 10."""

    features: int
    shortlist: int


def codes_file(features: int) -> str:
    """The index file holding the 4-bit codes of budget `features`."""
    return f"codes-{features}.faiss"


@dataclass(frozen=True)
class BuildRecord:
    """How the index was made, for people and benchmarks; None where a build has no such
    figure (a Ray shard records no timings, a whole index no shard number)."""

    engine: str = "local"  # local, or ray
    seconds: float | None = None  # reading, decoding and embedding
    images_per_second: float | None = None
    embedded: int | None = None  # files decoded and embedded by this build
    reused: int | None = None  # vectors kept bit for bit from the previous index (updates)
    device: str | None = None
    runtime: str | None = None  # what embedded the gallery: onnxruntime or torch
    batch_size: int | None = None
    index_seconds: float | None = None  # building the 4-bit codes
    four_bit: str | None = None  # whether codes were asked for: auto, always or never
    actors: int | None = None  # Ray model actors
    shard: int | None = None  # this index's place among `shards` (a shard of a larger index)
    shards: int | None = None

    def to_document(self) -> dict:
        return {name: value for name, value in asdict(self).items() if value is not None}


def _created_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything manifest.json says about an index; the JSON keys are the field names.

    `four_bit` and `checksums` describe files on disk: `write_index` fills them in from what
    it writes, and `read_manifest` requires them.
    """

    model: ModelRecord
    keep: int  # importance-ordered dimensions held per item (columns of vectors.npy)
    count: int  # N: items in the index (rows of vectors.npy, lines of ids.txt)
    importance: tuple[float, ...]  # keep values, largest first: each kept dimension's score
    metric: str = METRIC
    gallery: str | None = None  # the folder the index was built from, absolute
    created: str = field(default_factory=_created_now)  # ISO-8601, UTC
    skipped: tuple[SkippedFile, ...] = ()
    build: BuildRecord = BuildRecord()
    four_bit: tuple[FourBitBudget, ...] = ()  # budgets served by 4-bit codes, smallest first
    checksums: dict[str, str] = field(default_factory=dict)  # file -> SHA-256 of its bytes
    format: int = INDEX_FORMAT

    def to_document(self) -> dict:
        """The JSON object of manifest.json."""
        return {
            "format": self.format,
            "model": asdict(self.model),
            "keep": self.keep,
            "count": self.count,
            "importance": list(self.importance),
            "metric": self.metric,
            "gallery": self.gallery,
            "created": self.created,
            "skipped": [asdict(item) for item in self.skipped],
            "build": self.build.to_document(),
            "four_bit": [asdict(budget) for budget in self.four_bit],
            "checksums": dict(self.checksums),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_document(), indent=2) + "\n"

    @cached_property
    def version(self) -> str:
        """Short digest of the manifest (and so of every checksummed file): names this build.
        Kept once computed: every search answer carries it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the index at `index_dir`; ValueError with a line per problem.
    Keys it does not know are ignored (and not written back)."""
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(
            f"{index_dir} is not an index directory (no {MANIFEST_FILE}); build one first"
        )
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{MANIFEST_FILE} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{MANIFEST_FILE} must hold a JSON object, got {_shown(document)}")
    _check_format(document.get("format", _MISSING), index_dir)
    top = _Fields(document, "", problems=[])
    manifest = _manifest(top)
    if top.problems:
        raise ValueError("\n".join(top.problems))
    return manifest


def _check_format(found: object, index_dir: Path) -> None:
    """Format 3 is read; an older one names the command that rebuilds it."""
    if found == INDEX_FORMAT and _is_integer(found):
        return
    if found is _MISSING:
        raise ValueError(f"{MANIFEST_FILE}: format is missing")
    if _is_integer(found) and 1 <= found < INDEX_FORMAT:
        raise ValueError(
            f"index format {found} is no longer read: rebuild it with "
            f"python -m indexer build --gallery GALLERY --out {index_dir}"
        )
    raise ValueError(
        f"{MANIFEST_FILE}: format must be {INDEX_FORMAT}, got {_shown(found)} "
        "(an index written by another version of this code)"
    )


@dataclass(frozen=True)
class _Kind:
    """What a field must hold, in words for the error line, and how to read it."""

    described: str
    accepts: Callable[[object], bool]
    read: Callable[[object], object] = lambda value: value


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_integer(value) or isinstance(value, float)) and math.isfinite(value)


def _is_timestamp(value: object) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


POSITIVE = _Kind("a positive integer", lambda v: _is_integer(v) and v >= 1)
NON_NEGATIVE = _Kind("a non-negative integer", lambda v: _is_integer(v) and v >= 0)
NON_NEGATIVE_NUMBER = _Kind("a non-negative number", lambda v: _is_number(v) and v >= 0, float)
TEXT = _Kind("a non-empty string", lambda v: isinstance(v, str) and v != "")
STRING = _Kind("a string", lambda v: isinstance(v, str))
SHA256 = _Kind(
    "a SHA-256 hex digest", lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v)
)
TIMESTAMP = _Kind("an ISO-8601 time", _is_timestamp)
OBJECT = _Kind("an object", lambda v: isinstance(v, dict))
LIST = _Kind("a list", lambda v: isinstance(v, list))
NUMBERS = _Kind(
    "a list of numbers",
    lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
    lambda v: tuple(float(x) for x in v),
)


class _Fields:
    """Typed fields of one JSON object in the manifest; each problem becomes a line."""

    def __init__(self, document: dict, where: str, *, problems: list[str]) -> None:
        self.document, self.where, self.problems = document, where, problems

    def get(self, key: str, kind: _Kind, *, nullable: bool = False, optional: bool = False):
        """The field read as `kind`; None (and a line in `problems`) when it is not one."""
        value = self.document.get(key, _MISSING)
        if value is _MISSING and optional:
            return None
        if value is _MISSING:
            return self.problem(f"{self.where}{key} is missing")
        if value is None and nullable:
            return None
        if not kind.accepts(value):
            return self.problem(f"{self.where}{key} must be {kind.described}, got {_shown(value)}")
        return kind.read(value)

    def mapping(self, key: str, kind: _Kind) -> dict | None:
        """The object under `key`, each of whose values must be of `kind`."""
        found = self.get(key, OBJECT)
        if found is None:
            return None
        for name, value in found.items():
            if not kind.accepts(value):
                shown = _shown(value)
                self.problem(f"{self.where}{key}[{name!r}] must be {kind.described}, got {shown}")
        return {name: kind.read(value) for name, value in found.items()}

    def inner(self, key: str) -> "_Fields | None":
        """The fields of the object under `key`; None when it is missing or not an object."""
        value = self.get(key, OBJECT)
        return (
            None if value is None else _Fields(value, f"{self.where}{key}.", problems=self.problems)
        )

    def problem(self, line: str) -> None:
        self.problems.append(f"{MANIFEST_FILE}: {line}")


def _manifest(top: _Fields) -> Manifest | None:
    """The manifest, or None once a problem is found (each one is recorded in `top`)."""
    model = _model(top.inner("model"))
    keep = top.get("keep", POSITIVE)
    count = top.get("count", NON_NEGATIVE)
    importance = top.get("importance", NUMBERS)
    read = {
        "metric": top.get("metric", TEXT),
        "gallery": top.get("gallery", STRING, nullable=True),
        "created": top.get("created", TIMESTAMP),
        "skipped": _skipped(top),
        "build": _build(top.inner("build")),
        "four_bit": _four_bit(top),
        "checksums": top.mapping("checksums", SHA256),
    }
    if keep is not None and importance is not None:
        if len(importance) != keep:
            top.problem(f"importance must hold keep ({keep}) values, got {len(importance)}")
        elif any(later > earlier for earlier, later in itertools.pairwise(importance)):
            top.problem("importance must be in decreasing order (largest first)")
    dim = None if model is None else model.embedding_dim
    if keep is not None and dim is not None and keep > dim:
        top.problem(f"keep ({keep}) must not exceed model.embedding_dim ({dim})")
    seen = set()
    for position, budget in enumerate(read["four_bit"]):
        if keep is not None and budget.features is not None and budget.features > keep:
            top.problem(
                f"four_bit[{position}].features ({budget.features}) must not exceed keep ({keep})"
            )
        if budget.features in seen:
            top.problem(f"four_bit[{position}].features ({budget.features}) is listed twice")
        seen.add(budget.features)
    if top.problems:
        return None
    return Manifest(model=model, keep=keep, count=count, importance=importance, **read)


def _model(fields: _Fields | None) -> ModelRecord | None:
    if fields is None:
        return None
    return ModelRecord(
        id=fields.get("id", TEXT),
        weights_sha256=fields.get("weights_sha256", SHA256),
        config_sha256=fields.get("config_sha256", SHA256),
        loss=fields.get("loss", TEXT, nullable=True),
        embedding_dim=fields.get("embedding_dim", POSITIVE),
    )


def _skipped(top: _Fields) -> tuple[SkippedFile, ...]:
    return tuple(
        SkippedFile(fields.get("path", STRING), fields.get("reason", TEXT))
        for fields in _objects(top, "skipped")
    )


def _four_bit(top: _Fields) -> tuple[FourBitBudget, ...]:
    return tuple(
        FourBitBudget(fields.get("features", POSITIVE), fields.get("shortlist", POSITIVE))
        for fields in _objects(top, "four_bit")
    )


def _objects(top: _Fields, key: str) -> list[_Fields]:
    """The fields of each object in the list under `key` (a problem for anything else)."""
    found = []
    for position, item in enumerate(top.get(key, LIST) or []):
        if isinstance(item, dict):
            found.append(_Fields(item, f"{key}[{position}].", problems=top.problems))
        else:
            top.problem(f"{key}[{position}] must be an object, got {_shown(item)}")
    return found


_BUILD_KINDS = {
    "engine": TEXT,
    "seconds": NON_NEGATIVE_NUMBER,
    "images_per_second": NON_NEGATIVE_NUMBER,
    "embedded": NON_NEGATIVE,
    "reused": NON_NEGATIVE,
    "device": TEXT,
    "runtime": TEXT,
    "batch_size": POSITIVE,
    "index_seconds": NON_NEGATIVE_NUMBER,
    "four_bit": TEXT,
    "actors": POSITIVE,
    "shard": NON_NEGATIVE,
    "shards": POSITIVE,
}


def _build(fields: _Fields | None) -> BuildRecord:
    """Every figure is optional: builds record different ones (see BuildRecord)."""
    if fields is None:
        return BuildRecord()
    read = {name: fields.get(name, kind, optional=True) for name, kind in _BUILD_KINDS.items()}
    return BuildRecord(**{name: value for name, value in read.items() if value is not None})


def _shown(value: object) -> str:
    """A value as the JSON file writes it, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
