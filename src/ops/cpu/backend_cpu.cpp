// The CPU as a backend (ops/backend.h): device memory is host memory and each op
// is the CPU kernel the plain forward pass uses, so a forward pass written
// against the interface gives, on this backend, the plain pass's results. It is
// the reference every other backend is tested against.
#include "ops/backend.h"

#include "ops/cpu/ops.h"
#include "util/meminfo.h"
#include "util/thread_pool.h"

#include <cstdlib>
#include <cstring>

namespace strata::ops {

namespace {

// Wide enough for the widest vector loads of the kernels.
constexpr size_t kAlign = 64;

void* aligned(size_t bytes) {
    return std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
}

class CpuBackend final : public Backend {
  public:
    explicit CpuBackend(ThreadPool& pool) : pool_(pool) {}

    DeviceInfo info() const override {
        DeviceInfo d;
        d.backend = "cpu";
        d.name = cpu_model_name();
        d.total_bytes = total_memory().value_or(0);
        d.free_bytes = available_memory().value_or(0);
        d.detail = std::string("kernels: ") + dot_kernels().isa;
        return d;
    }

    bool supports(TensorType weight) const override {
        return dot_kernels().dot[static_cast<size_t>(weight)] != nullptr;
    }

    void* alloc(size_t bytes) override { return aligned(bytes); }
    void release(void* p) override { std::free(p); }
    void* alloc_host(size_t bytes) override { return aligned(bytes); }
    void release_host(void* p) override { std::free(p); }
    // memcpy's pointers must be valid even for 0 bytes; an empty vector's are null.
    void upload(void* dst, const void* src, size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void download(void* dst, const void* src, size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void sync() override {}

    void matmul(const Matrix& w, const float* x, int64_t n_tok, float* y) override {
        TensorView v;
        v.type = w.type;
        v.ne = {w.n_in, w.n_rows, 1, 1};
        v.row_bytes = w.row_bytes;
        v.data = static_cast<const uint8_t*>(w.data);
        ops::matmul(v, 0, w.n_rows, x, w.n_in, n_tok, y, w.n_rows, pool_);
    }

    void add_bias(float* y, const float* b, int64_t n_rows, int64_t width) override {
        for (int64_t t = 0; t < n_rows; ++t) {
            for (int64_t i = 0; i < width; ++i) y[t * width + i] += b[i];
        }
    }

    void add(float* y, const float* x, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) y[i] += x[i];
    }

    void zero(float* y, int64_t n) override {
        std::memset(y, 0, static_cast<size_t>(n) * sizeof(float));
    }

    void rms_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                  float eps, float* out) override {
        for (int64_t t = 0; t < n_rows; ++t) {
            ops::rms_norm(x + t * width, width, w, eps, out + t * width);
            if (b) {
                for (int64_t i = 0; i < width; ++i) out[t * width + i] += b[i];
            }
        }
    }

    void layer_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                    float eps, float* out) override {
        for (int64_t t = 0; t < n_rows; ++t)
            ops::layer_norm(x + t * width, width, w, b, eps, out + t * width);
    }

    void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0,
              const RopeParams& p) override {
        ops::rope(x, n_tok, row_stride, n_heads, head_dim, pos0, p);
    }

    void kv_store(const KvLayer& kv, int64_t pos0, int64_t n_tok, const float* k,
                  const float* v) override {
        for (int64_t t = 0; t < n_tok; ++t)
            ops::kv_store(kv, pos0 + t, k + t * kv.k_width, v + t * kv.v_width);
    }

    void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
                   const AttentionParams& p, float* out) override {
        ops::attention(q, n_tok, pos0, kv, p, out, pool_);
    }

    void glu(Activation act, const float* gate, const float* up, int64_t n, float* out) override {
        for (int64_t i = 0; i < n; ++i) out[i] = ops::glu(act, gate[i], up[i]);
    }

    void gather_rows(const float* x, int64_t width, const int32_t* rows, int64_t n,
                     float* out) override {
        for (int64_t i = 0; i < n; ++i)
            std::memcpy(out + i * width, x + rows[i] * width, sizeof(float) * width);
    }

    void scatter_add(float* out, int64_t width, const float* y, const int32_t* rows,
                     const float* weights, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) {
            float* o = out + rows[i] * width;
            for (int64_t c = 0; c < width; ++c) o[c] += weights[i] * y[i * width + c];
        }
    }

  private:
    ThreadPool& pool_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool) {
    return std::make_unique<CpuBackend>(pool);
}

}  // namespace strata::ops
