"""Time the Gaussian-mixture kernels and the sampler steps against NumPy.

    python benchmarks/samplers_bench.py [--markdown] [--quick]

Two tables:

1. ``GaussianMixture.score`` / ``log_prob`` / ``score_divergence`` at one
   scalar noise level, against NumPy log-sum-exp over a ``(B, K, D)`` array
   (for the divergence: the closed form
   ``sum_k r_k (|g_k|^2 - sum_j 1 / v_kj) - |s|^2``, no ``(B, D, D)`` Jacobian).
2. ``predictor_step`` (VPSDE, reverse diffusion, in place), ``corrector_step``
   (SNR Langevin corrector, in place) and ``mala_accept`` on ``(B, 1000)``
   arrays, against the NumPy code of the score-SDE reference implementation.

Every row times scorekit and its baseline in the same run, interleaved
(``scorekit._bench.time_interleaved``), and reports medians; speed-up is the
ratio of the two medians. The baselines run on one thread (NumPy); scorekit
uses its default thread count unless the row says otherwise.
The last column, "other CPU", is how many cores other processes kept busy
while the row was timed (from /proc/stat; "n/a" elsewhere): rows above ~0.2
were timed against other jobs and should be rerun on a quiet machine.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import scorekit
from scorekit._bench import (
    TimingPolicy,
    _fmt_count as fmt_count,
    _fmt_rate as fmt_rate,
    _fmt_time as fmt_time,
    available_cpus,
    copy_bandwidth,
    cpu_model,
    time_interleaved,
)

SEED = 20240917
INPUT_SEED = 7
SIGMA = 0.5  # noise level of the mixture kernels
T = 0.5  # time of the predictor step
SNR = 0.16  # corrector signal-to-noise ratio
MALA_STEP = 0.01
#: Scale of the Gaussian target of the MALA inputs; with D = 1000 and h = 0.01
#: it gives an acceptance rate near one half, so both branches are taken.
MALA_TARGET_STD = 0.25
STEP_DIM = 1000

# (D, K, B): B*K*D = 4e6 for D = 2 and 2e7 for D = 784, so that one NumPy call
# stays below ~0.5 s here (NumPy pays a per-(B, K) cost on its short D = 2 axes).
GMM_CASES = (
    (2, 2, 1_000_000),
    (2, 10, 200_000),
    (2, 100, 20_000),
    (784, 2, 12_800),
    (784, 10, 2_560),
    (784, 100, 256),
)
GMM_KERNELS = ("score", "log_prob", "score_divergence")
STEP_SIZES = (1_000_000, 17_000_000)
STEP_KERNELS = ("predictor_step", "corrector_step", "mala_accept")
#: Kernels that get an extra one-thread row at the largest size.
STEP_ONE_THREAD = ("predictor_step", "corrector_step")


def _busy_cpu_s() -> float | None:
    """CPU seconds spent by the whole machine (all CPUs, steal included), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            vals = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + vals[4]  # idle + iowait
    return (sum(vals) - idle) / os.sysconf("SC_CLK_TCK")


def measure(f_sk, f_np, policy: TimingPolicy):
    """``time_interleaved`` plus the CPU cores other processes used meanwhile (None off Linux)."""
    busy0, own0, wall0 = _busy_cpu_s(), time.process_time(), time.perf_counter()
    t_sk, t_np = time_interleaved(f_sk, f_np, policy)
    busy1, own1, wall1 = _busy_cpu_s(), time.process_time(), time.perf_counter()
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    return t_sk, t_np, others


FULL = {
    "gmm": TimingPolicy(target_s=2.0, min_reps=7, max_reps=2_000),
    "steps": TimingPolicy(target_s=1.0, min_reps=9, max_reps=2_000),
    "copy": TimingPolicy(target_s=0.5, min_reps=10, max_reps=2_000),
}
QUICK = {
    "gmm": TimingPolicy(target_s=0.2, min_reps=3, max_reps=200),
    "steps": TimingPolicy(target_s=0.2, min_reps=3, max_reps=200),
    "copy": TimingPolicy(target_s=0.1, min_reps=5, max_reps=200),
}


# --------------------------------------------------------------------------
# NumPy baselines of the mixture kernels
# --------------------------------------------------------------------------


