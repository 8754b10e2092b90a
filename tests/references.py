"""Reference values for the property suite, from the definitions, in extended precision.

Everything here is NumPy in ``np.longdouble`` (80-bit on x86: 64-bit mantissa,
exponents to ±4932), so that float64 inputs near the float64 maximum or
minimum have exact references too. Inputs are taken exactly as the measure
received them (already rounded to their dtype). The class axis is last; masks
are applied by the caller (excluded weights set to 0, excluded logits to
``-inf``).

Each reference returns ``(value, scale)``: ``scale`` is the size of the terms
that make up the value (e.g. ``sum |p log q|`` for a cross-entropy), which
bounds the rounding error of any way of computing it: the tests allow
``eps * scale`` times a factor that grows with the number of classes.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble
INF = LD(np.inf)


def ld(x) -> np.ndarray:
    return np.asarray(x).astype(LD)


def _log(x):
    """``log`` of non-negative numbers without warnings; ``log 0 = -inf``."""
    x = ld(x)
    with np.errstate(divide="ignore"):
        return np.log(x)


def _xlogy(x, y):
    """``x log y`` with ``0 log y = 0``."""
    x, y = np.broadcast_arrays(ld(x), ld(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * _log(y)
    return np.where(x == 0, LD(0), out)


def normalise(w):
    """Rows (last axis) divided by their sums; rows with no mass stay 0."""
    w = ld(w)
    total = w.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, LD(1))
    return w / safe, total[..., 0]


def entropy(p):
    p, total = normalise(p)
    terms = -_xlogy(p, p)
    value = terms.sum(-1)
    return value, value + np.abs(_log(np.where(total > 0, total, 1)))


def cross_entropy(p, q):
    pn, tp = normalise(p)
    qn, tq = normalise(q)
    terms = -_xlogy(pn, qn)
    value = np.where(tp > 0, terms.sum(-1), LD(0))
    logs = np.abs(_log(np.where(tp > 0, tp, 1))) + np.abs(_log(np.where(tq > 0, tq, 1)))
    return value, np.abs(terms).sum(-1) + logs


def kl_divergence(p, q):
    pn, tp = normalise(p)
    qn, tq = normalise(q)
    log_p = _xlogy(pn, pn)
    log_q = -_xlogy(pn, qn)
    value = np.where(tp > 0, (log_p + log_q).sum(-1), LD(0))
    logs = np.abs(_log(np.where(tp > 0, tp, 1))) + np.abs(_log(np.where(tq > 0, tq, 1)))
    return value, (np.abs(log_p) + np.abs(log_q)).sum(-1) + logs


def log_softmax(logits):
    """``(log q, nonempty, scale)`` for logits with ``-inf`` = masked class."""
    s = ld(logits)
    m = s.max(axis=-1, keepdims=True)
    nonempty = m[..., 0] > -INF
    m = np.where(np.isfinite(m), m, LD(0))
    with np.errstate(invalid="ignore"):
        s = s - m
    z = np.exp(s).sum(-1, keepdims=True)
    log_q = s - _log(np.where(z > 0, z, 1))
    return log_q, nonempty, np.abs(m[..., 0])


def entropy_from_logits(logits):
    log_q, nonempty, _ = log_softmax(logits)
    q = np.exp(log_q)
    terms = -_xlogy(q, q)
    value = np.where(nonempty, terms.sum(-1), LD(0))
    finite = np.where(np.isfinite(log_q), np.abs(log_q), LD(0))
    return value, (q * finite).sum(-1) + 1


def cross_entropy_from_logits(p, logits, big=None):
    """With ``big`` (as in :func:`kl_divergence_from_logits`), also ``inf``
    where some ``log q`` is below ``-big``: a row whose logits spread beyond
    the float range, where the measure's ``log q`` overflows (documented)."""
    pn, tp = normalise(p)
    log_q, _, _ = log_softmax(logits)
    with np.errstate(invalid="ignore"):
        terms = np.where(pn > 0, -pn * log_q, LD(0))
    value = np.where(tp > 0, terms.sum(-1), LD(0))
    scale = np.abs(terms).sum(-1) + np.abs(_log(np.where(tp > 0, tp, 1))) + 1
    if big is None:
        return value, scale
    overflows = np.any((pn > 0) & (log_q > -INF) & (log_q < -LD(big)), axis=-1)
    return value, scale, np.where(overflows & (tp > 0), INF, value)


