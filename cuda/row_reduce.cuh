// Deterministic row reductions in the CPU's order. A reduction sums kSums
// per-element values over each of `rows` rows of D elements, exactly as the
// CPU's chunked_dot does: LaneSum8 (position p to lane p % 8) over chunks of
// `chunk` elements, chunk sums added left to right. Rows of at most kShortRow
// elements take one thread each; longer rows a warp per chunk (a block for a
// row taken as one long chunk; eight threads a chunk, four chunks a warp, for
// an Op bound by its instructions where there are enough chunks: grid.hpp's
// chunk_threads), the values staged in
// shared memory tile by tile and lane k added by one thread in position order,
// then a second kernel adds each row's chunks. No atomics: the sums are the
// CPU's bits for every grid and every number of threads a chunk.
//
// An Op supplies the values:
//   static constexpr int kSums;  (1 or 2)
//   __device__ void values(std::int64_t row, std::int64_t j0, std::int64_t n, double* vals,
//                          std::int64_t stride, unsigned tid, unsigned nthreads) const;
// writing vals[s * stride + i] for elements j0 + i of the row (i < n, s < kSums),
// thread tid of nthreads taking its share (it may write per-element outputs too);
// n is at most a tile's values (kSegment / kSums, a quarter of that with eight
// threads a chunk), or kShortRow; j0 is a multiple of 8 (row_reduce refuses a
// chunk that would break that).
// An Op whose values need per-row work (a parameter read, a row's offset) may
// do it once per chunk instead of once per tile: it names a type Row, gives
// __device__ Row row_of(std::int64_t row) const, and takes that Row in place of
// the row index as values' first argument (held in registers across the tiles,
// where the compiler would read the parameter again after each tile's stores).
// An Op bound by its instructions may say so (static constexpr bool kGroupsPay =
// true): only then does a large call take eight threads a chunk by itself
// (grid.hpp's chunk_threads).
// A Fin receives each row's sums: __device__ void operator()(std::int64_t row,
// const double* sums) const.
#pragma once

#include <atomic>
#include <type_traits>

#include "cuda_backend.hpp"
#include "launch.cuh"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {
namespace {

// Long rows: G threads per chunk (eight or a warp; a whole block for chunks
// longer than kReduceChunk, rows reduced as one chunk), kThreads / G chunks per
// block. Tile by tile, a chunk's threads write its next values (N sums) to
// shared memory (each its share: whole stream blocks), then its first eight
// threads add them, thread k those at positions p % 8 == k, in order. A warp
// takes kSegment values a tile, all its chunks and sums together: with eight
// threads a chunk, a tile of a quarter as many values for each of four chunks,
// added by all 32 threads. A warp shares memory only with itself, so the warp's
// own barrier orders its tiles and warps never wait for each other.
constexpr int kWarp = 32;
constexpr std::int64_t kSegment = 512;  // values per tile and warp (32 KB for 8 warps)

// Whether eight threads a chunk may pay for an Op (grid.hpp's chunk_threads):
// its static constexpr bool kGroupsPay, false where it has none.
template <class Op, class = void>
struct GroupsPay : std::false_type {};
template <class Op>
struct GroupsPay<Op, std::void_t<decltype(Op::kGroupsPay)>>
    : std::integral_constant<bool, Op::kGroupsPay> {};

// What an Op's values take for a row: its Row (worked out once) or the row index.
template <class Op, class = void>
struct RowArg {
    static __device__ SCOREKIT_INLINE std::int64_t of(const Op&, std::int64_t row) { return row; }
};
template <class Op>
struct RowArg<Op, std::void_t<typename Op::Row>> {
    static __device__ SCOREKIT_INLINE typename Op::Row of(const Op& op, std::int64_t row) {
        return op.row_of(row);
    }
};

template <int G>
__device__ SCOREKIT_INLINE void chunk_barrier() {
    if constexpr (G <= kWarp)
        __syncwarp();
    else
        __syncthreads();
}

template <class Op, class Fin>
__global__ void short_rows_kernel(std::int64_t rows, std::int64_t D, Op op, Fin fin) {
    constexpr int N = Op::kSums;
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(rows); u += unit_stride()) {
        const auto row = static_cast<std::int64_t>(u);
        double vals[N * kShortRow];
        op.values(RowArg<Op>::of(op, row), 0, D, vals, kShortRow, 0, 1);
        double sums[N];
        for (int s = 0; s < N; ++s) {
            LaneSum8 acc;
            for (std::int64_t p = 0; p < D; ++p) acc.a[p & 7] += vals[s * kShortRow + p];
            sums[s] = acc.total();
        }
        fin(row, sums);
    }
}

