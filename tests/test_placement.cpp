// Placement: sizes and tiers from flags, the rules of the memory plan checked
// against byte counts worked out by hand, and the disk tier's expert cache.

#include "placement/expert_cache.h"
#include "placement/plan.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace strata {
namespace {

TEST(ParseSize, ReadsBinaryAndDecimalUnits) {
    EXPECT_EQ(*parse_size("12GiB", "--gpu-mem"), 12ull << 30);
    EXPECT_EQ(*parse_size("3.5GB", "--gpu-mem"), 3'500'000'000ull);
    EXPECT_EQ(*parse_size("800MiB", "--gpu-mem"), 800ull << 20);
    EXPECT_EQ(*parse_size("800 mib", "--gpu-mem"), 800ull << 20);
    EXPECT_EQ(*parse_size("64k", "--gpu-mem"), 64ull << 10);
    EXPECT_EQ(*parse_size("1024", "--gpu-mem"), 1024u);
    EXPECT_EQ(*parse_size("2T", "--gpu-mem"), 2ull << 40);
}

TEST(ParseSize, RejectsBadSizesNamingTheFlag) {
    for (const char* bad : {"", "GiB", "12XB", "-3GiB", "1.2.3GB", "twelve", "1e30TB"}) {
        auto r = parse_size(bad, "--ram-budget");
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.error().message.find("--ram-budget"), std::string::npos) << r.error().message;
    }
}

TEST(ParseTier, KnowsTheThreeTiers) {
    EXPECT_EQ(*parse_tier("gpu"), Tier::Gpu);
    EXPECT_EQ(*parse_tier("CPU"), Tier::Host);
    EXPECT_EQ(*parse_tier("host"), Tier::Host);
    EXPECT_EQ(*parse_tier("disk"), Tier::Disk);
    EXPECT_FALSE(parse_tier("ssd").ok());
}

// Two MoE layers, each with 1000 bytes of attention and three stacked expert
// tensors of 4 experts x 100 bytes; 500 bytes of embeddings, 300 of output.
// Every token reads 500 + 300 + 2 x 1000 = 2800 bytes; the experts are 2 x 3 x
// 400 = 2400 bytes, in 8 units (layer, expert) of 3 x 100 = 300 bytes.
PlanInput toy_model() {
    PlanInput in;
    in.tensors.push_back({"token_embd.weight", "Q8_0", 500, 0});
    in.tensors.push_back({"output.weight", "Q8_0", 300, 0});
    for (int il = 0; il < 2; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        in.tensors.push_back({p + "attn_q.weight", "Q8_0", 1000, 0});
        for (const char* n : {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"})
            in.tensors.push_back({p + n, "Q4_K", 400, 4});
    }
    in.kv_bytes = 200;
    in.scratch_bytes = 100;
    in.n_expert_used = 2;
    return in;
}

MemoryPlan plan(const PlacementOptions& opt) {
    auto p = make_plan(toy_model(), opt);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? *p : MemoryPlan{};
}

TEST(MemoryPlan, WithoutAGpuEverythingIsInHost) {
    const MemoryPlan p = plan({});
    EXPECT_EQ(p.default_tier, Tier::Host);
    EXPECT_EQ(p.weight_bytes(Tier::Host), 5200u);
    EXPECT_EQ(p.total_bytes(Tier::Host), 5500u);  // + KV 200 + scratch 100
    EXPECT_EQ(p.weight_bytes(Tier::Gpu), 0u);
    EXPECT_EQ(p.cache_bytes, 0u);
    EXPECT_TRUE(p.fits());
}

// With a GPU the input embedding (500) stays in host: a pass reads only its rows.
TEST(MemoryPlan, CpuMoeKeepsExpertsOffTheGpu) {
    const MemoryPlan all = plan({.gpu_mem = 1 << 20});
    EXPECT_EQ(all.default_tier, Tier::Gpu);
    EXPECT_EQ(all.total_bytes(Tier::Gpu), 5000u);  // 5200 - 500 + KV 200 + scratch 100
    EXPECT_EQ(all.find("token_embd.weight")->tier, Tier::Host);
    EXPECT_EQ(all.find("token_embd.weight")->rule, "input embedding");

    const MemoryPlan moe = plan({.cpu_moe = true, .gpu_mem = 1 << 20});
    EXPECT_EQ(moe.total_bytes(Tier::Gpu), 2600u);  // 2300 + KV + scratch
    EXPECT_EQ(moe.weight_bytes(Tier::Host), 2900u);
    EXPECT_EQ(moe.find("blk.1.ffn_up_exps.weight")->rule, "--cpu-moe");

    const MemoryPlan first = plan({.n_cpu_moe = 1, .gpu_mem = 1 << 20});
    EXPECT_EQ(first.weight_bytes(Tier::Gpu), 3500u);  // 2300 + layer 1's 1200
    EXPECT_EQ(first.weight_bytes(Tier::Host), 1700u);
    EXPECT_EQ(first.find("blk.0.ffn_down_exps.weight")->tier, Tier::Host);
    EXPECT_EQ(first.find("blk.1.ffn_down_exps.weight")->tier, Tier::Gpu);
}

TEST(MemoryPlan, OverridesComeFirstAndTheFirstMatchWins) {
    const MemoryPlan p = plan({.overrides = {"blk\\.1\\.ffn_up_exps=disk", "blk\\.1=gpu"}, .cpu_moe = true});
    EXPECT_EQ(p.find("blk.1.ffn_up_exps.weight")->tier, Tier::Disk);
    EXPECT_EQ(p.find("blk.1.ffn_up_exps.weight")->rule, "override 'blk\\.1\\.ffn_up_exps'");
    EXPECT_EQ(p.find("blk.1.ffn_gate_exps.weight")->tier, Tier::Gpu);  // the second override beats --cpu-moe
    EXPECT_EQ(p.find("blk.0.ffn_gate_exps.weight")->tier, Tier::Host);
    EXPECT_EQ(p.weight_bytes(Tier::Disk), 400u);
    // No RAM budget: the cache holds n_expert_used (2) experts of the one disk
    // slice per expert (100 bytes) in layer 1.
    EXPECT_EQ(p.cache_bytes, 200u);
}

TEST(MemoryPlan, BadOverridesNameTheFlag) {
    for (const char* bad : {"blk[=host", "exps=ssd", "=host", "no-tier"}) {
        auto p = make_plan(toy_model(), {.overrides = {bad}});
        ASSERT_FALSE(p.ok()) << bad;
        EXPECT_NE(p.error().message.find("--override-tensor"), std::string::npos) << p.error().message;
    }
    EXPECT_FALSE(make_plan(toy_model(), {.n_cpu_moe = -1}).ok());
}

TEST(MemoryPlan, FitFillsTheGpuExpertByExpertInLayerOrder) {
    // 2600 for what every token needs but the embedding, KV and scratch; 350 more
    // holds one 300-byte unit.
    const MemoryPlan p = plan({.fit = true, .gpu_mem = 2950, .margin = 0});
    EXPECT_EQ(p.weight_bytes(Tier::Gpu), 2300u + 300u);
    EXPECT_EQ(p.weight_bytes(Tier::Host), 500u + 2100u);
    for (const char* n : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"}) {
        const TensorPlacement* t = p.find(n);
        EXPECT_EQ(t->experts, (std::vector<Tier>{Tier::Gpu, Tier::Host, Tier::Host, Tier::Host})) << n;
        EXPECT_EQ(t->tier, Tier::Host);  // the slowest expert's
    }
    EXPECT_TRUE(p.fits());
}

TEST(MemoryPlan, FitPrefersTheMostUsedExperts) {
    PlacementOptions opt{.fit = true, .gpu_mem = 3200, .margin = 0};  // room for two units
    opt.usage = {{1, 0, 0, 5}, {0, 0, 9, 0}};
    const MemoryPlan p = plan(opt);
    EXPECT_EQ(p.find("blk.1.ffn_up_exps.weight")->experts,
              (std::vector<Tier>{Tier::Host, Tier::Host, Tier::Gpu, Tier::Host}));
    EXPECT_EQ(p.find("blk.0.ffn_up_exps.weight")->experts,
              (std::vector<Tier>{Tier::Host, Tier::Host, Tier::Host, Tier::Gpu}));
}

TEST(MemoryPlan, FitSpillsToDiskAndGivesTheCacheWhatIsLeft) {
    // Host: 3100 every token needs + 1850. The 2400 of experts do not fit, so the
    // cache is given a token's working set first: 2 experts used x 300 x 2 layers
    // = 1200. The 650 left holds two units (600); the cache gets the 1200 plus
    // the 50 left over: 1250. Six units go to disk.
    const MemoryPlan p = plan({.fit = true, .ram_budget = 4950, .margin = 0});
    EXPECT_EQ(p.weight_bytes(Tier::Host), 2800u + 600u);
    EXPECT_EQ(p.weight_bytes(Tier::Disk), 1800u);
    EXPECT_EQ(p.cache_bytes, 1250u);
    EXPECT_EQ(p.total_bytes(Tier::Host), 4950u);
    EXPECT_EQ(p.find("blk.0.ffn_gate_exps.weight")->experts,
              (std::vector<Tier>{Tier::Host, Tier::Host, Tier::Disk, Tier::Disk}));
    EXPECT_TRUE(p.fits());
}

TEST(MemoryPlan, TheMarginIsKeptFree) {
    // 5% of 10000 is 500: 9500 usable, 3100 of it taken first; 6400 holds all eight units.
    const MemoryPlan p = plan({.fit = true, .ram_budget = 10000});
    EXPECT_EQ(p.margin[static_cast<size_t>(Tier::Host)], 500u);
    EXPECT_EQ(p.weight_bytes(Tier::Disk), 0u);
    EXPECT_EQ(p.cache_bytes, 0u);
    // 4000: 3800 usable, 700 after what every token needs, less than the working
    // set (1200): all of it goes to the cache and every expert to disk.
    const MemoryPlan tight = plan({.fit = true, .ram_budget = 4000});
    EXPECT_EQ(tight.weight_bytes(Tier::Host), 2800u);
    EXPECT_EQ(tight.weight_bytes(Tier::Disk), 2400u);
    EXPECT_EQ(tight.cache_bytes, 700u);
    EXPECT_EQ(tight.total_bytes(Tier::Host), 3800u);
}

TEST(MemoryPlan, AnImpossibleFitFailsWithTheNumbers) {
    auto p = make_plan(toy_model(), {.fit = true, .ram_budget = 3000, .margin = 0});
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.error().message.find("--ram-budget"), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find("3.03 KiB"), std::string::npos) << p.error().message;  // 3100 bytes
    // Room for what every token needs but not for one expert in the cache.
    EXPECT_FALSE(make_plan(toy_model(), {.fit = true, .ram_budget = 3200, .margin = 0}).ok());
}

TEST(MemoryPlan, ABudgetTooSmallWithoutFitIsAProblemNotAnError) {
    const MemoryPlan p = plan({.gpu_mem = 4000, .margin = 0});
    ASSERT_FALSE(p.fits());
    EXPECT_NE(p.problems[0].find("--gpu-mem"), std::string::npos) << p.problems[0];
}

// A file of 1000 bytes read as ten 100-byte slices: slice `key` at offset key * 100.
class ExpertCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = static_cast<uint8_t>(i * 7);
        test::write_file(path_, bytes_);
        fd_ = ::open(path_.c_str(), O_RDONLY);
        ASSERT_GE(fd_, 0);
    }
    void TearDown() override { ::close(fd_); }

