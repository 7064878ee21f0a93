// `strata list [--model-dir DIR]... [--no-discover] [--json]`: the models
// `strata serve` would offer, with the same names, found the same way
// (app/server/discovery.h), each with its size, architecture, quantisation and
// path. Nothing is loaded: only the GGUF headers are read.

#include "app/commands.h"
#include "app/server/discovery.h"
#include "util/format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace strata::app {
namespace {

struct ListOptions {
    std::vector<std::string> models;
    std::vector<std::string> model_dirs;
    bool discover = true;
    bool json = false;
};

std::string or_dash(const std::string& s) {
    return s.empty() ? "-" : s;
}

int list(const ListOptions& o) {
    server::ModelRegistry registry(server::RegistryOptions{});
    const auto roots = server::default_roots(o.model_dirs, o.discover, std::getenv);
    if (Status s = server::register_models(registry, o.models, roots); !s)
        return fail(s.error().message);
    const auto models = registry.list();
    if (o.json) {
        nlohmann::json a = nlohmann::json::array();
        for (const server::ModelInfo* m : models)
            a.push_back({{"name", m->name},
                         {"size", m->size},
                         {"architecture", m->arch},
                         {"quantization", m->quant},
                         {"parameters", m->n_params},
                         {"path", m->path}});
        fmt::print("{}\n", a.dump(2));
        return 0;
    }
    if (models.empty()) {
        fmt::print(stderr, "no models found\n");
        return 0;
    }
    size_t w_name = 4, w_arch = 4, w_quant = 5;
    for (const server::ModelInfo* m : models) {
        w_name = std::max(w_name, m->name.size());
        w_arch = std::max(w_arch, or_dash(m->arch).size());
        w_quant = std::max(w_quant, or_dash(m->quant).size());
    }
    fmt::print("{:<{}}  {:>10}  {:<{}}  {:<{}}  {}\n", "NAME", w_name, "SIZE", "ARCH", w_arch,
               "QUANT", w_quant, "PATH");
    for (const server::ModelInfo* m : models)
        fmt::print("{:<{}}  {:>10}  {:<{}}  {:<{}}  {}\n", m->name, w_name, format_bytes(m->size),
                   or_dash(m->arch), w_arch, or_dash(m->quant), w_quant, m->path);
    return 0;
}

}  // namespace

void add_list_command(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<ListOptions>();
    CLI::App* cmd = app.add_subcommand("list", "List the models `strata serve` would offer");
    cmd->add_option("-m,--model", o->models, "GGUF model to include (repeatable)");
    cmd->add_option("--model-dir", o->model_dirs,
                    "Folder whose *.gguf files are listed, 6 levels deep (repeatable)");
    cmd->add_flag("!--no-discover", o->discover,
                  "List only --model and --model-dir, not ./models, $STRATA_MODELS, or the Hugging "
                  "Face, Ollama "
                  "and LM Studio stores");
    cmd->add_flag("--json", o->json, "Print a JSON array");
    cmd->callback([o, &exit_code] { exit_code = list(*o); });
}

}  // namespace strata::app
