// The GPU tier's forward pass (model/device_model.cpp), run with the CPU
// backend standing in for the device: its kernels are the plain pass's, so any
// difference in the logits is a mistake in how the device pass strings the ops
// together (a wrong offset, a missing bias, a KV row in the wrong place, experts
// summed in the wrong order). Where a CUDA device exists, the same pass runs on
// it against the CPU with the fixtures' tolerance; elsewhere that test says
// plainly that it was skipped and why.

#include "model/device_model.h"
#include "model/memory.h"
#include "ops/backend.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace strata {
namespace {

std::string tiny_moe() {
    return test::data_path("../../models/strata-tiny-moe.gguf");
}

struct Loaded {
    gguf::File file;
    std::unique_ptr<Model> model;
};

Loaded load(const std::string& path) {
    auto f = gguf::File::open(path);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    Loaded l{std::move(*f), nullptr};
    auto m = Model::load(l.file);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
    l.model = std::move(*m);
    return l;
}

MemoryPlan plan_for(const Loaded& l, PlacementOptions opt) {
    opt.has_gpu = true;
    auto p = plan_memory(l.file, opt, MemoryRequest{.n_ctx = 64});
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    return *p;
}

// Logits of every position of `prompt`, then of two decode steps, through the
// plain CPU pass or the device pass.
std::vector<float> run(const Loaded& l, DeviceModel* dm, ThreadPool& pool,
                       const std::vector<int32_t>& prompt) {
    const int64_t n_vocab = l.model->hparams().n_vocab;
    auto cache = l.model->new_cache(64, KvType::F16);
    std::vector<float> out(static_cast<size_t>(n_vocab) * (prompt.size() + 2));
    auto pass = [&](std::span<const int32_t> toks, int64_t pos0, bool all, float* logits) {
        const SeqBatch b{.tokens = toks,
                         .pos0 = pos0,
                         .cache = cache.get(),
                         .logits = logits,
                         .all_logits = all};
        const Status st = dm ? dm->forward_batch({&b, 1}) : l.model->forward_batch({&b, 1}, pool);
        EXPECT_TRUE(st.ok()) << st.error().message;
    };
    pass(prompt, 0, true, out.data());
    const int32_t next[2] = {7, 11};
    for (int i = 0; i < 2; ++i) {
        pass({&next[i], 1}, static_cast<int64_t>(prompt.size()) + i, false,
             out.data() + (prompt.size() + i) * static_cast<size_t>(n_vocab));
    }
    return out;
}

const std::vector<int32_t> kPrompt = {1, 42, 17, 300, 5, 99, 64, 2};

// Every architecture the engine runs, so each one's extras (biases, sinks,
// QK-norms, shared experts and their gate, LayerNorm, quantised experts) take the
// device path; plus the trained built-in model and a dense llama.
TEST(DeviceModel, CpuBackendGivesThePlainPassesLogitsBitForBit) {
    std::vector<std::string> paths = {tiny_moe(), test::stories()};
    for (const char* name :
         {"llama", "mixtral", "qwen2moe", "qwen3moe", "olmoe", "deepseek", "phimoe", "gpt-oss",
          "qwen3moe-Q4_K_M", "gpt-oss-MXFP4_MOE", "mixtral-Q8_0", "deepseek-Q4_0"}) {
        paths.push_back(test::data_path(std::string("reference/") + name + ".gguf"));
    }
    for (const std::string& path : paths) {
        SCOPED_TRACE(path);
        Loaded l = load(path);
        ThreadPool pool(2);
        auto backend = ops::make_cpu_backend(pool);
        const MemoryPlan plan = plan_for(l, {});
        auto dm = DeviceModel::create(*l.model, plan, *backend, pool);
        ASSERT_TRUE(dm.ok()) << dm.error().message;
        EXPECT_GT((*dm)->weight_bytes(), 0u);
        const std::vector<float> want = run(l, nullptr, pool, kPrompt);
        const std::vector<float> got = run(l, dm->get(), pool, kPrompt);
        ASSERT_EQ(want.size(), got.size());
        size_t first_diff = want.size();
        for (size_t i = 0; i < want.size() && first_diff == want.size(); ++i) {
            if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0) first_diff = i;
        }
        EXPECT_EQ(first_diff, want.size())
            << "logit " << first_diff << ": " << want[first_diff % want.size()] << " vs "
            << got[first_diff % want.size()];
    }
}

