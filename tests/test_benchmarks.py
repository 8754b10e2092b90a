"""A tiny-shape run of the benchmark suite: it runs and reports well-formed figures.

No timing is asserted: the figures of a shared test machine mean nothing. What
is checked is that every contender of every case ran, in each of the case's
modes where it can, that the table and the JSON carry all of it, and (on
made-up figures) that the targets are judged in the right direction.
"""

import importlib.util
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo
from benchmarks import cases, linear_ce, run, suite

SHAPES = ((4, 8),)
DTYPES = ("float32", "bfloat16")


# A run of every benchmark contender (half a minute of compiling) and of the fused
# loss's table: steps of .ci/run (python -m pytest -m slow), not the README's command.
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def report():
    return suite.run(shapes=SHAPES, dtypes=DTYPES, repeats=2, min_time=1e-4)


def _expected_rows():
    for case in cases.CASES:
        for mode in case.modes:
            for contender in case.contenders:
                if not contender.runs_in(mode):
                    continue
                for shape in SHAPES:
                    for dtype in DTYPES:
                        yield case.measure, mode, shape, dtype, contender.name


@slow
def test_every_contender_is_measured_with_finite_positive_times(report):
    got = {
        (r["measure"], r["mode"], tuple(r["shape"]), r["dtype"], r["contender"]): r
        for r in report["results"]
    }
    expected = set(_expected_rows())
    assert set(got) == expected
    for key, row in got.items():
        assert math.isfinite(row["time_s"]) and row["time_s"] > 0, key
        assert row["rounds"] == 2 and row["calls_per_sample"] >= 1, key
        if row["contender"] == "jaxinfo":
            assert row["ratio"] is None, key
        else:
            for field in ("ratio", "ratio_p25", "ratio_p75"):
                assert math.isfinite(row[field]) and row[field] > 0, (key, field)
            assert row["ratio_p25"] <= row["ratio"] <= row["ratio_p75"], key
        if row["backend"] == "jax":
            assert isinstance(row["temp_bytes"], int) and row["temp_bytes"] >= 0, key
        else:
            assert row["temp_bytes"] is None, key


@slow
def test_both_modes_and_every_backend_are_covered(report):
    modes = {(r["measure"], r["mode"]) for r in report["results"]}
    assert modes == {(c.measure, m) for c in cases.CASES for m in c.modes}
    assert {m for _, m in modes} == set(suite.MODES) == {"fwd", "vg", "grad"}
    names = {r["contender"] for r in report["results"]}
    assert {"jaxinfo", "naive", "jax.scipy", "optax", "scipy", "vmap", "read"} <= names


@slow
def test_every_case_has_a_vmap_contender_in_each_mode_and_a_forward_read_floor(report):
    measured = {(r["measure"], r["mode"], r["contender"]) for r in report["results"]}
    for case in cases.CASES:
        for mode in case.modes:
            assert (case.measure, mode, "vmap") in measured, (case.measure, mode)
            assert ((case.measure, mode, "read") in measured) == (mode == "fwd"), (
                case.measure,
                mode,
            )
    assert report["settings"]["modes"] == ["fwd", "vg", "grad"]


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.measure)
def test_vmap_and_read_compute_what_they_claim(case):
    args = case.inputs(jax.random.key(1), (4, 8), jnp.dtype("float32"))
    by_name = {c.name: c for c in case.contenders}
    batched = by_name["jaxinfo"].fn(*args)
    np.testing.assert_allclose(by_name["vmap"].fn(*args), batched, rtol=1e-5, atol=1e-6)
    # vmap hands the function one row (and one scalar label) per call.
    seen = []

    def per_row(*row):
        seen.append(tuple(a.shape for a in row))
        return by_name["jaxinfo"].fn(*row)

    jax.eval_shape(jax.vmap(per_row), *args)  # traces, runs nothing
    assert seen == [tuple(a.shape[1:] for a in args)]
    read = by_name["read"].fn(*args)
    want = sum(jnp.sum(a, axis=-1) for a in args if jnp.issubdtype(a.dtype, jnp.floating))
    if case.measure == "cross_entropy_from_labels":
        want = want + args[0].astype(want.dtype)
    np.testing.assert_allclose(read, want, rtol=1e-6)
    assert by_name["read"].modes == ("fwd",)


