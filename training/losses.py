r"""Metric-learning losses on unit-length embeddings; all take ``(labels, embeddings)`` for one batch.

Scores are cosine similarities ``s_ij = e_i . e_j`` (embeddings are L2-normalised, so the squared Euclidean
distance is ``d_ij^2 = 2 - 2 s_ij``). A batch holds P identities x K impressions; every pair with equal labels
is *genuine*, every pair with different labels an *impostor*.

Triplet losses (Schroff et al., FaceNet), with margin ``m`` on squared distances:

* offline triplets (:func:`triplet_loss`): the batch is laid out ``[a0, p0, n0, a1, p1, n1, ...]`` (mined by
  ``training.mining``: half random, half hard) and ``L = mean(max(0, d(a,p)^2 - d(a,n)^2 + m))``;
* batch-hard (:func:`batch_hard_triplet_loss`, Hermans et al.): for each anchor the farthest positive and the
  closest negative in the batch;
* semi-hard (:func:`semi_hard_triplet_loss`): for each (anchor, positive) the closest negative that is still
  farther than the positive (``d(a,n) > d(a,p)``), else the farthest negative.

Pair baselines: :func:`contrastive_loss` (Hadsell et al.: ``d^2`` for genuine pairs,
``max(0, m - d)^2`` for impostors, each class averaged separately) and :func:`logistic_pair_loss`
(binary cross-entropy of ``sigmoid(scale * (s - b))`` for "same identity", classes balanced).

EERLoss (:class:`EERLoss`), a differentiable equal error rate. With genuine scores ``g_1..g_G``, impostor
scores ``i_1..i_I`` and a temperature ``T``, the smoothed error rates at threshold ``t`` are

.. math::

    \widetilde{FMR}(t) = \frac{1}{I}\sum_j \sigma\!\left(\frac{i_j - t}{T}\right), \qquad
    \widetilde{FNMR}(t) = \frac{1}{G}\sum_k \sigma\!\left(\frac{t - g_k}{T}\right)

(as ``T -> 0`` these become the empirical FMR and FNMR). ``FMR~`` falls and ``FNMR~`` rises monotonically in
``t``, so the threshold ``t*`` where they meet is found by bisection (30 halvings on [-1, 1], under
``stop_gradient``: the threshold is a statistic of the batch, not a parameter). The loss is

.. math::

    L_{EER} = \tfrac12\left(\widetilde{FMR}(t^*) + \widetilde{FNMR}(t^*)\right)

whose gradient pushes the genuine and impostor scores that lie within a few ``T`` of the threshold apart --
exactly the pairs that decide the EER. Any DET operating point can be targeted instead: with
``target_fmr=alpha`` the threshold solves ``FMR~(t*) = alpha`` and the loss is ``FNMR~(t*)`` (plus
``FMR~(t*)``, which keeps impostors moving when genuine pairs are already separated). ``T`` is a variable
that the training loop anneals (``T_e = max(T_min, T_0 * decay^e)`` at epoch ``e``) so the surrogate sharpens
towards the true rate as the scores separate.
"""

from __future__ import annotations

from functools import partial

import tensorflow as tf


def _pair_masks(labels):
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    n = tf.shape(labels)[0]
    upper = tf.linalg.band_part(tf.ones([n, n], tf.bool), 0, -1) & ~tf.eye(n, dtype=tf.bool)
    return same & upper, (~same) & upper


def pair_scores(labels, embeddings):
    """Cosine scores of every genuine and every impostor pair (i < j) in the batch."""
    sims = tf.matmul(embeddings, embeddings, transpose_b=True)
    genuine_mask, impostor_mask = _pair_masks(labels)
    return tf.boolean_mask(sims, genuine_mask), tf.boolean_mask(sims, impostor_mask)


def _sq_dist(a, b):
    return tf.reduce_sum(tf.square(a - b), axis=-1)


def triplet_loss(labels, embeddings, margin: float = 0.2):
    """Offline triplet loss on a batch laid out ``[a0, p0, n0, a1, ...]``; labels are not used."""
    del labels
    t = tf.reshape(embeddings, [-1, 3, tf.shape(embeddings)[-1]])
    a, p, n = t[:, 0], t[:, 1], t[:, 2]
    return tf.reduce_mean(tf.nn.relu(_sq_dist(a, p) - _sq_dist(a, n) + margin))


def _distance_matrix(embeddings):
    sims = tf.matmul(embeddings, embeddings, transpose_b=True)
    return tf.maximum(2.0 - 2.0 * sims, 0.0)


