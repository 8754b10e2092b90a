"""The options of linear_cross_entropy and linear_entropy, against a float64 materialised reference.

The reference applies each option by hand to the materialised logits
``x @ w + bias`` in float64 (JAX with x64, differentiated by autodiff): a
different program from the blockwise kernel, which never forms them.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

N, D, V, CHUNK = 24, 16, 300, 64  # 300 = 4 * 64 + 44: a ragged last block

ALL = dict(
    bias=True,
    where=True,
    weights=True,
    label_smoothing=0.1,
    z_loss=1e-3,
    logit_soft_cap=4.0,
    temperature=0.7,
)


def _problem(seed=0, scale=1.0, n=N, v=V):
    rng = np.random.default_rng(seed)
    mask = rng.random(v) > 0.25
    labels = rng.choice(np.flatnonzero(mask), size=n)
    labels[[2, 7]] = -1  # padding
    return dict(
        x=np.float32(rng.normal(size=(n, D)) * scale),
        w=np.float32(rng.normal(size=(D, v)) / np.sqrt(D)),
        bias=np.float32(rng.normal(size=v)),
        where=mask,
        weights=np.float32(rng.uniform(0.2, 2.0, size=n)),
        labels=labels,
        r=np.float32(rng.normal(size=n)),  # cotangent of a per-position output
        r2=np.float32(rng.normal(size=n)),  # cotangent of the entropy
    )


def _options(case, data):
    """The keyword arguments of one case, with the arrays it names."""
    opts = {}
    for key, value in case.items():
        if value is True:
            opts[key] = data[key]
        else:
            opts[key] = value
    return opts


def _reference(x, w, labels, *, r, r2, stats, reduction="none", **opts):
    """float64 materialised: the objective's value, its per-position loss and stats."""
    bias = opts.get("bias")
    mask = opts.get("where")
    u = x @ w + (0 if bias is None else bias)
    cap = opts.get("logit_soft_cap")
    z = u if cap is None else cap * jnp.tanh(u / cap)
    z = z / opts.get("temperature", 1.0)
    included = jnp.ones(z.shape[-1], bool) if mask is None else jnp.asarray(mask)
    z = jnp.where(included, z, -jnp.inf)
    log_z = jax.nn.logsumexp(z, axis=-1)
    safe_labels = jnp.maximum(labels, 0)
    z_y = jnp.take_along_axis(z, safe_labels[:, None], axis=-1)[:, 0]
    finite_z = jnp.where(included, z, 0)
    k = jnp.sum(included).astype(z.dtype)
    eps = opts.get("label_smoothing", 0.0)
    loss = (1 - eps) * (log_z - z_y) + eps * (log_z - jnp.sum(finite_z, -1) / k)
    loss = loss + opts.get("z_loss", 0.0) * log_z**2
    loss = jnp.where(labels < 0, 0.0, loss)
    weights = opts.get("weights")
    wts = (labels >= 0).astype(loss.dtype)
    if weights is not None:
        wts = wts * weights
    if reduction == "none":
        out = loss * wts
        objective = jnp.sum(out * r)
    elif reduction == "sum":
        out = jnp.sum(loss * wts)
        objective = out
    else:
        out = jnp.sum(loss * wts) / jnp.sum(wts)
        objective = out
    p = jax.nn.softmax(z, axis=-1)
    entropy = log_z - jnp.sum(p * finite_z, axis=-1)
    if stats:
        objective = objective + jnp.sum(entropy * r2)
    return objective, (out, log_z, entropy, jnp.argmax(z, axis=-1))


def _fused(x, w, labels, *, r, r2, stats, reduction="none", **opts):
    result = jaxinfo.linear_cross_entropy(
        x, w, labels, reduction=reduction, return_stats=stats, chunk_size=CHUNK, **opts
    )
    loss, st = result if stats else (result, None)
    objective = jnp.sum(loss * r) if reduction == "none" else loss
    if stats:
        objective = objective + jnp.sum(st.entropy * r2)
        return objective, (loss, st.log_z, st.entropy, st.argmax)
    return objective, (loss, None, None, None)


