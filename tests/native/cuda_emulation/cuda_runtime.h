// Host stand-in for the parts of the CUDA runtime that cuda/*.cu use, so their
// kernels can run on a CPU: each launch runs its blocks one after the other,
// the threads of a block as fibers (ucontext) on one host thread. __syncthreads
// hands control back to the block's scheduler, which runs every thread up to its
// next barrier (or its end) before any passes it, in thread order or, with
// emu::reverse, in reverse order (so a missing barrier shows whichever side
// reads first). A round in which some threads wait at a barrier while others
// have ended, or wait at another barrier, aborts (divergent __syncthreads).
// __syncwarp is run as a block barrier (see below).
// Used only by tests/test_cuda_host.py, which also rewrites the
// kernel<<<...>>>(...) launches into emu::launch calls.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __grid_constant__
#ifndef CUDART_VERSION  // (tests/native/cuda_inline_copy.cpp is built with older ones too)
#define CUDART_VERSION 13000  // the toolkit the package is built with
#endif
#define SCOREKIT_CUDA_EMULATED 1  // (cuda/launch.cuh: vector accesses checked)

struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

typedef void* cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorNotSupported = 801 };
namespace emu {
// nonzero: the next launch is refused with this error (cudaGetLastError
// returns it once), and its kernel does not run
inline cudaError_t refuse_next_launch = cudaSuccess;
inline cudaError_t pending = cudaSuccess;
}  // namespace emu
inline cudaError_t cudaGetDevice(int* d) {
    *d = 0;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() {
    const cudaError_t e = emu::pending;
    emu::pending = cudaSuccess;
    return e;
}
// The device the row reductions size their grids for (row_reduce.cuh's
// group_slots, asked once per kernel): emu::sms multiprocessors holding
// emu::blocks_per_sm blocks of any kernel each.
namespace emu {
inline int sms = 2, blocks_per_sm = 2;

// A 16-byte vector access at p: on a GPU a misaligned one faults (and the
// context is lost); here it aborts, where x86 would let it through.
inline void vector_access(const void* p, const char* what) {
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) {
        std::fprintf(stderr, "emu: misaligned 16-byte %s at %p\n", what, p);
        std::abort();
    }
}
}  // namespace emu
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
    *value = emu::sms;
    return cudaSuccess;
}
template <class Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel, int, std::size_t) {
    *blocks = emu::blocks_per_sm;
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
inline const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : "operation not supported";
}


namespace emu {
inline long long launches = 0;
inline std::vector<unsigned> grids;  // of every launch that ran, in order (before grid_override)
inline unsigned grid_override = 0;  // nonzero: run every launch on this many blocks
inline bool reverse = false;        // run a block's threads in reverse order

struct Fiber {
    ucontext_t ctx;
    bool done = true;
};
constexpr std::size_t kStack = 256 * 1024;
inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<std::unique_ptr<char[]>> stacks;
inline unsigned current = 0;
inline std::function<void()> body;
// where each waiting thread called __syncthreads: its source file and line, not
// the call's address, which the compiler may duplicate (jump threading)
struct Site {
    const char* file = nullptr;
    int line = 0;
    bool operator!=(const Site& o) const { return file != o.file || line != o.line; }
};
inline std::vector<Site> barrier_site;

inline void fiber_main() {
    body();
    fibers[current].done = true;
    swapcontext(&fibers[current].ctx, &scheduler);
}

struct Config {
    unsigned grid, threads;
};
inline Config cfg(unsigned grid, unsigned threads, int, cudaStream_t) { return {grid, threads}; }

template <class... Params, class... Args>
void launch(Config c, void (*kernel)(Params...), Args&&... args) {
    if (c.grid == 0 || c.grid > 2147483647u || c.threads == 0 || c.threads > 1024) std::abort();
    if (refuse_next_launch != cudaSuccess) {
        pending = refuse_next_launch;
        refuse_next_launch = cudaSuccess;
        return;
    }
    ++launches;
    grids.push_back(c.grid);
    gridDim.x = grid_override ? grid_override : c.grid;
    blockDim.x = c.threads;
    body = [&] { kernel(args...); };
    fibers.resize(c.threads);
    barrier_site.assign(c.threads, Site{});
    while (stacks.size() < c.threads) stacks.emplace_back(new char[kStack]);
    for (unsigned b = 0; b < gridDim.x; ++b) {
        blockIdx.x = b;
        for (unsigned t = 0; t < c.threads; ++t) {
            Fiber& f = fibers[t];
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = stacks[t].get();
            f.ctx.uc_stack.ss_size = kStack;
            f.ctx.uc_link = nullptr;
            makecontext(&f.ctx, fiber_main, 0);
            f.done = false;
        }
        for (bool live = true; live;) {  // one round: every thread to its next barrier
            live = false;
            unsigned waiting = 0, ended = 0;
            Site site;
            for (unsigned i = 0; i < c.threads; ++i) {
                const unsigned t = reverse ? c.threads - 1 - i : i;
                if (fibers[t].done) {
                    ++ended;
                    continue;
                }
                current = t;
                threadIdx.x = t;
                swapcontext(&scheduler, &fibers[t].ctx);
                if (fibers[t].done) {
                    ++ended;
                    continue;
                }
                live = true;
                if (waiting++ == 0) site = barrier_site[t];
                if (barrier_site[t] != site) {
                    std::fprintf(stderr, "emu: threads of block %u wait at different barriers\n", b);
                    std::abort();
                }
            }
            if (waiting && ended) {
                std::fprintf(stderr, "emu: in block %u, %u threads wait at a barrier that %u ended "
                             "threads never reach\n", b, waiting, ended);
                std::abort();
            }
        }
    }
}
}  // namespace emu

inline void sync_at(const char* file, int line) {
    emu::barrier_site[emu::current] = {file, line};
    swapcontext(&emu::fibers[emu::current].ctx, &emu::scheduler);
}
#define __syncthreads() sync_at(__FILE__, __LINE__)
// A warp's barrier, run as the block's: right for kernels whose warps all pass
// the same warp barriers (cuda/row_reduce.cuh), and no weaker for the warp itself.
#define __syncwarp() sync_at(__FILE__, __LINE__)
