"""The project's command lines: every `python -m` module of models, indexer, service, evaluation
and bench that has a main()."""

from pathlib import Path

from models.checkpoint import SMALL_CNN_CHECKPOINT

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


def small_cnn_build(gallery: Path, out: Path, *options: str) -> list[str]:
    """`indexer build` arguments with the small CNN: fast, where the model is not under test."""
    model = str(SMALL_CNN_CHECKPOINT)
    return ["build", "--model", model, "--gallery", str(gallery), "--out", str(out), *options]
