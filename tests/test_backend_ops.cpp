// Every op of the backend interface (ops/backend.h) on every backend this machine
// has — "cpu" always, "cuda:0" when a CUDA device is present — against the CPU
// kernels on random inputs. The CPU instance checks that the CPU backend is the
// plain kernels; the CUDA instance checks the GPU kernels. Where a result can
// differ from the CPU's, the tolerance says by how much and why; where both sides
// do the same roundings (adds, copies, the F16 KV store), results must be equal.
//
// Without a device the CUDA instance is not instantiated, and
// BackendOpsCuda.DevicePresent is reported as skipped with cuda_status() as the
// reason, so a run shows plainly that no GPU kernel was tested.

#include "ops/backend.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"
#include "random_blocks.h"
#include "tensor/fp16.h"
#include "tensor/view.h"
#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace strata {
namespace {

using test::dequantize;
using test::kDotTypes;
using test::random_floats;
using test::random_row;

std::vector<std::string> backend_names() {
    std::vector<std::string> names{"cpu"};
    if (ops::cuda_device_count() > 0) names.push_back("cuda:0");
    return names;
}

class BackendOps : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        b_ = GetParam() == "cpu" ? ops::make_cpu_backend(pool_) : ops::make_cuda_backend(0);
        ASSERT_NE(b_, nullptr) << GetParam();
    }
    void TearDown() override {
        if (!b_) return;
        b_->sync();
        for (void* p : bufs_) b_->release(p);
    }

    // A device copy of `h` (uploaded and synced, so `h` may change afterwards).
    template <typename T>
    T* put(const std::vector<T>& h) {
        T* p = alloc<T>(h.size());
        b_->upload(p, h.data(), h.size() * sizeof(T));
        b_->sync();
        return p;
    }
    template <typename T>
    T* alloc(size_t n) {
        void* p = b_->alloc(std::max<size_t>(n, 1) * sizeof(T));
        EXPECT_NE(p, nullptr);
        bufs_.push_back(p);
        return static_cast<T*>(p);
    }
    template <typename T>
    std::vector<T> get(const T* p, size_t n) {
        std::vector<T> h(n);
        b_->download(h.data(), p, n * sizeof(T));
        b_->sync();
        return h;
    }

    ThreadPool pool_{2};
    std::unique_ptr<ops::Backend> b_;
    std::vector<void*> bufs_;
};

// Float bits, so "equal" means identical, NaN and signed zero included.
std::vector<uint32_t> bits(const std::vector<float>& v) {
    std::vector<uint32_t> out(v.size());
    std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
    return out;
}

TEST_P(BackendOps, InfoNamesTheBackend) {
    const ops::DeviceInfo d = b_->info();
    EXPECT_EQ(d.backend, GetParam().substr(0, GetParam().find(':')));
    EXPECT_FALSE(d.name.empty());
}

TEST_P(BackendOps, SupportsEveryTypeWithACpuKernelAndNotOthers) {
    for (TensorType t : kDotTypes) EXPECT_TRUE(b_->supports(t)) << type_name(t);
    // No kernel anywhere for these: the caller must keep them on the CPU (or fail).
    EXPECT_FALSE(b_->supports(TensorType::IQ2_XXS));
    EXPECT_FALSE(b_->supports(TensorType::I32));
}

