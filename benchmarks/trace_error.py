"""Trace estimator error against the matvec budget: ``python benchmarks/trace_error.py [--markdown]``.

A batch of ``B = 200`` copies of one ``D = 200`` symmetric positive
semi-definite matrix ``A = Q diag(lambda) Q^T`` (``Q`` a fixed random
orthogonal matrix) is handed to :func:`scorekit.hutchinson` (Rademacher
probes), :func:`scorekit.hutchpp` (Rademacher) and :func:`scorekit.xtrace`
(sphere) through one batched matvec ``(B, m, D) -> (B, m, D)``. Every sample
draws its own probes, so the ``B`` estimates are independent draws of the
estimator. For each spectrum and budget ``m`` (matvecs per sample) the table
gives

* rel. RMS error: ``sqrt(mean((estimate - tr A)**2)) / tr A`` over the ``B``
  samples;
* stderr / RMS: the median reported ``stderr`` over the ``B`` samples divided
  by the RMS error (about 1 when the reported error is calibrated; below 1
  when it is optimistic). For Hutch++ the reported ``stderr`` covers only its
  residual Hutchinson term.

Spectra: ``lambda_i = i**-2`` and ``lambda_i = 0.9**i`` (decaying: the
low-rank sketch of Hutch++ / XTrace captures most of the trace), ``lambda_i
= 1`` (flat; note that this makes ``A`` the identity, on which Rademacher and
sphere probes are exact, so only Hutch++'s Rademacher residual term is left
with an error), and ``lambda_i`` uniform in ``[0.5, 1.5]`` (flat but not the
identity: nothing for the sketch to capture).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import scorekit

B = 200
D = 200
BUDGETS = (12, 24, 48, 96, 192)
SEED = 20261126
MATRIX_SEED = 11


def spectra() -> dict[str, np.ndarray]:
    """Eigenvalue sequences ``lambda_1 .. lambda_D`` by label."""
    i = np.arange(1, D + 1, dtype=np.float64)
    return {
        "i^-2": i**-2.0,
        "0.9^i": 0.9**i,
        "flat (1)": np.ones(D),
        "flat U[0.5,1.5]": np.random.default_rng(MATRIX_SEED + 1).uniform(0.5, 1.5, D),
    }


def psd_matrix(lam: np.ndarray) -> np.ndarray:
    """``Q diag(lam) Q^T`` with a fixed random orthogonal ``Q`` (exactly symmetric)."""
    q, r = np.linalg.qr(np.random.default_rng(MATRIX_SEED).standard_normal((D, D)))
    q *= np.sign(np.diag(r))
    a = (q * lam) @ q.T
    return 0.5 * (a + a.T)


def batched_matvec(a: np.ndarray):
    """The batched matvec ``(B, m, D) -> (B, m, D)`` of ``B`` copies of symmetric `a`."""

    def matvec(x: np.ndarray) -> np.ndarray:
        return x @ a  # x_k^T A = (A x_k)^T for symmetric A

    return matvec


def estimate(name: str, matvec, m: int):
    shape = (B, D)
    if name == "Hutchinson":
        return scorekit.hutchinson(matvec, shape, num_probes=m, kind="rademacher", seed=SEED,
                                   block=m, batched=True)
    if name == "Hutch++":
        return scorekit.hutchpp(matvec, shape, num_matvecs=m, kind="rademacher", seed=SEED,
                                batched=True)
    if name == "XTrace":
        return scorekit.xtrace(matvec, shape, num_matvecs=m, kind="sphere", seed=SEED, batched=True)
    raise ValueError(name)


ESTIMATORS = ("Hutchinson", "Hutch++", "XTrace")


def measure() -> list[dict]:
    rows = []
    for label, lam in spectra().items():
        a = psd_matrix(lam)
        tr = float(np.trace(a))
        matvec = batched_matvec(a)
        for m in BUDGETS:
            row = {"spectrum": label, "m": m, "trace": tr}
            for name in ESTIMATORS:
                res = estimate(name, matvec, m)
                est = np.asarray(res.estimate, dtype=np.float64)
                err = np.asarray(res.stderr, dtype=np.float64)
                used = np.asarray(res.num_matvecs)
                if not np.all(used == m):
                    raise RuntimeError(f"{name} used {np.unique(used)} matvecs, budget {m}")
                rms = float(np.sqrt(np.mean((est - tr) ** 2)))
                row[name] = {
                    "rel_rms": rms / tr,
                    "calibration": float(np.median(err)) / rms if rms > 0 else float("nan"),
                }
            rows.append(row)
    return rows


def _fmt_err(x: float) -> str:
    return f"{x:.2e}"


#: Relative RMS errors below this are rounding error (the estimator is exact).
EXACT_BELOW = 1e-12


def _fmt_cal(x: float, rel_rms: float) -> str:
    if rel_rms < EXACT_BELOW:
        return "exact"
    return "nan" if not np.isfinite(x) else f"{x:.2f}"


COLUMNS = (
    "spectrum",
    "m",
    "Hutchinson rel. RMS",
    "Hutch++ rel. RMS",
    "XTrace rel. RMS",
    "Hutchinson stderr/RMS",
    "Hutch++ stderr/RMS",
    "XTrace stderr/RMS",
)


def cells(row: dict) -> list[str]:
    return (
        [row["spectrum"], str(row["m"])]
        + [_fmt_err(row[n]["rel_rms"]) for n in ESTIMATORS]
        + [_fmt_cal(row[n]["calibration"], row[n]["rel_rms"]) for n in ESTIMATORS]
    )


def render(rows: list[dict], markdown: bool) -> str:
    body = [cells(r) for r in rows]
    if markdown:
        out = ["| " + " | ".join(COLUMNS) + " |",
               "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"]
        out += ["| " + " | ".join(c) + " |" for c in body]
    else:
        table = [list(COLUMNS)] + body
        widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]

        def fmt(line):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

        out = [fmt(table[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = measure()
    elapsed = time.perf_counter() - t0
    print(f"B = {B} samples of one D = {D} PSD matrix per spectrum; m = matvecs per sample; "
          f"scorekit {scorekit.__version__}, numpy {np.__version__}; {elapsed:.1f} s")
    print("Hutchinson: Rademacher probes, block = m; Hutch++: Rademacher; XTrace: sphere.")
    print("rel. RMS = sqrt(mean((est - tr)^2)) / tr over the B samples; "
          "stderr/RMS = median reported stderr / RMS error (Hutch++: residual term only; "
          f"'exact': rel. RMS below {EXACT_BELOW:g}, rounding only).")
    print()
    sys.stdout.write(render(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