def _grad_names(opts):
    names = ["x", "w"]
    names += [k for k in ("bias", "temperature", "logit_soft_cap") if _is_array(opts.get(k))]
    return names


def _is_array(v):
    return isinstance(v, (np.ndarray, jax.Array))


def _run(fn, data, opts, names, **kw):
    """Value, aux and the gradients with respect to ``names``."""

    def objective(diff):
        merged = {**opts, **{k: v for k, v in diff.items() if k not in ("x", "w")}}
        return fn(diff["x"], diff["w"], jnp.asarray(data["labels"]), **merged, **kw)

    diff = {k: (data[k] if k in ("x", "w") else opts[k]) for k in names}
    return jax.value_and_grad(objective, has_aux=True)(diff)


def _compare(data, opts, *, stats=False, reduction="none", dtype=jnp.float32, tol=1e-5):
    names = _grad_names(opts)
    kw = dict(r=data["r"], r2=data["r2"], stats=stats, reduction=reduction)
    cast = {
        k: jnp.asarray(v, dtype) if _is_array(v) and k != "where" else v for k, v in opts.items()
    }
    fused_data = {**data, "x": jnp.asarray(data["x"], dtype), "w": jnp.asarray(data["w"], dtype)}
    (value, aux), grads = jax.jit(lambda d, o: _run(_fused, d, o, names, **kw), static_argnums=())(
        fused_data, cast
    )
    with jax.enable_x64(True):
        ref_data = {k: _to64(fused_data[k] if k in ("x", "w") else v) for k, v in data.items()}
        ref_opts = {k: _to64(v) for k, v in cast.items()}
        ref_kw = {k: _to64(v) for k, v in kw.items()}
        (ref_value, ref_aux), ref_grads = _run(_reference, ref_data, ref_opts, names, **ref_kw)
        ref_value = float(ref_value)
        ref_aux = [np.asarray(a) for a in ref_aux]
        ref_grads = {k: np.asarray(v) for k, v in ref_grads.items()}
    assert abs(float(value) - ref_value) <= tol * max(abs(ref_value), 1e-3)
    _close(aux[0], ref_aux[0], tol)
    if stats:
        _close(aux[1], ref_aux[1], tol)
        _close(aux[2], ref_aux[2], tol)
        np.testing.assert_array_equal(aux[3], ref_aux[3])
    for k in names:
        assert grads[k].dtype == jnp.asarray(cast.get(k, fused_data.get(k))).dtype, k
        _close(grads[k], ref_grads[k], tol * (1 if dtype == jnp.float32 else 1e3), k)
    return aux, grads


def _to64(v):
    """Float arrays in float64 (after rounding to the dtype the kernel saw); the rest as is."""
    if _is_array(v) and jnp.issubdtype(v.dtype, jnp.floating):
        return np.asarray(v, np.float64)
    return v


def _close(a, b, tol, what=""):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.all(np.isfinite(a)), what
    scale = max(np.max(np.abs(b)), 1e-30)
    err = np.max(np.abs(a - b)) / scale
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:.0e}"


