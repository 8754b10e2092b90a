"""The examples under examples/, run at a tiny size in this process.

``examples/char_lm.py`` trains a character-level language model twice, with
``jaxinfo.linear_cross_entropy`` and with the materialised optax loss; the
tests check that the two runs agree, that the model learns, and the logged
figures against a float64 NumPy forward pass of the same parameters.
"""

import importlib.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

ROOT = Path(__file__).resolve().parents[1]
EPS32 = float(np.finfo(np.float32).eps)


def _load(name):
    """The module examples/NAME.py (examples/ is no package)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


char_lm = _load("char_lm")
TINY = char_lm.TINY


@pytest.fixture(scope="module")
def tiny_run():
    """The text's ids, its vocabulary size and the two runs' histories (float64)."""
    text, _ = char_lm.load_text()
    ids, chars = char_lm.encode(text)
    fused, materialised = char_lm.train_both(ids, len(chars), seed=0, **TINY)
    return ids, len(chars), fused, materialised


def _step0_reference(ids, vocab):
    """The figures of the first batch under the initial parameters, in float64 NumPy."""
    inputs, labels = char_lm.make_batches(
        ids, steps=1, batch=TINY["batch"], context=TINY["context"], seed=0
    )
    inputs, labels = inputs[0], labels[0]
    p = {
        k: np.asarray(v, np.float64)
        for k, v in char_lm.init_params(0, vocab, context=TINY["context"], dim=TINY["dim"]).items()
    }
    h = np.tanh(p["embed"][inputs].reshape(len(inputs), -1) @ p["w1"] + p["b1"])
    x = h + np.tanh(h @ p["w2"] + p["b2"])
    logits = x @ p["w"] + p["b"]
    log_z = logsumexp(logits, axis=-1)
    ce = log_z - logits[np.arange(len(labels)), labels]
    log_q = logits - log_z[:, None]
    entropy = -(np.exp(log_q) * log_q).sum(-1)
    return {
        "loss": np.mean(ce + 1e-4 * log_z**2),
        "cross_entropy": np.mean(ce),
        "perplexity": np.exp(np.mean(ce)),
        "entropy": np.mean(entropy),
        "accuracy": np.mean(np.argmax(logits, -1) == labels),
    }


# ----------------------------------------------------------------------------
# examples/char_lm.py
# ----------------------------------------------------------------------------


def test_char_lm_fused_and_materialised_runs_agree(tiny_run):
    _, _, fused, materialised = tiny_run
    assert fused.loss.shape == (TINY["steps"],)
    # Same start, same batches: the curves differ by the rounding of the two
    # losses and gradients, carried forward by the optimiser's few steps.
    for field in ("loss", "cross_entropy", "perplexity", "entropy"):
        np.testing.assert_allclose(
            getattr(fused, field), getattr(materialised, field), rtol=1e-5, err_msg=field
        )
    # A prediction at a near-tie may flip: one position of the batch at most.
    assert np.max(np.abs(fused.accuracy - materialised.accuracy)) <= 1 / TINY["batch"]


def test_char_lm_first_step_matches_float64(tiny_run):
    ids, vocab, fused, materialised = tiny_run
    expected = _step0_reference(ids, vocab)
    for run in (fused, materialised):
        for field, value in expected.items():
            np.testing.assert_allclose(getattr(run, field)[0], value, rtol=2e-6, err_msg=field)


def test_char_lm_perplexity_is_exp_of_the_mean_cross_entropy(tiny_run):
    _, _, fused, materialised = tiny_run
    for run in (fused, materialised):
        np.testing.assert_allclose(run.perplexity, np.exp(run.cross_entropy), rtol=4 * EPS32)
        # the z-loss, 1e-4 (log Z)², is small and positive
        assert np.all(run.loss > run.cross_entropy)
        assert np.all(run.loss - run.cross_entropy < 1e-4 * 10**2)


def test_char_lm_loss_decreases(tiny_run):
    _, vocab, fused, _ = tiny_run
    # the start is near the uniform prediction: log V plus the z-loss of log Z ≈ log V
    assert fused.loss[0] == pytest.approx(math.log(vocab) * (1 + 1e-4 * math.log(vocab)), abs=0.05)
    assert np.mean(fused.loss[-3:]) < fused.loss[0] - 0.2


def test_char_lm_statistics_are_in_range(tiny_run):
    _, vocab, fused, materialised = tiny_run
    log_v = math.log(vocab)
    for run in (fused, materialised):
        assert np.all(run.entropy >= 0) and np.all(run.entropy <= log_v * (1 + 4 * EPS32))
        assert np.all(run.accuracy >= 0) and np.all(run.accuracy <= 1)
        hits = run.accuracy * TINY["batch"]  # a count of positions
        np.testing.assert_allclose(hits, np.round(hits), atol=1e-4)
        assert np.all(run.perplexity >= 1) and np.all(np.isfinite(run.loss))


def test_char_lm_command_line(tiny_run, capsys, tmp_path):
    _, _, fused, _ = tiny_run
    png = tmp_path / "char_lm.png"
    assert char_lm.main(["--tiny", "--log-every", "5", "--plot", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("text: the Python licence (LICENSE.txt)") or out[0].startswith(
        "text: the Zen of Python"
    )
    header = ["step", "loss", "perplexity", "entropy", "accuracy"]
    tables = [i for i, line in enumerate(out) if line.split() == header]
    assert len(tables) == 2
    assert out[tables[0] - 1].startswith("fused: jaxinfo.linear_cross_entropy")
    assert out[tables[1] - 1].startswith("materialised: optax.softmax_cross_entropy")
    last = TINY["steps"] - 1
    for start in tables:
        steps = [int(line.split()[0]) for line in out[start + 1 : start + 5]]
        assert steps == [0, 5, 10, last]
    # the command line's run is the test's (same seed, sizes and batches)
    row = out[tables[0] + 1].split()
    assert float(row[1]) == pytest.approx(fused.loss[0], abs=1e-5)
    assert float(row[2]) == pytest.approx(fused.perplexity[0], abs=1e-4)
    summary = next(i for i, line in enumerate(out) if line.startswith("max |fused - materialised|"))
    assert out[summary + 1].split()[:2] == ["step", "0"]
    assert out[summary + 2].split()[:3] == ["all", str(TINY["steps"]), "steps"]
    assert max(float(v) for v in out[summary + 2].split()[3:6]) < 1e-3
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # The README's copy of the output: its lines without figures (titles, headers)
    # are what the script prints; its plot is there.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```text\ntext: the Python licence") + len("```text\n")
    excerpt = readme[start : readme.index("```", start)].splitlines()
    fixed = [line for line in excerpt if line and not any(c.isdigit() for c in line)]
    assert len(fixed) == 5 and set(fixed) <= set(out), fixed
    assert "python examples/char_lm.py --plot docs/char_lm.png" in readme
    assert "](docs/char_lm.png)" in readme and (ROOT / "docs" / "char_lm.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "argument --steps: expected a positive integer, got 0"),
        (["--learning-rate", "nan"], "expected a positive finite number"),
        (["--plot", "curves.jpg"], "the path must end in .png"),
        (["--plot", "no/such/folder/c.png"], "the folder of 'no/such/folder/c.png' does not exist"),
        (["--text", "no-such-file.txt"], "cannot read the text file 'no-such-file.txt'"),
        (["--text", "short.txt", "--context", "8"], "--context 8 needs a text of at least 10"),
    ],
)
def test_char_lm_bad_arguments(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "short.txt").write_text("abcdefgh\n", encoding="utf-8")
    with pytest.raises(SystemExit) as excinfo:
        char_lm.main(args)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_char_lm_text_falls_back_to_the_zen_then_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "__file__", str(tmp_path / "os.py"))  # no LICENSE.txt beside it
    text, source = char_lm.load_text()
    assert source == "the Zen of Python (module this)"
    assert text.startswith("The Zen of Python, by Tim Peters")
    monkeypatch.setitem(sys.modules, "this", None)  # import this -> ImportError
    with pytest.raises(FileNotFoundError, match=r"neither .*LICENSE\.txt nor the module `this`"):
        char_lm.load_text()
