// The CUDA backend (ops/backend.h): device memory from cudaMalloc, one stream per
// backend on which every op is enqueued in call order, and the kernels of this
// folder. Arguments are checked here, on the host, before anything is enqueued, so
// a kernel can assume its shapes; every runtime error becomes a std::runtime_error
// naming the call.
#include "ops/backend.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/kernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace strata::ops {

namespace {

using cuda::check_launch;

void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("CUDA backend: ") + what);
}

class CudaBackend final : public Backend {
  public:
    explicit CudaBackend(int device) : device_(device) {
        STRATA_CUDA_CHECK(cudaSetDevice(device_));
        STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }

    ~CudaBackend() override {
        // Destructors must not throw: errors here (a lost device) are ignored, the
        // memory goes with the context anyway.
        cudaSetDevice(device_);
        if (stream_) cudaStreamSynchronize(stream_);
        if (scratch_) cudaFree(scratch_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    DeviceInfo info() const override {
        activate();
        cudaDeviceProp prop{};
        STRATA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
        size_t free_b = 0, total_b = 0;
        STRATA_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        int driver = 0;
        cudaDriverGetVersion(&driver);
        DeviceInfo d;
        d.backend = "cuda";
        d.name = prop.name;
        d.index = device_;
        d.total_bytes = total_b;
        d.free_bytes = free_b;
        d.detail = "compute capability " + std::to_string(prop.major) + "." +
                   std::to_string(prop.minor) + ", driver " + std::to_string(driver / 1000) +
                   "." + std::to_string(driver % 1000 / 10);
        return d;
    }

    bool supports(TensorType weight) const override { return cuda::matmul_supports(weight); }

    void* alloc(size_t bytes) override {
        activate();
        void* p = nullptr;
        const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1));
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear the last error, or the next launch check reports it
            return nullptr;
        }
        STRATA_CUDA_CHECK(e);
        return p;
    }
    void release(void* p) override {
        if (!p) return;
        activate();
        STRATA_CUDA_CHECK(cudaFree(p));
    }
    void* alloc_host(size_t bytes) override {
        activate();
        void* p = nullptr;
        const cudaError_t e = cudaMallocHost(&p, std::max<size_t>(bytes, 1));
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            return nullptr;
        }
        STRATA_CUDA_CHECK(e);
        return p;
    }
    void release_host(void* p) override {
        if (!p) return;
        activate();
        STRATA_CUDA_CHECK(cudaFreeHost(p));
    }
    void upload(void* dst, const void* src, size_t bytes) override {
        activate();
        STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    }
    void download(void* dst, const void* src, size_t bytes) override {
        activate();
        STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    }
    void sync() override {
        activate();
        STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    void matmul(const Matrix& w, const float* x, int64_t n_tok, float* y) override {
        require(supports(w.type), "matmul: weight type without a CUDA kernel");
        require(w.n_in > 0 && w.n_rows >= 0 && n_tok >= 0, "matmul: negative shape");
        const TypeTraits& tt = type_traits(w.type);
        require(w.n_in % tt.block_size == 0, "matmul: rows are not whole blocks");
        require(w.row_bytes >= static_cast<size_t>(w.n_in / tt.block_size) * tt.type_size,
                "matmul: row_bytes shorter than a row");
        if (w.n_rows == 0 || n_tok == 0) return;
        activate();
        void* scratch = scratch_for(cuda::matmul_scratch_bytes(w.type, w.n_in, n_tok));
        cuda::matmul(w, x, n_tok, y, scratch, stream_);
    }

    void add_bias(float* y, const float* b, int64_t n_rows, int64_t width) override {
        if (n_rows <= 0 || width <= 0) return;
        activate();
        cuda::add_bias(y, b, n_rows, width, stream_);
    }
    void add(float* y, const float* x, int64_t n) override {
        if (n <= 0) return;
        activate();
        cuda::add(y, x, n, stream_);
    }
    void zero(float* y, int64_t n) override {
        if (n <= 0) return;
        activate();
        STRATA_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(n) * sizeof(float), stream_));
    }
    void rms_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                  float eps, float* out) override {
        if (n_rows <= 0 || width <= 0) return;
        activate();
        cuda::rms_norm(x, n_rows, width, w, b, eps, out, stream_);
    }
    void layer_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                    float eps, float* out) override {
        if (n_rows <= 0 || width <= 0) return;
        activate();
        cuda::layer_norm(x, n_rows, width, w, b, eps, out, stream_);
    }
    void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim,
              int64_t pos0, const RopeParams& p) override {
        require(p.n_rot > 0 && p.n_rot <= head_dim && p.n_rot % 2 == 0,
                "rope: rotary dims do not fit the head");
        if (n_tok <= 0 || n_heads <= 0) return;
        activate();
        cuda::rope(x, n_tok, row_stride, n_heads, head_dim, pos0, p, stream_);
    }
    void kv_store(const KvLayer& kv, int64_t pos0, int64_t n_tok, const float* k,
                  const float* v) override {
        if (n_tok <= 0) return;
        activate();
        cuda::kv_store(kv, pos0, n_tok, k, v, stream_);
    }
    void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
                   const AttentionParams& p, float* out) override {
        require(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0,
                "attention: query heads are not a multiple of the KV heads");
        require(p.head_dim_k > 0 && p.head_dim_v > 0 && p.head_dim_v <= cuda::kMaxHeadDimV,
                "attention: head size out of the kernel's range");
        require(pos0 >= 0, "attention: negative position");
        if (n_tok <= 0) return;
        activate();
        cuda::attention(q, n_tok, pos0, kv, p, out, stream_);
    }
    void glu(Activation act, const float* gate, const float* up, int64_t n, float* out) override {
        if (n <= 0) return;
        activate();
        cuda::glu(act, gate, up, n, out, stream_);
    }
    void gather_rows(const float* x, int64_t width, const int32_t* rows, int64_t n,
                     float* out) override {
        if (n <= 0 || width <= 0) return;
        activate();
        cuda::gather_rows(x, width, rows, n, out, stream_);
    }
    void scatter_add(float* out, int64_t width, const float* y, const int32_t* rows,
                     const float* weights, int64_t n) override {
        if (n <= 0 || width <= 0) return;
        activate();
        cuda::scatter_add(out, width, y, rows, weights, n, stream_);
    }

  private:
    // The runtime's current device is per host thread; every entry point makes it
    // this backend's, so backends of several devices can share a thread.
    void activate() const { STRATA_CUDA_CHECK(cudaSetDevice(device_)); }

    // Scratch for the quantised activations of matmul, grown on demand. Growing
    // waits for the stream first: a kernel enqueued earlier may still read the old
    // buffer.
    void* scratch_for(size_t bytes) {
        if (bytes <= scratch_bytes_) return scratch_;
        STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (scratch_) STRATA_CUDA_CHECK(cudaFree(scratch_));
        scratch_ = nullptr;
        scratch_bytes_ = 0;
        STRATA_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
        scratch_bytes_ = bytes;
        return scratch_;
    }

    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    void* scratch_ = nullptr;
    size_t scratch_bytes_ = 0;
};

}  // namespace

bool cuda_built() {
    return true;
}

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

std::string cuda_status() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return std::string("no CUDA device: ") + cudaGetErrorString(e);
    }
    if (n == 0) return "no CUDA device: the driver reports none";
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    return std::to_string(n) + " CUDA device(s), runtime " + std::to_string(runtime) +
           ", driver " + std::to_string(driver);
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
    if (device < 0 || device >= cuda_device_count()) return nullptr;
    return std::make_unique<CudaBackend>(device);
}

}  // namespace strata::ops
