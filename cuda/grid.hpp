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

constexpr int kThreads = 256;                        // threads per block, every launcher
constexpr std::uint64_t kMaxBlocks = 65535ull * 8;  // grid-stride beyond this

// Blocks for `units` units of work, one unit per thread per pass.
SCOREKIT_HD SCOREKIT_INLINE std::uint64_t grid_blocks(std::uint64_t units) {
    const std::uint64_t b = (units + kThreads - 1) / kThreads;
    return b == 0 ? 1 : (b < kMaxBlocks ? b : kMaxBlocks);
}

// Elements [0, n) that read stream elements [first, first + n), split at the
// stream's blocks of K elements: unit u is stream block first / K + u and
// covers elements [begin(u), end(u)) of the output.
struct BlockUnits {
    std::uint64_t first;  // stream element of output element 0
    std::uint64_t n;      // output elements
    std::uint64_t K;      // elements per stream block

    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t units() const {
        return n == 0 ? 0 : (first + n - 1) / K - first / K + 1;
    }
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t block(std::uint64_t u) const { return first / K + u; }
    // output element of the block's first value (may lie before 0: see skip)
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t begin(std::uint64_t u) const {
        const std::uint64_t s = block(u) * K;
        return s < first ? 0 : s - first;
    }
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t end(std::uint64_t u) const {
        const std::uint64_t e = (block(u) + 1) * K - first;
        return e < n ? e : n;
    }
    // values of the block to skip before output element begin(u)
    SCOREKIT_HD SCOREKIT_INLINE std::uint64_t skip(std::uint64_t u) const {
        const std::uint64_t s = block(u) * K;
        return s < first ? first - s : 0;
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

// Doubles of scratch a row reduction (cuda/row_reduce.cuh) of `rows` rows of D
// elements in chunks of `chunk`, with `sums` values per element, needs.
SCOREKIT_HD SCOREKIT_INLINE std::int64_t reduce_scratch(std::int64_t rows, std::int64_t D,
                                                        std::int64_t chunk, int sums) {
    return D <= kShortRow ? 0 : RowChunks{rows, D, chunk}.chunks() * rows * sums;
}

}  // namespace cuda
}  // namespace scorekit