// Matmul: both backends quantise the activations into the weight type's format
// with the same rounding and sum exact integer products per block, scaled by the
// same float operations; they differ only in the order the per-block floats are
// added. For m terms summed in any order the error is at most (m - 1) * 2^-24 of
// the sum of |terms| (a shuffle tree has fewer roundings than that), so two sums
// differ by at most 2 m 2^-24 of it; the CPU's SIMD tables add 1e-5 of it at most
// against the scalar one (DotKernels.EverySimdTableMatchesTheScalarOne). A single
// wrong code changes the result by about 1 / n_in of the magnitude (2e-3 here),
// far above the bound.
TEST_P(BackendOps, MatmulMatchesTheCpuKernelsForEveryWeightType) {
    std::mt19937 rng(7);
    const int64_t n_in = 512, n_rows = 37;  // 37: not a multiple of any kernel's row tile
    for (TensorType t : kDotTypes) {
        std::vector<uint8_t> w;
        for (int64_t r = 0; r < n_rows; ++r) {
            const auto row = random_row(t, n_in, rng);
            w.insert(w.end(), row.begin(), row.end());
        }
        const size_t row_bytes = w.size() / n_rows;
        const auto wf = dequantize(t, w.data(), n_in * n_rows);
        for (int64_t n_tok : {1, 5}) {
            const auto x = random_floats(n_in * n_tok, rng);
            TensorView v;
            v.type = t;
            v.ne = {n_in, n_rows, 1, 1};
            v.row_bytes = row_bytes;
            v.data = w.data();
            std::vector<float> want(static_cast<size_t>(n_rows * n_tok));
            ops::matmul(v, 0, n_rows, x.data(), n_in, n_tok, want.data(), n_rows, pool_);

            ops::Matrix m{.type = t, .n_in = n_in, .n_rows = n_rows, .row_bytes = row_bytes,
                          .data = put(w)};
            float* y = alloc<float>(want.size());
            b_->matmul(m, put(x), n_tok, y);
            const auto got = get(y, want.size());

            const int64_t terms = n_in / type_traits(t).block_size;
            const double rel = 1e-5 + 2.0 * static_cast<double>(terms) * 0x1p-24;
            for (int64_t tok = 0; tok < n_tok; ++tok) {
                // The activations as the kernels see them (quantised, then decoded).
                ops::PackedActs a;
                ops::pack_acts(t, x.data() + tok * n_in, n_in, n_in, 1, a, nullptr, ops::scalar_dot_kernels());
                const auto af = a.type == TensorType::F32 ? std::vector<float>(x.begin() + tok * n_in,
                                                                              x.begin() + (tok + 1) * n_in)
                                                          : dequantize(a.type, a.data.data(), n_in);
                for (int64_t r = 0; r < n_rows; ++r) {
                    double magnitude = 0;
                    for (int64_t i = 0; i < n_in; ++i)
                        magnitude += std::fabs(double{wf[r * n_in + i]} * af[i]);
                    const size_t k = static_cast<size_t>(tok * n_rows + r);
                    ASSERT_NEAR(got[k], want[k], rel * magnitude)
                        << type_name(t) << " row " << r << " token " << tok << " of " << n_tok;
                }
            }
        }
    }
}

// Matrix::rows (one expert of a stack) addresses the right bytes.
TEST_P(BackendOps, MatmulOnARowRangeEqualsThoseRowsOfTheWhole) {
    std::mt19937 rng(8);
    const int64_t n_in = 256, n_rows = 12;
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < n_rows; ++r) {
        const auto row = random_row(TensorType::Q4_K, n_in, rng);
        w.insert(w.end(), row.begin(), row.end());
    }
    const auto x = random_floats(n_in, rng);
    ops::Matrix m{.type = TensorType::Q4_K, .n_in = n_in, .n_rows = n_rows,
                  .row_bytes = w.size() / n_rows, .data = put(w)};
    float* dx = put(x);
    float* all = alloc<float>(n_rows);
    float* part = alloc<float>(5);
    b_->matmul(m, dx, 1, all);
    b_->matmul(m.rows(4, 5), dx, 1, part);
    const auto a = get(all, n_rows), p = get(part, 5);
    // Same kernel, same bytes, same activations: identical results.
    for (int i = 0; i < 5; ++i) EXPECT_EQ(p[i], a[4 + i]) << i;
}

