#include "util/file_map.h"

#include "util/map_guard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace strata {

Result<MappedFile> MappedFile::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err("cannot open '{}': {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return err("cannot stat '{}': {}", path, std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return err("'{}' is a directory, not a model file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return err("'{}' is not a regular file", path);
    }
    if (st.st_size == 0) {
        ::close(fd);
        return err("'{}' is empty (0 bytes)", path);
    }
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd);
        return err("cannot map '{}': {}", path, std::strerror(e));
    }
    MappedFile m;
    m.path_ = path;
    m.data_ = static_cast<const uint8_t*>(p);
    m.size_ = static_cast<size_t>(st.st_size);
    m.fd_ = fd;
    m.mapped_ = true;
    m.guard_ = map_guard_register(p, m.size_);
    m.mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    return m;
}

MappedFile MappedFile::borrow(std::string name, const uint8_t* data, size_t size) {
    MappedFile m;
    m.path_ = std::move(name);
    m.data_ = data;
    m.size_ = size;
    return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      fd_(std::exchange(o.fd_, -1)),
      mapped_(std::exchange(o.mapped_, false)),
      guard_(std::exchange(o.guard_, -1)),
      mtime_ns_(o.mtime_ns_) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
    if (this != &o) {
        this->~MappedFile();
        new (this) MappedFile(std::move(o));
    }
    return *this;
}

bool MappedFile::changed() const {
    if (!mapped_) return false;
    if (map_guard_damaged(guard_)) return true;
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return true;
    const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    return static_cast<size_t>(st.st_size) != size_ || mtime_ns != mtime_ns_;
}

MappedFile::~MappedFile() {
    map_guard_unregister(guard_);  // before the range can be mapped again by anyone
    if (data_ && mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace strata
