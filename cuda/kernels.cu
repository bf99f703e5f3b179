// CUDA launchers over the shared functors of cpp/include/scorekit: the noise
// fills, perturb, langevin_step, noisy_affine_step and dsm_loss. Each thread
// takes whole Philox blocks (grid.hpp), so a value depends on its index only,
// never on the grid; dsm_loss sums its rows in the CPU's order (row_reduce.cuh),
// so its losses are the CPU's bits too. No floating-point atomics; 64-bit
// indices throughout.
#include <string>

#include "cuda_backend.hpp"
#include "row_reduce.cuh"
#include "scorekit/steps.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

namespace {

template <class Block, class T>
__global__ void fill_kernel(Stream st, BlockUnits bu, T* out) {
    const std::uint64_t units = bu.units();
    for (std::uint64_t u = first_unit(); u < units; u += unit_stride()) {
        T v[Block::kPerBlock];
        make_block<Block>(st, bu.block(u), v);
        const std::uint64_t b = bu.begin(u), e = bu.end(u), s = bu.skip(u);
        for (std::uint64_t i = b; i < e; ++i) out[i] = v[s + (i - b)];
    }
}

// Elementwise kernels with normal noise: op.row(b) when an element starts row b
// (once per unit, then at each row boundary inside it: one division per unit),
// op(i, z_i) for every element i of the flat B x D range.
// Sphere probes: each row of D normals rescaled to norm sqrt(D). Short rows one
// thread per row through the CPU's functions; longer rows take their sums of
// squares from the row reduction (the CPU's order), then one thread per element.
template <class T>
__global__ void sphere_rows_kernel(T* v, std::int64_t rows, std::int64_t D) {
    for (std::uint64_t r = first_unit(); r < static_cast<std::uint64_t>(rows); r += unit_stride()) {
        T* row = v + static_cast<std::int64_t>(r) * D;
        scale_row(row, D, sphere_factor(chunked_dot(row, row, D), D));
    }
}

template <class T>
__global__ void scale_rows_kernel(T* v, std::int64_t rows, std::int64_t D, const double* factor) {
    for (std::uint64_t i = first_unit(); i < static_cast<std::uint64_t>(rows * D);
         i += unit_stride()) {
        const auto e = static_cast<std::int64_t>(i);
        v[e] = static_cast<T>(static_cast<double>(v[e]) * factor[e / D]);
    }
}

template <class T, class Op>
__global__ void noisy_rows_kernel(Stream st, BlockUnits bu, std::int64_t D, Op op) {
    const std::uint64_t units = bu.units();
    for (std::uint64_t u = first_unit(); u < units; u += unit_stride()) {
        T z[NormalBlock<T>::kPerBlock];
        make_block<NormalBlock<T>>(st, bu.block(u), z);
        const std::uint64_t b = bu.begin(u), e = bu.end(u), s = bu.skip(u);
        std::int64_t row = static_cast<std::int64_t>(b) / D;
        std::uint64_t row_end = static_cast<std::uint64_t>((row + 1) * D);
        op.row(row);
        for (std::uint64_t i = b; i < e; ++i) {
            if (i == row_end) {  // a unit of <= 4 elements crosses into the next row(s)
                row = static_cast<std::int64_t>(i) / D;
                row_end = static_cast<std::uint64_t>((row + 1) * D);
                op.row(row);
            }
            op(i, z[s + (i - b)]);
        }
    }
}

template <class T>
struct PerturbOp {
    const T* x;
    RowParam<T> scale, sigma;
    T* out;
    T a, s;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { a = scale(b), s = sigma(b); }
    __device__ SCOREKIT_INLINE void operator()(std::uint64_t i, T z) {
        out[i] = perturb_value(x[i], z, a, s);
    }
};

template <class T>
struct LangevinOp {
    const T* x;
    const T* score;
    RowParam<T> step;
    T* out;
    LangevinRow<T> lr;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { lr = LangevinRow<T>(step(b)); }
    __device__ SCOREKIT_INLINE void operator()(std::uint64_t i, T z) {
        out[i] = lr.apply(x[i], score[i], z);
    }
};

template <class T>
struct AffineOp {
    const T* x;
    const T* score;
    RowParam<T> a, c, g;
    T* out;
    T* out_mean;
    AffineStep<T> step;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { step = AffineStep<T>{a(b), c(b), g(b)}; }
    __device__ SCOREKIT_INLINE void operator()(std::uint64_t i, T z) {
        const T m = step.mean(x[i], score[i]);
        if (out_mean) out_mean[i] = m;
        out[i] = step.next(m, z);
    }
};

// dsm_loss: values q_j^2 of the residuals q = sigma s + z (the gradient written
// on the way), noise stored or regenerated; rows of D elements.
template <class T>
struct DsmOp {
    static constexpr int kSums = 1;
    const T* score;
    const T* noise;  // stored noise, or null: regenerate
    std::int64_t D;
    DsmRows<T> row;  // row(b): sample b's DsmRow
    Stream st;
    std::uint64_t stream_first;
    T* grad;