@slow
def test_targets_are_all_checked(report):
    checked = {(t["measure"], t["mode"], t["other"], t["kind"]) for t in report["targets"]}
    assert checked == {(t.measure, t.mode, t.other, t.kind) for t in cases.TARGETS}
    for t in report["targets"]:
        assert isinstance(t["met"], bool)
        assert math.isfinite(t["worst"]) and t["worst"] >= 0
        if t["min_ratio"] is None:
            assert t["met"] == (t["worst"] <= t["max_ratio"])
        else:
            assert t["max_ratio"] is None
            assert t["met"] == (t["worst"] >= t["min_ratio"])


def test_the_targets_of_issue_12():
    by_key = {(t.measure, t.mode, t.other, t.kind): t for t in cases.TARGETS}
    assert by_key[("entropy", "fwd", "naive", "time")].max_ratio == 1.60
    assert by_key[("entropy", "vg", "naive", "time")].max_ratio == 1.00
    assert by_key[("entropy", "grad", "naive", "time")].max_ratio == 1.90
    assert by_key[("cross_entropy_from_logits", "fwd", "optax", "time")].max_ratio == 1.60
    vmap = [t for t in cases.TARGETS if t.other == "vmap"]
    assert {(t.measure, t.mode) for t in vmap} == {
        (c.measure, m) for c in cases.CASES for m in ("fwd", "vg")
    }
    assert all(t.min_ratio == 0.95 and t.max_ratio is None for t in vmap)
    for t in cases.TARGETS:
        case = cases.CASES_BY_NAME[t.measure]
        assert t.mode in case.modes, t
        assert any(c.name == t.other and c.runs_in(t.mode) for c in case.contenders), t


def _made_up(ratios, other="vmap", mode="fwd"):
    """Measurements of jaxinfo and ``other`` at one shape, one ratio per dtype."""
    out = []
    for dtype, ratio in ratios.items():
        for name, r in (("jaxinfo", None), (other, ratio)):
            out.append(
                suite.Measurement(
                    measure="entropy",
                    mode=mode,
                    shape=(4, 8),
                    dtype=dtype,
                    contender=name,
                    backend="jax",
                    formula="",
                    time_s=1e-3,
                    ratio=r,
                    ratio_p25=r,
                    ratio_p75=r,
                    temp_bytes=0,
                    calls_per_sample=1,
                    rounds=1,
                )
            )
    return out


@pytest.mark.parametrize(
    ("ratios", "worst", "worst_dtype", "met"),
    [
        ({"float32": 1.02, "bfloat16": 0.97}, 0.97, "bfloat16", True),
        ({"float32": 0.95, "bfloat16": 1.30}, 0.95, "float32", True),  # the bound itself
        ({"float32": 1.20, "bfloat16": 0.94}, 0.94, "bfloat16", False),
        ({"float32": 0.50, "bfloat16": 0.90}, 0.50, "float32", False),
        ({"float32": 1.10, "bfloat16": float("nan")}, None, "bfloat16", False),
    ],
)
def test_a_min_ratio_target_is_met_only_when_every_figure_is_at_least_its_bound(
    ratios, worst, worst_dtype, met
):
    target = cases.Target("entropy", "fwd", "vmap", min_ratio=0.95)
    (got,) = suite.check_targets(_made_up(ratios), (target,))
    assert got["met"] is met
    assert got["worst_at"] == f"4x8 {worst_dtype}"
    if worst is None:
        assert math.isnan(got["worst"])
    else:
        assert got["worst"] == worst
    table = suite.format_tables({"results": [], "targets": [got]})
    assert (
        f"| entropy | fwd | time vs vmap | >= 0.95 | {got['worst']:.2f} (4x8 {worst_dtype}) |"
        in (table)
    )
    assert table.rstrip().endswith("met |" if met else "MISSED |")


@pytest.mark.parametrize(
    ("ratios", "worst", "met"),
    [
        ({"float32": 1.60, "bfloat16": 0.70}, 1.60, True),
        ({"float32": 1.61, "bfloat16": 0.70}, 1.61, False),
    ],
)
def test_a_max_ratio_target_keeps_its_direction(ratios, worst, met):
    target = cases.Target("entropy", "fwd", "naive", 1.60)
    (got,) = suite.check_targets(_made_up(ratios, other="naive"), (target,))
    assert (got["worst"], got["met"]) == (worst, met)
    assert "| <= 1.60 |" in suite.format_tables({"results": [], "targets": [got]})


