#pragma once
// The tensors of a loaded model, bound by name from a GGUF against the
// architecture's layout: every tensor the layout names must be present with that
// exact shape, and the error names the one that is not. Norm weights and biases
// stored in another float type are converted to F32 once here, so blocks can read
// them as plain float arrays.

#include "gguf/file.h"
#include "model/arch.h"
#include "model/hparams.h"
#include "tensor/view.h"
#include "util/result.h"

#include <memory>
#include <vector>

namespace strata {

struct LayerWeights {
    TensorView attn_norm, attn_norm_b;
    TensorView wq, wk, wv, wo, bq, bk, bv, bo;
    TensorView q_norm, k_norm, sinks;
    TensorView ffn_norm, ffn_norm_b;
    // Dense FFN (dense models and deepseek's leading blocks).
    TensorView ffn_gate, ffn_up, ffn_down;
    // Routed experts, stacked [n_in, n_out, n_expert], and their router.
    TensorView gate_inp, gate_inp_b;
    TensorView gate_exps, up_exps, down_exps, gate_exps_b, up_exps_b, down_exps_b;
    // Shared experts.
    TensorView gate_shexp, up_shexp, down_shexp, gate_inp_shexp;

    bool is_moe() const { return gate_inp.valid(); }
};

struct ModelWeights {
    TensorView tok_embd, output_norm, output_norm_b, output, output_b;
    std::vector<LayerWeights> layers;
    std::vector<std::unique_ptr<float[]>> converted;  // F32 copies of non-F32 norms and biases
};

Result<ModelWeights> bind_weights(const gguf::File& f, const ArchSpec& arch, const HParams& hp);

}  // namespace strata
