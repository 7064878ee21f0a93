#include "engine/scheduler.h"

#include <algorithm>

namespace strata {

Scheduler::Scheduler(Engine& engine, SchedulerOptions options)
    : engine_(engine), options_(std::move(options)) {
    options_.n_slots = std::max(1, options_.n_slots);
    options_.max_queue = std::max(0, options_.max_queue);
    options_.n_batch = std::max<int64_t>(1, options_.n_batch);
    slots_.resize(static_cast<size_t>(options_.n_slots));
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (Slot& s : slots_) {
        if (!s.item) continue;
        s.gen->cancel();
        finish(s, s.gen->result());
    }
    for (auto& item : queue_) end_cancelled(*item);
}

Result<std::shared_ptr<Scheduler::Ticket>> Scheduler::submit(GenerationRequest request) {
    auto item = std::make_unique<Item>();
    item->request = std::move(request);
    item->ticket = std::make_shared<Ticket>();
    item->submitted = Clock::now();
    auto ticket = item->ticket;
    {
        std::lock_guard lock(mu_);
        // Requests that will find a free slot at the next step do not count
        // against the queue; those beyond the slots do.
        const int waiting = static_cast<int>(queue_.size()) + active_ - options_.n_slots;
        if (waiting >= options_.max_queue) {
            return err("the server is busy: {} requests are already waiting", std::max(0, waiting));
        }
        queue_.push_back(std::move(item));
    }
    cv_.notify_all();
    return ticket;
}

Scheduler::Stats Scheduler::stats() const {
    std::lock_guard lock(mu_);
    return {.slots = options_.n_slots,
            .active = active_,
            .queued = static_cast<int>(queue_.size()),
            .cancelled = cancelled_.load(),
            .kv_bytes = kv_bytes_,
            .steps = steps_,
            .sequences = sequences_,
            .max_batch = max_batch_};
}

void Scheduler::end_cancelled(Item& item) {
    GenerateResult r;
    r.finish = FinishReason::Cancelled;
    r.n_prompt = static_cast<int64_t>(item.request.prompt.size());
    if (item.request.on_done) item.request.on_done(std::move(r));
}

void Scheduler::loop() {
    std::unique_lock lock(mu_);
    while (true) {
        cv_.wait(lock, [&] { return stop_ || !queue_.empty() || active_ > 0; });
        if (stop_) return;
        admit(lock);
        lock.unlock();
        step();
        lock.lock();
    }
}

// Between steps: drops queued requests whose client went away, then moves
// waiting requests into free slots, oldest first. Called with `lock` held;
// callbacks run without it.
void Scheduler::admit(std::unique_lock<std::mutex>& lock) {
    std::vector<std::unique_ptr<Item>> dropped;
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->ticket->cancelled()) {
            dropped.push_back(std::move(*it));
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    std::vector<Slot*> started;
    while (!queue_.empty()) {
        // The free slot whose timeline shares the longest prefix with the prompt
        // (prefix reuse), else the one unused longest.
        const std::vector<int32_t>& prompt = queue_.front()->request.prompt;
        Slot* best = nullptr;
        size_t best_common = 0;
        for (Slot& s : slots_) {
            if (s.item) continue;
            size_t common = 0;
            if (s.session) {
                const auto& held = s.session->tokens();
                while (common < held.size() && common < prompt.size() &&
                       held[common] == prompt[common])
                    ++common;
            }
            if (!best || common > best_common ||
                (common == best_common && s.last_used < best->last_used)) {
                best = &s;
                best_common = common;
            }
        }
        if (!best) break;
        best->item = std::move(queue_.front());
        queue_.pop_front();
        best->last_used = ++uses_;
        ++active_;
        started.push_back(best);
    }
    lock.unlock();
    for (auto& item : dropped) {
        cancelled_.fetch_add(1);
        end_cancelled(*item);
    }
    for (Slot* s : started) start(*s);
    lock.lock();
}

// Readies a newly admitted request: its session (allocated on first use), the
// common prefix kept from the slot's last request, and its generation state.
void Scheduler::start(Slot& slot) {
    GenerationRequest& req = slot.item->request;
    if (!slot.session) {
        auto s = Session::create(engine_, options_.n_ctx, options_.kv_type);
        if (!s) return finish(slot, s.error());
        slot.session = std::move(*s);
        std::lock_guard lock(mu_);
        kv_bytes_ += slot.session->cache_bytes();
    }
    slot.n_ctx = req.n_ctx > 0 ? std::min(req.n_ctx, slot.session->n_ctx()) : slot.session->n_ctx();
    if (static_cast<int64_t>(req.prompt.size()) > slot.n_ctx) {
        return finish(slot, err("the prompt is {} tokens, longer than the context of {}",
                                req.prompt.size(), slot.n_ctx));
    }
    auto kept = slot.session->keep_prefix(req.prompt);
    if (!kept) return finish(slot, kept.error());
    slot.prompt_done = static_cast<size_t>(*kept);
    slot.next = -1;
    slot.gen = std::make_unique<Generation>(engine_.tokenizer(), req.gen, req.on_piece);
}

void Scheduler::step() {
    for (Slot& s : slots_) {
        if (!s.item || !s.item->ticket->cancelled()) continue;
        s.gen->cancel();
        finish(s, s.gen->result());
    }

    // Decode tokens first, one per generating sequence, so a long prompt never
    // stalls the streams already running; prompts share the rest of the budget.
    std::vector<SeqBatch> batch;
    std::vector<Slot*> in_batch;
    std::vector<int32_t> next(slots_.size());
    int64_t budget = options_.n_batch;
    for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (!s.item || s.next < 0) continue;
        next[i] = s.next;
        batch.push_back(s.session->batch({&next[i], 1}, true));
        in_batch.push_back(&s);
        --budget;
    }
    for (Slot& s : slots_) {
        if (!s.item || s.next >= 0) continue;
        if (budget <= 0 && !batch.empty()) break;
        const std::vector<int32_t>& prompt = s.item->request.prompt;
        const size_t n = std::min(prompt.size() - s.prompt_done,
                                  static_cast<size_t>(std::max<int64_t>(1, budget)));
        const bool last = s.prompt_done + n == prompt.size();
        batch.push_back(s.session->batch(std::span(prompt).subspan(s.prompt_done, n), last));
        in_batch.push_back(&s);
        budget -= static_cast<int64_t>(n);
    }
    if (batch.empty()) return;

