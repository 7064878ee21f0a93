#include "model/device_model.h"

#include "util/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace strata {

// A layer's weights in device memory. Matrices and float arrays that the layer
// lacks are empty (data null).
struct DeviceModel::Layer {
    ops::Matrix wq, wk, wv, wo;
    const float *attn_norm = nullptr, *attn_norm_b = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
    const float *q_norm = nullptr, *k_norm = nullptr, *sinks = nullptr;
    const float *ffn_norm = nullptr, *ffn_norm_b = nullptr;
    ops::Matrix ffn_gate, ffn_up, ffn_down;
    // The router, and each routed expert's matrices where that expert is on the
    // device (data null where it is not).
    ops::Matrix gate_inp;
    const float* gate_inp_b = nullptr;
    std::vector<ops::Matrix> gate_e, up_e, down_e;
    const float *gate_exps_b = nullptr, *up_exps_b = nullptr, *down_exps_b = nullptr;
    std::vector<char> on_device;  // per expert
    bool any_off_device = false;
    ops::Matrix gate_shexp, up_shexp, down_shexp, gate_inp_shexp;
};

// One KV cache's rows on the device, one buffer pair per layer.
struct DeviceModel::DeviceKv {
    ops::Backend* backend = nullptr;
    const DeviceModel* owner = nullptr;
    std::shared_ptr<std::atomic<uint64_t>> counted;  // the model's KV total
    uint64_t bytes = 0;
    std::vector<ops::KvLayer> layers;
    ~DeviceKv() {
        for (ops::KvLayer& l : layers) {
            if (l.k) backend->release(l.k);
            if (l.v) backend->release(l.v);
        }
        *counted -= bytes;
    }
};

namespace {

// Scratch slots: one growable device buffer each, reused by every layer (the
// device runs its work in order, so a slot is free again once the next op that
// writes it is enqueued after the last that reads it).
enum Slot : int {
    kX,
    kCur,
    kQ,
    kK,
    kV,
    kAttn,
    kFfn,
    kGate,
    kUp,
    kLogits,
    kShared,
    kExpX,
    kExpY,
    kIdx,
    kHost,
    kSlots
};

std::string tier_problem(const std::string& name, Tier t) {
    return fmt::format(
        "tensor '{}' is in the {} tier, but with a GPU backend every tensor a token needs except "
        "the "
        "token embedding and the routed experts must be in the gpu tier (the plan's "
        "--override-tensor "
        "rules may move only experts off the GPU)",
        name, tier_name(t));
}

}  // namespace

DeviceModel::DeviceModel(Model& model, ops::Backend& backend, ThreadPool& pool)
    : model_(model), backend_(backend), pool_(pool), scratch_(kSlots, {nullptr, 0}) {}

DeviceModel::~DeviceModel() {
    backend_.sync();
    for (auto& [p, n] : scratch_) {
        if (p) backend_.release(p);
    }
    for (void* p : owned_) backend_.release(p);
}

void* DeviceModel::device_alloc(size_t bytes, uint64_t& counter) {
    void* p = backend_.alloc(bytes);
    if (p) {
        owned_.push_back(p);
        counter += bytes;
    }
    return p;
}

float* DeviceModel::scratch(int slot, size_t n_floats) {
    auto& [p, n] = scratch_[static_cast<size_t>(slot)];
    if (n < n_floats) {
        if (p) {
            backend_.sync();  // the old buffer may still be in use by enqueued work
            backend_.release(p);
            scratch_bytes_ -= n * sizeof(float);
        }
        // Grow by half again so a pass of slowly growing batches does not
        // reallocate every step.
        n = std::max({n_floats, n + n / 2, size_t{16}});
        p = static_cast<float*>(backend_.alloc(n * sizeof(float)));
        if (!p) {
            n = 0;
            throw std::runtime_error(fmt::format(
                "no room for {} bytes of scratch for this batch; a smaller batch (--parallel) or "
                "fewer experts on the GPU leaves more",
                n_floats * sizeof(float)));
        }
        scratch_bytes_ += n * sizeof(float);
    }
    return p;
}

