// Deterministic row reductions in the CPU's order. A reduction sums kSums
// per-element values over each of `rows` rows of D elements, exactly as the
// CPU's chunked_dot does: LaneSum8 (position p to lane p % 8) over chunks of
// `chunk` elements, chunk sums added left to right. Rows of at most kShortRow
// elements take one thread each; longer rows one thread block per chunk, the
// values staged in shared memory tile by tile and lane k added by one thread
// in position order, then a second kernel adds each row's chunks. No atomics:
// the sums are the CPU's bits for every grid.
//
// An Op supplies the values:
//   static constexpr int kSums;  (1 or 2)
//   __device__ void values(std::int64_t row, std::int64_t j0, std::int64_t n, double* vals,
//                          std::int64_t stride, unsigned tid, unsigned nthreads) const;
// writing vals[s * stride + i] for elements j0 + i of the row (i < n, s < kSums),
// thread tid of nthreads taking its share (it may write per-element outputs too).
// A Fin receives each row's sums: __device__ void operator()(std::int64_t row,
// const double* sums) const.
#pragma once

#include "launch.cuh"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {
namespace {

constexpr std::int64_t kTileValues = 1024;  // a multiple of 8

template <class Op, class Fin>
__global__ void short_rows_kernel(std::int64_t rows, std::int64_t D, Op op, Fin fin) {
    constexpr int N = Op::kSums;
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(rows); u += unit_stride()) {
        const auto row = static_cast<std::int64_t>(u);
        double vals[N * kShortRow];
        op.values(row, 0, D, vals, kShortRow, 0, 1);
        double sums[N];
        for (int s = 0; s < N; ++s) {
            LaneSum8 acc;
            for (std::int64_t p = 0; p < D; ++p) acc.a[p & 7] += vals[s * kShortRow + p];
            sums[s] = acc.total();
        }
        fin(row, sums);
    }
}

template <class Op>
__global__ void chunk_sums_kernel(RowChunks rc, Op op, double* partial) {
    constexpr int N = Op::kSums;
    __shared__ double vals[N * kTileValues];
    __shared__ double lanes[N * 8];
    const std::int64_t chunks = rc.chunks();
    const bool adder = threadIdx.x < 8 * N;  // lane threadIdx.x % 8 of sum threadIdx.x / 8
    const std::int64_t s = threadIdx.x / 8, lane = threadIdx.x % 8;
    for (std::int64_t unit = blockIdx.x; unit < rc.units(); unit += gridDim.x) {
        const std::int64_t row = unit / chunks, j_first = (unit % chunks) * rc.chunk;
        const std::int64_t len = rc.D - j_first < rc.chunk ? rc.D - j_first : rc.chunk;
        double acc = 0.0;
        for (std::int64_t t0 = 0; t0 < len; t0 += kTileValues) {
            const std::int64_t tn = len - t0 < kTileValues ? len - t0 : kTileValues;
            op.values(row, j_first + t0, tn, vals, kTileValues, threadIdx.x, blockDim.x);
            __syncthreads();
            if (adder)
                for (std::int64_t i = lane; i < tn; i += 8) acc += vals[s * kTileValues + i];
            __syncthreads();
        }
        if (adder) lanes[threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.x == 0)
            for (int k = 0; k < N; ++k) {
                LaneSum8 sum;
                for (int l = 0; l < 8; ++l) sum.a[l] = lanes[k * 8 + l];
                partial[unit * N + k] = sum.total();
            }
        __syncthreads();
    }
}

template <int N, class Fin>
__global__ void chunk_rows_kernel(RowChunks rc, const double* partial, Fin fin) {
    const std::int64_t chunks = rc.chunks();
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(rc.B); u += unit_stride()) {
        const auto row = static_cast<std::int64_t>(u);
        double sums[N];
        for (int k = 0; k < N; ++k) {
            double t = 0.0;
            for (std::int64_t c = 0; c < chunks; ++c) t += partial[(row * chunks + c) * N + k];
            sums[k] = t;
        }
        fin(row, sums);
    }
}

// Enqueues the reduction of `rows` rows of D elements in chunks of `chunk`;
// `partial` holds reduce_scratch(rows, D, chunk, Op::kSums) doubles.
template <class Op, class Fin>
void row_reduce(std::int64_t rows, std::int64_t D, std::int64_t chunk, const Op& op,
                const Fin& fin, double* partial, cudaStream_t stream, const char* what) {
    if (rows <= 0) return;
    if (D <= kShortRow) {
        short_rows_kernel<Op, Fin><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0,
                                     stream>>>(rows, D, op, fin);
        check(cudaGetLastError(), what);
        return;
    }
    const RowChunks rc{rows, D, chunk};
    const auto units = static_cast<std::uint64_t>(rc.units());
    const unsigned blocks = static_cast<unsigned>(units < kMaxBlocks ? units : kMaxBlocks);
    chunk_sums_kernel<Op><<<blocks, kThreads, 0, stream>>>(rc, op, partial);
    check(cudaGetLastError(), what);
    chunk_rows_kernel<Op::kSums, Fin><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0,
                                        stream>>>(rc, partial, fin);
    check(cudaGetLastError(), what);
}

// Row dot products a_r . b_r in double (with a = b: the sums of squares, a
// squared norm): one value per element, the CPU's chunked_dot.
template <class T>
struct DotOp {
    static constexpr int kSums = 1;
    const T* a;
    const T* b;
    std::int64_t D;
    __device__ SCOREKIT_INLINE void values(std::int64_t row, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t, unsigned tid,
                                           unsigned nthreads) const {
        const T* ra = a + row * D + j0;
        const T* rb = b + row * D + j0;
        for (std::int64_t i = tid; i < n; i += nthreads)
            vals[i] = static_cast<double>(ra[i]) * static_cast<double>(rb[i]);
    }
};

// Each row's sum as it is.
struct StoreFin {
    double* out;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t row, const double* sums) const {
        out[row] = sums[0];
    }
};

// A sphere probe row's factor sqrt(D / sum of squares) (trace.hpp's sphere_factor).
struct SphereFactorFin {
    double* factor;
    std::int64_t D;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t r, const double* sums) const {
        factor[r] = sphere_factor(sums[0], D);
    }
};

}  // namespace
}  // namespace cuda
}  // namespace scorekit
