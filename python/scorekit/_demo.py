"""Plain versus annealed Langevin dynamics on a two-mode mixture.

Run it with ``python -m scorekit demo``. It reproduces the experiment of
Figure 3 in Song & Ermon (2019), "Generative Modeling by Estimating Gradients
of the Data Distribution", with exact scores instead of a trained network:
the data distribution is ``0.2 N((-5, -5), I) + 0.8 N((5, 5), I)`` and chains
start uniformly in ``[-8, 8]^2``.

Plain Langevin dynamics on the data score keeps each chain in the mode whose
basin it starts in, so about half of the samples end near ``(-5, -5)`` instead
of a fifth. Annealed Langevin dynamics starts at noise levels where the two
modes overlap and recovers the weights. As in the paper's Algorithm 1 it ends
at the smallest noise level, so its samples follow the mixture smoothed by
``N(0, sigma_min**2 I)`` (``--denoise`` adds a final Tweedie step). The demo
prints the fraction of samples in each mode for both, times the annealed run
against the same loop written in pure NumPy, and draws a figure of the
density, its score and the two sets of samples.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import reference
from .gmm import GaussianMixture
from .noise import uniform
from .runtime import get_num_threads, set_num_threads
from .samplers import annealed_langevin
from .sde import geometric_sigmas

__all__ = ["DemoResult", "main"]

PROG = "python -m scorekit demo"

#: The mixture of the experiment: component means, standard deviations, weights.
MEANS = np.array([[-5.0, -5.0], [5.0, 5.0]])
STDS = np.array([1.0, 1.0])
WEIGHTS = np.array([0.2, 0.8])

#: Chains start uniformly in ``[-BOX, BOX]^2``.
BOX = 8.0
#: Half-width of the plotted square (the modes' samples reach beyond ``BOX``).
PLOT_HALF_WIDTH = 10.0

MISSING_MATPLOTLIB = ('writing the figure needs matplotlib: pip install "scorekit[demo]" '
                      "(or pass --no-figure)")


@dataclass
class DemoResult:
    """What one demo run measured.

    Attributes
    ----------
    n_chains : int
        Number of chains of each method.
    true_fraction : float
        Weight of the mode at ``(-5, -5)`` (0.2).
    plain_fraction, annealed_fraction : float
        Fraction of samples with ``x[0] < 0`` (the mode at ``(-5, -5)``)
        after plain and after annealed Langevin dynamics.
    plain_seconds, annealed_seconds : float
        Wall time of the scorekit runs (one run each).
    numpy_fraction, numpy_seconds : float or None
        The same for the pure-NumPy annealed loop; None when it was skipped.
    figure : pathlib.Path or None
        Where the figure was written, if it was.
    plain_samples, annealed_samples : numpy.ndarray
        The final samples, float64 ``(n_chains, 2)``.
    """

    n_chains: int
    true_fraction: float
    plain_fraction: float
    annealed_fraction: float
    plain_seconds: float
    annealed_seconds: float
    numpy_fraction: float | None = None
    numpy_seconds: float | None = None
    figure: Path | None = None
    plain_samples: np.ndarray | None = field(default=None, repr=False)
    annealed_samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def speedup(self) -> float | None:
        """NumPy time over scorekit time for the annealed loop, or None."""
        if self.numpy_seconds is None:
            return None
        return self.numpy_seconds / self.annealed_seconds


# --------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------


def mixture() -> GaussianMixture:
    """The data distribution ``0.2 N((-5, -5), I) + 0.8 N((5, 5), I)``."""
    return GaussianMixture(MEANS, STDS, WEIGHTS)


def stream_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for the start points, plain and annealed Langevin.

    Parameters
    ----------
    seed : int
        The demo's seed, >= 0.

    Returns
    -------
    tuple of int
        Three 64-bit seeds spawned from ``numpy.random.SeedSequence(seed)``,
        so the three noise streams never share Philox blocks.
    """
    return tuple(int(s) for s in np.random.SeedSequence(seed).generate_state(3, np.uint64))


def start_points(n: int, seed: int) -> np.ndarray:
    """``n`` points uniform in ``[-BOX, BOX]^2``, float64 ``(n, 2)``."""
    return -BOX + 2 * BOX * uniform((n, 2), seed=seed, dtype=np.float64)


def mode_fraction(x: np.ndarray) -> float:
    """Fraction of samples with ``x[0] < 0``, those in the mode at ``(-5, -5)``."""
    return float(np.mean(x[:, 0] < 0))


