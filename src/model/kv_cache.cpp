#include "model/kv_cache.h"

#include "ops/cpu/ops.h"
#include "tensor/fp16.h"
#include "util/check.h"

#include <new>
#include <utility>

namespace strata {

namespace {

HugeBuffer allocate(size_t bytes) {
    auto b = HugeBuffer::allocate(bytes);
    if (!b) throw std::bad_alloc();  // as the vectors that held the cache before did
    return std::move(*b);
}

}  // namespace

KvCache::KvCache(int n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width, KvType type)
    : n_ctx_(n_ctx),
      k_width_(k_width),
      v_width_(v_width),
      type_(type),
      elem_(type == KvType::F32 ? sizeof(float) : sizeof(uint16_t)),
      k_(allocate(static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx * k_width) * elem_)),
      v_(allocate(static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx * v_width) * elem_)) {}

uint64_t KvCache::bytes() const {
    return k_.size() + v_.size();
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
    CHECK(pos >= 0 && pos < n_ctx_, "KV position within the cache");  // kv_store trusts it
    ops::kv_store(this->layer(layer), pos, k, v);
}

const void* KvCache::k_row(int layer, int64_t pos) const {
    return k_.data() + k_index(layer, pos) * elem_;
}

const void* KvCache::v_row(int layer, int64_t pos) const {
    return v_.data() + v_index(layer, pos) * elem_;
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

float KvCache::element(const HugeBuffer& b, size_t i) const {
    if (type_ == KvType::F32) return reinterpret_cast<const float*>(b.data())[i];
    return fp16_to_fp32(reinterpret_cast<const uint16_t*>(b.data())[i]);
}

void KvCache::load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
    const size_t ki = k_index(layer, pos) + static_cast<size_t>(offset);
    for (int64_t i = 0; i < n; ++i) out[i] = element(k_, ki + static_cast<size_t>(i));
}

void KvCache::load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
    const size_t vi = v_index(layer, pos) + static_cast<size_t>(offset);
    for (int64_t i = 0; i < n; ++i) out[i] = element(v_, vi + static_cast<size_t>(i));
}

}  // namespace strata
