"""GPU benchmark: scorekit's CUDA kernels against PyTorch on the same card.

    python benchmarks/gpu_bench.py [--sizes 24,26,28] [--repeats 20] [--dtype float32]
                                   [--markdown] [--more] [--dry-run]

Needs a CUDA build of scorekit (``scorekit.gpu_available()``) and PyTorch with
CUDA (``--dry-run`` runs every case once on CPU tensors instead, with times
that mean nothing: a check of the script itself where there is no GPU). For
each size 2^k (float32 elements) it times, on one CUDA stream with CUDA
events, interleaved, medians of ``--repeats`` (``--dtype float64``: the same
with float64 arrays):

- the device-to-device copy ``y.copy_(x)`` (the bandwidth floor: read + write);
- ``normal`` (write N), ``perturb`` (read x, write out), ``langevin_step``
  (read x and score, write out) into preallocated outputs, and ``dsm_loss``
  with its gradient (read score, write grad; noise regenerated);
- the same in PyTorch eager and under ``torch.compile``: ``randn_like`` noise and
  tensor expressions; the dsm_loss baseline reads a stored noise tensor (as the
  CPU benchmark's NumPy baseline does) and forms the closed-form gradient.

Each time is the mean of ``--calls`` back-to-back calls between two CUDA events
(then a synchronisation): the host enqueues ahead, as in a training or sampling
loop, so the Python work of a call counts only where the GPU waits for it
(small sizes). scorekit gets its per-sample parameters as host arrays (copied
without blocking); the PyTorch variants use CUDA tensors. "perturb / scorekit,
numbers" takes one sigma and scale for every sample: nothing to copy, so its
difference from the first row is the cost of the two copies. "dsm_loss /
scorekit, CUDA sigma unchecked" takes sigma as the CUDA tensor PyTorch uses,
within ``scorekit.device_value_checks(False)`` (not read back for its checks),
as a training loop that keeps its noise levels on the GPU would; the two rows
after it take the same call with its row reduction forced to 8 and to 32
threads a chunk (the first row takes what the size chooses, or what
``SCOREKIT_CUDA_CHUNK_THREADS`` fixes).

"% copy BW" = (bytes the kernel must move / median time) / copy bandwidth.
Targets of the CUDA issue: fused kernels >= 80% of the copy bandwidth, >= 3x
PyTorch eager and no slower than torch.compile.

``--more`` adds scorekit-only rows (no PyTorch baseline, but for one) for the other GPU
kernels, with the (B, D) arrays each must read and write: dsm_loss with a
stored noise (score, noise -> gradient: 3; against the same PyTorch baseline
as above, which reads its noise too), noisy_affine_step
(x, score -> out: 3), corrector_step (x, score -> x, mean: 4, plus its norm
pass), ssm_loss with one Gaussian probe and its gradients (score, jvp -> two
gradients: 4), ism_loss with its gradient (score -> gradient: 2) and mala_accept
(state, score, proposal and its score -> new state and score: 6). It also adds
``hutchinson`` with ``like=`` over 8 Rademacher probes, one per round, of the
diagonal operator ``v * d`` (counted per probe: write it, the product reads it
and writes A v, the samples read both: 5; scorekit's private copy of the probe
for ``matvec`` and the copy of its result into the round's array add 4 more),
against the same loop in PyTorch eager
(probes from ``bernoulli_``, float64 sums, the mean over probes, brought to
the host); scorekit also keeps the running variance and notes non-finite
products, and reads both back at the end. Every scorekit kernel of ``--more``
whose rows are reduced (all but noisy_affine_step) is also timed with 8 and
with 32 threads a chunk.
"""

from __future__ import annotations