// Plain float adds and copies: the same single rounding on both sides.
TEST_P(BackendOps, AddBiasAddZeroGatherScatterAreExact) {
    std::mt19937 rng(9);
    const int64_t rows = 6, width = 300;
    const auto y0 = random_floats(rows * width, rng), b = random_floats(width, rng);
    const auto x = random_floats(rows * width, rng);

    float* y = put(y0);
    b_->add_bias(y, put(b), rows, width);
    auto want = y0;
    for (int64_t t = 0; t < rows; ++t)
        for (int64_t i = 0; i < width; ++i) want[t * width + i] += b[i];
    EXPECT_EQ(bits(get(y, want.size())), bits(want));

    b_->add(y, put(x), rows * width);
    for (size_t i = 0; i < want.size(); ++i) want[i] += x[i];
    EXPECT_EQ(bits(get(y, want.size())), bits(want));

    b_->zero(y, rows * width);
    EXPECT_EQ(get(y, want.size()), std::vector<float>(want.size(), 0.0f));

    const std::vector<int32_t> idx{4, 0, 5, 2};
    float* g = alloc<float>(idx.size() * width);
    b_->gather_rows(put(x), width, put(idx), static_cast<int64_t>(idx.size()), g);
    const auto gathered = get(g, idx.size() * width);
    for (size_t i = 0; i < idx.size(); ++i)
        for (int64_t c = 0; c < width; ++c)
            ASSERT_EQ(gathered[i * width + c], x[idx[i] * width + c]) << i << "," << c;

    const auto out0 = random_floats(rows * width, rng);
    const auto yy = random_floats(static_cast<int64_t>(idx.size()) * width, rng);
    const std::vector<float> weights{0.25f, -1.5f, 0.7f, 3.0f};
    float* out = put(out0);
    b_->scatter_add(out, width, put(yy), put(idx), put(weights), static_cast<int64_t>(idx.size()));
    auto want_out = out0;
    for (size_t i = 0; i < idx.size(); ++i)
        for (int64_t c = 0; c < width; ++c) want_out[idx[i] * width + c] += weights[i] * yy[i * width + c];
    EXPECT_EQ(bits(get(out, want_out.size())), bits(want_out));
}

// Norms: the sums are in double on both sides (only their order differs, ~1e-16
// relative), so the float scale agrees or differs by one rounding; each output is
// then x * scale * w (+ b), a few ulp at most: 1e-6 relative (16 ulp) is ample,
// while a wrong mean, variance or epsilon moves outputs by far more.
TEST_P(BackendOps, RmsNormAndLayerNormMatchTheCpuKernels) {
    std::mt19937 rng(10);
    const int64_t rows = 3, width = 1000;  // 1000: not a multiple of a block of threads
    const auto x = random_floats(rows * width, rng, 2.0f);
    const auto w = random_floats(width, rng), b = random_floats(width, rng);
    const float eps = 1e-5f;
    for (bool with_w : {false, true}) {
        for (bool with_b : {false, true}) {
            for (bool layer : {false, true}) {
                std::vector<float> want(x.size());
                for (int64_t t = 0; t < rows; ++t) {
                    const float* xr = x.data() + t * width;
                    float* o = want.data() + t * width;
                    if (layer) {
                        ops::layer_norm(xr, width, with_w ? w.data() : nullptr,
                                        with_b ? b.data() : nullptr, eps, o);
                    } else {
                        ops::rms_norm(xr, width, with_w ? w.data() : nullptr, eps, o);
                        if (with_b)
                            for (int64_t i = 0; i < width; ++i) o[i] += b[i];
                    }
                }
                float* out = alloc<float>(x.size());
                const float* dw = with_w ? put(w) : nullptr;
                const float* db = with_b ? put(b) : nullptr;
                if (layer) {
                    b_->layer_norm(put(x), rows, width, dw, db, eps, out);
                } else {
                    b_->rms_norm(put(x), rows, width, dw, db, eps, out);
                }
                const auto got = get(out, x.size());
                for (size_t i = 0; i < got.size(); ++i)
                    ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-30)
                        << (layer ? "layer" : "rms") << " w=" << with_w << " b=" << with_b << " i=" << i;
            }
        }
    }
}

