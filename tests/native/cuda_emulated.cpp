// The CUDA launchers of cuda/*.cu, run on the host under
// tests/native/cuda_emulation (a block's threads as fibers with barriers), against
// the CPU backend: noise, perturb, langevin_step and affine_step bit for bit;
// dsm_loss, ssm_loss, ism_loss, the Langevin corrector and the MALA test, whose
// reductions follow the CPU's LaneSum8 order, bit for bit too (losses,
// gradients, step sizes, decisions); on awkward shapes and offsets, with the
// launch grids and with 1 or 3 blocks, with the row reductions' threads per
// chunk chosen by size and forced to 8 and to 32 (each with one block of
// threads in reverse order and with three blocks that loop round).
// Built and run by tests/test_cuda_host.py. Prints "ok" or the first failures.
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <cuda_runtime.h>  // the emulation (tests/native/cuda_emulation)

#include "cpu_backend.hpp"
#include "cuda_backend.hpp"
#include "failures.hpp"
#include "launch.cuh"
#include "scorekit/noise.hpp"
#include "scorekit/steps.hpp"

using namespace scorekit;

namespace {

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

// A launcher's work array of n doubles (at least one), then a guard of kGuard
// doubles that must come back untouched: the Python layer puts the per-sample
// losses right after the work.
constexpr std::size_t kGuard = 64;
constexpr double kSentinel = -1234.5;

std::vector<double> guarded_work(std::int64_t n) {
    const auto size = static_cast<std::size_t>(std::max<std::int64_t>(1, n));
    std::vector<double> w(size + kGuard, 0.0);
    for (std::size_t i = size; i < w.size(); ++i) w[i] = kSentinel;
    return w;
}

bool guard_intact(const std::vector<double>& w) {
    for (std::size_t i = w.size() - kGuard; i < w.size(); ++i)
        if (w[i] != kSentinel) return false;
    return true;
}

// Per-sample losses rounded to T as a cast does (the launchers' row_loss_out).
template <class T>
std::vector<T> rounded(const std::vector<double>& v) {
    std::vector<T> r(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) r[i] = static_cast<T>(v[i]);
    return r;
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
    for (std::int64_t D : {1, 7, 64, 65, 4097, 9001})
        for (std::int64_t k0 : {0, 3}) {
            const std::int64_t rows = 3;
            std::vector<T> g(static_cast<std::size_t>(rows * D)), c(g.size());
            const Stream st{11, 5};
            cuda::fill_noise<T>(cuda::NoiseKind::Normal, st, static_cast<std::uint64_t>(k0 * D),
                                rows * D, g.data(), 0, nullptr);
            std::vector<double> work(static_cast<std::size_t>(
                std::max<std::int64_t>(1, cuda::sphere_work(rows, D))));
            cuda::sphere_rows<T>(g.data(), rows, D, work.data(), 0, nullptr);
            cpu::fill_probes<T>(ProbeKind::Sphere, st, rows, 1, D, 1, k0, c.data());
            if (!same(g, c)) FAIL("sphere D %lld k0 %lld\n", (long long)D, (long long)k0);
        }
}

// Shapes with D a multiple of the stream block take the vector path when the
// arrays are 16-byte aligned (shift 0) and the first sample starts a block;
// shift 1 moves every array off that alignment (the scalar path).
template <class T>
void elementwise() {
    const std::int64_t shapes[][2] = {{1, 1}, {7, 5}, {2, 1031}, {5, 1}, {3, 8}, {3, 6},
                                      {4, 64}, {2, 1024}};
    for (auto& s : shapes)
        for (std::uint64_t fs : {0ull, 1ull, 12345678901ull})
            for (std::size_t shift : {0, 1}) {
                const std::int64_t B = s[0], D = s[1], n = B * D;
                const auto N = static_cast<std::size_t>(n);
                auto xs = values<T>(N + 1, 1), scs = values<T>(N + 1, 2);
                auto sig = values<T>(static_cast<std::size_t>(B), 3, 0.1, 2);
                const T* x = xs.data() + shift;
                const T* sc = scs.data() + shift;
                const Stream st{3, 9};
                std::vector<T> gs(N + 1), gms(N + 1), c(N), cm(N);
                T* g = gs.data() + shift;
                T* gm = gms.data() + shift;
                auto got = [&](const T* p) { return std::vector<T>(p, p + n); };
                for (int per_row = 0; per_row < 2; ++per_row) {
                    const RowParam<T> p = per_row ? RowParam<T>{sig.data(), T(0)}
                                                  : RowParam<T>{nullptr, T(0.7)};
                    cuda::perturb<T>(x, B, D, p, p, st, fs, g, 0, nullptr);
                    cpu::perturb<T>(x, B, D, p, p, st, fs, c.data());
                    if (!same(got(g), c))
                        FAIL("perturb B %lld D %lld shift %zu\n", (long long)B, (long long)D, shift);
                    cuda::langevin_step<T>(x, sc, B, D, p, st, fs, g, 0, nullptr);
                    cpu::langevin_step<T>(x, sc, B, D, p, st, fs, c.data());
                    if (!same(got(g), c))
                        FAIL("langevin B %lld D %lld shift %zu\n", (long long)B, (long long)D, shift);
                    const RowParam<T> k{nullptr, T(-0.3)};
                    cuda::affine_step<T>(x, sc, B, D, p, k, p, st, fs, g, gm, 0, nullptr);
                    cpu::affine_step<T>(x, sc, B, D, p, k, p, st, fs, c.data(), cm.data());
                    if (!same(got(g), c) || !same(got(gm), cm))
                        FAIL("affine_step B %lld D %lld shift %zu\n", (long long)B, (long long)D,
                             shift);
                    std::fill(gs.begin(), gs.end(), T(0));
                    cuda::affine_step<T>(x, sc, B, D, p, k, p, st, fs, g, nullptr, 0, nullptr);
                    if (!same(got(g), c))  // without the mean
                        FAIL("affine_step (no mean) B %lld D %lld\n", (long long)B, (long long)D);
                }
            }
}

// An array of values placed `shift` elements past a 16-byte boundary, between
// guard elements that must come back untouched (a launcher writing outside its
// output fails even where the results are right).
template <class T>
class Placed {
  public:
    static constexpr std::size_t kWord = 16 / sizeof(T);
    Placed(const std::vector<T>& v, std::size_t shift)
        : n_(v.size()), lead_(kWord + shift), buf_(lead_ + n_ + kWord, kMark) {
        std::copy(v.begin(), v.end(), buf_.begin() + static_cast<std::ptrdiff_t>(lead_));
        if (shift == 0 && reinterpret_cast<std::uintptr_t>(data()) % 16 != 0)
            FAIL("placed array not 16-byte aligned: the vector paths go untested\n");
    }
    T* data() { return buf_.data() + lead_; }
    std::vector<T> values() const {
        const auto first = buf_.begin() + static_cast<std::ptrdiff_t>(lead_);
        return std::vector<T>(first, first + static_cast<std::ptrdiff_t>(n_));
    }
    bool intact() const {
        for (std::size_t i = 0; i < buf_.size(); ++i)
            if ((i < lead_ || i >= lead_ + n_) && buf_[i] != kMark) return false;
        return true;
    }

