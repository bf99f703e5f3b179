// cuda/inline_copy.cuh (host-to-device copies carried in a copy kernel's
// parameters) on the host, under tests/native/cuda_emulation, for the CUDA
// runtime it is built with: CUDART_VERSION (the emulation's 13000 unless given)
// 12.1 and later take payloads of up to 32 KB, older runtimes 4 KB.
// Built and run by tests/test_cuda_host.py. Prints "ok" or the first failures.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include <cuda_runtime.h>  // the emulation (tests/native/cuda_emulation)

#include "failures.hpp"
#include "inline_copy.cuh"

using namespace scorekit;

namespace {

// Words a copy must not touch hold kUntouched.
constexpr std::uint32_t kUntouched = 0xdeadbeefu;

template <class It>
bool untouched(It first, It last) {
    return std::all_of(first, last, [](std::uint32_t w) { return w == kUntouched; });
}

// Every payload size and its edges, one launch each, the words after the copy
// untouched; nothing enqueued for what they do not take.
void inline_copies() {
    const std::size_t max = cuda::kMaxInlineBytes;
    std::vector<std::size_t> sizes{4, 8, max - 4, max};
    for (const std::size_t words : cuda::kInlineWords)
        for (const std::size_t nbytes : {4 * words - 4, 4 * words, 4 * words + 4})
            if (nbytes <= max) sizes.push_back(nbytes);
    for (const std::size_t nbytes : sizes) {
        const std::size_t n = nbytes / 4;
        std::vector<std::uint32_t> host(n), dst(n + 9, kUntouched);
        std::mt19937 g(static_cast<unsigned>(nbytes));
        for (auto& w : host) w = static_cast<std::uint32_t>(g());
        const long long before = emu::launches;
        const bool took = cuda::put_inline(host.data(), nbytes, dst.data() + 1, nullptr);
        const bool copied = std::memcmp(dst.data() + 1, host.data(), nbytes) == 0;
        if (!took || emu::launches != before + 1 || !copied || dst[0] != kUntouched ||
            !untouched(dst.begin() + 1 + static_cast<std::ptrdiff_t>(n), dst.end()))
            FAIL("put_inline of %zu bytes: took %d, %lld launches, copied %d\n", nbytes, took,
                 emu::launches - before, copied);
    }
    std::vector<std::uint32_t> host(max / 4 + 2, 1u), dst(max / 4 + 4, kUntouched);
    struct Refused {
        std::size_t nbytes;
        void* at;
    };
    for (const Refused r : {Refused{6, dst.data()}, Refused{max + 4, dst.data()},
                            Refused{8, reinterpret_cast<char*>(dst.data()) + 2}}) {
        const long long before = emu::launches;
        if (cuda::put_inline(host.data(), r.nbytes, r.at, nullptr) || emu::launches != before ||
            !untouched(dst.begin(), dst.end()))
            FAIL("put_inline of %zu bytes must leave the copy to the caller\n", r.nbytes);
    }
    const long long before = emu::launches;
    if (!cuda::put_inline(host.data(), 0, dst.data(), nullptr) || emu::launches != before)
        FAIL("put_inline of no bytes must take it and launch nothing\n");
}

// A driver that refuses parameters over 4 KB (where the runtime passes larger
// ones): the first large copy is left to the caller (nothing written), later
// ones too without a launch, small ones still go. Any other refusal, and any
// refusal of a payload every driver takes, is raised.
void inline_copy_refusals() {
    const std::size_t small = cuda::kInlineWords[0];  // words of the smallest payload
    std::vector<std::uint32_t> host(cuda::kMaxInlineBytes / 4, 5u), dst(host.size(), kUntouched);
    if (cuda::kInlineWords[2] * 4 + 16 > cuda::kSmallParamBytes) {
        emu::refuse_next_launch = cudaErrorNotSupported;
        if (cuda::put_inline(host.data(), 4 * host.size(), dst.data(), nullptr) ||
            !untouched(dst.begin(), dst.end()) || cuda::large_payloads().load())
            FAIL("a refused large copy must be left to the caller, and large ones after it\n");
        const long long before = emu::launches;
        if (cuda::put_inline(host.data(), 4 * (small + 88), dst.data(), nullptr) ||
            emu::launches != before || !untouched(dst.begin(), dst.end()))
            FAIL("after a refusal, copies over the smallest payload must be left to the "
                 "caller\n");
        if (!cuda::put_inline(host.data(), 4 * small, dst.data(), nullptr) ||
            dst[small - 1] != 5u || dst[small] != kUntouched)
            FAIL("after a refusal, copies of up to the smallest payload must still go\n");
        cuda::large_payloads().store(true);
    }
    for (const std::size_t words : {std::size_t{100}, host.size()}) {
        bool raised = false, took = true;
        std::fill(dst.begin(), dst.end(), kUntouched);
        emu::refuse_next_launch = cudaErrorNotSupported;
        try {
            took = cuda::put_inline(host.data(), 4 * words, dst.data(), nullptr);
        } catch (const std::runtime_error&) {
            raised = true;
        }
        // raised where every driver takes the payload; else left to the caller
        const bool large = words > small && cuda::kInlineWords[2] * 4 + 16 > cuda::kSmallParamBytes;
        if (raised == large || (large && took) || !untouched(dst.begin(), dst.end()) ||
            emu::pending != cudaSuccess)
            FAIL("a refused copy of %zu words: raised %d, taken %d\n", words, raised, took);
        cuda::large_payloads().store(true);
    }
}

}  // namespace

int main() {
    constexpr std::size_t want = CUDART_VERSION >= 12010 ? 32764 : 4096;
    if (cuda::kParamBytes != want) FAIL("CUDART_VERSION %d: %zu bytes of parameters\n",
                                        CUDART_VERSION, cuda::kParamBytes);
    for (const unsigned grid : {0u, 1u, 3u}) {  // the launch's own grid, then one and three
        emu::grid_override = grid;              // blocks: the kernel's loop wraps
        inline_copies();
    }
    emu::grid_override = 0;
    inline_copy_refusals();
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