def batch_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Batch-hard triplet loss: farthest positive and closest negative per anchor."""
    labels = tf.reshape(labels, [-1])
    d = _distance_matrix(embeddings)
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    pos = tf.cast(same & ~eye, d.dtype)
    neg = tf.cast(~same, d.dtype)
    hardest_pos = tf.reduce_max(d * pos, axis=1)
    hardest_neg = tf.reduce_min(d + 4.0 * (1.0 - neg), axis=1)  # distances are <= 4 on the unit sphere
    valid = tf.cast((tf.reduce_sum(pos, 1) > 0) & (tf.reduce_sum(neg, 1) > 0), d.dtype)
    per_anchor = tf.nn.relu(hardest_pos - hardest_neg + margin) * valid
    return tf.reduce_sum(per_anchor) / tf.maximum(tf.reduce_sum(valid), 1.0)


def semi_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Semi-hard triplet loss over every (anchor, positive) pair of the batch."""
    labels = tf.reshape(labels, [-1])
    d = _distance_matrix(embeddings)
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    pos_mask = same & ~eye  # [a, p]
    neg = ~same  # [a, n]
    d_ap = d[:, :, None]  # [a, p, 1]
    d_an = d[:, None, :]  # [a, 1, n]
    semi = neg[:, None, :] & (d_an > d_ap)  # negatives farther than the positive
    big = 8.0
    closest_semi = tf.reduce_min(tf.where(semi, d_an, big), axis=2)  # [a, p]
    farthest_neg = tf.reduce_max(tf.where(neg, d, -big), axis=1)[:, None]  # [a, 1]
    has_semi = tf.reduce_any(semi, axis=2)
    chosen = tf.where(has_semi, closest_semi, tf.broadcast_to(farthest_neg, tf.shape(closest_semi)))
    per_pair = tf.nn.relu(d - chosen + margin)
    valid = tf.cast(pos_mask & tf.reduce_any(neg, axis=1)[:, None], d.dtype)
    return tf.reduce_sum(per_pair * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def contrastive_loss(labels, embeddings, margin: float = 1.0):
    """Hadsell contrastive loss on all pairs, genuine and impostor terms averaged separately."""
    genuine, impostor = pair_scores(labels, embeddings)
    d_gen = tf.sqrt(tf.maximum(2.0 - 2.0 * genuine, 1e-12))
    d_imp = tf.sqrt(tf.maximum(2.0 - 2.0 * impostor, 1e-12))
    gen_term = tf.reduce_mean(tf.square(d_gen))
    imp_term = tf.reduce_mean(tf.square(tf.nn.relu(margin - d_imp)))
    return _nan_to_zero(gen_term) + _nan_to_zero(imp_term)


def logistic_pair_loss(labels, embeddings, scale: float = 10.0, bias: float = 0.5):
    """Balanced binary cross-entropy of ``sigmoid(scale * (s - bias))`` being "same identity"."""
    genuine, impostor = pair_scores(labels, embeddings)
    gen = tf.reduce_mean(tf.nn.softplus(-scale * (genuine - bias)))
    imp = tf.reduce_mean(tf.nn.softplus(scale * (impostor - bias)))
    return _nan_to_zero(gen) + _nan_to_zero(imp)


def _nan_to_zero(x):
    return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)


def smoothed_rates(genuine, impostor, threshold, temperature):
    """Smoothed (FMR, FNMR) at ``threshold``: sigmoids of the scores' distance to it over ``temperature``."""
    fmr = tf.reduce_mean(tf.sigmoid((impostor - threshold) / temperature))
    fnmr = tf.reduce_mean(tf.sigmoid((threshold - genuine) / temperature))
    return fmr, fnmr


def _bisect(fn, lo: float = -1.0, hi: float = 1.0, steps: int = 30):
    """Root of a function that rises in t (negative at lo, positive at hi) by bisection."""
    lo = tf.constant(lo, tf.float32)
    hi = tf.constant(hi, tf.float32)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        up = fn(mid) > 0
        hi = tf.where(up, mid, hi)
        lo = tf.where(up, lo, mid)
    return 0.5 * (lo + hi)


