// CUDA launchers over the shared functors of cpp/include/scorekit: the noise
// fills, perturb, langevin_step, noisy_affine_step and dsm_loss. Each thread
// takes whole Philox blocks (grid.hpp), so a value depends on its index only,
// never on the grid; dsm_loss sums its rows in the CPU's order (row_reduce.cuh),
// so its losses are the CPU's bits too. No floating-point atomics; 64-bit
// indices throughout.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda_backend.hpp"
#include "row_reduce.cuh"
#include "scorekit/steps.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

namespace {

// (st: the round keys come with the parameters, as for noisy_rows_kernel.)
// kAligned: output element 0 starts a stream block and out is 16-byte aligned,
// so every whole unit is one or two vector stores.
template <class Block, class T, bool kAligned>
__global__ void fill_kernel(KeyedStream st, BlockUnits<Block::kPerBlock> bu, T* out) {
    constexpr int K = Block::kPerBlock;
    const std::uint64_t units = bu.units(), whole = bu.n / K;  // aligned: units [0, whole) full
    for (std::uint64_t u = first_unit(); u < units; u += unit_stride()) {
        T v[K];
        make_block<Block>(st, bu.block(u), v);
        if (kAligned && u < whole)
            store_vec(out + u * K, v);
        else
            for_unit_values(bu, u, v, [&](std::uint64_t i, T x) { out[i] = x; });
    }
}

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

// v[e] *= factor[row of e], in place: four elements a thread read before any is
// written (one at a time, each load would wait for the store before it).
template <class T>
__global__ void scale_rows_kernel(T* v, std::int64_t rows, RowOf of_row, const double* factor) {
    struct Slot {
        T x;
        double f;
    };
    for_batched<Slot>(
        static_cast<std::uint64_t>(rows * of_row.D), first_unit(), unit_stride(),
        [&](std::uint64_t i, Slot& e) {
            e.x = v[i];
            e.f = factor[of_row(static_cast<std::int64_t>(i))];
        },
        [&](std::uint64_t i, const Slot& e) {
            v[i] = static_cast<T>(static_cast<double>(e.x) * e.f);
        });
}

// Elementwise kernels with normal noise over rows of D elements. An Op reads
// kIn inputs and writes kOut outputs (an output may be absent: null) at each
// element: op.row(b) sets sample b's parameters, op(in, z, out) maps one
// element's inputs and noise to its outputs. Op::Keys is the stream type its
// kernel takes, KeyedStream or Stream, whichever gives the loop fewer
// instructions (counted on sm_90 machine code; philox.hpp says why).
// kAligned: element 0 starts a stream block, D is a multiple of the block (a
// whole unit lies in one row) and every array is 16-byte aligned, so a whole
// unit is one vector access per array.
template <class T, class Op, bool kAligned>
__global__ void noisy_rows_kernel(typename Op::Keys st,
                                  BlockUnits<NormalBlock<T>::kPerBlock> bu, RowOf rows, Op op) {
    constexpr int K = NormalBlock<T>::kPerBlock;
    const std::uint64_t whole = bu.n / K;  // kAligned: units [0, whole) lie inside the output
    std::uint64_t row_end = 0;  // op holds the parameters of the row that ends here
    auto next_row = [&](std::uint64_t i) {
        const std::int64_t b = rows(static_cast<std::int64_t>(i));
        row_end = static_cast<std::uint64_t>((b + 1) * rows.D);
        op.row(b);
    };
    for_tiled_units(bu.units(), [&](std::uint64_t u) {
        T z[K];
        make_block<NormalBlock<T>>(st, bu.block(u), z);
        if (kAligned && u < whole) {  // a whole unit, inside one row
            const std::uint64_t i0 = u * K;
            if (i0 >= row_end) next_row(i0);
            T in[Op::kIn][K], out[Op::kOut][K];
#pragma unroll
            for (int a = 0; a < Op::kIn; ++a) load_vec(op.in[a] + i0, in[a]);
#pragma unroll
            for (int k = 0; k < K; ++k) {
                T x[Op::kIn], y[Op::kOut];
#pragma unroll
                for (int a = 0; a < Op::kIn; ++a) x[a] = in[a][k];
                op(x, z[k], y);
#pragma unroll
                for (int a = 0; a < Op::kOut; ++a) out[a][k] = y[a];
            }
#pragma unroll
            for (int a = 0; a < Op::kOut; ++a)
                if (op.out[a]) store_vec(op.out[a] + i0, out[a]);
        } else {
            for_unit_values(bu, u, z, [&](std::uint64_t i, T zi) {
                if (i >= row_end) next_row(i);  // a unit of <= 4 elements may cross rows
                T x[Op::kIn], y[Op::kOut];
#pragma unroll
                for (int a = 0; a < Op::kIn; ++a) x[a] = op.in[a][i];
                op(x, zi, y);
#pragma unroll
                for (int a = 0; a < Op::kOut; ++a)
                    if (op.out[a]) op.out[a][i] = y[a];
            });
        }
    });
}

template <class T>
struct PerturbOp {
    static constexpr int kIn = 1, kOut = 1;
    using Keys = KeyedStream;  // (266 instructions per unit against 275, sm_90)
    const T* in[kIn];  // x
    T* out[kOut];
    RowParam<T> scale, sigma;
    T a, s;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { a = scale(b), s = sigma(b); }
    __device__ SCOREKIT_INLINE void operator()(const T (&x)[kIn], T z, T (&y)[kOut]) const {
        y[0] = perturb_value(x[0], z, a, s);
    }
};

template <class T>
struct LangevinOp {
    static constexpr int kIn = 2, kOut = 1;
    using Keys = Stream;  // (269 against 276)
    const T* in[kIn];  // x, score
    T* out[kOut];
    RowParam<T> step;
    LangevinRow<T> lr;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { lr = LangevinRow<T>(step(b)); }
    __device__ SCOREKIT_INLINE void operator()(const T (&x)[kIn], T z, T (&y)[kOut]) const {
        y[0] = lr.apply(x[0], x[1], z);
    }
};

template <class T>
struct AffineOp {
    static constexpr int kIn = 2, kOut = 2;
    using Keys = KeyedStream;  // (286 against 288)
    const T* in[kIn];  // x, score
    T* out[kOut];      // next, and the mean (or null)
    RowParam<T> a, c, g;
    AffineStep<T> step;
    __device__ SCOREKIT_INLINE void row(std::int64_t b) { step = AffineStep<T>{a(b), c(b), g(b)}; }
    __device__ SCOREKIT_INLINE void operator()(const T (&x)[kIn], T z, T (&y)[kOut]) const {
        y[1] = step.mean(x[0], x[1]);
        y[0] = step.next(y[1], z);
    }
};

// dsm_loss: values q_j^2 of the residuals q = sigma s + z (the gradient written
// on the way), rows of D elements, the noise stored (kStored) or regenerated.
// vec: D is whole stream blocks (16-byte words; so every row starts a stream
// block) and the arrays are 16-byte aligned, so the runs (they start at
// multiples of 8) go by whole blocks, one vector access per array. Stored
// noise: a thread's blocks are read four at a time before any gradient is
// written (for_batched). Regenerated: each block's score is read before its
// noise is made. (Its scalar path, elements outside whole blocks, reads each
// score as it goes: reading them first, as ProbeRows::spans does, took 8 more
// registers in the whole-block path's kernel too, a block fewer a
// multiprocessor.)
template <class T, bool kStored>
struct DsmOp {
    static constexpr int kSums = 1;
    static constexpr int K = NormalBlock<T>::kPerBlock;  // a 16-byte word (4 floats, 2 doubles)
    // the noise made again binds the pass to its instructions (row_reduce.cuh); in
    // float64 eight threads a chunk were slower at every size measured (grid.hpp)
    static constexpr bool kGroupsPay = !kStored && sizeof(T) == sizeof(float);
    const T* score;
    const T* noise;  // kStored: the noise
    std::int64_t D;
    DsmRows<T> row;  // row(b): sample b's DsmRow
    Stream st;
    std::uint64_t stream_first;
    T* grad;
    bool vec;