template <class Op, int G>
__global__ void chunk_sums_kernel(RowChunks rc, Op op, double* partial) {
    static_assert(G == kChunkGroup || G == kWarp || G == kThreads,
                  "eight threads, a warp or a block per chunk");
    constexpr int kGroups = kThreads / G;
    constexpr int N = Op::kSums;
    constexpr int kPerWarp = G < kWarp ? kWarp / G : 1;    // chunks a warp
    constexpr std::int64_t kTile = kSegment / kPerWarp / N;  // a multiple of 8
    // a warp's chunks 4 doubles apart beyond their tiles: the 32 adders' reads
    // of one step fall on every bank twice (each chunk's eight on 16 banks)
    constexpr std::int64_t kSpan = kTile + (kPerWarp > 1 ? 4 : 0);
    constexpr std::int64_t kStride = kGroups * kSpan;  // between the sums' values
    static_assert(kTile % 8 == 0, "whole tiles are added eight lanes at a time");
    __shared__ double vals[N * kStride];
    __shared__ double lanes[N * kGroups * 8];
    const std::int64_t chunks = rc.chunks(), units = rc.units();
    const std::int64_t tail = rc.D - (chunks - 1) * rc.chunk;  // a row's last chunk
    const int g = static_cast<int>(threadIdx.x) / G;
    const int t = static_cast<int>(threadIdx.x) % G;  // lane t when t < 8
    double* seg = vals + g * kSpan;
    for (std::int64_t first = blockIdx.x * static_cast<std::int64_t>(kGroups); first < units;
         first += static_cast<std::int64_t>(gridDim.x) * kGroups) {
        const std::int64_t unit = first + g;
        const bool live = unit < units;
        const std::int64_t row = live ? unit / chunks : 0;
        const std::int64_t c = live ? unit - row * chunks : 0;
        const std::int64_t len = !live ? 0 : (c == chunks - 1 ? tail : rc.chunk);
        // every thread of the block runs the tiles of the block's longest chunk (two or
        // more chunks include one that is not a row's last, when rows have several)
        const bool whole = chunks > 1 && (first + 1 < units || first % chunks != chunks - 1);
        const std::int64_t span = whole ? rc.chunk : tail;
        const auto arg = RowArg<Op>::of(op, row);
        double acc[N];
        for (int s = 0; s < N; ++s) acc[s] = 0.0;
        for (std::int64_t t0 = 0; t0 < span; t0 += kTile) {
            const std::int64_t left = len - t0;
            const std::int64_t tn = left <= 0 ? 0 : (left < kTile ? left : kTile);
            if (tn > 0) op.values(arg, c * rc.chunk + t0, tn, seg, kStride, t, G);
            chunk_barrier<G>();
            if (t < 8) {
                if (tn == kTile) {  // a whole tile: unrolled, fixed offsets (same order)
#pragma unroll
                    for (int i = 0; i < kTile; i += 8)
                        for (int s = 0; s < N; ++s) acc[s] += seg[s * kStride + t + i];
                } else {
                    for (std::int64_t i = t; i < tn; i += 8)
                        for (int s = 0; s < N; ++s) acc[s] += seg[s * kStride + i];
                }
            }
            chunk_barrier<G>();
        }
        if (t < 8)
            for (int s = 0; s < N; ++s) lanes[(s * kGroups + g) * 8 + t] = acc[s];
        chunk_barrier<G>();
        if (live && t == 0)
            for (int s = 0; s < N; ++s) {
                LaneSum8 sum;
                for (int l = 0; l < 8; ++l) sum.a[l] = lanes[(s * kGroups + g) * 8 + l];
                partial[unit * N + s] = sum.total();
            }
        chunk_barrier<G>();
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

// Blocks of chunk_sums_kernel<Op, kChunkGroup> the current device holds at
// once (its multiprocessors times the blocks each holds), asked once for each
// of devices 0-63 (every call for others); an error is raised under `what`.
template <class Op>
std::uint64_t group_slots(const char* what) {
    constexpr int kDevices = 64;
    static std::atomic<std::uint64_t> known[kDevices];  // 0: not asked yet
    int device = 0;
    check(cudaGetDevice(&device), what);
    const bool cached = device >= 0 && device < kDevices;
    if (cached)
        if (const std::uint64_t v = known[device].load(std::memory_order_relaxed)) return v;
    int sms = 0, per_sm = 0;
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), what);
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
              &per_sm, chunk_sums_kernel<Op, kChunkGroup>, kThreads, 0),
          what);
    const std::uint64_t v = sms > 0 && per_sm > 0 ? static_cast<std::uint64_t>(sms) * per_sm : 1;
    if (cached) known[device].store(v, std::memory_order_relaxed);
    return v;
}

