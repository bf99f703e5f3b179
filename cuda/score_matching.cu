// CUDA sliced and implicit score matching over the shared functors: probes
// regenerated from the stream (never stored), the dot products of each probe
// row reduced in the CPU's order (row_reduce.cuh), then per-sample losses and
// the gradients, so losses and gradients are the CPU backend's bits. The
// gradients that need no reduced value (d/d(Jv), and d/ds = scale * s) are
// written by the reductions' own passes, as each element's values are made.
#include <initializer_list>
#include <type_traits>

#include "cuda_backend.hpp"
#include "row_reduce.cuh"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

namespace {

// The probe rows of a call: row r (= b * K + k) is stream row first_row + r viewed
// as rows of D elements; a sphere row is scaled by factor[r].
template <class T>
struct ProbeRows {
    ProbeKind kind;
    Stream st;
    std::uint64_t first_row;
    std::int64_t D;
    const double* factor;

    // f(i, v) for elements j0 + i (i < n) of row r, before the sphere scaling unless `scaled`.
    template <class F>
    __device__ SCOREKIT_INLINE void values(std::int64_t r, std::int64_t j0, std::int64_t n,
                                           unsigned tid, unsigned nthreads, bool scaled,
                                           F&& f) const {
        const std::uint64_t first =
            (first_row + static_cast<std::uint64_t>(r)) * static_cast<std::uint64_t>(D) +
            static_cast<std::uint64_t>(j0);
        if (kind == ProbeKind::Rademacher) {
            for_stream_values<RademacherBlock<T>, T>(st, first, n, tid, nthreads, f);
        } else if (kind == ProbeKind::Sphere && scaled) {
            const double c = factor[r];
            for_stream_values<NormalBlock<T>, T>(st, first, n, tid, nthreads, [&](std::int64_t i, T g) {
                f(i, static_cast<T>(static_cast<double>(g) * c));
            });
        } else {
            for_stream_values<NormalBlock<T>, T>(st, first, n, tid, nthreads, f);
        }
    }

    // The scaled values of elements j0 + i (i < n) of row r, for_stream_spans
    // (launch.cuh) over the kind's blocks: in = load(at), the block's K values v
    // made (a T[K]; K the kind's block size), then f(at, v, in). kWhole: row r's
    // element j0 starts a block, n is a multiple of K (at most a tile) and the
    // arrays are 16-byte aligned.
    template <bool kWhole, class L, class F>
    __device__ SCOREKIT_INLINE void spans(std::int64_t r, std::int64_t j0, std::int64_t n,
                                          unsigned tid, unsigned nthreads, L&& load,
                                          F&& f) const {
        const std::uint64_t first =
            (first_row + static_cast<std::uint64_t>(r)) * static_cast<std::uint64_t>(D) +
            static_cast<std::uint64_t>(j0);
        const auto scaled = [&](double c) {
            return [&, c](const auto& at, auto& v, const auto& in) {
#pragma unroll
                for (auto& x : v) x = static_cast<T>(static_cast<double>(x) * c);
                f(at, v, in);
            };
        };
        if (kind == ProbeKind::Rademacher)
            for_stream_spans<RademacherBlock<T>, kWhole, T>(st, first, n, tid, nthreads, load, f);
        else if (kind == ProbeKind::Sphere)
            for_stream_spans<NormalBlock<T>, kWhole, T>(st, first, n, tid, nthreads, load,
                                                        scaled(factor[r]));
        else
            for_stream_spans<NormalBlock<T>, kWhole, T>(st, first, n, tid, nthreads, load, f);
    }
};

// Whether a call's probe rows go by whole stream blocks (ProbeRows::spans) with
// 16-byte access to `arrays` (whole_words over the kind's block size).
template <class T>
bool probe_blocks(ProbeKind kind, std::int64_t D, std::initializer_list<const void*> arrays) {
    return whole_words(D,
                       kind == ProbeKind::Rademacher ? RademacherBlock<T>::kPerBlock
                                                     : NormalBlock<T>::kPerBlock,
                       arrays);
}

// Sphere rows: sum of squares of the Gaussian row, then its factor.
template <class T>
struct SphereSquaresOp {
    static constexpr int kSums = 1;
    ProbeRows<T> src;
    __device__ SCOREKIT_INLINE void values(std::int64_t r, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t, unsigned tid,
                                           unsigned nthreads) const {
        src.values(r, j0, n, tid, nthreads, false, [&](std::int64_t i, T g) {
            vals[i] = static_cast<double>(g) * static_cast<double>(g);
        });
    }
};

// a = v . (J v) and, for N = 2, c = v . s of probe row r (sample r / K); with
// grad_jvp, d/d(Jv) = jvp_scale v written on the way. Each stream block's jvp
// (and score) values are read before its probes are made (ProbeRows::spans).
template <class T, int N>
struct SsmDotsOp {
    static constexpr int kSums = N;
    ProbeRows<T> src;
    const T* score;
    const T* jvp;
    std::int64_t K;
    T* grad_jvp;  // or null
    T jvp_scale;  // (T)(scale / K)
    bool vec;     // probe_blocks: whole blocks, one 16-byte access per array and word

