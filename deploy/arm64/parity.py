#!/usr/bin/env python3
"""Raw outputs of the shipped .tflite models for fixed pseudo-random inputs, as JSON (for the emulated check).

Why: under qemu's default "max" CPU, LiteRT's XNNPACK int8 kernels produced different embeddings on aarch64 than on
x86 (measured here); a board emulation is only evidence if the numbers match. check.sh runs this on the host and in
the arm64 root and compares: every output value within ``--tolerance`` quantization steps (default 1).

    python parity.py MODELS_DIR > out.json
    python parity.py --compare host.json board.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def outputs(models: Path, seeds: int = 3) -> dict[str, list[list[float]]]:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    out: dict[str, list[list[float]]] = {}
    for path in sorted(models.glob("*.tflite")):
        interp = Interpreter(model_path=str(path), num_threads=1)
        interp.allocate_tensors()
        inp, res = interp.get_input_details()[0], interp.get_output_details()[0]
        rows = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
            x = (rng.integers(info.min, info.max, inp["shape"], dtype=inp["dtype"]) if info is not None
                 else rng.random(inp["shape"], dtype=np.float32).astype(inp["dtype"]))
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            rows.append(interp.get_tensor(res["index"]).ravel().astype(float).tolist())
        out[path.name] = rows
    return out


def compare(a: dict, b: dict, tolerance: float) -> list[str]:
    """Problems (empty: the two runs agree within ``tolerance`` per value)."""
    problems = []
    if set(a) != set(b):
        problems.append(f"different models: {sorted(a)} vs {sorted(b)}")
    for name in sorted(set(a) & set(b)):
        for i, (ra, rb) in enumerate(zip(a[name], b[name], strict=True)):
            worst = max((abs(x - y) for x, y in zip(ra, rb, strict=True)), default=0.0)
            if len(ra) != len(rb) or worst > tolerance:
                problems.append(f"{name} input {i}: outputs differ by up to {worst:g} (tolerance {tolerance:g})")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="?", type=Path)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    p.add_argument("--tolerance", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.compare:
        a, b = (json.loads(f.read_text()) for f in args.compare)
        problems = compare(a, b, args.tolerance)
        for line in problems:
            print(line)
        if not problems:
            n = sum(len(r) for rows in a.values() for r in rows)
            print(f"{len(a)} models x {len(next(iter(a.values())))} inputs: {n} output values agree within "
                  f"{args.tolerance:g} step(s)")
        return 1 if problems else 0
    if args.models is None:
        p.error("give MODELS_DIR or --compare A B")
    json.dump(outputs(args.models), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
