"""``biolock train``: training, evaluation, reports and export.

Every subcommand imports TensorFlow (and other heavy training dependencies) inside its function body, so
``biolock --help`` and all device commands start without them.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

MODALITY = click.Choice(["fingerprint", "vein"])


@click.group("train")
def train() -> None:
    """Train, evaluate and export embedding models (needs the `train` extra).

    \b
    Example:
      biolock train fit --modality fingerprint --data out/synth-fp
    """


@train.command("fit")
@click.option("--modality", type=MODALITY, required=True, help="Which kind of image the model embeds.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True,
              help="Dataset folder or manifest.csv (any layout `biolock data info` understands).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Training config TOML (see docs/training.md); keys override its preset.")
@click.option("--preset", default=None, help="tiny, default, ship-fingerprint or ship-vein.")
@click.option("--loss", default=None, help="Override loss.name (triplet, batch_hard, semi_hard, eer, contrastive, "
              "logistic, cosface).")
@click.option("--epochs", type=int, default=None, help="Override optim.epochs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/fit"),
              show_default=True, help="Run folder: checkpoints, best.keras, curves.png, history.json.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--force", is_flag=True, help="Start over in an --out that already holds a run (deletes that run).")
@click.option("--init", "init_model", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Fine-tune: start from this .keras model's weights (same architecture and config).")
@click.option("--preprocessing", "preprocessing_id", default=None,
              help="Preprocessing version (e.g. fingerprint-v1, to fine-tune an older model); default: the current "
              "one, or the one the --init model's run recorded.")
def fit_cmd(modality, data, config_file, preset, loss, epochs, out_dir, resume, force, init_model,
            preprocessing_id) -> None:
    """Train an embedding model with validation EER every epoch.

    An --out that already holds a run is refused unless --resume (continue it) or --force (start over) is given.
    Ctrl-C saves a checkpoint and prints the command that resumes it.

    \b
    Example:
      biolock train fit --modality fingerprint --data out/synth-fp --preset tiny --out runs/tiny
      biolock train fit --modality vein --data ../shared/data --config my.toml --resume --out runs/vein
      biolock train fit --modality vein --data ../shared/data --preset ship-vein --init runs/vein/best.keras
    """
    from training.fit import TrainingInterrupted, check_run_folder, fit
    from training.prepared import prepare
    from training.train_config import load_train_config

    check_run_folder(out_dir, resume, force)  # before anything is prepared or imported

    overrides: dict = {}
    if loss:
        overrides.setdefault("loss", {})["name"] = loss
    if epochs:
        overrides.setdefault("optim", {})["epochs"] = epochs
    cfg = load_train_config(config_file, preset, overrides)
    if preprocessing_id is None and init_model is not None:
        from training.embed import run_preprocessing

        preprocessing_id = run_preprocessing(Path(init_model).parent)
    prepared = prepare(data, modality, cache_dir=out_dir / "cache", workers=cfg.data.workers, min_impressions=2,
                       preprocessing_id=preprocessing_id)
    _write_run_info(out_dir, modality, prepared.preprocessing_id, data)
    try:
        result = fit(cfg, prepared, out_dir, resume=resume, init_model=init_model)
    except TrainingInterrupted as exc:
        args = [a for a in sys.argv[1:] if a != "--force"]
        again = shlex.join(["biolock", *args, *([] if "--resume" in args else ["--resume"])])
        raise TrainingInterrupted(exc.out_dir, exc.epoch, f"resume with: {again}") from None
    click.echo(f"best validation EER {result.best_val_eer * 100:.2f} % at epoch {result.best_epoch}; "
               f"model: {result.best_model}")
    if result.test_metrics:
        t = result.test_metrics
        click.echo(f"test (unseen identities): EER {t['eer'] * 100:.2f} %, FNMR at FMR 1 % {t['fmr100'] * 100:.2f} %, "
                   f"pairs {t['genuine_pairs']}/{t['impostor_pairs']}")


def _write_run_info(out_dir: Path, modality: str, preprocessing_id: str, data: Path) -> None:
    """run.json: what `train eval`/`train export` read from the run folder before TensorFlow loads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"modality": modality, "preprocessing": preprocessing_id, "data": str(data)}
    (out_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")


@train.command("eval")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True,
              help="Dataset folder or manifest.csv; every sensor subset is evaluated separately.")