    template <int KB>
    struct In {  // a block's jvp (a) and score (c) values
        T a[KB];
        T c[N == 2 ? KB : 1];
    };

    __device__ SCOREKIT_INLINE void values(std::int64_t r, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t stride, unsigned tid,
                                           unsigned nthreads) const {
        const T* jv = jvp + r * src.D + j0;
        const T* s = score + (r / K) * src.D + j0;
        T* gj = grad_jvp ? grad_jvp + r * src.D + j0 : nullptr;
        auto load = [&](const auto& at) {
            using Span = std::decay_t<decltype(at)>;
            In<Span::kValues> in;
            load_span(jv, at, in.a);
            if constexpr (N == 2) load_span(s, at, in.c);
            return in;
        };
        auto put = [&](const auto& at, const auto& v, const auto& in) {
            using Span = std::decay_t<decltype(at)>;
            T g[Span::kValues];
#pragma unroll
            for (int k = 0; k < Span::kValues; ++k) {
                if (!at.in(k)) continue;
                const std::int64_t i = at.i0 + k;
                vals[i] = static_cast<double>(v[k]) * static_cast<double>(in.a[k]);
                if constexpr (N == 2)
                    vals[stride + i] = static_cast<double>(v[k]) * static_cast<double>(in.c[k]);
                g[k] = jvp_scale * v[k];
            }
            if (gj) store_span(gj, at, g);
        };
        // (the reductions' runs start at multiples of 8, and with vec D is whole blocks)
        if (vec)
            src.template spans<true>(r, j0, n, tid, nthreads, load, put);
        else
            src.template spans<false>(r, j0, n, tid, nthreads, load, put);
    }
};

// Row sums of squares of a (each element's square in double, as DotOp with
// a = b) and, with scaled, scale * a written on the way (d/ds = scale * s).
// vec: rows of whole 16-byte words (D a multiple of kWord, arrays aligned),
// one 16-byte access per array and word. A thread's words (elements without
// vec) are read four at a time before they are written (for_batched): in a
// whole float32 tile, all its words (float64: two batches).
template <class T>
struct SquaresOp {
    static constexpr int kSums = 1;
    static constexpr int kWord = 16 / static_cast<int>(sizeof(T));
    const T* a;
    std::int64_t D;
    T* scaled;  // or null
    T scale;
    bool vec;
    __device__ SCOREKIT_INLINE void values(std::int64_t row, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t, unsigned tid,
                                           unsigned nthreads) const {
        const T* ra = a + row * D + j0;
        T* out = scaled ? scaled + row * D + j0 : nullptr;
        auto put = [&](std::int64_t i, T x) {  // returns the scaled value
            vals[i] = static_cast<double>(x) * static_cast<double>(x);
            return scale * x;
        };
        const auto count = static_cast<unsigned>(n);  // (n is at most a tile)
        if (vec) {  // (then n, a tile or a row's last run, is whole words too)
            for_batched<Vals<T, kWord>>(
                count / kWord, tid, nthreads,
                [&](unsigned w, Vals<T, kWord>& x) { load_vec(ra + w * kWord, x.v); },
                [&](unsigned w, const Vals<T, kWord>& x) {
                    T y[kWord];
#pragma unroll
                    for (int k = 0; k < kWord; ++k) y[k] = put(w * kWord + k, x.v[k]);
                    if (out) store_vec(out + w * kWord, y);
                });
        } else {
            for_batched<T>(
                count, tid, nthreads, [&](unsigned i, T& x) { x = ra[i]; },
                [&](unsigned i, T x) {
                    const T y = put(i, x);
                    if (out) out[i] = y;
                });
        }
    }
};

// SquaresOp over rows of D elements of a, scaled written to `scaled` (or null).
template <class T>
SquaresOp<T> squares_op(const T* a, std::int64_t D, T* scaled, double scale) {
    return {a, D, scaled, static_cast<T>(scale), whole_words(D, SquaresOp<T>::kWord, {a, scaled})};
}

template <int N>
struct DotsFin {
    double* dots;  // (a, c) per probe row
    __device__ SCOREKIT_INLINE void operator()(std::int64_t r, const double* sums) const {
        dots[2 * r] = sums[0];
        dots[2 * r + 1] = N == 2 ? sums[1] : 0.0;
    }
};

// Per sample: the mean of the K probe terms, in k order; with ck, the
// coefficients (T)(scale c_k / K) of the SSM score gradient (held as doubles).
template <class T>
__global__ void ssm_rows_kernel(const double* dots, const double* ss, std::int64_t B,
                                std::int64_t K, bool variance_reduced, double batch_scale,
                                LossRows<T> out, double* ck) {
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B); u += unit_stride()) {
        const auto b = static_cast<std::int64_t>(u);
        const double ssb = variance_reduced ? ss[b] : 0.0;
        double total = 0.0;
        for (std::int64_t k = 0; k < K; ++k) {
            const std::int64_t r = b * K + k;
            total += ssm_term(dots[2 * r], dots[2 * r + 1], ssb, variance_reduced);
            if (ck)
                ck[r] = static_cast<double>(
                    static_cast<T>(batch_scale * dots[2 * r + 1] / static_cast<double>(K)));
        }
        out.store(b, total / static_cast<double>(K));
    }
}

