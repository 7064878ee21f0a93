#include "model/kv_cache.h"

#include "tensor/fp16.h"
#include "util/check.h"

namespace strata {

KvCache::KvCache(int n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width, KvType type)
    : n_ctx_(n_ctx), k_width_(k_width), v_width_(v_width), type_(type) {
    const auto nk = static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx * k_width);
    const auto nv = static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx * v_width);
    if (type == KvType::F32) {
        k32_.resize(nk);
        v32_.resize(nv);
    } else {
        k16_.resize(nk);
        v16_.resize(nv);
    }
}

uint64_t KvCache::bytes() const {
    return (k32_.size() + v32_.size()) * sizeof(float) +
           (k16_.size() + v16_.size()) * sizeof(uint16_t);
}

size_t KvCache::k_index(int layer, int64_t pos) const {
    CHECK(pos >= 0 && pos < n_ctx_, "KV position within the cache");
    return static_cast<size_t>((layer * n_ctx_ + pos) * k_width_);
}

size_t KvCache::v_index(int layer, int64_t pos) const {
    CHECK(pos >= 0 && pos < n_ctx_, "KV position within the cache");
    return static_cast<size_t>((layer * n_ctx_ + pos) * v_width_);
}

void KvCache::store(int layer, int64_t pos, const float* k, const float* v) {
    const size_t ki = k_index(layer, pos), vi = v_index(layer, pos);
    if (type_ == KvType::F32) {
        for (int64_t i = 0; i < k_width_; ++i) k32_[ki + i] = k[i];
        for (int64_t i = 0; i < v_width_; ++i) v32_[vi + i] = v[i];
    } else {
        for (int64_t i = 0; i < k_width_; ++i) k16_[ki + i] = fp32_to_fp16(k[i]);
        for (int64_t i = 0; i < v_width_; ++i) v16_[vi + i] = fp32_to_fp16(v[i]);
    }
}

const void* KvCache::k_row(int layer, int64_t pos) const {
    const size_t i = k_index(layer, pos);
    return type_ == KvType::F32 ? static_cast<const void*>(k32_.data() + i)
                                : static_cast<const void*>(k16_.data() + i);
}

const void* KvCache::v_row(int layer, int64_t pos) const {
    const size_t i = v_index(layer, pos);
    return type_ == KvType::F32 ? static_cast<const void*>(v32_.data() + i)
                                : static_cast<const void*>(v16_.data() + i);
}

ops::KvLayer KvCache::layer(int layer) const {
    ops::KvLayer l;
    l.f16 = type_ == KvType::F16;
    l.k = const_cast<void*>(k_row(layer, 0));
    l.v = const_cast<void*>(v_row(layer, 0));
    l.k_width = k_width_;
    l.v_width = v_width_;
    return l;
}

void KvCache::load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
    const size_t ki = k_index(layer, pos) + static_cast<size_t>(offset);
    if (type_ == KvType::F32) {
        for (int64_t i = 0; i < n; ++i) out[i] = k32_[ki + i];
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(k16_[ki + i]);
    }
}

void KvCache::load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
    const size_t vi = v_index(layer, pos) + static_cast<size_t>(offset);
    if (type_ == KvType::F32) {
        for (int64_t i = 0; i < n; ++i) out[i] = v32_[vi + i];
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(v16_[vi + i]);
    }
}

}  // namespace strata