def test_a_target_has_exactly_one_bound_and_unmeasured_targets_are_left_out():
    with pytest.raises(ValueError, match="exactly one"):
        cases.Target("entropy", "fwd", "vmap")
    with pytest.raises(ValueError, match="exactly one"):
        cases.Target("entropy", "fwd", "vmap", 1.0, min_ratio=0.95)
    target = cases.Target("entropy", "vg", "vmap", min_ratio=0.95)
    assert suite.check_targets(_made_up({"float32": 1.0}), (target,)) == []


def test_the_tables_of_an_older_json_still_format():
    # Reports written before min_ratio existed have targets with max_ratio only
    # (the format of the 2026-11-28 run): made here from the committed results.
    path = pathlib.Path(__file__).parent.parent / "benchmarks" / "results" / "cpu.json"
    report = json.loads(path.read_text())
    old = dict(report)
    old["targets"] = [
        {k: v for k, v in t.items() if k != "min_ratio"}
        for t in report["targets"]
        if t.get("min_ratio") is None
    ]
    assert old["targets"] and all("min_ratio" not in t for t in old["targets"])
    text = suite.format_tables(old)
    assert "| <= 1.60 |" in text


@slow
def test_report_is_json_with_its_environment(report):
    back = json.loads(json.dumps(report))
    assert back["results"] == report["results"]
    env = back["environment"]
    for key in ("jax", "jaxinfo", "optax", "scipy", "numpy", "cpu", "device", "date"):
        assert env[key], key
    assert len(env["load_average_before"]) == 3
    assert back["settings"]["shapes"] == [list(s) for s in SHAPES]


@slow
def test_tables_name_every_measure_contender_and_configuration(report):
    text = suite.format_tables(report)
    for case in cases.CASES:
        assert f"| {case.measure} |" in text
    for name in ("naive", "naive_normalised", "jax.scipy", "optax", "scipy", "vmap", "read"):
        assert f"| {name} |" in text
    assert "| entropy | grad | naive |" in text
    assert "| >= 0.95 |" in text and "| <= 1.60 |" in text
    assert "4x8 f32" in text and "4x8 bf16" in text
    for heading in ("Time ratio", "Median time per call", "temporary memory", "Targets"):
        assert heading in text


def test_command_line_writes_json_and_prints_the_table(tmp_path, capsys):
    path = tmp_path / "out" / "cpu.json"
    got = run.main(
        [
            "--quick",
            "--cases",
            "entropy",
            "--dtypes",
            "float32",
            "--repeats",
            "2",
            "--modes",
            "fwd",
            "--json",
            str(path),
        ]
    )
    printed = capsys.readouterr().out
    assert "| entropy | fwd | naive |" in printed
    written = json.loads(path.read_text())
    assert written["settings"]["command"].startswith("python -m benchmarks.run --quick")
    assert len(written["results"]) == len(got["results"]) > 0
    assert {r["measure"] for r in written["results"]} == {"entropy"}
    assert {r["mode"] for r in written["results"]} == {"fwd"}
    assert {"vmap", "read"} <= {r["contender"] for r in written["results"]}


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit, match="unknown case"):
        run.main(["--quick", "--cases", "entropy,perplexity"])
    with pytest.raises(SystemExit, match="unknown mode"):
        run.main(["--quick", "--modes", "fwd,backward"])
    with pytest.raises(SystemExit):
        run.parse_args(["--shapes", "4096xten"])
    assert "a shape is written like 4096x1024" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# benchmarks/linear_ce.py: the fused loss against the materialised logits and tokamax
# ----------------------------------------------------------------------------


def _has_tokamax():
    return importlib.util.find_spec("tokamax") is not None