// Enqueues the reduction of `rows` rows of D elements in chunks of `chunk`;
// `partial` holds reduce_scratch(rows, D, chunk, Op::kSums) doubles. For one
// row of one chunk (chunk >= D) it may be the Fin's own output: the row's
// partial sums are all read before its Fin runs (with more rows, another
// row's Fin could overwrite partial sums still to be read).
template <class Op, class Fin>
void row_reduce(std::int64_t rows, std::int64_t D, std::int64_t chunk, const Op& op,
                const Fin& fin, double* partial, cudaStream_t stream, const char* what) {
    if (rows <= 0) return;
    // Ops' runs start at multiples of 8 within a row (their vector paths rely on it)
    if (chunk < D && chunk % 8 != 0)
        throw std::logic_error(std::string(what) + ": reduction chunk " + std::to_string(chunk) +
                               " is not a multiple of 8");
    if (D <= kShortRow) {
        short_rows_kernel<Op, Fin><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0,
                                     stream>>>(rows, D, op, fin);
        check(cudaGetLastError(), what);
        return;
    }
    const RowChunks rc{rows, D, chunk};
    const auto units = static_cast<std::uint64_t>(rc.units());
    if (chunk > kReduceChunk) {  // a row as one long chunk: a block per row
        const unsigned blocks = static_cast<unsigned>(units < kMaxBlocks ? units : kMaxBlocks);
        chunk_sums_kernel<Op, kThreads><<<blocks, kThreads, 0, stream>>>(rc, op, partial);
    } else {
        const int setting = chunk_threads_setting();
        constexpr bool pays = GroupsPay<Op>::value;
        const int G = chunk_threads(units, setting || !pays ? 0 : group_slots<Op>(what), pays,
                                    setting);
        const std::uint64_t per_block = static_cast<std::uint64_t>(kThreads / G);
        const auto groups = (units + per_block - 1) / per_block;
        const unsigned blocks = static_cast<unsigned>(groups < kMaxBlocks ? groups : kMaxBlocks);
        if (G == kChunkGroup)
            chunk_sums_kernel<Op, kChunkGroup><<<blocks, kThreads, 0, stream>>>(rc, op, partial);
        else
            chunk_sums_kernel<Op, kWarp><<<blocks, kThreads, 0, stream>>>(rc, op, partial);
    }
    check(cudaGetLastError(), what);
    chunk_rows_kernel<Op::kSums, Fin><<<grid_for(static_cast<std::uint64_t>(rows)), kThreads, 0,
                                        stream>>>(rc, partial, fin);
    check(cudaGetLastError(), what);
}

// lane_sum (kernels.hpp) of n values, Op::kSums sums at once (Op over row 0), on
// the device: row_reduce of one row taken as one chunk. `partial` holds
// Op::kSums doubles; it may be fin's output (one row: see row_reduce).
template <class Op, class Fin>
void lane_sums(std::int64_t n, const Op& op, const Fin& fin, double* partial, cudaStream_t stream,
               const char* what) {
    row_reduce(1, n, n > 0 ? n : 1, op, fin, partial, stream, what);
}

// The values of N arrays, the sums of a lane_sums.
template <int N>
struct ArraysOp {
    static constexpr int kSums = N;
    const double* v[N];
    __device__ SCOREKIT_INLINE void values(std::int64_t, std::int64_t j0, std::int64_t n,
                                           double* vals, std::int64_t stride, unsigned tid,
                                           unsigned nthreads) const {
        for (int s = 0; s < N; ++s)
            for (std::int64_t i = tid; i < n; i += nthreads) vals[s * stride + i] = v[s][j0 + i];
    }
};

// Each of a row's N sums divided by `divisor` (1: the sums as they are).
template <int N>
struct QuotientFin {
    double* out;
    double divisor;
    __device__ SCOREKIT_INLINE void operator()(std::int64_t, const double* sums) const {
        for (int s = 0; s < N; ++s) out[s] = sums[s] / divisor;
    }
};

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

// Where a loss kernel puts its per-sample losses: rows (float64) and, when
// typed is not null, the same rounded to T.
template <class T>
struct LossRows {
    double* rows;
    T* typed;
    __device__ SCOREKIT_INLINE void store(std::int64_t b, double loss) const {
        rows[b] = loss;
        if (typed) typed[b] = static_cast<T>(loss);
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
