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

// Calls f(TensorView&) on every view of `w`, bound or not.
template <typename F>
void for_each_view(ModelWeights& w, F&& f) {
    for (TensorView* v : {&w.tok_embd, &w.output_norm, &w.output_norm_b, &w.output, &w.output_b}) f(*v);
    for (LayerWeights& l : w.layers) {
        for (TensorView* v : {&l.attn_norm,  &l.attn_norm_b, &l.wq,          &l.wk,          &l.wv,
                              &l.wo,         &l.bq,          &l.bk,          &l.bv,          &l.bo,
                              &l.q_norm,     &l.k_norm,      &l.sinks,       &l.ffn_norm,    &l.ffn_norm_b,
                              &l.ffn_gate,   &l.ffn_up,      &l.ffn_down,    &l.gate_inp,    &l.gate_inp_b,
                              &l.gate_exps,  &l.up_exps,     &l.down_exps,   &l.gate_exps_b, &l.up_exps_b,
                              &l.down_exps_b, &l.gate_shexp, &l.up_shexp,    &l.down_shexp,  &l.gate_inp_shexp})
            f(*v);
    }
}

Result<ModelWeights> bind_weights(const gguf::File& f, const ArchSpec& arch, const HParams& hp);

}  // namespace strata
