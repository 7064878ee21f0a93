#include "placement/expert_cache.h"

#include "util/check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace strata {

void ExpertCache::evict_for(uint64_t n_bytes) {
    // Oldest first; slices someone still holds (an expert that is running) stay.
    for (auto it = lru_.end(); it != lru_.begin() && stats_.resident_bytes + n_bytes > capacity_;) {
        --it;
        auto e = entries_.find(*it);
        if (e->second.bytes.use_count() > 1) continue;
        stats_.resident_bytes -= e->second.size;
        stats_.evictions += 1;
        entries_.erase(e);
        it = lru_.erase(it);
    }
}

Result<ExpertBytes> ExpertCache::get(uint64_t key, int fd, uint64_t offset, uint64_t n_bytes,
                                     const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
        stats_.hits += 1;
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return ExpertBytes{.data = it->second.bytes.get(), .hold = it->second.bytes};
    }
    stats_.misses += 1;
    evict_for(n_bytes);
    std::shared_ptr<uint8_t[]> buf(new uint8_t[n_bytes]);
    for (uint64_t done = 0; done < n_bytes;) {
        const ssize_t n = ::pread(fd, buf.get() + done, n_bytes - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            stats_.read_errors += 1;
            return err("{}: cannot read {} bytes at offset {} of the model file: {}", what, n_bytes, offset,
                       n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened");
        }
        done += static_cast<uint64_t>(n);
    }
    // The slice now lives in the cache; the page cache's copy would only double it.
    ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(n_bytes), POSIX_FADV_DONTNEED);
    stats_.bytes_read += n_bytes;
    stats_.resident_bytes += n_bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.resident_bytes);
    lru_.push_front(key);
    entries_[key] = Entry{.bytes = buf, .size = n_bytes, .lru = lru_.begin()};
    return ExpertBytes{.data = buf.get(), .hold = buf};
}

ExpertCacheStats ExpertCache::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    ExpertCacheStats s = stats_;
    s.capacity = capacity_;
    return s;
}

void ExpertCache::record_error(std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = std::move(message);
}

std::string ExpertCache::take_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(error_, std::string());
}

ExpertBytes TieredExperts::expert(int64_t e) const {
    CHECK(e >= 0 && static_cast<size_t>(e) < p_.tiers.size(), "expert index within the stacked tensor");
    const uint64_t off = static_cast<uint64_t>(e) * p_.expert_bytes;
    if (p_.tiers[static_cast<size_t>(e)] != Tier::Disk) return ExpertBytes{.data = p_.mapped + off};
    auto r = p_.cache->get(p_.key_base + static_cast<uint64_t>(e), p_.fd, p_.file_offset + off, p_.expert_bytes,
                           p_.name);
    if (r) return std::move(*r);
    // Zeros keep the pass finite; the error is returned for this request.
    std::shared_ptr<uint8_t[]> zeros(new uint8_t[p_.expert_bytes]());
    p_.cache->record_error(r.error().message);
    return ExpertBytes{.data = zeros.get(), .hold = zeros};
}

}  // namespace strata