    __device__ SCOREKIT_INLINE void values(std::int64_t b, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t, unsigned tid,
                                           unsigned nthreads) const {
        const DsmRow<T> r = row(b);
        const std::int64_t base = b * D + j0;
        auto put = [&](std::int64_t i, T z) {
            const T q = r.residual(score[base + i], z);
            if (grad) grad[base + i] = r.grad_scale * q;
            vals[i] = static_cast<double>(q) * static_cast<double>(q);
        };
        if (noise) {
            for (std::int64_t i = tid; i < n; i += nthreads) put(i, noise[base + i]);
        } else {
            for_stream_values<NormalBlock<T>, T>(st, stream_first + static_cast<std::uint64_t>(base),
                                                 n, tid, nthreads, put);
        }
    }
};

template <class T>
struct DsmFin {
    DsmOp<T> op;
    double* row_loss;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t b, const double* sums) const {
        row_loss[b] = 0.5 * op.row(b).loss_scale * sums[0];
    }
};

}  // namespace

int device_count(std::string* why) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why) *why = cudaGetErrorString(err);
        cudaGetLastError();  // clear the "no driver / no device" error
        return 0;
    }
    if (why) *why = n ? "" : "no CUDA device";
    return n;
}

template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out, int device,
                void* stream) {
    if (n <= 0) return;
    const OnDevice on(device);
    const auto N = static_cast<std::uint64_t>(n);
    switch (kind) {
        case NoiseKind::Normal: {
            const BlockUnits bu{offset, N, NormalBlock<T>::kPerBlock};
            fill_kernel<NormalBlock<T>, T><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(st, bu, out);
            break;
        }
        case NoiseKind::Uniform: {
            const BlockUnits bu{offset, N, UniformBlock<T>::kPerBlock};
            fill_kernel<UniformBlock<T>, T><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(st, bu, out);
            break;
        }
        case NoiseKind::Rademacher: {
            const BlockUnits bu{offset, N, RademacherBlock<T>::kPerBlock};
            fill_kernel<RademacherBlock<T>, T><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(st, bu, out);
            break;
        }
    }
    check(cudaGetLastError(), "noise kernel launch");
}

template <class T>
void sphere_rows(T* v, std::int64_t rows, std::int64_t D, double* work, int device,
                 void* stream) {
    if (rows <= 0 || D <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    if (D <= kShortRow) {
        sphere_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0, s>>>(
            v, rows, D);
        check(cudaGetLastError(), "sphere probe kernel launch");
        return;
    }
    double* factor = work;  // then the reduction's partial sums
    row_reduce(rows, D, kReduceChunk, DotOp<T>{v, v, D}, SphereFactorFin{factor, D},
               factor + rows, s, "sphere probe kernel launch");
    scale_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(rows * D)), kThreads, 0, s>>>(
        v, rows, D, factor);
    check(cudaGetLastError(), "sphere probe kernel launch");
}