def np_gmm_terms(means, stds, weights, x, sigma):
    """Log-density, responsibilities, differences and variances, over (B, K, D)."""
    var = (stds**2)[:, None] + sigma**2  # (K, 1): isotropic components
    v = np.broadcast_to(var, means.shape)  # (K, D)
    d = x[:, None, :] - means[None]  # (B, K, D)
    logits = (
        np.log(weights)
        - 0.5 * np.sum(d * d / v, axis=2)
        - 0.5 * np.sum(np.log(2 * np.pi * v), axis=1)
    )  # (B, K)
    top = logits.max(axis=1, keepdims=True)
    log_p = top[:, 0] + np.log(np.sum(np.exp(logits - top), axis=1))
    resp = np.exp(logits - log_p[:, None])
    return log_p, resp, d, v


def np_gmm_log_prob(means, stds, weights, x, sigma):
    return np_gmm_terms(means, stds, weights, x, sigma)[0]


def np_gmm_score(means, stds, weights, x, sigma):
    _, resp, d, v = np_gmm_terms(means, stds, weights, x, sigma)
    return np.sum(resp[:, :, None] * (-d / v), axis=1)


def np_gmm_score_divergence(means, stds, weights, x, sigma):
    """Closed form: sum_k r_k (|g_k|^2 - sum_j 1 / v_kj) - |s|^2, g_k = -(x - mu_k) / v_k."""
    _, resp, d, v = np_gmm_terms(means, stds, weights, x, sigma)
    g = -d / v  # (B, K, D)
    s = np.sum(resp[:, :, None] * g, axis=1)  # (B, D)
    inv_v = np.sum(1.0 / v, axis=1)  # (K,)
    return np.sum(resp * (np.sum(g * g, axis=2) - inv_v), axis=1) - np.sum(s * s, axis=1)


NP_GMM = {
    "score": np_gmm_score,
    "log_prob": np_gmm_log_prob,
    "score_divergence": np_gmm_score_divergence,
}


@dataclass
class GmmCase:
    D: int
    K: int
    B: int

    def build(self):
        rng = np.random.default_rng(INPUT_SEED + 1000 * self.D + self.K)
        means = 2.0 * rng.standard_normal((self.K, self.D))
        stds = rng.uniform(0.5, 1.5, self.K)
        weights = rng.dirichlet(np.ones(self.K))
        gm = scorekit.GaussianMixture(means, stds, weights)
        x = gm.sample(self.B, seed=SEED, counter=self.K) + SIGMA * rng.standard_normal((self.B, self.D))
        return gm, means, stds, weights, x


def _agree(name: str, a: np.ndarray, b: np.ndarray) -> None:
    err = float(np.max(np.abs(a - b)))
    scale = 1.0 + float(np.max(np.abs(b)))
    if not err <= 1e-7 * scale:
        raise RuntimeError(f"{name}: scorekit and NumPy disagree (max abs diff {err:.3g}, scale {scale:.3g})")