// RoPE: every variant (adjacent pairs, NeoX halves, partial rotation, YaRN) at
// small and large positions. The angles are the same float products on both
// sides; cosf/sinf may differ by 2 ulp (CUDA's documented bound; glibc's are
// within 1), which moves each output by at most 3 * 2^-24 * mscale * (|x0| + |x1|)
// and a bit more for the products: 1e-6 * mscale * (|x0| + |x1|) covers it. Elements
// past n_rot and the gap between rows must be untouched.
TEST_P(BackendOps, RopeMatchesTheCpuKernelForEveryVariant) {
    std::mt19937 rng(11);
    const int n_heads = 4, head_dim = 64;
    const int64_t n_tok = 3, row_stride = n_heads * head_dim + 8;
    struct Case {
        const char* name;
        ops::RopeParams p;
        int64_t pos0;
    };
    const Case cases[] = {
        {"norm", {.kind = ops::RopeKind::Norm, .n_rot = 64}, 0},
        {"neox", {.kind = ops::RopeKind::Neox, .n_rot = 64, .freq_base = 500000.0f}, 7},
        {"neox partial", {.kind = ops::RopeKind::Neox, .n_rot = 32}, 100},
        {"norm partial far", {.kind = ops::RopeKind::Norm, .n_rot = 16}, 30000},
        {"yarn",
         {.kind = ops::RopeKind::Neox, .n_rot = 64, .freq_base = 150000.0f, .freq_scale = 1.0f / 32,
          .ext_factor = 1.0f, .attn_factor = 1.0f, .beta_fast = 32.0f, .beta_slow = 1.0f,
          .n_ctx_orig = 4096},
         5000},
    };
    for (const Case& c : cases) {
        const auto x = random_floats(n_tok * row_stride, rng);
        auto want = x;
        ops::rope(want.data(), n_tok, row_stride, n_heads, head_dim, c.pos0, c.p);
        float* dx = put(x);
        b_->rope(dx, n_tok, row_stride, n_heads, head_dim, c.pos0, c.p);
        const auto got = get(dx, x.size());
        const float mscale = c.p.ext_factor != 0.0f ? 1.0f + 0.1f * std::log(1.0f / c.p.freq_scale) : 1.0f;
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t i = 0; i < row_stride; ++i) {
                const int64_t k = t * row_stride + i;
                const int h = static_cast<int>(i / head_dim), d = static_cast<int>(i % head_dim);
                if (h >= n_heads || d >= c.p.n_rot) {
                    ASSERT_EQ(got[k], x[k]) << c.name << " untouched element " << i;
                    continue;
                }
                // The partner of element d in its rotation pair.
                const int half = c.p.n_rot / 2;
                const int partner = c.p.kind == ops::RopeKind::Norm ? (d ^ 1) : (d < half ? d + half : d - half);
                const float pair = std::fabs(x[k]) + std::fabs(x[t * row_stride + h * head_dim + partner]);
                ASSERT_NEAR(got[k], want[k], 1e-6 * mscale * pair + 1e-30)
                    << c.name << " token " << t << " head " << h << " dim " << d;
            }
        }
    }
}

