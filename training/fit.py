"""The training loop: P x K batches (or mined triplets), validation EER every epoch, early stopping, LR
reduction on plateau, checkpoints with ``--resume``, fixed seeds and a training-curves PNG.

Why a custom loop and not ``Model.fit``: the loss needs the whole batch's labels, the EER loss anneals a
temperature per epoch, offline triplets are re-mined per epoch from the current embeddings, and model selection
is on the *validation EER* (FVC protocol on identities never trained on), not on the loss.

Distribution: with ``TF_CONFIG`` set the loop runs under ``MultiWorkerMirroredStrategy``; with more than one
local GPU under ``MirroredStrategy``; else the default (one device) strategy. Each replica draws its own P x K
batch (so batch losses see whole identities) and gradients are averaged across replicas.

Outputs in ``out_dir``: ``best.keras`` (best validation EER), ``ckpt/`` (last epoch: weights, optimizer and
loop state for ``--resume``), ``history.json``, ``split.json`` (identities per split), ``config.json``,
``curves.png`` and ``summary.json`` (best epoch, validation and test metrics).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import BiolockError, ConfigError, DatasetError
from training.prepared import PreparedSet
from training.train_config import TrainConfig

log = logging.getLogger("biolock.train")


RUN_FILES = ("best.keras", "ckpt", "history.json", "summary.json", "curves.png")


class RunExistsError(ConfigError):
    """The run folder already holds a training run and neither --resume nor --force was given."""


class TrainingInterrupted(BiolockError):
    """Ctrl-C during training; the checkpoint was saved and the run can be resumed."""

    exit_code = 130

    def __init__(self, out_dir: Path, epoch: int, hint: str = "") -> None:
        self.out_dir, self.epoch = out_dir, epoch
        hint = hint or f"resume with --resume --out {out_dir}"
        super().__init__(f"interrupted after {epoch} complete epoch(s); checkpoint saved in {out_dir / 'ckpt'}; {hint}")


def check_run_folder(out_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run (as ``data synth``, ``store export`` and ``lock pair`` refuse); ``force`` clears it.

    Why: training into an existing folder used to replace a better ``best.keras`` without a word.
    """
    out_dir = Path(out_dir)
    found = [n for n in RUN_FILES if (out_dir / n).exists()]
    if resume:
        if force:
            raise ConfigError("--resume and --force contradict each other: continue the run, or start it over")
        return
    if found and not force:
        raise RunExistsError(f"{out_dir} already holds a training run ({', '.join(found)}): pass --resume to continue "
                             "it, --force to start over (deletes it), or choose another --out")
    if found:
        import shutil

        for n in found:
            path = out_dir / n
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        log.warning("--force: removed the previous run in %s (%s)", out_dir, ", ".join(found))


@dataclass
class FitResult:
    out_dir: Path
    best_model: Path
    best_epoch: int
    best_val_eer: float
    history: list[dict]
    test_metrics: dict | None
    seconds: float


