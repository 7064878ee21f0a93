#pragma once
// What `strata devices` lists: the backends this build has and the devices they
// find, each with its memory. The CPU is always there, with its RAM and (when
// asked) the read bandwidth measured on it — the figure decode of host-tier
// experts is bound by.

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct DeviceRow {
    std::string id;    // "cpu", "cuda:0"
    std::string name;  // the CPU's or GPU's model name
    uint64_t total_bytes = 0, free_bytes = 0;
    std::string detail;    // kernels, compute capability, driver
    double read_gbps = 0;  // measured (CPU only, when asked); 0: not measured
};

struct DeviceList {
    std::vector<DeviceRow> devices;
    bool cuda_built = false;
    std::string cuda_status;  // why there are no CUDA devices, or how many there are
};

// Lists the devices; with `measure`, reads 1 GiB with `threads` threads (0: the
// physical cores) to measure the CPU's read bandwidth.
DeviceList list_devices(bool measure, int threads);

}  // namespace strata