Result<std::unique_ptr<DeviceModel>> DeviceModel::create(Model& model, const MemoryPlan& plan,
                                                         ops::Backend& backend, ThreadPool& pool) {
    std::unique_ptr<DeviceModel> dm(new DeviceModel(model, backend, pool));
    const std::string device = backend.info().name;

    auto on_gpu = [&](const TensorView& v) -> Status {
        const TensorPlacement* tp = plan.find(v.name);
        // Tensors the plan does not list (none today) are treated as gpu-tier.
        if (tp && tp->tier != Tier::Gpu) return err("{}", tier_problem(v.name, tp->tier));
        return {};
    };
    auto upload = [&](const void* src, size_t bytes, const std::string& name) -> Result<void*> {
        void* p = dm->device_alloc(bytes, dm->weight_bytes_);
        if (!p) {
            return err(
                "{}: no room for tensor '{}' ({} bytes) after {} bytes of weights; give a smaller "
                "--gpu-mem "
                "or move experts off the GPU (--n-cpu-moe)",
                device, name, bytes, dm->weight_bytes_);
        }
        backend.upload(p, src, bytes);
        return p;
    };
    auto matrix = [&](const TensorView& v, ops::Matrix& out) -> Status {
        if (!v.valid()) return {};
        STRATA_TRY(on_gpu(v));
        if (!backend.supports(v.type)) {
            return err("{}: tensor '{}' is {}, which this backend's matrix products do not take",
                       device, v.name, type_traits(v.type).name);
        }
        auto p = upload(v.data, v.row_bytes * static_cast<size_t>(v.n_rows()), v.name);
        if (!p) return p.error();
        out = {.type = v.type,
               .n_in = v.ne[0],
               .n_rows = v.n_rows(),
               .row_bytes = v.row_bytes,
               .data = *p};
        return {};
    };
    auto floats = [&](const TensorView& v, const float*& out) -> Status {
        if (!v.valid()) return {};
        STRATA_TRY(on_gpu(v));
        CHECK(v.type == TensorType::F32, "norms and biases are bound as F32");
        auto p = upload(v.f32(), sizeof(float) * static_cast<size_t>(v.ne[0] * v.n_rows()), v.name);
        if (!p) return p.error();
        out = static_cast<const float*>(*p);
        return {};
    };
    // The experts of a stacked tensor that the plan puts on the GPU, packed into
    // one allocation; the others stay where the CPU's pass reads them.
    auto experts = [&](const TensorView& v, std::vector<ops::Matrix>& out, Layer& l) -> Status {
        if (!v.valid()) return {};
        const auto n_exp = static_cast<size_t>(v.ne[2]);
        const TensorPlacement* tp = plan.find(v.name);
        out.assign(n_exp, ops::Matrix{});
        l.on_device.resize(n_exp, 1);
        size_t n_dev = 0;
        for (size_t e = 0; e < n_exp; ++e) {
            const bool dev = !tp || !tp->stacked() || tp->experts[e] == Tier::Gpu;
            if (!dev) l.on_device[e] = 0;
            n_dev += dev;
        }
        if (n_dev == 0) return {};
        if (!backend.supports(v.type)) {
            return err(
                "{}: tensor '{}' is {}, which this backend's matrix products do not take; keep its "
                "experts "
                "off the GPU (--cpu-moe)",
                device, v.name, type_traits(v.type).name);
        }
        const size_t slice = v.row_bytes * static_cast<size_t>(v.ne[1]);
        void* base = dm->device_alloc(slice * n_dev, dm->weight_bytes_);
        if (!base) {
            return err("{}: no room for {} experts of '{}' ({} bytes) after {} bytes of weights",
                       device, n_dev, v.name, slice * n_dev, dm->weight_bytes_);
        }
        size_t i = 0;
        for (size_t e = 0; e < n_exp; ++e) {
            if (!(!tp || !tp->stacked() || tp->experts[e] == Tier::Gpu)) continue;
            ExpertRows r = expert_rows(v, static_cast<int64_t>(e));
            auto* dst = static_cast<uint8_t*>(base) + i++ * slice;
            backend.upload(dst, r.view.data, slice);
            // A disk-tier cache entry may be freed once `r` goes: wait for the copy.
            if (r.hold) backend.sync();
            out[e] = {.type = v.type,
                      .n_in = v.ne[0],
                      .n_rows = v.ne[1],
                      .row_bytes = v.row_bytes,
                      .data = dst};
        }
        return {};
    };

    const ModelWeights& w = model.weights();
    for (const LayerWeights& lw : w.layers) {
        Layer& l = dm->layers_.emplace_back();
        STRATA_TRY(floats(lw.attn_norm, l.attn_norm));
        STRATA_TRY(floats(lw.attn_norm_b, l.attn_norm_b));
        STRATA_TRY(matrix(lw.wq, l.wq));
        STRATA_TRY(matrix(lw.wk, l.wk));
        STRATA_TRY(matrix(lw.wv, l.wv));
        STRATA_TRY(matrix(lw.wo, l.wo));
        STRATA_TRY(floats(lw.bq, l.bq));
        STRATA_TRY(floats(lw.bk, l.bk));
        STRATA_TRY(floats(lw.bv, l.bv));
        STRATA_TRY(floats(lw.bo, l.bo));
        STRATA_TRY(floats(lw.q_norm, l.q_norm));
        STRATA_TRY(floats(lw.k_norm, l.k_norm));
        STRATA_TRY(floats(lw.sinks, l.sinks));
        STRATA_TRY(floats(lw.ffn_norm, l.ffn_norm));
        STRATA_TRY(floats(lw.ffn_norm_b, l.ffn_norm_b));
        STRATA_TRY(matrix(lw.ffn_gate, l.ffn_gate));
        STRATA_TRY(matrix(lw.ffn_up, l.ffn_up));
        STRATA_TRY(matrix(lw.ffn_down, l.ffn_down));
        STRATA_TRY(matrix(lw.gate_inp, l.gate_inp));
        STRATA_TRY(floats(lw.gate_inp_b, l.gate_inp_b));
        STRATA_TRY(experts(lw.gate_exps, l.gate_e, l));
        STRATA_TRY(experts(lw.up_exps, l.up_e, l));
        STRATA_TRY(experts(lw.down_exps, l.down_e, l));
        // Per-expert biases are small; all of them go up with the layer.
        for (auto [src, dst] :
             {std::pair{&lw.gate_exps_b, &l.gate_exps_b}, std::pair{&lw.up_exps_b, &l.up_exps_b},
              std::pair{&lw.down_exps_b, &l.down_exps_b}}) {
            if (!src->valid()) continue;
            auto p =
                upload(src->f32(), sizeof(float) * static_cast<size_t>(src->ne[0] * src->n_rows()),
                       src->name);
            if (!p) return p.error();
            *dst = static_cast<const float*>(*p);
        }
        l.any_off_device =
            std::find(l.on_device.begin(), l.on_device.end(), 0) != l.on_device.end();
        STRATA_TRY(matrix(lw.gate_shexp, l.gate_shexp));
        STRATA_TRY(matrix(lw.up_shexp, l.up_shexp));
        STRATA_TRY(matrix(lw.down_shexp, l.down_shexp));
        STRATA_TRY(matrix(lw.gate_inp_shexp, l.gate_inp_shexp));
    }
    STRATA_TRY(floats(w.output_norm, dm->output_norm_));
    STRATA_TRY(floats(w.output_norm_b, dm->output_norm_b_));
    STRATA_TRY(matrix(w.output, dm->output_));
    STRATA_TRY(floats(w.output_b, dm->output_b_));
    backend.sync();
    return dm;
}

