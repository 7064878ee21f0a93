// The CUDA entry points of a build without the CUDA backend (-DSTRATA_CUDA=OFF, or
// AUTO where CMake found no CUDA compiler): no devices, and a status that says why.
#include "ops/backend.h"

namespace strata::ops {

bool cuda_built() {
    return false;
}
int cuda_device_count() {
    return 0;
}
std::string cuda_status() {
    return "built without CUDA (configured with -DSTRATA_CUDA=OFF, or no nvcc was found)";
}
std::unique_ptr<Backend> make_cuda_backend(int /*device*/) {
    return nullptr;
}

}  // namespace strata::ops
