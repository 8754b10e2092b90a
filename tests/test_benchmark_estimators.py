"""A toy-size run of benchmarks/estimators.py: it runs and its page is complete.

No figure is asserted beyond what must hold at any size (finite numbers, every
estimator present, the true entropies right); the real run is by hand.
"""

import numpy as np
import pytest

from benchmarks import estimators

# A run of a benchmark script: a step of .ci/run (python -m pytest -m slow), not the
# README's test command.
pytestmark = pytest.mark.slow


def test_quick_run_and_page(tmp_path):
    results = estimators.main(
        [
            "--quick",
            "--parts",
            "discrete,gaussian",
            "--docs",
            str(tmp_path),
            "--page",
            str(tmp_path / "e.md"),
        ]
    )
    d = results["discrete"]
    assert len(d) == 3
    for res in d.values():
        assert set(res["estimators"]) == set(estimators.ESTIMATORS)
        for r in res["estimators"].values():
            assert len(r["bias"]) == len(res["sizes"]) and np.all(np.isfinite(r["rmse"]))
    assert abs(d["uniform over 2"]["h_true_bits"] - 1.0) < 1e-12
    assert abs(d["uniform over 8"]["h_true_bits"] - 3.0) < 1e-12
    g = results["gaussian"]
    assert len(g) == 4 and all(np.isfinite(r["mi_bias"]) and np.isfinite(r["h_bias"]) for r in g)
    text = (tmp_path / "e.md").read_text()
    for est in estimators.ESTIMATORS:
        assert f"`{est}`" in text
    assert "KSG bias" in text and text.count(".png") == 3
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        f"estimators_bias_{i}.png" for i in range(3)
    ]