template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, std::uint64_t first_sample, T* out, int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const BlockUnits bu{first_sample * static_cast<std::uint64_t>(D),
                        static_cast<std::uint64_t>(B * D), NormalBlock<T>::kPerBlock};
    const PerturbOp<T> op{x, scale, sigma, out, T(0), T(0)};
    noisy_rows_kernel<T, PerturbOp<T>><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(
        st, bu, D, op);
    check(cudaGetLastError(), "perturb kernel launch");
}

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, std::uint64_t first_sample, T* out,
                   int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const BlockUnits bu{first_sample * static_cast<std::uint64_t>(D),
                        static_cast<std::uint64_t>(B * D), NormalBlock<T>::kPerBlock};
    const LangevinOp<T> op{x, score, step_size, out, LangevinRow<T>(T(0))};
    noisy_rows_kernel<T, LangevinOp<T>><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(
        st, bu, D, op);
    check(cudaGetLastError(), "langevin_step kernel launch");
}

template <class T>
void affine_step(const T* x, const T* score, std::int64_t B, std::int64_t D, RowParam<T> a,
                 RowParam<T> c, RowParam<T> g, Stream st, std::uint64_t first_sample, T* out,
                 T* out_mean, int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const BlockUnits bu{first_sample * static_cast<std::uint64_t>(D),
                        static_cast<std::uint64_t>(B * D), NormalBlock<T>::kPerBlock};
    const AffineOp<T> op{x, score, a, c, g, out, out_mean, AffineStep<T>{T(0), T(0), T(0)}};
    noisy_rows_kernel<T, AffineOp<T>><<<grid_for(bu.units()), kThreads, 0, as_stream(stream)>>>(
        st, bu, D, op);
    check(cudaGetLastError(), "noisy_affine_step kernel launch");
}

template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* partial, double* row_loss, T* grad, int device,
              void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    const DsmOp<T> op{score, noise, D, DsmRows<T>{sigma, weight_is_sigma2, weight, batch_scale},
                      st, first_sample * static_cast<std::uint64_t>(D), grad};
    row_reduce(B, D, kReduceChunk, op, DsmFin<T>{op, row_loss}, partial, as_stream(stream),
               "dsm_loss kernel launch");
}

namespace {
// The reduction of per-sample losses, as the CPU's: a LaneSum8 sum over the rows
// (one thread), divided by B for a mean (NaN for an empty batch).
__global__ void reduce_losses_kernel(const double* rows, std::int64_t B, bool mean, double* out) {
    if (first_unit() != 0) return;
    const double total = lane_sum(rows, B);
    out[0] = !mean ? total : (B > 0 ? total / static_cast<double>(B) : 0.0 / 0.0);
}
}  // namespace

void reduce_losses(const double* rows, std::int64_t B, bool mean, double* out, int device,
                   void* stream) {
    const OnDevice on(device);
    reduce_losses_kernel<<<1, 1, 0, as_stream(stream)>>>(rows, B, mean, out);
    check(cudaGetLastError(), "loss reduction kernel launch");
}

#define SCOREKIT_CUDA_INSTANTIATE(T)                                                              \
    template void fill_noise<T>(NoiseKind, Stream, std::uint64_t, std::int64_t, T*, int, void*);  \
    template void sphere_rows<T>(T*, std::int64_t, std::int64_t, double*, int, void*);            \
    template void perturb<T>(const T*, std::int64_t, std::int64_t, RowParam<T>, RowParam<T>,      \
                             Stream, std::uint64_t, T*, int, void*);                              \
    template void langevin_step<T>(const T*, const T*, std::int64_t, std::int64_t, RowParam<T>,   \
                                   Stream, std::uint64_t, T*, int, void*);                        \
    template void affine_step<T>(const T*, const T*, std::int64_t, std::int64_t, RowParam<T>,     \
                                 RowParam<T>, RowParam<T>, Stream, std::uint64_t, T*, T*, int,    \
                                 void*);                                                          \
    template void dsm_loss<T>(const T*, const T*, std::int64_t, std::int64_t, RowParam<T>, bool,  \
                              RowParam<T>, double, Stream, std::uint64_t, double*, double*, T*,   \
                              int, void*);
SCOREKIT_CUDA_INSTANTIATE(float)
SCOREKIT_CUDA_INSTANTIATE(double)
#undef SCOREKIT_CUDA_INSTANTIATE

}  // namespace cuda
}  // namespace scorekit
