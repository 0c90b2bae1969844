"""Losses on hand-made embeddings with known answers."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from training.losses import (  # noqa: E402
    CosFaceLoss,
    EERLoss,
    batch_hard_triplet_loss,
    contrastive_loss,
    logistic_pair_loss,
    make_loss,
    pair_scores,
    semi_hard_triplet_loss,
    smoothed_rates,
    triplet_loss,
)


def unit(*rows):
    a = np.asarray(rows, np.float32)
    return tf.constant(a / np.linalg.norm(a, axis=1, keepdims=True))


def angle_vec(deg):
    r = np.deg2rad(deg)
    return [np.cos(r), np.sin(r)]


def test_triplet_zero_when_margin_satisfied_and_exact_when_violated():
    # a=p exactly, n opposite: d(a,p)^2=0, d(a,n)^2=4 -> zero for any margin < 4
    emb = unit([1, 0], [1, 0], [-1, 0])
    assert float(triplet_loss(None, emb, margin=0.5)) == pytest.approx(0.0)
    # a, p at 90 degrees (d^2 = 2), n equal to a (d^2 = 0): loss = 2 - 0 + 0.2
    emb = unit([1, 0], [0, 1], [1, 0])
    assert float(triplet_loss(None, emb, margin=0.2)) == pytest.approx(2.2, abs=1e-5)


def test_batch_hard_picks_farthest_positive_and_closest_negative():
    labels = tf.constant([0, 0, 1, 1])
    # identity 0 at 0 and 10 degrees, identity 1 at 90 and 100 degrees: well separated
    emb = unit(angle_vec(0), angle_vec(10), angle_vec(90), angle_vec(100))
    assert float(batch_hard_triplet_loss(labels, emb, margin=0.2)) == pytest.approx(0.0)
    # collapse identity 1 onto identity 0: hardest pos d^2 = 2-2cos10, hardest neg d^2 ~ 0 -> positive loss
    emb = unit(angle_vec(0), angle_vec(10), angle_vec(0), angle_vec(10))
    expected = (2 - 2 * np.cos(np.deg2rad(10))) - 0.0 + 0.2
    assert float(batch_hard_triplet_loss(labels, emb, margin=0.2)) == pytest.approx(expected, abs=1e-4)


def test_semi_hard_zero_when_separated_positive_when_mixed():
    labels = tf.constant([0, 0, 1, 1])
    sep = unit(angle_vec(0), angle_vec(5), angle_vec(120), angle_vec(125))
    mixed = unit(angle_vec(0), angle_vec(60), angle_vec(30), angle_vec(90))
    assert float(semi_hard_triplet_loss(labels, sep, margin=0.2)) == pytest.approx(0.0)
    assert float(semi_hard_triplet_loss(labels, mixed, margin=0.2)) > 0.1


def test_pair_scores_counts():
    labels = tf.constant([0, 0, 0, 1, 1, 2])
    g, i = pair_scores(labels, unit(*np.eye(6)))
    assert int(tf.size(g)) == 3 + 1  # C(3,2) + C(2,2)
    assert int(tf.size(i)) == 15 - 4


def _two_class_embeddings(sep_deg):
    """Identity 0 around angle 0, identity 1 around ``sep_deg``: larger separation = easier."""
    rows = [angle_vec(a) for a in (0, 4, 8)] + [angle_vec(sep_deg + a) for a in (0, 4, 8)]
    return tf.constant([0, 0, 0, 1, 1, 1]), unit(*rows)


@pytest.mark.parametrize("name", ["eer", "contrastive", "logistic", "batch_hard", "semi_hard"])
def test_losses_decrease_when_genuine_and_impostor_separate(name):
    loss = make_loss(name, margin=0.2)
    values = [float(loss(*_two_class_embeddings(sep))) for sep in (5, 30, 90, 170)]
    assert all(b <= a + 1e-6 for a, b in zip(values, values[1:], strict=False)), values
    assert values[-1] < values[0]


def test_eer_loss_near_half_when_classes_identical_and_near_zero_when_apart():
    loss = EERLoss(temperature=0.02)
    labels = tf.constant([0, 0, 1, 1])
    same = unit([1, 0], [1, 0], [1, 0], [1, 0])
    assert float(loss(labels, same)) == pytest.approx(0.5, abs=1e-3)
    apart = unit([1, 0], [1, 0], [-1, 0], [-1, 0])
    assert float(loss(labels, apart)) < 1e-6


def test_eer_threshold_balances_smoothed_rates():
    loss = EERLoss(temperature=0.05)
    g = tf.constant([0.9, 0.8, 0.6, 0.4], tf.float32)
    i = tf.constant([0.5, 0.3, 0.1, 0.0, -0.2], tf.float32)
    t = loss.threshold(g, i)
    fmr, fnmr = smoothed_rates(g, i, t, loss.temperature)
    assert float(fmr) == pytest.approx(float(fnmr), abs=1e-4)
    assert 0.3 < float(t) < 0.6


def test_eer_loss_target_fmr_operating_point():
    loss = EERLoss(temperature=0.02, target_fmr=0.1)
    rng = np.random.default_rng(0)
    g = tf.constant(rng.normal(0.7, 0.1, 200), tf.float32)
    i = tf.constant(rng.normal(0.1, 0.1, 2000), tf.float32)
    t = loss.threshold(g, i)
    fmr, _ = smoothed_rates(g, i, t, loss.temperature)
    assert float(fmr) == pytest.approx(0.1, abs=2e-3)


def test_eer_loss_gradient_pulls_genuine_together_and_pushes_impostors_apart():
    loss = EERLoss(temperature=0.1)
    labels = tf.constant([0, 0, 1, 1])
    emb = tf.Variable(unit(angle_vec(0), angle_vec(40), angle_vec(20), angle_vec(60)))
    with tf.GradientTape() as tape:
        g, i = pair_scores(labels, tf.math.l2_normalize(emb, axis=1))
        t = loss.threshold(g, i)
        fmr, fnmr = smoothed_rates(g, i, t, loss.temperature)
        value = 0.5 * (fmr + fnmr)
    grad_g, grad_i = tape.gradient(value, [g, i])  # d loss / d score
    assert np.all(grad_g.numpy() < 0), "raising a genuine score must lower the loss"
    assert np.all(grad_i.numpy() > 0), "raising an impostor score must raise the loss"


def test_eer_anneal_schedule():
    loss = EERLoss(temperature=0.1, min_temperature=0.02, decay=0.5)
    assert loss.anneal(0) == pytest.approx(0.1)
    assert loss.anneal(1) == pytest.approx(0.05)
    assert loss.anneal(10) == pytest.approx(0.02)
    assert float(loss.temperature) == pytest.approx(0.02)


def test_contrastive_and_logistic_known_values():
    labels = tf.constant([0, 0, 1])
    emb = unit([1, 0], [1, 0], [-1, 0])  # genuine d=0, impostors d=2 >= margin 1
    assert float(contrastive_loss(labels, emb, margin=1.0)) == pytest.approx(0.0, abs=1e-6)
    v = float(logistic_pair_loss(labels, emb, scale=10.0, bias=0.5))
    expected = np.log1p(np.exp(-10 * 0.5)) + np.log1p(np.exp(10 * (-1 - 0.5)))
    assert v == pytest.approx(expected, rel=1e-4)


def test_bad_loss_arguments():
    with pytest.raises(ValueError):
        make_loss("hinge")
    with pytest.raises(ValueError):
        EERLoss(target_fmr=1.5)
    with pytest.raises(ValueError):
        EERLoss(temperature=0)


def _cosface_with_proxies(margin=0.3, scale=10.0):
    """Identities 5 and 9 (labels need not be 0..C-1) with proxies along x and y."""
    loss = CosFaceLoss([9, 5, 5, 9], embedding_size=2, margin=margin, scale=scale)
    loss.proxies.assign(np.array([[1, 0], [0, 1]], np.float32))  # columns: identity 5 -> x, identity 9 -> y
    return loss


def test_cosface_known_value():
    loss = _cosface_with_proxies(margin=0.3, scale=10.0)
    v = float(loss(tf.constant([5]), unit([1, 0])))  # cos to own proxy 1, to the other 0
    expected = -np.log(np.exp(10 * (1 - 0.3)) / (np.exp(10 * (1 - 0.3)) + np.exp(0.0)))
    assert v == pytest.approx(expected, rel=1e-3)  # float32 softmax
    # the margin is charged even when the embedding sits on its proxy
    assert v > float(_cosface_with_proxies(margin=0.0, scale=10.0)(tf.constant([5]), unit([1, 0])))


def test_cosface_falls_as_embeddings_move_to_their_identity():
    loss = _cosface_with_proxies()
    labels = tf.constant([5, 9])
    values = [float(loss(labels, unit(angle_vec(90 - a), angle_vec(a)))) for a in (10, 40, 70, 90)]
    assert all(b < a for a, b in zip(values, values[1:], strict=False)), values


def test_cosface_gradient_reaches_the_proxies():
    loss = _cosface_with_proxies()
    with tf.GradientTape() as tape:
        value = loss(tf.constant([5, 9]), unit(angle_vec(30), angle_vec(60)))
    (grad,) = tape.gradient(value, loss.trainable_variables)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_cosface_bad_arguments():
    with pytest.raises(ValueError, match="identities"):
        make_loss("cosface")
    with pytest.raises(ValueError, match="two"):
        CosFaceLoss([3, 3], embedding_size=4)
    with pytest.raises(ValueError, match="margin"):
        CosFaceLoss([1, 2], embedding_size=4, margin=1.5)
