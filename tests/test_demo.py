"""Tests for the optax demo: the fit function and the command line."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxinfo import demo
from jaxinfo.demo import fit

ROOT = Path(__file__).resolve().parents[1]
ARTICLE_P = jnp.array([0.99, 0.01])
EPS32 = float(np.finfo(np.float32).eps)


def _kl64(p, q):
    """D(P‖Q) in float64 NumPy, both arguments normalised."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p = p / p.sum(-1, keepdims=True)
    q = q / q.sum(-1, keepdims=True)
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return terms.sum(-1)


def _random_p(seed, n, k):
    """Distributions uniform on the simplex, as the command line draws them."""
    return jnp.asarray(demo._random_distributions(seed, n, k))


# ----------------------------------------------------------------------------
# Convergence targets with the defaults
# ----------------------------------------------------------------------------


def test_article_p_reaches_kl_below_1e_6_nats():
    result = fit(ARTICLE_P)
    assert float(result.kl_divergence[-1]) < 1e-6
    assert _kl64(ARTICLE_P, result.q) < 1e-6
    np.testing.assert_allclose(result.q, [0.99, 0.01], atol=1e-6)
    # H(P,Q) ends at H(P) = 0.080793 bits, the article's number.
    assert float(result.cross_entropy[-1]) / math.log(2) == pytest.approx(0.0807931, abs=1e-6)


def test_64_random_10_class_p_reach_kl_below_1e_5_nats():
    p = _random_p(0, 64, 10)  # uniform on the simplex: some classes have p ~ 1e-4
    assert float(p.min()) < 1e-3  # the hard case that plain optax.adam(0.1) misses
    result = fit(p)
    assert result.kl_divergence.shape == (64, 500)
    assert float(result.kl_divergence[:, -1].max()) < 1e-5
    assert _kl64(p, result.q).max() < 1e-5


# ----------------------------------------------------------------------------
# Values, the identity, shapes
# ----------------------------------------------------------------------------


def test_first_step_values_match_float64():
    # Adam's first step moves every logit by exactly -lr * sign(gradient), so
    # after one step from the uniform start Q = softmax(+0.1, -0.1).
    result = fit(ARTICLE_P, steps=1)
    q = np.exp([0.1, -0.1]) / np.exp([0.1, -0.1]).sum()
    p = np.array([0.99, 0.01])
    np.testing.assert_allclose(result.q, q, rtol=1e-6)
    np.testing.assert_allclose(result.cross_entropy, [-(p * np.log(q)).sum()], rtol=1e-6)
    np.testing.assert_allclose(result.kl_divergence, [_kl64(p, q)], rtol=1e-5)
    np.testing.assert_allclose(result.entropy, -(p * np.log(p)).sum(), rtol=1e-6)


@pytest.mark.parametrize("k", [4, 10])
def test_histories_match_float64_gradient_descent(k):
    # Plain gradient descent on H(P, softmax(l)) has the gradient softmax(l) - p.
    p = np.asarray(_random_p(k, 5, k), np.float64)
    lr, steps = 2.0, 40
    logits, ce, kl = np.zeros_like(p), [], []
    for _ in range(steps):
        q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        logits = logits - lr * (q - p)
        q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        ce.append(-(p * np.log(q)).sum(-1))
        kl.append(_kl64(p, q))
    result = fit(jnp.asarray(p, jnp.float32), steps=steps, optimizer=optax.sgd(lr))
    np.testing.assert_allclose(result.cross_entropy, np.stack(ce, -1), rtol=2e-6)
    np.testing.assert_allclose(result.kl_divergence, np.stack(kl, -1), rtol=1e-4, atol=3e-7)
    np.testing.assert_allclose(result.q, q, rtol=1e-5)
    np.testing.assert_allclose(result.entropy, -(p * np.log(p)).sum(-1), rtol=1e-6)


@pytest.mark.parametrize("k", [2, 100])
def test_identity_holds_at_every_step(k):
    p = _random_p(k, 16, k)
    result = fit(p, steps=300)
    ce, kl = np.asarray(result.cross_entropy, np.float64), np.asarray(result.kl_divergence)
    h = np.asarray(result.entropy, np.float64)[:, None]
    # float32 tolerance: a few ulps of the quantities added.
    np.testing.assert_array_less(np.abs(ce - kl - h), 4 * EPS32 * (1 + ce + h))
    assert np.all(kl[:, -1] < 1e-3 * kl[:, 0])


