#include "placement/tensor_class.h"

#include <charconv>

namespace strata {

namespace {

// The part of a `blk.N.rest` name after the layer number, or the whole name.
std::string_view block_local(std::string_view name) {
    if (!name.starts_with("blk.")) return name;
    size_t dot = name.find('.', 4);
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

}  // namespace

const char* tensor_class_name(TensorClass c) {
    switch (c) {
        case TensorClass::Embedding: return "embedding";
        case TensorClass::Output: return "output";
        case TensorClass::Attention: return "attention";
        case TensorClass::Norm: return "norm";
        case TensorClass::Router: return "router";
        case TensorClass::RoutedExpert: return "routed-expert";
        case TensorClass::SharedExpert: return "shared-expert";
        case TensorClass::DenseFfn: return "dense-ffn";
        case TensorClass::Other: return "other";
    }
    return "other";
}

std::optional<int> tensor_layer(std::string_view name) {
    if (!name.starts_with("blk.")) return std::nullopt;
    int layer = 0;
    auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), layer);
    if (ec != std::errc() || p == name.data() + 4 || p == name.data() + name.size() || *p != '.')
        return std::nullopt;
    return layer;
}

bool is_routed_expert(std::string_view name) {
    return tensor_layer(name).has_value() && block_local(name).find("_exps") != std::string_view::npos;
}

TensorClass classify_tensor(std::string_view name) {
    if (name.starts_with("token_embd")) return TensorClass::Embedding;
    if (name.starts_with("output")) return TensorClass::Output;
    if (!tensor_layer(name)) return TensorClass::Other;
    const std::string_view local = block_local(name);
    if (local.starts_with("ffn_gate_inp")) return TensorClass::Router;
    if (local.find("_exps") != std::string_view::npos) return TensorClass::RoutedExpert;
    if (local.find("_shexp") != std::string_view::npos) return TensorClass::SharedExpert;
    if (local.find("norm") != std::string_view::npos) return TensorClass::Norm;
    if (local.starts_with("attn_")) return TensorClass::Attention;
    if (local.starts_with("ffn_")) return TensorClass::DenseFfn;
    return TensorClass::Other;
}

}  // namespace strata