def plain_langevin(gm: GaussianMixture, x0: np.ndarray, *, n_steps: int, step_size: float,
                   seed: int) -> np.ndarray:
    """Langevin dynamics on the exact data score (noise level 0).

    ``x + h s(x) + sqrt(2 h) z`` for ``n_steps`` steps of size ``h``: the
    annealed sampler with a single level, a score that ignores the level and
    no final denoising step.
    """
    return annealed_langevin(lambda x, _sigma: gm.score(x), x0, [1.0], n_steps_each=n_steps,
                             step_lr=step_size, seed=seed, denoise=False, progress=False)


def scorekit_annealed(gm: GaussianMixture, x0: np.ndarray, sigmas: np.ndarray, *,
                      n_steps_each: int, step_lr: float, seed: int,
                      denoise: bool = False) -> np.ndarray:
    """Annealed Langevin dynamics with the exact scores of the noised mixture.

    Without ``denoise`` (Algorithm 1 of the paper) the samples follow the
    mixture convolved with ``N(0, sigmas[-1]**2 I)``; with it, a final Tweedie
    step maps them to posterior means.
    """
    return annealed_langevin(gm.score, x0, sigmas, n_steps_each=n_steps_each, step_lr=step_lr,
                             seed=seed, denoise=denoise, progress=False)


def numpy_annealed(x0: np.ndarray, sigmas: np.ndarray, *, n_steps_each: int, step_lr: float,
                   seed: int, denoise: bool = False) -> np.ndarray:
    """The annealed Langevin loop in pure NumPy, the baseline of the timing.

    Same algorithm as :func:`scorekit.annealed_langevin` (step sizes
    ``step_lr * (sigma_i / sigma_L)**2``, optionally a final Tweedie step), with
    ``numpy.random.default_rng(seed)`` normals and the exact score of
    :func:`scorekit.reference.gmm_score`. The noise differs, so the samples
    agree with scorekit's in distribution only.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x0, dtype=np.float64)
    for sigma in sigmas:
        a = step_lr * (sigma / sigmas[-1]) ** 2
        for _ in range(n_steps_each):
            z = rng.standard_normal(x.shape)
            x = x + a * reference.gmm_score(MEANS, STDS, WEIGHTS, x, sigma) + math.sqrt(2 * a) * z
    if denoise:
        x = x + sigmas[-1] ** 2 * reference.gmm_score(MEANS, STDS, WEIGHTS, x, sigmas[-1])
    return x


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)`` of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run(args: argparse.Namespace) -> DemoResult:
    """Run both samplers (and the NumPy baseline) with the parsed options."""
    gm = mixture()
    start_seed, plain_seed, annealed_seed = stream_seeds(args.seed)
    x0 = start_points(args.chains, start_seed)
    sigmas = geometric_sigmas(args.sigma_max, args.sigma_min, args.levels)
    plain, plain_s = timed(plain_langevin, gm, x0, n_steps=args.levels * args.steps_each,
                           step_size=args.step_lr, seed=plain_seed)
    annealed, annealed_s = timed(scorekit_annealed, gm, x0, sigmas, n_steps_each=args.steps_each,
                                 step_lr=args.step_lr, seed=annealed_seed, denoise=args.denoise)
    result = DemoResult(n_chains=args.chains, true_fraction=float(WEIGHTS[0]),
                        plain_fraction=mode_fraction(plain),
                        annealed_fraction=mode_fraction(annealed), plain_seconds=plain_s,
                        annealed_seconds=annealed_s, plain_samples=plain,
                        annealed_samples=annealed)
    if args.baseline:
        base, base_s = timed(numpy_annealed, x0, sigmas, n_steps_each=args.steps_each,
                             step_lr=args.step_lr, seed=annealed_seed, denoise=args.denoise)
        result.numpy_fraction, result.numpy_seconds = mode_fraction(base), base_s
    return result


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def report(args: argparse.Namespace, result: DemoResult) -> str:
    """The text the demo prints."""
    total = args.levels * args.steps_each
    w = result.true_fraction
    schedule = (f"{args.levels} geometric levels {args.sigma_max:g} -> {args.sigma_min:g}, "
                f"{args.steps_each} steps each, step_lr {args.step_lr:g} "
                "(a_i = step_lr (sigma_i / sigma_min)^2)")
    if args.denoise:
        schedule += ", final denoising step"
    lines = [
        f"scorekit demo: {w:g} N((-5,-5), I) + {1 - w:g} N((5,5), I), {args.chains} chains "
        f"started uniformly in [-{BOX:g}, {BOX:g}]^2, float64, seed {args.seed}",
        f"  plain Langevin:    {total} steps of size {args.step_lr:g} on the exact data score "
        "(sigma = 0)",
        f"  annealed Langevin: {schedule}",
        "",
        f"{'fraction of samples in each mode':36s}{'(-5,-5)':>7s}  {'(5,5)':>7s}",
    ]
    for label, frac in (("true weights", w), ("plain Langevin", result.plain_fraction),
                        ("annealed Langevin", result.annealed_fraction)):
        frac = round(frac, 3)  # so the two columns add up to 1
        lines.append(f"  {label:34s}{frac:7.3f}  {1 - frac:7.3f}")
    lines += [
        "",
        f"wall time of annealed Langevin, one run each ({result.n_chains} chains x {total} "
        "steps)",
        f"  {f'scorekit ({_threads(get_num_threads())})':34s}{result.annealed_seconds:7.2f} s",
    ]
    if result.numpy_seconds is not None:
        lines += [
            f"  {'pure NumPy (reference.gmm_score)':34s}{result.numpy_seconds:7.2f} s"
            f"   (its fraction at (-5,-5): {result.numpy_fraction:.3f})",
            f"  {'NumPy / scorekit':34s}{result.speedup:7.1f}x",
        ]
    lines.append(f"  {'(plain Langevin with scorekit)':34s}{result.plain_seconds:7.2f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------


def load_matplotlib():
    """The Agg canvas and the Figure class, or SystemExit naming the extra to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SystemExit(f"{PROG}: {MISSING_MATPLOTLIB}") from None
    return FigureCanvasAgg, Figure