  private:
    static constexpr T kMark = T(-7777.25);
    std::size_t n_, lead_;
    std::vector<T> buf_;
};

// Which arrays a case moves one element off 16-byte alignment: none (shapes
// with D a multiple of 4 take the vector paths), all (the scalar paths), or
// one at a time (the paths that array's alignment decides).
struct Shifts {
    const char* name;
    std::size_t score, jvp, grad_score, grad_jvp;
};
constexpr Shifts kShiftCases[] = {{"none", 0, 0, 0, 0},       {"all", 1, 1, 1, 1},
                                  {"score", 1, 0, 0, 0},      {"jvp", 0, 1, 0, 0},
                                  {"grad_score", 0, 0, 1, 0}, {"grad_jvp", 0, 0, 0, 1}};

// A case's shifts for a call that has the arrays marked (score always): false
// where the case moves only arrays the call lacks (a repeat of "none").
bool shifts_for(const Shifts& sh, bool jvp, bool grad_score, bool grad_jvp, Shifts& out) {
    out = {sh.name, sh.score, jvp ? sh.jvp : 0, grad_score ? sh.grad_score : 0,
           grad_jvp ? sh.grad_jvp : 0};
    const bool moved = sh.score || sh.jvp || sh.grad_score || sh.grad_jvp;
    return !moved || out.score || out.jvp || out.grad_score || out.grad_jvp;
}

template <class T>
void ssm() {
    const std::int64_t shapes[][3] = {{1, 1, 3},    {3, 2, 7},   {2, 3, 64},  {2, 2, 65},
                                      {1, 2, 4097}, {2, 1, 0},   {1, 1, 9001}, {40, 3, 65},
                                      {2, 2, 4100}, {3, 1, 200}, {33, 2, 68}, {2, 2, 66},
                                      {2, 5, 0}};
    for (auto& s : shapes)
        for (const Shifts& c : kShiftCases)
            for (int kind = 0; kind < 3; ++kind)
                for (int vr = 0; vr < 2; ++vr)
                    for (int grads = 0; grads < 2; ++grads) {
                        const std::int64_t B = s[0], K = s[1], D = s[2];
                        Shifts sh;
                        if (!shifts_for(c, true, grads, grads, sh)) continue;
                        if (c.score + c.jvp + c.grad_score + c.grad_jvp && D % 2)
                            continue;  // the scalar paths already
                        const std::uint64_t fs = kind == 1 ? 5 : 0;
                        const auto nS = static_cast<std::size_t>(B * D), nJ = nS * K;
                        Placed<T> score(values<T>(nS, 11), sh.score), jvp(values<T>(nJ, 12), sh.jvp);
                        Placed<T> gs(std::vector<T>(nS), sh.grad_score),
                            gj(std::vector<T>(nJ), sh.grad_jvp);
                        std::vector<double> work = guarded_work(cuda::ssm_work(B, K, D));
                        std::vector<double> gl(B), cl(B);
                        std::vector<T> cgs(nS), cgj(nJ), gt(B);
                        const Stream st{21, 3};
                        const auto pk = static_cast<ProbeKind>(kind);
                        cuda::ssm_loss<T>(pk, st, fs, score.data(), jvp.data(), B, K, D, vr, 0.5,
                                          work.data(), gl.data(), grads ? gt.data() : nullptr,
                                          grads ? gs.data() : nullptr, grads ? gj.data() : nullptr,
                                          0, nullptr);
                        cpu::ssm_loss<T>(pk, st, fs, score.data(), jvp.data(), B, K, D, vr, 0.5,
                                         cl.data(), grads ? cgs.data() : nullptr,
                                         grads ? cgj.data() : nullptr);
                        if (!same(gl, cl) || !same(gs.values(), cgs) || !same(gj.values(), cgj) ||
                            (grads && !same(gt, rounded<T>(cl))) || !guard_intact(work) ||
                            !score.intact() || !jvp.intact() || !gs.intact() || !gj.intact())
                            FAIL("ssm B %lld K %lld D %lld shifted %s kind %d vr %d grads %d: "
                                 "%.17g vs %.17g\n",
                                 (long long)B, (long long)K, (long long)D, sh.name, kind, vr, grads,
                                 gl[0], cl[0]);
                    }
}

template <class T>
void ism() {
    const std::int64_t shapes[][2] = {{1, 3},  {4, 64},   {2, 65},   {1, 9001},
                                      {2, 0},  {100, 65}, {3, 4100}, {66, 72}, {3, 66}};
    for (auto& s : shapes)
        for (const Shifts& c : kShiftCases)
            for (int grads = 0; grads < 2; ++grads) {
                const std::int64_t B = s[0], D = s[1];
                Shifts sh;
                if (!shifts_for(c, false, grads, false, sh)) continue;
                if ((sh.score || sh.grad_score) && D % 2) continue;
                const auto n = static_cast<std::size_t>(B * D);
                Placed<T> score(values<T>(n, 13), sh.score), gg(std::vector<T>(n), sh.grad_score);
                auto trace = values<T>(B, 14);
                std::vector<double> work = guarded_work(cuda::ism_work(B, D));
                std::vector<double> gl(B), cl(B);
                std::vector<T> cg(n), gt(B);
                cuda::ism_loss<T>(score.data(), trace.data(), B, D, 0.25, work.data(), gl.data(),
                                  grads ? nullptr : gt.data(), grads ? gg.data() : nullptr, 0,
                                  nullptr);
                cpu::ism_loss<T>(score.data(), trace.data(), B, D, 0.25, cl.data(),
                                 grads ? cg.data() : nullptr);
                if (!same(gl, cl) || !same(gg.values(), cg) ||
                    (!grads && !same(gt, rounded<T>(cl))) || !guard_intact(work) ||
                    !score.intact() || !gg.intact())
                    FAIL("ism B %lld D %lld shifted %s grads %d\n", (long long)B, (long long)D,
                         sh.name, grads);
            }
}

template <class T>
void dsm() {
    const std::int64_t shapes[][2] = {{1, 3},    {5, 7},    {3, 64},  {3, 65},
                                      {2, 1000}, {2, 4096}, {2, 4097}, {1, 9001},
                                      {2, 8200}, {3, 0},    {33, 4097}, {3, 66}};  // (66 chunks)
    for (auto& s : shapes)
        for (const Shifts& c : kShiftCases)
            for (std::uint64_t fs : {0ull, 3ull})
                for (int weight = 0; weight < 3; ++weight)
                    for (int stored = 0; stored < 2; ++stored)
                        for (int grads = 0; grads < 2; ++grads) {
                        const std::int64_t B = s[0], D = s[1], n = B * D;
                        if (stored && fs) continue;  // (stored noise: no stream offset)
                        if (!grads && weight) continue;
                        // the noise in jvp's place; moved: D even (the vector paths when
                        // aligned), one offset and weight
                        Shifts sh;
                        if (!shifts_for(c, stored, grads, false, sh)) continue;
                        const bool moved = sh.score || sh.jvp || sh.grad_score;
                        if (moved && (D % 2 || fs || weight)) continue;
                        const auto N = static_cast<std::size_t>(n);
                        Placed<T> score(values<T>(N, 5), sh.score), z(values<T>(N, 6), sh.jvp);
                        Placed<T> gg(std::vector<T>(N), sh.grad_score);
                        auto sig = values<T>(B, 7, 0.1, 2), w = values<T>(B, 8, 0, 3);
                        const RowParam<T> ps{sig.data(), T(0)};
                        const RowParam<T> pw = weight == 2 ? RowParam<T>{w.data(), T(0)}
                                                           : RowParam<T>{nullptr, T(1)};
                        const Stream st{4, 2};
                        std::vector<double> partial = guarded_work(cuda::dsm_work(B, D)), gl(B),
                                            cl(B);
                        std::vector<T> cg(N), gt(B);
                        const T* zp = stored ? z.data() : nullptr;
                        cuda::dsm_loss<T>(score.data(), zp, B, D, ps, weight == 0, pw, 1.0 / B, st,
                                          fs, partial.data(), gl.data(),
                                          weight == 1 ? nullptr : gt.data(),
                                          grads ? gg.data() : nullptr, 0, nullptr);
                        cpu::dsm_loss<T>(score.data(), zp, B, D, ps, weight == 0, pw, 1.0 / B, st,
                                         fs, cl.data(), grads ? cg.data() : nullptr);
                        if (!same(gg.values(), cg) || !same(gl, cl) ||
                            (weight != 1 && !same(gt, rounded<T>(cl))) || !guard_intact(partial) ||
                            !score.intact() || !z.intact() || !gg.intact())
                            FAIL("dsm B %lld D %lld shifted %s weight %d stored %d grads %d: loss "
                                 "%.17g vs %.17g\n",
                                 (long long)B, (long long)D, sh.name, weight, stored, grads,
                                 gl[0], cl[0]);
                        }
}

template <class T>
void corrector() {
    // B > 64 and B > 4096: the batch means by a warp and by a block
    const std::int64_t shapes[][2] = {{1, 1}, {5, 7}, {3, 65}, {2, 4097}, {1, 0}, {70, 3},
                                      {4100, 1}};
    for (auto& s : shapes)
        for (int per_sample = 0; per_sample < 2; ++per_sample)
            for (int per_row = 0; per_row < 2; ++per_row) {
                const std::int64_t B = s[0], D = s[1];
                auto x = values<T>(B * D, 15), sc = values<T>(B * D, 16);
                auto al = values<T>(B, 17, 0.5, 1.5);
                const RowParam<T> alpha = per_row ? RowParam<T>{al.data(), T(0)}
                                                  : RowParam<T>{nullptr, T(0.9)};
                std::vector<double> work(static_cast<std::size_t>(
                    std::max<std::int64_t>(1, cuda::corrector_work(B, D))));
                std::vector<double> gstep(B), cstep(B);
                std::vector<T> go(x.size()), co(x.size()), gm(x.size()), cm(x.size());
                const Stream st{8, 1};
                cuda::langevin_corrector<T>(x.data(), sc.data(), B, D, 0.16, alpha, per_sample,
                                            st, 7, go.data(), gm.data(), gstep.data(),
                                            work.data(), 0, nullptr);
                cpu::langevin_corrector<T>(x.data(), sc.data(), B, D, 0.16, alpha, per_sample, st,
                                           7, co.data(), cm.data(), cstep.data());
                if (!same(go, co) || !same(gm, cm) || !same(gstep, cstep))
                    FAIL("corrector B %lld D %lld per_sample %d\n", (long long)B, (long long)D,
                         per_sample);
            }
}

long long mala_taken = 0, mala_rejected = 0;

// A MALA test that the order of the sums decides: one row of 4104 elements
// (two chunks), h = 1, x = 0, x' = d, score_x = 0, score_prop = -d, so bwd = 0
// and fwd = sum d_j^2 with d_0 = 2^27 and every other d_j = 1. In chunks of
// 4096 (LaneSum8 each) fwd is 2^54 + 3592; as one chunk it would be 2^54 +
// 3588 (the ones added to 2^54 in lane 0 are lost, in other groups). logp_prop
// is set so that the log ratio, (logp_prop - 0) + fwd / 4, is c with the
// chunked sums and c - 1 with one chunk, c the integer with c - 1 <= log u < c:
// the chunked order accepts, the other would reject, on either backend.
template <class T>
void mala_order() {
    const std::int64_t B = 1, D = 4096 + 8;
    std::vector<T> x(D, T(0)), sx(D, T(0)), xp(D, T(1)), sp(D, T(-1)), ox(D), os(D);
    xp[0] = T(134217728.0);  // 2^27
    sp[0] = -xp[0];
    const Stream st{31, 5};
    double u;
    fill_range<UniformBlock<double>>(st, mala_uniform_element(0, 0), 1, &u);
    const double c = std::floor(detmath::log(u)) + 1.0;
    const double lx = 0.0, lp = -(4503599627370496.0 + 898.0) + c;  // -(2^52 + 898) + c
    const RowParam<T> h{nullptr, T(1)};
    std::vector<double> work(static_cast<std::size_t>(cuda::mala_work(B, D))), gl(1), cl(1);
    std::uint8_t ga = 2, ca = 2;
    cuda::mala_accept<T>(x.data(), sx.data(), &lx, xp.data(), sp.data(), &lp, B, D, h, st, 0,
                         ox.data(), os.data(), gl.data(), &ga, work.data(), 0, nullptr);
    cpu::mala_accept<T>(x.data(), sx.data(), &lx, xp.data(), sp.data(), &lp, B, D, h, st, 0,
                        ox.data(), os.data(), cl.data(), &ca);
    if (ga != 1 || ca != 1)
        FAIL("mala: the sums must go chunk by chunk (accepted: CUDA %d, CPU %d)\n", ga, ca);
}

// mala_accept's six arrays (x, score_x, x_prop, score_prop, x_out, score_out):
// aligned, all one element off, or one of them off alone (bit k: array k).
template <class T>
void mala() {
    const std::int64_t shapes[][2] = {{1, 1}, {9, 7}, {6, 64}, {6, 65}, {3, 5000}, {2, 0},
                                      {5, 8}, {3, 66}, {700, 12}, {2, 2 * 4096 + 9}};
    for (auto& s : shapes)
        for (unsigned moved : {0u, 63u, 1u, 2u, 4u, 8u, 16u, 32u})
            for (int per_row = 0; per_row < 2; ++per_row) {
                const std::int64_t B = s[0], D = s[1];
                if (moved && D % 2) continue;  // the scalar path already
                const auto n = static_cast<std::size_t>(B * D);
                auto at = [&](int k) { return static_cast<std::size_t>((moved >> k) & 1); };
                auto p = values<T>(n, 21, -0.05, 0.05), xv = values<T>(n, 18);
                for (std::size_t i = 0; i < n; ++i) p[i] = xv[i] + p[i];
                Placed<T> x(xv, at(0)), sx(values<T>(n, 19), at(1)), xp(p, at(2)),
                    sp(values<T>(n, 20), at(3)), gx(std::vector<T>(n), at(4)),
                    gs(std::vector<T>(n), at(5));
                auto hv = values<T>(B, 22, 0.01, 0.1);
                auto lx = values<double>(B, 23, -1, 1), lp = values<double>(B, 24, -1, 1);
                const RowParam<T> h = per_row ? RowParam<T>{hv.data(), T(0)}
                                              : RowParam<T>{nullptr, T(0.05)};
                std::vector<double> work(static_cast<std::size_t>(
                    std::max<std::int64_t>(1, cuda::mala_work(B, D))));
                std::vector<T> cx(n), cs(n);
                std::vector<double> gl(B), cl(B);
                std::vector<std::uint8_t> ga(B), ca(B);
                const Stream st{9, 4};
                cuda::mala_accept<T>(x.data(), sx.data(), lx.data(), xp.data(), sp.data(),
                                     lp.data(), B, D, h, st, 3, gx.data(), gs.data(), gl.data(),
                                     ga.data(), work.data(), 0, nullptr);
                cpu::mala_accept<T>(x.data(), sx.data(), lx.data(), xp.data(), sp.data(),
                                    lp.data(), B, D, h, st, 3, cx.data(), cs.data(), cl.data(),
                                    ca.data());
                if (!same(gx.values(), cx) || !same(gs.values(), cs) || !same(gl, cl) ||
                    !same(ga, ca) || !x.intact() || !sx.intact() || !xp.intact() ||
                    !sp.intact() || !gx.intact() || !gs.intact())
                    FAIL("mala B %lld D %lld moved %u\n", (long long)B, (long long)D, moved);
                for (auto a : ga) (a ? mala_taken : mala_rejected) += 1;
            }
    mala_order<T>();
}

template <class T>
void trace() {
    const std::int64_t shapes[][4] = {{1, 1, 3, 1}, {3, 2, 7, 5}, {2, 3, 65, 4},
                                      {2, 1, 4097, 3}, {1, 2, 1, 2}};  // B, m, D, K
    for (auto& s : shapes)
        for (int kind = 0; kind < 3; ++kind)
            for (std::int64_t k0 : {0, 1}) {
                const std::int64_t B = s[0], m = s[1], D = s[2], K = s[3];
                if (k0 + m > K) continue;
                const Stream st{31, 2};
                std::vector<T> g(static_cast<std::size_t>(B * m * D)), c(g.size());
                std::vector<double> pw(static_cast<std::size_t>(
                    std::max<std::int64_t>(1, cuda::sphere_work(B * m, D))));
                cuda::probe_rows<T>(static_cast<ProbeKind>(kind), st, B, m, D, K,
                                    static_cast<std::uint64_t>(k0), g.data(), pw.data(), 0,
                                    nullptr);
                cpu::fill_probes<T>(static_cast<ProbeKind>(kind), st, B, m, D, K, k0, c.data());
                if (!same(g, c))
                    FAIL("probe rows B %lld m %lld D %lld kind %d\n", (long long)B, (long long)m,
                         (long long)D, kind);
                auto av = values<T>(g.size(), 25);
                std::vector<std::uint8_t> active(B, 1);
                active[0] = B > 1 ? 0 : 1;
                // non-finite products: in the last probe of the last sample, in every
                // probe of sample 0 (inactive where B > 1), and in the first probe of
                // sample 1, which already has a first bad probe (kept)
                const auto row_at = [&](std::int64_t b, std::int64_t i) {
                    return static_cast<std::size_t>((b * m + i) * D);
                };
                av[row_at(B - 1, m - 1) + D / 2] = std::numeric_limits<T>::quiet_NaN();
                for (std::int64_t i = 0; i < m; ++i)
                    av[row_at(0, i)] = std::numeric_limits<T>::infinity();
                if (B > 1) av[row_at(1, 0) + D - 1] = -std::numeric_limits<T>::infinity();
                const std::int64_t first = k0 + 5;
                std::vector<std::int64_t> want(B, -1);
                if (B > 2) want[1] = 2;
                std::vector<std::int64_t> gbad(want), cbad(want);
                for (std::int64_t b = 0; b < B; ++b) {
                    if (!active[b] || want[b] >= 0) continue;
                    if (b <= 1) want[b] = first;  // an inf in its first probe
                    else if (b == B - 1) want[b] = first + m - 1;
                }
                std::vector<double> gt(B * m), ct(B * m), gm(3 * B, 0.5), cm(3 * B, 0.5);
                std::vector<double> work(static_cast<std::size_t>(
                    std::max<std::int64_t>(1, cuda::trace_work(B, m, D))));
                cuda::trace_moments<T>(g.data(), av.data(), B, m, D, active.data(), gt.data(),
                                       reinterpret_cast<RunningMoments*>(gm.data()), first,
                                       gbad.data(), work.data(), 0, nullptr);
                cpu::trace_moments<T>(c.data(), av.data(), B, m, D, active.data(), ct.data(),
                                      reinterpret_cast<RunningMoments*>(cm.data()), first,
                                      cbad.data());
                if (gbad != want || cbad != want)
                    FAIL("first non-finite probes B %lld m %lld D %lld\n", (long long)B,
                         (long long)m, (long long)D);
                std::vector<double> gmean(B * D, 0.25), gm2(B * D, 1.5), cmean(gmean), cm2(gm2);
                cuda::diagonal_moments<T>(g.data(), av.data(), B, m, D, 3.0, gmean.data(),
                                          gm2.data(), 0, nullptr);
                cpu::diagonal_moments<T>(c.data(), av.data(), B, m, D, 3.0, cmean.data(),
                                         cm2.data());
                if (!same(gt, ct) || !same(gm, cm) || !same(gmean, cmean) || !same(gm2, cm2))
                    FAIL("trace moments B %lld m %lld D %lld\n", (long long)B, (long long)m,
                         (long long)D);
            }
}

template <class T>
void gmm() {
    // more components than a block's threads: the common level by two blocks
    const std::int64_t shapes[][2] = {{3, 5}, {300, 4}};  // K, D
    for (auto& shape : shapes) {
        const std::int64_t K = shape[0], D = shape[1], B = 7;
        auto means = values<double>(K * D, 27), vars = values<double>(K * D, 28, 0.2, 2);
        auto lw = values<double>(K, 29, -2, -0.5);
        const GmmParams p{means.data(), vars.data(), lw.data(), K, D};
        auto x = values<T>(B * D, 30, -3, 3);
        auto sig = values<double>(B, 31, 0, 2);
        for (int per_row = 0; per_row < 2; ++per_row) {
            const RowParam<double> s = per_row ? RowParam<double>{sig.data(), 0.0}
                                               : RowParam<double>{nullptr, 0.7};
            std::vector<double> gl(B), cl(B), gd(B), cd(B);
            std::vector<T> gs(x.size()), cs(x.size());
            std::vector<double> work(static_cast<std::size_t>(cuda::gmm_work(B, K, D, per_row)));
            cuda::gmm_eval<T>(p, x.data(), B, s, gl.data(), gs.data(), gd.data(), work.data(), 0,
                              nullptr);
            cpu::gmm_eval<T>(p, x.data(), B, s, cl.data(), cs.data(), cd.data());
            if (!same(gl, cl) || !same(gs, cs) || !same(gd, cd))
                FAIL("gmm K %lld per_row %d\n", (long long)K, per_row);
        }
    }
}

void reduce() {
    // one thread (B <= 64), a warp, a block (B > 4096); losses of either sign
    for (std::int64_t B : {0, 1, 7, 9, 64, 65, 1000, 4097, 9001}) {
        auto rows = values<double>(static_cast<std::size_t>(B), 26, -5, 5);
        for (int mean = 0; mean < 2; ++mean) {
            double got = -1;
            cuda::reduce_losses(rows.data(), B, mean, &got, 0, nullptr);
            double want = cpu::sum(rows.data(), B);
            if (mean) want = B ? want / static_cast<double>(B) : 0.0 / 0.0;
            if (!(std::memcmp(&got, &want, sizeof got) == 0 || (got != got && want != want)))
                FAIL("reduce_losses B %lld mean %d: %.17g vs %.17g\n", (long long)B, mean, got,
                     want);
        }
    }
}

// for_batched over a grid-stride loop of more than 2^32 items (no emulated
// launch reaches that many): each sampled thread visits exactly its items
// tid, tid + nthreads, ... below count, each once, and loads each before use.
void batched_64_bit_items() {
    const std::uint64_t count = (1ull << 32) + 1000, nthreads = 1ull << 21;
    for (const std::uint64_t tid : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{999},
                                    std::uint64_t{1000}, nthreads - 1}) {
        std::uint64_t next_load = tid, next_use = tid, loads = 0, uses = 0;
        bool ok = true;
        cuda::for_batched<std::uint64_t>(
            count, tid, nthreads,
            [&](std::uint64_t item, std::uint64_t& slot) {
                ok = ok && item == next_load && item < count;
                next_load = item + nthreads;
                slot = item;
                ++loads;
            },
            [&](std::uint64_t item, std::uint64_t slot) {
                ok = ok && item == next_use && slot == item && next_load > item;
                next_use = item + nthreads;
                ++uses;
            });
        const std::uint64_t want = (count - tid + nthreads - 1) / nthreads;
        if (!ok || loads != want || uses != want)
            FAIL("for_batched, 64-bit items: thread %llu took %llu / %llu items of %llu\n",
                 (unsigned long long)tid, (unsigned long long)loads, (unsigned long long)uses,
                 (unsigned long long)want);
    }
}

