#include "placement/expert_cache.h"

#include "util/check.h"
#include "util/format.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

namespace strata {

namespace {

// The fewest requests a score takes to halve: below this, frequency would count
// for nothing against recency.
constexpr double kMinHalfLife = 16;

// Reads a slice into `dst` with `pread`, then drops its pages from the page cache:
// the slice now lives in the expert cache, and the page cache's copy would only
// double it.
Status read_slice(const SliceRef& ref, uint8_t* dst) {
    for (uint64_t done = 0; done < ref.n_bytes;) {
        const ssize_t n = ::pread(ref.fd, dst + done, ref.n_bytes - done, static_cast<off_t>(ref.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return err("{}", n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened");
        done += static_cast<uint64_t>(n);
    }
    ::posix_fadvise(ref.fd, static_cast<off_t>(ref.offset), static_cast<off_t>(ref.n_bytes), POSIX_FADV_DONTNEED);
    return {};
}

}  // namespace

ExpertCache::ExpertCache(uint64_t capacity_bytes, int n_layer, int n_expert, int io_threads)
    : capacity_(capacity_bytes), n_layer_(std::max(n_layer, 0)), n_expert_(std::max(n_expert, 0)),
      per_expert_(static_cast<size_t>(n_layer_) * static_cast<size_t>(n_expert_)) {
    for (int i = 0; i < io_threads; ++i) io_.emplace_back([this] { io_loop(); });
}

ExpertCache::~ExpertCache() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : io_) t.join();
}

ExpertSliceStats* ExpertCache::slot(int layer, int expert) {
    static thread_local ExpertSliceStats ignored;
    if (layer < 0 || expert < 0 || layer >= n_layer_ || expert >= n_expert_) return &ignored;
    return &per_expert_[static_cast<size_t>(layer) * static_cast<size_t>(n_expert_) + static_cast<size_t>(expert)];
}

double ExpertCache::rank(const Entry& e) const { return e.log_score + static_cast<double>(e.last) / half_life_; }

void ExpertCache::touch(uint64_t key, Entry& e, bool counted) {
    order_.erase({rank(e), key});
    // score(now) = score(last) * 2^-((now - last) / half_life) + 1, kept as a log.
    // A prefetched slice's arrival already counted as its first use.
    const double decayed = e.log_score - static_cast<double>(clock_ - e.last) / half_life_;
    e.log_score = counted ? std::max(decayed, 0.0) : std::log2(std::exp2(decayed) + 1.0);
    e.last = clock_;
    order_.insert({rank(e), key});
}

void ExpertCache::erase(std::unordered_map<uint64_t, Entry>::iterator it) {
    order_.erase({rank(it->second), it->first});
    stats_.resident_bytes -= it->second.size;
    entries_.erase(it);
}

bool ExpertCache::make_room(uint64_t n_bytes, bool keep_unused) {
    for (auto o = order_.begin(); o != order_.end() && stats_.resident_bytes + n_bytes > capacity_;) {
        auto it = entries_.find(o->second);
        const Entry& e = it->second;
        const bool unused = !e.used && e.origin != Origin::Demand;
        // Slices being read, and slices someone holds (an expert that is running), stay.
        if (e.state == State::Loading || e.bytes.use_count() > 1 || (keep_unused && unused)) {
            ++o;
            continue;
        }
        ++o;
        if (e.state == State::Ready) {
            stats_.evictions += 1;
            if (unused) stats_.prefetch_wasted += 1;
        }
        erase(it);
    }
    return stats_.resident_bytes + n_bytes <= capacity_;
}

ExpertCache::Entry& ExpertCache::insert_loading(uint64_t key, const SliceRef& ref, Origin origin) {
    // Half-life: as many requests as the cache holds slices, so a slice used twice
    // within one pass over the cache outranks one used once.
    if (half_life_ == 0)
        half_life_ = std::max(kMinHalfLife, static_cast<double>(capacity_) / static_cast<double>(std::max<uint64_t>(ref.n_bytes, 1)));
    Entry& e = entries_[key];
    e.bytes.reset(new uint8_t[ref.n_bytes]);
    e.size = ref.n_bytes;
    e.origin = origin;
    e.layer = ref.layer;
    e.expert = ref.expert;
    e.last = clock_;
    order_.insert({rank(e), key});
    stats_.resident_bytes += ref.n_bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.resident_bytes);
    return e;
}

void ExpertCache::finish_read(uint64_t key, Status read) {
    auto it = entries_.find(key);
    CHECK(it != entries_.end() && it->second.state == State::Loading, "a slice being read stays in the cache");
    Entry& e = it->second;
    if (read) {
        e.state = State::Ready;
        stats_.bytes_read += e.size;
        slot(e.layer, e.expert)->bytes_read += e.size;
    } else {
        e.state = State::Failed;
        e.error = read.error().message;
        stats_.read_errors += 1;
    }
    ready_cv_.notify_all();
}

Result<ExpertBytes> ExpertCache::get(uint64_t key, const SliceRef& ref) {
    std::unique_lock<std::mutex> lock(mu_);
    clock_ += 1;
    bool waited = false;
    for (auto it = entries_.find(key); it != entries_.end(); it = entries_.find(key)) {
        Entry& e = it->second;
        if (e.state == State::Loading) {
            waited = true;
            ready_cv_.wait(lock);
            continue;
        }
        if (e.state == State::Failed) {
            erase(it);  // read it again below, and report that read's error
            break;
        }
        ExpertSliceStats* s = slot(ref.layer, ref.expert);
        stats_.hits += 1;
        s->hits += 1;
        if (waited) stats_.waits += 1;
        const bool first_prefetched_use = !e.used && e.origin != Origin::Demand;
        if (first_prefetched_use) {
            stats_.prefetch_hits += 1;
            s->prefetch_hits += 1;
            if (e.origin == Origin::Guess) stats_.guess_hits += 1;
        }
        e.used = true;
        touch(key, e, first_prefetched_use);
        return ExpertBytes{.data = e.bytes.get(), .hold = e.bytes};
    }

    stats_.misses += 1;
    slot(ref.layer, ref.expert)->misses += 1;
    // Room is always there in the end: reads finish, and the plan sizes the cache
    // for one expert's slices in use at once. Should even that fail, the slice is
    // read anyway, a brief overshoot rather than an error.
    while (!make_room(ref.n_bytes, false)) {
        const bool reading = std::any_of(entries_.begin(), entries_.end(),
                                         [](const auto& kv) { return kv.second.state == State::Loading; });
        if (!reading) break;
        ready_cv_.wait(lock);
    }
    Entry& e = insert_loading(key, ref, Origin::Demand);
    e.used = true;
    std::shared_ptr<uint8_t[]> buf = e.bytes;
    lock.unlock();
    Status read = read_slice(ref, buf.get());
    lock.lock();
    finish_read(key, read);
    if (!read) {
        erase(entries_.find(key));
        return err("{}: cannot read {} bytes at offset {} of the model file: {}", ref.what ? *ref.what : "expert",
                   ref.n_bytes, ref.offset, read.error().message);
    }
    return ExpertBytes{.data = buf.get(), .hold = buf};
}

void ExpertCache::prefetch(uint64_t key, const SliceRef& ref, Prefetch kind) {
    std::lock_guard<std::mutex> lock(mu_);
    if (io_.empty() || stop_ || entries_.count(key) || !make_room(ref.n_bytes, true)) return;
    insert_loading(key, ref, kind == Prefetch::Guess ? Origin::Guess : Origin::Ahead);
    stats_.prefetches += 1;
    if (kind == Prefetch::Guess) stats_.guesses += 1;
    queue_.push_back(Job{.key = key, .ref = ref});
    work_cv_.notify_one();
}

void ExpertCache::io_loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        const Job job = queue_.front();
        queue_.pop_front();
        std::shared_ptr<uint8_t[]> buf = entries_.at(job.key).bytes;
        lock.unlock();
        Status read = read_slice(job.ref, buf.get());
        lock.lock();
        finish_read(job.key, read);
    }
}