@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 5, 3), (1, 1, 3), (0, 3)])
def test_shapes(shape):
    p = jnp.broadcast_to(jnp.array([0.6, 0.3, 0.1]), shape)
    result = fit(p, steps=7)
    assert result.q.shape == shape
    assert result.cross_entropy.shape == (*shape[:-1], 7)
    assert result.kl_divergence.shape == (*shape[:-1], 7)
    assert result.entropy.shape == shape[:-1]
    assert result.q.dtype == jnp.float32
    if result.q.size:
        np.testing.assert_allclose(result.q, result.q.reshape(-1, 3)[0] + 0 * result.q)


@pytest.mark.parametrize(
    "optimizer",
    [
        optax.chain(optax.clip_by_global_norm(0.05), optax.sgd(1.0)),  # couples its inputs
        optax.lamb(0.05),  # a per-tensor trust ratio
        None,
    ],
    ids=["global-norm-clip", "lamb", "default"],
)
def test_batch_rows_are_fitted_independently(optimizer):
    p = _random_p(7, 4, 5)
    batched = fit(p.reshape(2, 2, 5), steps=30, optimizer=optimizer)
    for i in (0, 3):
        single = fit(p[i], steps=30, optimizer=optimizer)
        np.testing.assert_allclose(batched.q.reshape(4, 5)[i], single.q, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            batched.kl_divergence.reshape(4, 30)[i], single.kl_divergence, rtol=1e-4, atol=1e-7
        )


def test_any_optax_optimizer():
    p = jnp.array([0.7, 0.2, 0.1])
    for optimizer in (optax.sgd(5.0), optax.rmsprop(0.05), optax.lion(0.03)):
        result = fit(p, steps=200, optimizer=optimizer)
        assert float(result.kl_divergence[-1]) < 1e-2 * float(result.kl_divergence[0])


@pytest.mark.parametrize("name", list(demo._OPTIMIZERS))
def test_every_named_optimizer_fits_at_its_suggested_learning_rate(name):
    learning_rate = demo._OPTIMIZERS[name][2]  # the one --help suggests
    optimizer = demo.make_optimizer(name, learning_rate, steps=200)
    result = fit(ARTICLE_P, steps=200, optimizer=optimizer)
    assert np.all(np.isfinite(result.kl_divergence))
    assert float(result.kl_divergence[-1]) < 1e-5


def test_learning_rate_and_steps_reach_the_default_optimizer():
    slow = fit(ARTICLE_P, steps=30, learning_rate=0.01)
    fast = fit(ARTICLE_P, steps=30, learning_rate=0.1)
    assert float(fast.kl_divergence[-1]) < float(slow.kl_divergence[-1])
    assert demo.make_optimizer("adam", 0.1, steps=500) is demo.default_optimizer(0.1, 500)


def test_init_logits_start_the_fit():
    p = jnp.array([0.7, 0.2, 0.1])
    # Starting at the answer the gradient is zero, up to rounding, and gradient
    # descent stays put. (Adam would not: it scales the rounding noise up to
    # full-size steps of the learning rate.)
    at_answer = fit(p, steps=50, init_logits=jnp.log(p), optimizer=optax.sgd(1.0))
    np.testing.assert_allclose(at_answer.q, p, rtol=1e-6)
    assert float(jnp.abs(at_answer.kl_divergence).max()) < 1e-6
    # A start far away shows up in the first step.
    far = fit(p, steps=50, init_logits=jnp.array([-3.0, 0.0, 3.0]))
    near = fit(p, steps=50)
    assert float(far.kl_divergence[0]) > 10 * float(near.kl_divergence[0])


def test_init_logits_broadcast_over_the_batch():
    p = _random_p(2, 4, 3)
    init = jnp.array([1.0, 0.0, -1.0])
    result = fit(p, steps=20, init_logits=init)
    expected = fit(p, steps=20, init_logits=jnp.broadcast_to(init, p.shape))
    np.testing.assert_array_equal(result.kl_divergence, expected.kl_divergence)


def test_extreme_init_logits_keep_the_kl_finite():
    # softmax underflows to 0 on the second class: the KL must come from the logits.
    p = jnp.array([0.5, 0.5])
    result = fit(p, steps=5, init_logits=jnp.array([0.0, -200.0]))
    ce = np.asarray(result.cross_entropy, np.float64)
    assert np.all(np.isfinite(result.kl_divergence))
    assert np.all(ce > 90)  # -0.5 log q_2, q_2 ~ exp(-200)
    identity = ce - np.asarray(result.kl_divergence) - math.log(2)
    np.testing.assert_array_less(np.abs(identity), 4 * EPS32 * (1 + ce))
    # In a batch, only the row that needs it takes the divergence from the logits.
    both = fit(jnp.stack([p, p]), steps=5, init_logits=jnp.array([[0.0, -200.0], [0.0, 0.0]]))
    np.testing.assert_allclose(both.kl_divergence[0], result.kl_divergence, rtol=1e-6)
    np.testing.assert_allclose(both.kl_divergence[1], fit(p, steps=5).kl_divergence, rtol=1e-6)