// Which kernel a row reduction takes (grid.hpp's chunk_threads): by size on
// the emulated device (2 x 2 blocks held at once: eight threads a chunk from 161
// chunks, 6 blocks of 32 chunks, one and a half times what it holds) for float32
// dsm_loss with its noise made again, a warp a chunk at every size with stored
// noise (a pass bound by memory) and in float64; or as set. Any other setting is
// refused.
template <class T>
unsigned dsm_chunk_grid(std::int64_t B, bool stored, int setting) {
    const std::int64_t D = cuda::kShortRow + 1;  // a chunk a row
    auto score = values<T>(static_cast<std::size_t>(B * D), 5);
    auto noise = values<T>(static_cast<std::size_t>(B * D), 6);
    std::vector<double> partial = guarded_work(cuda::dsm_work(B, D)), rows(B);
    const RowParam<T> sigma{nullptr, T(0.5)}, weight{nullptr, T(1)};
    cuda::set_chunk_threads(setting);
    emu::grids.clear();
    cuda::dsm_loss<T>(score.data(), stored ? noise.data() : nullptr, B, D, sigma, false, weight,
                      1.0, Stream{1, 2}, 0, partial.data(), rows.data(), nullptr, nullptr, 0,
                      nullptr);
    return emu::grids.size() == 2 ? emu::grids[0] : 0;  // (0: not two launches)
}

