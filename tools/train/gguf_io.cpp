#include "gguf_io.h"

#include "bpe_train.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "tensor/fp16.h"

#include <cstring>

namespace strata::train {

const char* const kChatTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

namespace {

constexpr const char* kArch = "qwen3moe";

// Matrices go to F16 when asked; 1-D tensors (norms) and the router, whose few
// logits decide routing, stay F32.
bool stored_f16(const TensorRef& t, const ExportParams& p) {
    return p.f16 && t.ne.size() >= 2 && !t.name.ends_with("ffn_gate_inp.weight");
}

}  // namespace

Status write_gguf(const Model& m, const text::VocabSpec& vocab, const ExportParams& p,
                  const std::string& path) {
    using gguf::MetaValue;
    const Config& c = m.config();
    const std::string a = std::string(kArch) + ".";
    gguf::Writer w;
    w.set("general.architecture", MetaValue::string(kArch));
    w.set("general.name", MetaValue::string(p.name));
    w.set(a + "block_count", MetaValue::u32(static_cast<uint32_t>(c.n_layer)));
    w.set(a + "context_length", MetaValue::u32(static_cast<uint32_t>(c.n_ctx)));
    w.set(a + "embedding_length", MetaValue::u32(static_cast<uint32_t>(c.n_embd)));
    w.set(a + "feed_forward_length", MetaValue::u32(static_cast<uint32_t>(c.n_ff_exp)));
    w.set(a + "attention.head_count", MetaValue::u32(static_cast<uint32_t>(c.n_head)));
    w.set(a + "attention.head_count_kv", MetaValue::u32(static_cast<uint32_t>(c.n_head)));
    w.set(a + "attention.key_length", MetaValue::u32(static_cast<uint32_t>(c.head_dim())));
    w.set(a + "attention.value_length", MetaValue::u32(static_cast<uint32_t>(c.head_dim())));
    w.set(a + "rope.freq_base", MetaValue::f32(c.rope_base));
    w.set(a + "attention.layer_norm_rms_epsilon", MetaValue::f32(c.rms_eps));
    w.set(a + "expert_count", MetaValue::u32(static_cast<uint32_t>(c.n_expert)));
    w.set(a + "expert_used_count", MetaValue::u32(static_cast<uint32_t>(c.n_expert_used)));
    w.set(a + "expert_feed_forward_length", MetaValue::u32(static_cast<uint32_t>(c.n_ff_exp)));
    w.set("tokenizer.ggml.model", MetaValue::string(vocab.model));
    w.set("tokenizer.ggml.pre", MetaValue::string(vocab.pre));
    w.set("tokenizer.ggml.tokens", MetaValue::strings(vocab.tokens));
    w.set("tokenizer.ggml.token_type", MetaValue::i32s(vocab.token_types));
    w.set("tokenizer.ggml.merges", MetaValue::strings(vocab.merges));
    w.set("tokenizer.ggml.bos_token_id", MetaValue::u32(static_cast<uint32_t>(*vocab.bos)));
    w.set("tokenizer.ggml.eos_token_id", MetaValue::u32(static_cast<uint32_t>(*vocab.eos)));
    w.set("tokenizer.ggml.eot_token_id", MetaValue::u32(static_cast<uint32_t>(*vocab.eot)));
    w.set("tokenizer.ggml.padding_token_id", MetaValue::u32(static_cast<uint32_t>(*vocab.pad)));
    w.set("tokenizer.ggml.add_bos_token", MetaValue::boolean(false));
    w.set("tokenizer.chat_template", MetaValue::string(kChatTemplate));

    const std::span<const float> params = m.params();
    for (const TensorRef& t : m.layout().tensors) {
        gguf::TensorSpec s{.name = t.name,
                           .type = stored_f16(t, p) ? TensorType::F16 : TensorType::F32,
                           .ne = t.ne};
        const size_t n = s.n_rows() * static_cast<size_t>(t.ne[0]);
        const float* src = params.data() + t.offset;
        if (s.type == TensorType::F16) {
            s.data.resize(n * 2);
            for (size_t i = 0; i < n; ++i) {
                const uint16_t h = fp32_to_fp16(src[i]);
                std::memcpy(&s.data[i * 2], &h, 2);
            }
        } else {
            s.data.resize(n * 4);
            std::memcpy(s.data.data(), src, n * 4);
        }
        w.add_tensor(std::move(s));
    }
    return w.write(path);
}

Result<Model> read_gguf(const std::string& path) {
    auto f = gguf::File::open(path);
    if (!f) return f.error();
    auto arch = f->get_string("general.architecture");
    if (!arch) return arch.error();
    if (*arch != kArch)
        return err("{}: architecture '{}', expected the trainer's '{}'", path, *arch, kArch);
    const std::string a = std::string(kArch) + ".";
    Config c;
    auto get = [&](const std::string& key, int& out) -> Status {
        auto v = f->get_int(a + key);
        if (!v) return v.error();
        out = static_cast<int>(*v);
        return {};
    };
    STRATA_TRY(get("block_count", c.n_layer));
    STRATA_TRY(get("context_length", c.n_ctx));
    STRATA_TRY(get("embedding_length", c.n_embd));
    STRATA_TRY(get("attention.head_count", c.n_head));
    STRATA_TRY(get("expert_count", c.n_expert));
    STRATA_TRY(get("expert_used_count", c.n_expert_used));
    STRATA_TRY(get("expert_feed_forward_length", c.n_ff_exp));
    auto base = f->get_float(a + "rope.freq_base");
    if (!base) return base.error();
    c.rope_base = static_cast<float>(*base);
    auto eps = f->get_float(a + "attention.layer_norm_rms_epsilon");
    if (!eps) return eps.error();
    c.rms_eps = static_cast<float>(*eps);
    const gguf::TensorInfo* emb = f->find_tensor("token_embd.weight");
    if (!emb) return err("{}: no token_embd.weight", path);
    c.n_vocab = static_cast<int>(emb->ne[1]);

    const Layout layout = make_layout(c);
    std::vector<float> params(layout.total);
    for (const TensorRef& t : layout.tensors) {
        const gguf::TensorInfo* ti = f->find_tensor(t.name);
        if (!ti) return err("{}: tensor '{}' is missing", path, t.name);
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        if (ti->n_elements != n)
            return err("{}: tensor '{}' has {} elements, expected {}", path, t.name, ti->n_elements,
                       n);
        float* dst = params.data() + t.offset;
        if (ti->type == TensorType::F32) {
            std::memcpy(dst, ti->data, n * 4);
        } else if (ti->type == TensorType::F16) {
            for (uint64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, ti->data + i * 2, 2);
                dst[i] = fp16_to_fp32(h);
            }
        } else {
            return err("{}: tensor '{}' is neither F32 nor F16", path, t.name);
        }
    }
    return Model(c, std::move(params));
}

}  // namespace strata::train
