// CUDA launchers over the shared functors of cpp/include/scorekit: the noise
// fills, perturb, langevin_step and dsm_loss. Each thread takes whole Philox
// blocks (grid.hpp), so a value depends on its index only, never on the grid;
// dsm_loss sums each row (or each chunk of kReduceChunk elements of a long row,
// the chunks then left to right) in the CPU's LaneSum8 order, so its losses are
// the CPU's bits too. No floating-point atomics; 64-bit indices throughout.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda_backend.hpp"
#include "grid.hpp"
#include "scorekit/noise.hpp"
#include "scorekit/steps.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

namespace {

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("scorekit CUDA: ") + what + ": " +
                                 cudaGetErrorString(err));
}

// Makes `device` current for a call and restores the previous device.
class OnDevice {
  public:
    explicit OnDevice(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        changed_ = device != previous_;
        if (changed_) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~OnDevice() {
        if (changed_) cudaSetDevice(previous_);
    }
    OnDevice(const OnDevice&) = delete;
    OnDevice& operator=(const OnDevice&) = delete;

  private:
    int previous_ = 0;
    bool changed_ = false;
};

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

__device__ SCOREKIT_INLINE std::uint64_t first_unit() {
    return blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
}
__device__ SCOREKIT_INLINE std::uint64_t unit_stride() {
    return static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
}

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
// Sphere probes: each row of D normals rescaled to norm sqrt(D), one thread per
// row through the CPU's functions (the same sum in the same order: the same bits).
template <class T>
__global__ void sphere_rows_kernel(T* v, std::int64_t rows, std::int64_t D) {
    for (std::uint64_t r = first_unit(); r < static_cast<std::uint64_t>(rows); r += unit_stride()) {
        T* row = v + static_cast<std::int64_t>(r) * D;
        scale_row(row, D, sphere_factor(chunked_dot(row, row, D), D));
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

template <class T>
struct DsmArgs {
    const T* score;
    const T* noise;  // stored noise, or null: regenerate
    RowChunks rc;
    RowParam<T> sigma;
    bool weight_is_sigma2;
    RowParam<T> weight;
    double batch_scale;
    Stream st;
    std::uint64_t stream_first;
    T* grad;

    __device__ SCOREKIT_INLINE DsmRow<T> row(std::int64_t b) const {
        return DsmRow<T>(sigma(b), weight_is_sigma2,
                         weight_is_sigma2 ? 0.0 : static_cast<double>(weight(b)), batch_scale);
    }
};

// Rows of at most kShortRow elements: one thread per row runs the CPU's
// DsmRow::run on it (the same sum, in the same order: the same bits).
constexpr std::int64_t kShortRow = 64;

template <class T>
__global__ void dsm_short_rows_kernel(DsmArgs<T> a, double* row_loss) {
    const std::int64_t D = a.rc.D;
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(a.rc.B); u += unit_stride()) {
        const std::int64_t b = static_cast<std::int64_t>(u), first = b * D;
        T z[kShortRow];
        const T* zp = a.noise ? a.noise + first : z;
        if (!a.noise)
            fill_range<NormalBlock<T>>(a.st, a.stream_first + static_cast<std::uint64_t>(first),
                                       static_cast<std::uint64_t>(D), z);
        const DsmRow<T> r = a.row(b);
        row_loss[b] = 0.5 * r.loss_scale * r.run(a.score + first, zp, a.grad ? a.grad + first : nullptr, D);
    }
}

// Longer rows: one thread block per chunk of kReduceChunk elements (grid-stride
// over chunks). The chunk's squared residuals go through shared memory in tiles;
// threads 0..7 add them as LaneSum8 does on the CPU (lane k: positions p with
// p % 8 == k, in order), so partial[chunk] has the CPU's bits.
constexpr std::int64_t kTileValues = 1024;  // a multiple of 8

template <class T>
__global__ void dsm_chunk_kernel(DsmArgs<T> a, double* partial) {
    __shared__ double squares[kTileValues];
    __shared__ double lanes[8];
    constexpr std::uint64_t K = NormalBlock<T>::kPerBlock;
    const std::int64_t chunks = a.rc.chunks();
    for (std::int64_t unit = blockIdx.x; unit < a.rc.units(); unit += gridDim.x) {
        const std::int64_t b = unit / chunks, c = unit % chunks;
        const std::int64_t first = b * a.rc.D + c * a.rc.chunk;
        const std::int64_t len = a.rc.D - c * a.rc.chunk < a.rc.chunk ? a.rc.D - c * a.rc.chunk
                                                                      : a.rc.chunk;
        const DsmRow<T> r = a.row(b);
        double lane_acc = 0.0;  // threads 0..7: lane threadIdx.x of the chunk's sum
        for (std::int64_t t0 = 0; t0 < len; t0 += kTileValues) {
            const std::int64_t tn = len - t0 < kTileValues ? len - t0 : kTileValues;
            const std::int64_t base = first + t0;
            const BlockUnits bu{a.stream_first + static_cast<std::uint64_t>(base),
                                static_cast<std::uint64_t>(tn), K};
            for (std::uint64_t u = threadIdx.x; u < bu.units(); u += kThreads) {
                T z[NormalBlock<T>::kPerBlock];
                if (!a.noise) make_block<NormalBlock<T>>(a.st, bu.block(u), z);
                const std::uint64_t lo = bu.begin(u), hi = bu.end(u), s = bu.skip(u);
                for (std::uint64_t i = lo; i < hi; ++i) {
                    const std::int64_t k = base + static_cast<std::int64_t>(i);
                    const T q = r.residual(a.score[k], a.noise ? a.noise[k] : z[s + (i - lo)]);
                    if (a.grad) a.grad[k] = r.grad_scale * q;
                    squares[i] = static_cast<double>(q) * static_cast<double>(q);
                }
            }
            __syncthreads();
            if (threadIdx.x < 8)
                for (std::int64_t i = threadIdx.x; i < tn; i += 8) lane_acc += squares[i];
            __syncthreads();
        }
        if (threadIdx.x < 8) lanes[threadIdx.x] = lane_acc;
        __syncthreads();
        if (threadIdx.x == 0) {
            LaneSum8 sum;
            for (int k = 0; k < 8; ++k) sum.a[k] = lanes[k];
            partial[unit] = sum.total();
        }
        __syncthreads();
    }
}

// Row b: its chunk sums added left to right.
template <class T>
__global__ void dsm_row_kernel(DsmArgs<T> a, const double* partial, double* row_loss) {
    const std::int64_t chunks = a.rc.chunks();
    for (std::uint64_t b = first_unit(); b < static_cast<std::uint64_t>(a.rc.B); b += unit_stride()) {
        const std::int64_t row = static_cast<std::int64_t>(b);
        double s = 0.0;
        for (std::int64_t c = 0; c < chunks; ++c) s += partial[row * chunks + c];
        row_loss[row] = 0.5 * a.row(row).loss_scale * s;
    }
}

unsigned grid_for(std::uint64_t units) { return static_cast<unsigned>(grid_blocks(units)); }

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
void sphere_rows(T* v, std::int64_t rows, std::int64_t D, int device, void* stream) {
    if (rows <= 0 || D <= 0) return;
    const OnDevice on(device);
    sphere_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0,
                            as_stream(stream)>>>(v, rows, D);
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
    const DsmArgs<T> a{score, noise, RowChunks{B, D, kReduceChunk}, sigma, weight_is_sigma2, weight,
                       batch_scale, st, first_sample * static_cast<std::uint64_t>(D), grad};
    if (D <= kShortRow) {
        dsm_short_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0,
                                   as_stream(stream)>>>(a, row_loss);
        check(cudaGetLastError(), "dsm_loss kernel launch");
        return;
    }
    const std::uint64_t units = static_cast<std::uint64_t>(a.rc.units());
    const unsigned blocks = static_cast<unsigned>(units < kMaxBlocks ? units : kMaxBlocks);
    dsm_chunk_kernel<T><<<blocks, kThreads, 0, as_stream(stream)>>>(a, partial);
    check(cudaGetLastError(), "dsm_loss kernel launch");
    dsm_row_kernel<T><<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0, as_stream(stream)>>>(
        a, partial, row_loss);
    check(cudaGetLastError(), "dsm_loss row kernel launch");
}

#define SCOREKIT_CUDA_INSTANTIATE(T)                                                              \
    template void fill_noise<T>(NoiseKind, Stream, std::uint64_t, std::int64_t, T*, int, void*);  \
    template void sphere_rows<T>(T*, std::int64_t, std::int64_t, int, void*);                     \
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
