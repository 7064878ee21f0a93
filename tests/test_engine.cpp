// Sessions (prefix reuse, context limits), the sampling chain, and `strata logits`.

#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "ops/cpu/dot.h"
#include "small_synth.h"
#include "tensor/repack.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <vector>

namespace strata {
namespace {

using test::data_path;
using test::TempDir;

std::unique_ptr<Session> session(Engine& e, int64_t n_ctx, KvType type) {
    auto s = Session::create(e, n_ctx, type);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
}

std::unique_ptr<Engine> load(const std::string& name) {
    auto e = Engine::load(data_path("reference/" + name + ".gguf"), {.threads = 2});
    EXPECT_TRUE(e.ok()) << e.error().message;
    return e.ok() ? std::move(*e) : nullptr;
}

TEST(Session, ReusesTheCommonPrefixAndGetsTheSameLogits) {
    auto engine = load("gpt-oss");  // sliding window 8 and sinks: reuse must respect both
    ASSERT_TRUE(engine);
    std::vector<int32_t> a = {5, 17, 33, 101, 7, 9, 250, 11, 12, 13, 14};
    std::vector<int32_t> b = a;
    b.insert(b.end(), {40, 41, 42, 43});

    auto fresh_session = session(*engine, 64, KvType::F32);
    Session& fresh = *fresh_session;
    ASSERT_TRUE(fresh.set_prompt(b).ok());
    const std::vector<float> want(fresh.logits().begin(), fresh.logits().end());

    auto reused_session = session(*engine, 64, KvType::F32);
    Session& reused = *reused_session;
    ASSERT_TRUE(reused.set_prompt(a).ok());
    EXPECT_EQ(reused.n_reused(), 0);
    ASSERT_TRUE(reused.set_prompt(b).ok());
    EXPECT_EQ(reused.n_reused(), static_cast<int64_t>(a.size()));
    // Same math on the same cached keys: equal to float rounding.
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(reused.logits()[i], want[i], 1e-4f * (1 + std::fabs(want[i])));

    // A prompt that diverges early recomputes from the divergence.
    std::vector<int32_t> c = {5, 17, 99};
    ASSERT_TRUE(reused.set_prompt(c).ok());
    EXPECT_EQ(reused.n_reused(), 2);
    EXPECT_EQ(reused.tokens(), c);
    // The same prompt again recomputes only its last token (its logits are needed).
    ASSERT_TRUE(reused.set_prompt(c).ok());
    EXPECT_EQ(reused.n_reused(), 2);
}

// Two engines decode the same five tokens to the same logits, bit for bit, and
// the logits are finite and tell tokens apart (not a degenerate model).
void expect_the_same_logits(Engine& first, Engine& second) {
    auto a = session(first, 64, KvType::F32);
    auto b = session(second, 64, KvType::F32);
    ASSERT_TRUE(a && b);
    for (int32_t t : {5, 17, 33, 101, 7}) {
        ASSERT_TRUE(a->append(t).ok());
        ASSERT_TRUE(b->append(t).ok());
        ASSERT_EQ(std::memcmp(a->logits().data(), b->logits().data(), a->logits().size_bytes()), 0)
            << "after token " << t;
        const auto [lo, hi] = std::minmax_element(a->logits().begin(), a->logits().end());
        ASSERT_TRUE(std::isfinite(*lo) && std::isfinite(*hi));
        EXPECT_GT(*hi - *lo, 1e-3f);
    }
}

// Host-tier weights are copied out of the file's mapping at load unless --mmap
// asks to read them in place: the model must then read the copies (else the
// test would pass without any copy), and the same bytes through the same
// kernels give the same logits to the bit.
// Weights copied into RAM at load (and repacked there where the kernels ask for
// it) give the logits of the mapped file's, to the bit. The MXFP4 and Q4_K_M
// models exercise the repacking on CPUs whose kernel table repacks (AVX-512:
// Q4_K; with VBMI, MXFP4 too).
TEST(Session, CopiedWeightsGiveTheLogitsOfTheMappedOnes) {
    for (const char* model : {"reference/qwen3moe.gguf", "reference/gpt-oss-MXFP4_MOE.gguf",
                              "reference/qwen3moe-Q4_K_M.gguf"}) {
        SCOPED_TRACE(model);
        const std::string path = data_path(model);
        auto copied = Engine::load(path, {.threads = 2});
        auto mapped = Engine::load(path, {.threads = 2, .placement = {.mmap = true}});
        ASSERT_TRUE(copied.ok() && mapped.ok());
        // Three of the views and the file tensors they are bound to.
        auto view = [](const Engine& e, const std::string& name) -> const TensorView& {
            const ModelWeights& w = e.model().weights();
            if (name == "output.weight") return w.output;
            return name.starts_with("blk.0.") ? w.layers[0].wq : w.layers[1].down_exps;
        };
        for (const std::string name :
             {"blk.0.attn_q.weight", "blk.1.ffn_down_exps.weight", "output.weight"}) {
            const gguf::TensorInfo* t = (*copied)->file().find_tensor(name);
            ASSERT_NE(t, nullptr) << name;
            const TensorView& v = view(**copied, name);
            EXPECT_NE(v.data, t->data) << name << " is read from the mapping";
            const auto repacked = ops::dot_kernels().repacked[static_cast<size_t>(t->type)];
            EXPECT_EQ(v.type, repacked.value_or(t->type)) << name;
            if (v.type == t->type) {
                EXPECT_EQ(std::memcmp(v.data, t->data, t->n_bytes), 0) << name;
            } else {  // the same blocks, rearranged row by row
                std::vector<uint8_t> row(v.row_bytes);
                for (int64_t r = 0; r < v.ne[1] * v.ne[2]; ++r) {
                    unpack_row(v.type, v.row(r), row.data(), v.ne[0]);
                    ASSERT_EQ(std::memcmp(row.data(), t->data + r * v.row_bytes, v.row_bytes), 0)
                        << name << " row " << r;
                }
            }
            EXPECT_EQ(view(**mapped, name).data, (*mapped)->file().find_tensor(name)->data) << name;
        }
        expect_the_same_logits(**copied, **mapped);
    }
}

// Every type synth writes, end to end in a small model: the copy in RAM is read in
// the layout the kernel table repacks the type into (Q5_K_64, Q5_0_R8, ...) by
// those layouts' kernels, the mapped file in the GGML layout by the GGML kernels.
// Both sum each row's products in the same order, so the logits must agree to the
// bit; a repacking or kernel bug in any one type shows up here as a difference.
TEST(Session, EveryWritableTypeGivesTheSameLogitsCopiedAndMapped) {
    TempDir dir;
    for (const char* type : {"Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q5_K", "IQ4_NL", "IQ4_XS"}) {
        SCOPED_TRACE(type);
        SynthSpec spec = test::small_synth_spec("qwen3moe");
        spec.matrix_type = spec.expert_type = type;
        auto plan = plan_synth(spec);
        ASSERT_TRUE(plan.ok()) << plan.error().message;
        ASSERT_TRUE(plan->notes.empty()) << plan->notes[0];  // no tensor fell back
        const std::string path = dir.file(std::string(type) + ".gguf");
        ASSERT_TRUE(write_synth(*plan, path, 2).ok());
        auto copied = Engine::load(path, {.threads = 2});
        auto mapped = Engine::load(path, {.threads = 2, .placement = {.mmap = true}});
        ASSERT_TRUE(copied.ok() && mapped.ok());
        const TensorType t = *type_from_name(type);
        const auto repacked = ops::dot_kernels().repacked[static_cast<size_t>(t)];
        EXPECT_EQ((*copied)->model().weights().layers[1].down_exps.type, repacked.value_or(t));
        EXPECT_EQ((*mapped)->model().weights().layers[1].down_exps.type, t);
        expect_the_same_logits(**copied, **mapped);
    }
}

TEST(Session, ExpertUsageCountsEveryRoutingChoice) {
    auto engine = load("qwen3moe");
    ASSERT_TRUE(engine);
    const ExpertUsage& usage = engine->model().expert_usage();
    const HParams& hp = engine->hparams();
    ASSERT_EQ(usage.n_layer(), static_cast<int>(hp.n_layer));
    ASSERT_EQ(usage.n_expert(), static_cast<int>(hp.n_expert));
    auto s = session(*engine, 32, KvType::F32);
    ASSERT_TRUE(s->set_prompt(std::vector<int32_t>{3, 4, 5, 6, 7}).ok());
    ASSERT_TRUE(s->append(8).ok());
    // Six tokens each pick n_expert_used distinct experts in every layer, so each
    // layer's counts sum to 6 * k, and no expert is counted more than once per token.
    for (int il = 0; il < usage.n_layer(); ++il) {
        uint64_t sum = 0;
        for (int e = 0; e < usage.n_expert(); ++e) {
            sum += usage.count(il, e);
            EXPECT_LE(usage.count(il, e), 6u);
        }
        EXPECT_EQ(sum, 6u * hp.n_expert_used) << "layer " << il;
    }
}

TEST(Session, ContextLimitsAndBadTokensAreErrors) {
    auto engine = load("qwen3moe");
    ASSERT_TRUE(engine);
    auto s_session = session(*engine, 4, KvType::F16);
    Session& s = *s_session;
    std::vector<int32_t> long_prompt(5, 3);
    auto st = s.set_prompt(long_prompt);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("longer than the context of 4"), std::string::npos);
    ASSERT_TRUE(s.set_prompt(std::vector<int32_t>{1, 2, 3, 4}).ok());
    st = s.append(5);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("full"), std::string::npos);
    auto t_session = session(*engine, 8, KvType::F16);
    Session& t = *t_session;
    st = t.set_prompt(std::vector<int32_t>{1, 320});
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("token id 320"), std::string::npos);
    EXPECT_FALSE(t.set_prompt(std::vector<int32_t>{}).ok());
}

