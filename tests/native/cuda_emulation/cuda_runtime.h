// Host stand-in for the parts of the CUDA runtime that cuda/kernels.cu uses,
// so its kernels can run on a CPU: each launch runs its blocks one after the
// other, each block as kThreads std::threads with a real barrier for
// __syncthreads. Used only by tests/test_cuda_host.py, which also rewrites the
// file's kernel<<<...>>>(...) launches into emu::launch calls.
#pragma once

#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __shared__ static thread_local_block
#define __forceinline__ inline
// every emulated block runs to completion before the next: one static buffer serves
#define thread_local_block

typedef void* cudaStream_t;
enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetDevice(int* d) {
    *d = 0;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }

namespace emu {
inline std::barrier<>* block_barrier = nullptr;
inline long long launches = 0;
inline unsigned grid_override = 0;  // nonzero: run every launch on this many blocks

struct Config {
    unsigned grid, threads;
};
inline Config cfg(unsigned grid, unsigned threads, int, cudaStream_t) { return {grid, threads}; }

template <class... Params, class... Args>
void launch(Config c, void (*kernel)(Params...), Args&&... args) {
    if (c.grid == 0 || c.grid > 2147483647u || c.threads == 0 || c.threads > 1024) std::abort();
    ++launches;
    gridDim.x = grid_override ? grid_override : c.grid;
    blockDim.x = c.threads;
    for (unsigned b = 0; b < gridDim.x; ++b) {
        std::barrier<> bar(c.threads);
        block_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < c.threads; ++t)
            threads.emplace_back([&, t, b] {
                blockIdx.x = b;
                threadIdx.x = t;
                kernel(args...);
            });
        for (auto& t : threads) t.join();
    }
}
}  // namespace emu

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
