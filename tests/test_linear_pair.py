"""linear_kl_divergence and linear_js_divergence against float64 materialised references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

N, DP, DQ, V, CHUNK = 20, 12, 8, 300, 64  # 300 = 4 * 64 + 44: a ragged last block


def _problem(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return dict(
        x_p=np.float32(rng.normal(size=(N, DP)) * scale),
        w_p=np.float32(rng.normal(size=(DP, V)) / np.sqrt(DP) * 2),
        x_q=np.float32(rng.normal(size=(N, DQ)) * scale),
        w_q=np.float32(rng.normal(size=(DQ, V)) / np.sqrt(DQ) * 2),
        where=rng.random(V) > 0.25,
        weights=np.float32(rng.uniform(0.2, 2.0, size=N)),
        r=np.float32(rng.normal(size=N)),
    )


HEADS = ("x_p", "w_p", "x_q", "w_q")


def _materialised(kind, heads, *, temperature=1.0, where=None, weights=None, beta=0.5):
    """The divergence per position from the materialised logits (float64 under x64)."""
    w_p, w_q = heads["w_p"], heads["w_q"]
    if where is not None:  # the included classes only: no -inf in the reference
        w_p, w_q = w_p[:, where], w_q[:, where]
    z_p = heads["x_p"] @ w_p / temperature
    z_q = heads["x_q"] @ w_q / temperature
    if kind == "kl":
        d = jaxinfo.kl_divergence_from_logits(z_p, z_q)
    else:
        # from the log-probabilities, so that the reference's own gradient is
        # finite where a probability underflows to 0
        lp, lq = jax.nn.log_softmax(z_p), jax.nn.log_softmax(z_q)
        lm = jnp.logaddexp(jnp.log(beta) + lp, jnp.log1p(-beta) + lq)

        def part(lx):
            p = jnp.exp(lx)
            return jnp.sum(jnp.where(p > 0, p * (lx - lm), 0), -1)

        d = beta * part(lp) + (1 - beta) * part(lq)
    return d if weights is None else d * weights


FUSED = {"kl": jaxinfo.linear_kl_divergence, "js": jaxinfo.linear_js_divergence}


def _fused(kind, heads, **kw):
    return FUSED[kind](*(heads[k] for k in HEADS), chunk_size=CHUNK, **kw)


def _rel(a, b):
    """Largest error relative to the largest reference entry (absolute below 1e-6)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-6)


def _check(kind, data, *, dtype=jnp.float32, tol=1e-5, grad_tol=None, scalars=(), **kw):
    """Value and gradients (heads and ``scalars``) of Σ r·D against float64."""
    grad_tol = tol if grad_tol is None else grad_tol
    r = data["r"]

    def objective(fn, diff, r):
        heads = {k: diff[k] for k in HEADS}
        return jnp.sum(fn(kind, heads, **{k: diff[k] for k in scalars}) * r)

    diff = {k: jnp.asarray(data[k], dtype) for k in HEADS}
    diff.update({k: jnp.asarray(kw[k], jnp.float32) for k in scalars})
    fused = functools.partial(_fused, **{k: v for k, v in kw.items() if k not in scalars})
    value, grads = jax.jit(jax.value_and_grad(functools.partial(objective, fused)))(diff, r)
    with jax.enable_x64(True):
        diff64 = {k: np.asarray(v, np.float64) for k, v in diff.items()}
        kw64 = {
            k: (np.float64(v) if isinstance(v, np.ndarray) and v.dtype != bool else v)
            for k, v in kw.items()
            if k not in scalars
        }
        reference = functools.partial(_materialised, **kw64)
        ref_value, ref_grads = jax.value_and_grad(
            functools.partial(objective, reference), argnums=0
        )(diff64, np.float64(r))
        ref_value = float(ref_value)
        ref_grads = {k: np.asarray(v) for k, v in ref_grads.items()}
    assert abs(float(value) - ref_value) <= tol * max(abs(ref_value), 1e-3)
    for k, g in grads.items():
        assert g.dtype == diff[k].dtype, k
        assert np.all(np.isfinite(np.asarray(g, np.float32))), k
        err = _rel(g, ref_grads[k])
        assert err <= grad_tol, f"{k}: {err:.2e}"
    return grads