// A context the machine cannot hold is refused up front, with the size it needs.
TEST(Session, KvCacheTooLargeSaysHowMuchItNeeds) {
    auto engine = load("qwen3moe");
    ASSERT_TRUE(engine);
    // 2 layers x 2 KV heads x (16 + 16) x 4 bytes = 512 bytes per token: 2^40 tokens is 512 TiB.
    auto s = Session::create(*engine, int64_t{1} << 40, KvType::F32);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("512.00 TiB"), std::string::npos) << s.error().message;
}

// An F16 KV cache rounds keys and values to 11 significant bits; logits stay
// within 1e-4 NMSE of the F32 cache (a wrong conversion is off by orders more).
TEST(Session, F16CacheIsCloseToF32) {
    auto engine = load("mixtral");
    ASSERT_TRUE(engine);
    std::vector<int32_t> p = {1, 50, 60, 70, 80, 90, 100, 110};
    auto s32_session = session(*engine, 16, KvType::F32), s16_session = session(*engine, 16, KvType::F16);
    Session &s32 = *s32_session, &s16 = *s16_session;
    ASSERT_TRUE(s32.set_prompt(p).ok());
    ASSERT_TRUE(s16.set_prompt(p).ok());
    double num = 0, den = 0;
    for (size_t i = 0; i < s32.logits().size(); ++i) {
        num += std::pow(s16.logits()[i] - s32.logits()[i], 2);
        den += std::pow(s32.logits()[i], 2);
    }
    EXPECT_LT(num / den, 1e-4);
    EXPECT_GT(num / den, 0.0);  // it did round
}

