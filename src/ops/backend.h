#pragma once
// The op-level interface a compute device offers the forward pass: memory on the
// device, copies to and from it, and the handful of operations a transformer
// layer is built from. The CPU backend (ops/cpu/backend_cpu.cpp) implements it
// with the CPU kernels and is the reference; the CUDA backend (ops/cuda/,
// built wherever CMake finds nvcc) implements the same operations on a GPU. No CUDA
// type appears here, so nothing above ops/ depends on the toolkit.
//
// Ordering: every call is enqueued on the backend's one stream and runs in call
// order; a device backend may return before the work is done. `sync()` waits
// for everything enqueued. Host memory passed to `upload` must stay unchanged,
// and the destination of `download` must not be read, until `sync()` returns.
// Host code can therefore run between enqueueing GPU work and `sync()` — that
// is how the CPU's experts overlap the GPU's.
//
// Activations are row-major float arrays [rows, width] in device memory. Index
// and weight arrays of `gather_rows` and `scatter_add` are in device memory too.

#include "ops/params.h"
#include "tensor/type.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace strata {
class ThreadPool;
}

namespace strata::ops {

struct DeviceInfo {
    std::string backend;  // "cpu", "cuda"
    std::string name;     // "NVIDIA H100 80GB HBM3", the CPU's model name
    int index = 0;        // the device's number within its backend
    uint64_t total_bytes = 0, free_bytes = 0;
    std::string detail;  // compute capability, driver version, ...
};

// A weight matrix in a backend's memory: `n_rows` rows of `n_in` elements of
// `type`, `row_bytes` apart, laid out as in the GGUF file (the same bytes are
// uploaded as they are, so a device never needs its own quantisation).
struct Matrix {
    TensorType type = TensorType::F32;
    int64_t n_in = 0, n_rows = 0;
    size_t row_bytes = 0;
    const void* data = nullptr;

    // Rows [first, first + n) as a matrix of their own (one expert of a stack).
    Matrix rows(int64_t first, int64_t n) const {
        Matrix m = *this;
        m.n_rows = n;
        m.data = static_cast<const uint8_t*>(data) + static_cast<size_t>(first) * row_bytes;
        return m;
    }
};

class Backend {
  public:
    virtual ~Backend() = default;
    virtual DeviceInfo info() const = 0;
    // Whether `matmul` takes weights of this type; the caller keeps others on the CPU.
    virtual bool supports(TensorType weight) const = 0;

    // Memory. `alloc` returns null when the device has no room; callers say what
    // they were allocating. `alloc_host` gives host memory the device copies from
    // fastest (pinned on CUDA).
    virtual void* alloc(size_t bytes) = 0;
    virtual void release(void* p) = 0;
    virtual void* alloc_host(size_t bytes) = 0;
    virtual void release_host(void* p) = 0;
    virtual void upload(void* dst, const void* src, size_t bytes) = 0;
    virtual void download(void* dst, const void* src, size_t bytes) = 0;
    virtual void sync() = 0;

    // y[t * n_rows + r] = row r of w . x[t] for t < n_tok (x rows are w.n_in floats).
    virtual void matmul(const Matrix& w, const float* x, int64_t n_tok, float* y) = 0;
    // y[t * width + i] += b[i] for t < n_rows.
    virtual void add_bias(float* y, const float* b, int64_t n_rows, int64_t width) = 0;
    // y[i] += x[i].
    virtual void add(float* y, const float* x, int64_t n) = 0;
    virtual void zero(float* y, int64_t n) = 0;
    // RMSNorm of each row, times w (if given), plus b (if given).
    virtual void rms_norm(const float* x, int64_t n_rows, int64_t width, const float* w,
                          const float* b, float eps, float* out) = 0;
    // LayerNorm of each row, times w, plus b (each if given).
    virtual void layer_norm(const float* x, int64_t n_rows, int64_t width, const float* w,
                            const float* b, float eps, float* out) = 0;
    // Rotates `n_heads` heads of `head_dim` in each of `n_tok` rows (`row_stride`
    // apart), row t at position pos0 + t.
    virtual void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim,
                      int64_t pos0, const RopeParams& p) = 0;
    // Stores rows k[t] and v[t] at positions pos0 + t of `kv`.
    virtual void kv_store(const KvLayer& kv, int64_t pos0, int64_t n_tok, const float* k,
                          const float* v) = 0;
    // out[t] = softmax(scale * q[t] . K^T + mask) V over positions [first, pos0 + t].
    virtual void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
                           const AttentionParams& p, float* out) = 0;
    // out[i] = act(gate[i], up[i]).
    virtual void glu(Activation act, const float* gate, const float* up, int64_t n, float* out) = 0;
    // out[i] = x[rows[i]] for i < n (rows of `width`).
    virtual void gather_rows(const float* x, int64_t width, const int32_t* rows, int64_t n,
                             float* out) = 0;
    // out[rows[i]] += weights[i] * y[i] for i < n; `rows` holds no row twice.
    virtual void scatter_add(float* out, int64_t width, const float* y, const int32_t* rows,
                             const float* weights, int64_t n) = 0;
};

// The CPU backend: "device" memory is host memory, the ops are the CPU kernels
// run on `pool`'s threads.
std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool);

// CUDA: whether this build has the backend, how many devices it finds (0 without
// the backend, a driver or a device), and one backend per device. `cuda_status`
// says why there are none ("built without CUDA", the driver's error).
bool cuda_built();
int cuda_device_count();
std::string cuda_status();
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace strata::ops
