#include "app/server/slots.h"

#include <algorithm>

namespace strata::app::server {

SlotPool::SlotPool(int n_slots, int max_queue)
    : slots_(static_cast<size_t>(std::max(1, n_slots))), busy_(slots_.size(), false), max_queue_(std::max(0, max_queue)) {}

SlotPool::Lease::~Lease() { pool_.release(index_); }

std::shared_ptr<SlotPool::Lease> SlotPool::acquire() {
    std::unique_lock lock(mu_);
    auto free_slot = [&] { return std::find(busy_.begin(), busy_.end(), false); };
    if (waiting_.empty() && free_slot() != busy_.end()) {
        // Fast path: nobody is ahead of us.
    } else {
        if (static_cast<int>(waiting_.size()) >= max_queue_) return nullptr;
        const uint64_t ticket = next_ticket_++;
        waiting_.push_back(ticket);
        cv_.wait(lock, [&] { return waiting_.front() == ticket && free_slot() != busy_.end(); });
        waiting_.pop_front();
    }
    auto it = free_slot();
    *it = true;
    const size_t index = static_cast<size_t>(it - busy_.begin());
    // Whoever is next in line may find another free slot.
    cv_.notify_all();
    lock.unlock();
    return std::make_shared<Lease>(*this, index);
}

void SlotPool::release(size_t index) {
    {
        std::lock_guard lock(mu_);
        busy_[index] = false;
    }
    cv_.notify_all();
}

SlotPool::Stats SlotPool::stats() const {
    std::lock_guard lock(mu_);
    return {.total = static_cast<int>(busy_.size()),
            .busy = static_cast<int>(std::count(busy_.begin(), busy_.end(), true)),
            .queued = static_cast<int>(waiting_.size())};
}

}  // namespace strata::app::server