def kl_divergence_from_logits(p_logits, q_logits, tiny=None, big=None):
    """``D(P‖Q)`` where any finite logit is a class of positive probability.

    With ``tiny`` and ``big`` (the smallest normal and the largest finite
    number of the computation dtype), the values the measure may give by its
    documented semantics: where the classes of P whose probability is below
    ``tiny`` (0 in that dtype) are outside P's support; and ``inf`` where Q's
    log-probability of a class in P's support is below ``-big`` (logits that
    spread wider than the float range, whose log-probabilities overflow).
    """
    if tiny is not None:
        value, scale = kl_divergence_from_logits(p_logits, q_logits)
        log_p, _, _ = log_softmax(p_logits)
        log_q, _, _ = log_softmax(q_logits)
        rounded = np.where(log_p < np.log(LD(tiny)), -INF, ld(p_logits))
        dropped = kl_divergence_from_logits(rounded, q_logits)[0]
        overflows = np.any((log_p > -INF) & (log_q > -INF) & (log_q < -LD(big)), axis=-1)
        return value, scale, dropped, np.where(overflows, INF, value)
    log_p, nonempty, _ = log_softmax(p_logits)
    log_q, _, _ = log_softmax(q_logits)
    p = np.exp(log_p)
    support = np.isfinite(log_p)
    ruled_out = support & (log_q == -INF)  # inf, even where p underflows
    with np.errstate(invalid="ignore"):
        terms = np.where(support & ~ruled_out, p * (log_p - log_q), LD(0))
    terms = np.where(ruled_out, INF, terms)
    value = np.where(nonempty, terms.sum(-1), LD(0))
    with np.errstate(invalid="ignore"):  # 0 * inf off the support, discarded by the where
        scale = np.where(support & ~ruled_out, p * (np.abs(log_p) + np.abs(log_q)), LD(0))
    scale = scale.sum(-1)
    return value, scale + 1


def cross_entropy_from_labels(labels, logits, smoothing=0.0):
    """Per position: 0 for a negative label, NaN for one ``>= K``, 0 for a row
    with no class left; else ``-(1 - eps) log q_y - eps mean_valid log q``."""
    log_q, nonempty, _ = log_softmax(logits)
    k = log_q.shape[-1]
    y = np.asarray(labels)
    log_q_y = np.take_along_axis(log_q, np.clip(y, 0, k - 1)[..., None], -1)[..., 0]
    eps = LD(smoothing)
    valid = np.isfinite(log_q)
    n_valid = valid.sum(-1)
    mean = np.where(valid, log_q, LD(0)).sum(-1) / np.maximum(n_valid, 1)
    with np.errstate(invalid="ignore"):
        label_term = np.where(eps == 1, LD(0), -(1 - eps) * log_q_y)
    value = label_term - eps * mean
    value = np.where(nonempty, value, LD(0))
    value = np.where(y >= k, LD(np.nan), value)
    value = np.where(y < 0, LD(0), value)
    scale = np.abs(label_term) + eps * np.where(valid, np.abs(log_q), 0).sum(-1) / np.maximum(
        n_valid, 1
    )
    return value, np.where(np.isfinite(scale), scale, LD(0)) + 1


def js_divergence(p, q):
    pn, tp = normalise(p)
    qn, tq = normalise(q)
    m = (pn + qn) / 2
    both = (tp > 0) & (tq > 0)
    m = np.where(both[..., None], m, np.where((tp > 0)[..., None], pn, qn))
    with np.errstate(invalid="ignore"):  # 0 * (-inf + inf) where pn = m = 0, discarded
        a = np.where(pn > 0, pn * (_log(pn) - _log(m)), LD(0))
        b = np.where(qn > 0, qn * (_log(qn) - _log(m)), LD(0))
    value = (a.sum(-1) + b.sum(-1)) / 2
    scale = (np.abs(_xlogy(pn, pn)) + np.abs(_xlogy(qn, qn)) + np.abs(_xlogy(pn + qn, m))).sum(-1)
    logs = np.abs(_log(np.where(tp > 0, tp, 1))) + np.abs(_log(np.where(tq > 0, tq, 1)))
    return value, scale + logs + 1


def renyi_entropy(p, alpha):
    pn, total = normalise(p)
    support = pn > 0
    alpha = LD(alpha)
    log_p = np.where(support, _log(np.where(support, pn, 1)), LD(0))
    if alpha == 0:
        value = _log(np.maximum(support.sum(-1), 1))
    elif alpha == 1:
        value = -(pn * log_p).sum(-1)
    elif np.isinf(alpha):
        value = -_log(np.where(total > 0, pn.max(-1), 1))
    else:
        power = np.where(support, np.exp(alpha * log_p), LD(0)).sum(-1)
        value = _log(np.where(power > 0, power, 1)) / (1 - alpha)
    value = np.where(total > 0, value, LD(0))
    scale = (pn * np.abs(log_p)).sum(-1) + np.abs(log_p).max(-1, initial=LD(0)) / 4
    return value, scale + np.abs(_log(np.where(total > 0, total, 1))) + 1


