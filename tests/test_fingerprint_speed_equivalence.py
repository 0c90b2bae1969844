"""The fast comparison (``mcc`` + ``consolidate``) gives the very numbers of the straightforward computation.

Why: the shipped card ``models/fingerprint_minutiae.json`` is calibrated on scores ``biolock-mcc/t1s2``; speed work
(precomputed per-print quantities, a remainder-free ``wrap``, a turn table, sparse placement check) must not move a
score. The reference below is the matcher as first written (MCC cylinders, LSS-R, placement check), kept here
verbatim in numpy; both run on the same minutiae and must agree exactly (bit for bit, not within a tolerance).
Cases: moved copies (genuine-like) and unrelated sets, template round trips (angles on the template grid: the
turn-table path) and raw float angles (the general path), other resolutions, and real FVC prints when
../shared/data is present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.fingerprint import consolidate, mcc
from device.fingerprint.minutia import Minutiae
from device.fingerprint.template import decode, encode

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprint"


# --- the reference: the straightforward computation ---------------------------------------------------------------

def ref_wrap(a):
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def ref_inside_hull(points, xy, margin):
    import cv2

    if len(xy) < 3:
        return np.ones(points.shape[:-1], dtype=bool)
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return np.ones(points.shape[:-1], dtype=bool)
    edge = np.roll(hull, -1, axis=0) - hull
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    centre = hull.mean(axis=0)
    normal *= np.sign(((centre - hull) * normal).sum(axis=1, keepdims=True) + 1e-12)
    signed = points @ normal.T - (hull * normal).sum(axis=1)
    return signed.min(axis=-1) >= -margin


def ref_cylinders(m):
    """(values uint8 (n, N_CELLS), valid, squares, xy, angle, total) as first written."""
    M = mcc
    scale = 500.0 / float(m.dpi or 500)
    xy = np.asarray(m.xy, np.float64) * scale
    ang = np.asarray(m.angle, np.float64)
    n = len(ang)
    cos, sin = np.cos(ang), np.sin(ang)
    cx = xy[:, None, 0] + M.CELL_XY[None, :, 0] * cos[:, None] + M.CELL_XY[None, :, 1] * sin[:, None]
    cy = xy[:, None, 1] - M.CELL_XY[None, :, 0] * sin[:, None] + M.CELL_XY[None, :, 1] * cos[:, None]
    valid_space = ref_inside_hull(np.stack([cx, cy], axis=-1), xy, M.HULL_MARGIN)
    dx, dy = xy[None, :, 0] - xy[:, None, 0], xy[None, :, 1] - xy[:, None, 1]
    u = dx * cos[:, None] - dy * sin[:, None]
    v = dx * sin[:, None] + dy * cos[:, None]
    near = (np.hypot(dx, dy) <= M.R + 3.0 * M.SIGMA_S) & ~np.eye(n, dtype=bool)
    g = 1.0 / (2.0 * M.SIGMA_S ** 2)
    grid = M._grid
    eu = np.exp(-g * (grid[None, None, :] - u[:, :, None]) ** 2) * near[:, :, None]
    ev = np.exp(-g * (grid[None, None, :] - v[:, :, None]) ** 2)
    rel = ref_wrap(ang[None, :] - ang[:, None])
    dd = ref_wrap(M.CELL_DIR[None, None, :] - rel[:, :, None])
    directional = np.exp(-dd ** 2 / (2.0 * M.SIGMA_D ** 2)) * ((2.0 * np.pi / M.ND) /
                                                                (M.SIGMA_D * np.sqrt(2.0 * np.pi)))
    right = (ev[:, :, :, None] * directional[:, :, None, :]).reshape(n, n, M.NS * M.ND)
    raw = np.matmul(eu.transpose(0, 2, 1), right).reshape(n, M.NS, M.NS, M.ND)
    raw = raw.transpose(0, 2, 1, 3)[:, M._DISC] / (M.SIGMA_S * np.sqrt(2.0 * np.pi))
    values = 1.0 / (1.0 + np.exp(-M.TAU_PSI * (raw - M.MU_PSI)))
    values = np.where(valid_space[:, :, None], values, 0.0)
    usable = (valid_space.mean(axis=1) >= M.MIN_VALID_CELLS) & (near.sum(axis=1) >= M.MIN_NEIGHBOURS)
    q = np.round(values[usable] * 255.0).astype(np.uint8)
    f = q.astype(np.float32)
    return dict(values=q.reshape(len(q), M.N_CELLS), valid=valid_space[usable].astype(np.float32),
                squares=(f * f).sum(axis=2), xy=xy[usable].astype(np.float32), angle=ang[usable].astype(np.float32),
                total=n)


def ref_local_similarity(a, b):
    M = mcc
    aa = a["squares"] @ b["valid"].T
    bb = a["valid"] @ b["squares"].T
    ab = a["values"].astype(np.float32) @ b["values"].T.astype(np.float32)
    common = (a["valid"] @ b["valid"].T) * M.ND
    diff = np.sqrt(np.maximum(aa + bb - 2.0 * ab, 0.0))
    norm = np.sqrt(aa) + np.sqrt(bb)
    sim = np.where(norm > 0, 1.0 - diff / np.maximum(norm, 1e-9), 0.0)
    turn = np.abs(ref_wrap(a["angle"][:, None] - b["angle"][None, :]))
    ok = (common >= M.MIN_COMMON_CELLS * M.N_CELLS) & (turn <= M.MAX_TURN)
    return np.where(ok, sim, 0.0).astype(np.float32)


def ref_z(v, mu, tau):
    return 1.0 / (1.0 + np.exp(np.clip(-tau * (v - mu), -60.0, 60.0)))


def ref_best_pairs(sim, count):
    flat = sim.ravel()
    k = min(flat.size, 4 * count)
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    top = top[flat[top] > 0]
    rows, cols = np.divmod(top, sim.shape[1])
    first_row = np.zeros(len(top), bool)
    first_col = np.zeros(len(top), bool)
    first_row[np.unique(rows, return_index=True)[1]] = True
    first_col[np.unique(cols, return_index=True)[1]] = True
    keep = first_row & first_col
    return rows[keep][:count], cols[keep][:count]


def ref_compatibility(a, b, ra, cb):
    C = consolidate
    pa, pb = a["xy"][ra].astype(np.float64), b["xy"][cb].astype(np.float64)
    ta, tb = a["angle"][ra].astype(np.float64), b["angle"][cb].astype(np.float64)
    da = pa[None, :, :] - pa[:, None, :]
    db = pb[None, :, :] - pb[:, None, :]
    d1 = np.abs(np.hypot(da[..., 0], da[..., 1]) - np.hypot(db[..., 0], db[..., 1]))
    d2 = np.abs(ref_wrap(ref_wrap(ta[:, None] - ta[None, :]) - ref_wrap(tb[:, None] - tb[None, :])))
    la = np.arctan2(-da[..., 1], da[..., 0])
    lb = np.arctan2(-db[..., 1], db[..., 0])
    d3 = np.abs(ref_wrap(ref_wrap(ta[:, None] - la) - ref_wrap(tb[:, None] - lb)))
    rho = ref_z(d1, C.MU_1, C.TAU_1) * ref_z(d2, C.MU_2, C.TAU_2) * ref_z(d3, C.MU_3, C.TAU_3)
    np.fill_diagonal(rho, 0.0)
    return rho


def ref_relax(lam0, rho):
    C = consolidate
    lam = lam0.astype(np.float64)
    k = len(lam)
    if k < 2:
        return lam
    for _ in range(C.ROUNDS):
        lam = C.W_R * lam + (1.0 - C.W_R) * (rho @ lam) / (k - 1)
    return lam


def ref_aligned_count(a, b, anchors_a, anchors_b):
    C = consolidate
    if len(anchors_a) == 0:
        return 0
    phi = ref_wrap(b["angle"][anchors_b].astype(np.float64) - a["angle"][anchors_a])
    cos, sin = np.cos(phi)[:, None], np.sin(phi)[:, None]
    pa, pb = a["xy"].astype(np.float64), b["xy"].astype(np.float64)
    d = pa[None, :, :] - pa[anchors_a][:, None, :]
    tx = pb[anchors_b][:, None, 0] + d[..., 0] * cos + d[..., 1] * sin
    ty = pb[anchors_b][:, None, 1] - d[..., 0] * sin + d[..., 1] * cos
    near = (tx[:, :, None] - pb[None, None, :, 0]) ** 2 + (ty[:, :, None] - pb[None, None, :, 1]) ** 2
    turned = a["angle"][None, :].astype(np.float64) + phi[:, None]
    agree = np.cos(turned)[:, :, None] * np.cos(b["angle"])[None, None, :] + \
        np.sin(turned)[:, :, None] * np.sin(b["angle"])[None, None, :]
    ok = (near <= C.ALIGN_DIST ** 2) & (agree >= np.cos(C.ALIGN_TURN))
    return int(np.minimum(ok.any(axis=2).sum(axis=1), ok.any(axis=1).sum(axis=1)).max())


def ref_score(ma, mb) -> float:
    C = consolidate
    a, b = ref_cylinders(ma), ref_cylinders(mb)
    na, nb = len(a["angle"]), len(b["angle"])
    if na == 0 or nb == 0:
        return 0.0
    sim = ref_local_similarity(a, b)
    ra, cb = ref_best_pairs(sim, min(na, nb))
    if len(ra) == 0:
        return 0.0
    lam0 = sim[ra, cb].astype(np.float64)
    lam = ref_relax(lam0, ref_compatibility(a, b, ra, cb))
    s = 1.0 / (1.0 + np.exp(-C.TAU_P * (min(a["total"], b["total"]) - C.MU_P)))
    n_p = int(C.MIN_NP + round(s * (C.MAX_NP - C.MIN_NP)))
    gain = lam / np.maximum(lam0, 1e-9)
    chosen = np.argsort(-gain, kind="stable")[:n_p]
    aligned = ref_aligned_count(a, b, ra[chosen[:C.ANCHORS]], cb[chosen[:C.ANCHORS]])
    return float(lam[chosen].sum() / n_p) * aligned / float(np.sqrt(na * nb))


def fast_score(ma, mb) -> float:
    ca, cb = mcc.cylinders(ma), mcc.cylinders(mb)
    return consolidate.score(ca, cb, mcc.local_similarity(ca, cb))


# --- minutiae sets -------------------------------------------------------------------------------------------------

def random_set(rng, n, shape=(400, 360), dpi=500):
    xy = np.stack([rng.uniform(30, shape[1] - 30, n), rng.uniform(30, shape[0] - 30, n)], 1).astype(np.float32)
    return Minutiae(xy, rng.uniform(0, 2 * np.pi, n).astype(np.float32), rng.integers(0, 2, n).astype(np.uint8),
                    rng.uniform(0.3, 1, n).astype(np.float32), shape, dpi)


def moved_copy(rng, m, turn):
    """``m`` turned about its centre, shifted, jittered, a few minutiae dropped and a few added (angles kept in
    [0, 2 pi) as the extractor gives them)."""
    c = m.xy.mean(0)
    d = m.xy - c
    cos, sin = np.cos(turn), np.sin(turn)
    xy = np.stack([c[0] + d[:, 0] * cos + d[:, 1] * sin, c[1] - d[:, 0] * sin + d[:, 1] * cos], 1)
    xy = xy + rng.uniform(-20, 20, 2) + rng.normal(0, 2.0, xy.shape)
    angle = np.mod(m.angle + turn + rng.normal(0, 0.1, len(m)), 2 * np.pi)
    keep = np.sort(rng.permutation(len(m))[rng.integers(0, 6):])
    extra = random_set(rng, int(rng.integers(0, 6)), m.shape, m.dpi)
    xy = np.clip(np.concatenate([xy[keep], extra.xy]), 0, np.array(m.shape[::-1]) - 1)
    return Minutiae(xy.astype(np.float32), np.concatenate([angle[keep], extra.angle]).astype(np.float32),
                    np.concatenate([m.kind[keep], extra.kind]), np.concatenate([m.quality[keep], extra.quality]),
                    m.shape, m.dpi)


def pairs_of_sets(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for t in range(count):
        a = random_set(rng, int(rng.integers(8, 70)), dpi=int(rng.choice([500, 500, 569, 1000])))
        b = moved_copy(rng, a, float(rng.uniform(-0.6, 0.6))) if t % 2 == 0 else \
            random_set(rng, int(rng.integers(8, 70)), dpi=a.dpi)
        yield a, b


# --- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_wrap_gives_the_remainder_numbers_bit_for_bit():
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        two_pi, pi = dt(2 * np.pi), dt(np.pi)
        edges = np.array([0, -0.0, two_pi, -two_pi, 2 * two_pi, -pi, pi, 3 * pi, 4 * pi, 5 * pi, 7 * pi], dt)
        edges = np.concatenate([edges, np.nextafter(edges, dt(np.inf)), np.nextafter(edges, dt(-np.inf))])
        for x in (rng.uniform(-2 * np.pi, 2 * np.pi, 100_000).astype(dt),
                  rng.uniform(-4 * np.pi, 6 * np.pi, 100_000).astype(dt), edges - pi, edges,
                  np.array([np.nan, np.inf, 1.0], dt)):
            want, got = ref_wrap(x), mcc.wrap(x)
            assert got.dtype == want.dtype
            assert np.array_equal(want.view(f"u{want.itemsize}"), got.view(f"u{got.itemsize}")) or \
                np.array_equal(want, got, equal_nan=True)
        small = rng.uniform(-np.pi, np.pi, 1000).astype(dt) - rng.uniform(-np.pi, np.pi, 1000).astype(dt)
        assert np.array_equal(mcc.wrap_difference(small).view(f"u{dt().itemsize}"),
                              ref_wrap(small).view(f"u{dt().itemsize}"))


def test_cylinders_are_the_reference_cylinders():
    """Sets of every size, few minutiae included (none or one usable cylinder are edge cases of the layout)."""
    rng = np.random.default_rng(1)
    sizes = [int(x) for x in rng.integers(3, 90, 40)] + [int(x) for x in rng.integers(3, 10, 60)]
    usable = set()
    for size in sizes:
        m = random_set(rng, size, shape=(int(rng.integers(160, 400)),) * 2 if size < 10 else (400, 360),
                       dpi=int(rng.choice([500, 569, 1000])))
        for mm in (m, decode(encode(m))):
            want, got = ref_cylinders(mm), mcc.cylinders(mm)
            assert np.array_equal(want["values"].astype(np.float32), got.values)
            for key in ("valid", "squares", "xy", "angle"):
                assert np.array_equal(want[key], getattr(got, key)), key
            assert want["total"] == got.total
            usable.add(min(len(got), 2))
    assert usable == {0, 1, 2}


@pytest.mark.parametrize("through_template", [False, True])
def test_scores_are_the_reference_scores_on_synthetic_sets(through_template):
    """Moved copies and unrelated sets, raw float angles or template round trips: identical scores."""
    scores = []
    for a, b in pairs_of_sets(7 + through_template, 150):
        if through_template:
            a, b = decode(encode(a)), decode(encode(b))
        want, got = ref_score(a, b), fast_score(a, b)
        assert got == want, (want, got)
        scores.append(got)
    assert np.mean(np.array(scores[::2]) > 0.05) > 0.5  # the moved copies match: the cases are not all trivial


def test_the_turn_table_path_is_taken_for_templates_and_the_general_one_otherwise():
    rng = np.random.default_rng(5)
    m = random_set(rng, 40)
    assert mcc.cylinders(decode(encode(m))).turn_rows is not None
    off_grid = Minutiae(m.xy, m.angle + np.float32(1e-3), m.kind, m.quality, m.shape, m.dpi)
    assert mcc.cylinders(off_grid).units is None


def test_placement_check_is_the_reference_count():
    rng = np.random.default_rng(11)
    for a_set, b_set in pairs_of_sets(12, 60):
        a, b = mcc.cylinders(a_set), mcc.cylinders(b_set)
        ra_ref, rb_ref = ref_cylinders(a_set), ref_cylinders(b_set)
        if len(a) == 0 or len(b) == 0:
            continue
        k = int(rng.integers(1, 6))
        anchors_a = rng.integers(0, len(a), k)
        anchors_b = rng.integers(0, len(b), k)
        assert consolidate.aligned_count(a, b, anchors_a, anchors_b) == \
            ref_aligned_count(ra_ref, rb_ref, anchors_a, anchors_b)


@pytest.mark.skipif(not (DATA / "fvc2002" / "DB1_B").is_dir(), reason="FVC2002 DB1_B not in ../shared/data")
def test_scores_are_the_reference_scores_on_real_prints():
    """Every pair among 16 FVC2002 DB1_B prints (two impressions of each of 8 fingers): identical scores."""
    import cv2

    from device.fingerprint.extract import extract_minutiae

    paths = sorted((DATA / "fvc2002" / "DB1_B").glob("*.png"))[::4][:16]
    assert len(paths) == 16
    prints = [decode(encode(extract_minutiae(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), 500))) for p in paths]
    scores = []
    for i in range(len(prints)):
        for j in range(i + 1, len(prints)):
            want, got = ref_score(prints[i], prints[j]), fast_score(prints[i], prints[j])
            assert got == want, (paths[i].name, paths[j].name, want, got)
            scores.append(got)
    assert max(scores) > 0.1  # some genuine pairs among them