import argparse
import statistics
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,26,28", help="log2 of the element counts")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5, help="back-to-back calls per timing")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--more", action="store_true",
                        help="also time the other GPU kernels (scorekit only, but for one)")
    parser.add_argument("--only", default=None,
                        help="comma-separated kernels to time (as named in the table); "
                             "the copy is always timed")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every case once on the CPU (PyTorch CPU tensors, wall-clock "
                             "times that mean nothing): checks the script without a GPU")
    args = parser.parse_args(argv)

    import scorekit
    import torch
    if args.dry_run:
        return dry_run(args, torch, scorekit)
    if not scorekit.gpu_available():
        print("needs a CUDA build of scorekit and a GPU (scorekit.gpu_available() is False)")
        return 2
    if not torch.cuda.is_available():
        print("needs PyTorch with CUDA")
        return 2

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    print(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}; "
          f"scorekit {scorekit.__version__}; {args.dtype}; medians of {args.repeats} timings of "
          f"{args.calls} back-to-back calls (CUDA events)")

    def timed(fn) -> float:
        return event_time(torch, fn, args.calls)

    rows = []
    for k in (int(v) for v in args.sizes.split(",")):
        size_rows = bench_size(k, args.repeats, timed, compiled_with(torch, args), torch,
                               scorekit, dev, args.more, getattr(torch, args.dtype),
                               only=only_kernels(args))
        torch.cuda.empty_cache()
        if args.markdown:  # a size's rows as soon as they are timed (a run cut short keeps them)
            print_rows(size_rows, True, header=not rows)
        rows += size_rows
    if not args.markdown:
        print_rows(rows, False)
    return 0


def event_time(torch, fn, calls: int) -> float:
    """Seconds per call of ``calls`` back-to-back calls of fn between two CUDA events."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / 1e3 / calls


def unchecked_dsm(scorekit, score, sigma, noise=None):
    """dsm_loss with a CUDA sigma within device_value_checks(False) (not read back); the
    noise regenerated, or the stored ``noise``."""
    def call():
        with scorekit.device_value_checks(False):
            if noise is not None:
                return scorekit.dsm_loss(score, sigma, noise=noise, reduction="none")
            return scorekit.dsm_loss(score, sigma, seed=1, counter=2, reduction="none")
    return call


def with_chunk_threads(fn, threads, dev):
    """fn with the row reductions' threads per chunk set to ``threads`` (8 or 32) for the
    call, and set back to what it was after it; None off the GPU or without the CUDA
    backend."""
    from scorekit import _gpu
    if dev.type != "cuda" or not _gpu.compiled():
        return None

    def call():
        before = _gpu._cuda.chunk_threads_setting()
        _gpu._cuda.set_chunk_threads(threads)
        try:
            return fn()
        finally:
            _gpu._cuda.set_chunk_threads(before)
    return call


def by_chunk_width(fn, dev, label: str = "scorekit") -> dict:
    """Variants of ``label``'s call fn with 8 and with 32 threads a chunk (None where
    with_chunk_threads cannot set them)."""
    return {f"{label}, {g} threads a chunk": with_chunk_threads(fn, g, dev) for g in (8, 32)}


def only_kernels(args):
    return None if args.only is None else {v.strip() for v in args.only.split(",")}


def compiled_with(torch, args):
    def compiled(fn):
        if args.no_compile:
            return None
        return torch.compile(fn)
    return compiled


class OnNumPy:
    """scorekit whose functions get NumPy views of PyTorch CPU tensors (the CPU API
    takes NumPy arrays for out=): the benchmarks' cases run on the CPU as written."""

    def __init__(self, scorekit, torch):
        self._sk, self._torch = scorekit, torch

    def __getattr__(self, name):
        f = getattr(self._sk, name)
        if not callable(f) or isinstance(f, type):
            return f
        tensor = self._torch.Tensor

        def call(*a, **kw):
            def conv(v):
                return v.numpy() if isinstance(v, tensor) else v
            return f(*map(conv, a), **{key: conv(v) for key, v in kw.items()})
        return call


def dry_run(args, torch, scorekit) -> int:
    """Every case of the chosen dtype (and --more) once, on 2^12 CPU elements: scorekit's
    calls get NumPy views of the CPU tensors (the CPU API takes NumPy arrays for out=)."""
    import time

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    rows = bench_size(12, 1, timed, compiled_with(torch, args), torch, OnNumPy(scorekit, torch),
                      torch.device("cpu"), args.more, getattr(torch, args.dtype), sync=lambda: None,
                      only=only_kernels(args))
    print_rows(rows, args.markdown)
    print(f"dry run: {len(rows)} rows on the CPU, {args.dtype}")
    return 0


