// CUDA sampler steps over the shared functors: the Langevin corrector (noise and
// score norms reduced in the CPU's order, its step sizes, then the affine step)
// and the MALA accept / reject (the two squared norms of a row reduced chunk by
// chunk in the CPU's order), so the results are the CPU backend's bits.
#include "cuda_backend.hpp"
#include "row_reduce.cuh"
#include "scorekit/steps.hpp"

namespace scorekit {
namespace cuda {

namespace {

// |z_b|^2 (the step's normals, regenerated) and |s_b|^2.
template <class T>
struct CorrectorNormsOp {
    static constexpr int kSums = 2;
    // the noise made again binds the pass to its instructions (row_reduce.cuh)
    static constexpr bool kGroupsPay = true;
    const T* score;
    std::int64_t D;
    Stream st;
    std::uint64_t stream_first;
    __device__ SCOREKIT_INLINE void values(std::int64_t b, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t stride, unsigned tid,
                                           unsigned nthreads) const {
        const std::int64_t base = b * D + j0;
        for_stream_values<NormalBlock<T>, T>(st, stream_first + static_cast<std::uint64_t>(base), n,
                                             tid, nthreads, [&](std::int64_t i, T z) {
            vals[i] = static_cast<double>(z) * static_cast<double>(z);
        });
        for (std::int64_t i = tid; i < n; i += nthreads)
            vals[stride + i] = static_cast<double>(score[base + i]) * static_cast<double>(score[base + i]);
    }
};

struct NormsFin {
    double* znorm;
    double* snorm;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t b, const double* sums) const {
        znorm[b] = sqrt_of(sums[0]);
        snorm[b] = sqrt_of(sums[1]);
    }
};

template <class T>
__global__ void corrector_steps_kernel(const double* znorm, const double* snorm,
                                       const double* means, std::int64_t B, double snr,
                                       RowParam<T> alpha, double* step, T* c, T* g) {
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B); u += unit_stride()) {
        const auto b = static_cast<std::int64_t>(u);
        const double eps = means ? snr_step_size(snr, alpha(b), means[0], means[1])
                                 : snr_step_size(snr, alpha(b), znorm[b], snorm[b]);
        step[b] = eps;
        c[b] = static_cast<T>(eps);
        g[b] = static_cast<T>(sqrt_of(2.0 * eps));
    }
}

// |x' - x - h s(x)|^2 and |x - x' - h s(x')|^2 of a row.
template <class T>
struct MalaOp {
    static constexpr int kSums = 2;
    const T* x;
    const T* score_x;
    const T* x_prop;
    const T* score_prop;
    std::int64_t D;
    RowParam<T> h;
    __device__ SCOREKIT_INLINE void values(std::int64_t b, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t stride, unsigned tid,
                                           unsigned nthreads) const {
        const std::int64_t base = b * D + j0;
        const double hb = static_cast<double>(h(b));
        for (std::int64_t i = tid; i < n; i += nthreads) {
            const std::int64_t k = base + i;
            const MalaTerms t = mala_terms(x[k], score_x[k], x_prop[k], score_prop[k], hb);
            vals[i] = t.fwd;
            vals[stride + i] = t.bwd;
        }
    }
};

template <class T>
struct MalaFin {
    const double* logp_x;
    const double* logp_prop;
    RowParam<T> h;
    Stream st;
    std::uint64_t first_sample;
    double* logp_out;
    std::uint8_t* accepted;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t b, const double* sums) const {
        double u;
        fill_range<UniformBlock<double>>(st, mala_uniform_element(first_sample, b), 1, &u);
        const bool take = mala_accepts(
            mala_log_ratio(logp_x[b], logp_prop[b], sums[0], sums[1], static_cast<double>(h(b))), u);
        accepted[b] = take ? 1 : 0;
        logp_out[b] = take ? logp_prop[b] : logp_x[b];
    }
};