DeviceModel::DeviceKv& DeviceModel::kv_of(KvCache& cache) {
    auto* kv = static_cast<DeviceKv*>(cache.device.get());
    if (kv && kv->owner == this) return *kv;
    auto fresh = std::make_shared<DeviceKv>();
    fresh->backend = &backend_;
    fresh->owner = this;
    fresh->counted = kv_bytes_;
    for (size_t il = 0; il < layers_.size(); ++il) {
        // The cache's own element type, so the device pass rounds keys and values as
        // the plain pass does.
        ops::KvLayer l{.f16 = cache.type() == KvType::F16,
                       .k_width = cache.k_width(),
                       .v_width = cache.v_width()};
        const size_t elem = l.f16 ? 2 : 4;
        const auto elems = [&](int64_t width) {
            return static_cast<size_t>(cache.n_ctx() * width) * elem;
        };
        l.k = backend_.alloc(elems(l.k_width));
        l.v = backend_.alloc(elems(l.v_width));
        fresh->layers.push_back(l);
        if (!l.k || !l.v) {
            throw std::runtime_error(fmt::format(
                "no room for a {}-position KV cache ({} bytes per layer); a smaller --ctx or "
                "--parallel, or fewer experts on the GPU, leaves more",
                cache.n_ctx(), elems(l.k_width) + elems(l.v_width)));
        }
        fresh->bytes += elems(l.k_width) + elems(l.v_width);
        *kv_bytes_ += elems(l.k_width) + elems(l.v_width);
    }
    kv = fresh.get();
    cache.device = std::move(fresh);
    return *kv;
}

