// Work layout of the CUDA launchers, in plain C++ so the host tests can check
// it (tests/native/cuda_grid.cpp): which elements each unit of work covers and
// how the units are spread over a grid. Results never depend on the grid: a
// unit's values are a function of its index alone, and the reductions combine
// per-unit results in a fixed order.
#pragma once

#include <cstdint>

#include "scorekit/config.hpp"

namespace scorekit {
namespace cuda {

constexpr int kThreads = 256;                    // threads per block, every launcher
constexpr std::uint64_t kMaxBlocks = 8192;      // grid-stride beyond this (2M threads)

// Blocks for `units` units of work, one unit per thread per pass.
SCOREKIT_HD SCOREKIT_INLINE std::uint64_t grid_blocks(std::uint64_t units) {
    const std::uint64_t b = (units + kThreads - 1) / kThreads;
    return b == 0 ? 1 : (b < kMaxBlocks ? b : kMaxBlocks);
}

// Elements [0, n) that read stream elements [first, first + n), split at the
// stream's blocks of K elements: unit u is stream block j0 + u, and its value k
// is output element element(u, k) when that is below n (values of the first
// and last blocks may lie outside the output). first / K and first % K are
// taken once, on the host: a kernel's loop has no division.
template <int K>
struct BlockUnits {
    std::uint64_t j0;    // stream block of output element 0: first / K
    std::uint64_t lead;  // values of block j0 before output element 0: first % K
    std::uint64_t n;     // output elements

    SCOREKIT_HD SCOREKIT_INLINE static BlockUnits of(std::uint64_t first, std::uint64_t n) {
        return {first / K, first % K, n};
    }
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t units() const {
        return n == 0 ? 0 : (lead + n + K - 1) / K;
    }
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t block(std::uint64_t u) const { return j0 + u; }
    // Output element of value k of unit u; n or more (as unsigned) when outside the output.
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t element(std::uint64_t u, int k) const {
        return u * K + static_cast<std::uint64_t>(k) - lead;
    }
};

// i / D for 0 <= i < 2^62 and D > 0 without a 64-bit integer division (a long
// software routine on a GPU): a floating-point estimate, then corrected, so
// the quotient is exact.
struct RowOf {
    std::int64_t D;
    double inv;  // 1 / D

    static RowOf of(std::int64_t D) { return {D, 1.0 / static_cast<double>(D)}; }
    SCOREKIT_HD SCOREKIT_INLINE std::int64_t operator()(std::int64_t i) const {
        std::int64_t q = static_cast<std::int64_t>(static_cast<double>(i) * inv);
        std::int64_t r = i - q * D;
        while (r < 0) --q, r += D;
        while (r >= D) ++q, r -= D;
        return q;
    }
};

// The rows of a reduction: B rows of D elements in chunks of `chunk` elements;
// chunk c of row b is unit b * chunks + c.
struct RowChunks {
    std::int64_t B, D, chunk;
    SCOREKIT_HD SCOREKIT_INLINE std::int64_t chunks() const {
        return D == 0 ? 1 : (D + chunk - 1) / chunk;
    }
    SCOREKIT_HD SCOREKIT_INLINE std::int64_t units() const { return B * chunks(); }
};

// Rows of at most this many elements are reduced one thread per row.
constexpr std::int64_t kShortRow = 64;

// Threads per chunk of a row reduction whose chunks are at most kReduceChunk
// long (cuda/row_reduce.cuh): a warp, or eight (four chunks a warp, so that
// all 32 threads add, where a warp per chunk leaves 24 of them idle while its
// eight add). Eight threads a chunk save instructions, so they are taken only
// for an Op that is bound by its instructions (`groups_pay`: the corrector's
// norms, and float32 dsm_loss, which make their noise again), and only where
// their blocks fill the device one and a half times over (`slots`: its
// multiprocessors times the blocks of that kernel each holds): with fewer, they
// run a quarter of the warps, too few to keep it busy. Measured on an H200
// (benchmarks/RESULTS.md): those up to 4% faster with eight at 2^27 and 2^28
// elements, up to 2% slower at 2^26, 6-11% at 2^25 and 30-54% at 2^24; float64
// dsm_loss and the passes bound by memory (ism_loss, ssm_loss, hutchinson,
// dsm_loss with stored noise) up to 30% slower with eight, never faster by more
// than 1%.
// `setting` 8 or 32 takes that many whatever the Op and size (0: choose).
constexpr int kChunkGroup = 8;
constexpr int kChunkWarp = 32;
SCOREKIT_HD SCOREKIT_INLINE int chunk_threads(std::uint64_t units, std::uint64_t slots,
                                              bool groups_pay, int setting = 0) {
    if (setting == kChunkGroup || setting == kChunkWarp) return setting;
    if (!groups_pay) return kChunkWarp;
    constexpr std::uint64_t per_block = kThreads / kChunkGroup;
    const std::uint64_t blocks = (units + per_block - 1) / per_block;
    return 2 * blocks >= 3 * slots ? kChunkGroup : kChunkWarp;
}

// Doubles of scratch a row reduction (cuda/row_reduce.cuh) of `rows` rows of D
// elements in chunks of `chunk`, with `sums` values per element, needs.
SCOREKIT_HD SCOREKIT_INLINE std::int64_t reduce_scratch(std::int64_t rows, std::int64_t D,
                                                        std::int64_t chunk, int sums) {
    return D <= kShortRow ? 0 : RowChunks{rows, D, chunk}.chunks() * rows * sums;
}

}  // namespace cuda
}  // namespace scorekit
