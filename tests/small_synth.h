#pragma once
// A small synthetic model's spec, shared by the tests that write one: Qwen3's
// preset cut to 2 layers of width 256 (every 256-element block type fits its
// rows), 8 experts of which 2 are used, and a 512-token vocabulary.

#include "model/synth.h"

#include <string>

namespace strata::test {

inline SynthSpec small_synth_spec(const std::string& arch) {
    SynthSpec spec = find_synth_preset("qwen3-30b-a3b")->spec;
    spec.hp.arch = arch;
    spec.hp.n_layer = 2;
    spec.hp.n_embd = 256;
    spec.hp.n_head = 4;
    spec.hp.n_head_kv = 2;
    spec.hp.n_embd_head_k = spec.hp.n_embd_head_v = spec.hp.n_rot = 64;
    spec.hp.n_ff = spec.hp.n_ff_exp = 256;
    spec.hp.n_expert = 8;
    spec.hp.n_expert_used = 2;
    spec.hp.n_vocab = 512;
    return spec;
}

}  // namespace strata::test