CASES = {
    "bias": dict(bias=True),
    "where": dict(where=True),
    "weights": dict(weights=True),
    "label_smoothing": dict(label_smoothing=0.1),
    "z_loss": dict(z_loss=1e-2),
    "logit_soft_cap": dict(logit_soft_cap=2.0),
    "temperature": dict(temperature=0.5),
    "all": ALL,
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_option_matches_the_materialised_float64_reference(case):
    data = _problem()
    _compare(data, _options(case, data))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_every_option_with_stats_and_reduction(reduction):
    data = _problem(seed=1)
    _compare(data, _options(ALL, data), stats=True, reduction=reduction)


def test_learned_temperature_and_cap_receive_their_gradients():
    data = _problem(seed=2)
    opts = _options(ALL, data)
    opts["temperature"] = jnp.asarray(0.7, jnp.float32)
    opts["logit_soft_cap"] = jnp.asarray(4.0, jnp.float32)
    _, grads = _compare(data, opts, stats=True)
    assert float(grads["temperature"]) != 0 and float(grads["logit_soft_cap"]) != 0


def test_traced_smoothing_and_z_loss_are_differentiable():
    data = _problem(seed=3)
    x, w, y = (jnp.asarray(data[k]) for k in ("x", "w", "labels"))

    def fused(eps, c):
        return jaxinfo.linear_cross_entropy(
            x, w, y, label_smoothing=eps, z_loss=c, chunk_size=CHUNK, reduction="sum"
        )

    def materialised(eps, c):
        z = x @ w
        ce = jaxinfo.cross_entropy_from_labels(y, z, label_smoothing=eps)
        return jnp.sum(jnp.where(y >= 0, ce + c * jax.nn.logsumexp(z, -1) ** 2, 0))

    args = (jnp.float32(0.2), jnp.float32(1e-2))
    got = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(*args)
    want = jax.value_and_grad(materialised, argnums=(0, 1))(*args)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5)


def test_bfloat16_inputs_accumulate_in_float32():
    data = _problem(seed=4)
    aux, grads = _compare(
        data, _options(ALL, data), stats=True, reduction="mean", dtype=jnp.bfloat16, tol=1e-5
    )
    assert aux[0].dtype == jnp.float32 and aux[2].dtype == jnp.float32
    assert grads["x"].dtype == grads["w"].dtype == grads["bias"].dtype == jnp.bfloat16


def test_float64_every_option(x64):
    data = _problem(seed=5)
    data = {k: np.float64(v) if v.dtype == np.float32 else v for k, v in data.items()}
    opts = _options(ALL, data)
    loss, st = jaxinfo.linear_cross_entropy(
        data["x"], data["w"], data["labels"], **opts, chunk_size=CHUNK, return_stats=True
    )
    assert loss.dtype == st.entropy.dtype == jnp.float64
    _, ref = _reference(
        data["x"], data["w"], data["labels"], r=data["r"], r2=data["r2"], stats=True, **opts
    )
    np.testing.assert_allclose(loss, ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.entropy, ref[2], rtol=1e-12)


# ----------------------------------------------------------------------------
# linear_entropy
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [{}, dict(bias=True, where=True, weights=True, logit_soft_cap=3.0, temperature=1.5)],
    ids=["plain", "all"],
)
def test_linear_entropy_matches_entropy_from_logits(opts):
    data = _problem(seed=6)
    kw = _options(opts, data)
    x, w = jnp.asarray(data["x"]), jnp.asarray(data["w"])
    r = jnp.asarray(data["r"])

    def fused(x, w):
        return jnp.sum(jaxinfo.linear_entropy(x, w, chunk_size=CHUNK, **kw) * r)

    def materialised(x, w):
        kw64 = {k: _to64(v) for k, v in kw.items()}
        u = x @ w + kw64.get("bias", 0)
        cap = kw.get("logit_soft_cap")
        z = (u if cap is None else cap * jnp.tanh(u / cap)) / kw.get("temperature", 1.0)
        h = jaxinfo.entropy_from_logits(z, where=kw.get("where"))
        return jnp.sum(h * kw64.get("weights", 1.0) * _to64(data["r"]))

    got = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(x, w)
    with jax.enable_x64(True):
        want = jax.value_and_grad(materialised, argnums=(0, 1))(
            np.float64(data["x"]), np.float64(data["w"])
        )
        want = jax.tree.map(np.asarray, want)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for a, b in zip(got[1], want[1], strict=True):
        _close(a, b, 1e-5)


