#include "util/huge_buffer.h"

#include "util/format.h"

#include <sys/mman.h>

#include <utility>

namespace strata {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

Result<HugeBuffer> HugeBuffer::allocate(size_t bytes) {
    HugeBuffer b;
    if (bytes == 0) return b;
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    // One huge page more than asked, so the start can be aligned to one.
    b.map_bytes_ = rounded + kHugePage;
    b.map_ =
        ::mmap(nullptr, b.map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b.map_ == MAP_FAILED) {
        b.map_ = nullptr;
        return err("cannot allocate {} of memory", format_bytes(bytes));
    }
    const auto addr = reinterpret_cast<uintptr_t>(b.map_);
    b.data_ = reinterpret_cast<uint8_t*>((addr + kHugePage - 1) / kHugePage * kHugePage);
    b.size_ = bytes;
    // Before the first touch, so pages are huge from the start. Advice only: an
    // error (THP not built in) leaves ordinary pages.
    ::madvise(b.data_, rounded, MADV_HUGEPAGE);
    return b;
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept {
    *this = std::move(o);
}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
    if (this != &o) {
        release();
        map_ = std::exchange(o.map_, nullptr);
        map_bytes_ = std::exchange(o.map_bytes_, 0);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

HugeBuffer::~HugeBuffer() {
    release();
}

void HugeBuffer::release() {
    if (map_) ::munmap(map_, map_bytes_);
    map_ = nullptr;
    data_ = nullptr;
    size_ = map_bytes_ = 0;
}

}  // namespace strata
