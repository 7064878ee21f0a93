// Model discovery over fake trees of real synth GGUFs: a Hugging Face snapshot
// symlinked into blobs, an Ollama manifest naming a blob, LM Studio folders,
// duplicates, a dangling symlink and a non-GGUF `.gguf`; and `strata list`.

#include "app/server/discovery.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

namespace strata {
namespace {

namespace fs = std::filesystem;
using app::server::discover_models;
using app::server::DiscoveryRoots;
using app::server::model_stem;

const std::string kDigest(64, 'a');

class Discovery : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        synth_ = new test::TempDir();
        auto r = test::run_strata("synth --arch qwen3moe --out " + synth_->file("syn.gguf"));
        ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    static void TearDownTestSuite() { delete synth_; }

    fs::path put(const fs::path& rel) {
        const fs::path p = dir_.path() / rel;
        fs::create_directories(p.parent_path());
        fs::copy_file(synth_->file("syn.gguf"), p);
        return p;
    }
    void link(const fs::path& target, const fs::path& rel) {
        const fs::path p = dir_.path() / rel;
        fs::create_directories(p.parent_path());
        fs::create_symlink(target, p);
    }
    void text(const fs::path& rel, const std::string& s) {
        const fs::path p = dir_.path() / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << s;
    }
    // A tree with one model in each kind of store.
    DiscoveryRoots build_tree() {
        put("dir/alpha.gguf");
        text("dir/broken.gguf", "not a gguf");
        link(dir_.path() / "nowhere.gguf", "dir/dangling.gguf");
        link(dir_.path() / "dir/alpha.gguf", "dir/alpha-again.gguf");  // same real file
        put("dir/sub/beta.gguf");
        put("hf/models--acme--Tiny-GGUF/blobs/0123abcd");
        text("hf/models--acme--Tiny-GGUF/refs/main", "rev1");
        link("../../blobs/0123abcd", "hf/models--acme--Tiny-GGUF/snapshots/rev1/tiny-Q8_0.gguf");
        put("ollama/blobs/sha256-" + kDigest);
        const std::string manifest =
            R"({"layers":[{"mediaType":"application/vnd.ollama.image.license",
            "digest":"sha256:)" +
            std::string(64, 'b') + R"("},{"mediaType":"application/vnd.ollama.image.model",
            "digest":"sha256:)" +
            kDigest + R"("}]})";
        text("ollama/manifests/registry.ollama.ai/library/syn/latest", manifest);
        text("ollama/manifests/registry.ollama.ai/someone/syn/q8",
             manifest);  // same blob: listed once
        text("ollama/manifests/registry.ollama.ai/library/bad/latest", "{");
        put("lms/pub/repo/gamma.gguf");
        return {.model_dirs = {(dir_.path() / "dir").string()},
                .hf_hub = (dir_.path() / "hf").string(),
                .ollama = (dir_.path() / "ollama").string(),
                .lmstudio = {(dir_.path() / "lms").string()}};
    }

    static test::TempDir* synth_;
    test::TempDir dir_;
};
test::TempDir* Discovery::synth_ = nullptr;

TEST(DiscoveryNames, SplitSetsAreOneModelNamedByTheFirstPart) {
    EXPECT_EQ(model_stem("model.gguf"), "model");
    EXPECT_EQ(model_stem("Qwen3-30B-Q4_K_M-00001-of-00003.gguf"), "Qwen3-30B-Q4_K_M");
    EXPECT_EQ(model_stem("Qwen3-30B-Q4_K_M-00002-of-00003.gguf"), std::nullopt);
    EXPECT_EQ(model_stem("x-1-of-2.gguf"), "x-1-of-2");  // not the five-digit pattern
}

