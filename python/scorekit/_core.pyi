"""Compiled kernels (internal; the public API validates and calls these)."""

from typing import Any

import numpy as np
import numpy.typing as npt

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def build_info() -> dict[str, Any]: ...
def normal(out: npt.NDArray[np.floating], seed: int, counter: int, offset: int) -> None: ...
def uniform(out: npt.NDArray[np.floating], seed: int, counter: int, offset: int) -> None: ...
def rademacher(out: npt.NDArray[np.floating], seed: int, counter: int, offset: int) -> None: ...
def normal_from_words(words: npt.NDArray[np.uint32], out: npt.NDArray[np.floating]) -> None: ...
def perturb(
    x: npt.NDArray[np.floating],
    scale: npt.NDArray[np.floating],
    sigma: npt.NDArray[np.floating],
    seed: int,
    counter: int,
    first_sample: int,
    out: npt.NDArray[np.floating],
) -> None: ...
def langevin_step(
    x: npt.NDArray[np.floating],
    score: npt.NDArray[np.floating],
    step_size: npt.NDArray[np.floating],
    seed: int,
    counter: int,
    first_sample: int,
    out: npt.NDArray[np.floating],
) -> None: ...
def dsm_loss(
    score: npt.NDArray[np.floating],
    noise: npt.NDArray[np.floating] | None,
    sigma: npt.NDArray[np.floating],
    weight: npt.NDArray[np.floating] | None,
    batch_scale: float,
    seed: int,
    counter: int,
    first_sample: int,
    row_loss: npt.NDArray[np.float64],
    grad: npt.NDArray[np.floating] | None,
) -> None: ...
def sum(values: npt.NDArray[np.float64]) -> float: ...
def set_simd(level: str) -> str: ...
def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> list[int]: ...
def probes(
    kind: str,
    out: npt.NDArray[np.floating],
    B: int,
    m: int,
    D: int,
    K: int,
    k0: int,
    seed: int,
    counter: int,
) -> None: ...
def trace_moments(
    V: npt.NDArray[np.floating],
    AV: npt.NDArray[np.floating],
    active: npt.NDArray[np.uint8] | None,
    t: npt.NDArray[np.float64],
    moments: npt.NDArray[np.float64],
    first: int = 0,
    first_bad: npt.NDArray[np.int64] | None = None,
) -> None: ...
def diagonal_moments(
    V: npt.NDArray[np.floating],
    AV: npt.NDArray[np.floating],
    count: float,
    mean: npt.NDArray[np.float64],
    m2: npt.NDArray[np.float64],
) -> None: ...
def ssm_loss(
    kind: str,
    score: npt.NDArray[np.floating],
    jvp: npt.NDArray[np.floating],
    K: int,
    variance_reduced: bool,
    batch_scale: float,
    seed: int,
    counter: int,
    first_sample: int,
    row_loss: npt.NDArray[np.float64],
    grad_score: npt.NDArray[np.floating] | None,
    grad_jvp: npt.NDArray[np.floating] | None,
) -> None: ...
def ism_loss(
    score: npt.NDArray[np.floating],
    trace: npt.NDArray[np.floating],
    batch_scale: float,
    row_loss: npt.NDArray[np.float64],
    grad_score: npt.NDArray[np.floating] | None,
) -> None: ...
def gmm_eval(
    means: npt.NDArray[np.float64],
    vars: npt.NDArray[np.float64],
    log_weights: npt.NDArray[np.float64],
    x: npt.NDArray[np.floating],
    sigma: npt.NDArray[np.float64],
    log_p: npt.NDArray[np.float64],
    score: npt.NDArray[np.floating] | None,
    div: npt.NDArray[np.float64] | None,
) -> None: ...
def affine_step(
    x: npt.NDArray[np.floating],
    score: npt.NDArray[np.floating],
    a: npt.NDArray[np.floating],
    c: npt.NDArray[np.floating],
    g: npt.NDArray[np.floating],
    seed: int,
    counter: int,
    first_sample: int,
    out: npt.NDArray[np.floating],
    out_mean: npt.NDArray[np.floating] | None,
) -> None: ...
def langevin_corrector(
    x: npt.NDArray[np.floating],
    score: npt.NDArray[np.floating],
    snr: float,
    alpha: npt.NDArray[np.floating],
    per_sample: bool,
    seed: int,
    counter: int,
    first_sample: int,
    out: npt.NDArray[np.floating],
    out_mean: npt.NDArray[np.floating] | None,
    step: npt.NDArray[np.float64],
) -> None: ...
def mala_accept(
    x: npt.NDArray[np.floating],
    score_x: npt.NDArray[np.floating],
    logp_x: npt.NDArray[np.float64],
    x_prop: npt.NDArray[np.floating],
    score_prop: npt.NDArray[np.floating],
    logp_prop: npt.NDArray[np.float64],
    h: npt.NDArray[np.floating],
    seed: int,
    counter: int,
    first_sample: int,
    x_out: npt.NDArray[np.floating],
    score_out: npt.NDArray[np.floating],
    logp_out: npt.NDArray[np.float64],
    accepted: npt.NDArray[np.uint8],
) -> None: ...