// The KV store: F16 conversion is bit-exact on both sides (the device ports the
// host's rounding), F32 is a copy; positions outside [pos0, pos0 + n_tok) keep
// their bytes.
TEST_P(BackendOps, KvStoreWritesTheSameBitsForBothCacheTypes) {
    std::mt19937 rng(12);
    const int64_t k_width = 40, v_width = 24, n_pos = 8, pos0 = 3, n_tok = 4;
    for (bool f16 : {true, false}) {
        const size_t elem = f16 ? 2 : 4;
        std::vector<uint8_t> kc0(n_pos * k_width * elem), vc0(n_pos * v_width * elem);
        for (auto& c : kc0) c = static_cast<uint8_t>(rng());
        for (auto& c : vc0) c = static_cast<uint8_t>(rng());
        // Values across the half range, a subnormal and an overflow included.
        auto k = random_floats(n_tok * k_width, rng, 100.0f);
        const auto v = random_floats(n_tok * v_width, rng);
        k[0] = 3e-6f;
        k[1] = 70000.0f;
        auto kc = kc0, vc = vc0;
        ops::KvLayer host{.k = kc.data(), .v = vc.data(), .f16 = f16, .k_width = k_width, .v_width = v_width};
        for (int64_t t = 0; t < n_tok; ++t)
            ops::kv_store(host, pos0 + t, k.data() + t * k_width, v.data() + t * v_width);

        ops::KvLayer dev{.k = put(kc0), .v = put(vc0), .f16 = f16, .k_width = k_width, .v_width = v_width};
        b_->kv_store(dev, pos0, n_tok, put(k), put(v));
        EXPECT_EQ(get(static_cast<uint8_t*>(dev.k), kc.size()), kc) << (f16 ? "F16" : "F32");
        EXPECT_EQ(get(static_cast<uint8_t*>(dev.v), vc.size()), vc) << (f16 ? "F16" : "F32");
    }
}

// Attention with GQA (8 query heads on 2 KV heads), keys and values of different
// widths, with and without a sliding window and sinks, over both cache types.
// Scores differ from the CPU's by the order of a 64- or 96-term float dot
// (at most ~100 * 2^-24 of sum |q k| * scale, about 3e-5 here); softmax weights
// then move by that relative amount and expf by 2 ulp, so each output, a convex
// combination of value rows, is within 1e-4 * max |v| of the CPU's. Masking one
// position too many or too few, a wrong KV head or a lost sink moves outputs by
// several percent of max |v|.
TEST_P(BackendOps, AttentionMatchesTheCpuKernelWithGqaWindowAndSinks) {
    std::mt19937 rng(13);
    const int n_head = 8, n_head_kv = 2;
    const int64_t n_pos = 13, n_tok = 4, pos0 = 9;  // tokens at positions 9..12
    const std::vector<float> sinks = random_floats(n_head, rng, 2.0f);
    for (bool f16 : {true, false}) {
        for (int dk : {64, 96}) {
            const int dv = 64;
            const int64_t k_width = int64_t{n_head_kv} * dk, v_width = int64_t{n_head_kv} * dv;
            const size_t elem = f16 ? 2 : 4;
            std::vector<uint8_t> kc(n_pos * k_width * elem), vc(n_pos * v_width * elem);
            ops::KvLayer host{.k = kc.data(), .v = vc.data(), .f16 = f16, .k_width = k_width, .v_width = v_width};
            const auto ks = random_floats(n_pos * k_width, rng), vs = random_floats(n_pos * v_width, rng);
            for (int64_t p = 0; p < n_pos; ++p)
                ops::kv_store(host, p, ks.data() + p * k_width, vs.data() + p * v_width);
            float vmax = 0;
            for (float x : vs) vmax = std::max(vmax, std::fabs(x));
            const auto q = random_floats(n_tok * n_head * dk, rng);

            ops::KvLayer dev{.k = put(kc), .v = put(vc), .f16 = f16, .k_width = k_width, .v_width = v_width};
            const float* dq = put(q);
            const float* dsinks = put(sinks);
            for (int64_t window : {int64_t{0}, int64_t{5}}) {
                for (bool with_sinks : {false, true}) {
                    ops::AttentionParams p{.n_head = n_head, .n_head_kv = n_head_kv, .head_dim_k = dk,
                                           .head_dim_v = dv, .scale = 1.0f / std::sqrt(static_cast<float>(dk)),
                                           .window = window, .sinks = with_sinks ? sinks.data() : nullptr};
                    std::vector<float> want(n_tok * n_head * dv);
                    ops::attention(q.data(), n_tok, pos0, host, p, want.data(), pool_);
                    p.sinks = with_sinks ? dsinks : nullptr;
                    float* out = alloc<float>(want.size());
                    b_->attention(dq, n_tok, pos0, dev, p, out);
                    const auto got = get(out, want.size());
                    for (size_t i = 0; i < want.size(); ++i)
                        ASSERT_NEAR(got[i], want[i], 1e-4 * vmax)
                            << (f16 ? "F16" : "F32") << " dk=" << dk << " window=" << window
                            << " sinks=" << with_sinks << " i=" << i;
                }
            }
        }
    }
}