def test_entropy_of_peaked_large_logits_is_accurate_and_finite():
    # Logits near 1e4: log Z and the mean logit are both about 1e4, and
    # their difference (the entropy) about 1e-3; computed relative to the
    # running maximum, it keeps its digits.
    data = _problem(seed=7, scale=2000.0)
    x, w = jnp.asarray(data["x"]), jnp.asarray(data["w"])
    h, (dx, dw) = jax.value_and_grad(
        lambda x, w: jnp.sum(jaxinfo.linear_entropy(x, w, chunk_size=CHUNK)), argnums=(0, 1)
    )(x, w)
    with jax.enable_x64(True):
        ref = jaxinfo.entropy_from_logits(np.float64(data["x"]) @ np.float64(data["w"]))
    z32 = np.float64(np.asarray(x @ w))
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))
    # the float32 logits are rounded to about 1e-3 themselves: compare the
    # kernel against the entropy of those rounded logits instead
    with jax.enable_x64(True):
        ref32 = np.asarray(jaxinfo.entropy_from_logits(z32))
    h_each = jaxinfo.linear_entropy(x, w, chunk_size=CHUNK)
    np.testing.assert_allclose(h_each, ref32, rtol=1e-3, atol=1e-6)
    assert np.all(np.asarray(ref) >= 0) and float(h) >= 0


# ----------------------------------------------------------------------------
# masks, weights and the edges
# ----------------------------------------------------------------------------


def test_label_on_an_excluded_class_is_inf_without_nan_elsewhere():
    data = _problem(seed=8)
    labels = data["labels"].copy()
    labels[0] = np.flatnonzero(~data["where"])[0]
    x, w = jnp.asarray(data["x"]), jnp.asarray(data["w"])
    kw = dict(where=data["where"], label_smoothing=0.1, chunk_size=CHUNK)
    loss = jaxinfo.linear_cross_entropy(x, w, labels, **kw)
    assert np.isposinf(loss[0]) and np.all(np.isfinite(loss[1:]))
    # with weight 0 there, the mean and its gradient are finite
    weights = np.ones(N, np.float32)
    weights[0] = 0

    def mean(x, w):
        return jaxinfo.linear_cross_entropy(x, w, labels, weights=weights, reduction="mean", **kw)

    value, (dx, dw) = jax.value_and_grad(mean, argnums=(0, 1))(x, w)
    assert np.isfinite(value) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))
    # excluded classes get no gradient
    np.testing.assert_array_equal(np.asarray(dw)[:, ~data["where"]], 0)


def test_mean_divides_by_the_weight_of_the_real_positions():
    data = _problem(seed=9)
    x, w, y = jnp.asarray(data["x"]), jnp.asarray(data["w"]), data["labels"]
    weights = data["weights"]
    per = jaxinfo.linear_cross_entropy(x, w, y, chunk_size=CHUNK)
    mean = jaxinfo.linear_cross_entropy(
        x, w, y, weights=weights, reduction="mean", chunk_size=CHUNK
    )
    want = np.sum(np.asarray(per) * weights) / np.sum(weights[y >= 0])
    np.testing.assert_allclose(mean, want, rtol=1e-6)
    boolean = jaxinfo.linear_cross_entropy(
        x, w, y, weights=np.arange(N) % 2 == 0, reduction="sum", chunk_size=CHUNK
    )
    np.testing.assert_allclose(boolean, np.sum(np.asarray(per)[::2]), rtol=1e-6)


def test_stats_are_given_at_padded_positions_and_argmax_is_global():
    data = _problem(seed=10)
    x, w, y = jnp.asarray(data["x"]), jnp.asarray(data["w"]), data["labels"]
    _, st = jaxinfo.linear_cross_entropy(x, w, y, return_stats=True, chunk_size=CHUNK)
    z = np.asarray(x @ w, np.float64)
    np.testing.assert_array_equal(st.argmax, np.argmax(z, axis=1))
    assert st.argmax.dtype == jnp.int32
    assert np.all(st.entropy > 0) and np.all(st.entropy <= np.log(V))


def test_stats_with_one_class_included():
    data = _problem(seed=11)
    x, w = jnp.asarray(data["x"]), jnp.asarray(data["w"])
    where = np.zeros(V, bool)
    where[137] = True
    loss, st = jaxinfo.linear_cross_entropy(
        x, w, np.full(N, 137), where=where, return_stats=True, chunk_size=CHUNK
    )
    np.testing.assert_allclose(loss, 0, atol=1e-6)
    np.testing.assert_array_equal(st.entropy, 0)
    np.testing.assert_array_equal(st.argmax, 137)