OPTIONS = {
    "plain": {},
    "where": dict(where=True),
    "weights": dict(weights=True),
    "temperature": dict(temperature=0.6),
    "all": dict(where=True, weights=True, temperature=1.7),
}


def _opts(spec, data):
    return {k: (data[k] if v is True else v) for k, v in spec.items()}


@pytest.mark.parametrize("kind", ["kl", "js"])
@pytest.mark.parametrize("spec", OPTIONS.values(), ids=OPTIONS.keys())
def test_matches_the_materialised_float64_divergence(kind, spec):
    data = _problem()
    _check(kind, data, **_opts(spec, data))


@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0])
def test_js_beta(beta):
    data = _problem(seed=1)
    _check("js", data, beta=beta, where=data["where"])


def test_learned_temperature_and_beta_get_their_gradients():
    data = _problem(seed=2)
    grads = _check("js", data, beta=0.3, temperature=0.8, scalars=("beta", "temperature"))
    assert float(grads["beta"]) != 0 and float(grads["temperature"]) != 0
    grads = _check("kl", data, temperature=0.8, scalars=("temperature",))
    assert float(grads["temperature"]) != 0


@pytest.mark.parametrize("kind", ["kl", "js"])
def test_bfloat16_heads_accumulate_in_float32(kind):
    data = _problem(seed=3)
    _check(kind, data, dtype=jnp.bfloat16, tol=1e-5, grad_tol=1e-2, where=data["where"])


@pytest.mark.parametrize("kind", ["kl", "js"])
def test_frozen_teacher_gets_no_gradient_and_the_student_the_same(kind):
    data = _problem(seed=4)
    heads = {k: jnp.asarray(data[k]) for k in HEADS}
    r = jnp.asarray(data["r"])

    def objective(student, teacher):
        both = {**jax.lax.stop_gradient(teacher), **student}
        return jnp.sum(_fused(kind, both) * r)

    student = {k: heads[k] for k in ("x_q", "w_q")}
    teacher = {k: heads[k] for k in ("x_p", "w_p")}
    g_student = jax.jit(jax.grad(objective))(student, teacher)
    g_all = jax.grad(lambda h: jnp.sum(_fused(kind, h) * r))(heads)
    for k in ("x_q", "w_q"):
        np.testing.assert_allclose(g_student[k], g_all[k], rtol=1e-6, atol=1e-7)
    g_teacher = jax.grad(objective, argnums=1)(student, teacher)
    for k in ("x_p", "w_p"):
        np.testing.assert_array_equal(g_teacher[k], 0)


def test_reverse_kl_is_the_call_with_the_heads_swapped():
    data = _problem(seed=5)
    h = {k: jnp.asarray(data[k]) for k in HEADS}
    reverse = jaxinfo.linear_kl_divergence(h["x_q"], h["w_q"], h["x_p"], h["w_p"], chunk_size=CHUNK)
    want = jaxinfo.kl_divergence_from_logits(h["x_q"] @ h["w_q"], h["x_p"] @ h["w_p"])
    np.testing.assert_allclose(reverse, want, rtol=2e-5, atol=1e-6)


def test_equal_heads_give_zero_and_js_is_bounded():
    data = _problem(seed=6)
    h = {k: jnp.asarray(data[k]) for k in HEADS}
    same = {"x_p": h["x_p"], "w_p": h["w_p"], "x_q": h["x_p"], "w_q": h["w_p"]}
    for kind in ("kl", "js"):
        d = _fused(kind, same)
        assert np.all(np.asarray(d) >= 0) and float(jnp.max(d)) < 1e-5
    far = dict(h, x_p=h["x_p"] * 50)  # nearly one-hot teacher: JS near log 2 at most
    js = _fused("js", far)
    assert np.all(np.asarray(js) <= np.log(2)) and np.all(np.asarray(js) >= 0)


def test_large_logits_stay_finite_and_accurate():
    data = _problem(seed=7, scale=300.0)
    grads = _check("kl", data, tol=1e-5, grad_tol=1e-4)
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    # JS of two unrelated peaked heads saturates at log 2 with a gradient of
    # rounding size; a student near the teacher keeps it informative. Its
    # float32 logits, about 1e3, carry rounding errors of 6e-5 each, which
    # bounds the agreement with float64 of any float32 computation.
    rng = np.random.default_rng(7)
    near = dict(
        data, x_q=data["x_p"], w_q=data["w_p"] + np.float32(0.003 * rng.normal(size=(DP, V)))
    )
    _check("js", near, tol=1e-4, grad_tol=1e-4)


