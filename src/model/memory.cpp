#include "model/memory.h"

#include "placement/tensor_class.h"
#include "tensor/type.h"

#include <algorithm>

namespace strata {

namespace {

int64_t context_of(const HParams& hp, int64_t n_ctx) {
    return std::max<int64_t>(1, n_ctx > 0 ? n_ctx : static_cast<int64_t>(hp.n_ctx_train));
}

}  // namespace

uint64_t kv_cache_bytes(const HParams& hp, int64_t n_ctx, KvType type) {
    const uint64_t per_token =
        uint64_t{hp.n_layer} * hp.n_head_kv * (hp.n_embd_head_k + hp.n_embd_head_v) * (type == KvType::F32 ? 4 : 2);
    return per_token * static_cast<uint64_t>(context_of(hp, n_ctx));
}

uint64_t scratch_bytes(const HParams& hp, const MemoryRequest& req) {
    const uint64_t n_embd = hp.n_embd;
    const uint64_t q = uint64_t{hp.n_head} * hp.n_embd_head_k, kv = uint64_t{hp.n_head_kv} * hp.n_embd_head_k;
    const uint64_t v = uint64_t{hp.n_head_kv} * hp.n_embd_head_v, o = uint64_t{hp.n_head} * hp.n_embd_head_v;
    const uint64_t n_ff = std::max({hp.n_ff, hp.n_ff_exp, hp.n_ff_shexp});
    // x, cur, ffn, the gathered rows and outputs of one expert, shared-expert output.
    const uint64_t per_token = 6 * n_embd + q + kv + v + o + hp.n_expert + 2 * n_ff;
    const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(1, req.n_batch));
    const uint64_t floats = batch * per_token + uint64_t{hp.n_vocab} * static_cast<uint64_t>(std::max(1, req.n_parallel)) +
                            static_cast<uint64_t>(context_of(hp, req.n_ctx)) * hp.n_head;
    return floats * sizeof(float);
}

Result<PlanInput> plan_input(const gguf::File& f, const HParams& hp, const MemoryRequest& req) {
    if (req.n_parallel < 1) return err("--parallel {}: expected at least 1", req.n_parallel);
    if (req.n_ctx < 0) return err("--ctx {}: expected 0 or more", req.n_ctx);
    PlanInput in;
    for (const gguf::TensorInfo& t : f.tensors()) {
        PlanTensor pt{.name = t.name, .type = type_name(t.type), .n_bytes = t.n_bytes};
        // Only the matrices are split by expert: a slice is whole rows, and the
        // tiny per-expert biases are read as one float array.
        if (is_routed_expert(t.name) && t.n_dims == 3 && hp.n_expert > 0 && t.ne[2] == hp.n_expert)
            pt.n_expert = hp.n_expert;
        in.tensors.push_back(std::move(pt));
    }
    in.kv_bytes = kv_cache_bytes(hp, req.n_ctx, req.kv_type) * static_cast<uint64_t>(req.n_parallel);
    in.scratch_bytes = scratch_bytes(hp, req);
    in.n_expert_used = hp.n_expert_used;
    return in;
}

Result<MemoryPlan> plan_memory(const gguf::File& f, const PlacementOptions& opt, const MemoryRequest& req) {
    auto hp = read_hparams(f);
    if (!hp) return hp.error();
    auto in = plan_input(f, *hp, req);
    if (!in) return in.error();
    return make_plan(*in, opt);
}

}  // namespace strata