def make_strategy():
    """MultiWorkerMirrored from TF_CONFIG, Mirrored over several GPUs, else the default strategy."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def evaluate_split(embed, prepared: PreparedSet, max_identities: int | None = None, seed: int = 0) -> dict:
    """FVC-protocol metrics of an embedder on a prepared set (optionally a fixed random subset of identities)."""
    from training.protocol import cosine_pair_scores, fvc_pairs, summarize

    subset = prepared
    ids = sorted(set(prepared.labels))
    if max_identities is not None and len(ids) > max_identities:
        keep = set(np.random.default_rng(seed).choice(ids, max_identities, replace=False).tolist())
        subset = prepared.select([i for i, lab in enumerate(prepared.labels) if lab in keep])
    emb = embed(subset.images)
    gen, imp = fvc_pairs(subset.labels, subset.impressions)
    if not gen or not imp:
        raise DatasetError("validation needs identities with at least two impressions and two identities")
    return summarize(cosine_pair_scores(emb, gen), cosine_pair_scores(emb, imp))


def fit(
    cfg: TrainConfig,
    prepared: PreparedSet,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    init_model: Path | None = None,
) -> FitResult:
    """Train ``cfg`` on ``prepared`` (identity-disjoint split inside), writing everything to ``out_dir``."""
    import keras
    import tensorflow as tf

    from training.augment import AugmentParams
    from training.batches import PKSampler, TripletSampler, split_identities
    from training.embed import KerasEmbedder
    from training.mining import mine_triplets
    from training.nets import build_model

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)

    split = split_identities(prepared.labels, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
    train_set, val_set = prepared.select(split.train), prepared.select(split.val)
    test_set = prepared.select(split.test) if len(split.test) else None
    if len(val_set) == 0:
        raise DatasetError("no validation identities: set data.val_fraction > 0")
    _write_json(out_dir / "split.json", split.as_dict(prepared.labels))
    _write_json(out_dir / "config.json", cfg.as_dict())

    aug = AugmentParams(
        rotation_deg=cfg.augment.rotation_deg, shift_frac=cfg.augment.shift_frac, scale_frac=cfg.augment.scale_frac,
        elastic_alpha=cfg.augment.elastic_alpha, partial_prob=cfg.augment.partial_prob, strength=cfg.augment.strength,
    )
    size = prepared.images.shape[1:3]
    strategy = make_strategy()
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = build_model(cfg.model.arch, size, cfg.model.embedding_size, cfg.model.width,
                            **_arch_kwargs(cfg))
        optimizer = keras.optimizers.AdamW(cfg.optim.learning_rate, weight_decay=cfg.optim.weight_decay)
        if init_model is not None:  # fine-tuning: start from a trained model's weights (same architecture)
            model.set_weights(KerasEmbedder.load(Path(init_model)).model.get_weights())
        loss_fn = _make_loss(cfg, train_set.labels)  # in scope: CosFace's proxies are variables too
        variables = model.trainable_variables + list(getattr(loss_fn, "trainable_variables", []))
        optimizer.build(variables)

    offline = cfg.loss.name == "triplet"
    if offline:
        rng = np.random.default_rng(cfg.seed)
        sampler = TripletSampler(train_set.images, mine_triplets(None, train_set.labels, 4096, rng),
                                 cfg.loss.triplets_per_batch, cfg.seed, aug)
        batch_n = 3 * cfg.loss.triplets_per_batch
    else:
        sampler = PKSampler(train_set.images, train_set.labels, cfg.optim.batch_p, cfg.optim.batch_k, cfg.seed, aug)
        batch_n = sampler.p * sampler.k
    h, w = size
    signature = (tf.TensorSpec((batch_n, h, w, 1), tf.float32), tf.TensorSpec((batch_n,), tf.int32))

    def dataset_fn(ctx=None):
        return tf.data.Dataset.from_generator(lambda: iter(sampler), output_signature=signature).prefetch(2)

    if replicas > 1:
        data_iter = iter(strategy.distribute_datasets_from_function(dataset_fn))
    else:
        data_iter = iter(dataset_fn())

    @tf.function
    def replica_step(x, y):
        with tf.GradientTape() as tape:
            emb = model(x, training=True)
            loss = loss_fn(y, emb)
            scaled = loss / replicas
        grads = tape.gradient(scaled, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=False)]
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        optimizer.apply_gradients(zip(grads, variables, strict=False))
        return loss

    def train_step(batch):
        if replicas > 1:
            per = strategy.run(replica_step, args=batch)
            return float(strategy.reduce(tf.distribute.ReduceOp.MEAN, per, axis=None))
        return float(replica_step(*batch))

    state = {"epoch": 0, "best_eer": 1.0, "best_epoch": -1, "since_best": 0, "since_lr": 0,
             "lr": cfg.optim.learning_rate, "history": []}
    extra = {"proxies": loss_fn.proxies} if cfg.loss.name == "cosface" else {}  # they resume with the model
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, **extra)
    ckpt_dir = out_dir / "ckpt"
    if resume:
        state = _restore(ckpt, ckpt_dir, state)
        log.info("resumed after epoch %d (best val EER %.4f)", state["epoch"], state["best_eer"])

    embedder = KerasEmbedder(model)
    try:
        _epochs(locals())
    except KeyboardInterrupt:
        _save(ckpt, ckpt_dir, state)  # the current weights with the count of complete epochs: --resume repeats one
        raise TrainingInterrupted(out_dir, state["epoch"]) from None
    return _finish(out_dir, model, state, test_set, split, prepared, started)


def _epochs(v: dict) -> None:
    """The epoch loop (a function of fit's locals so fit can catch Ctrl-C around it and save the checkpoint)."""
    cfg, state, optimizer, loss_fn, embedder = v["cfg"], v["state"], v["optimizer"], v["loss_fn"], v["embedder"]
    offline, sampler, train_set, val_set, model = v["offline"], v["sampler"], v["train_set"], v["val_set"], v["model"]
    train_step, data_iter, out_dir, ckpt, ckpt_dir = v["train_step"], v["data_iter"], v["out_dir"], v["ckpt"], \
        v["ckpt_dir"]
    from device.progress import Progress
    from training.losses import EERLoss
    from training.mining import mine_triplets

    select = "EER" if cfg.optim.select_on == "eer" else "FNMR at FMR 1 %"
    for epoch in range(state["epoch"], cfg.optim.epochs):
        if state["since_best"] >= cfg.optim.patience:
            log.info("early stopping after epoch %d: validation %s has not improved for %d epochs "
                     "(optim.patience); best %.2f %% at epoch %d", epoch, select, state["since_best"],
                     100 * state.get("best_score", state["best_eer"]), state["best_epoch"])
            break
        optimizer.learning_rate.assign(state["lr"])
        temperature = loss_fn.anneal(epoch) if isinstance(loss_fn, EERLoss) else None
        if offline and epoch > 0:
            rng = np.random.default_rng(cfg.seed + epoch)
            emb = embedder(train_set.images)
            sampler.set_triplets(mine_triplets(emb, train_set.labels, 4096, rng, cfg.loss.hard_fraction))
        t0 = time.monotonic()
        losses = []
        with Progress(cfg.optim.steps_per_epoch, f"epoch {epoch + 1}/{cfg.optim.epochs}", "step",
                      lines=False) as bar:  # on a terminal a live bar; elsewhere only the epoch line below
            for _ in range(cfg.optim.steps_per_epoch):
                losses.append(train_step(next(data_iter)))
                bar.update()
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        val = evaluate_split(embedder, val_set, cfg.data.val_max_identities, cfg.seed)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_eer": val["eer"], "val_fmr100": val["fmr100"],
               "lr": state["lr"], "temperature": temperature, "seconds": round(time.monotonic() - t0, 2)}
        state["history"].append(row)
        score = val[cfg.optim.select_on]  # what picks the best epoch, cuts the LR and stops early
        improved = score < state.get("best_score", state["best_eer"]) - 1e-6
        if improved:
            state.update(best_score=score, best_eer=val["eer"], best_epoch=epoch + 1, since_best=0, since_lr=0)
            _atomic_keras_save(model, out_dir / "best.keras")
        else:
            state["since_best"] += 1
            state["since_lr"] += 1
            if state["since_lr"] >= cfg.optim.lr_patience:
                state["lr"] = max(cfg.optim.min_learning_rate, state["lr"] * cfg.optim.lr_factor)
                state["since_lr"] = 0
        state["epoch"] = epoch + 1
        log.info(f"epoch {epoch + 1}/{cfg.optim.epochs}: loss {row['loss']:.4f}, val EER {val['eer'] * 100:.2f} %, "
                 f"val FNMR at FMR 1 % {val['fmr100'] * 100:.2f} %, lr {row['lr']:.2e}, {row['seconds']:.0f} s"
                 + (" (best so far, saved)" if improved else ""))  # one line per epoch, printed once
        _save(ckpt, ckpt_dir, state)
        _write_json(out_dir / "history.json", state["history"])
        _plot(out_dir, state["history"])