// The score gradient of SSM without variance reduction, kGradGroup elements of one sample
// per thread: d/ds = sum_k ck_k v_k, added in k order (as the CPU does).
constexpr std::int64_t kGradGroup = 8;

// of_group: the sample of unit u (groups units per sample), without a 64-bit division.
template <class T>
__global__ void ssm_grad_kernel(ProbeRows<T> src, const double* ck, std::int64_t B,
                                std::int64_t K, RowOf of_group, T* grad_score) {
    const std::int64_t D = src.D, groups = of_group.D;
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B * groups);
         u += unit_stride()) {
        const std::int64_t b = of_group(static_cast<std::int64_t>(u));
        const std::int64_t j0 = (static_cast<std::int64_t>(u) - b * groups) * kGradGroup;
        const std::int64_t n = D - j0 < kGradGroup ? D - j0 : kGradGroup;
        T gs[kGradGroup];
        for (std::int64_t k = 0; k < K; ++k) {
            const std::int64_t r = b * K + k;
            const T c = static_cast<T>(ck[r]);
            src.values(r, j0, n, 0, 1, true, [&](std::int64_t i, T v) {
                gs[i] = k == 0 ? c * v : gs[i] + c * v;
            });
        }
        for (std::int64_t i = 0; i < n; ++i) grad_score[b * D + j0 + i] = gs[i];
    }
}

template <class T>
struct IsmFin {
    const T* trace;
    LossRows<T> out;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t b, const double* sums) const {
        out.store(b, ism_term(sums[0], static_cast<double>(trace[b])));
    }
};

}  // namespace