ExpertCacheStats ExpertCache::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    ExpertCacheStats s = stats_;
    s.capacity = capacity_;
    return s;
}

std::vector<std::vector<ExpertSliceStats>> ExpertCache::expert_stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::vector<ExpertSliceStats>> out(static_cast<size_t>(n_layer_));
    for (int il = 0; il < n_layer_; ++il) {
        const auto* row = per_expert_.data() + static_cast<size_t>(il) * static_cast<size_t>(n_expert_);
        out[static_cast<size_t>(il)].assign(row, row + n_expert_);
    }
    return out;
}

void ExpertCache::record_error(std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = std::move(message);
}

std::string ExpertCache::take_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(error_, std::string());
}

std::string describe(const ExpertCacheStats& s) {
    const auto pct = [](uint64_t part, uint64_t whole) {
        return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
    };
    return fmt::format("{} hits ({} prefetched, {} waited for), {} misses ({:.1f}% hits), {} read from disk, "
                       "{} evictions, peak {} of {}; prefetch: {} reads of which {} guessed from the next layer's "
                       "router ({:.1f}% of guesses used), {} evicted unused",
                       s.hits, s.prefetch_hits, s.waits, s.misses, pct(s.hits, s.hits + s.misses),
                       format_bytes(s.bytes_read), s.evictions, format_bytes(s.peak_bytes), format_bytes(s.capacity),
                       s.prefetches, s.guesses, pct(s.guess_hits, s.guesses), s.prefetch_wasted);
}

SliceRef TieredExperts::ref(int64_t e) const {
    const uint64_t off = static_cast<uint64_t>(e) * p_.expert_bytes;
    return SliceRef{.fd = p_.fd, .offset = p_.file_offset + off, .n_bytes = p_.expert_bytes, .what = &p_.name,
                    .layer = p_.layer, .expert = static_cast<int>(e)};
}

ExpertBytes TieredExperts::expert(int64_t e) const {
    CHECK(e >= 0 && static_cast<size_t>(e) < p_.tiers.size(), "expert index within the stacked tensor");
    if (p_.tiers[static_cast<size_t>(e)] != Tier::Disk)
        return ExpertBytes{.data = p_.mapped + static_cast<uint64_t>(e) * p_.expert_bytes};
    auto r = p_.cache->get(p_.key_base + static_cast<uint64_t>(e), ref(e));
    if (r) return std::move(*r);
    // Zeros keep the pass finite; the error is returned for this request.
    std::shared_ptr<uint8_t[]> zeros(new uint8_t[p_.expert_bytes]());
    p_.cache->record_error(r.error().message);
    return ExpertBytes{.data = zeros.get(), .hold = zeros};
}

void TieredExperts::prefetch(int64_t e, bool guess) const {
    if (e < 0 || static_cast<size_t>(e) >= p_.tiers.size() || p_.tiers[static_cast<size_t>(e)] != Tier::Disk) return;
    p_.cache->prefetch(p_.key_base + static_cast<uint64_t>(e), ref(e), guess ? Prefetch::Guess : Prefetch::Ahead);
}

}  // namespace strata
