#include "engine/devices.h"

#include "ops/backend.h"
#include "ops/cpu/limits.h"
#include "util/thread_pool.h"

#include <fmt/format.h>

namespace strata {

DeviceList list_devices(bool measure, int threads) {
    DeviceList out;
    ThreadPool pool(threads > 0 ? threads : physical_core_count());
    const ops::DeviceInfo cpu = ops::make_cpu_backend(pool)->info();
    DeviceRow& row = out.devices.emplace_back(
        DeviceRow{.id = "cpu",
                  .name = cpu.name,
                  .total_bytes = cpu.total_bytes,
                  .free_bytes = cpu.free_bytes,
                  .detail = fmt::format("{}, {} threads", cpu.detail, pool.size())});
    if (measure) row.read_gbps = ops::measure_read_bandwidth(pool).gbps;

    out.cuda_built = ops::cuda_built();
    const int n = ops::cuda_device_count();
    out.cuda_status = ops::cuda_status();
    for (int i = 0; i < n; ++i) {
        auto b = ops::make_cuda_backend(i);
        if (!b) continue;
        const ops::DeviceInfo d = b->info();
        out.devices.push_back(DeviceRow{.id = fmt::format("cuda:{}", i),
                                        .name = d.name,
                                        .total_bytes = d.total_bytes,
                                        .free_bytes = d.free_bytes,
                                        .detail = d.detail});
    }
    return out;
}

}  // namespace strata