def test_weight_zero_removes_a_position():
    data = _problem(seed=8)
    h = {k: jnp.asarray(data[k]) for k in HEADS}
    weights = np.ones(N, np.float32)
    weights[3] = 0
    d = _fused("kl", h, weights=weights)
    assert float(d[3]) == 0
    g = jax.grad(lambda x: jnp.sum(_fused("kl", dict(h, x_q=x), weights=weights)))(h["x_q"])
    np.testing.assert_array_equal(g[3], 0)


def test_leading_axes_and_vmap():
    data = _problem(seed=9)
    h = {k: jnp.asarray(data[k]) for k in HEADS}
    flat = _fused("js", h)
    shaped = dict(h, x_p=h["x_p"].reshape(4, 5, DP), x_q=h["x_q"].reshape(4, 5, DQ))
    np.testing.assert_allclose(_fused("js", shaped), flat.reshape(4, 5), rtol=1e-6)

    def one(xp, xq):
        return _fused("js", dict(h, x_p=xp, x_q=xq))

    mapped = jax.jit(jax.vmap(one))(shaped["x_p"], shaped["x_q"])
    np.testing.assert_allclose(mapped, flat.reshape(4, 5), rtol=1e-6)


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------

XP, WP, XQ, WQ = jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.ones((4, 2)), jnp.ones((2, 7))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((XP, jnp.ones((5, 7)), XQ, WQ), {}, ValueError, "x_p and w_p do not chain"),
        ((XP, WP, XQ, jnp.ones((3, 7))), {}, ValueError, "x_q and w_q do not chain"),
        (
            (XP, WP, XQ, jnp.ones((2, 6))),
            {},
            ValueError,
            "must share one vocabulary: w_p has V = 7",
        ),
        ((XP, WP, jnp.ones((5, 2)), WQ), {}, ValueError, "the same leading shape"),
        ((XP, WP, XQ, WQ), dict(temperature=0), ValueError, "temperature must be a scalar in"),
        ((XP, WP, XQ, WQ), dict(where=jnp.ones(6, bool)), ValueError, "where must have shape"),
        ((XP, WP, XQ, WQ), dict(weights=jnp.ones(3)), ValueError, "one weight per position"),
        ((XP.astype(bool), WP, XQ, WQ), {}, TypeError, "x_p must have a real numeric dtype"),
    ],
)
@pytest.mark.parametrize("kind", ["kl", "js"])
def test_errors(kind, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        FUSED[kind](*args, **kwargs)


@pytest.mark.parametrize("beta", [-0.1, 1.5])
def test_error_beta(beta):
    with pytest.raises(ValueError, match=r"beta must be a scalar in \[0, 1\]"):
        jaxinfo.linear_js_divergence(XP, WP, XQ, WQ, beta=beta)


def test_forward_mode_error():
    with pytest.raises(TypeError, match="linear_kl_divergence supports reverse-mode"):
        jax.jvp(lambda x: jaxinfo.linear_kl_divergence(x, WP, XQ, WQ), (XP,), (XP,))


# ----------------------------------------------------------------------------
# memory: value_and_grad with respect to the student at the Gemma-2 shape
# ----------------------------------------------------------------------------


@functools.cache
def _temp_bytes(kind, dtype):
    n, d, v = 8192, 2304, 262144
    shape = lambda *s: jax.ShapeDtypeStruct(s, dtype)  # noqa: E731
    args = (shape(n, d), shape(d, v), shape(n, d), shape(d, v))

    def loss(x_q, w_q, x_p, w_p):
        x_p, w_p = jax.lax.stop_gradient((x_p, w_p))
        return jnp.mean(FUSED[kind](x_p, w_p, x_q, w_q, temperature=2.0))

    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return vg.lower(*args).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("kind", ["kl", "js"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_compiled_memory_at_gemma_shape(kind, dtype):
    # Target 768 MiB; each head's logits alone would take 8 GiB.
    assert _temp_bytes(kind, dtype) <= 768 * 2**20