    SliceRef ref(uint64_t key) const {
        return SliceRef{.fd = fd_, .offset = key * 100, .n_bytes = 100, .what = &name_, .layer = 0,
                        .expert = static_cast<int>(key)};
    }
    // Gets slice `key` and checks its bytes are the file's.
    void get(ExpertCache& cache, uint64_t key) {
        auto r = cache.get(key, ref(key));
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(std::vector<uint8_t>(r->data, r->data + 100),
                  std::vector<uint8_t>(bytes_.begin() + static_cast<long>(key) * 100,
                                       bytes_.begin() + static_cast<long>(key) * 100 + 100));
    }

    test::TempDir dir_;
    const std::string path_ = dir_.file("slices.bin");
    const std::string name_ = "blk.0.ffn_up_exps.weight";
    std::vector<uint8_t> bytes_ = std::vector<uint8_t>(1000);
    int fd_ = -1;
};

TEST_F(ExpertCacheTest, StaysWithinItsCapacityAndCountsWhatItReads) {
    ExpertCache cache(250, 1, 10);  // two 100-byte slices, not three
    for (uint64_t key : {0, 1, 0, 2, 1, 3, 3}) get(cache, key);
    const ExpertCacheStats s = cache.stats();
    // 0 1 0 2 1 3 3: misses 0, 1, 2 (evicts 1), 1 (evicts 2: 0 was used twice), 3 (evicts 1); hits 0, 3.
    EXPECT_EQ(s.misses, 5u);
    EXPECT_EQ(s.hits, 2u);
    EXPECT_EQ(s.bytes_read, 500u);
    EXPECT_EQ(s.evictions, 3u);
    EXPECT_EQ(s.resident_bytes, 200u);
    EXPECT_LE(s.peak_bytes, 250u);
    // The per-expert figures add up to the totals.
    const auto per = cache.expert_stats();
    ASSERT_EQ(per.size(), 1u);
    EXPECT_EQ(per[0][0].hits, 1u);
    EXPECT_EQ(per[0][1].misses, 2u);
    EXPECT_EQ(per[0][3].bytes_read, 100u);

    // A read past the end of the file (it shrank under us) is an error naming the tensor.
    SliceRef past = ref(9);
    past.offset = 950;
    auto bad = cache.get(9, past);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find(name_), std::string::npos);
}