std::vector<float> ramp(int n) {
    std::vector<float> l(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) l[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i);
    return l;
}

TEST(Sampler, GreedyIsArgmaxAfterBiasAndPenalties) {
    auto logits = ramp(50);  // the largest is the last id, 49
    Sampler greedy({.temperature = 0});
    EXPECT_EQ(greedy.sample(logits, {}), 49);

    logits = ramp(50);
    Sampler banned({.temperature = 0, .logit_bias = {{49, -std::numeric_limits<float>::infinity()}}});
    EXPECT_NE(banned.sample(logits, {}), 49);

    // Token 49 seen three times; a frequency penalty of 1 per occurrence drops it.
    logits = ramp(50);
    const std::vector<int32_t> history = {49, 49, 49};
    Sampler penalised({.temperature = 0, .frequency_penalty = 1.0f});
    EXPECT_NE(penalised.sample(logits, history), 49);
}

// argmax takes the largest value eight lanes at a time and then finds it: the
// first of equal values must win, wherever it is (the eight-wide body or the
// tail of a size that is not a multiple of 8), and NaNs must never win.
TEST(Sampler, ArgmaxIsTheFirstLargestWhereverItIs) {
    const float nan = std::numeric_limits<float>::quiet_NaN(),
                inf = std::numeric_limits<float>::infinity();
    for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{61}, size_t{151936}}) {
        for (size_t at : {size_t{0}, n / 2, n - 1}) {
            std::vector<float> l(n, -1.0f);
            l[at] = 2.0f;
            if (at + 1 < n) l[n - 1] = 2.0f;  // a later equal value
            if (at > 0) l[0] = nan;
            EXPECT_EQ(argmax(l), static_cast<int32_t>(at)) << "n=" << n << " at=" << at;
        }
    }
    EXPECT_EQ(argmax(std::vector<float>{-inf, -inf, -inf}), 0);
    EXPECT_EQ(argmax(std::vector<float>{nan, -inf, nan}), 1);
    EXPECT_EQ(argmax(std::vector<float>{nan, nan}), 0);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> l(1001);
    for (float& x : l) x = normal(rng);
    EXPECT_EQ(argmax(l), std::max_element(l.begin(), l.end()) - l.begin());
}