def renyi_divergence(p, q, alpha):
    pn, tp = normalise(p)
    qn, tq = normalise(q)
    alpha = LD(alpha)
    support = pn > 0
    both = support & (qn > 0)
    outside = (support & (qn == 0)).any(-1)
    lp = np.where(support, _log(np.where(support, pn, 1)), LD(0))
    lq = np.where(qn > 0, _log(np.where(qn > 0, qn, 1)), LD(0))
    ratio = np.where(both, lp - lq, LD(0))
    if alpha == 0:
        mass = np.where(support, qn, LD(0)).sum(-1)
        value = -_log(mass)
    elif alpha == 1:
        value = np.where(outside, INF, (pn * ratio).sum(-1))
    elif np.isinf(alpha):
        value = np.where(outside, INF, np.where(support, ratio, -INF).max(-1, initial=-INF))
    else:
        terms = np.where(both, np.exp(alpha * lp + (1 - alpha) * lq), LD(0))
        s = terms.sum(-1)
        with np.errstate(divide="ignore"):
            value = _log(s) / (alpha - 1)
        if alpha > 1:
            value = np.where(outside, INF, value)
    value = np.where(tp > 0, value, LD(0))
    scale = (pn * (np.abs(lp) + np.abs(lq))).sum(-1) + np.abs(ratio).max(-1, initial=LD(0))
    logs = np.abs(_log(np.where(tp > 0, tp, 1))) + np.abs(_log(np.where(tq > 0, tq, 1)))
    return value, scale + logs + np.where(np.isfinite(value), np.abs(value), 0) + 1


def joint(table):
    """``(H(X,Y), H(Y|X), I(X;Y), scale)`` of tables on the last two axes."""
    t = ld(table)
    total = t.sum(axis=(-2, -1), keepdims=True)
    t = t / np.where(total > 0, total, 1)
    px = t.sum(-1, keepdims=True)
    py = t.sum(-2, keepdims=True)
    lt = np.where(t > 0, _log(np.where(t > 0, t, 1)), LD(0))
    lx = np.where(px > 0, _log(np.where(px > 0, px, 1)), LD(0))
    ly = np.where(py > 0, _log(np.where(py > 0, py, 1)), LD(0))
    h_xy = -(t * lt).sum(axis=(-2, -1))
    h_y_x = -(t * (lt - lx)).sum(axis=(-2, -1))
    mi = (t * (lt - lx - ly)).sum(axis=(-2, -1))
    scale = (t * (np.abs(lt) + np.abs(lx) + np.abs(ly))).sum(axis=(-2, -1))
    scale = scale + np.abs(_log(np.where(total > 0, total, 1)))[..., 0, 0] + 1
    return h_xy, h_y_x, mi, scale


def binary_entropy(p):
    p = ld(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        other = np.where(p < 1, (1 - p) * np.log1p(-np.minimum(p, 0.5)), LD(0))
        other = np.where(p < 0.5, other, _xlogy(1 - p, 1 - p))  # 1 - p is exact there
    value = -_xlogy(p, p) - other
    return value, value + 1e-30


def information(p):
    value = -_log(p)
    return value, np.abs(value) + 1


def entropy_from_counts(c, estimator):
    c = ld(c)
    n = c.sum(-1)
    h, _ = entropy(c)
    seen = c > 0
    if estimator == "plugin":
        value = h
    elif estimator == "miller_madow":
        m = seen.sum(-1)
        value = h + np.where(n > 0, (m - 1) / (2 * np.where(n > 0, n, 1)), LD(0))
    else:
        f1 = (c == 1).sum(-1).astype(LD)
        f1 = np.where(f1 == n, n - 1, f1)
        n_safe = np.where(n > 0, n, 1)
        coverage = 1 - f1 / n_safe
        pa = coverage[..., None] * c / n_safe[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            inclusion = -np.expm1(n[..., None] * np.log1p(-pa))
            terms = np.where(seen & (pa > 0), -pa * _log(pa) / inclusion, LD(0))
        value = np.where(n > 0, terms.sum(-1), LD(0))
    total = np.abs(_log(np.where(n > 0, n, 1)))
    return value, np.abs(value) + total + 1
