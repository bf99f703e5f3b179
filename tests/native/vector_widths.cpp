// Runs the vector noise code of cpp/src/simd_vec.hpp at 4, 8 and 16 lanes with
// the portable multiply (so every width runs on any x86-64 or aarch64 CPU,
// including the 16 lanes of the AVX-512 path) and compares every value with
// the scalar functors, bit for bit. Prints "ok" or the first mismatch.
// Built and run by tests/test_cross_arch.py.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "simd_vec.hpp"

namespace sk = scorekit;

namespace {

int failures = 0;

template <class Isa, class Block, class T>
void check(const char* what, const sk::Stream& st, std::uint64_t start, std::uint64_t n) {
    std::vector<T> want(n), got(n);
    sk::fill_range<Block, T>(st, start, n, want.data());
    sk::fill_range<Block, T, sk::vec::Bulk<Isa, 2>>(st, start, n, got.data());
    if (std::memcmp(want.data(), got.data(), n * sizeof(T)) != 0 && failures++ < 5)
        std::printf("mismatch: %s, %d lanes, %zu-byte values, start %llu, n %llu\n", what, Isa::N,
                    sizeof(T), static_cast<unsigned long long>(start),
                    static_cast<unsigned long long>(n));
}

template <class Isa, class T>
void all_kinds(const sk::Stream& st, std::uint64_t start, std::uint64_t n) {
    check<Isa, sk::NormalBlock<T>, T>("normal", st, start, n);
    check<Isa, sk::UniformBlock<T>, T>("uniform", st, start, n);
    check<Isa, sk::RademacherBlock<T>, T>("rademacher", st, start, n);
}

template <class Isa>
void width() {
    const sk::Stream st{0x8000000000000005ull, 0x100000011ull};
    const std::uint64_t sizes[] = {1, 5, 63, 64, 65, 129, 255, 256, 257, 1000, 4099};
    // starts inside the first block, and where the block index crosses 2^32
    const std::uint64_t starts[] = {0, 1, 3, 7, (std::uint64_t(1) << 34) - 37,
                                    (std::uint64_t(1) << 33) - 17};
    for (auto n : sizes)
        for (auto s : starts) {
            all_kinds<Isa, float>(st, s, n);
            all_kinds<Isa, double>(st, s, n);
        }
}

}  // namespace

int main() {
    width<sk::vec::PortableIsa<4>>();
    width<sk::vec::PortableIsa<8>>();
    width<sk::vec::PortableIsa<16>>();
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
