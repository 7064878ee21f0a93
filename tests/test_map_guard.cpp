// A mapped file shrinking under the process (util/map_guard.h): reads past its
// new end see zeros instead of SIGBUS, and the mapping reports the change.

#include "test_util.h"
#include "util/file_map.h"
#include "util/map_guard.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace strata {
namespace {

size_t page_size() {
    return static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// Reads through a volatile pointer, so the compiler cannot fold or skip the load.
uint8_t read_byte(const uint8_t* p) {
    return *static_cast<const volatile uint8_t*>(p);
}

std::string four_pages(const test::TempDir& dir, const std::string& name) {
    const std::string path = dir.file(name);
    test::write_file(path, std::vector<uint8_t>(4 * page_size(), 0xAB));
    return path;
}

TEST(MapGuard, AReadPastATruncatedEndReadsZerosAndMarksTheRange) {
    test::TempDir dir;
    const std::string path = four_pages(dir, "f.bin");
    const size_t page = page_size();
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, 4 * page, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    const auto* d = static_cast<const uint8_t*>(p);
    const int slot = map_guard_register(p, 4 * page);
    ASSERT_GE(slot, 0);
    EXPECT_EQ(read_byte(d + 3 * page), 0xAB);  // in the file: read, not absorbed
    EXPECT_FALSE(map_guard_damaged(slot));

    std::filesystem::resize_file(path, page + 10);
    // Unguarded, each of these reads past the end kills the process with SIGBUS.
    EXPECT_EQ(read_byte(d + 2 * page + 5), 0);
    EXPECT_EQ(read_byte(d + 4 * page - 1), 0);
    EXPECT_TRUE(map_guard_damaged(slot));
    // What is still in the file reads as before.
    EXPECT_EQ(read_byte(d), 0xAB);
    EXPECT_EQ(read_byte(d + page + 9), 0xAB);

    map_guard_unregister(slot);
    ::munmap(p, 4 * page);
    ::close(fd);
}

TEST(MapGuard, AMappedFileSaysItChangedWhenTruncatedOrRewrittenInPlace) {
    test::TempDir dir;
    const std::string path = four_pages(dir, "t.bin");
    auto m = MappedFile::open(path);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_FALSE(m->changed());
    std::filesystem::resize_file(path, page_size());
    EXPECT_EQ(read_byte(m->data() + 3 * page_size()), 0);
    EXPECT_TRUE(m->changed());

    // Same size, new bytes: the mtime tells. Set it explicitly, since two writes
    // within one tick of the kernel's coarse clock may share a timestamp.
    const std::string other = four_pages(dir, "r.bin");
    auto r = MappedFile::open(other);
    ASSERT_TRUE(r) << r.error().message;
    const auto when = std::filesystem::last_write_time(other);
    test::write_file(other, std::vector<uint8_t>(4 * page_size(), 0xCD));
    std::filesystem::last_write_time(other, when + std::chrono::seconds(5));
    EXPECT_TRUE(r->changed());

    // A file replaced by rename is not a change to this mapping: it still holds
    // the old file, whole.
    const std::string third = four_pages(dir, "n.bin");
    auto n = MappedFile::open(third);
    ASSERT_TRUE(n) << n.error().message;
    test::write_file(dir.file("tmp.bin"), std::vector<uint8_t>(page_size(), 0x11));
    std::filesystem::rename(dir.file("tmp.bin"), third);
    EXPECT_FALSE(n->changed());
    EXPECT_EQ(read_byte(n->data() + 3 * page_size()), 0xAB);
}

// The handler takes only faults inside guarded ranges: any other SIGBUS still
// ends the process (by the default action, or a sanitizer's report).
TEST(MapGuardDeathTest, ASigbusOutsideGuardedRangesStillKills) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    test::TempDir dir;
    const std::string guarded = four_pages(dir, "g.bin");
    const std::string plain = four_pages(dir, "p.bin");
    EXPECT_DEATH(
        {
            auto g = MappedFile::open(guarded);  // installs the handler
            const int fd = ::open(plain.c_str(), O_RDONLY);
            void* p = ::mmap(nullptr, 4 * page_size(), PROT_READ, MAP_SHARED, fd, 0);
            std::filesystem::resize_file(plain, 0);
            read_byte(static_cast<const uint8_t*>(p) + page_size());
        },
        "");
}

}  // namespace
}  // namespace strata
