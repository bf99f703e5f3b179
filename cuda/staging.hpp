// Pinned staging for host-to-device copies of small host arrays (per-sample
// parameters), so that enqueuing one never waits for the stream.
//
// A copy from pageable memory may make the runtime synchronise with the stream
// before it stages the bytes (CUDA's "API synchronization behavior"): a call
// with a host parameter would then wait for every kernel before it, and the
// host could no longer run ahead of the GPU. Here the bytes go into a slot of
// page-locked memory first, the copy is enqueued from there, and an event
// recorded behind it tells when the slot may be written again.
//
// Slots come in power-of-two sizes from kMinSlot bytes. A slot whose event has
// completed is reused; otherwise a new one is allocated, up to kMaxSlots and
// kSizeBytes bytes per size (at least one slot), and beyond that the host
// waits for the oldest slot of the size (the GPU is that many copies behind).
// Each size has its own budget, so no size can starve another; all sizes
// together hold at most about 56 MiB. Copies larger than kSizeBytes, and
// any when page-locked memory cannot be had, are left to the caller (copy()
// returns false), who copies from pageable memory.
//
// Host code only, over a runtime Rt (the CUDA runtime in transfer.cu, a
// stand-in in tests/native/cuda_staging.cpp) with:
//   Rt::Event, Rt::Stream
//   void* alloc_pinned(size_t)            (nullptr when it fails)
//   void free_pinned(void*)
//   bool new_event(Event*)                (false when it fails)
//   bool done(Event)                      (the work before the event has run)
//   void wait(Event)                      (blocks until done)
//   void record(Event, Stream)
//   void copy_async(void* dst, const void* src, size_t n, Stream)
// The caller holds one Staging per device and serialises calls to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace scorekit {
namespace cuda {

template <class Rt>
class Staging {
  public:
    static constexpr std::size_t kMinSlot = 4096;
    static constexpr std::size_t kMaxSlots = 32;
    static constexpr std::size_t kSizeBytes = std::size_t{8} << 20;

    explicit Staging(Rt rt = Rt{}) : rt_(rt) {}
    Staging(const Staging&) = delete;
    Staging& operator=(const Staging&) = delete;

    // Copies nbytes at host into a slot and enqueues the slot's copy to dst on
    // stream; the host buffer may go when this returns. False: nothing was
    // enqueued (too large, or no page-locked memory), the caller copies.
    bool copy(const void* host, std::size_t nbytes, void* dst, typename Rt::Stream stream) {
        if (nbytes == 0) return true;
        if (nbytes > kSizeBytes) return false;
        Slot* slot = acquire(slot_size(nbytes));
        if (slot == nullptr) return false;
        std::memcpy(slot->mem, host, nbytes);
        rt_.copy_async(dst, slot->mem, nbytes, stream);
        try {
            rt_.record(slot->event, stream);
        } catch (...) {
            slot->size = 0;  // a copy may be in flight with no event behind it: never reused
            throw;
        }
        slot->last_use = ++clock_;
        return true;
    }

    // Slots of one size at most: kMaxSlots, and kSizeBytes in all (at least one).
    static std::size_t max_slots(std::size_t size) {
        const std::size_t by_bytes = kSizeBytes / size;
        return by_bytes < kMaxSlots ? (by_bytes > 0 ? by_bytes : 1) : kMaxSlots;
    }

    // Page-locked bytes held, slots held (for tests).
    std::size_t bytes() const { return bytes_; }
    std::size_t slots() const { return slots_.size(); }

    static std::size_t slot_size(std::size_t nbytes) {
        std::size_t s = kMinSlot;
        while (s < nbytes) s *= 2;
        return s;
    }

  private:
    struct Slot {
        void* mem;
        std::size_t size;
        typename Rt::Event event;
        std::uint64_t last_use;  // 0: never used, its event never recorded
    };

    Slot* acquire(std::size_t size) {
        // room for one more slot first: pointers into slots_ taken below stay valid
        // whether or not grow() adds a slot (nothing to undo if this throws)
        slots_.reserve(slots_.size() + 1);
        Slot* oldest = nullptr;
        std::size_t of_size = 0;
        for (Slot& s : slots_) {
            if (s.size != size) continue;
            ++of_size;
            if (s.last_use == 0 || rt_.done(s.event)) return &s;
            if (oldest == nullptr || s.last_use < oldest->last_use) oldest = &s;
        }
        if (of_size < max_slots(size)) {
            if (Slot* s = grow(size)) return s;
        }
        if (oldest == nullptr) return nullptr;
        rt_.wait(oldest->event);
        return oldest;
    }

    Slot* grow(std::size_t size) {  // (capacity for one more slot is reserved)
        void* mem = rt_.alloc_pinned(size);
        if (mem == nullptr) return nullptr;
        typename Rt::Event event{};
        if (!rt_.new_event(&event)) {
            rt_.free_pinned(mem);
            return nullptr;
        }
        slots_.push_back(Slot{mem, size, event, 0});
        bytes_ += size;
        return &slots_.back();
    }

    Rt rt_;
    std::vector<Slot> slots_;  // never shrinks: pinned memory lives as long as the process
    std::size_t bytes_ = 0;
    std::uint64_t clock_ = 0;
};

}  // namespace cuda
}  // namespace scorekit
