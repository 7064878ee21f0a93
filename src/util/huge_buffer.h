#pragma once
// Anonymous memory for weights copied out of the file's mapping, asked to be
// backed by transparent huge pages. Decode streams every weight byte once per
// token; through 4 KiB pages of the page cache that is a TLB miss every 64
// cache lines and a hardware prefetcher that stops at each page's end, which
// cost 5-23% of the read rate on Zen 4 depending on the machine's load, and
// Qwen3 decode about 13% of its speed (see bench/README.md). 2 MiB
// pages remove both. Where the kernel grants no huge pages (THP off) the buffer
// is ordinary memory and works the same.

#include "util/result.h"

#include <cstddef>
#include <cstdint>

namespace strata {

class HugeBuffer {
  public:
    // `bytes` of zeroed memory, 2 MiB aligned; an error naming the size when the
    // system refuses it.
    static Result<HugeBuffer> allocate(size_t bytes);

    HugeBuffer() = default;
    HugeBuffer(HugeBuffer&& o) noexcept;
    HugeBuffer& operator=(HugeBuffer&& o) noexcept;
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    ~HugeBuffer();

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    void release();
    void* map_ = nullptr;  // what mmap returned (before alignment)
    size_t map_bytes_ = 0;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace strata
