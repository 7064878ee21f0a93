#pragma once
// `SlotPool`: the server's `--parallel N` generation slots and the bounded queue
// in front of them. A slot keeps its `Session` between requests, so a client that
// continues a conversation on the same slot recomputes only the new suffix.
// Requests wait first come, first served; when `max_queue` are already waiting,
// `acquire` refuses at once (the adapters answer 503).

#include "engine/engine.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace strata::app::server {

struct Slot {
    std::unique_ptr<Session> session;
    std::string model;  // the model `session` belongs to
};

class SlotPool {
public:
    SlotPool(int n_slots, int max_queue);

    // One slot held by one request; released when the last copy is destroyed
    // (a streaming response holds it until its content provider is gone).
    class Lease {
    public:
        Lease(SlotPool& pool, size_t index) : pool_(pool), index_(index) {}
        ~Lease();
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Slot& slot() { return pool_.slots_[index_]; }

    private:
        SlotPool& pool_;
        size_t index_;
    };

    // Waits for a free slot; null when the queue is full.
    std::shared_ptr<Lease> acquire();

    struct Stats {
        int total = 0, busy = 0, queued = 0;
    };
    Stats stats() const;

private:
    void release(size_t index);

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Slot> slots_;
    std::vector<bool> busy_;
    std::deque<uint64_t> waiting_;  // tickets, oldest first
    uint64_t next_ticket_ = 0;
    int max_queue_;
};

}  // namespace strata::app::server
