"""``biolock bench``: per-stage timings of the device path, like the vein papers' timing tables.

Why in the product: the targets (end-to-end verify < 10 ms median, identify over 10,000 templates < 5 ms, RSS
< 120 MB, start to ready < 1.5 s) only mean something measured on the board itself. Everything runs on synthetic
in-memory data in a throw-away store (never the board's real one); medians and 95th percentiles are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

TARGETS = {"verify_to_decision": 10.0, "identify_10000": 5.0, "rss_mb": 120.0, "startup_s": 1.5,
           "vein_lines_extract_compare": 20.0,
           "fp_compare": 0.3, "fp_extract_compare": 15.0, "fp_identify_1000x5_cold": 100.0,  # issue 15 targets
           "partial_compare": 5.0, "partial_verify_16kb": 5.0}  # issue 18: per comparison, small sensors
PARTIAL_TEMPLATE_TARGET = 16 * 1024  # issue 18: all placements of one finger

_STARTUP = """
import json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
from device.config import Config, DeviceConfig, InferenceConfig
from device.pipeline import Authenticator
t1 = time.perf_counter()
auth = Authenticator.from_config(Config(device=DeviceConfig(modality=sys.argv[4]),
                                        inference=InferenceConfig(model=Path(sys.argv[1]))), Path(sys.argv[2]))
t2 = time.perf_counter()
d = auth.verify("bench0", np.load(sys.argv[3]))
t3 = time.perf_counter()
rss = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")]
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_decision_s": t3 - t2, "accepted": d.accepted,
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_mb": (rss[0] if rss else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def synthetic_finger(seed: int, impression: int, shape: tuple[int, int] = (288, 256)) -> Any:
    """A fingerprint-like ridge image (identity from ``seed``), so the bench needs no data set."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = sum(rng.normal(0, 1.2) * np.sin(2 * np.pi * (rng.uniform(.5, 3) * xx / w + rng.uniform(.5, 3) * yy / h)
                                            + rng.uniform(0, 6.28)) for _ in range(4))
    phase = np.cumsum(np.cos(theta), axis=1) + np.cumsum(np.sin(theta), axis=0)
    noise = np.random.default_rng(seed * 1000 + impression).normal(0, 6, (h, w))
    return np.clip(128 + 90 * np.sin(2 * np.pi * phase / rng.uniform(8, 11)) + noise, 0, 255).astype(np.uint8)


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median and 95th percentile wall time (ms) of ``repeat`` calls after ``warmup``, plus the median CPU time
    of the process (all threads), which a busy shared machine inflates less than wall time."""
    import numpy as np

    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(max(1, repeat)):
        t, c = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"median_ms": float(np.median(samples)), "p95_ms": float(np.percentile(samples, 95)), "n": len(samples),
            "cpu_median_ms": float(np.median(cpu))}


def _gallery(n: int, d: int, seed: int = 0) -> tuple[Any, list[str]]:
    import numpy as np

    g = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return g, [f"user{i // 5}" for i in range(n)]


def _print_renderer() -> Callable[[int, int], Any]:
    """Prints from the synthetic generator when the training package is here, else the bench's ridge images."""
    try:
        from training.synth.dataset import identity_seed
        from training.synth.fingerprint import render_impression
    except ImportError:
        return synthetic_finger
    return lambda finger, impression: render_impression(identity_seed(5, finger, "fingerprint"), impression, "r307")


def _touch_renderer() -> Callable[[int, int], Any]:
    """192x192 touches (an R503's) from the generator's capacitive profile when the training package is here."""
    try:
        from training.synth.dataset import identity_seed
        from training.synth.fingerprint import render_impression
    except ImportError:
        return lambda finger, impression: synthetic_finger(finger + 1, impression, (192, 192))
    return lambda finger, impression: render_impression(identity_seed(5, finger, "fingerprint"), impression,
                                                        "capacitive192")