TEST(Sampler, SameSeedSameDrawsAndTopKOneIsGreedy) {
    auto draw = [](uint64_t seed) {
        Sampler s({.temperature = 1.5f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed});
        std::vector<int32_t> out;
        for (int i = 0; i < 50; ++i) {
            auto l = ramp(50);
            out.push_back(s.sample(l, {}));
        }
        return out;
    };
    EXPECT_EQ(draw(7), draw(7));
    EXPECT_NE(draw(7), draw(8));
    const auto d = draw(7);
    EXPECT_GT(std::set<int32_t>(d.begin(), d.end()).size(), 3u);  // temperature 1.5 spreads the draws

    Sampler top1({.temperature = 5.0f, .top_k = 1, .seed = 3});
    for (int i = 0; i < 20; ++i) {
        auto l = ramp(50);
        EXPECT_EQ(top1.sample(l, {}), 49);
    }
}

// min-p 0.5 keeps only tokens at least half as likely as the best: with logits
// {10, 9.8, 0, ...} that is ids 0 and 1, whatever the temperature.
TEST(Sampler, MinPAndTopPCutTheTail) {
    Sampler s({.temperature = 3.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.5f, .seed = 1});
    for (int i = 0; i < 100; ++i) {
        std::vector<float> l(20, 0.0f);
        l[0] = 10.0f;
        l[1] = 9.8f;
        EXPECT_LT(s.sample(l, {}), 2);
    }
    // top-p 0.5 with p(0) > 0.5 leaves only id 0.
    Sampler p({.temperature = 3.0f, .top_k = 0, .top_p = 0.5f, .min_p = 0.0f, .seed = 1});
    for (int i = 0; i < 50; ++i) {
        std::vector<float> l(20, 0.0f);
        l[0] = 10.0f;
        EXPECT_EQ(p.sample(l, {}), 0);
    }
}

// The sampling chain by brute force, as it was written before `keep_head`:
// every drawable token sorted (largest logit first, ties to the lower id), top-k,
// probabilities at temperature 1 over what top-k kept, top-p's shortest prefix
// reaching p, min-p against the best, then the survivors at the temperature.
std::vector<SampleCandidate> sorted_chain(const std::vector<float>& logits,
                                          const SamplingParams& p) {
    std::vector<std::pair<float, int32_t>> c;
    for (size_t i = 0; i < logits.size(); ++i) {
        if (logits[i] > -std::numeric_limits<float>::infinity())
            c.push_back({logits[i], static_cast<int32_t>(i)});
    }
    std::sort(c.begin(), c.end(), [](auto a, auto b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < c.size())
        c.resize(static_cast<size_t>(p.top_k));
    // In float, with the sum in double, as the chain computes them.
    auto softmax = [&](float t) {
        std::vector<float> e(c.size());
        double sum = 0;
        for (size_t i = 0; i < c.size(); ++i) sum += e[i] = std::exp((c[i].first - c[0].first) / t);
        for (float& x : e) x = static_cast<float>(x / sum);
        return e;
    };
    const std::vector<float> probs = softmax(1.0f);
    size_t keep = c.size();
    float cum = 0;
    for (size_t i = 0; p.top_p < 1.0f && i < c.size(); ++i) {
        cum += probs[i];
        if (cum >= p.top_p) {
            keep = i + 1;
            break;
        }
    }
    size_t kept = 1;
    while (p.min_p > 0.0f && kept < keep && probs[kept] >= probs[0] * p.min_p) ++kept;
    c.resize(p.min_p > 0.0f ? kept : keep);
    const std::vector<float> final_probs = softmax(p.temperature);
    std::vector<SampleCandidate> out;
    for (size_t i = 0; i < c.size(); ++i) out.push_back({c[i].second, c[i].first, final_probs[i]});
    return out;
}

// `sampling_distribution` sorts only the head of a large vocabulary that top-p
// and min-p can keep; whatever the parameters, it must keep exactly the tokens
// the full sort keeps, in the same order, with the same probabilities. Logits
// are normal with sd 3 (a model's spread), with runs of equal values (ties) and
// banned tokens, over a small and a Qwen3-sized vocabulary. The bound: both
// compute each probability with the same float operations; only the order of
// the double sum that normalises them differs, so 1e-5 relative is generous.
TEST(Sampler, DistributionKeepsWhatTheFullSortKeeps) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    int cases = 0;
    for (size_t n : {size_t{60}, size_t{151936}}) {
        std::vector<float> logits(n);
        for (float& l : logits) l = normal(rng);
        for (size_t i = 0; i < n; i += 7) logits[i] = std::round(logits[i] * 4) / 4;  // ties
        for (size_t i = 3; i < n; i += 11) logits[i] = -std::numeric_limits<float>::infinity();
        for (int top_k : {0, 1, 40}) {
            for (float top_p : {1.0f, 0.95f, 0.5f, 0.05f}) {
                for (float min_p : {0.0f, 0.05f, 0.5f}) {
                    const SamplingParams p{
                        .temperature = 0.7f, .top_k = top_k, .top_p = top_p, .min_p = min_p};
                    auto got = sampling_distribution(logits, p);
                    const auto want = sorted_chain(logits, p);
                    const std::string what =
                        fmt::format("n={} top_k={} top_p={} min_p={}", n, top_k, top_p, min_p);
                    ASSERT_EQ(got.size(), want.size()) << what;
                    if (top_k == 0 && top_p == 1.0f && min_p == 0.0f) {  // no cut: any order
                        std::sort(got.begin(), got.end(), [](auto& a, auto& b) {
                            return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
                        });
                    }
                    for (size_t i = 0; i < got.size(); ++i) {
                        ASSERT_EQ(got[i].id, want[i].id) << what << " rank " << i;
                        ASSERT_NEAR(got[i].prob, want[i].prob, 1e-5 * want[i].prob)
                            << what << " rank " << i;
                    }
                    ++cases;
                }
            }
        }
    }
    EXPECT_EQ(cases, 72);
}