TEST(DiscoveryNames, RootsFollowTheEnvironment) {
    std::map<std::string, std::string> env = {
        {"HOME", "/h"}, {"HF_HOME", "/hf"}, {"STRATA_MODELS", "/a::/b"}};
    auto get = [&](const char* k) -> const char* {
        auto it = env.find(k);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    auto r = app::server::default_roots({"d"}, true, get);
    EXPECT_EQ(r.model_dirs, std::vector<std::string>{"d"});
    EXPECT_EQ(r.plain_dirs, (std::vector<std::string>{"models", "/a", "/b"}));
    EXPECT_EQ(r.hf_hub, "/hf/hub");
    EXPECT_EQ(r.ollama, "/h/.ollama/models");
    EXPECT_EQ(r.lmstudio,
              (std::vector<std::string>{"/h/.lmstudio/models", "/h/.cache/lm-studio/models"}));
    env["HF_HUB_CACHE"] = "/cache";
    env["OLLAMA_MODELS"] = "/o";
    r = app::server::default_roots({}, true, get);
    EXPECT_EQ(r.hf_hub, "/cache");
    EXPECT_EQ(r.ollama, "/o");
    r = app::server::default_roots({"d"}, false, get);
    EXPECT_TRUE(r.plain_dirs.empty());
    EXPECT_TRUE(r.hf_hub.empty() && r.ollama.empty() && r.lmstudio.empty());
}

TEST_F(Discovery, FindsEveryStoreOnceWithReadableNames) {
    auto found = discover_models(build_tree());
    ASSERT_TRUE(found) << found.error().message;
    std::map<std::string, std::string> by_name;
    for (const auto& m : found->models) by_name[m.name] = m.path;
    EXPECT_EQ(by_name.size(), found->models.size());
    // broken.gguf is found here and rejected by the registry; alpha-again and
    // someone/syn:q8 are the same real files as alpha and syn.
    const std::vector<std::string> want = {"acme/Tiny-GGUF/tiny-Q8_0", "alpha",    "broken",
                                           "pub/repo/gamma",           "sub/beta", "syn"};
    std::vector<std::string> got;
    for (const auto& [name, path] : by_name) got.push_back(name);
    EXPECT_EQ(got, want);
    // The snapshot path is kept (not the blob), so split siblings would resolve.
    EXPECT_NE(by_name["acme/Tiny-GGUF/tiny-Q8_0"].find("snapshots/rev1"), std::string::npos);
    EXPECT_NE(by_name["syn"].find("sha256-" + kDigest), std::string::npos);
    std::string warnings;
    for (const auto& w : found->warnings) warnings += w + "\n";
    EXPECT_NE(warnings.find("dangling.gguf"), std::string::npos) << warnings;
    EXPECT_NE(warnings.find("bad/latest"), std::string::npos) << warnings;
}

TEST_F(Discovery, RegistrySkipsUnreadableFilesAndAcceptsLatestTag) {
    app::server::ModelRegistry registry(app::server::RegistryOptions{});
    ASSERT_TRUE(app::server::register_models(registry, {(dir_.path() / "dir/alpha.gguf").string()},
                                             build_tree()));
    EXPECT_EQ(registry.list().size(), 5u);  // broken.gguf skipped, alpha once
    EXPECT_EQ(registry.find("broken"), nullptr);
    ASSERT_NE(registry.find("syn:latest"), nullptr);
    EXPECT_EQ(registry.find("syn:latest")->arch, "qwen3moe");
    EXPECT_FALSE(registry.find("syn")->quant.empty());
}

TEST_F(Discovery, MissingExplicitDirIsAnErrorOddTreesAreNot) {
    EXPECT_FALSE(discover_models({.model_dirs = {(dir_.path() / "missing").string()}}));
    text("deep/a/b/c/d/e/f/g/h/deep.gguf", "x");
    auto found = discover_models({.plain_dirs = {(dir_.path() / "deep").string(), "/nonexistent"},
                                  .hf_hub = (dir_.path() / "nohf").string(),
                                  .ollama = (dir_.path() / "noollama").string()});
    ASSERT_TRUE(found);
    EXPECT_TRUE(found->models.empty());  // deeper than the walk goes
}

TEST_F(Discovery, ListCommandPrintsJson) {
    build_tree();
    auto r = test::run_strata(
        "list --no-discover --json --model-dir " + (dir_.path() / "dir").string(), true);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u) << r.out;
    EXPECT_EQ(j[0]["name"], "alpha");
    EXPECT_EQ(j[0]["architecture"], "qwen3moe");
    EXPECT_GT(j[0]["size"].get<uint64_t>(), 0u);
    EXPECT_FALSE(j[0]["quantization"].get<std::string>().empty());
    EXPECT_EQ(j[1]["name"], "sub/beta");
    auto t = test::run_strata("list --no-discover --model-dir " + (dir_.path() / "dir").string());
    EXPECT_EQ(t.exit_code, 0);
    EXPECT_NE(t.out.find("warning: skipping"), std::string::npos) << t.out;  // broken.gguf named
    EXPECT_NE(t.out.find("broken.gguf"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("NAME"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace strata
