"""The training example runs end to end on a small budget and learns."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_torch_dsm.py"


def load():
    spec = importlib.util.spec_from_file_location("train_torch_dsm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_example_learns_and_samples(tmp_path, capsys):
    example = load()
    fig = tmp_path / "fig.png"
    hist, learned, exact = example.main(["--steps", "1500", "--batch", "256", "--samples", "400",
                                         "--steps-each", "20", "--figure", str(fig)])
    out = capsys.readouterr().out
    assert "scorekit.torch.dsm_loss" in out and "loss in PyTorch ops" in out
    assert fig.stat().st_size > 10_000
    # the DSM loss falls (its floor is well above zero, so compare against the start)
    assert np.mean(hist[-50:]) < 0.8 * np.mean(hist[:50])
    assert learned.shape == exact.shape == (400, 2)
    assert np.all(np.isfinite(learned))
    # the learned sampler puts most samples near the ring's modes, like the exact score
    data = example.ring()
    near_learned, share = example.mode_report(data, learned, 0.15)
    near_exact, _ = example.mode_report(data, exact, 0.15)
    assert near_exact > 0.9
    assert near_learned > 0.75
    assert np.count_nonzero(share > 0.05) == 8  # every mode is visited