@slow
def test_linear_ce_quick_run_prints_every_row(capsys):
    # As a script runs it: tokamax's bfloat16 backward mixes dtypes, which the
    # test suite's strict promotion (conftest.py) rejects.
    with jax.numpy_dtype_promotion("standard"):
        report = linear_ce.main(["--quick"])
    printed = capsys.readouterr().out
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == [
        "jaxinfo fused (plain)",
        "jaxinfo fused (all options)",
        linear_ce.OPTIONS_BASELINE,
        linear_ce.PLAIN_BASELINE,
        "materialised jaxinfo (plain)",
        "tokamax (plain)",
    ]
    # The option row runs exactly when linear_cross_entropy takes the options;
    # tokamax's exactly when it is installed. A skipped row says why.
    skipped = {name for name, r in rows.items() if r["skip"]}
    expected = set()
    if linear_ce.missing_options():
        expected.add("jaxinfo fused (all options)")
    if not _has_tokamax():
        expected.add("tokamax (plain)")
    assert skipped == expected
    for name in skipped:
        assert f"- {name}: skipped: {rows[name]['skip']}." in printed
    for name, r in rows.items():
        assert f"| {name} |" in printed
        if name in skipped:
            continue
        for key in ("fwd_s", "vg_s", "fwd_ratio", "vg_ratio", "vg_ratio_cpu"):
            assert math.isfinite(r[key]) and r[key] > 0, (name, key)
        if name == r["baseline"]:
            assert r["fwd_ratio"] == r["vg_ratio"] == 1.0
        for dtype in ("float32", "bfloat16"):
            assert isinstance(r[f"temp_{dtype}"], int) and r[f"temp_{dtype}"] > 0, name
        # Every row computes its materialised version's loss and gradients.
        assert r["loss_rel"] < 1e-5, name
        assert len(r["grad_rel"]) == (3 if r["baseline"] == linear_ce.OPTIONS_BASELINE else 2)
        assert max(r["grad_rel"]) < 1e-5, name
    assert "accuracy against float64" in printed


def test_linear_ce_option_row_runs_once_the_options_are_taken(monkeypatch):
    # A stand-in with the extended signature (the materialised reference
    # itself): the option row is then measured, against the reference.
    def extended(
        x,
        w,
        labels,
        *,
        bias=None,
        where=None,
        weights=None,
        label_smoothing=0.0,
        z_loss=0.0,
        logit_soft_cap=None,
        temperature=1.0,
        chunk_size=None,
        axis_name=None,
        reduction="none",
        return_stats=False,
    ):
        return linear_ce.materialised_loss(
            x,
            w,
            labels,
            bias=bias,
            where=where,
            weights=weights,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            logit_soft_cap=logit_soft_cap,
            temperature=temperature,
            reduction=reduction,
            return_stats=return_stats,
        )

    assert linear_ce.missing_options(lambda x, w, labels, *, chunk_size=None: x) == list(
        linear_ce.OPTION_NAMES
    )
    monkeypatch.setattr(jaxinfo, "linear_cross_entropy", extended)
    assert linear_ce.missing_options() == []
    rows = linear_ce.side_by_side(
        linear_ce.QUICK_TIME_SHAPE, None, 1, memory=False, names=["jaxinfo fused (all options)"]
    )
    assert [r["name"] for r in rows] == ["jaxinfo fused (all options)", linear_ce.OPTIONS_BASELINE]
    fused = rows[0]
    assert fused["skip"] is None and fused["loss_rel"] == 0 and fused["grad_rel"] == [0, 0, 0]
    assert math.isfinite(fused["vg_ratio"])
    table = linear_ce.format_table(rows, linear_ce.QUICK_TIME_SHAPE, (1, 1, 1), 1)
    assert "| jaxinfo fused (all options) |" in table and "| — | — |" in table


def _options_reference(x, w, labels, bias, where, weights, eps, c, cap, temperature):
    """float64 NumPy: per-position weighted loss, the mean, d(mean)/d(x, w, bias), log Z."""
    x, w, bias = (np.asarray(a, np.float64) for a in (x, w, bias))
    labels, where = np.asarray(labels), np.asarray(where)
    n = len(labels)
    a = x @ w + bias
    if cap is None:
        z, dz_da = a / temperature, 1 / temperature
    else:
        t = np.tanh(a / cap)
        z, dz_da = cap * t / temperature, (1 - t**2) / temperature
    z_in = np.where(where, z, -np.inf)
    m = z_in.max(axis=1, keepdims=True)
    e = np.exp(z_in - m)
    log_z = m[:, 0] + np.log(e.sum(axis=1))
    p = e / e.sum(axis=1, keepdims=True)
    valid = labels >= 0
    target = eps * where / where.sum() * np.ones((n, 1))
    target[np.arange(n), np.where(valid, labels, 0)] += 1 - eps
    loss = log_z - (target * np.where(where, z, 0)).sum(axis=1) + c * log_z**2
    s = np.where(valid, weights, 0.0)
    per_position = s * loss
    mean = per_position.sum() / s.sum()
    g = (s / s.sum())[:, None] * (p * (1 + 2 * c * log_z[:, None]) - target)
    g = g * dz_da
    return per_position, mean, (g @ w.T, x.T @ g, g.sum(axis=0)), log_z


