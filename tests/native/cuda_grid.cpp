// Checks the work layout of the CUDA launchers (cuda/grid.hpp) on the host:
// for awkward sizes, offsets and grid sizes, a grid-stride loop over the units
// visits every unit once, and the units cover every output element exactly
// once with the value index the scalar fill_range would give it. Prints "ok"
// or the first failures. Built and run by tests/test_cuda_host.py.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "grid.hpp"

namespace sc = scorekit::cuda;

namespace {

int failures = 0;

void fail(const char* what, std::uint64_t first, std::uint64_t n, std::uint64_t K,
          std::uint64_t blocks) {
    if (failures++ < 5)
        std::printf("%s: first %llu n %llu K %llu blocks %llu\n", what,
                    static_cast<unsigned long long>(first), static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(K), static_cast<unsigned long long>(blocks));
}

template <int K>
void check(std::uint64_t first, std::uint64_t n, std::uint64_t blocks) {
    const auto bu = sc::BlockUnits<K>::of(first, n);
    std::vector<int> seen(n, 0);
    const std::uint64_t threads = sc::kThreads, units = bu.units();
    std::uint64_t visits = 0;
    for (std::uint64_t blk = 0; blk < blocks; ++blk)
        for (std::uint64_t t = 0; t < threads; ++t)
            for (std::uint64_t u = blk * threads + t; u < units; u += blocks * threads) {
                ++visits;
                int inside = 0;
                for (int k = 0; k < K; ++k) {
                    const std::uint64_t i = bu.element(u, k);
                    if (i >= n) continue;
                    ++inside;
                    ++seen[i];
                    // element i is value (first + i) % K of stream block (first + i) / K
                    if (bu.block(u) != (first + i) / K || static_cast<std::uint64_t>(k) != (first + i) % K)
                        fail("wrong value index", first, n, K, blocks);
                }
                if (inside == 0) fail("an empty unit", first, n, K, blocks);
            }
    if (visits != units) fail("a unit visited twice or never", first, n, K, blocks);
    for (std::uint64_t i = 0; i < n; ++i)
        if (seen[i] != 1) {
            fail("an element covered other than once", first, n, K, blocks);
            break;
        }
}

template <int K>
void check_sizes() {
    const std::uint64_t firsts[] = {0, 1, 2, 3, 5, (std::uint64_t(1) << 34) - 3,
                                    (std::uint64_t(1) << 62) - 4097};
    const std::uint64_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 255, 256, 257, 1023, 1024, 1025, 4099};
    for (auto f : firsts)
        for (auto n : sizes) {
            const std::uint64_t units = sc::BlockUnits<K>::of(f, n).units();
            check<K>(f, n, sc::grid_blocks(units));
            check<K>(f, n, 1);  // one block: grid-stride covers the rest
            check<K>(f, n, 3);
        }
}

// RowOf: i / D exactly, without a 64-bit division, near row ends and for large i.
void check_rows() {
    const std::int64_t Ds[] = {1, 2, 3, 4, 7, 64, 65, 4096, 4097, 1000003, (std::int64_t(1) << 31) + 11};
    const std::int64_t big = std::int64_t(1) << 61;
    for (std::int64_t D : Ds) {
        const auto of = sc::RowOf::of(D);
        for (std::int64_t q : {std::int64_t(0), std::int64_t(1), std::int64_t(2), std::int64_t(1000),
                               std::int64_t(1) << 20, std::int64_t(1) << 30, big / D - 1})
            for (std::int64_t r : {std::int64_t(0), std::int64_t(1), D / 2, D - 2, D - 1}) {
                if (r < 0 || r >= D) continue;
                const std::int64_t i = q * D + r;
                if (of(i) != i / D) fail("RowOf", static_cast<std::uint64_t>(i), 0, static_cast<std::uint64_t>(D), 0);
            }
    }
}

}  // namespace

int main() {
    check_sizes<2>();
    check_sizes<4>();
    check_rows();
    // the grid is capped, never zero
    if (sc::grid_blocks(0) != 1 || sc::grid_blocks(1) != 1 || sc::grid_blocks(257) != 2 ||
        sc::grid_blocks(~std::uint64_t(0) / 2) != sc::kMaxBlocks)
        fail("grid_blocks", 0, 0, 0, 0);
    // reductions: chunks of a row
    const sc::RowChunks rc{3, 10000, 4096};
    if (rc.chunks() != 3 || rc.units() != 9 || sc::RowChunks{2, 0, 4096}.chunks() != 1)
        fail("RowChunks", 0, 0, 0, 0);
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