void chunk_threads_choice() {
    struct Case {
        std::int64_t B;
        bool f64, stored;
        int setting;
        unsigned grid;  // of the chunk kernel: B chunks, 32 a block or 8
    };
    for (const Case& c : {Case{64, false, false, 0, 8}, Case{160, false, false, 0, 20},
                          Case{161, false, false, 0, 6}, Case{400, false, false, 0, 13},
                          Case{65, false, false, 32, 9}, Case{64, false, false, 8, 2},
                          Case{400, false, true, 0, 50}, Case{400, false, true, 8, 13},
                          Case{400, true, false, 0, 50}, Case{400, true, false, 8, 13}}) {
        const unsigned grid = c.f64 ? dsm_chunk_grid<double>(c.B, c.stored, c.setting)
                                    : dsm_chunk_grid<float>(c.B, c.stored, c.setting);
        if (grid != c.grid)
            FAIL("chunk threads: B %lld %s stored %d setting %d: grid %u, not %u\n",
                 (long long)c.B, c.f64 ? "float64" : "float32", (int)c.stored, c.setting, grid,
                 c.grid);
    }
    for (int bad : {-1, 1, 16, 64, 256}) {
        bool raised = false;
        try {
            cuda::set_chunk_threads(bad);
        } catch (const std::invalid_argument&) {
            raised = true;
        }
        if (!raised) FAIL("set_chunk_threads(%d) must raise\n", bad);
    }
    cuda::set_chunk_threads(0);
}