    // a sample's parameters and offset, worked out once per chunk (row_reduce.cuh)
    struct Row {
        DsmRow<T> r;
        std::int64_t base;  // b * D
    };
    __device__ SCOREKIT_INLINE Row row_of(std::int64_t b) const { return {row(b), b * D}; }

    template <int W>
    struct Pair {  // W score and noise values
        T s[W], z[W];
    };

    __device__ SCOREKIT_INLINE void values(const Row& rw, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t, unsigned tid,
                                           unsigned nthreads) const {
        const DsmRow<T>& r = rw.r;
        const std::int64_t base = rw.base + j0;
        const T* sc = score + base;
        T* gr = grad ? grad + base : nullptr;
        auto term = [&](std::int64_t i, T s, T z) {  // vals[i]; returns the gradient
            const T q = r.residual(s, z);
            vals[i] = static_cast<double>(q) * static_cast<double>(q);
            return r.grad_scale * q;
        };
        const auto count = static_cast<unsigned>(n);  // (n is at most a tile)
        if constexpr (kStored) {
            const T* nz = noise + base;
            if (vec) {
                for_batched<Pair<K>>(
                    count / K, tid, nthreads,
                    [&](unsigned u, Pair<K>& x) {
                        load_vec(sc + u * K, x.s);
                        load_vec(nz + u * K, x.z);
                    },
                    [&](unsigned u, const Pair<K>& x) {
                        T g[K];
#pragma unroll
                        for (int k = 0; k < K; ++k) g[k] = term(u * K + k, x.s[k], x.z[k]);
                        if (gr) store_vec(gr + u * K, g);
                    });
            } else {
                for_batched<Pair<1>>(
                    count, tid, nthreads,
                    [&](unsigned i, Pair<1>& x) { x.s[0] = sc[i], x.z[0] = nz[i]; },
                    [&](unsigned i, const Pair<1>& x) {
                        const T g = term(i, x.s[0], x.z[0]);
                        if (gr) gr[i] = g;
                    });
            }
        } else {
            const std::uint64_t first = stream_first + static_cast<std::uint64_t>(base);
            // whole blocks, then the rest value by value: with vec, n (a tile or a
            // row's last run) is whole blocks and the rest is empty; without, all of
            // it. (Written so rather than as two branches, the block loop takes 5
            // fewer instructions: 261 a block, float32, sm_90.)
            unsigned done = 0;
            if (vec) {
                const unsigned units = count / K;
                done = units * K;
                const std::uint64_t block0 = first / K;
                for (unsigned u = tid; u < units; u += nthreads) {
                    const unsigned i = u * K;
                    T z[K], x[K], g[K];
                    load_vec(sc + i, x);  // first: its load waits while the noise is made
                    make_block<NormalBlock<T>>(st, block0 + u, z);
#pragma unroll
                    for (int k = 0; k < K; ++k) g[k] = term(i + k, x[k], z[k]);
                    if (gr) store_vec(gr + i, g);
                }
            }
            for_stream_values<NormalBlock<T>, T>(st, first + done, n - done, tid, nthreads,
                                                 [&](std::int64_t i, T z) {
                                                     const T g = term(done + i, sc[done + i], z);
                                                     if (gr) gr[done + i] = g;
                                                 });
        }
    }
};

template <class T, bool kStored>
struct DsmFin {
    DsmOp<T, kStored> op;
    LossRows<T> out;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t b, const double* sums) const {
        out.store(b, 0.5 * op.row(b).loss_scale * sums[0]);
    }
};