@pytest.mark.parametrize(
    ("eps", "c", "cap", "temperature", "mask"),
    [(0.2, 0.01, 2.0, 0.7, True), (0.0, 0.0, None, 1.0, True), (0.3, 0.0, None, 1.3, False)],
)
def test_linear_ce_materialised_reference_matches_float64(eps, c, cap, temperature, mask):
    rng = np.random.default_rng(3)
    n, d, v = 24, 16, 300
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = (rng.normal(size=(d, v)) / np.sqrt(d)).astype(np.float32)
    bias = rng.normal(size=v).astype(np.float32)
    where = rng.random(v) > 0.3 if mask else np.ones(v, bool)
    labels = rng.choice(np.flatnonzero(where), n)
    labels[::5] = -1
    weights = rng.uniform(0.5, 2.0, n).astype(np.float32)
    options = {
        "where": jnp.asarray(where) if mask else None,
        "weights": jnp.asarray(weights),
        "label_smoothing": eps,
        "z_loss": c,
        "logit_soft_cap": cap,
        "temperature": temperature,
    }
    ref_loss, ref_mean, ref_grads, ref_log_z = _options_reference(
        x, w, labels, bias, where, weights, eps, c, cap, temperature
    )

    def mean(x, w, bias):  # and, as aux, the per-position loss, its sum and the stats
        def ref(reduction, **kw):
            return linear_ce.materialised_loss(
                x, w, labels, bias=bias, reduction=reduction, **kw, **options
            )

        return ref("mean"), (ref("none", return_stats=True), ref("sum"))

    (value, ((loss, stats), total)), grads = jax.jit(
        jax.value_and_grad(mean, argnums=(0, 1, 2), has_aux=True)
    )(x, w, bias)
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(total, ref_loss.sum(), rtol=2e-5)
    np.testing.assert_allclose(value, ref_mean, rtol=2e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        assert np.max(np.abs(np.asarray(got, np.float64) - want)) <= 2e-5 * np.max(np.abs(want))
    # the stats: log Z over the included classes, at every position
    np.testing.assert_allclose(stats["log_z"], ref_log_z, rtol=1e-5)


def test_linear_ce_reference_without_options_is_optax():
    x, w, labels = linear_ce.inputs(32, 8, 200, seed=4)

    @jax.jit
    def both(x, w, labels):
        ref = linear_ce.materialised_loss(x, w, labels, reduction="mean")
        return ref, linear_ce.materialised_optax(x, w, labels)

    ref, baseline = both(x, w, labels)
    np.testing.assert_allclose(ref, baseline, rtol=1e-6)


@pytest.mark.skipif(not _has_tokamax(), reason="tokamax is not installed")
def test_linear_ce_tokamax_behaves_as_documented():
    # What docs/scale.md and the benchmark's docstring say of tokamax 0.0.12.
    loss, why_not = linear_ce.tokamax_loss()
    assert why_not is None and loss.implementation.endswith("implementation='xla'")
    x, w, labels = linear_ce.inputs(8, 16, 40, seed=5)
    labels = np.where(np.arange(8) < 3, -1, labels)
    logits = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    log_z = np.log(np.exp(logits).sum(axis=1))
    kept = np.where(labels >= 0, log_z - logits[np.arange(8), np.maximum(labels, 0)], 0)
    value, dx = jax.jit(jax.value_and_grad(loss))(x, w, labels)
    # "mean" divides by B, ignored positions included
    np.testing.assert_allclose(value, kept.sum() / 8, rtol=1e-5)
    # ... but an ignored position still gets the softmax as its gradient
    softmax = np.exp(logits - log_z[:, None])
    np.testing.assert_allclose(dx[:3], softmax[:3] @ np.asarray(w, np.float64).T / 8, atol=1e-6)
    with pytest.raises(ValueError, match="none"):
        import tokamax

        tokamax.linear_softmax_cross_entropy_loss(x, labels, w, reduction="none")
    with jax.numpy_dtype_promotion("standard"):  # its backward multiplies bfloat16 by float32
        dx, dw = jax.grad(loss, argnums=(0, 1))(
            x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), labels
        )
    assert dx.dtype == dw.dtype == jnp.float32


@slow
def test_family_modes_prints_every_measure_in_every_mode(capsys):
    from benchmarks import family_modes

    family_modes.main(["--rows", "4", "--classes", "3", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["measure", "value", "grad", "jvp"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == set(family_modes.MEASURES)
    for times in rows.values():
        assert len(times) == 3 and all(math.isfinite(float(t)) and float(t) >= 0 for t in times)
