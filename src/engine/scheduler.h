#pragma once
// `Scheduler`: continuous batching on one engine. Requests wait in a bounded
// queue for one of `n_slots` slots; one step thread runs every active slot
// through one batched forward pass per step — a decode token for each sequence
// that is generating, and chunks of the prompts of those that are not yet — so
// concurrent requests share each read of the weights. Between steps it admits
// waiting requests and drops those that finished or were cancelled, so a client
// that goes away stops costing anything within one step.
//
// A slot keeps its `Session` (KV cache) after its request ends; a new request
// goes to the free slot whose timeline shares the longest prefix with its
// prompt, so a chat that continues a conversation only prefills the new part.
//
// Results leave through each request's callbacks, called on the step thread:
// they must not block (the server's adapters hand the text to the HTTP worker
// through a queue).

#include "engine/engine.h"
#include "engine/generate.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace strata {

struct SchedulerOptions {
    int n_slots = 1;       // sequences generating at once
    int max_queue = 16;    // requests that may wait for a slot; `submit` refuses more
    int64_t n_ctx = 4096;  // KV cache of each slot, in tokens
    KvType kv_type = KvType::F16;
    int64_t n_batch = 512;  // tokens per step: decode tokens and prompt chunks together
    // Latency observers, called on the step thread: seconds from `submit` to a
    // request's first sampled token, and between two tokens of one request.
    std::function<void(double)> on_first_token;
    std::function<void(double)> on_inter_token;
};

struct GenerationRequest {
    std::vector<int32_t> prompt;
    GenerateParams gen;
    int64_t n_ctx = 0;  // this request's context (at most the slot's); 0: the slot's
    PieceFn on_piece;   // text as it becomes safe to show; false cancels
    // Called exactly once, also for a request cancelled while queued (its finish
    // reason `Cancelled`) or one that could not run (an error).
    std::function<void(Result<GenerateResult>)> on_done;
};

class Scheduler {
  public:
    Scheduler(Engine& engine, SchedulerOptions options);
    // Ends every request still queued or running as cancelled.
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Cancels its request from any thread; the request ends within one step.
    class Ticket {
      public:
        void cancel() { cancelled_.store(true); }
        bool cancelled() const { return cancelled_.load(); }

      private:
        std::atomic<bool> cancelled_{false};
    };

    // Queues `request`; an error (and no callback) when `max_queue` requests are
    // already waiting.
    Result<std::shared_ptr<Ticket>> submit(GenerationRequest request);

    struct Stats {
        int slots = 0, active = 0, queued = 0;
        uint64_t cancelled = 0;  // requests ended by cancellation, queued or running
        uint64_t kv_bytes = 0;   // KV caches allocated by the slots
        uint64_t steps = 0;      // batched forward passes run
        uint64_t sequences = 0;  // sequences in them, summed: sequences / steps is the mean batch
        int max_batch = 0;       // most sequences in one pass
    };
    Stats stats() const;
    const SchedulerOptions& options() const { return options_; }
    Engine& engine() const { return engine_; }

  private:
    using Clock = std::chrono::steady_clock;
    struct Item {
        GenerationRequest request;
        std::shared_ptr<Ticket> ticket;
        Clock::time_point submitted;
    };
    struct Slot {
        std::unique_ptr<Session> session;
        std::unique_ptr<Item> item;  // null: free
        std::unique_ptr<Generation> gen;
        size_t prompt_done = 0;  // prompt tokens in the session's timeline
        int64_t n_ctx = 0;       // the request's context limit
        int32_t next = -1;       // the sampled token to evaluate next; -1 while prefilling
        Clock::time_point last_token;
        uint64_t last_used = 0;  // for choosing between equally good free slots
    };

    void loop();
    void admit(std::unique_lock<std::mutex>& lock);
    void start(Slot& slot);
    void step();
    void sampled(Slot& slot);
    void finish(Slot& slot, Result<GenerateResult> result);
    static void end_cancelled(Item& item);

    Engine& engine_;
    SchedulerOptions options_;
    std::vector<Slot> slots_;  // touched by the step thread only

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Item>> queue_;
    int active_ = 0;
    uint64_t kv_bytes_ = 0;
    uint64_t steps_ = 0, sequences_ = 0;
    int max_batch_ = 0;
    uint64_t uses_ = 0;
    bool stop_ = false;
    std::atomic<uint64_t> cancelled_{0};
    std::thread thread_;
};

}  // namespace strata