TEST_F(ExpertCacheTest, KeepsAFrequentlyUsedSliceThatLruWouldEvict) {
    ExpertCache cache(200, 1, 10, 0);
    // LRU would evict 0 (the least recent) for 2, then miss 0 again; frequency with
    // recency keeps 0, used three times, and evicts 1, used once.
    for (uint64_t key : {0, 0, 0, 1, 2, 0}) get(cache, key);
    EXPECT_EQ(cache.stats().misses, 3u);
    EXPECT_EQ(cache.stats().hits, 3u);
}

TEST_F(ExpertCacheTest, PrefetchesReadAheadWithinTheCapacity) {
    ExpertCache cache(300, 1, 10, 2);
    auto running = cache.get(0, ref(0));
    ASSERT_TRUE(running.ok());
    for (uint64_t key : {1, 2, 3}) cache.prefetch(key, ref(key), Prefetch::Ahead);
    // Room for two more slices: 1 and 2 were admitted, 3 was not (0 is in use and
    // 1 and 2 not used yet, so nothing could be evicted for it).
    EXPECT_EQ(cache.stats().prefetches, 2u);
    EXPECT_LE(cache.stats().resident_bytes, 300u);
    running->hold.reset();
    get(cache, 1);
    get(cache, 2);
    // A guess admitted in room freed by used slices, used later.
    cache.prefetch(4, ref(4), Prefetch::Guess);
    get(cache, 4);
    const ExpertCacheStats s = cache.stats();
    EXPECT_EQ(s.misses, 1u);
    EXPECT_EQ(s.hits, 3u);
    EXPECT_EQ(s.prefetch_hits, 3u);
    EXPECT_EQ(s.guesses, 1u);
    EXPECT_EQ(s.guess_hits, 1u);
    EXPECT_EQ(s.bytes_read, 400u);
    EXPECT_LE(s.peak_bytes, 300u);
    EXPECT_EQ(cache.expert_stats()[0][4].prefetch_hits, 1u);

    // A prefetch that cannot read is reported by the get that needs the slice.
    SliceRef past = ref(9);
    past.offset = 950;
    cache.prefetch(9, past, Prefetch::Ahead);
    auto bad = cache.get(9, past);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find(name_), std::string::npos);
}

}  // namespace
}  // namespace strata