@click.option("--modality", type=MODALITY, default=None, help="Needed when MODEL has no model card.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for cached preprocessed images.")
def eval_cmd(model, data, modality, as_json, cache) -> None:
    """Evaluate MODEL (.tflite with its card, card .json, or .keras) with the FVC protocol per dataset.

    \b
    Example:
      biolock train eval models/fingerprint_int8.tflite --data ../shared/data
      biolock train eval runs/fit/best.keras --modality vein --data out/synth-vein --json
    """
    from training.evaluate import evaluate_model, format_results

    results, _ = evaluate_model(model, data, modality, cache_dir=cache, progress=not as_json)
    if as_json:
        click.echo(json.dumps(results, indent=2, default=float))
    else:
        click.echo(format_results(results))


@train.command("report")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--modality", type=MODALITY, default=None, help="Needed when MODEL has no model card.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.md, report.html, results.json and the PNGs.")
@click.option("--history", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="history.json of the training run, for the training-curves plot.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None)
def report_cmd(model, data, modality, out_dir, history, cache) -> None:
    """Write a markdown + HTML report with ROC, DET, score histograms, FMR/FNMR vs threshold, training curves.

    \b
    Example:
      biolock train report models/vein_int8.tflite --data out/synth-vein --out out/report-vein
    """
    from training.evaluate import evaluate_model
    from training.report import write_report

    results, scores = evaluate_model(model, data, modality, cache_dir=cache)
    hist = json.loads(history.read_text()) if history else None
    paths = write_report(results, scores, out_dir, hist, _card_of(model))
    click.echo(f"wrote {paths['markdown']} and {paths['html']}")


def _card_of(model: Path) -> dict | None:
    """The model card of MODEL (a card .json, or the card beside a .tflite) for the report; None for .keras."""
    from training.embed import find_card

    card = model if model.suffix == ".json" else (find_card(model) if model.suffix == ".tflite" else None)
    try:
        return json.loads(Path(card).read_text()) if card is not None else None
    except (OSError, ValueError):
        return None


@train.command("export")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--modality", type=MODALITY, required=True)
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True,
              help="Validation images (real preprocessed crops calibrate int8 and measure thresholds).")
@click.option("--split", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="split.json of the training run: use only its validation identities from --data.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", default=None, help="Model name in the card (default: <modality>-mobile).")
@click.option("--version", "version", default="1.0.0", show_default=True)
@click.option("--trained-on", default="", help="What the model was trained on (goes into the card).")
@click.option("--no-onnx", is_flag=True, help="Skip the ONNX export.")
@click.option("--max-eer-delta", type=click.FloatRange(0, 1), default=None,
              help="Allowed |int8 - float| validation EER difference as a fraction (0.01 = 1 point), replacing the "
              "gate sized by the validation set; recorded in the card.")
def export_cmd(model, modality, data, split, out_dir, name, version, trained_on, no_onnx, max_eer_delta) -> None:
    """Export float32 + int8 .tflite, ONNX and the model card; fails if int8 does not match float.

    The int8-vs-float EER gate is the larger of 0.5 points and the 95 % bootstrap interval of the difference on
    the validation pairs (docs/training.md); --max-eer-delta replaces it and the card says so.

    \b
    Example:
      biolock train export runs/fit/best.keras --modality fingerprint --data out/synth-fp \\
          --split runs/fit/split.json --out models/
    """
    from training.export import export_model
    from training.export_gate import describe

    res = export_model(model, data, out_dir, modality, name or f"{modality}-mobile", version, trained_on,
                       split=split, onnx=not no_onnx, max_eer_delta=max_eer_delta)
    c = res.checks
    click.echo(f"int8 {res.int8} ({res.int8.stat().st_size / 1024:.0f} KB); card {res.card}")
    click.echo(f"validation EER float {c['float']['eer'] * 100:.2f} % int8 {c['int8']['eer'] * 100:.2f} %; "
               f"mean cosine {c['mean_cosine']:.4f}")
    if c.get("gate"):
        click.echo(f"export gate: {describe(c['gate'])}")
    if res.onnx_error:
        click.echo(f"ONNX export failed: {res.onnx_error}", err=True)


