#include "model/weights.h"

#include "model/layout.h"
#include "ops/cpu/dot.h"

#include <fmt/format.h>

#include <map>

namespace strata {
namespace {

std::string shape_of(const std::vector<uint64_t>& ne) { return fmt::format("[{}]", fmt::join(ne, ", ")); }

class Binder {
public:
    Binder(const gguf::File& f, ModelWeights& w) : file_(f), weights_(w) {}

    // Checks the tensor against its layout entry and makes a view of it.
    Status bind(const TensorDesc& d) {
        const gguf::TensorInfo* t = file_.find_tensor(d.name);
        if (!t) return err("{}: tensor '{}' is missing", file_.path(), d.name);
        const std::vector<uint64_t> actual(t->ne.begin(), t->ne.begin() + t->n_dims);
        if (actual != d.ne) {
            return err("{}: tensor '{}' has shape {}, expected {} from the model's hyper-parameters", file_.path(),
                       d.name, shape_of(actual), shape_of(d.ne));
        }
        const TypeTraits& traits = type_traits(t->type);
        // Matrices are multiplied through a dot kernel; norms and biases only decoded.
        const bool matrix = d.role != TensorRole::Scale && d.role != TensorRole::Bias;
        if (!traits.dequantize || (matrix && !ops::scalar_dot_kernels().dot[static_cast<size_t>(t->type)])) {
            return err("{}: tensor '{}' has type {}, which strata cannot compute with yet", file_.path(), d.name,
                       traits.name);
        }
        TensorView v;
        v.name = d.name;
        v.type = t->type;
        for (uint32_t i = 0; i < t->n_dims; ++i) v.ne[i] = static_cast<int64_t>(t->ne[i]);
        v.row_bytes = t->n_bytes / static_cast<uint64_t>(v.n_rows());
        v.data = t->data;
        // Norms and biases are read as float arrays by the blocks.
        if ((d.role == TensorRole::Scale || d.role == TensorRole::Bias) && v.type != TensorType::F32) {
            const auto n = static_cast<size_t>(t->n_elements);
            auto buf = std::make_unique<float[]>(n);
            for (int64_t r = 0; r < v.n_rows(); ++r) v.dequantize_row(r, buf.get() + r * v.ne[0]);
            v.type = TensorType::F32;
            v.row_bytes = static_cast<size_t>(v.ne[0]) * sizeof(float);
            v.data = reinterpret_cast<const uint8_t*>(buf.get());
            weights_.converted.push_back(std::move(buf));
        }
        views_[d.name] = std::move(v);
        return {};
    }

    // The bound view of `name`, or an empty view when the layout has no such tensor.
    TensorView get(const std::string& name) const {
        auto it = views_.find(name);
        return it == views_.end() ? TensorView{} : it->second;
    }

private:
    const gguf::File& file_;
    ModelWeights& weights_;
    std::map<std::string, TensorView> views_;
};

}  // namespace

Result<ModelWeights> bind_weights(const gguf::File& f, const ArchSpec& arch, const HParams& hp) {
    // Every block has tensors of its own, so a `block_count` above the file's
    // tensor count cannot be true. Checked before the layout is built, whose time
    // and memory grow with `block_count`: the GGUF fuzzer found an 18 KiB file
    // claiming 65536 blocks that took seconds, and 2^32 - 1 would never finish.
    if (hp.n_layer > f.tensors().size())
        return err("{}: key '{}.block_count' is {} but the file holds only {} tensors", f.path(), hp.arch, hp.n_layer,
                   f.tensors().size());
    auto layout = tensor_layout(hp);
    if (!layout) return err("{}: {}", f.path(), layout.error().message);
    ModelWeights w;
    Binder b(f, w);
    for (const TensorDesc& d : *layout) STRATA_TRY(b.bind(d));

    w.tok_embd = b.get("token_embd.weight");
    w.output_norm = b.get("output_norm.weight");
    w.output_norm_b = b.get("output_norm.bias");
    w.output = b.get("output.weight");
    w.output_b = b.get("output.bias");
    const std::string ffn_norm = ffn_norm_name(arch);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const std::string p = fmt::format("blk.{}.", il);
        LayerWeights l;
        l.attn_norm = b.get(p + "attn_norm.weight");
        l.attn_norm_b = b.get(p + "attn_norm.bias");
        l.wq = b.get(p + "attn_q.weight");
        l.wk = b.get(p + "attn_k.weight");
        l.wv = b.get(p + "attn_v.weight");
        l.wo = b.get(p + "attn_output.weight");
        l.bq = b.get(p + "attn_q.bias");
        l.bk = b.get(p + "attn_k.bias");
        l.bv = b.get(p + "attn_v.bias");
        l.bo = b.get(p + "attn_output.bias");
        l.q_norm = b.get(p + "attn_q_norm.weight");
        l.k_norm = b.get(p + "attn_k_norm.weight");
        l.sinks = b.get(p + "attn_sinks.weight");
        l.ffn_norm = b.get(p + ffn_norm + ".weight");
        l.ffn_norm_b = b.get(p + ffn_norm + ".bias");
        l.ffn_gate = b.get(p + "ffn_gate.weight");
        l.ffn_up = b.get(p + "ffn_up.weight");
        l.ffn_down = b.get(p + "ffn_down.weight");
        l.gate_inp = b.get(p + "ffn_gate_inp.weight");
        l.gate_inp_b = b.get(p + "ffn_gate_inp.bias");
        l.gate_exps = b.get(p + "ffn_gate_exps.weight");
        l.up_exps = b.get(p + "ffn_up_exps.weight");
        l.down_exps = b.get(p + "ffn_down_exps.weight");
        l.gate_exps_b = b.get(p + "ffn_gate_exps.bias");
        l.up_exps_b = b.get(p + "ffn_up_exps.bias");
        l.down_exps_b = b.get(p + "ffn_down_exps.bias");
        l.gate_shexp = b.get(p + "ffn_gate_shexp.weight");
        l.up_shexp = b.get(p + "ffn_up_shexp.weight");
        l.down_shexp = b.get(p + "ffn_down_shexp.weight");
        l.gate_inp_shexp = b.get(p + "ffn_gate_inp_shexp.weight");
        w.layers.push_back(std::move(l));
    }
    return w;
}

}  // namespace strata