def _finish(out_dir: Path, model, state: dict, test_set, split, prepared: PreparedSet, started: float) -> FitResult:
    from training.embed import KerasEmbedder

    best_path = out_dir / "best.keras"
    if not best_path.exists():  # resumed after training had ended, or no epoch ran: keep the current weights
        _atomic_keras_save(model, best_path)
    test_metrics = None
    if test_set is not None and len(test_set):
        best = KerasEmbedder.load(best_path)
        test_metrics = evaluate_split(best, test_set)
    result = FitResult(out_dir, best_path, state["best_epoch"], state["best_eer"], state["history"], test_metrics,
                       time.monotonic() - started)
    _write_json(out_dir / "summary.json", {
        "best_epoch": result.best_epoch, "best_val_eer": result.best_val_eer, "test": test_metrics,
        "epochs_run": len(state["history"]), "seconds": round(result.seconds, 1),
        "identities": {k: len(v) for k, v in split.as_dict(prepared.labels).items()},
        "preprocessing": prepared.preprocessing_id,
    })
    return result


def _make_loss(cfg: TrainConfig, train_labels):
    from training.losses import make_loss

    lc = cfg.loss
    if lc.name == "eer":
        return make_loss("eer", lc.margin, temperature=lc.temperature, min_temperature=lc.min_temperature,
                         decay=lc.temperature_decay, target_fmr=lc.target_fmr)
    if lc.name == "cosface":
        return make_loss("cosface", lc.margin, identities=train_labels, embedding_size=cfg.model.embedding_size,
                         scale=lc.scale, seed=cfg.seed)
    return make_loss(lc.name, lc.margin)


def _arch_kwargs(cfg: TrainConfig) -> dict:
    if cfg.model.arch == "mobile":
        return {"head_channels": cfg.model.head_channels, "se": cfg.model.se, "dropout": cfg.model.dropout}
    return {}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    os.replace(tmp, path)


def _atomic_keras_save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _save(ckpt, ckpt_dir: Path, state: dict) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write(str(ckpt_dir / "last"))
    _write_json(ckpt_dir / "state.json", state)


def _restore(ckpt, ckpt_dir: Path, state: dict) -> dict:
    state_file = ckpt_dir / "state.json"
    if not state_file.is_file():
        raise ConfigError(f"--resume: no checkpoint in {ckpt_dir} (train once without --resume first)")
    ckpt.read(str(ckpt_dir / "last")).expect_partial()
    return {**state, **json.loads(state_file.read_text())}


def _plot(out_dir: Path, history: list[dict]) -> None:
    from training.report import plot_training_curves

    try:
        plot_training_curves(history, out_dir / "curves.png")
    except Exception as exc:  # noqa: BLE001 - a plot must never stop training
        log.warning("could not draw training curves: %s", exc)