TEST(Cli, LogitsWritesTheFixtureFormat) {
    test::TempDir dir;
    const auto ref = test::read_file(data_path("reference/olmoe.logits"));
    uint32_t n = 0, n_vocab = 0;
    std::memcpy(&n, ref.data(), 4);
    std::memcpy(&n_vocab, ref.data() + 4, 4);
    std::string ids;
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t id = 0;
        std::memcpy(&id, ref.data() + 8 + 4 * i, 4);
        ids += (i ? "," : "") + std::to_string(id);
    }
    auto r = test::run_strata("logits " + data_path("reference/olmoe.gguf") + " --tokens " + ids + " --out " +
                              dir.file("l.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto got = test::read_file(dir.file("l.bin"));
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_TRUE(std::equal(ref.begin(), ref.begin() + 8 + 4 * n, got.begin()));  // header and tokens
    double num = 0, den = 0;
    for (size_t i = 8 + 4 * size_t{n}; i < ref.size(); i += 4) {
        float a = 0, b = 0;
        std::memcpy(&a, got.data() + i, 4);
        std::memcpy(&b, ref.data() + i, 4);
        num += (double{a} - b) * (double{a} - b);
        den += double{b} * b;
    }
    EXPECT_LE(num / den, 1e-6);

    r = test::run_strata("logits " + data_path("reference/olmoe.gguf") + " --tokens 1,x --out " + dir.file("m.bin"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("'x'"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
    std::string out;
    for (const auto& p : pieces) out += m.push(p);
    return out + m.flush();
}

TEST(StopMatcher, MatchesAcrossPiecesAndNeverEmitsTheStop) {
    StopMatcher m({"</end>", "STOP"});
    EXPECT_EQ(feed(m, {"Hello <", "/en", "d> ignored"}), "Hello ");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.matched(), "</end>");

    // A false start is released once it can no longer match.
    StopMatcher f({"</end>"});
    std::string out = f.push("a </e");
    EXPECT_EQ(out, "a ");  // "</e" is held
    out += f.push("x>");
    EXPECT_EQ(out, "a </ex>");
    EXPECT_FALSE(f.stopped());

    // The earliest stop wins, and text after a stop is dropped.
    StopMatcher g({"B", "A"});
    EXPECT_EQ(feed(g, {"xxAyyB"}), "xx");
    EXPECT_EQ(g.matched(), "A");

    StopMatcher none({});
    EXPECT_EQ(feed(none, {"a", "b"}), "ab");
}

}  // namespace
}  // namespace strata