def print_rows(rows, markdown: bool, header: bool = True) -> None:
    head = ["kernel", "N", "variant", "median", "GB/s", "% copy BW", "time / scorekit"]
    lines = []
    for kernel, size, name, t, gbs, frac, ratio in rows:
        lines.append([kernel, size, name, f"{t * 1e3:.3f} ms", f"{gbs:.0f}", f"{frac:.0%}",
                      "-" if ratio is None else f"{ratio:.2f}x"])
    if markdown:
        if header:
            print("| " + " | ".join(head) + " |")
            print("|" + "|".join([":---"] * 3 + ["---:"] * 4) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |", flush=True)
    else:
        widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
        for line in [head, *lines]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))


def bench_size(k, repeats, timed, compiled, torch, scorekit, dev, more=False,
               dtype=None, sync=None, only=None) -> list:
    """Rows for 2^k elements of dtype (float32 by default), as (B = 1024, D) batches;
    only: the kernels to time (all when None; the copy always)."""
    dtype = torch.float32 if dtype is None else dtype
    size = torch.empty((), dtype=dtype).element_size()
    n = 1 << k
    B = 1 << 10
    D = n // B
    x = torch.randn(B, D, device=dev, dtype=dtype)
    score = torch.randn(B, D, device=dev, dtype=dtype)
    z = torch.randn(B, D, device=dev, dtype=dtype)
    out = torch.empty_like(x)
    flat = out.view(-1)
    sigma = torch.rand(B, device=dev, dtype=dtype) + 0.1
    scale = torch.rand(B, device=dev, dtype=dtype) + 0.5
    step = torch.full((B,), 1e-3, device=dev, dtype=dtype)
    # scorekit takes the per-sample parameters from the host (checked there, then copied
    # without blocking); given as CUDA tensors they would be read back to be checked
    sigma_h, scale_h, step_h = (p.cpu().numpy() for p in (sigma, scale, step))

    def t_perturb():
        return x * scale[:, None] + sigma[:, None] * torch.randn_like(x)

    def t_langevin():
        return x + step[:, None] * score + torch.sqrt(2 * step)[:, None] * torch.randn_like(x)

    def t_dsm():
        q = sigma[:, None] * score + z
        return 0.5 * (q * q).sum() / B, q * (sigma[:, None] / B)

    t_dsm_compiled = compiled(t_dsm)
    dsm_unchecked = unchecked_dsm(scorekit, score, sigma)

    cases = {
        "copy": (2 * n * size, {"torch copy_": lambda: out.copy_(x)}),
        "normal": (n * size, {
            "scorekit": lambda: scorekit.normal(n, seed=1, counter=2, out=flat),
            "torch eager": lambda: flat.normal_()}),
        "perturb": (2 * n * size, {
            "scorekit": lambda: scorekit.perturb(x, sigma_h, seed=1, counter=2, scale=scale_h,
                                                 out=out),
            "scorekit, numbers": lambda: scorekit.perturb(x, 0.5, seed=1, counter=2, scale=0.9,
                                                          out=out),
            "torch eager": t_perturb, "torch.compile": compiled(t_perturb)}),
        "langevin_step": (3 * n * size, {
            "scorekit": lambda: scorekit.langevin_step(x, score, step_h, seed=1, counter=2,
                                                       out=out),
            "torch eager": t_langevin, "torch.compile": compiled(t_langevin)}),
        "dsm_loss + grad": (2 * n * size, {
            "scorekit": lambda: scorekit.dsm_loss(score, sigma_h, seed=1, counter=2,
                                                  reduction="none"),
            "scorekit, CUDA sigma unchecked": dsm_unchecked,
            # the same with 8 and with 32 threads a chunk, whichever the size chooses
            **by_chunk_width(dsm_unchecked, dev, "scorekit, CUDA sigma unchecked"),
            "torch eager": t_dsm, "torch.compile": t_dsm_compiled}),
    }
    if more:
        import numpy as np
        trace = torch.randn(B, device=dev, dtype=dtype)
        logp = np.zeros(B)
        a_h, c_h, g_h = scale_h, step_h, sigma_h
        d = torch.rand(D, device=dev, dtype=dtype) + 0.5
        on_gpu = dev.type == "cuda"
        d_mv = d if on_gpu else d.numpy()  # --dry-run: matvec gets NumPy probes
        like = {"like": x} if on_gpu else {}
        np_dtype = np.dtype(str(dtype).removeprefix("torch."))
        probes = 8

        def ssm():
            return scorekit.ssm_loss(score, z, seed=1, counter=2, reduction="none")

        def ism():
            return scorekit.ism_loss(score, trace, reduction="none")

        def corrector():
            return scorekit.corrector_step(x, score, snr=0.16, seed=1, counter=2)

        def mala():
            return scorekit.mala_accept(x, score, logp, z, score, logp, 1e-3, seed=1, counter=2)

        stored_unchecked = unchecked_dsm(scorekit, score, sigma, z)

        def hutchinson():
            return scorekit.hutchinson(lambda v: v * d_mv, (B, D), num_probes=probes, block=1,
                                       seed=1, dtype=np_dtype, **like)


        def t_hutchinson():
            acc = torch.zeros(B, device=dev, dtype=torch.float64)
            v = torch.empty_like(x)
            for _ in range(probes):
                v.bernoulli_(0.5).mul_(2).sub_(1)
                acc += (v * (v * d)).sum(1, dtype=torch.float64)
            return (acc / probes).cpu()  # on the host, as scorekit's estimates

        cases.update({
            "noisy_affine_step": (3 * n * size, {
                "scorekit": lambda: scorekit.noisy_affine_step(x, score, a_h, c_h, g_h, seed=1,
                                                               counter=2, out=out)}),
            "corrector_step": (4 * n * size, {"scorekit": corrector,
                                              **by_chunk_width(corrector, dev)}),
            "dsm_loss + grad (stored noise)": (3 * n * size, {
                "scorekit": lambda: scorekit.dsm_loss(score, sigma_h, noise=z,
                                                      reduction="none"),
                "scorekit, CUDA sigma unchecked": stored_unchecked,
                **by_chunk_width(stored_unchecked, dev),
                "torch eager": t_dsm, "torch.compile": t_dsm_compiled}),
            "ssm_loss + grads": (4 * n * size, {"scorekit": ssm, **by_chunk_width(ssm, dev)}),
            "ism_loss + grad": (2 * n * size, {"scorekit": ism, **by_chunk_width(ism, dev)}),
            "mala_accept": (6 * n * size, {"scorekit": mala, **by_chunk_width(mala, dev)}),
            "hutchinson (8 probes)": (5 * probes * n * size, {
                "scorekit": hutchinson, **by_chunk_width(hutchinson, dev),
                "torch eager": t_hutchinson}),
        })
    if only is not None:
        unknown = only - set(cases)
        if unknown:
            raise SystemExit(f"--only: no such kernel {sorted(unknown)}; "
                             f"kernels: {', '.join(cases)}")
        cases = {name: case for name, case in cases.items() if name == "copy" or name in only}
    rows, copy_bw = [], None
    for kernel, (nbytes, variants) in cases.items():
        variants = {name: fn for name, fn in variants.items() if fn is not None}
        for fn in variants.values():  # warm up (and compile)
            for _ in range(3):
                fn()
        (sync or torch.cuda.synchronize)()
        times = {name: [] for name in variants}
        for _ in range(repeats):
            for name, fn in variants.items():
                times[name].append(timed(fn))
        med = {name: statistics.median(t) for name, t in times.items()}
        if kernel == "copy":
            copy_bw = nbytes / med["torch copy_"]
        for name, t in med.items():
            ratio = t / med["scorekit"] if "scorekit" in med else None
            rows.append((kernel, f"2^{k}", name, t, nbytes / t / 1e9, nbytes / t / copy_bw,
                         ratio))
    return rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