template <class T, bool kStored>
void reduce_dsm(const DsmOp<T, kStored>& op, std::int64_t B, double* partial, double* row_loss,
                T* row_loss_out, void* stream) {
    row_reduce(B, op.D, kReduceChunk, op, DsmFin<T, kStored>{op, {row_loss, row_loss_out}},
               partial, as_stream(stream), "dsm_loss kernel launch");
}

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

namespace {
std::atomic<int>& chunk_threads_value() {
    static std::atomic<int> value{[] {
        const char* env = std::getenv("SCOREKIT_CUDA_CHUNK_THREADS");
        const std::string v = env ? env : "";
        return v == "8" ? kChunkGroup : v == "32" ? kChunkWarp : 0;
    }()};
    return value;
}
}  // namespace

int chunk_threads_setting() { return chunk_threads_value().load(std::memory_order_relaxed); }

void set_chunk_threads(int threads) {
    if (threads != 0 && threads != kChunkGroup && threads != kChunkWarp)
        throw std::invalid_argument("chunk threads must be 0 (chosen per call), 8 or 32, got " +
                                    std::to_string(threads));
    chunk_threads_value().store(threads, std::memory_order_relaxed);
}

namespace {
template <class Block, class T>
void launch_fill(Stream st, std::uint64_t offset, std::uint64_t n, T* out, cudaStream_t s) {
    const auto bu = BlockUnits<Block::kPerBlock>::of(offset, n);
    if (bu.lead == 0 && aligned16(out))
        fill_kernel<Block, T, true><<<grid_for(bu.units()), kThreads, 0, s>>>(st, bu, out);
    else
        fill_kernel<Block, T, false><<<grid_for(bu.units()), kThreads, 0, s>>>(st, bu, out);
}

// Rows first_sample, first_sample + 1, ... of a stream, B x D elements.
template <class T, class Op>
void launch_noisy_rows(const Op& op, Stream st, std::uint64_t first_sample, std::int64_t B,
                       std::int64_t D, void* stream, const char* what) {
    constexpr int K = NormalBlock<T>::kPerBlock;
    const auto bu = BlockUnits<K>::of(first_sample * static_cast<std::uint64_t>(D),
                                      static_cast<std::uint64_t>(B * D));
    bool aligned = bu.lead == 0 && D % K == 0;
    for (const T* p : op.in) aligned = aligned && aligned16(p);
    for (const T* p : op.out) aligned = aligned && aligned16(p);
    const unsigned grid = tiled_grid(bu.units());
    if (aligned)
        noisy_rows_kernel<T, Op, true><<<grid, kThreads, 0, as_stream(stream)>>>(st, bu, RowOf::of(D), op);
    else
        noisy_rows_kernel<T, Op, false><<<grid, kThreads, 0, as_stream(stream)>>>(st, bu, RowOf::of(D), op);
    check(cudaGetLastError(), what);
}
}  // namespace

