// Runs cpp/src/simd_avx512.cpp, compiled against the emulated intrinsics of
// tests/native/avx512_emulation/, against the scalar functors: every kind and
// dtype, ragged sizes, starts inside a block, block counters crossing 2^32 and
// near 2^64, extreme keys; sentinels around the output catch stray writes.
// Prints "ok" or the first mismatches. Built and run by tests/test_cross_arch.py.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "scorekit/noise.hpp"
#include "simd_targets.hpp"

namespace sk = scorekit;

namespace {

int failures = 0;

template <class Block, class T, class Fill>
void check(int kind, const char* name, Fill fill, const sk::Stream& st, std::uint64_t start,
           std::uint64_t n) {
    std::vector<T> want(n + 2, T(7)), got(n + 2, T(7));
    sk::fill_range<Block, T>(st, start, n, want.data() + 1);
    fill(kind, st.seed, st.counter, start, n, got.data() + 1);
    if (std::memcmp(want.data(), got.data(), (n + 2) * sizeof(T)) != 0 && failures++ < 5)
        std::printf("mismatch: %s, %zu-byte values, start %llu, n %llu\n", name, sizeof(T),
                    static_cast<unsigned long long>(start), static_cast<unsigned long long>(n));
}

}  // namespace

int main() {
    const sk::Stream streams[] = {{0x8000000000000005ull, 0x100000011ull}, {~0ull, ~0ull}, {0, 0}};
    const std::uint64_t sizes[] = {0, 1, 3, 5, 63, 64, 127, 128, 129, 257, 1000, 4099};
    const std::uint64_t starts[] = {0, 1, 3, 7, (1ull << 34) - 37, (1ull << 33) - 17, ~0ull - 200};
    for (const auto& st : streams)
        for (auto n : sizes)
            for (auto s : starts) {
                if (s > ~0ull - n) continue;
                check<sk::NormalBlock<float>, float>(0, "normal", scorekit_avx512_fill_f32, st, s, n);
                check<sk::UniformBlock<float>, float>(1, "uniform", scorekit_avx512_fill_f32, st, s, n);
                check<sk::RademacherBlock<float>, float>(2, "rademacher", scorekit_avx512_fill_f32, st,
                                                         s, n);
                check<sk::NormalBlock<double>, double>(0, "normal", scorekit_avx512_fill_f64, st, s, n);
                check<sk::UniformBlock<double>, double>(1, "uniform", scorekit_avx512_fill_f64, st, s,
                                                        n);
                check<sk::RademacherBlock<double>, double>(2, "rademacher", scorekit_avx512_fill_f64,
                                                           st, s, n);
            }
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