Status DeviceModel::forward_batch(std::span<const SeqBatch> seqs) {
    std::lock_guard<std::mutex> lock(mu_);
    // Device errors (no room, a failed launch or copy) arrive as exceptions from
    // the backend and from here; the pass fails with the device's name, and the
    // engine goes on serving.
    try {
        return pass(seqs);
    } catch (const std::exception& e) {
        try {
            backend_.sync();
        } catch (const std::exception&) {
            // The device may be unusable; the first error is the one to report.
        }
        return err("{}: {}", backend_.info().name, e.what());
    }
}

Status DeviceModel::pass(std::span<const SeqBatch> seqs) {
    auto layout = model_.layout_batch(seqs);
    if (!layout) return layout.error();
    const HParams& hp = model_.hparams();
    const int64_t n_tok = layout->n_tok, n_embd = hp.n_embd;

    // Embeddings on the host, up in one copy.
    std::vector<float> host_x(static_cast<size_t>(n_tok * n_embd));
    model_.embed(seqs, *layout, host_x.data());
    float* x = scratch(kX, host_x.size());
    backend_.upload(x, host_x.data(), host_x.size() * sizeof(float));

    for (size_t il = 0; il < layers_.size(); ++il)
        layer(static_cast<int>(il), x, n_tok, seqs, layout->rows);
    const auto n_out = static_cast<int64_t>(layout->out_rows.size());
    if (n_out == 0) {
        backend_.sync();
        return {};
    }

    // The rows whose logits are wanted, through the output norm and head.
    std::vector<int32_t> rows(layout->out_rows.begin(), layout->out_rows.end());
    auto* idx = reinterpret_cast<int32_t*>(scratch(kIdx, rows.size()));
    backend_.upload(idx, rows.data(), rows.size() * sizeof(int32_t));
    float* picked = scratch(kCur, static_cast<size_t>(n_out * n_embd));
    backend_.gather_rows(x, n_embd, idx, n_out, picked);
    const ArchSpec& arch = model_.arch();
    float* normed = scratch(kAttn, static_cast<size_t>(n_out * n_embd));
    if (arch.norm == NormKind::Layer) {
        backend_.layer_norm(picked, n_out, n_embd, output_norm_, output_norm_b_, hp.norm_eps,
                            normed);
    } else {
        backend_.rms_norm(picked, n_out, n_embd, output_norm_, output_norm_b_, hp.norm_rms_eps,
                          normed);
    }
    const int64_t n_vocab = hp.n_vocab;
    float* logits = scratch(kLogits, static_cast<size_t>(n_out * n_vocab));
    backend_.matmul(output_, normed, n_out, logits);
    if (output_b_) backend_.add_bias(logits, output_b_, n_out, n_vocab);
    std::vector<float> host_logits(static_cast<size_t>(n_out * n_vocab));
    backend_.download(host_logits.data(), logits, host_logits.size() * sizeof(float));
    backend_.sync();
    scatter_logits(seqs, host_logits.data(), n_vocab);
    return {};
}