@train.command("describe")
@click.option("--embedding-size", type=int, default=128, show_default=True)
def describe_cmd(embedding_size) -> None:
    """Parameters and multiply-adds of the light embedders and the VGG16 baseline.

    \b
    Example:
      biolock train describe
    """
    from training.nets import FINGERPRINT_SHAPE, VEIN_SHAPE, build_model, describe_model

    click.echo("| model | input | params | multiply-adds |")
    click.echo("|---|---|---|---|")
    for arch in ("mobile", "vgg16"):
        for shape in (FINGERPRINT_SHAPE, VEIN_SHAPE):
            d = describe_model(build_model(arch, shape, embedding_size))
            click.echo(f"| {arch} | {shape[0]}x{shape[1]} | {d.params:,} | {d.macs / 1e6:,.1f} M |")


@train.command("compare-losses")
@click.option("--modality", type=MODALITY, required=True)
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True, help="Synthetic training set.")
@click.option("--real", type=click.Path(exists=True, path_type=Path), default=None,
              help="Real sets to evaluate each model on as well (e.g. ../shared/data).")
@click.option("--losses", default="triplet,batch_hard,semi_hard,eer,contrastive", show_default=True)
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--steps", type=int, default=40, show_default=True, help="Steps per epoch (same for every loss).")
@click.option("--batch-p", type=int, default=None, help="Identities per batch (default: the preset's).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/losses"),
              show_default=True)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for cached preprocessed images (default: <out>/cache).")
def compare_losses_cmd(modality, data, real, losses, epochs, steps, batch_p, out_dir, cache) -> None:
    """Train one model per loss at the same budget and tabulate EER / FNMR at FMR 1 % (held-out synthetic and real).

    \b
    Example:
      biolock train compare-losses --modality fingerprint --data out/synth-fp --real ../shared/data
    """
    from training.recipes.compare import compare_losses

    table = compare_losses(modality, data, [s.strip() for s in losses.split(",") if s.strip()], epochs, steps,
                           out_dir, real, cache_dir=cache, batch_p=batch_p)
    click.echo(table)


@train.command("ship")
@click.option("--modality", type=click.Choice(["fingerprint", "vein", "both"]), default="both", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
              show_default=True, help="Where the shipped .tflite, .onnx and card go.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("out/ship"),
              show_default=True, help="Scratch folder: synthetic data, training runs.")
@click.option("--resume", is_flag=True, help="Continue interrupted training runs in --work.")
@click.option("--evaluate", "real", type=click.Path(exists=True, path_type=Path), default=None,
              help="Afterwards, also evaluate the shipped models on these real sets (never used for training).")
def ship_cmd(modality, out_dir, work, resume, real) -> None:
    """Reproduce the shipped models from synthetic data only: generate, train, export.

    \b
    Example:
      biolock train ship --out models/
    """
    from training.recipes.ship import evaluate_shipped, ship
    from training.report import results_table

    for m in (["fingerprint", "vein"] if modality == "both" else [modality]):
        card = ship(m, out_dir, work, resume=resume)
        click.echo(f"{m}: {card}")
        res = evaluate_shipped(m, card, work, real)
        click.echo("\n".join(results_table({"datasets": {**res["synthetic"], **res["real"]}})))


# Fusion report (owned by the fusion work; training/fusion_report.py keeps its heavy imports inside the command).
from training.fusion_report import fusion_report as _fusion_report  # noqa: E402

train.add_command(_fusion_report)

# Soft-biometric study (owned by the softbio work; training/softbio/cli.py keeps its heavy imports inside the command).
from training.softbio.cli import softbio as _softbio  # noqa: E402

train.add_command(_softbio)

# Minutiae fusion card (the device's embedding + minutiae decision).
from training.minutiae_card import minutiae_card as _minutiae_card  # noqa: E402

train.add_command(_minutiae_card)

# Card calibration on real and synthetic sets (issue 16: security levels that hold on real sensors).
from training.card_calibration import calibrate_card_cmd as _calibrate_card  # noqa: E402

train.add_command(_calibrate_card)

# Vein model + line matcher fusion card (issue 19: vein from whole frames).
from training.vein_card import vein_card as _vein_card  # noqa: E402

train.add_command(_vein_card)

# Learned fingerprint segmentation (issue 15, "Learned stage"; training/fp_segmentation.py, synthetic prints only).
from training.fp_segmentation import fp_segment as _fp_segment  # noqa: E402

train.add_command(_fp_segment)