    const Status st = engine_.forward_batch(batch);
    {
        std::lock_guard lock(mu_);
        ++steps_;
        sequences_ += batch.size();
        max_batch_ = std::max(max_batch_, static_cast<int>(batch.size()));
    }
    for (size_t i = 0; i < in_batch.size(); ++i) {
        Slot& s = *in_batch[i];
        if (!st) {
            finish(s, st.error());
            continue;
        }
        s.session->advance(batch[i].tokens);
        if (s.next < 0) s.prompt_done += batch[i].tokens.size();
        if (batch[i].logits) sampled(s);
    }
}

// The slot's logits are ready: sample, stream, and either go on or finish.
void Scheduler::sampled(Slot& slot) {
    const auto now = Clock::now();
    const bool first = slot.gen->result().n_generated == 0;
    auto id = slot.gen->next(slot.session->logits(), slot.session->tokens(), slot.n_ctx);
    if (slot.gen->result().n_generated > 0) {
        const std::function<void(double)>& observe =
            first ? options_.on_first_token : options_.on_inter_token;
        const auto since = first ? slot.item->submitted : slot.last_token;
        if (observe) observe(std::chrono::duration<double>(now - since).count());
        slot.last_token = now;
    }
    if (id) {
        slot.next = *id;
        return;
    }
    finish(slot, slot.gen->result());
}

void Scheduler::finish(Slot& slot, Result<GenerateResult> result) {
    if (result) {
        result->n_prompt = static_cast<int64_t>(slot.item->request.prompt.size());
        result->n_reused = slot.session ? slot.session->n_reused() : 0;
        if (result->finish == FinishReason::Cancelled) cancelled_.fetch_add(1);
    }
    std::unique_ptr<Item> item = std::move(slot.item);
    slot.gen.reset();
    slot.next = -1;
    {
        std::lock_guard lock(mu_);
        --active_;
    }
    if (item->request.on_done) item->request.on_done(std::move(result));
}

}  // namespace strata
