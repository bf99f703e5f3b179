// Checks the page-locked staging of host-to-device copies (cuda/staging.hpp)
// against a stand-in runtime whose "GPU" runs a stream's work only when told
// to: a slot is never written while a copy from it is still queued, the bytes
// that reach the device are the bytes the host gave at the time of the call,
// slots are reused once their copies have run, the pool stays within its
// bounds (waiting for the oldest copy beyond them), and large copies or failed
// page-locked allocations are left to the caller. Prints "ok" or the failures.
// Built and run by tests/test_cuda_host.py.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include "staging.hpp"

namespace sc = scorekit::cuda;

namespace {

int failures = 0;

void expect(bool ok, const char* what, int line) {
    if (!ok && failures++ < 10) std::printf("line %d: %s\n", line, what);
}
#define EXPECT(c) expect((c), #c, __LINE__)

// One in-order stream. Queued work: copies (bytes read from the source when
// they run, as a DMA does) and event records.
struct Gpu {
    struct Op {
        bool is_copy;
        void* dst;
        const void* src;
        std::size_t n;
        int event;
    };
    std::deque<Op> queue;
    std::vector<std::uint64_t> recorded, completed;  // per event: records enqueued / run
    std::size_t pinned_allocs = 0, pinned_frees = 0, waits = 0, pinned_limit = ~std::size_t{0};
    bool fail_events = false, fail_record = false;
    std::vector<std::vector<unsigned char>> pinned;

    void run(std::size_t ops) {  // the GPU runs up to ops queued operations
        for (; ops > 0 && !queue.empty(); --ops) {
            const Op op = queue.front();
            queue.pop_front();
            if (op.is_copy)
                std::memcpy(op.dst, op.src, op.n);
            else
                ++completed[op.event];
        }
    }
    void run_all() { run(queue.size()); }
};

Gpu* gpu = nullptr;

struct FakeRuntime {
    using Event = int;
    using Stream = int;
    void* alloc_pinned(std::size_t n) {
        if (gpu->pinned_allocs >= gpu->pinned_limit) return nullptr;
        ++gpu->pinned_allocs;
        gpu->pinned.emplace_back(n, 0xAB);
        return gpu->pinned.back().data();
    }
    void free_pinned(void*) { ++gpu->pinned_frees; }
    bool new_event(Event* e) {
        if (gpu->fail_events) return false;
        *e = static_cast<int>(gpu->recorded.size());
        gpu->recorded.push_back(0);
        gpu->completed.push_back(0);
        return true;
    }
    bool done(Event e) { return gpu->completed[e] == gpu->recorded[e]; }
    void wait(Event e) {
        ++gpu->waits;
        while (!done(e)) gpu->run(1);
    }
    void record(Event e, Stream) {
        if (gpu->fail_record) throw std::runtime_error("record failed");
        ++gpu->recorded[e];
        gpu->queue.push_back({false, nullptr, nullptr, 0, e});
    }
    void copy_async(void* dst, const void* src, std::size_t n, Stream) {
        gpu->queue.push_back({true, dst, src, n, -1});
    }
};

using Pool = sc::Staging<FakeRuntime>;

std::vector<double> values(std::size_t n, double base) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = base + static_cast<double>(i);
    return v;
}

// Many copies with the GPU running behind, the host buffer overwritten after
// each call: every destination gets the values of its own call.
void copies_arrive_intact(std::size_t n, std::size_t lag) {
    Gpu g;
    gpu = &g;
    Pool pool;
    const std::size_t calls = 200;
    std::vector<std::vector<double>> dst(calls, std::vector<double>(n, -1.0));
    std::vector<double> host(n);
    for (std::size_t c = 0; c < calls; ++c) {
        const auto v = values(n, 1000.0 * static_cast<double>(c));
        std::memcpy(host.data(), v.data(), n * sizeof(double));
        EXPECT(pool.copy(host.data(), n * sizeof(double), dst[c].data(), 0));
        std::fill(host.begin(), host.end(), -7.0);  // the caller's buffer goes at once
        if (c % (lag + 1) == lag) g.run(2);       // the GPU falls behind
    }
    g.run_all();
    for (std::size_t c = 0; c < calls; ++c) EXPECT(dst[c] == values(n, 1000.0 * static_cast<double>(c)));
    EXPECT(pool.slots() <= Pool::max_slots(Pool::slot_size(n * sizeof(double))));
}

// A GPU that keeps up: one slot serves every call.
void slots_are_reused() {
    Gpu g;
    gpu = &g;
    Pool pool;
    std::vector<double> host = values(1024, 1.0), dst(1024);
    for (int c = 0; c < 50; ++c) {
        EXPECT(pool.copy(host.data(), host.size() * sizeof(double), dst.data(), 0));
        g.run_all();
    }
    EXPECT(pool.slots() == 1);
    EXPECT(g.waits == 0);
    // a GPU that runs nothing: kMaxSlots slots, then waits for the oldest
    for (std::size_t c = 0; c < Pool::kMaxSlots + 5; ++c)
        EXPECT(pool.copy(host.data(), host.size() * sizeof(double), dst.data(), 0));
    EXPECT(pool.slots() == Pool::kMaxSlots);
    EXPECT(g.waits == 5);
    g.run_all();
    EXPECT(dst == host);
}