TEST(DeviceModel, ExpertsKeptOnTheHostGiveTheSameLogitsUpToSummationOrder) {
    Loaded l = load(tiny_moe());
    ThreadPool pool(2);
    auto backend = ops::make_cpu_backend(pool);
    PlacementOptions opt;
    opt.n_cpu_moe = 2;  // the first two layers' experts on the host, the others on the "device"
    const MemoryPlan plan = plan_for(l, opt);
    auto dm = DeviceModel::create(*l.model, plan, *backend, pool);
    ASSERT_TRUE(dm.ok()) << dm.error().message;

    l.model->expert_usage().reset();
    const std::vector<float> want = run(l, nullptr, pool, kPrompt);
    const auto usage_cpu = l.model->expert_usage().snapshot();
    l.model->expert_usage().reset();
    const std::vector<float> got = run(l, dm->get(), pool, kPrompt);
    const auto usage_dev = l.model->expert_usage().snapshot();

    // The host's experts are summed apart from the device's and then added, so
    // float rounding differs in the last bits of each output: a relative error of
    // a few ulps per layer, far below 1e-4 of the logits' scale. A wrong expert,
    // weight or row would move logits by whole units.
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        scale = std::max(scale, std::abs(double{want[i]}));
        worst = std::max(worst, std::abs(double{want[i]} - got[i]));
    }
    EXPECT_LT(worst, 1e-4 * scale) << "scale " << scale;
    // Every routing choice is counted once, wherever the expert ran.
    EXPECT_EQ(usage_cpu, usage_dev);
}

TEST(DeviceModel, TwoSequencesInOneBatchMatchTheirPlainPasses) {
    Loaded l = load(tiny_moe());
    ThreadPool pool(2);
    auto backend = ops::make_cpu_backend(pool);
    auto dm = DeviceModel::create(*l.model, plan_for(l, {}), *backend, pool);
    ASSERT_TRUE(dm.ok()) << dm.error().message;
    const int64_t n_vocab = l.model->hparams().n_vocab;
    const std::vector<int32_t> a = {3, 4, 5}, b = {9, 8, 7, 6, 5};
    std::vector<float> want_a(static_cast<size_t>(n_vocab)), want_b(want_a.size()),
        got_a(want_a.size()), got_b(want_a.size());
    {
        auto ca = l.model->new_cache(16, KvType::F16), cb = l.model->new_cache(16, KvType::F16);
        ASSERT_TRUE(l.model->forward(a, 0, *ca, false, want_a.data(), pool).ok());
        ASSERT_TRUE(l.model->forward(b, 0, *cb, false, want_b.data(), pool).ok());
    }
    auto ca = l.model->new_cache(16, KvType::F16), cb = l.model->new_cache(16, KvType::F16);
    const SeqBatch seqs[2] = {{.tokens = a, .pos0 = 0, .cache = ca.get(), .logits = got_a.data()},
                              {.tokens = b, .pos0 = 0, .cache = cb.get(), .logits = got_b.data()}};
    ASSERT_TRUE((*dm)->forward_batch(seqs).ok());
    EXPECT_EQ(want_a, got_a);
    EXPECT_EQ(want_b, got_b);
}

TEST(DeviceModel, AnAttentionTensorOffTheGpuIsNamed) {
    Loaded l = load(tiny_moe());
    ThreadPool pool(1);
    auto backend = ops::make_cpu_backend(pool);
    PlacementOptions opt;
    opt.overrides = {"blk\\.1\\.attn_q\\.weight=host"};
    auto dm = DeviceModel::create(*l.model, plan_for(l, opt), *backend, pool);
    ASSERT_FALSE(dm.ok());
    EXPECT_NE(dm.error().message.find("blk.1.attn_q.weight"), std::string::npos)
        << dm.error().message;
}

TEST(DeviceModel, BadBatchesAreRefusedAsByThePlainPass) {
    Loaded l = load(tiny_moe());
    ThreadPool pool(1);
    auto backend = ops::make_cpu_backend(pool);
    auto dm = DeviceModel::create(*l.model, plan_for(l, {}), *backend, pool);
    ASSERT_TRUE(dm.ok());
    auto cache = l.model->new_cache(4, KvType::F16);
    const std::vector<int32_t> too_long = {1, 2, 3, 4, 5}, bad_id = {1, 1 << 30};
    const SeqBatch over{.tokens = too_long, .pos0 = 0, .cache = cache.get()};
    EXPECT_NE((*dm)->forward_batch({&over, 1}).error().message.find("do not fit the context"),
              std::string::npos);
    const SeqBatch bad{.tokens = bad_id, .pos0 = 0, .cache = cache.get()};
    EXPECT_NE((*dm)->forward_batch({&bad, 1}).error().message.find("outside the vocabulary"),
              std::string::npos);
}

// The CUDA backend against the CPU's plain pass. The GPU multiplies with float
// activations where the CPU quantises them to 8 bits, so the logits differ by
// that rounding: the fixtures' bound (NMSE below 1e-3) is the tolerance.
TEST(DeviceModel, CudaBackendMatchesTheCpuWithinTheFixtureBound) {
    if (ops::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: " << ops::cuda_status();
    Loaded l = load(tiny_moe());
    ThreadPool pool(2);
    auto backend = ops::make_cuda_backend(0);
    ASSERT_NE(backend, nullptr);
    auto dm = DeviceModel::create(*l.model, plan_for(l, {}), *backend, pool);
    ASSERT_TRUE(dm.ok()) << dm.error().message;
    const std::vector<float> want = run(l, nullptr, pool, kPrompt);
    const std::vector<float> got = run(l, dm->get(), pool, kPrompt);
    double err = 0, ref = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        err += (double{want[i]} - got[i]) * (double{want[i]} - got[i]);
        ref += double{want[i]} * want[i];
    }
    EXPECT_LT(err / ref, 1e-3);
}

}  // namespace
}  // namespace strata