// The launchers whose rows are reduced, float32 (run again with the other
// width of the row reductions on each overridden grid).
void reductions() {
    sphere<float>();
    dsm<float>();
    ssm<float>();
    ism<float>();
    corrector<float>();
    mala<float>();
    trace<float>();
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
    ssm<float>();
    ssm<double>();
    ism<float>();
    ism<double>();
    corrector<float>();
    corrector<double>();
    mala<float>();
    mala<double>();
    trace<float>();
    trace<double>();
    gmm<float>();
    gmm<double>();
    reduce();
}

}  // namespace

int main() {
    if (cuda::chunk_threads_setting() != 0) FAIL("the chunk threads must be chosen by default\n");
    chunk_threads_choice();
    batched_64_bit_items();
    all();                      // the launchers' own grids, chunk threads by size
    emu::grid_override = 1;     // one block: every grid-stride loop wraps
    emu::reverse = true;        // and the threads of a block in reverse order
    cuda::set_chunk_threads(8);
    all();
    emu::reverse = false;
    emu::grid_override = 3;
    cuda::set_chunk_threads(32);
    all();
    cuda::set_chunk_threads(8);  // the reductions with the other width on each grid:
    reductions();                // three blocks, eight threads a chunk
    emu::reverse = true;
    emu::grid_override = 1;
    cuda::set_chunk_threads(32);
    reductions();                // one block in reverse order, a warp a chunk
    emu::reverse = false;
    emu::grid_override = 0;
    cuda::set_chunk_threads(0);
    if (mala_taken == 0 || mala_rejected == 0)
        FAIL("the MALA cases must both accept and reject (%lld / %lld)\n", mala_taken,
             mala_rejected);
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
