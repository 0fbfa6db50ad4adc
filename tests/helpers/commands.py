"""The project's command lines: every `python -m` module of models, indexer, service, evaluation
and bench that has a main()."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = sorted(
    f"{package}.{path.stem}"
    for package in ("evaluation", "bench")
    for path in (ROOT / package).glob("*.py")
    if path.stem != "__main__" and "\ndef main(" in path.read_text(encoding="utf-8")
)
COMMANDS = [
    "models",
    "indexer",
    "service",
    "service.client",
    "service.control",
    "service.cluster",
    "bench",
    *MEASUREMENTS,
]
