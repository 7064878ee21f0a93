#include "util/map_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

namespace strata {
namespace {

// Everything the handler reads is a lock-free atomic in static storage: it may
// run on any thread, in the middle of anything, so it takes no lock and
// allocates nothing.
struct Slot {
    std::atomic<bool> used{false};   // claimed by a registration
    std::atomic<uintptr_t> base{0};  // 0: no range (set last, cleared first)
    std::atomic<size_t> len{0};
    std::atomic<bool> damaged{false};
};
static_assert(std::atomic<uintptr_t>::is_always_lock_free &&
              std::atomic<size_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

Slot g_slots[kMapGuardSlots];
struct sigaction g_previous {};  // written once before the handler is installed
uintptr_t g_page = 4096;         // likewise (sysconf is not async-signal-safe)

// Maps zero pages over [addr, addr + len) in place of the file's. The raw system
// call rather than `mmap`: sanitizers intercept `mmap`, and their interceptors
// are not meant to run inside a signal handler.
bool map_zeros(uintptr_t addr, size_t len) {
#ifdef SYS_mmap
    const long r =
        ::syscall(SYS_mmap, addr, len, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
    return r != -1;
#else
    return ::mmap(reinterpret_cast<void*>(addr), len, PROT_READ,
                  MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED;
#endif
}

// A SIGBUS that is not ours: to the handler before ours, else the default action.
void pass_on(int sig, siginfo_t* info, void* ctx) {
    if (g_previous.sa_flags & SA_SIGINFO) {
        if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, ctx);
    } else if (g_previous.sa_handler == SIG_IGN && info->si_code <= 0) {
        return;  // a SIGBUS sent by kill(), which the program chose to ignore
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        return g_previous.sa_handler(sig);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
    // A fault happens again when the faulting instruction reruns on return, now
    // with the default action; a signal that was sent must be sent again.
    if (info->si_code <= 0) ::raise(SIGBUS);
}

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
    const int saved_errno = errno;
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    // si_code > 0: raised by the kernel for a fault at si_addr (not sent by kill()).
    if (info->si_code > 0) {
        for (Slot& s : g_slots) {
            const uintptr_t base = s.base.load(std::memory_order_acquire);
            if (base == 0 || addr < base) continue;
            const size_t len = s.len.load(std::memory_order_acquire);
            if (addr - base >= len) continue;
            // From the faulting page to the end of the mapping: the file ends
            // before that page, so every later page would fault too.
            const uintptr_t page = addr & ~(g_page - 1);
            const uintptr_t end = (base + len + g_page - 1) & ~(g_page - 1);
            if (!map_zeros(page, end - page)) break;
            s.damaged.store(true, std::memory_order_release);
            errno = saved_errno;
            return;
        }
    }
    errno = saved_errno;
    pass_on(sig, info, ctx);
}

void install() {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page > 0) g_page = static_cast<uintptr_t>(page);
    ::sigaction(SIGBUS, nullptr, &g_previous);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ::sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace

int map_guard_register(const void* base, size_t len) {
    static std::once_flag once;
    std::call_once(once, install);
    for (int i = 0; i < kMapGuardSlots; ++i) {
        Slot& s = g_slots[i];
        bool expected = false;
        if (!s.used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
        s.damaged.store(false, std::memory_order_relaxed);
        s.len.store(len, std::memory_order_release);
        s.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
        return i;
    }
    return -1;
}

void map_guard_unregister(int slot) {
    if (slot < 0 || slot >= kMapGuardSlots) return;
    Slot& s = g_slots[slot];
    s.base.store(0, std::memory_order_release);
    s.len.store(0, std::memory_order_release);
    s.used.store(false, std::memory_order_release);
}

bool map_guard_damaged(int slot) {
    return slot >= 0 && slot < kMapGuardSlots &&
           g_slots[slot].damaged.load(std::memory_order_acquire);
}

}  // namespace strata