def test_target_with_zeros():
    p = jnp.array([0.8, 0.2, 0.0])
    result = fit(p)
    assert np.all(np.isfinite(result.kl_divergence))
    assert float(result.q[2]) < 1e-6
    assert float(result.kl_divergence[-1]) < 1e-6


@pytest.mark.parametrize(
    "p, expected",
    [
        (jnp.array([99, 1]), [0.99, 0.01]),  # counts: ints promote and normalise
        (jnp.array([0.99, 0.01], jnp.bfloat16), [0.99, 0.01]),
        ([0.25, 0.75], [0.25, 0.75]),
    ],
)
def test_input_types(p, expected):
    result = fit(p, steps=300)
    assert result.q.dtype == jnp.float32
    np.testing.assert_allclose(result.q, expected, atol=2e-3)


def test_float64(x64):
    p = jnp.array([0.99, 0.01], jnp.float64)
    result = fit(p)
    assert result.kl_divergence.dtype == jnp.float64
    assert float(result.kl_divergence[-1]) < 1e-12


# ----------------------------------------------------------------------------
# Bad input to fit
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(p=jnp.array(0.5)), ValueError, "p must have at least one dimension"),
        (dict(p=jnp.zeros((3, 0))), ValueError, "at least one outcome"),
        (dict(p=jnp.array([0.5, -0.1])), ValueError, "p must be non-negative"),
        (dict(p=jnp.array([0.5, jnp.nan])), ValueError, "p must be finite"),
        (dict(p=jnp.array([[0.5, 0.5], [0.0, 0.0]])), ValueError, "row of zeros"),
        (dict(p=jnp.array([0.5, 0.5j])), TypeError, "p must be real-valued"),
        (dict(p="0.5,0.5"), TypeError, "p must"),
        (dict(steps=0), ValueError, "steps must be a positive int, got 0"),
        (dict(steps=-5), ValueError, "steps must be a positive int, got -5"),
        (dict(steps=2.5), TypeError, "steps must be a positive int, got 2.5"),
        (dict(steps=True), TypeError, "steps must be a positive int"),
        (dict(learning_rate=0.0), ValueError, "learning_rate must be positive"),
        (dict(learning_rate=-0.1), ValueError, "learning_rate must be positive"),
        (dict(learning_rate=math.inf), ValueError, "learning_rate must be positive and finite"),
        (dict(learning_rate="0.1"), TypeError, "learning_rate must be a positive number"),
        (dict(optimizer="adam"), TypeError, "optimizer must be an optax.GradientTransformation"),
        (
            dict(optimizer=optax.adam),
            TypeError,
            "optimizer must be an optax.GradientTransformation",
        ),
        (dict(init_logits=jnp.zeros(3)), ValueError, r"init_logits.shape=\(3,\)"),
        (dict(init_logits=jnp.zeros((2, 2))), ValueError, "must have the shape of p"),
        (dict(init_logits=jnp.zeros(2, jnp.complex64)), TypeError, "init_logits must be real"),
    ],
)
def test_bad_input_raises(kwargs, error, match):
    kwargs = {"p": ARTICLE_P, **kwargs}
    with pytest.raises(error, match=match):
        fit(kwargs.pop("p"), **kwargs)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (("rmsprop2", 0.1), ValueError, "unknown optimizer 'rmsprop2'; expected one of adam"),
        (("adam", -1.0), ValueError, "learning_rate must be positive"),
        (("adam", 0.1, 0), ValueError, "steps must be a positive int"),
    ],
)
def test_make_optimizer_errors(args, error, match):
    name, lr, *steps = args
    with pytest.raises(error, match=match):
        demo.make_optimizer(name, lr, **({"steps": steps[0]} if steps else {}))
    with pytest.raises(ValueError, match="schedule must be 'cosine' or 'constant'"):
        demo.make_optimizer("adam", 0.1, schedule="linear")


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def _run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "jaxinfo.demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_help():
    proc = _run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--steps", "--learning-rate", "--optimizer", "--p", "--classes", "--batch"):
        assert option in proc.stdout
    assert "--seed" in proc.stdout and "--plot" in proc.stdout and "--base" in proc.stdout
    assert "lion" in proc.stdout


