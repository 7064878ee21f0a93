#pragma once
// A model's forward pass on a compute backend (ops/backend.h) — the GPU tier.
//
// Every tensor the memory plan puts in the gpu tier is uploaded once, as the
// file's bytes; so are the routed experts placed there, expert by expert. Each
// layer's attention, norms and the router run on the device. The router's logits
// (and the normalised hidden state, when the layer has experts off the device)
// come back to the host, which picks the experts: device experts are then
// enqueued on the device while the CPU threads run the host- and disk-tier
// experts on the same input, and the CPU's partial sum goes up to be added on the
// device. In decode only activations cross the bus, never weights.
//
// The token embedding stays in host memory (a pass reads only its tokens' rows)
// and is uploaded per pass. Every other tensor a token needs must be in the gpu
// tier: `create` names the first that is not.
//
// With the CPU backend as the "device" the results equal `Model::forward_batch`'s
// bit for bit (same kernels, same order), which is how this file is tested on
// machines without a GPU.

#include "model/model.h"
#include "ops/backend.h"
#include "placement/plan.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <span>

namespace strata {

class DeviceModel {
  public:
    // Uploads the gpu-tier tensors of `model` (which, with `backend` and `pool`,
    // must outlive this; its expert usage counts the device's choices too). Errors name a tensor
    // the device cannot hold or run.
    static Result<std::unique_ptr<DeviceModel>> create(Model& model, const MemoryPlan& plan,
                                                       ops::Backend& backend, ThreadPool& pool);
    ~DeviceModel();
    DeviceModel(const DeviceModel&) = delete;
    DeviceModel& operator=(const DeviceModel&) = delete;

    // As `Model::forward_batch`; each cache's keys and values live on the device
    // (kept beside the KvCache, which holds none of them). Not reentrant: the
    // engine runs one pass at a time.
    Status forward_batch(std::span<const SeqBatch> seqs);

    // Device memory held for weights, for the KV caches of live sequences, and
    // for the passes' scratch buffers.
    uint64_t weight_bytes() const { return weight_bytes_; }
    uint64_t kv_bytes() const { return kv_bytes_->load(std::memory_order_relaxed); }
    uint64_t scratch_bytes() const { return scratch_bytes_; }
    ops::Backend& backend() const { return backend_; }

    struct Layer;
    struct DeviceKv;

  private:
    DeviceModel(Model& model, ops::Backend& backend, ThreadPool& pool);
    // Device memory of `bytes`, freed with the model; null when the device is full.
    void* device_alloc(size_t bytes, uint64_t& counter);
    float* scratch(int slot, size_t n_floats);
    Status pass(std::span<const SeqBatch> seqs);
    DeviceKv& kv_of(KvCache& cache);
    void layer(int il, float* x, int64_t n_tok, std::span<const SeqBatch> seqs,
               std::span<const int64_t> rows);
    void moe(int il, const float* cur, int64_t n_tok, float* out);

    Model& model_;  // its expert usage counts grow
    ops::Backend& backend_;
    ThreadPool& pool_;
    std::vector<Layer> layers_;
    ops::Matrix output_;
    const float *output_norm_ = nullptr, *output_norm_b_ = nullptr, *output_b_ = nullptr;
    std::vector<void*> owned_;
    std::vector<std::pair<float*, size_t>> scratch_;  // growable buffers by slot
    uint64_t weight_bytes_ = 0, scratch_bytes_ = 0;
    // Shared with each DeviceKv, which gives its bytes back when its cache goes.
    std::shared_ptr<std::atomic<uint64_t>> kv_bytes_ = std::make_shared<std::atomic<uint64_t>>(0);
    std::mutex mu_;
};

}  // namespace strata
