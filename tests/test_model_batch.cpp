// `Model::forward_batch`: several sequences in one pass give each sequence the
// logits (and KV cache) it gets when run alone, for every fixture architecture.
// The mix is what the scheduler sends: a whole prompt, the second half of a
// prompt whose first half is cached, and one decode token.

#include "gguf/file.h"
#include "model/model.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace strata {
namespace {

// The token ids of a reference `.logits` file (format in tests/data/README.md).
std::vector<int32_t> reference_tokens(const std::string& path) {
    const auto bytes = test::read_file(path);
    uint32_t n = 0;
    std::memcpy(&n, bytes.data(), 4);
    std::vector<int32_t> tokens(n);
    std::memcpy(tokens.data(), bytes.data() + 8, 4 * size_t{n});
    return tokens;
}

double nmse(std::span<const float> x, std::span<const float> r) {
    double num = 0, den = 0;
    for (size_t i = 0; i < r.size(); ++i) {
        num += (double{x[i]} - r[i]) * (double{x[i]} - r[i]);
        den += double{r[i]} * r[i];
    }
    return num / den;
}

class ModelBatch : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelBatch, SequencesInOneBatchMatchEachAlone) {
    const std::string name = GetParam();
    auto file = gguf::File::open(test::data_path("reference/" + name + ".gguf"));
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto loaded = Model::load(*file);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const Model& model = **loaded;
    const std::vector<int32_t> toks =
        reference_tokens(test::data_path("reference/" + name + ".logits"));
    const auto n = static_cast<int64_t>(toks.size());
    ASSERT_GE(n, 4);
    const int64_t half = n / 2;
    const auto n_vocab = static_cast<size_t>(model.hparams().n_vocab);
    const std::span<const int32_t> all(toks);
    ThreadPool pool(2);
    auto cache = [&] { return model.new_cache(n + 1, KvType::F32); };

    // Alone: A is the whole prompt (all logits), B its second half after the first
    // was cached (all logits), C the last token after the rest was cached.
    auto a1 = cache(), b1 = cache(), c1 = cache();
    std::vector<float> la(n * n_vocab), lb((n - half) * n_vocab), lc(n_vocab), scratch(n * n_vocab);
    ASSERT_TRUE(model.forward(all, 0, *a1, true, la.data(), pool).ok());
    ASSERT_TRUE(model.forward(all.first(half), 0, *b1, false, scratch.data(), pool).ok());
    ASSERT_TRUE(model.forward(all.subspan(half), half, *b1, true, lb.data(), pool).ok());
    ASSERT_TRUE(model.forward(all.first(n - 1), 0, *c1, false, scratch.data(), pool).ok());
    ASSERT_TRUE(model.forward(all.subspan(n - 1), n - 1, *c1, false, lc.data(), pool).ok());

    // Together, with B's and C's prefixes cached the same way first.
    auto a2 = cache(), b2 = cache(), c2 = cache();
    ASSERT_TRUE(model.forward(all.first(half), 0, *b2, false, scratch.data(), pool).ok());
    ASSERT_TRUE(model.forward(all.first(n - 1), 0, *c2, false, scratch.data(), pool).ok());
    std::vector<float> ga(la.size()), gb(lb.size()), gc(lc.size());
    const SeqBatch batch[] = {
        {.tokens = all, .pos0 = 0, .cache = a2.get(), .logits = ga.data(), .all_logits = true},
        {.tokens = all.subspan(half),
         .pos0 = half,
         .cache = b2.get(),
         .logits = gb.data(),
         .all_logits = true},
        {.tokens = all.subspan(n - 1), .pos0 = n - 1, .cache = c2.get(), .logits = gc.data()},
    };
    ASSERT_TRUE(model.forward_batch(batch, pool).ok());
    // 1e-10 relative allows float rounding from a kernel that sums in a different
    // order for a different batch shape; a row taken from the wrong sequence, a
    // wrong position or a KV row stored in the wrong cache moves whole rows of
    // logits and lands many orders of magnitude above it.
    EXPECT_LE(nmse(ga, la), 1e-10) << name;
    EXPECT_LE(nmse(gb, lb), 1e-10) << name;
    EXPECT_LE(nmse(gc, lc), 1e-10) << name;

    // One decode step for all three together reads back what the batch stored in
    // each cache: it equals the same step taken alone.
    const int32_t next = toks[0];
    const std::span<const int32_t> one(&next, 1);
    std::vector<float> da(n_vocab), db(n_vocab), dc(n_vocab), ea(n_vocab), eb(n_vocab), ec(n_vocab);
    ASSERT_TRUE(model.forward(one, n, *a1, false, da.data(), pool).ok());
    ASSERT_TRUE(model.forward(one, n, *b1, false, db.data(), pool).ok());
    ASSERT_TRUE(model.forward(one, n, *c1, false, dc.data(), pool).ok());
    const SeqBatch step[] = {
        {.tokens = one, .pos0 = n, .cache = a2.get(), .logits = ea.data()},
        {.tokens = one, .pos0 = n, .cache = b2.get(), .logits = eb.data()},
        {.tokens = one, .pos0 = n, .cache = c2.get(), .logits = ec.data()},
    };
    ASSERT_TRUE(model.forward_batch(step, pool).ok());
    EXPECT_LE(nmse(ea, da), 1e-10) << name;
    EXPECT_LE(nmse(eb, db), 1e-10) << name;
    EXPECT_LE(nmse(ec, dc), 1e-10) << name;
}

TEST(ModelBatchErrors, NameTheSequence) {
    auto file = gguf::File::open(test::data_path("reference/llama.gguf"));
    ASSERT_TRUE(file.ok());
    auto model = Model::load(*file);
    ASSERT_TRUE(model.ok());
    ThreadPool pool(1);
    auto c1 = (*model)->new_cache(4, KvType::F32), c2 = (*model)->new_cache(4, KvType::F32);
    const int32_t ok[] = {1, 2}, bad[] = {1, -3};
    const SeqBatch oob[] = {{.tokens = ok, .cache = c1.get()}, {.tokens = bad, .cache = c2.get()}};
    auto s = (*model)->forward_batch(oob, pool);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("sequence 1: token id -3"), std::string::npos)
        << s.error().message;
    const SeqBatch shared[] = {{.tokens = ok, .cache = c1.get()},
                               {.tokens = ok, .pos0 = 2, .cache = c1.get()}};
    s = (*model)->forward_batch(shared, pool);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("share one KV cache"), std::string::npos) << s.error().message;
    const SeqBatch full[] = {{.tokens = ok, .pos0 = 3, .cache = c1.get()}};
    EXPECT_FALSE((*model)->forward_batch(full, pool).ok());
}

INSTANTIATE_TEST_SUITE_P(Reference, ModelBatch,
                         ::testing::Values("llama", "mixtral", "qwen2moe", "qwen3moe", "olmoe",
                                           "deepseek", "phimoe", "gpt-oss", "qwen3moe-Q4_K_M",
                                           "gpt-oss-MXFP4_MOE", "mixtral-Q8_0", "deepseek-Q4_0"),
                         [](const auto& info) {
                             std::string n = info.param;
                             for (char& ch : n)
                                 ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                             return n;
                         });

}  // namespace
}  // namespace strata