class EERLoss:
    """Differentiable EER (or FNMR at a fixed FMR) of the batch's pairs; see the module docstring.

    ``temperature`` is a ``tf.Variable``: call :meth:`anneal` with the epoch number to sharpen it.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        min_temperature: float = 0.01,
        decay: float = 0.85,
        target_fmr: float | None = None,
    ):
        if temperature <= 0 or min_temperature <= 0:
            raise ValueError("EERLoss temperatures must be positive")
        if target_fmr is not None and not 0.0 < target_fmr < 1.0:
            raise ValueError("target_fmr must be between 0 and 1")
        self.initial_temperature = float(temperature)
        self.min_temperature = float(min_temperature)
        self.decay = float(decay)
        self.target_fmr = target_fmr
        self.temperature = tf.Variable(float(temperature), trainable=False, dtype=tf.float32, name="eer_temperature")

    def anneal(self, epoch: int) -> float:
        """Set the temperature for ``epoch`` (0-based): ``max(T_min, T_0 * decay**epoch)``."""
        value = max(self.min_temperature, self.initial_temperature * self.decay**epoch)
        self.temperature.assign(value)
        return value

    def threshold(self, genuine, impostor):
        """The (stop-gradient) threshold where the smoothed rates meet, or where FMR~ equals the target."""
        g = tf.stop_gradient(genuine)
        i = tf.stop_gradient(impostor)
        temp = self.temperature
        if self.target_fmr is None:

            def diff(t):
                fmr, fnmr = smoothed_rates(g, i, t, temp)
                return fnmr - fmr

        else:
            alpha = self.target_fmr

            def diff(t):
                fmr, _ = smoothed_rates(g, i, t, temp)
                return alpha - fmr

        return _bisect(diff)

    def __call__(self, labels, embeddings):
        genuine, impostor = pair_scores(labels, embeddings)
        t = self.threshold(genuine, impostor)
        fmr, fnmr = smoothed_rates(genuine, impostor, t, self.temperature)
        if self.target_fmr is None:
            loss = 0.5 * (fmr + fnmr)
        else:
            loss = fnmr + fmr
        return _nan_to_zero(loss)


class CosFaceLoss:
    """Large-margin cosine loss over the training identities (see the module docstring).

    ``identities`` are the training labels (any ints); the proxies are one ``tf.Variable`` that the training loop
    must optimise with the model (:attr:`trainable_variables`). Create it inside the distribution strategy's scope.
    """

    def __init__(self, identities, embedding_size: int, margin: float = 0.35, scale: float = 30.0, seed: int = 1):
        import numpy as np

        ids = np.unique(np.asarray(identities, dtype=np.int64))
        if ids.size < 2:
            raise ValueError("CosFace needs at least two training identities")
        if ids.min() < 0:
            raise ValueError("identity labels must be >= 0")
        if not 0.0 <= margin < 1.0 or scale <= 0:
            raise ValueError(f"CosFace needs 0 <= margin < 1 and scale > 0, got margin {margin}, scale {scale}")
        lookup = np.full(int(ids.max()) + 1, -1, np.int32)
        lookup[ids] = np.arange(ids.size, dtype=np.int32)
        self.classes = int(ids.size)
        self.margin, self.scale = float(margin), float(scale)
        self._lookup = tf.constant(lookup)
        init = np.random.default_rng(seed).normal(0.0, 1.0, (int(embedding_size), self.classes)).astype(np.float32)
        self.proxies = tf.Variable(init, name="cosface_proxies")

    @property
    def trainable_variables(self) -> list:
        return [self.proxies]

    def __call__(self, labels, embeddings):
        classes = tf.gather(self._lookup, tf.cast(labels, tf.int32))  # -1 (not a training identity) -> all-zero row
        cos = tf.matmul(embeddings, tf.math.l2_normalize(self.proxies, axis=0))
        onehot = tf.one_hot(classes, self.classes, dtype=cos.dtype)
        logits = self.scale * (cos - self.margin * onehot)
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))


LOSSES = ("triplet", "batch_hard", "semi_hard", "eer", "contrastive", "logistic", "cosface")


def make_loss(name: str, margin: float = 0.2, *, identities=None, embedding_size: int | None = None,
              scale: float = 30.0, seed: int = 1, **eer_kwargs):
    """A loss callable ``(labels, embeddings) -> scalar`` by name (see :data:`LOSSES`).

    ``cosface`` also needs the training ``identities`` and the ``embedding_size`` (its proxies are learned).
    """
    if name == "cosface":
        if identities is None or embedding_size is None:
            raise ValueError("the cosface loss needs the training identities and the embedding size")
        return CosFaceLoss(identities, embedding_size, margin, scale, seed)
    simple = {
        "triplet": partial(triplet_loss, margin=margin),
        "batch_hard": partial(batch_hard_triplet_loss, margin=margin),
        "semi_hard": partial(semi_hard_triplet_loss, margin=margin),
        "contrastive": partial(contrastive_loss, margin=1.0),
        "logistic": logistic_pair_loss,
    }
    if name in simple:
        return simple[name]
    if name == "eer":
        return EERLoss(**eer_kwargs)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