// The new state and score: each element from the proposal where its row was
// accepted, else from the current state. W: values a thread moves at once, a
// 16-byte word (D whole words, the six arrays 16-byte aligned) or one.
template <class T, int W>
__global__ void mala_select_kernel(const T* x, const T* score_x, const T* x_prop,
                                   const T* score_prop, const std::uint8_t* accepted,
                                   std::int64_t n, RowOf of_row, T* x_out, T* score_out) {
    struct Slot {  // a word's state and score, from the taken side
        T a[W], s[W];
    };
    // a word lies in one row (W divides D); four words a thread read before any is written
    for_batched<Slot>(
        static_cast<std::uint64_t>(n) / W, first_unit(), unit_stride(),
        [&](std::uint64_t u, Slot& v) {
            const auto i = static_cast<std::int64_t>(u * W);
            const bool take = accepted[of_row(i)] != 0;
            const T* a = (take ? x_prop : x) + i;
            const T* s = (take ? score_prop : score_x) + i;
            if constexpr (W > 1) {
                load_vec(a, v.a);
                load_vec(s, v.s);
            } else {
                v.a[0] = *a, v.s[0] = *s;
            }
        },
        [&](std::uint64_t u, const Slot& v) {
            const auto i = static_cast<std::int64_t>(u * W);
            if constexpr (W > 1) {
                store_vec(x_out + i, v.a);
                store_vec(score_out + i, v.s);
            } else {
                x_out[i] = v.a[0], score_out[i] = v.s[0];
            }
        });
}

}  // namespace

template <class T>
void langevin_corrector(const T* x, const T* score, std::int64_t B, std::int64_t D, double snr,
                        RowParam<T> alpha, bool per_sample, Stream st, std::uint64_t first_sample,
                        T* out, T* out_mean, double* step, double* work, int device,
                        void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    double* partial = work;
    double* znorm = partial + reduce_scratch(B, D, kReduceChunk, 2);
    double* snorm = znorm + B;
    double* means = snorm + B;
    T* c = reinterpret_cast<T*>(means + 2);
    T* g = reinterpret_cast<T*>(means + 2 + B);
    row_reduce(B, D, kReduceChunk,
               CorrectorNormsOp<T>{score, D, st, first_sample * static_cast<std::uint64_t>(D)},
               NormsFin{znorm, snorm}, partial, s, "corrector_step kernel launch");
    if (!per_sample)  // the batch means of the norms, lane_sum(norms, B) / B as on the CPU
        lane_sums(B, ArraysOp<2>{{znorm, snorm}}, QuotientFin<2>{means, static_cast<double>(B)},
                  means, s, "corrector_step kernel launch");
    corrector_steps_kernel<T><<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0, s>>>(
        znorm, snorm, per_sample ? nullptr : means, B, snr, alpha, step, c, g);
    check(cudaGetLastError(), "corrector_step kernel launch");
    affine_step<T>(x, score, B, D, RowParam<T>{nullptr, T(1)}, RowParam<T>{c, T(0)},
                   RowParam<T>{g, T(0)}, st, first_sample, out, out_mean, device, stream);
}

template <class T>
void mala_accept(const T* x, const T* score_x, const double* logp_x, const T* x_prop,
                 const T* score_prop, const double* logp_prop, std::int64_t B, std::int64_t D,
                 RowParam<T> h, Stream st, std::uint64_t first_sample, T* x_out, T* score_out,
                 double* logp_out, std::uint8_t* accepted, double* work, int device,
                 void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    row_reduce(B, D, kReduceChunk, MalaOp<T>{x, score_x, x_prop, score_prop, D, h},
               MalaFin<T>{logp_x, logp_prop, h, st, first_sample, logp_out, accepted}, work, s,
               "mala_accept kernel launch");
    if (D > 0) {
        constexpr int W = 16 / static_cast<int>(sizeof(T));
        const auto n = static_cast<std::uint64_t>(B * D);
        const bool vec = whole_words(D, W, {x, score_x, x_prop, score_prop, x_out, score_out});
        if (vec)
            mala_select_kernel<T, W><<<grid_for(n / W), kThreads, 0, s>>>(
                x, score_x, x_prop, score_prop, accepted, B * D, RowOf::of(D), x_out, score_out);
        else
            mala_select_kernel<T, 1><<<grid_for(n), kThreads, 0, s>>>(
                x, score_x, x_prop, score_prop, accepted, B * D, RowOf::of(D), x_out, score_out);
        check(cudaGetLastError(), "mala_accept kernel launch");
    }
}

#define SCOREKIT_CUDA_INSTANTIATE(T)                                                              \
    template void langevin_corrector<T>(const T*, const T*, std::int64_t, std::int64_t, double,   \
                                        RowParam<T>, bool, Stream, std::uint64_t, T*, T*,         \
                                        double*, double*, int, void*);                            \
    template void mala_accept<T>(const T*, const T*, const double*, const T*, const T*,           \
                                 const double*, std::int64_t, std::int64_t, RowParam<T>, Stream,  \
                                 std::uint64_t, T*, T*, double*, std::uint8_t*, double*, int,     \
                                 void*);
SCOREKIT_CUDA_INSTANTIATE(float)
SCOREKIT_CUDA_INSTANTIATE(double)
#undef SCOREKIT_CUDA_INSTANTIATE

}  // namespace cuda
}  // namespace scorekit
