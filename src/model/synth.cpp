#include "model/synth.h"

#include "placement/tensor_class.h"
#include "tensor/type.h"
#include "util/check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <vector>

namespace strata {
namespace {

using gguf::MetaValue;

// ---------------------------------------------------------------- presets

struct Dims {
    const char* arch;
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_ff_exp, n_expert, n_expert_used;
    uint32_t n_vocab, n_ctx;
    float rope_base, rms_eps;
};

HParams make_hparams(const Dims& d) {
    HParams hp;
    hp.arch = d.arch;
    hp.n_layer = d.n_layer;
    hp.n_embd = d.n_embd;
    hp.n_head = d.n_head;
    hp.n_head_kv = d.n_head_kv;
    hp.n_embd_head_k = hp.n_embd_head_v = hp.n_rot = d.head_dim;
    hp.n_ff = d.n_ff;
    hp.n_ff_exp = d.n_ff_exp;
    hp.n_expert = d.n_expert;
    hp.n_expert_used = d.n_expert_used;
    hp.n_vocab = d.n_vocab;
    hp.n_ctx_train = d.n_ctx;
    hp.rope_freq_base = d.rope_base;
    hp.norm_rms_eps = hp.norm_eps = d.rms_eps;
    return hp;
}

// Dimensions from each model's released config.json (as its GGUF conversion
// records them). Types follow the common downloads: gpt-oss ships its experts in
// MXFP4 with 8-bit everything else; the others are most often run as 4-bit K-quants.
std::vector<SynthPreset> build_presets() {
    std::vector<SynthPreset> presets;
    auto add = [&](const char* name, const char* description, HParams hp, const char* matrix, const char* expert) {
        SynthSpec spec{.name = name, .hp = std::move(hp), .matrix_type = matrix, .expert_type = expert};
        presets.push_back({name, description, std::move(spec)});
    };

    auto gpt_oss = [](uint32_t n_layer, uint32_t n_expert) {
        HParams hp = make_hparams({"gpt-oss", n_layer, 2880, 64, 8, 64, 2880, 2880, n_expert, 4, 201088, 131072,
                                   150000.0f, 1e-5f});
        hp.n_swa = 128;
        hp.rope_scaling_type = "yarn";
        hp.rope_scaling_factor = 32.0f;
        hp.n_ctx_orig_yarn = 4096;
        return hp;
    };
    add("gpt-oss-20b", "OpenAI gpt-oss-20b: 24 layers, 32 experts (4 active), MXFP4 experts", gpt_oss(24, 32),
        "Q8_0", "MXFP4");
    add("gpt-oss-120b", "OpenAI gpt-oss-120b: 36 layers, 128 experts (4 active), MXFP4 experts",
        gpt_oss(36, 128), "Q8_0", "MXFP4");
    add("qwen3-30b-a3b", "Qwen3-30B-A3B: 48 layers, 128 experts (8 active)",
        make_hparams({"qwen3moe", 48, 2048, 32, 4, 128, 6144, 768, 128, 8, 151936, 40960, 1e6f, 1e-6f}),
        "Q8_0", "Q4_K");
    // Mixtral is a llama with experts; its experts are as wide as the dense FFN.
    add("mixtral-8x7b", "Mixtral 8x7B: 32 layers, 8 experts (2 active)",
        make_hparams({"llama", 32, 4096, 32, 8, 128, 14336, 14336, 8, 2, 32000, 32768, 1e6f, 1e-5f}),
        "Q8_0", "Q4_K");
    HParams deepseek =
        make_hparams({"deepseek", 28, 2048, 16, 16, 128, 10944, 1408, 64, 6, 102400, 4096, 10000.0f, 1e-6f});
    deepseek.n_expert_shared = 2;
    deepseek.n_layer_dense_lead = 1;
    add("deepseek-moe-16b", "DeepSeek-MoE-16B: 28 layers (the first dense), 64 experts (6 active) + 2 shared",
        deepseek, "Q8_0", "Q4_K");
    add("phi-3.5-moe", "Phi-3.5-MoE: 32 layers, 16 experts (2 active), LayerNorm with biases",
        make_hparams({"phimoe", 32, 4096, 32, 8, 128, 6400, 6400, 16, 2, 32064, 131072, 10000.0f, 1e-5f}),
        "Q8_0", "Q4_K");
    add("olmoe-1b-7b", "OLMoE-1B-7B: 16 layers, 64 experts (8 active)",
        make_hparams({"olmoe", 16, 2048, 16, 16, 128, 1024, 1024, 64, 8, 50304, 4096, 10000.0f, 1e-5f}),
        "Q8_0", "Q4_K");
    return presets;
}

// ---------------------------------------------------------------- metadata

void set_hparams(gguf::Writer& w, const HParams& hp) {
    const std::string p = hp.arch + ".";
    auto u32 = [&](const std::string& key, uint32_t v) { w.set(p + key, MetaValue::u32(v)); };
    auto f32 = [&](const std::string& key, float v) { w.set(p + key, MetaValue::f32(v)); };
    u32("context_length", hp.n_ctx_train);
    u32("embedding_length", hp.n_embd);
    u32("block_count", hp.n_layer);
    if (hp.n_ff) u32("feed_forward_length", hp.n_ff);
    u32("attention.head_count", hp.n_head);
    u32("attention.head_count_kv", hp.n_head_kv);
    u32("attention.key_length", hp.n_embd_head_k);
    u32("attention.value_length", hp.n_embd_head_v);
    u32("rope.dimension_count", hp.n_rot);
    f32("rope.freq_base", hp.rope_freq_base);
    // phimoe normalises with LayerNorm, everything else here with RMSNorm.
    if (hp.arch == "phimoe") f32("attention.layer_norm_epsilon", hp.norm_eps);
    else f32("attention.layer_norm_rms_epsilon", hp.norm_rms_eps);
    if (hp.n_swa) u32("attention.sliding_window", hp.n_swa);
    if (!hp.rope_scaling_type.empty()) {
        w.set(p + "rope.scaling.type", MetaValue::string(hp.rope_scaling_type));
        f32("rope.scaling.factor", hp.rope_scaling_factor);
        u32("rope.scaling.original_context_length", hp.n_ctx_orig_yarn);
    }
    if (hp.n_expert) {
        u32("expert_count", hp.n_expert);
        u32("expert_used_count", hp.n_expert_used);
        u32("expert_feed_forward_length", hp.n_ff_exp);
    }
    if (hp.n_expert_shared) u32("expert_shared_count", hp.n_expert_shared);
    if (hp.arch == "qwen2moe") u32("expert_shared_feed_forward_length", hp.n_ff_shexp);
    if (hp.n_layer_dense_lead) u32("leading_dense_block_count", hp.n_layer_dense_lead);
    if (hp.arch == "deepseek") f32("expert_weights_scale", hp.expert_weights_scale);
}

// Token i of the synthetic vocabulary's ordinary pieces: bijective base-26 words,
// with and without the SentencePiece space marker, so every piece is unique.
std::string ordinary_piece(uint64_t k) {
    std::string word;
    for (uint64_t n = k / 2 + 1; n > 0; n = (n - 1) / 26) word.insert(word.begin(), static_cast<char>('a' + (n - 1) % 26));
    return (k % 2 == 0 ? "\xE2\x96\x81" : "") + word;
}

// A SentencePiece-style vocabulary the reference tokenizer accepts: <unk>, <s>,
// </s>, the 256 byte-fallback tokens, ordinary pieces with decreasing scores, and
// the two ChatML control tokens last.
Status set_tokenizer(gguf::Writer& w, uint32_t n_vocab) {
    constexpr uint32_t kFixed = 3 + 256 + 2;
    if (n_vocab < kFixed + 1) return err("vocab size {} is too small: synth needs at least {}", n_vocab, kFixed + 1);
    // Token types as the reference defines them.
    enum : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    tokens.reserve(n_vocab);
    auto push = [&](std::string piece, float score, int32_t type) {
        tokens.push_back(std::move(piece));
        scores.push_back(score);
        types.push_back(type);
    };
    push("<unk>", 0.0f, kUnknown);
    push("<s>", 0.0f, kControl);
    push("</s>", 0.0f, kControl);
    for (int b = 0; b < 256; ++b) push(fmt::format("<0x{:02X}>", b), 0.0f, kByte);
    for (uint64_t k = 0; tokens.size() < n_vocab - 2; ++k) push(ordinary_piece(k), -static_cast<float>(k), kNormal);
    push("<|im_start|>", 0.0f, kControl);
    push("<|im_end|>", 0.0f, kControl);

    w.set("tokenizer.ggml.model", MetaValue::string("llama"));
    w.set("tokenizer.ggml.tokens", MetaValue::strings(tokens));
    w.set("tokenizer.ggml.scores", MetaValue::f32s(scores));
    w.set("tokenizer.ggml.token_type", MetaValue::i32s(types));
    w.set("tokenizer.ggml.bos_token_id", MetaValue::u32(1));
    w.set("tokenizer.ggml.eos_token_id", MetaValue::u32(2));
    w.set("tokenizer.ggml.unknown_token_id", MetaValue::u32(0));
    w.set("tokenizer.ggml.eot_token_id", MetaValue::u32(n_vocab - 1));
    w.set("tokenizer.ggml.add_bos_token", MetaValue::boolean(true));
    w.set("tokenizer.ggml.add_eos_token", MetaValue::boolean(false));
    w.set("tokenizer.chat_template",
          MetaValue::string("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                            "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt "
                            "%}{{ '<|im_start|>assistant\\n' }}{% endif %}"));
    return {};
}

// general.file_type as the reference names whole-file quantisation mixes; the
// expert type decides it because experts are most of the bytes.
uint32_t file_type_of(TensorType expert_type) {
    switch (expert_type) {
        case TensorType::F32: return 0;
        case TensorType::F16: return 1;
        case TensorType::Q4_0: return 2;
        case TensorType::Q4_1:
            return 3;
        case TensorType::Q8_0: return 7;
        case TensorType::Q5_0:
            return 8;
        case TensorType::Q5_1:
            return 9;
        case TensorType::Q2_K:
            return 10;
        case TensorType::Q3_K:
            return 11;  // the _S mixes: one type throughout
        case TensorType::Q4_K:
            return 14;
        case TensorType::Q5_K:
            return 16;
        case TensorType::Q6_K: return 18;
        case TensorType::IQ4_NL:
            return 25;
        case TensorType::IQ4_XS:
            return 30;
        case TensorType::BF16: return 32;
        case TensorType::MXFP4: return 38;  // MXFP4_MOE
        default: return 0;
    }
}

// ---------------------------------------------------------------- types

bool fits(TensorType t, uint64_t ne0) { return ne0 % static_cast<uint64_t>(type_traits(t).block_size) == 0; }

// The type a tensor with rows of `ne0` elements gets when `wanted` does not divide
// them. As the reference quantiser does, 256-element types step down to a 32-element
// one of at least their bits (Q2_K, Q3_K and IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K ->
// Q5_1, Q6_K -> Q8_0), and a row that is not even a multiple of 32 is stored as F16.
TensorType fallback_type(TensorType wanted, uint64_t ne0) {
    if (fits(wanted, ne0)) return wanted;
    TensorType t = TensorType::Q4_0;
    switch (wanted) {
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::IQ4_XS:
            t = TensorType::IQ4_NL;
            break;
        case TensorType::Q4_K:
            t = TensorType::Q5_0;
            break;
        case TensorType::Q5_K:
            t = TensorType::Q5_1;
            break;
        case TensorType::Q6_K:
            t = TensorType::Q8_0;
            break;
        default:
            break;
    }
    return fits(t, ne0) ? t : TensorType::F16;
}

// "blk.17.ffn_down_exps.weight" -> "blk.*.ffn_down_exps.weight", so a note about a
// type change is made once, not once per layer.
std::string name_pattern(const std::string& name) {
    static const std::regex layer_number(R"(^blk\.\d+\.)");
    return std::regex_replace(name, layer_number, "blk.*.");
}

// ---------------------------------------------------------------- weights

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A standard normal sample (Box-Muller), portable so a seed gives the same file
// everywhere, unlike std::normal_distribution whose algorithm is unspecified.
float gaussian(uint64_t& state) {
    const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1p-53;
    const double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

// Weights are written by copying randomly chosen encoded units (a block, or 32
// floats) from a pool encoded once per type and value distribution. Encoding
// every block of a 12 GB file would take minutes; copying makes generation as
// fast as the disk, and the values still have the statistics of real weights.
constexpr int kPoolBits = 12;
constexpr uint64_t kPoolUnits = uint64_t{1} << kPoolBits;

struct Pool {
    uint64_t unit_elements = 0;
    uint64_t unit_bytes = 0;
    std::vector<uint8_t> data;  // kPoolUnits units
};

// Norm weights sit around 1, biases and sinks around 0, matrices have the spread
// of an initialised layer (standard deviation 0.02).
void role_distribution(TensorRole role, float& mean, float& stddev) {
    mean = role == TensorRole::Scale ? 1.0f : 0.0f;
    stddev = role == TensorRole::Scale ? 0.05f : 0.02f;
}

std::unique_ptr<Pool> make_pool(TensorType type, uint64_t unit_elements, TensorRole role, uint64_t seed) {
    auto pool = std::make_unique<Pool>();
    const TypeTraits& traits = type_traits(type);
    pool->unit_elements = unit_elements;
    pool->unit_bytes = *type_bytes(type, unit_elements);
    std::vector<float> values(kPoolUnits * unit_elements);
    float mean = 0, stddev = 0;
    role_distribution(role, mean, stddev);
    uint64_t state = seed ^ (static_cast<uint64_t>(type) << 32) ^ (static_cast<uint64_t>(role) << 48);
    for (float& v : values) v = mean + stddev * gaussian(state);
    pool->data.resize(kPoolUnits * pool->unit_bytes);
    traits.quantize(values.data(), pool->data.data(), static_cast<int64_t>(values.size()));
    return pool;
}

// The pool unit for a row: a whole block for block types; 32 floats for plain
// float types when the row allows it (fewer copies), else a single element.
uint64_t unit_elements_for(TensorType type, uint64_t ne0) {
    const auto block = static_cast<uint64_t>(type_traits(type).block_size);
    if (block > 1) return block;
    return ne0 % 32 == 0 ? 32 : 1;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
    static const std::vector<SynthPreset> presets = build_presets();
    return presets;
}

const SynthPreset* find_synth_preset(const std::string& name) {
    for (const SynthPreset& p : synth_presets()) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

namespace {

Result<TensorType> writable_type(const std::string& name, const char* flag) {
    const auto t = type_from_name(name);
    if (!t || !type_traits(*t).quantize) {
        std::vector<std::string> writable;
        for (uint32_t id = 0; id < kTypeIdCount; ++id) {
            const TypeTraits* tt = type_traits(id);
            if (tt && tt->quantize) writable.push_back(tt->name);
        }
        return err("{} '{}': synth writes {}", flag, name, fmt::join(writable, ", "));
    }
    return *t;
}

}  // namespace

Result<SynthPlan> plan_synth(const SynthSpec& spec) {
    auto matrix_type = writable_type(spec.matrix_type, "matrix type");
    if (!matrix_type) return matrix_type.error();
    auto expert_type = writable_type(spec.expert_type, "expert type");
    if (!expert_type) return expert_type.error();
    auto layout = tensor_layout(spec.hp);
    if (!layout) return layout.error();

    SynthPlan plan;
    plan.seed = spec.seed;
    gguf::Writer& w = plan.writer;
    w.set("general.architecture", MetaValue::string(spec.hp.arch));
    w.set("general.name", MetaValue::string(spec.name.empty() ? "synth-" + spec.hp.arch : spec.name));
    w.set("general.description",
          MetaValue::string(fmt::format("random weights written by strata synth, seed {}", spec.seed)));
    w.set("general.file_type", MetaValue::u32(file_type_of(*expert_type)));
    w.set("general.quantization_version", MetaValue::u32(2));
    w.set("general.alignment", MetaValue::u32(32));
    set_hparams(w, spec.hp);
    STRATA_TRY(set_tokenizer(w, spec.hp.n_vocab));

    std::set<std::string> noted;
    for (TensorDesc& d : *layout) {
        TensorType wanted = TensorType::F32;
        if (d.role == TensorRole::Matrix) wanted = is_routed_expert(d.name) ? *expert_type : *matrix_type;
        const TensorType type = fallback_type(wanted, d.ne[0]);
        if (type != wanted && noted.insert(name_pattern(d.name)).second) {
            plan.notes.push_back(fmt::format("{}: {} rows are {} wide, not a multiple of {}; written as {}",
                                             name_pattern(d.name), type_name(wanted), d.ne[0],
                                             type_traits(wanted).block_size, type_name(type)));
        }
        plan.roles.push_back(d.role);
        w.add_tensor({.name = std::move(d.name), .type = type, .ne = std::move(d.ne)});
    }
    return plan;
}

Status write_synth(const SynthPlan& plan, const std::string& path, int n_threads) {
    const auto& tensors = plan.writer.tensors();
    CHECK(tensors.size() == plan.roles.size(), "synth plan has a role per tensor");

    // One pool per (type, unit, role); built before the threads start so they only read.
    std::map<std::tuple<TensorType, uint64_t, TensorRole>, std::unique_ptr<Pool>> pools;
    std::vector<const Pool*> pool_of(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto key = std::make_tuple(tensors[i].type, unit_elements_for(tensors[i].type, tensors[i].ne[0]),
                                         plan.roles[i]);
        auto& pool = pools[key];
        if (!pool) pool = make_pool(std::get<0>(key), std::get<1>(key), std::get<2>(key), plan.seed);
        pool_of[i] = pool.get();
    }

    // Each row's units come from a generator seeded by (seed, tensor, row), so the
    // file does not depend on how rows are split among threads.
    auto fill = [&](const gguf::TensorSpec& t, size_t index, uint64_t row_begin, uint64_t row_end, uint8_t* dst) {
        const Pool& pool = *pool_of[index];
        const uint64_t units = t.ne[0] / pool.unit_elements;
        for (uint64_t row = row_begin; row < row_end; ++row) {
            uint64_t state = plan.seed ^ (index * 0xD1B54A32D192ED03ull) ^ (row * 0x8CB92BA72F3D8DD7ull);
            uint64_t bits = 0;
            int left = 0;
            for (uint64_t u = 0; u < units; ++u) {
                if (left == 0) {
                    bits = splitmix64(state);
                    left = 64 / kPoolBits;
                }
                const uint64_t pick = bits & (kPoolUnits - 1);
                bits >>= kPoolBits;
                --left;
                std::memcpy(dst, pool.data.data() + pick * pool.unit_bytes, pool.unit_bytes);
                dst += pool.unit_bytes;
            }
        }
    };
    return plan.writer.write(path, fill, n_threads);
}

}  // namespace strata