template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out, int device,
                void* stream) {
    if (n <= 0) return;
    const OnDevice on(device);
    const auto N = static_cast<std::uint64_t>(n);
    const cudaStream_t s = as_stream(stream);
    switch (kind) {
        case NoiseKind::Normal: launch_fill<NormalBlock<T>>(st, offset, N, out, s); break;
        case NoiseKind::Uniform: launch_fill<UniformBlock<T>>(st, offset, N, out, s); break;
        case NoiseKind::Rademacher: launch_fill<RademacherBlock<T>>(st, offset, N, out, s); break;
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
        v, rows, RowOf::of(D), factor);
    check(cudaGetLastError(), "sphere probe kernel launch");
}

template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, std::uint64_t first_sample, T* out, int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const PerturbOp<T> op{{x}, {out}, scale, sigma, T(0), T(0)};
    launch_noisy_rows<T>(op, st, first_sample, B, D, stream, "perturb kernel launch");
}

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, std::uint64_t first_sample, T* out,
                   int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const LangevinOp<T> op{{x, score}, {out}, step_size, LangevinRow<T>(T(0))};
    launch_noisy_rows<T>(op, st, first_sample, B, D, stream, "langevin_step kernel launch");
}

template <class T>
void affine_step(const T* x, const T* score, std::int64_t B, std::int64_t D, RowParam<T> a,
                 RowParam<T> c, RowParam<T> g, Stream st, std::uint64_t first_sample, T* out,
                 T* out_mean, int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    const AffineOp<T> op{{x, score}, {out, out_mean}, a, c, g, AffineStep<T>{T(0), T(0), T(0)}};
    launch_noisy_rows<T>(op, st, first_sample, B, D, stream, "noisy_affine_step kernel launch");
}

template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* partial, double* row_loss, T* row_loss_out,
              T* grad, int device, void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    constexpr int K = NormalBlock<T>::kPerBlock;
    const std::uint64_t stream_first = first_sample * static_cast<std::uint64_t>(D);
    const DsmRows<T> rows{sigma, weight_is_sigma2, weight, batch_scale};
    // (D whole blocks: every row starts a stream block)
    const bool vec = whole_words(D, K, {score, noise, grad});
    if (noise)
        reduce_dsm(DsmOp<T, true>{score, noise, D, rows, st, stream_first, grad, vec}, B,
                   partial, row_loss, row_loss_out, stream);
    else
        reduce_dsm(DsmOp<T, false>{score, nullptr, D, rows, st, stream_first, grad, vec}, B,
                   partial, row_loss, row_loss_out, stream);
}

// The reduction of per-sample losses, as the CPU's: lane_sum(rows, B), divided by B
// for a mean (0 / 0: NaN for an empty batch).
void reduce_losses(const double* rows, std::int64_t B, bool mean, double* out, int device,
                   void* stream) {
    const OnDevice on(device);
    lane_sums(B, ArraysOp<1>{{rows}}, QuotientFin<1>{out, mean ? static_cast<double>(B) : 1.0},
              out, as_stream(stream), "loss reduction kernel launch");
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
                              T*, int, void*);
SCOREKIT_CUDA_INSTANTIATE(float)
SCOREKIT_CUDA_INSTANTIATE(double)
#undef SCOREKIT_CUDA_INSTANTIATE

}  // namespace cuda
}  // namespace scorekit
