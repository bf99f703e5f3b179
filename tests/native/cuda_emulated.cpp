// The CUDA launchers of cuda/kernels.cu, run on the host under
// tests/native/cuda_emulation (blocks of real threads and barriers), against
// the CPU backend: noise, perturb, langevin_step and affine_step bit for bit, dsm_loss
// gradients and losses bit for bit (both sum in the LaneSum8 order), on
// awkward shapes and offsets, with the launch grids and with 1 or 3 blocks.
// Built and run by tests/test_cuda_host.py. Prints "ok" or the first failures.
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_runtime.h>  // the emulation (tests/native/cuda_emulation)

#include "cpu_backend.hpp"
#include "cuda_backend.hpp"

using namespace scorekit;

namespace {

int failures = 0;
#define FAIL(...)                                               \
    do {                                                        \
        if (failures++ < 10) std::printf(__VA_ARGS__);          \
    } while (0)

template <class T>
std::vector<T> values(std::size_t n, int seed, double lo = -2, double hi = 2) {
    std::mt19937_64 g(static_cast<std::uint64_t>(seed));
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(d(g));
    return v;
}

template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void noise() {
    for (int kind = 0; kind < 3; ++kind)
        for (std::int64_t n : {1, 3, 4, 5, 257, 1025})
            for (std::uint64_t off : {0ull, 1ull, 3ull, (1ull << 34) - 5}) {
                std::vector<T> g(static_cast<std::size_t>(n)), c(g.size());
                const Stream st{(1ull << 63) + 5, 17};
                cuda::fill_noise<T>(static_cast<cuda::NoiseKind>(kind), st, off, n, g.data(), 0,
                                    nullptr);
                cpu::fill_noise<T>(static_cast<cpu::NoiseKind>(kind), st, off, n, c.data());
                if (!same(g, c)) FAIL("noise kind %d n %lld offset %llu\n", kind, (long long)n,
                                      (unsigned long long)off);
            }
}

template <class T>
void sphere() {
    for (std::int64_t D : {1, 7, 4097})
        for (std::int64_t k0 : {0, 3}) {
            const std::int64_t rows = 3;
            std::vector<T> g(static_cast<std::size_t>(rows * D)), c(g.size());
            const Stream st{11, 5};
            cuda::fill_noise<T>(cuda::NoiseKind::Normal, st, static_cast<std::uint64_t>(k0 * D),
                                rows * D, g.data(), 0, nullptr);
            cuda::sphere_rows<T>(g.data(), rows, D, 0, nullptr);
            cpu::fill_probes<T>(ProbeKind::Sphere, st, rows, 1, D, 1, k0, c.data());
            if (!same(g, c)) FAIL("sphere D %lld k0 %lld\n", (long long)D, (long long)k0);
        }
}

template <class T>
void elementwise() {
    const std::int64_t shapes[][2] = {{1, 1}, {7, 5}, {2, 1031}, {5, 1}};
    for (auto& s : shapes)
        for (std::uint64_t fs : {0ull, 1ull, 12345678901ull}) {
            const std::int64_t B = s[0], D = s[1], n = B * D;
            auto x = values<T>(n, 1), sc = values<T>(n, 2), sig = values<T>(B, 3, 0.1, 2);
            const Stream st{3, 9};
            for (int per_row = 0; per_row < 2; ++per_row) {
                const RowParam<T> p = per_row ? RowParam<T>{sig.data(), T(0)}
                                              : RowParam<T>{nullptr, T(0.7)};
                std::vector<T> g(static_cast<std::size_t>(n)), c(g.size());
                cuda::perturb<T>(x.data(), B, D, p, p, st, fs, g.data(), 0, nullptr);
                cpu::perturb<T>(x.data(), B, D, p, p, st, fs, c.data());
                if (!same(g, c)) FAIL("perturb B %lld D %lld\n", (long long)B, (long long)D);
                cuda::langevin_step<T>(x.data(), sc.data(), B, D, p, st, fs, g.data(), 0, nullptr);
                cpu::langevin_step<T>(x.data(), sc.data(), B, D, p, st, fs, c.data());
                if (!same(g, c)) FAIL("langevin B %lld D %lld\n", (long long)B, (long long)D);
                const RowParam<T> k{nullptr, T(-0.3)};
                std::vector<T> gm(g.size()), cm(g.size());
                cuda::affine_step<T>(x.data(), sc.data(), B, D, p, k, p, st, fs, g.data(),
                                     gm.data(), 0, nullptr);
                cpu::affine_step<T>(x.data(), sc.data(), B, D, p, k, p, st, fs, c.data(), cm.data());
                if (!same(g, c) || !same(gm, cm))
                    FAIL("affine_step B %lld D %lld\n", (long long)B, (long long)D);
            }
        }
}

template <class T>
void dsm() {
    const std::int64_t shapes[][2] = {{1, 3},   {5, 7},    {3, 64},  {3, 65}, {2, 1000},
                                      {2, 4096}, {2, 4097}, {1, 9001}, {3, 0}};
    for (auto& s : shapes)
        for (std::uint64_t fs : {0ull, 3ull})
            for (int weight = 0; weight < 3; ++weight)
                for (int stored = 0; stored < 2; ++stored) {
                    const std::int64_t B = s[0], D = s[1], n = B * D;
                    auto score = values<T>(n, 5), z = values<T>(n, 6);
                    auto sig = values<T>(B, 7, 0.1, 2), w = values<T>(B, 8, 0, 3);
                    const RowParam<T> ps{sig.data(), T(0)};
                    const RowParam<T> pw = weight == 2 ? RowParam<T>{w.data(), T(0)}
                                                       : RowParam<T>{nullptr, T(1)};
                    const Stream st{4, 2};
                    const std::int64_t chunks = D == 0 ? 1 : (D + kReduceChunk - 1) / kReduceChunk;
                    std::vector<double> partial(static_cast<std::size_t>(B * chunks)), gl(B), cl(B);
                    std::vector<T> gg(static_cast<std::size_t>(n)), cg(gg.size());
                    const T* zp = stored ? z.data() : nullptr;
                    cuda::dsm_loss<T>(score.data(), zp, B, D, ps, weight == 0, pw, 1.0 / B, st,
                                      stored ? 0 : fs, partial.data(), gl.data(), gg.data(), 0,
                                      nullptr);
                    cpu::dsm_loss<T>(score.data(), zp, B, D, ps, weight == 0, pw, 1.0 / B, st,
                                     stored ? 0 : fs, cl.data(), cg.data());
                    if (!same(gg, cg) || !same(gl, cl))
                        FAIL("dsm B %lld D %lld weight %d stored %d: loss %.17g vs %.17g\n",
                             (long long)B, (long long)D, weight, stored, gl[0], cl[0]);
                }
}

void all() {
    noise<float>();
    noise<double>();
    elementwise<float>();
    elementwise<double>();
    sphere<float>();
    sphere<double>();
    dsm<float>();
    dsm<double>();
}

}  // namespace

int main() {
    all();                      // the launchers' own grids
    emu::grid_override = 1;     // one block: every grid-stride loop wraps
    all();
    emu::grid_override = 3;
    all();
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