template <class T>
void ssm_loss(ProbeKind kind, Stream st, std::uint64_t first_sample, const T* score, const T* jvp,
              std::int64_t B, std::int64_t K, std::int64_t D, bool variance_reduced,
              double batch_scale, double* work, double* row_loss, T* row_loss_out, T* grad_score,
              T* grad_jvp, int device, void* stream) {
    if (B <= 0) return;
    K = ssm_probes_needed(K, D);
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    const std::int64_t R = B * K;
    double* partial = work;
    double* factor = partial + reduce_scratch(R, D, kReduceChunk, 2);
    double* dots = factor + R;
    double* ss = dots + 2 * R;
    double* ck = ss + B;
    const ProbeRows<T> src{kind, st, first_sample * static_cast<std::uint64_t>(K), D, factor};
    if (kind == ProbeKind::Sphere)
        row_reduce(R, D, kReduceChunk, SphereSquaresOp<T>{src}, SphereFactorFin{factor, D},
                   partial, s, "ssm_loss sphere probe kernel launch");
    const T jvp_scale = static_cast<T>(batch_scale / static_cast<double>(K));
    // (the score is read by the probes' pass only without variance reduction)
    const bool vec =
        probe_blocks<T>(kind, D, {variance_reduced ? nullptr : score, jvp, grad_jvp});
    if (variance_reduced) {  // d/ds = scale * s: written by the pass over s
        row_reduce(R, D, kReduceChunk,
                   SsmDotsOp<T, 1>{src, score, jvp, K, grad_jvp, jvp_scale, vec},
                   DotsFin<1>{dots}, partial, s, "ssm_loss kernel launch");
        row_reduce(B, D, kReduceChunk, squares_op(score, D, grad_score, batch_scale),
                   StoreFin{ss}, partial, s, "ssm_loss kernel launch");
    } else {
        row_reduce(R, D, kReduceChunk,
                   SsmDotsOp<T, 2>{src, score, jvp, K, grad_jvp, jvp_scale, vec},
                   DotsFin<2>{dots}, partial, s, "ssm_loss kernel launch");
    }
    const bool score_from_probes = grad_score && !variance_reduced;
    ssm_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0, s>>>(
        dots, ss, B, K, variance_reduced, batch_scale, LossRows<T>{row_loss, row_loss_out},
        score_from_probes ? ck : nullptr);
    check(cudaGetLastError(), "ssm_loss row kernel launch");
    if (score_from_probes) {  // d/ds = sum_k ck_k v_k: the probes once more, after ck
        const std::int64_t groups = (D + kGradGroup - 1) / kGradGroup;
        const auto units = static_cast<std::uint64_t>(B * groups);
        ssm_grad_kernel<T><<<grid_for(units), kThreads, 0, s>>>(src, ck, B, K,
                                                                RowOf::of(groups), grad_score);
        check(cudaGetLastError(), "ssm_loss gradient kernel launch");
    }
}

template <class T>
void ism_loss(const T* score, const T* trace, std::int64_t B, std::int64_t D, double batch_scale,
              double* work, double* row_loss, T* row_loss_out, T* grad_score, int device,
              void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    // d/ds = scale * s, written by the pass that sums the squares
    row_reduce(B, D, kReduceChunk, squares_op(score, D, grad_score, batch_scale),
               IsmFin<T>{trace, {row_loss, row_loss_out}}, work, s, "ism_loss kernel launch");
}

#define SCOREKIT_CUDA_INSTANTIATE(T)                                                               \
    template void ssm_loss<T>(ProbeKind, Stream, std::uint64_t, const T*, const T*, std::int64_t,  \
                              std::int64_t, std::int64_t, bool, double, double*, double*, T*, T*,  \
                              T*, int, void*);                                                     \
    template void ism_loss<T>(const T*, const T*, std::int64_t, std::int64_t, double, double*,     \
                              double*, T*, T*, int, void*);
SCOREKIT_CUDA_INSTANTIATE(float)
SCOREKIT_CUDA_INSTANTIATE(double)
#undef SCOREKIT_CUDA_INSTANTIATE

}  // namespace cuda
}  // namespace scorekit