void DeviceModel::layer(int il, float* x, int64_t n_tok, std::span<const SeqBatch> seqs,
                        std::span<const int64_t> rows) {
    const Layer& l = layers_[static_cast<size_t>(il)];
    const HParams& hp = model_.hparams();
    const ArchSpec& arch = model_.arch();
    const int64_t n_embd = hp.n_embd;
    const int hk = static_cast<int>(hp.n_embd_head_k);
    const int64_t q_width = int64_t{hp.n_head} * hk, k_width = int64_t{hp.n_head_kv} * hk;
    const int64_t v_width = int64_t{hp.n_head_kv} * hp.n_embd_head_v,
                  o_width = int64_t{hp.n_head} * hp.n_embd_head_v;
    const float eps = arch.norm == NormKind::Layer ? hp.norm_eps : hp.norm_rms_eps;
    auto norm = [&](const float* in, int64_t n_rows, int64_t width, const float* w, const float* b,
                    float e, NormKind kind, float* out) {
        if (kind == NormKind::Layer) {
            backend_.layer_norm(in, n_rows, width, w, b, e, out);
        } else {
            backend_.rms_norm(in, n_rows, width, w, b, e, out);
        }
    };
    auto linear = [&](const ops::Matrix& w, const float* b, const float* in, float* out) {
        backend_.matmul(w, in, n_tok, out);
        if (b) backend_.add_bias(out, b, n_tok, w.n_rows);
    };

    float* cur = scratch(kCur, static_cast<size_t>(n_tok * n_embd));
    norm(x, n_tok, n_embd, l.attn_norm, l.attn_norm_b, eps, arch.norm, cur);
    float* q = scratch(kQ, static_cast<size_t>(n_tok * q_width));
    float* k = scratch(kK, static_cast<size_t>(n_tok * k_width));
    float* v = scratch(kV, static_cast<size_t>(n_tok * v_width));
    linear(l.wq, l.bq, cur, q);
    linear(l.wk, l.bk, cur, k);
    linear(l.wv, l.bv, cur, v);
    if (arch.qk_norm == QkNorm::Full) {
        backend_.rms_norm(q, n_tok, q_width, l.q_norm, nullptr, hp.norm_rms_eps, q);
        backend_.rms_norm(k, n_tok, k_width, l.k_norm, nullptr, hp.norm_rms_eps, k);
    } else if (arch.qk_norm == QkNorm::PerHead) {
        backend_.rms_norm(q, n_tok * hp.n_head, hk, l.q_norm, nullptr, hp.norm_rms_eps, q);
        backend_.rms_norm(k, n_tok * hp.n_head_kv, hk, l.k_norm, nullptr, hp.norm_rms_eps, k);
    }
    ops::AttentionParams ap = model_.attention_params(il);
    ap.sinks = l.sinks;
    float* attn = scratch(kAttn, static_cast<size_t>(n_tok * o_width));
    for (size_t s = 0; s < seqs.size(); ++s) {
        const int64_t r = rows[s], n = static_cast<int64_t>(seqs[s].tokens.size()),
                      pos0 = seqs[s].pos0;
        const ops::KvLayer& kv = kv_of(*seqs[s].cache).layers[static_cast<size_t>(il)];
        backend_.rope(q + r * q_width, n, q_width, static_cast<int>(hp.n_head), hk, pos0,
                      model_.rope_params());
        backend_.rope(k + r * k_width, n, k_width, static_cast<int>(hp.n_head_kv), hk, pos0,
                      model_.rope_params());
        backend_.kv_store(kv, pos0, n, k + r * k_width, v + r * v_width);
        backend_.attention(q + r * q_width, n, pos0, kv, ap, attn + r * o_width);
    }
    linear(l.wo, l.bo, attn, cur);
    backend_.add(x, cur, n_tok * n_embd);

    norm(x, n_tok, n_embd, l.ffn_norm, l.ffn_norm_b, eps, arch.norm, cur);
    float* ffn = scratch(kFfn, static_cast<size_t>(n_tok * n_embd));
    if (l.gate_inp.data) {
        moe(il, cur, n_tok, ffn);
    } else {
        const int64_t n_ff = l.ffn_gate.n_rows;
        float* g = scratch(kGate, static_cast<size_t>(n_tok * n_ff));
        float* u = scratch(kUp, static_cast<size_t>(n_tok * n_ff));
        backend_.matmul(l.ffn_gate, cur, n_tok, g);
        backend_.matmul(l.ffn_up, cur, n_tok, u);
        backend_.glu(arch.activation, g, u, n_tok * n_ff, g);
        backend_.matmul(l.ffn_down, g, n_tok, ffn);
    }
    backend_.add(x, ffn, n_tok * n_embd);
}

