"""python -m scorekit demo: plain versus annealed Langevin on a two-mode mixture."""

import subprocess
import sys

import numpy as np
import pytest

import scorekit
from scorekit import _demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One demo run with 4000 chains and the default schedule, figure included.

    One thread: the samples are the same for any thread count, and a single
    thread keeps the run short when the machine's other cores are busy.
    """
    figure = tmp_path_factory.mktemp("demo") / "demo.png"
    result = _demo.main(["--chains", "4000", "--seed", "0", "--threads", "1",
                         "--figure", str(figure), "--no-baseline"])
    return result, figure


def test_annealed_langevin_recovers_the_weights(small_run):
    result, _ = small_run
    assert result.true_fraction == 0.2
    assert abs(result.annealed_fraction - 0.2) <= 0.03


def test_plain_langevin_keeps_the_starting_modes(small_run):
    result, _ = small_run
    assert abs(result.plain_fraction - 0.2) > 0.03
    assert abs(result.plain_fraction - 0.5) < 0.05


def test_result_holds_samples_and_times(small_run):
    result, figure = small_run
    assert result.n_chains == 4000
    for x in (result.plain_samples, result.annealed_samples):
        assert x.shape == (4000, 2) and x.dtype == np.float64 and np.all(np.isfinite(x))
    assert result.plain_seconds > 0 and result.annealed_seconds > 0
    assert result.numpy_seconds is None and result.speedup is None
    assert result.figure == figure


def test_figure_is_a_png(small_run):
    _, figure = small_run
    assert figure.read_bytes()[:8] == PNG_SIGNATURE


def test_printed_report(tmp_path, capsys):
    result = _demo.main(["--chains", "300", "--levels", "3", "--steps-each", "10", "--no-figure"])
    out = capsys.readouterr().out
    assert "true weights" in out and "0.200" in out and "0.800" in out
    assert f"{result.annealed_fraction:7.3f}" in out and f"{result.plain_fraction:7.3f}" in out
    assert "one run each" in out and "pure NumPy" in out
    assert result.numpy_seconds > 0 and result.speedup > 0
    assert 0 <= result.numpy_fraction <= 1
    assert result.figure is None and "figure:" not in out


def test_runs_are_reproducible_and_restore_the_thread_count(threads):
    args = ["--chains", "200", "--levels", "2", "--steps-each", "5", "--no-figure",
            "--no-baseline"]
    scorekit.set_num_threads(2)
    a = _demo.main(args)
    b = _demo.main([*args, "--threads", "1"])
    assert scorekit.get_num_threads() == 2
    np.testing.assert_array_equal(a.annealed_samples, b.annealed_samples)
    np.testing.assert_array_equal(a.plain_samples, b.plain_samples)


def test_numpy_baseline_matches_scorekit_in_distribution(threads):
    scorekit.set_num_threads(1)
    gm = _demo.mixture()
    x0 = _demo.start_points(2000, seed=5)
    sigmas = np.geomspace(20, 1, 10)
    ours = _demo.scorekit_annealed(gm, x0, sigmas, n_steps_each=100, step_lr=0.1, seed=6)
    base = _demo.numpy_annealed(x0, sigmas, n_steps_each=100, step_lr=0.1, seed=6)
    assert abs(_demo.mode_fraction(ours) - _demo.mode_fraction(base)) < 0.04
    for x in (ours, base):
        right = x[x[:, 0] > 0]
        # samples of the mixture smoothed at sigma_min = 1: N((5, 5), 2 I)
        np.testing.assert_allclose(right.mean(axis=0), [5, 5], atol=0.15)
        np.testing.assert_allclose(right.var(axis=0), [2, 2], rtol=0.15)


def test_start_points_fill_the_box():
    x = _demo.start_points(5000, seed=1)
    assert x.min() >= -8 and x.max() <= 8
    assert abs(_demo.mode_fraction(x) - 0.5) < 0.03


def test_missing_matplotlib_is_reported_before_sampling(monkeypatch, tmp_path):
    for name in ["matplotlib", *[m for m in sys.modules if m.startswith("matplotlib.")]]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import` raise ImportError
    monkeypatch.setattr(_demo, "run", lambda args: pytest.fail("sampled before the check"))
    with pytest.raises(SystemExit) as err:
        _demo.main(["--figure", str(tmp_path / "f.png")])
    assert 'pip install "scorekit[demo]"' in str(err.value.code)


def test_figure_format_is_checked_before_sampling(monkeypatch, tmp_path):
    monkeypatch.setattr(_demo, "run", lambda args: pytest.fail("sampled before the check"))
    with pytest.raises(SystemExit, match=r"--figure: matplotlib cannot write '\.txt' files"):
        _demo.main(["--figure", str(tmp_path / "f.txt")])


def test_figure_without_a_suffix_is_a_png_at_the_reported_path(tmp_path, capsys):
    """matplotlib adds .png to a name without a suffix: the result and the printed
    path are the file written."""
    result = _demo.main(["--chains", "200", "--levels", "2", "--steps-each", "5",
                         "--no-baseline", "--figure", str(tmp_path / "plot")])
    assert result.figure == tmp_path / "plot.png"
    assert result.figure.read_bytes()[:8] == PNG_SIGNATURE
    assert f"figure: {tmp_path / 'plot.png'}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--chains", "0"], ["--levels", "1"], ["--step-lr", "-1"],
                                  ["--sigma-min", "30"], ["--seed", "-1"], ["--threads", "0"],
                                  ["--figure", "/nonexistent-dir/f.png"], ["--figure", "."]])
def test_bad_options_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as err:
        _demo.main(argv)
    assert err.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_too_many_threads_is_refused_before_sampling(threads, monkeypatch):
    monkeypatch.setattr(_demo, "run", lambda args: pytest.fail("sampled with a bad --threads"))
    before = scorekit.get_num_threads()
    with pytest.raises(SystemExit, match="--threads"):
        _demo.main(["--threads", "1000000", "--no-figure"])
    assert scorekit.get_num_threads() == before


def test_cli_help():
    res = subprocess.run([sys.executable, "-m", "scorekit", "demo", "--help"],
                         capture_output=True, text=True, check=True)
    for option in ("--chains", "--seed", "--figure", "--no-figure", "--steps-each", "--step-lr"):
        assert option in res.stdout


def test_cli_runs_without_importing_matplotlib(tmp_path):
    code = ("import sys; from scorekit.__main__ import main; "
            "rc = main(['demo', '--chains', '100', '--levels', '2', '--steps-each', '3', "
            "'--no-figure', '--no-baseline']); "
            "assert 'matplotlib' not in sys.modules; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "annealed Langevin" in res.stdout
    assert not list(tmp_path.iterdir())
