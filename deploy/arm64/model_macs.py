#!/usr/bin/env python3
"""Operation counts of the shipped models, for the board speed estimate in docs/boards.md.

    .venv/bin/python deploy/arm64/model_macs.py            # Markdown table of models/*.tflite

Why count instead of timing: under qemu-user emulation a millisecond says nothing about a Cortex-A72/A76, so the
README estimates board time from each model's multiply-accumulates (MACs) and published LiteRT figures of models
with similar counts. Counted from the .tflite graph itself (the int8 model the device runs): CONV_2D
out_h*out_w*out_c*k_h*k_w*in_c, DEPTHWISE_CONV_2D out_h*out_w*out_c*k_h*k_w, FULLY_CONNECTED out*in; element-wise
ops (add, mul, hard-swish, mean) are listed as element counts, not MACs. Needs the `device` extra (LiteRT).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelOps:
    name: str
    input_shape: tuple[int, ...]
    macs: int
    params: int
    elementwise: int
    ops: dict[str, int]


def op_macs(op: str, weights: tuple[int, ...] | None, output: tuple[int, ...]) -> int:
    """MACs of one op from its weight and output shapes (0 for ops without weights)."""
    if weights is None:
        return 0
    if op == "CONV_2D":  # weights [out_c, kh, kw, in_c], output [1, oh, ow, out_c]
        _, oh, ow, oc = output
        _, kh, kw, ic = weights
        return oh * ow * oc * kh * kw * ic
    if op == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, out_c]
        _, oh, ow, oc = output
        _, kh, kw, _ = weights
        return oh * ow * oc * kh * kw
    if op == "FULLY_CONNECTED":  # weights [out, in]
        out_n, in_n = weights
        batch = 1
        for d in output[:-1]:
            batch *= d
        return batch * out_n * in_n
    return 0


def count(tflite: Path) -> ModelOps:
    """The op counts of one .tflite file (graph read without the XNNPACK delegate, which would hide the ops)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(tflite),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    shapes = {t["index"]: tuple(int(x) for x in t["shape"]) for t in interp.get_tensor_details()}
    macs = params = elementwise = 0
    ops: dict[str, int] = {}
    for op in interp._get_ops_details():  # noqa: SLF001 - LiteRT's only graph view from Python
        name = op["op_name"]
        ops[name] = ops.get(name, 0) + 1
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        out = shapes[int(op["outputs"][0])]
        weights = shapes.get(ins[1]) if len(ins) > 1 and name in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                                     "FULLY_CONNECTED") else None
        m = op_macs(name, weights, out)
        macs += m
        if weights is not None:
            n = 1
            for d in weights:
                n *= d
            params += n
        elif name in ("ADD", "MUL", "HARD_SWISH", "MEAN", "L2_NORMALIZATION", "LOGISTIC", "RELU", "RELU6"):
            n = 1
            for d in out:
                n *= d
            elementwise += n
    inp = tuple(int(x) for x in interp.get_input_details()[0]["shape"])
    return ModelOps(tflite.stem, inp, macs, params, elementwise, dict(sorted(ops.items())))


def render(rows: list[ModelOps]) -> str:
    lines = ["| model | input (N,H,W,C) | MACs | weights | element-wise outputs | ops |", "|---|---|---|---|---|---|"]
    for r in rows:
        ops = ", ".join(f"{k.lower()} {v}" for k, v in r.ops.items())
        lines.append(f"| {r.name} | {'x'.join(map(str, r.input_shape))} | {r.macs / 1e6:.1f} M | "
                     f"{r.params / 1e3:.0f} k | {r.elementwise / 1e3:.0f} k | {ops} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", type=Path, help="default: models/*.tflite")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    files = args.models or sorted((REPO / "models").glob("*.tflite"))
    rows = [count(f) for f in files]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
    else:
        print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