void DeviceModel::moe(int il, const float* cur, int64_t n_tok, float* out) {
    const Layer& l = layers_[static_cast<size_t>(il)];
    const MoeParams& p = model_.moe_params();
    const int64_t n_embd = model_.hparams().n_embd;
    const int n_exp = p.n_expert, k = p.n_expert_used;
    const LayerWeights& lw = model_.weights().layers[static_cast<size_t>(il)];

    // The router on the device; its logits (and the shared expert's gate, and the
    // input itself when some experts run on the CPU) come to the host.
    float* logits = scratch(kLogits, static_cast<size_t>(n_tok * n_exp));
    backend_.matmul(l.gate_inp, cur, n_tok, logits);
    if (l.gate_inp_b) backend_.add_bias(logits, l.gate_inp_b, n_tok, n_exp);
    std::vector<float> host_logits(static_cast<size_t>(n_tok * n_exp));
    backend_.download(host_logits.data(), logits, host_logits.size() * sizeof(float));
    std::vector<float> shared_gate;
    if (l.gate_inp_shexp.data) {
        float* g = scratch(kShared, static_cast<size_t>(n_tok));
        backend_.matmul(l.gate_inp_shexp, cur, n_tok, g);
        shared_gate.resize(static_cast<size_t>(n_tok));
        backend_.download(shared_gate.data(), g, shared_gate.size() * sizeof(float));
    }
    std::vector<float> host_x;
    if (l.any_off_device) {
        host_x.resize(static_cast<size_t>(n_tok * n_embd));
        backend_.download(host_x.data(), cur, host_x.size() * sizeof(float));
    }
    backend_.sync();
    const Routing r = route_logits(p, host_logits.data(), n_tok);

    // Tokens (and their weights) per expert on the device, in expert order, and
    // the shared expert's rows last: one upload for all of them.
    std::vector<int32_t> idx;
    std::vector<float> wts;
    std::vector<std::pair<int, std::pair<size_t, size_t>>> groups;  // expert, [begin, end) in idx
    bool host_work = false;
    for (int e = 0; e < n_exp; ++e) {
        const size_t begin = idx.size();
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int j = 0; j < k; ++j) {
                if (r.chosen[static_cast<size_t>(t * k + j)] != e) continue;
                if (!l.on_device[static_cast<size_t>(e)]) {
                    host_work = true;
                    continue;
                }
                idx.push_back(static_cast<int32_t>(t));
                wts.push_back(r.weight[static_cast<size_t>(t * k + j)]);
            }
        }
        if (idx.size() > begin) {
            groups.push_back({e, {begin, idx.size()}});
            if (ExpertUsage* u = &model_.expert_usage(); u->n_layer() > 0) {
                u->add(il, e, idx.size() - begin);
            }
        }
    }
    const bool shared = l.gate_shexp.data != nullptr;
    const size_t shared_begin = idx.size();
    if (shared) {
        for (int64_t t = 0; t < n_tok; ++t) {
            idx.push_back(static_cast<int32_t>(t));
            wts.push_back(shared_gate.empty() ? 1.0f
                                              : ops::sigmoid(shared_gate[static_cast<size_t>(t)]));
        }
    }
    auto* dev_idx = reinterpret_cast<int32_t*>(scratch(kIdx, idx.size() * 2));
    auto* dev_wts = reinterpret_cast<float*>(dev_idx + idx.size());
    if (!idx.empty()) {  // a layer whose tokens all chose host experts has nothing here
        backend_.upload(dev_idx, idx.data(), idx.size() * sizeof(int32_t));
        backend_.upload(dev_wts, wts.data(), wts.size() * sizeof(float));
    }

    backend_.zero(out, n_tok * n_embd);
    // One expert's FFN over the `m` rows listed at idx[begin...], weighted into `out`.
    auto run = [&](const ops::Matrix& gate, const ops::Matrix& up, const ops::Matrix& down,
                   const float* gb, const float* ub, const float* db, size_t begin, int64_t m) {
        const int64_t n_ff = gate.n_rows;
        float* xe = scratch(kExpX, static_cast<size_t>(m * n_embd));
        float* g = scratch(kGate, static_cast<size_t>(m * n_ff));
        float* u = scratch(kUp, static_cast<size_t>(m * n_ff));
        float* y = scratch(kExpY, static_cast<size_t>(m * n_embd));
        backend_.gather_rows(cur, n_embd, dev_idx + begin, m, xe);
        backend_.matmul(gate, xe, m, g);
        backend_.matmul(up, xe, m, u);
        if (gb) backend_.add_bias(g, gb, m, n_ff);
        if (ub) backend_.add_bias(u, ub, m, n_ff);
        backend_.glu(model_.arch().activation, g, u, m * n_ff, g);
        backend_.matmul(down, g, m, y);
        if (db) backend_.add_bias(y, db, m, n_embd);
        backend_.scatter_add(out, n_embd, y, dev_idx + begin, dev_wts + begin, m);
    };
    // The scratch buffers must not move while enqueued work still reads them:
    // size them for the largest group first.
    int64_t most = shared ? n_tok : 0;
    for (const auto& g : groups)
        most = std::max<int64_t>(most, static_cast<int64_t>(g.second.second - g.second.first));
    if (most > 0) {
        const int64_t n_ff =
            std::max(l.gate_e.empty() ? 0 : lw.gate_exps.ne[1], shared ? l.gate_shexp.n_rows : 0);
        scratch(kExpX, static_cast<size_t>(most * n_embd));
        scratch(kExpY, static_cast<size_t>(most * n_embd));
        scratch(kGate, static_cast<size_t>(most * n_ff));
        scratch(kUp, static_cast<size_t>(most * n_ff));
    }
    for (const auto& [e, range] : groups) {
        const auto ue = static_cast<size_t>(e);
        const int64_t n_ff = l.gate_e[ue].n_rows,
                      m = static_cast<int64_t>(range.second - range.first);
        run(l.gate_e[ue], l.up_e[ue], l.down_e[ue],
            l.gate_exps_b ? l.gate_exps_b + e * n_ff : nullptr,
            l.up_exps_b ? l.up_exps_b + e * n_ff : nullptr,
            l.down_exps_b ? l.down_exps_b + e * n_embd : nullptr, range.first, m);
    }

    // Meanwhile the CPU runs the experts that are not on the device, on the same
    // input; their weighted sum goes up and is added in.
    if (host_work) {
        std::vector<float> host_out(static_cast<size_t>(n_tok * n_embd));
        MoeRun run_here{.x = host_x.data(),
                        .n_tok = n_tok,
                        .n_embd = n_embd,
                        .out = host_out.data(),
                        .shared = false};
        run_here.only.assign(static_cast<size_t>(n_exp), 0);
        for (int e = 0; e < n_exp; ++e)
            run_here.only[static_cast<size_t>(e)] = !l.on_device[static_cast<size_t>(e)];
        const size_t nx = static_cast<size_t>(il) + 1;
        const auto& layers = model_.weights().layers;
        const LayerWeights* next =
            nx < layers.size() && layers[nx].is_moe() ? &layers[nx] : nullptr;
        ExpertUsage* usage = &model_.expert_usage();
        moe_experts(lw, p, r, run_here, pool_, usage->n_layer() > 0 ? usage : nullptr, il, next);
        float* staged = scratch(kHost, host_out.size());
        backend_.upload(staged, host_out.data(), host_out.size() * sizeof(float));
        backend_.add(out, staged, n_tok * n_embd);
        backend_.sync();  // host_out goes out of scope
    }
    if (shared) {
        run(l.gate_shexp, l.up_shexp, l.down_shexp, nullptr, nullptr, nullptr, shared_begin, n_tok);
    }
    // idx and wts go out of scope: their upload must be done.
    backend_.sync();
}

}  // namespace strata
