#pragma once
// The keys and values of one sequence, per layer and position, in F32 or F16.
// Positions are contiguous from 0: a session appends, and rewinds to reuse a
// common prefix. The rows live in huge pages, committed as positions are first
// written: attention reads a layer's rows a head's slice at a time, strided, and
// through 4 KiB pages every few rows would cost a page walk.

#include "ops/params.h"
#include "util/huge_buffer.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace strata {

enum class KvType { F32, F16 };

class KvCache {
  public:
    KvCache(int n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width, KvType type);

    int64_t n_ctx() const { return n_ctx_; }
    KvType type() const { return type_; }
    uint64_t bytes() const;

    void store(int layer, int64_t pos, const float* k, const float* v);
    // Elements [offset, offset + n) of row `pos` of layer `layer`'s keys or values,
    // as floats (one head's slice: offset = head * head_dim).
    void load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const;
    void load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const;
    // Row `pos` of layer `layer`'s keys or values in the cache's own type (F32 or
    // F16 elements), for kernels that read it in place.
    const void* k_row(int layer, int64_t pos) const;
    const void* v_row(int layer, int64_t pos) const;
    int64_t k_width() const { return k_width_; }
    // Layer `layer`'s rows as the ops see them. The handle is writable (kv_store
    // takes it) even from a const cache, as attention only reads through it.
    ops::KvLayer layer(int layer) const;

    // What a device backend keeps beside this cache (its own rows in device
    // memory, model/device_model.cpp); freed with the cache.
    std::shared_ptr<void> device;
    int64_t v_width() const { return v_width_; }

  private:
    size_t k_index(int layer, int64_t pos) const;
    size_t v_index(int layer, int64_t pos) const;

    // Element i of the keys or values as a float.
    float element(const HugeBuffer& b, size_t i) const;

    int64_t n_ctx_, k_width_, v_width_;
    KvType type_;
    size_t elem_;  // bytes per element: 4 or 2
    HugeBuffer k_, v_;
};

}  // namespace strata