def test_cli_default_run_writes_table_and_png(tmp_path):
    png = tmp_path / "fit.png"
    proc = _run_cli("--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    # Two fits (the article's P and a random 10-class P), a table each.
    assert sum(line.split()[:4] == ["step", "H(P,Q)", "H(P)", "KL(P||Q)"] for line in lines) == 2
    first = lines[lines.index(next(x for x in lines if x.startswith("article P:"))) + 2]
    step, ce, h = first.split()[:3]
    assert step == "0" and ce == "1.00000000"  # bits, from the uniform Q
    assert float(h) == pytest.approx(0.0807931359, abs=3e-8)  # H(P), the article's 0.080794
    summary = next(x for x in lines if x.startswith("article P: after 500 steps"))
    assert "bits" in summary
    assert any(x.startswith("random 10-class P: after 500 steps") for x in lines)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_cli_units_and_given_p(capsys):
    assert demo.main(["--p", "0.99,0.01", "--base", "e", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "units: nats" in out
    row = next(x for x in out.splitlines() if x.split()[:1] == ["0"])
    h_nats = 0.99 * -math.log(0.99) + 0.01 * -math.log(0.01)
    assert float(row.split()[2]) == pytest.approx(h_nats, abs=3e-8)
    assert float(row.split()[1]) == pytest.approx(math.log(2), abs=3e-8)
    assert "random" not in out


def test_cli_batch_reports_worst_kl_and_throughput(capsys, tmp_path):
    png = tmp_path / "batch.png"
    args = ["--batch", "50", "--classes", "4", "--steps", "40", "--base", "10", "--plot", str(png)]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert "batch: 50 random 4-class distributions" in out
    assert "hartleys" in out
    summary = next(x for x in out.splitlines() if "distributions/s" in x)
    assert "50 distributions x 40 steps" in summary and "worst KL" in summary
    assert png.read_bytes().startswith(b"\x89PNG")


def test_cli_optimizer_and_schedule(capsys):
    assert demo.main(["--optimizer", "sgd", "--learning-rate", "10", "--schedule", "constant",
                      "--classes", "3", "--steps", "10", "--seed", "5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "optimizer: sgd, learning rate 10 (constant)" in out
    assert "random 3-class P" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "argument --steps: expected a positive integer, got 0"),
        (["--steps", "-3"], "argument --steps: expected a positive integer, got -3"),
        (["--steps", "ten"], "argument --steps: expected a positive integer, got 'ten'"),
        (["--learning-rate", "0"], "argument --learning-rate: expected a positive finite number"),
        (["--learning-rate", "nan"], "argument --learning-rate: expected a positive finite number"),
        (["--p", "0.5,0.6"], "probabilities must sum to 1, got '0.5,0.6' (sum 1.1)"),
        (["--p", "1.2,-0.2"], "probabilities must be non-negative, got '1.2,-0.2'"),
        (["--p=-0.1,1.1"], "probabilities must be non-negative"),
        (["--p", "1"], "a distribution needs at least 2 outcomes"),
        (["--p", "0.5;0.5"], "expected comma-separated probabilities"),
        (["--p", "nan,0.5"], "probabilities must be finite"),
        (["--optimizer", "adamm"], "argument --optimizer: invalid choice: 'adamm'"),
        (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'"),
        (["--classes", "1"], "a distribution needs at least 2 classes"),
        (["--batch", "0"], "argument --batch: expected a positive integer, got 0"),
        (["--base", "1"], "a logarithm base must be positive and not 1"),
        (["--base", "-2"], "a logarithm base must be positive and not 1"),
        (["--base", "bits"], "expected 2 (bits), e (nats), 10 (hartleys)"),
        (["--seed", "-1"], "argument --seed: expected a non-negative integer"),
        (
            ["--plot", "no/such/folder/fit.png"],
            "the folder of 'no/such/folder/fit.png' does not exist",
        ),
        (["--plot", "fit.jpg"], "the path must end in .png"),
        (["--p", "0.5,0.5", "--classes", "3"], "--classes does not apply"),
        (["--p", "0.5,0.5", "--batch", "3"], "use one or the other"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_cli_bad_arguments_exit_with_one_message(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as excinfo:
        demo.main(args)
    assert excinfo.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], captured.err


def test_cli_plot_path_that_is_a_folder(capsys, tmp_path):
    folder = tmp_path / "figure.png"
    folder.mkdir()
    with pytest.raises(SystemExit) as excinfo:
        demo.main(["--plot", str(folder)])
    assert excinfo.value.code == 2
    assert "is a folder, not a file name" in capsys.readouterr().err


def test_cli_bad_argument_in_a_subprocess_has_no_traceback():
    proc = _run_cli("--p", "0.7,0.7")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "jaxinfo-demo: error: argument --p: probabilities must sum to 1, got '0.7,0.7' (sum 1.4)"
    )


def test_cli_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as excinfo:
        demo.main(["--plot", str(tmp_path / "fit.png")])
    assert excinfo.value.code == (
        "jaxinfo-demo: error: --plot needs matplotlib; install it with pip install 'jaxinfo[plot]'"
    )
    assert not (tmp_path / "fit.png").exists()


# ----------------------------------------------------------------------------
# What the summary prints near zero, the per-optimizer learning rate, "--p -1,2"
# ----------------------------------------------------------------------------


def _summary(out, label):
    return next(x for x in out.splitlines() if x.startswith(f"{label}: after"))


def test_cli_summary_bounds_a_kl_below_resolution_never_negative(capsys):
    # The article's P converges to a KL at float32 rounding, which may come
    # out negative: the summary gives the bound, not the signed rounding.
    assert demo.main(["--p", "0.99,0.01"]) == 0
    summary = _summary(capsys.readouterr().out, "given P")
    assert "KL < 1.8e-07 bits (the float32 resolution" in summary
    assert "KL = -" not in summary and "e-08" not in summary.split("max|Q-P|")[0]


def test_cli_a_certain_outcome_prints_no_negative_zero(capsys):
    assert demo.main(["--p", "0,1", "--steps", "300"]) == 0
    out = capsys.readouterr().out
    assert "-0.0" not in out
    assert "H(P) = 0.00000000 bits" in _summary(out, "given P")


@pytest.mark.parametrize(
    "value, expected",
    [(-0.0, "0.00000000"), (-1e-9, "0.00000000"), (-1e-8, "0.00000000"), (0.5, "0.50000000")],
)
def test_entropies_round_to_zero_at_their_floor(value, expected):
    assert demo._cli._fmt_h(value, 0.0, None) == expected


def test_entropies_far_below_zero_show_as_they_are():
    # a fault, not rounding: shown, not hidden
    assert demo._cli._fmt_h(-1e-3, 0.0, None) == "-0.00100000"


def test_cli_optimizer_gets_its_listed_learning_rate(capsys):
    assert demo.main(["--optimizer", "sgd", "--p", "0.99,0.01", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "optimizer: sgd, learning rate 10 decaying" in out
    assert "KL < " in _summary(out, "given P")  # converged at the help's learning rate
    assert demo.main(["--optimizer", "radam", "--p", "0.5,0.5", "--steps", "2"]) == 0
    assert "optimizer: radam, learning rate 3 " in capsys.readouterr().out
    assert demo.main(["--p", "0.5,0.5", "--steps", "2", "--learning-rate", "0.5"]) == 0
    assert "optimizer: adam, learning rate 0.5 " in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--p", "-1,2"], "argument --p: probabilities must be non-negative, got '-1,2'"),
        (["--p", "-.5,1.5"], "argument --p: probabilities must be non-negative, got '-.5,1.5'"),
        (["--steps", "3", "--p", "-1,2"], "probabilities must be non-negative"),
    ],
)
def test_cli_dashed_p_reaches_the_probability_check(args, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        demo.main(args)
    assert excinfo.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert len(errors) == 1 and message in errors[0]


def test_cli_negative_zero_probability_is_zero(capsys):
    assert demo.main(["--p", "-0,1", "--steps", "2"]) == 0
    assert "P = (0, 1)" in capsys.readouterr().out


def test_readme_excerpt_matches_the_output(capsys):
    # The digits past float32 rounding vary with the machine; the lines'
    # layout, the first rows and the summary's wording may not.
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```text\narticle P:") + len("```text\n")
    excerpt = readme[start : readme.index("```", start)].splitlines()
    assert demo.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out.index(excerpt[0])
    assert out[first : first + 4] == excerpt[:4]  # title, header, step 0, step 50

    def layout(line):
        return re.sub(r"\d", "#", line)

    rows = [x for x in excerpt if x.strip() != "..."]
    for line in rows[4:-1]:
        assert layout(line) in {layout(x) for x in out[first : first + 13]}, line
    assert layout(rows[-1]) == layout(_summary("\n".join(out), "article P"))
