#include "model/info.h"

#include "placement/tensor_class.h"
#include "tensor/type.h"

#include <algorithm>
#include <map>

namespace strata {

namespace {

void add_usage(std::map<std::string, TypeUsage>& m, const gguf::TensorInfo& t) {
    TypeUsage& u = m[type_name(t.type)];
    u.type = type_name(t.type);
    u.n_tensors += 1;
    u.n_elements += t.n_elements;
    u.n_bytes += t.n_bytes;
}

std::vector<TypeUsage> sorted_by_bytes(const std::map<std::string, TypeUsage>& m) {
    std::vector<TypeUsage> v;
    for (const auto& [_, u] : m) v.push_back(u);
    std::sort(v.begin(), v.end(), [](const TypeUsage& a, const TypeUsage& b) {
        return a.n_bytes != b.n_bytes ? a.n_bytes > b.n_bytes : a.type < b.type;
    });
    return v;
}

std::string string_or_empty(const gguf::File& f, std::string_view key) {
    auto r = f.get_string(key);
    return r ? std::string(*r) : std::string();
}

}  // namespace

ModelInfo describe_model(const gguf::File& f) {
    ModelInfo info;
    info.path = f.path();
    info.file_size = f.file_size();
    info.n_parts = f.n_parts();
    info.version = f.version();
    info.architecture = string_or_empty(f, "general.architecture");
    info.name = string_or_empty(f, "general.name");
    info.vocab_only = f.tensors().empty();

    info.tokenizer_model = string_or_empty(f, "tokenizer.ggml.model");
    info.tokenizer_pre = string_or_empty(f, "tokenizer.ggml.pre");
    if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
        toks && toks->type == gguf::ValueType::ARRAY)
        info.vocab_size = toks->array().count;
    info.has_chat_template = f.find("tokenizer.chat_template") != nullptr;

    if (!info.vocab_only) {
        auto hp = read_hparams(f);
        if (hp) {
            info.hparams = *hp;
        } else {
            info.hparams_error = hp.error().message;
        }
    }

    std::map<std::string, TypeUsage> by_type, expert_types;
    std::map<int, LayerBytes> layers;
    for (const gguf::TensorInfo& t : f.tensors()) {
        info.n_tensors += 1;
        info.n_params += t.n_elements;
        add_usage(by_type, t);
        const bool expert = is_routed_expert(t.name);
        if (expert) add_usage(expert_types, t);
        (expert ? info.expert_bytes : info.other_bytes) += t.n_bytes;
        if (auto il = tensor_layer(t.name)) {
            LayerBytes& lb = layers[*il];
            lb.layer = *il;
            (expert ? lb.expert_bytes : lb.other_bytes) += t.n_bytes;
        }
    }
    info.by_type = sorted_by_bytes(by_type);
    info.expert_types = sorted_by_bytes(expert_types);
    for (const auto& [_, lb] : layers) info.layers.push_back(lb);
    return info;
}

}  // namespace strata
