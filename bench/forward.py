"""`python -m bench.forward`: one query's forward pass, float against ONNX Runtime's variants.

    python -m bench.forward --gallery DIR [--model CKPT ...] [--out docs]

For each model: the exported graph as the service loads it (ONNX Runtime optimises it when
the session starts), the same graph optimised once offline and saved, and an int8 graph
(static QDQ quantisation, calibrated on gallery images). Each is timed on one thread, one image
at a time, side by side on the same images; int8 is judged by how often its top 10 at each
budget is the float graph's top 10 (the service keeps int8 only at >= 99%).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.machine import describe_run
from bench.report import markdown_table
from bench.timing import time_side_by_side
from models.config import ONNX_FILE
from models.imagefiles import list_image_files, open_image
from models.preprocess import to_pixels
from models.vectors import unit_rows

# ONNX Runtime, torch and FAISS are imported by the functions that use them: --help answers at
# once.

CALIBRATION_IMAGES = 64


def graph_variants(model: Path, work: Path, calibration: np.ndarray) -> dict[str, Path]:
    """name -> ONNX file: as exported, optimised offline, int8."""
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from models.checkpoint import load_checkpoint
    from models.onnx_export import export_onnx

    class Calibration(CalibrationDataReader):
        """The calibration images, one at a time."""

        def __init__(self, pixels: np.ndarray) -> None:
            self._batches = iter([{"pixels": pixels[i : i + 1]} for i in range(len(pixels))])

        def get_next(self) -> dict | None:
            return next(self._batches, None)

    encoder, _ = load_checkpoint(model)
    exported = work / ONNX_FILE
    export_onnx(encoder, exported)
    optimised = work / "optimised.onnx"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(optimised)
    onnxruntime.InferenceSession(str(exported), options, providers=["CPUExecutionProvider"])
    int8 = work / "int8.onnx"
    quantize_static(
        str(exported), str(int8), Calibration(calibration), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
    )  # fmt: skip
    return {"float (as served)": exported, "float, optimised offline": optimised, "int8": int8}


def top10_agreement(reference: np.ndarray, other: np.ndarray, budgets: list[int]) -> dict:
    """Share of queries whose top 10 (each image against all others) is the same set."""
    from search.scan import flat_at_budget

    agreement = {}
    for budget in budgets:
        found = []
        for vectors in (reference, other):
            index = flat_at_budget(vectors, budget)
            _, I = index.search(unit_rows(vectors[:, :budget]), 11)
            found.append([set(row[1:]) for row in I])
        same = [a == b for a, b in zip(*found, strict=True)]
        agreement[str(budget)] = round(float(np.mean(same)), 4)
    return agreement


def bench_model(model: Path, files: list[Path], repeats: int) -> dict:
    from models.checkpoint import load_checkpoint
    from models.onnx_encoder import OnnxEncoder

    encoder, config = load_checkpoint(model)
    pixels = np.stack([to_pixels(open_image(path), encoder.config) for path in files])
    with tempfile.TemporaryDirectory(prefix="bench-forward-") as work:
        variants = graph_variants(model, Path(work), pixels[:CALIBRATION_IMAGES])
        runtimes = {
            name: OnnxEncoder(path, encoder.config, threads=1) for name, path in variants.items()
        }
        timings = time_side_by_side(
            {name: (lambda i, r=r: r.embed(pixels[i % len(pixels)][None])) for name, r in
             runtimes.items()},
            repeats,
        )  # fmt: skip
        vectors = {name: r.embed(pixels) for name, r in runtimes.items()}
    reference = vectors["float (as served)"]
    budgets = sorted({16, encoder.config.embedding_dim})
    return {
        "model": config["id"],
        "backbone": encoder.config.backbone,
        "image_size": encoder.config.image_size,
        "images": len(files),
        "forward_ms": timings,
        "top10_agreement_with_float": {
            name: top10_agreement(reference, found, budgets) for name, found in vectors.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forward", description=__doc__)
    parser.add_argument("--gallery", type=Path, required=True, help="images to embed")
    parser.add_argument("--model", type=Path, action="append", default=None)
    parser.add_argument("--images", type=int, default=500, help="gallery images used")
    parser.add_argument("--repeats", type=int, default=400, help="timed calls per variant")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    from models.checkpoint import DEFAULT_CHECKPOINT, FASHION_MNIST_CHECKPOINT, SMALL_CNN_CHECKPOINT

    models = args.model or [DEFAULT_CHECKPOINT, FASHION_MNIST_CHECKPOINT, SMALL_CNN_CHECKPOINT]
    files = list_image_files(args.gallery)
    if not files:
        print(f"error: no images in {args.gallery}", file=sys.stderr)
        return 2
    step = max(1, len(files) // args.images)
    files = files[::step][: args.images]
    results = describe_run("python -m bench.forward", argv)
    results["models"] = [bench_model(model, files, args.repeats) for model in models]
    rows = []
    for measured in results["models"]:
        for name, timing in measured["forward_ms"].items():
            agreement = measured["top10_agreement_with_float"][name]
            rows.append([measured["backbone"], measured["image_size"], name, timing["median_ms"],
                         timing["p99_ms"], json.dumps(agreement)])  # fmt: skip
    print(markdown_table(["backbone", "px", "graph", "p50 ms", "p99 ms", "top-10 = float"], rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "forward.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