def figure_path(path: Path, canvas_cls) -> Path:
    """The file the figure goes to: ``path``, with ``.png`` added when it has no suffix
    (as matplotlib would); SystemExit before any sampling when matplotlib cannot write
    its format."""
    if not path.suffix:
        return path.with_name(path.name + ".png")
    formats = canvas_cls.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise SystemExit(f"{PROG}: --figure: matplotlib cannot write {path.suffix!r} files "
                         f"(it writes {', '.join(sorted(formats))})")
    return path


def density_grid(gm: GaussianMixture, n: int):
    """Grid axes and the mixture density ``exp(log_prob(x, 0))`` on an ``n x n`` grid."""
    axis = np.linspace(-PLOT_HALF_WIDTH, PLOT_HALF_WIDTH, n)
    xx, yy = np.meshgrid(axis, axis)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    return xx, yy, np.exp(gm.log_prob(pts, 0.0)).reshape(xx.shape)


def score_grid(gm: GaussianMixture, n: int):
    """Grid coordinates and the data score ``gm.score(x, 0)`` on an ``n x n`` grid."""
    axis = np.linspace(-PLOT_HALF_WIDTH, PLOT_HALF_WIDTH, n)
    xx, yy = np.meshgrid(axis, axis)
    s = gm.score(np.column_stack([xx.ravel(), yy.ravel()]), 0.0)
    return xx, yy, s[:, 0].reshape(xx.shape), s[:, 1].reshape(xx.shape)


def _square(ax, title):
    lim = (-PLOT_HALF_WIDTH, PLOT_HALF_WIDTH)
    ax.set(xlim=lim, ylim=lim, aspect="equal", title=title)


def _samples_panel(ax, x, title):
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3, color="tab:blue", linewidths=0,
               rasterized=True)
    _square(ax, title)