def run_bench(card_path: Path, float_card: Path | None, repeat: int, sizes: list[int], image: Any,
              startup: bool = True, config: Any = None) -> dict[str, Any]:
    """Every stage's timings; with ``config``, also the verify decision that configuration makes (issue 16)."""
    import cv2
    import numpy as np

    from device.config import InferenceConfig
    from device.imageio import decode_image
    from device.inference import build_embedder, load_card
    from device.matching import identify, verify_score
    from device.pipeline import Authenticator
    from device.preprocess import preprocess
    from device.store import TemplateStore, init_key

    card = load_card(card_path)
    stages: dict[str, dict[str, float]] = {}
    png = cv2.imencode(".png", image)[1].tobytes()
    stages["decode"] = timed(lambda: decode_image(png), repeat)
    stages["preprocess"] = timed(lambda: preprocess(image, card.modality, card.input_size, card.preprocessing), repeat)
    if card.modality == "fingerprint":
        from device import fingerprint_ops as fp

        work = fp.shrink_for_work(image)
        stages["quality"] = timed(lambda: fp.segment(work), repeat)  # segmentation + coherence = the quality score
    if card.modality == "vein":  # issue 19: the line matcher beside the vein model
        from device.vein.bench import vein_stages

        stages.update(vein_stages(image, repeat, timed))
    prepared = preprocess(image, card.modality, card.input_size, card.preprocessing).image
    for label, path in (("int8", card_path), ("float", float_card)):
        if path is None:
            continue
        for threads in (1, 2):
            with build_embedder(InferenceConfig(num_threads=threads), load_card(path)) as e:
                stages[f"embed_{label}_{threads}t"] = timed(lambda e=e: e.embed(prepared), repeat)
    d = card.embedding_size
    probe = _gallery(1, d, seed=99)[0][0]
    five = _gallery(5, d, seed=7)[0]
    stages["match_1to1"] = timed(lambda: verify_score(probe, five), repeat)
    for n in sizes:
        g, users = _gallery(n, d)
        stages[f"identify_{n}"] = timed(lambda g=g, users=users: identify(probe, g, users, top=1),
                                        max(5, repeat // 4) if n >= 100_000 else repeat)
    partial: dict[str, Any] | None = None  # small-sensor facts (fingerprint cards only)
    if card.modality == "fingerprint":  # biolock's own minutiae matcher: what decides fingerprints (issue 15)
        from device.fingerprint.timing import matcher_stages

        stages.update(matcher_stages(_print_renderer(), timed, max(5, repeat // 4), d))
        from device.fingerprint.partial_timing import partial_stages  # small sensors (issue 18)

        partial_rows, partial = partial_stages(_touch_renderer(), timed, max(5, repeat // 4))
        stages.update(partial_rows)
    result: dict[str, Any] = {"model": card.model_id, "model_bytes": card.model_path.stat().st_size,
                              "embedding_size": d, "stages": stages}
    if partial is not None:
        result["partial"] = partial
    with tempfile.TemporaryDirectory(prefix="biolock-bench-") as tmp:
        state = Path(tmp)
        init_key(state)
        with build_embedder(InferenceConfig(num_threads=1), card) as emb, \
                TemplateStore.open(state) as store:
            auth = Authenticator(emb, store, modality=card.modality, security="balanced")
            users = 200
            for u in range(users):  # 1,000 templates, sealed like real ones
                vectors = emb.embed_batch([prepared] * 5) if u == 0 else _gallery(5, d, seed=u)[0]
                store.enroll(f"bench{u}", "right-index", card.modality, auth.model_id, list(vectors))
            result["template_bytes"] = int(store.conn.execute("SELECT avg(length(sealed)) FROM templates")
                                           .fetchone()[0])
            stages["store_read_user"] = timed(lambda: store.user_templates("bench0", card.modality, auth.model_id),
                                              repeat)

            def cold_gallery() -> None:  # a fresh store object: the decrypting read, not the in-memory cache
                with TemplateStore.open(state) as fresh:
                    fresh.gallery(card.modality, auth.model_id)

            stages["store_open_gallery_1000"] = timed(cold_gallery, max(3, repeat // 10))
            decisions: list[Any] = []
            stages["verify_e2e"] = timed(lambda: decisions.append(auth.verify("bench0", image)), repeat)
            lat = [d.latency_ms for d in decisions[2:]]  # to the decision, before its audit row is written
            stages["verify_to_decision"] = {"median_ms": float(np.median(lat)), "p95_ms": float(np.percentile(lat, 95)),
                                            "n": len(lat), "cpu_median_ms": None}
            result["verify_accepted"] = all(d.accepted for d in decisions)
            stages["identify_e2e_1000"] = timed(lambda: auth.identify(image), repeat)
        if startup:
            probe_file = state / "probe.npy"
            np.save(probe_file, image)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _STARTUP, str(card.path), str(state), str(probe_file),
                                  card.modality],
                                 capture_output=True, text=True, timeout=120)
            wall = time.perf_counter() - t
            if out.returncode == 0:
                sub = json.loads(out.stdout.strip().splitlines()[-1])
                result.update(startup_s=wall, rss_mb=sub["rss_mb"], startup_detail=sub)
            else:
                result["startup_error"] = out.stderr.strip().splitlines()[-1:] or ["failed"]
    if config is not None:  # last: building the configured decision applies its one-thread budget process-wide
        from device.bench_decision import decision_rows
        from device.inference.threads import limit_runtime_threads

        rows, result["decision"] = decision_rows(config, card.path, image, repeat, timed)
        stages.update(rows)
        limit_runtime_threads(config.inference.num_threads)
    import os

    result["machine"] = {"cpus": os.cpu_count(), "platform": sys.platform, "python": sys.version.split()[0],
                         "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    result["targets"] = TARGETS
    return result


def format_table(r: dict[str, Any]) -> str:
    lines = [f"model {r['model']}: {r['model_bytes']:,} bytes, embedding {r['embedding_size']} values",
             f"{'stage':<26}{'median ms':>11}{'p95 ms':>10}{'cpu ms':>9}{'runs':>7}  target", "-" * 71]
    for name, s in r["stages"].items():
        target = TARGETS.get(name)
        mark = "" if target is None else f"< {target:g} ms {'ok' if s['median_ms'] < target else 'MISSED'}"
        cpu = s.get("cpu_median_ms")
        cpu_txt = "n/a" if cpu is None else f"{cpu:.3f}"
        lines.append(f"{name:<26}{s['median_ms']:>11.3f}{s['p95_ms']:>10.3f}{cpu_txt:>9}{s['n']:>7}  {mark}")
    lines.append("-" * 71)
    lines.append(f"template size (sealed): {r.get('template_bytes', 'n/a')} bytes")
    part = r.get("partial")
    if part and "error" in part:
        lines.append(f"partial_* rows missing: {part['error']}")
    elif part:
        ok = "ok" if part["template_bytes"] <= PARTIAL_TEMPLATE_TARGET else "MISSED"
        lines.append(f"partial_* rows (small-sensor mode): 192x192 synthetic touches, {part['placements']} "
                     f"placements stitched into {part['template_bytes']:,} bytes (<= {PARTIAL_TEMPLATE_TARGET:,} "
                     f"{ok}); identify against {part['fingers']} enrolled fingers")
    dec = r.get("decision")
    if dec and "error" in dec:
        lines.append(f"decision rows missing: {dec['error']}")
    elif dec:
        lines.append(f"decision_* rows: the device's verify ({dec['matcher']} at {dec['level']}, threshold "
                     f"{dec['threshold']:.4f}, 1 thread; {'accepted' if dec['accepted'] else 'REJECTED'}: "
                     f"{dec['reason']}); verify_e2e: the embedding alone")
    if "startup_s" in r:
        ok = lambda v, t: "ok" if v < t else "MISSED"  # noqa: E731
        lines.append(f"process RSS after first decision: {r['rss_mb']:.1f} MB (< 120 MB {ok(r['rss_mb'], 120)})")
        lines.append(f"start to first decision (fresh process): {r['startup_s']:.2f} s (< 1.5 s "
                     f"{ok(r['startup_s'], 1.5)}; the process used {r['startup_detail']['cpu_s']:.2f} s CPU)")
    elif "startup_error" in r:
        lines.append(f"start-up measurement failed: {r['startup_error']}")
    m = r["machine"]
    lines.append(f"machine: {m['cpus']} CPUs, load average {m['load_avg']}, Python {m['python']}")
    return "\n".join(lines)


@click.command("bench")
@click.option("--model", "model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model card to measure (default: the configured or shipped model).")
@click.option("--float-model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A float32 card of the same network, to time float embedding too.")
@click.option("--image", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Use this capture instead of a synthetic fingerprint.")
@click.option("--repeat", type=click.IntRange(1, 100_000), default=200, show_default=True, help="Runs per stage.")
@click.option("--sizes", default="100,1000,10000,100000", show_default=True,
              help="Gallery sizes for 1:N identify, comma-separated.")
@click.option("--no-startup", is_flag=True, help="Skip the fresh-process start-up and RSS measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def command(app, model: Path | None, float_model: Path | None, image: Path | None, repeat: int, sizes: str,
            no_startup: bool, as_json: bool) -> None:
    """Time every stage of the device path: decode, preprocess, quality, embed, match, identify, store, verify.

    The decision_* rows time the verify decision the configuration resolves to (fingerprint: the embedding fused
    with the minutiae matcher; vein: with the line matcher) end to end on one thread, with its stages.

    Uses synthetic data and a temporary store (the board's real store is never touched). Without a shipped
    model, pass --model CARD (a card from `biolock train export`).

    \b
    Example:
      biolock bench
      biolock bench --model models/fingerprint.json --float-model out/fingerprint_float.json --json
    """
    from device.errors import ConfigError
    from device.inference import card_for, load_card
    from device.inference.threads import limit_runtime_threads

    limit_runtime_threads(app.config.inference.num_threads)

    if model is not None:  # an explicit card is benched for its own modality
        card = load_card(model)
    else:
        modality = app.config.device.modality
        card = card_for(app.config.inference, modality if modality != "fusion" else "fingerprint")
    try:
        n_sizes = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"--sizes must be comma-separated integers, got {sizes!r}") from exc
    if card.modality != "fingerprint" and image is None:
        raise ConfigError("the synthetic bench image is a fingerprint: pass --image with a vein capture")
    if image is not None:
        from device.imageio import read_image

        frame = read_image(image)
    else:
        # a print from the generator when the training package is here: the decision rows enrol it, and the ridge
        # pattern of synthetic_finger is below the enrolment quality gate (device.fingerprint.gate)
        frame = _print_renderer()(1, 0)
    result = run_bench(card.path, float_model, repeat, n_sizes, frame, startup=not no_startup, config=app.config)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
