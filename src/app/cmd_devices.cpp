// `strata devices [--json] [--no-measure] [--threads N]`: the backends this
// build has and the devices they find, with total and free memory. The CPU
// always appears, with its RAM and its measured read bandwidth.

#include "app/commands.h"
#include "engine/devices.h"
#include "util/format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace strata::app {
namespace {

struct DevicesOptions {
    bool json = false;
    bool measure = true;
    int threads = 0;
};

int devices(const DevicesOptions& o) {
    const DeviceList list = list_devices(o.measure, o.threads);
    if (o.json) {
        nlohmann::json a = nlohmann::json::array();
        for (const DeviceRow& d : list.devices) {
            nlohmann::json j = {{"id", d.id},
                                {"name", d.name},
                                {"total_bytes", d.total_bytes},
                                {"free_bytes", d.free_bytes},
                                {"detail", d.detail}};
            if (d.read_gbps > 0) j["read_gbps"] = d.read_gbps;
            a.push_back(j);
        }
        fmt::print("{}\n", nlohmann::json{{"devices", a}, {"cuda", list.cuda_status}}.dump(2));
        return 0;
    }
    fmt::print("{:<8}  {:>10}  {:>10}  {:>10}  {}\n", "DEVICE", "TOTAL", "FREE", "READ GB/s",
               "NAME");
    for (const DeviceRow& d : list.devices) {
        fmt::print("{:<8}  {:>10}  {:>10}  {:>10}  {} ({})\n", d.id, format_bytes(d.total_bytes),
                   format_bytes(d.free_bytes),
                   d.read_gbps > 0 ? fmt::format("{:.1f}", d.read_gbps) : "-", d.name, d.detail);
    }
    fmt::print("cuda: {}\n", list.cuda_status);
    return 0;
}

}  // namespace

void add_devices_command(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<DevicesOptions>();
    CLI::App* cmd = app.add_subcommand(
        "devices",
        "List the backends and devices found, with their memory (the CPU always appears)");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->add_flag("!--no-measure", o->measure,
                  "Do not measure the CPU's read bandwidth (it reads 1 GiB)");
    cmd->add_option("-t,--threads", o->threads,
                    "Threads for the bandwidth measurement (default: physical cores)")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([o, &exit_code] { exit_code = devices(*o); });
}

}  // namespace strata::app