def run_gmm(quick: bool, policy: TimingPolicy) -> list[dict[str, Any]]:
    default_threads = scorekit.get_num_threads()
    cases = [GmmCase(D, K, B // 10 if quick else B) for D, K, B in GMM_CASES]
    largest = cases[-1]
    rows = []
    for case in cases:
        gm, means, stds, weights, x = case.build()
        thread_counts = [default_threads] + ([1] if case is largest and default_threads != 1 else [])
        for kernel in GMM_KERNELS:
            sk_fn = getattr(gm, kernel)
            np_fn = NP_GMM[kernel]

            def f_sk(sk_fn=sk_fn):
                return sk_fn(x, SIGMA)

            def f_np(np_fn=np_fn):
                return np_fn(means, stds, weights, x, SIGMA)

            _agree(f"{kernel} D={case.D} K={case.K}", f_sk(), f_np())
            for threads in thread_counts:
                scorekit.set_num_threads(threads)
                try:
                    f_sk()
                    t_sk, t_np, others = measure(f_sk, f_np, policy)
                finally:
                    scorekit.set_num_threads(default_threads)
                med_sk, med_np = float(np.median(t_sk)), float(np.median(t_np))
                rows.append(
                    dict(kernel=kernel, B=case.B, K=case.K, D=case.D, threads=threads, reps=t_sk.size,
                         sk=med_sk, np=med_np, speedup=med_np / med_sk, others=others)
                )
        del gm, x
        gc.collect()
    return rows


# --------------------------------------------------------------------------
# Sampler steps
# --------------------------------------------------------------------------


class StepInputs:
    def __init__(self, n: int, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.B, self.D = n // STEP_DIM, STEP_DIM
        self.n = self.B * self.D
        rng = np.random.default_rng(INPUT_SEED)
        shape = (self.B, self.D)
        self.x = rng.standard_normal(shape, dtype=self.dtype)
        self.score = rng.standard_normal(shape, dtype=self.dtype)
        # MALA: a proposal of the Gaussian target N(0, tau^2 I) from x.
        tau2 = MALA_TARGET_STD**2
        h = MALA_STEP
        self.mx = (MALA_TARGET_STD * self.x).astype(self.dtype)
        self.mscore = (-self.mx / self.dtype.type(tau2)).astype(self.dtype)
        self.mlogp = -0.5 * np.sum(self.mx.astype(np.float64) ** 2, axis=1) / tau2
        z = rng.standard_normal(shape, dtype=self.dtype)
        self.prop = (self.mx + h * self.mscore + math.sqrt(2 * h) * z).astype(self.dtype)
        self.sprop = (-self.prop / self.dtype.type(tau2)).astype(self.dtype)
        self.lprop = -0.5 * np.sum(self.prop.astype(np.float64) ** 2, axis=1) / tau2


def sk_predictor(inp: StepInputs):
    sde = scorekit.VPSDE()
    x, score = inp.x.copy(), inp.score
    counter = itertools.count()

    def call():
        return scorekit.predictor_step(sde, x, score, T, kind="reverse_diffusion", seed=SEED,
                                       counter=next(counter), out=x)

    return call


def np_predictor(inp: StepInputs):
    f, G = (float(v) for v in scorekit.VPSDE().discrete_coeffs(T))  # Python floats keep float32
    rng = np.random.default_rng(SEED)
    state = {"x": inp.x.copy()}
    score = inp.score

    def call():
        x = state["x"]
        x_mean = x - f * x + G**2 * score
        x = x_mean + G * rng.standard_normal(x.shape, dtype=x.dtype)
        state["x"] = x
        return x, x_mean

    return call


def sk_corrector(inp: StepInputs):
    x, score = inp.x.copy(), inp.score
    counter = itertools.count()

    def call():
        return scorekit.corrector_step(x, score, snr=SNR, seed=SEED, counter=next(counter), out=x)

    return call


def np_corrector(inp: StepInputs):
    rng = np.random.default_rng(SEED)
    state = {"x": inp.x.copy()}
    score = inp.score
    B = score.shape[0]
    alpha = 1.0

    def call():
        x = state["x"]
        noise = rng.standard_normal(x.shape, dtype=x.dtype)
        grad_norm = np.linalg.norm(score.reshape(B, -1), axis=-1).mean()
        noise_norm = np.linalg.norm(noise.reshape(B, -1), axis=-1).mean()
        step_size = (SNR * noise_norm / grad_norm) ** 2 * 2 * alpha
        x_mean = x + step_size * score
        x = x_mean + np.sqrt(step_size * 2) * noise
        state["x"] = x
        return x, x_mean, step_size

    return call


def sk_mala(inp: StepInputs):
    counter = itertools.count()
    args = (inp.mx, inp.mscore, inp.mlogp, inp.prop, inp.sprop, inp.lprop, MALA_STEP)

    def call():
        return scorekit.mala_accept(*args, seed=SEED, counter=next(counter))

    return call


def np_mala(inp: StepInputs):
    rng = np.random.default_rng(SEED)
    x, score, logp = inp.mx, inp.mscore, inp.mlogp
    prop, sprop, lprop = inp.prop, inp.sprop, inp.lprop
    h = MALA_STEP
    B = x.shape[0]

    def call():
        fwd = prop - x - h * score  # x' - x - h s(x)
        bwd = x - prop - h * sprop  # x - x' - h s(x')
        fwd2 = np.einsum("bd,bd->b", fwd, fwd)
        bwd2 = np.einsum("bd,bd->b", bwd, bwd)
        log_r = lprop - logp + (fwd2 - bwd2) / (4 * h)
        accept = np.log(rng.random(B)) < log_r
        return (np.where(accept[:, None], prop, x), np.where(accept[:, None], sprop, score),
                np.where(accept, lprop, logp), accept)

    return call


STEP_FACTORIES: dict[str, tuple[Callable, Callable, int]] = {
    # name: (scorekit, numpy, arrays of B x D that must move: reads + writes)
    "predictor_step": (sk_predictor, np_predictor, 3),  # read x, score; write x
    "corrector_step": (sk_corrector, np_corrector, 3),  # read x, score; write x
    "mala_accept": (sk_mala, np_mala, 6),  # read x, s, x', s'; write x, s
}


def _accept_rate(result) -> float:
    return float(np.mean(result[3] if not hasattr(result, "accepted") else result.accepted))


def run_steps(quick: bool, policy: TimingPolicy, bw: float) -> tuple[list[dict[str, Any]], dict]:
    default_threads = scorekit.get_num_threads()
    sizes = STEP_SIZES[:1] if quick else STEP_SIZES
    dtypes = ("float32",) if quick else ("float32", "float64")
    rows, notes = [], {}
    for dtype in dtypes:
        for n in sizes:
            inp = StepInputs(n, dtype)
            for kernel in STEP_KERNELS:
                make_sk, make_np, arrays = STEP_FACTORIES[kernel]
                counts = [default_threads]
                if n == max(sizes) and kernel in STEP_ONE_THREAD and default_threads != 1:
                    counts.append(1)
                for threads in counts:
                    scorekit.set_num_threads(threads)
                    try:
                        f_sk, f_np = make_sk(inp), make_np(inp)
                        r_sk, r_np = f_sk(), f_np()
                        out_sk = r_sk[0]
                        if out_sk.dtype != inp.dtype or r_np[0].dtype != inp.dtype:
                            raise RuntimeError(f"{kernel}: dtype changed ({out_sk.dtype}, {r_np[0].dtype})")
                        if not np.all(np.isfinite(out_sk)):
                            raise RuntimeError(f"{kernel}: non-finite scorekit result")
                        if kernel == "mala_accept":
                            notes[(dtype, n)] = (_accept_rate(r_sk), _accept_rate(r_np))
                        del r_sk, r_np, out_sk
                        t_sk, t_np, others = measure(f_sk, f_np, policy)
                    finally:
                        scorekit.set_num_threads(default_threads)
                    f_sk = f_np = None
                    med_sk, med_np = float(np.median(t_sk)), float(np.median(t_np))
                    nbytes = arrays * inp.n * inp.dtype.itemsize
                    rows.append(
                        dict(kernel=kernel, dtype=dtype, B=inp.B, D=inp.D, n=inp.n, threads=threads,
                             reps=t_sk.size, sk=med_sk, np=med_np, speedup=med_np / med_sk,
                             sk_rate=inp.n / med_sk, np_rate=inp.n / med_np,
                             copy_frac=nbytes / med_sk / bw, others=others)
                    )
                    gc.collect()
            del inp
            gc.collect()
    return rows, notes


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------




def fmt_others(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def table(header: list[str], body: list[list[str]], markdown: bool, left: int) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(header) + " |",
               "|" + "|".join(":---" if i < left else "---:" for i in range(len(header))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in body]
        return out
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body]


def report(machine, gmm_rows, step_rows, notes, markdown: bool) -> str:
    out = []
    bullet = "- " if markdown else ""
    for key, value in machine.items():
        out.append(f"{bullet}**{key}**: {value}" if markdown else f"{key}: {value}")
    out.append("")
    out.append(f"GaussianMixture kernels, float64, sigma = {SIGMA} (scalar), isotropic components:")
    out.append("")
    body = [
        [r["kernel"], fmt_count(r["B"]), str(r["K"]), str(r["D"]), fmt_count(r["B"] * r["K"] * r["D"]),
         str(r["threads"]), fmt_time(r["sk"]), fmt_time(r["np"]), f"{r['speedup']:.2f}x",
         f"{r['sk'] / (r['B'] * r['K'] * r['D']) * 1e9:.2f}", fmt_others(r["others"])]
        for r in gmm_rows
    ]
    out += table(["kernel", "B", "K", "D", "B*K*D", "threads", "scorekit median", "NumPy median",
                  "speed-up", "scorekit ns/(B*K*D)", "other CPU"], body, markdown, 1)
    out.append("")
    out.append(f"Sampler steps, rows of D = {STEP_DIM} (N = B x D elements):")
    out.append("")
    body = [
        [r["kernel"], r["dtype"], fmt_count(r["n"]), fmt_count(r["B"]), str(r["threads"]), fmt_time(r["sk"]),
         fmt_time(r["np"]), fmt_rate(r["sk_rate"]), fmt_rate(r["np_rate"]), f"{r['speedup']:.2f}x",
         f"{100 * r['copy_frac']:.0f}%", fmt_others(r["others"])]
        for r in step_rows
    ]
    out += table(["kernel", "dtype", "N", "B", "threads", "scorekit median", "NumPy median",
                  "scorekit elem/s", "NumPy elem/s", "speed-up", "% copy BW", "other CPU"], body, markdown, 2)
    out.append("")
    out.append("Times are medians over interleaved repeats (scorekit and NumPy alternate, order swapped "
               "every round); speed-up = NumPy median / scorekit median.")
    out.append("% copy BW = (bytes that must move / scorekit median) / copy bandwidth; predictor_step and "
               "corrector_step: read x and score, write x (3 N); mala_accept: read x, score, x', score', "
               "write x and score (6 N).")
    out.append("predictor_step and corrector_step update x in place (out=x) with a fresh counter per call; "
               "the baselines draw numpy.random.Generator normals and allocate.")
    out.append("other CPU = cores busy with other processes during the row (from /proc/stat, machine "
               "total minus this process; steal included): rows above ~0.2 were timed against other jobs.")
    busy = [r for r in gmm_rows + step_rows if r["others"] is not None and r["others"] > 0.2]
    if busy:
        out.append(f"{len(busy)} of {len(gmm_rows) + len(step_rows)} rows ran with other CPU above 0.2.")
    if notes:
        acc = ", ".join(f"{d} N={fmt_count(n)}: {a:.0%} / {b:.0%}" for (d, n), (a, b) in notes.items())
        out.append(f"mala_accept acceptance rate of the inputs (scorekit / NumPy): {acc}.")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/samplers_bench.py", description=__doc__.split("\n")[0])
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--quick", action="store_true",
                   help="smaller mixtures (B / 10), steps at N = 1e6 float32 only, shorter measurements")
    args = p.parse_args(argv)
    pol = QUICK if args.quick else FULL
    load_start = os.getloadavg()

    step_sizes = STEP_SIZES[:1] if args.quick else STEP_SIZES
    copy_bytes = max(64 * 2**20, max(step_sizes) // STEP_DIM * STEP_DIM * 8)
    bw = copy_bandwidth(copy_bytes, pol["copy"])
    gmm_rows = run_gmm(args.quick, pol["gmm"])
    step_rows, notes = run_steps(args.quick, pol["steps"], bw["bytes_per_s"])
    load_end = os.getloadavg()

    info = scorekit.build_info()
    machine = {
        "scorekit": f"{scorekit.__version__} (" + ", ".join(f"{k}={v}" for k, v in info.items() if k != "version") + ")",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "CPU": cpu_model(),
        "nproc": available_cpus(),
        "scorekit threads": f"{scorekit.get_num_threads()} by default",
        "copy bandwidth": f"{bw['bytes_per_s'] / 1e9:.2f} GB/s (np.copyto, {bw['bytes'] / 2**20:.0f} MiB float32, "
                          "read + write, one thread)",
        "load average (1, 5, 15 min)": f"{load_start[0]:.2f}, {load_start[1]:.2f}, {load_start[2]:.2f} at start; "
                                       f"{load_end[0]:.2f}, {load_end[1]:.2f}, {load_end[2]:.2f} at end",
    }
    sys.stdout.write(report(machine, gmm_rows, step_rows, notes, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