def test_under_vmap_and_jit_with_leading_axes():
    data = _problem(seed=12)
    opts = _options(ALL, data)
    x = jnp.asarray(data["x"]).reshape(4, 6, D)
    y = jnp.asarray(data["labels"]).reshape(4, 6)
    opts["weights"] = opts["weights"].reshape(4, 6)
    batched = jaxinfo.linear_cross_entropy(x, data["w"], y, chunk_size=CHUNK, **opts)
    assert batched.shape == (4, 6)

    def one(x, y, weights):
        kw = {**opts, "weights": weights}
        return jaxinfo.linear_cross_entropy(x, data["w"], y, chunk_size=CHUNK, **kw)

    mapped = jax.jit(jax.vmap(one))(x, y, opts["weights"])
    np.testing.assert_allclose(mapped, batched, rtol=1e-6)


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------

X, W, Y = jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.zeros(4, jnp.int32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(bias=jnp.ones(6)), ValueError, r"bias must have shape \(V,\) = \(7,\).*\(6,\)"),
        (dict(bias=jnp.ones(7, bool)), TypeError, "bias must have a real numeric dtype"),
        (dict(where=jnp.ones(6, bool)), ValueError, r"where must have shape \(V,\) = \(7,\)"),
        (dict(where=jnp.ones(7)), TypeError, "where must be a boolean"),
        (dict(where=np.zeros(7, bool)), ValueError, "where excludes every class"),
        (
            dict(weights=jnp.ones(5)),
            ValueError,
            r"weights must have one weight per position, shape \(4,\)",
        ),
        (dict(weights=jnp.ones(4, jnp.complex64)), TypeError, "weights must be real"),
        (dict(temperature=0.0), ValueError, r"temperature must be a scalar in \(0, inf\), got 0.0"),
        (dict(temperature=-1), ValueError, "temperature must be a scalar in"),
        (dict(logit_soft_cap=0.0), ValueError, r"logit_soft_cap must be a scalar in \(0, inf\)"),
        (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be a scalar in \[0, 1\]"),
        (dict(z_loss=-1e-4), ValueError, r"z_loss must be a scalar in \[0, inf\)"),
        (dict(temperature="hot"), TypeError, "temperature must be a real number"),
        (dict(return_stats=1), TypeError, "return_stats must be a bool"),
    ],
)
def test_errors_name_the_option(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxinfo.linear_cross_entropy(X, W, Y, **kwargs)


def test_linear_entropy_errors():
    with pytest.raises(ValueError, match="x and w do not chain"):
        jaxinfo.linear_entropy(jnp.ones((4, 2)), W)
    with pytest.raises(ValueError, match="temperature must be a scalar"):
        jaxinfo.linear_entropy(X, W, temperature=0)
    with pytest.raises(TypeError, match="linear_entropy supports reverse-mode"):
        jax.jvp(lambda x: jaxinfo.linear_entropy(x, W), (X,), (X,))


@functools.cache
def _gemma_temp_bytes(dtype):
    n, d, v = 8192, 2304, 262144
    shapes = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((d, v), dtype),
        jax.ShapeDtypeStruct((v,), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
        jax.ShapeDtypeStruct((v,), jnp.bool_),
        jax.ShapeDtypeStruct((n,), jnp.float32),
    )

    def loss(x, w, b, y, mask, weights):
        ce, st = jaxinfo.linear_cross_entropy(
            x,
            w,
            y,
            bias=b,
            where=mask,
            weights=weights,
            label_smoothing=0.1,
            z_loss=1e-4,
            logit_soft_cap=30.0,
            temperature=0.9,
            reduction="mean",
            return_stats=True,
        )
        return ce - 0.01 * jnp.mean(st.entropy)

    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    return vg.lower(*shapes).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_compiled_memory_with_every_option_at_gemma_shape(dtype):
    # Target 512 MiB; the logits alone would take 8 GiB.
    assert _gemma_temp_bytes(dtype) <= 512 * 2**20