// The gated activations: the only inexact step is expf (2 ulp on CUDA, 1 in
// glibc), inside 1 + exp(..), which the division and the product carry through
// as a relative error: 1e-6 relative (16 ulp) bounds it. A sigma of 4 puts many
// inputs past gpt-oss's clamps at +-7.
TEST_P(BackendOps, GluMatchesTheCpuKernelForEachActivation) {
    std::mt19937 rng(14);
    const int64_t n = 1000;
    const auto gate = random_floats(n, rng, 4.0f), up = random_floats(n, rng, 4.0f);
    for (ops::Activation act : {ops::Activation::SwiGlu, ops::Activation::SwiGluOai}) {
        float* out = alloc<float>(n);
        b_->glu(act, put(gate), put(up), n, out);
        const auto got = get(out, n);
        for (int64_t i = 0; i < n; ++i) {
            const float want = ops::glu(act, gate[i], up[i]);
            ASSERT_NEAR(got[i], want, 1e-6 * std::fabs(want) + 1e-30)
                << (act == ops::Activation::SwiGlu ? "SwiGLU" : "SwiGLU-OAI") << " i=" << i;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Available, BackendOps, ::testing::ValuesIn(backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                             std::string s = info.param;
                             s.erase(std::remove(s.begin(), s.end(), ':'), s.end());
                             return s;
                         });

// Visible in every run: skipped, with the reason, where no device is present.
TEST(BackendOpsCuda, DevicePresent) {
    if (ops::cuda_device_count() == 0) GTEST_SKIP() << ops::cuda_status();
    auto b = ops::make_cuda_backend(0);
    ASSERT_NE(b, nullptr);
    const ops::DeviceInfo d = b->info();
    EXPECT_EQ(d.backend, "cuda");
    EXPECT_GT(d.total_bytes, 0u);
    // A round trip through device memory and pinned host memory.
    auto* host = static_cast<float*>(b->alloc_host(4 * sizeof(float)));
    ASSERT_NE(host, nullptr);
    for (int i = 0; i < 4; ++i) host[i] = static_cast<float>(i) + 0.5f;
    void* dev = b->alloc(4 * sizeof(float));
    ASSERT_NE(dev, nullptr);
    float back[4] = {};
    b->upload(dev, host, 4 * sizeof(float));
    b->download(back, dev, 4 * sizeof(float));
    b->sync();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(back[i], host[i]);
    b->release(dev);
    b->release_host(host);
}

// With no device (or no CUDA in the build) there is no backend and the status
// says why, so `strata devices` and the skip above have a reason to show.
TEST(BackendOpsCuda, NoDeviceMeansNoBackendAndAReason) {
    if (ops::cuda_device_count() > 0) GTEST_SKIP() << "a device is present: " << ops::cuda_status();
    EXPECT_EQ(ops::make_cuda_backend(0), nullptr);
    const std::string status = ops::cuda_status();
    EXPECT_FALSE(status.empty());
    const char* why = ops::cuda_built() ? "no CUDA device" : "without CUDA";
    EXPECT_NE(status.find(why), std::string::npos) << status;
}

}  // namespace
}  // namespace strata
