#pragma once
// What a tensor is for, judged from its GGUF name. Placement rules and
// `strata probe` both need to tell the large, sparsely used routed-expert
// tensors (`blk.N.ffn_{gate,up,down,gate_up}_exps.*`, stacked as
// [n_embd, n_ff, n_expert]) from everything every token reads.

#include <optional>
#include <string_view>

namespace strata {

enum class TensorClass {
    Embedding,     // token_embd.*
    Output,        // output.*, output_norm.*
    Attention,     // blk.N.attn_*
    Norm,          // blk.N.*_norm.*
    Router,        // blk.N.ffn_gate_inp.* (expert gating), ffn_gate_inp_shexp
    RoutedExpert,  // blk.N.ffn_*_exps.*
    SharedExpert,  // blk.N.ffn_*_shexp.*
    DenseFfn,      // blk.N.ffn_{gate,up,down}.*
    Other,
};

const char* tensor_class_name(TensorClass c);
TensorClass classify_tensor(std::string_view name);
bool is_routed_expert(std::string_view name);

// The layer index of a `blk.N.` tensor; nullopt for tensors outside the blocks.
std::optional<int> tensor_layer(std::string_view name);

}  // namespace strata
