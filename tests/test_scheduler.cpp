// The continuous-batching `Scheduler` on the real stories260K: requests run
// together give each the text it gets alone, queued requests can be cancelled,
// the queue is bounded, and a continued conversation reuses its slot's prefix.

#include "engine/prompt.h"
#include "engine/scheduler.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

namespace strata {
namespace {

std::unique_ptr<Engine> load_stories() {
    auto e = Engine::load(test::data_path("real/stories260K.gguf"), {.threads = 2});
    EXPECT_TRUE(e) << e.error().message;
    return e ? std::move(*e) : nullptr;
}

// A request whose pieces and result land in a future.
struct Pending {
    std::string streamed;
    std::promise<Result<GenerateResult>> done;
};

GenerationRequest request_for(Pending& p, std::vector<int32_t> prompt, GenerateParams gen) {
    return {.prompt = std::move(prompt),
            .gen = std::move(gen),
            .on_piece = [&p](std::string_view piece) { return p.streamed += piece, true; },
            .on_done = [&p](Result<GenerateResult> r) { p.done.set_value(std::move(r)); }};
}

TEST(Scheduler, EightRequestsOnFourSlotsEachMatchTheirRunAlone) {
    auto engine = load_stories();
    ASSERT_TRUE(engine);
    const char* prompts[] = {"Once upon a time",   "The cat", "Lily went to the park", "One day",
                             "Tom had a red ball", "The sun", "A little bird",         "Mom said"};
    std::vector<std::vector<int32_t>> ids;
    std::vector<GenerateParams> params;
    for (int i = 0; i < 8; ++i) {
        ids.push_back(prompt_tokens(*engine, prompts[i], false));
        GenerateParams g;
        g.n_predict = 24 + 4 * i;  // different lengths: requests leave and join at different steps
        g.sampling.temperature = i % 2 ? 0.9f : 0.0f;
        g.sampling.seed = 100 + i;
        params.push_back(g);
    }
    std::vector<std::string> alone;
    for (int i = 0; i < 8; ++i) {
        auto s = Session::create(*engine, 256, KvType::F16);
        ASSERT_TRUE(s);
        auto r = generate(**s, ids[i], params[i], nullptr);
        ASSERT_TRUE(r) << r.error().message;
        alone.push_back(r->text);
    }

    int first_tokens = 0;
    Scheduler sched(*engine,
                    {.n_slots = 4, .max_queue = 8, .n_ctx = 256, .on_first_token = [&](double) {
                         ++first_tokens;
                     }});
    std::vector<Pending> pending(8);
    for (int i = 0; i < 8; ++i)
        ASSERT_TRUE(sched.submit(request_for(pending[i], ids[i], params[i])));
    for (int i = 0; i < 8; ++i) {
        auto r = pending[i].done.get_future().get();
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->text, alone[i]) << prompts[i];
        EXPECT_EQ(pending[i].streamed, r->text);
        EXPECT_EQ(r->n_generated, params[i].n_predict);
        EXPECT_EQ(r->finish, FinishReason::Length);
    }
    EXPECT_EQ(first_tokens, 8);
    const auto st = sched.stats();
    EXPECT_EQ(st.active, 0);
    EXPECT_EQ(st.queued, 0);
    EXPECT_GT(st.kv_bytes, 0u);
    // The requests really shared passes: all four slots ran in one.
    EXPECT_EQ(st.max_batch, 4);
    EXPECT_LT(st.steps, st.sequences);
}

// A request that runs until cancelled holds the only slot.
GenerateParams endless() {
    GenerateParams g;
    g.n_predict = -1;
    g.ignore_eos = true;
    g.sampling.temperature = 0;
    return g;
}

TEST(Scheduler, CancelledRequestsEndQueuedOrRunningAndFreeTheirSlot) {
    auto engine = load_stories();
    ASSERT_TRUE(engine);
    const auto prompt = prompt_tokens(*engine, "Once upon a time", false);
    Scheduler sched(*engine, {.n_slots = 1, .max_queue = 1, .n_ctx = 4096});
    Pending running, queued, refused_probe;
    std::mutex mu;
    std::condition_variable cv;
    int pieces = 0;
    GenerationRequest first = request_for(running, prompt, endless());
    first.on_piece = [&](std::string_view) {
        std::lock_guard lock(mu);
        ++pieces;
        cv.notify_all();
        return true;
    };
    auto t1 = sched.submit(std::move(first));
    ASSERT_TRUE(t1);
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return pieces > 0; });  // it holds the slot now
    }
    auto t2 = sched.submit(request_for(queued, prompt, endless()));
    ASSERT_TRUE(t2);
    // The queue of one is full.
    EXPECT_FALSE(sched.submit(request_for(refused_probe, prompt, endless())));
    EXPECT_EQ(sched.stats().queued, 1);

    (*t2)->cancel();
    auto r2 = queued.done.get_future().get();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->finish, FinishReason::Cancelled);
    EXPECT_EQ(r2->n_generated, 0);
    EXPECT_TRUE(queued.streamed.empty());
    EXPECT_EQ(sched.stats().queued, 0);
    EXPECT_EQ(sched.stats().active, 1);

    (*t1)->cancel();
    auto r1 = running.done.get_future().get();
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->finish, FinishReason::Cancelled);
    EXPECT_EQ(sched.stats().cancelled, 2u);

    // The freed slot serves the next request.
    Pending next;
    GenerateParams g;
    g.n_predict = 3;
    ASSERT_TRUE(sched.submit(request_for(next, prompt, g)));
    auto r3 = next.done.get_future().get();
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->n_generated, 3);
}

TEST(Scheduler, ContinuedConversationReusesItsPrefix) {
    auto engine = load_stories();
    ASSERT_TRUE(engine);
    Scheduler sched(*engine, {.n_slots = 2, .n_ctx = 256});
    GenerateParams g;
    g.n_predict = 8;
    g.sampling.temperature = 0;
    const auto first = prompt_tokens(*engine, "Once upon a time", false);
    Pending a;
    ASSERT_TRUE(sched.submit(request_for(a, first, g)));
    auto ra = a.done.get_future().get();
    ASSERT_TRUE(ra);
    // The next turn starts with everything the first one saw.
    const auto second = prompt_tokens(*engine, "Once upon a time" + ra->text + " The end.", false);
    Pending b;
    ASSERT_TRUE(sched.submit(request_for(b, second, g)));
    auto rb = b.done.get_future().get();
    ASSERT_TRUE(rb);
    EXPECT_GE(rb->n_reused,
              static_cast<int64_t>(first.size()) - 1);  // the boundary token may merge differently
    EXPECT_LT(rb->n_reused, static_cast<int64_t>(second.size()));
}

TEST(Scheduler, PromptLongerThanTheRequestContextIsAnError) {
    auto engine = load_stories();
    ASSERT_TRUE(engine);
    Scheduler sched(*engine, {.n_ctx = 64});
    Pending p;
    GenerationRequest req = request_for(p, std::vector<int32_t>(100, 1), {});
    ASSERT_TRUE(sched.submit(std::move(req)));
    auto r = p.done.get_future().get();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("longer than the context"), std::string::npos)
        << r.error().message;
}

}  // namespace
}  // namespace strata
