"""``biolock train softbio``: the sex-from-fingerprint study as one command (analysis only, never an unlock).

Thin shell: options are checked and turned into a ``StudyRequest``; all heavy imports (scikit-learn, TensorFlow,
matplotlib) happen inside the command body.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command("softbio")
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True,
              help="SOCOFing folder (Real/, Altered/...) or a folder / manifest.csv with a 'sex' column.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.md, results.json and the PNGs.")
@click.option("--split", "split", type=click.Choice(["subject", "image", "both"]), default="both", show_default=True,
              help="subject: no person in two parts (honest); image: the leaky split, for comparison.")
@click.option("--models", default="svm,cnn,resnet", show_default=True, help="Comma-separated: svm, cnn, resnet.")
@click.option("--epochs", type=click.IntRange(1, 1000), default=15, show_default=True,
              help="CNN epochs (both CNNs get the same; early stopping may end sooner).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--size", type=click.IntRange(16, 512), default=128, show_default=True, help="Image side in px.")
@click.option("--balance", type=click.Choice(["over", "under", "none"]), default="over", show_default=True,
              help="Class balancing of the training part.")
@click.option("--seed", type=int, default=0, show_default=True, help="Split, balancing and training seed.")
@click.option("--dpi", type=click.FloatRange(50, 5000), default=500.0, show_default=True,
              help="Native resolution when the data does not say (manifest 'dpi' or 'profile' column).")
@click.option("--ignore-hand", is_flag=True, help="Allow horizontal flips in augmentation (mirrors left/right).")
@click.option("--max-subjects", type=click.IntRange(1), default=None, help="Use a random subset of subjects.")
@click.option("--permute-labels", is_flag=True,
              help="Shuffle sex across subjects first: the null case; results must be near chance.")
def softbio(data, out_dir, split, models, epochs, batch_size, size, balance, seed, dpi, ignore_hand, max_subjects,
            permute_labels) -> None:
    """Sex-from-fingerprint study: SVM on ridge features, small CNN, residual CNN; subject vs image splits.

    Writes report.md (tables, per finger/hand/alteration, limitations), results.json, confusion.png, roc.png and
    curves.png. An analysis tool only: biolock never uses it in an unlock decision.

    \b
    Example:
      biolock train softbio --data SOCOFing/ --out out/softbio --split both --models svm,cnn,resnet --epochs 15
      biolock train softbio --data out/synth-fp/manifest.csv --out out/sb-null --models svm --permute-labels
    """
    from training.softbio.models import Budget, parse_models
    from training.softbio.study import StudyRequest, parse_splits, run_study

    budget = Budget(epochs=epochs, batch_size=batch_size, balance=balance, seed=seed, allow_flip=ignore_hand,
                    verbose=2)
    req = StudyRequest(data=data, out=out_dir, splits=parse_splits(split), models=tuple(parse_models(models)),
                       size=size, dpi=dpi, max_subjects=max_subjects, permute_labels=permute_labels, budget=budget,
                       command=_command_line(click.get_current_context()),
                       progress=True)
    study, paths = run_study(req, log=lambda m: click.echo(m, err=True))
    from training.softbio.report import results_table

    click.echo(results_table(study["evaluations"]))
    click.echo(f"wrote {paths['markdown']} and {paths['json']}")


def _command_line(ctx: click.Context) -> str:
    """The command as a user would type it (options that differ from their defaults), for the report."""
    words = ["biolock", "train", "softbio"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value == param.default or value is None or value is False:
            continue
        flag = max(param.opts, key=len)
        words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)