// Sizes round up to powers of two from kMinSlot; each size has its own slots.
void sizes() {
    EXPECT(Pool::slot_size(1) == Pool::kMinSlot);
    EXPECT(Pool::slot_size(Pool::kMinSlot) == Pool::kMinSlot);
    EXPECT(Pool::slot_size(Pool::kMinSlot + 1) == 2 * Pool::kMinSlot);
    EXPECT(Pool::slot_size(100000) == 131072);
    Gpu g;
    gpu = &g;
    Pool pool;
    std::vector<unsigned char> small(10, 1), large(20000, 2), ds(10), dl(20000);
    EXPECT(pool.copy(small.data(), small.size(), ds.data(), 0));
    EXPECT(pool.copy(large.data(), large.size(), dl.data(), 0));
    g.run_all();
    EXPECT(pool.slots() == 2 && pool.bytes() == Pool::kMinSlot + 32768);
    EXPECT(ds == small && dl == large);
    EXPECT(pool.copy(small.data(), 0, ds.data(), 0));  // nothing to copy
    EXPECT(g.queue.empty());
}

// What the pool leaves to the caller: nothing is enqueued then.
void refusals() {
    Gpu g;
    gpu = &g;
    Pool pool;
    std::vector<unsigned char> big(Pool::kSizeBytes + 1), dst(big.size());
    EXPECT(!pool.copy(big.data(), big.size(), dst.data(), 0));
    EXPECT(g.queue.empty() && pool.slots() == 0);
    g.pinned_limit = 0;  // no page-locked memory
    std::vector<double> host = values(8, 0.0), d(8);
    EXPECT(!pool.copy(host.data(), 64, d.data(), 0));
    EXPECT(g.queue.empty() && pool.slots() == 0);
    g.pinned_limit = ~std::size_t{0};
    g.fail_events = true;  // no event: the page-locked block goes back
    EXPECT(!pool.copy(host.data(), 64, d.data(), 0));
    EXPECT(g.pinned_frees == 1 && pool.slots() == 0);
    g.fail_events = false;
}

// Each size has its own budget: the largest copies take their one slot and
// wait for it, and copies of other sizes still get slots of their own.
void budgets_per_size() {
    EXPECT(Pool::max_slots(Pool::kMinSlot) == Pool::kMaxSlots);
    EXPECT(Pool::max_slots(Pool::kSizeBytes / 2) == 2);
    EXPECT(Pool::max_slots(Pool::kSizeBytes) == 1);
    Gpu g;
    gpu = &g;
    Pool pool;
    const std::size_t n = Pool::kSizeBytes;
    std::vector<unsigned char> h(n, 3), dd(n);
    for (int c = 0; c < 3; ++c) EXPECT(pool.copy(h.data(), n, dd.data(), 0));
    EXPECT(pool.slots() == 1 && pool.bytes() == n && g.waits == 2);
    std::vector<unsigned char> h2(n / 2, 4), d2(n / 2);
    for (int c = 0; c < 3; ++c) EXPECT(pool.copy(h2.data(), n / 2, d2.data(), 0));
    EXPECT(pool.slots() == 3 && g.waits == 3);
    std::vector<double> small = values(16, 1.0), ds(16);  // the GPU is still behind
    for (int c = 0; c < 10; ++c) EXPECT(pool.copy(small.data(), 128, ds.data(), 0));
    EXPECT(pool.slots() == 13 && g.waits == 3);
    g.run_all();
    EXPECT(dd == h && d2 == h2 && ds == small);
}

// A slot that is still busy when a new one cannot be allocated: the host
// waits for the busy one and uses it (the pool's storage must not move under
// the slot it picked; built with -fsanitize=address this would show it).
void busy_slot_when_allocation_fails() {
    Gpu g;
    gpu = &g;
    Pool pool;
    std::vector<double> first = values(8, 1.0), second = values(8, 2.0), d1(8), d2(8);
    EXPECT(pool.copy(first.data(), 64, d1.data(), 0));  // one slot, its copy in flight
    g.pinned_limit = g.pinned_allocs;                    // no more page-locked memory
    EXPECT(pool.copy(second.data(), 64, d2.data(), 0));
    EXPECT(pool.slots() == 1 && g.waits == 1);
    g.run_all();
    EXPECT(d1 == first && d2 == second);
}

// A record that fails after its copy was enqueued: the slot is never reused.
void failed_record() {
    Gpu g;
    gpu = &g;
    Pool pool;
    std::vector<double> host = values(8, 5.0), dst(8), dst2(8);
    g.fail_record = true;
    bool threw = false;
    try {
        pool.copy(host.data(), 64, dst.data(), 0);
    } catch (const std::runtime_error&) {
        threw = true;
    }
    EXPECT(threw);
    g.fail_record = false;
    const std::vector<double> other = values(8, 50.0);
    EXPECT(pool.copy(other.data(), 64, dst2.data(), 0));
    EXPECT(pool.slots() == 2);  // a new slot, not the one with a copy in flight
    g.run_all();
    EXPECT(dst == host && dst2 == other);
}

}  // namespace

int main() {
    for (std::size_t n : {1, 7, 512, 513, 4096})
        for (std::size_t lag : {0, 1, 3, 40}) copies_arrive_intact(n, lag);
    slots_are_reused();
    sizes();
    refusals();
    budgets_per_size();
    busy_slot_when_allocation_fails();
    failed_record();
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
