// Prints a digest of the CPU backend's noise and fused kernels, so builds for
// different CPUs (an aarch64 cross build run under an emulator, an x86-64
// build on each instruction-set level) can be compared bit for bit.
// Built and run by tests/test_cross_arch.py.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cpu_backend.hpp"
#include "simd.hpp"

namespace sk = scorekit;

namespace {

std::uint64_t fnv(std::uint64_t h, const void* p, std::size_t n) {
    const unsigned char* c = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

template <class T>
std::uint64_t digest() {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const sk::Stream st{0x8000000000000005ull, 0x100000011ull};
    const sk::cpu::NoiseKind kinds[] = {sk::cpu::NoiseKind::Normal, sk::cpu::NoiseKind::Uniform,
                                        sk::cpu::NoiseKind::Rademacher};
    const std::int64_t sizes[] = {1, 3, 63, 64, 65, 129, 257, 4097, 100003};
    const std::uint64_t offsets[] = {0, 1, 7, (std::uint64_t(1) << 34) - 9};
    for (auto kind : kinds)
        for (auto n : sizes)
            for (auto off : offsets) {
                std::vector<T> out(static_cast<std::size_t>(n));
                sk::cpu::fill_noise<T>(kind, st, off, n, out.data());
                h = fnv(h, out.data(), out.size() * sizeof(T));
            }
    // perturb and langevin_step on rows of ragged length, per-sample parameters
    const std::int64_t B = 7, D = 1237;
    std::vector<T> x(static_cast<std::size_t>(B * D)), score(x.size()), out(x.size());
    std::vector<T> sigma(static_cast<std::size_t>(B));
    sk::cpu::fill_noise<T>(sk::cpu::NoiseKind::Normal, sk::Stream{1, 2}, 0, B * D, x.data());
    sk::cpu::fill_noise<T>(sk::cpu::NoiseKind::Normal, sk::Stream{3, 4}, 0, B * D, score.data());
    for (std::int64_t b = 0; b < B; ++b) sigma[static_cast<std::size_t>(b)] = T(0.1) * T(b + 1);
    sk::cpu::perturb<T>(x.data(), B, D, sk::RowParam<T>{nullptr, T(0.9)},
                        sk::RowParam<T>{sigma.data(), T(0)}, st, 5, out.data());
    h = fnv(h, out.data(), out.size() * sizeof(T));
    sk::cpu::langevin_step<T>(x.data(), score.data(), B, D, sk::RowParam<T>{sigma.data(), T(0)},
                              st, 3, out.data());
    h = fnv(h, out.data(), out.size() * sizeof(T));
    std::vector<double> row_loss(static_cast<std::size_t>(B));
    sk::cpu::dsm_loss<T>(score.data(), nullptr, B, D, sk::RowParam<T>{sigma.data(), T(0)}, true,
                         sk::RowParam<T>{nullptr, T(0)}, 1.0 / B, st, 2, row_loss.data(),
                         out.data());
    h = fnv(h, out.data(), out.size() * sizeof(T));
    h = fnv(h, row_loss.data(), row_loss.size() * sizeof(double));
    return h;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) {
        sk::cpu::Simd level;
        if (!sk::cpu::simd_from_name(argv[1], level)) return 2;
        sk::cpu::set_simd(level);
    }
    std::printf("%s %016llx %016llx\n", sk::cpu::simd_name(sk::cpu::simd()),
                static_cast<unsigned long long>(digest<float>()),
                static_cast<unsigned long long>(digest<double>()));
    return 0;
}
