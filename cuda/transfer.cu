// Host-to-device copies of small host arrays (per-sample parameters), enqueued
// on the caller's stream so that the host does not wait for the stream; the
// host buffer may go as soon as the call returns. Up to about 32 KB (whole
// 4-byte words; 4 KB before CUDA 12.1) the bytes travel in a copy kernel's
// parameters (inline_copy.cuh); larger copies go through page-locked staging
// (staging.hpp), and those the staging does not take straight from pageable
// memory.
//
// Host arrays are not captured in CUDA graphs: a replay of a staged copy would
// read a slot that later calls reuse, or a host buffer that is gone, and a
// replay of a copy kernel would repeat the values of the capture, which a loop
// that gives new ones each step would not expect. A copy on a capturing stream
// is refused, before anything is enqueued.
#include <memory>
#include <mutex>

#include "cuda_backend.hpp"
#include "inline_copy.cuh"
#include "launch.cuh"
#include "staging.hpp"

namespace scorekit {
namespace cuda {
namespace {

struct Runtime {
    using Event = cudaEvent_t;
    using Stream = cudaStream_t;
    static void* alloc_pinned(std::size_t n) {
        void* p = nullptr;
        if (cudaHostAlloc(&p, n, cudaHostAllocPortable) != cudaSuccess) {
            cudaGetLastError();  // not sticky: clear it, the copy goes from pageable memory
            return nullptr;
        }
        return p;
    }
    static void free_pinned(void* p) { cudaFreeHost(p); }
    static bool new_event(Event* e) {
        if (cudaEventCreateWithFlags(e, cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            return false;
        }
        return true;
    }
    static bool done(Event e) {
        const cudaError_t err = cudaEventQuery(e);
        if (err == cudaErrorNotReady) {
            cudaGetLastError();  // not an error: clear it, or the next launch check reports it
            return false;
        }
        check(err, "staging event");
        return true;
    }
    static void wait(Event e) { check(cudaEventSynchronize(e), "staging event"); }
    static void record(Event e, Stream s) { check(cudaEventRecord(e, s), "staging event"); }
    static void copy_async(void* dst, const void* src, std::size_t n, Stream s) {
        check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s), "host-to-device copy");
    }
};

struct DevicePool {
    std::mutex lock;
    Staging<Runtime> staging;
};

// One pool per device, created on first use and never destroyed (the runtime
// may be gone when static destructors run).
DevicePool& pool(int device) {
    static std::mutex guard;
    static auto* pools = new std::vector<std::unique_ptr<DevicePool>>();
    const std::lock_guard<std::mutex> hold(guard);
    if (pools->size() <= static_cast<std::size_t>(device)) pools->resize(device + 1);
    auto& p = (*pools)[device];
    if (!p) p = std::make_unique<DevicePool>();
    return *p;
}

void refuse_capture(cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    const cudaError_t err = cudaStreamIsCapturing(stream, &status);
    if (err == cudaErrorStreamCaptureImplicit)  // the legacy stream, beside a capture
        cudaGetLastError();                     // (not sticky: reported here, then cleared)
    else if (err != cudaSuccess)
        check(err, "cudaStreamIsCapturing");
    else if (status == cudaStreamCaptureStatusNone)
        return;
    throw std::runtime_error(
        "scorekit CUDA: host-to-device copy: the stream is capturing a CUDA graph, and a "
        "host array parameter is not captured (a replay would not see the values of later "
        "calls); pass it as a device array (with its value checks off) or as a number");
}

}  // namespace

void upload(const void* host, std::size_t nbytes, void* dst, int device, void* stream) {
    if (nbytes == 0) return;
    const OnDevice on(device);
    refuse_capture(as_stream(stream));
    if (put_inline(host, nbytes, dst, as_stream(stream))) return;
    DevicePool& p = pool(device);
    {
        const std::lock_guard<std::mutex> hold(p.lock);
        if (p.staging.copy(host, nbytes, dst, as_stream(stream))) return;
    }
    Runtime::copy_async(dst, host, nbytes, as_stream(stream));
}

}  // namespace cuda
}  // namespace scorekit