def write_figure(path: Path, result: DemoResult, *, sigma_min: float, denoise: bool) -> None:
    """Three panels: density and score field, plain Langevin, annealed Langevin samples.

    The annealed panel's title says where that sampler ends: at noise level
    ``sigma_min`` (samples of the smoothed mixture) or, with ``denoise``,
    after the Tweedie step.
    """
    canvas_cls, figure_cls = load_matplotlib()
    gm = mixture()
    fig = figure_cls(figsize=(13.5, 4.6), layout="constrained")
    canvas_cls(fig)
    ax_data, ax_plain, ax_annealed = fig.subplots(1, 3, sharex=True, sharey=True)

    xx, yy, dens = density_grid(gm, 241)
    ax_data.pcolormesh(xx, yy, dens, cmap="viridis", shading="auto", rasterized=True)
    sx, sy, u, v = score_grid(gm, 21)
    ax_data.quiver(sx, sy, u, v, color="white", alpha=0.8)
    _square(ax_data, "data density and score\n(exact, noise level 0)")

    _samples_panel(ax_plain, result.plain_samples,
                   f"Langevin dynamics\n{result.plain_fraction:.1%} of samples at (-5,-5)")
    ends = "denoised" if denoise else f"ends at sigma {sigma_min:g}"
    _samples_panel(ax_annealed, result.annealed_samples,
                   f"annealed Langevin ({ends})\n"
                   f"{result.annealed_fraction:.1%} of samples at (-5,-5)")
    fig.suptitle(f"{WEIGHTS[0]:g} N((-5,-5), I) + {WEIGHTS[1]:g} N((5,5), I), "
                 f"{result.n_chains} chains from U([-{BOX:g}, {BOX:g}]^2)")
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _int_at_least(minimum: int):
    """An argparse type: an int >= minimum."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value
    return parse


_positive_int, _seed, _levels = _int_at_least(1), _int_at_least(0), _int_at_least(2)


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The demo's argument parser."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Plain versus annealed Langevin dynamics on 0.2 N((-5,-5), I) + "
                    "0.8 N((5,5), I) with exact scores (Song & Ermon 2019, Figure 3).")
    p.add_argument("--chains", type=_positive_int, default=10_000, metavar="N",
                   help="number of chains of each method (default: %(default)s)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of all noise (default: %(default)s)")
    p.add_argument("--levels", type=_levels, default=10,
                   help="number of noise levels of annealed Langevin (default: %(default)s)")
    p.add_argument("--sigma-max", type=_positive_float, default=20.0,
                   help="largest noise level (default: %(default)s)")
    p.add_argument("--sigma-min", type=_positive_float, default=1.0,
                   help="smallest noise level (default: %(default)s)")
    p.add_argument("--steps-each", type=_positive_int, default=100,
                   help="Langevin steps per noise level; plain Langevin runs levels x steps-each "
                        "steps (default: %(default)s)")
    p.add_argument("--step-lr", type=_positive_float, default=0.1,
                   help="step size at the smallest level, and of plain Langevin "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="scorekit threads for the run (default: scorekit.get_num_threads())")
    p.add_argument("--denoise", action="store_true",
                   help="end annealed Langevin with the Tweedie step "
                        "x + sigma_min^2 s(x, sigma_min) (default: off, as in the paper's "
                        "Algorithm 1)")
    p.add_argument("--figure", type=Path, default=Path("scorekit-demo.png"), metavar="PATH",
                   help="where to write the figure (default: %(default)s)")
    p.add_argument("--no-figure", dest="figure", action="store_const", const=None,
                   help="do not write a figure (no matplotlib needed)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the pure-NumPy timing")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse and cross-check the options."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sigma_min >= args.sigma_max:
        parser.error(f"--sigma-min ({args.sigma_min:g}) must be below --sigma-max "
                     f"({args.sigma_max:g})")
    if args.figure is not None and not args.figure.parent.is_dir():
        parser.error(f"--figure: no directory {str(args.figure.parent)!r}")
    if args.figure is not None and args.figure.is_dir():
        parser.error(f"--figure: {str(args.figure)!r} is a directory")
    return args


def _set_threads(n: int) -> None:
    try:
        set_num_threads(n)
    except ValueError as err:
        raise SystemExit(f"{PROG}: --threads: {err}") from None


def main(argv: Sequence[str] | None = None) -> DemoResult:
    """Run the demo: print the mode fractions and timings, write the figure.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line options (default: none, so the defaults).

    Returns
    -------
    DemoResult
        The fractions, timings, samples and figure path.

    Raises
    ------
    SystemExit
        On bad options (from argparse), a thread count scorekit refuses, or
        when a figure is requested and matplotlib is missing; all checked
        before any sampling.
    """
    args = parse_args([] if argv is None else list(argv))
    if args.figure is not None:
        args.figure = figure_path(args.figure, load_matplotlib()[0])
    before = get_num_threads()
    try:
        if args.threads is not None:
            _set_threads(args.threads)
        result = run(args)
        print(report(args, result), flush=True)
    finally:
        set_num_threads(before)
    if args.figure is not None:
        write_figure(args.figure, result, sigma_min=args.sigma_min, denoise=args.denoise)
        result.figure = args.figure
        print(f"figure: {args.figure}")
    return result
