"""What the JAX route costs: scorekit.jax (jax.pure_callback) against the NumPy API and jax.numpy.

For perturb and dsm_loss (with its gradient through jax.grad) at several sizes:

  numpy API     scorekit.perturb / scorekit.dsm_loss on NumPy arrays (no JAX)
  scorekit.jax  the same kernels inside jax.jit, through jax.pure_callback
  jax.numpy     the same computation written in jax.numpy (jax.random.normal noise), jitted

Interleaved repeats; medians. The difference between the first two rows is the
callback's cost (the host round trip and the result copy).

    python benchmarks/jax_callback.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import scorekit
import scorekit.jax as sj


def timed(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / inner


def run(n, repeats):
    b = max(1, n // 1024)
    d = n // b
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, d)).astype(np.float32)
    sigma = rng.uniform(0.1, 1.0, b).astype(np.float32)
    xj, sj_sigma = jnp.asarray(x), jnp.asarray(sigma)
    key = jax.random.key(0)

    perturb_jit = jax.jit(lambda x, s, c: sj.perturb(x, s, seed=1, counter=c))
    perturb_jnp = jax.jit(lambda x, s, k: x + s[:, None] * jax.random.normal(k, x.shape, x.dtype))
    grad_jit = jax.jit(jax.value_and_grad(lambda s, sig, c: sj.dsm_loss(s, sig, seed=1, counter=c)))

    def dsm_jnp(s, sig, k):
        z = jax.random.normal(k, s.shape, s.dtype)
        return 0.5 * jnp.mean(jnp.sum((sig[:, None] * s + z) ** 2, axis=1))
    grad_jnp = jax.jit(jax.value_and_grad(dsm_jnp))

    cases = {
        "perturb  numpy API": lambda: scorekit.perturb(x, sigma, seed=1, counter=2),
        "perturb  scorekit.jax": lambda: perturb_jit(xj, sj_sigma, jnp.int32(2)),
        "perturb  jax.numpy": lambda: perturb_jnp(xj, sj_sigma, key),
        "dsm+grad numpy API": lambda: scorekit.dsm_loss(x, sigma, seed=1, counter=2),
        "dsm+grad scorekit.jax": lambda: grad_jit(xj, sj_sigma, jnp.int32(2)),
        "dsm+grad jax.numpy": lambda: grad_jnp(xj, sj_sigma, key),
    }
    inner = max(1, int(2e6 // n))
    for fn in cases.values():
        timed(fn, 2)
    times = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            times[k].append(timed(fn, inner))
    print(f"\n{n} float32 elements (B={b}, D={d})")
    for k, v in times.items():
        med = statistics.median(v)
        print(f"  {k:24s} {med * 1e6:10.1f} us   {n / med / 1e9:7.3f} Gelem/s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, scorekit "
          f"{scorekit.get_num_threads()} threads")
    for n in (1024, 2**20, 2**24):
        run(n, args.repeats)


if __name__ == "__main__":
    main()
