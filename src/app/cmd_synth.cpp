// `strata synth`: write a random-weight GGUF with the tensor layout of a real model
// (a preset) or of explicit dimensions.

#include "app/commands.h"
#include "model/synth.h"
#include "util/format.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

namespace strata::app {
namespace {

struct SynthArgs {
    std::string preset;
    std::string arch;
    std::string out;
    std::optional<std::string> matrix_type, expert_type;
    uint64_t seed = 1;
    int threads = 0;
    bool dry_run = false;
    bool list = false;
    // Dimension overrides; unset ones keep the preset's (or the small default's) value.
    std::optional<uint32_t> layers, embd, heads, heads_kv, head_dim, ff, ff_exp, experts, experts_used,
        shared_experts, dense_lead, vocab, ctx;
};

// Without a preset, an architecture starts from the reference fixtures' tiny shape
// (2 layers, width 64, 4 experts with 2 used) so tests and experiments are quick.
HParams small_hparams(const std::string& arch) {
    HParams hp;
    hp.arch = arch;
    hp.n_layer = 2;
    hp.n_embd = 64;
    hp.n_head = 4;
    hp.n_head_kv = 2;
    hp.n_embd_head_k = hp.n_embd_head_v = hp.n_rot = 16;
    hp.n_ff = hp.n_ff_exp = 64;
    hp.n_ff_shexp = 128;
    hp.n_vocab = 320;
    hp.n_ctx_train = 512;
    if (arch != "llama") {
        hp.n_expert = 4;
        hp.n_expert_used = 2;
    }
    if (arch == "deepseek") {
        hp.n_expert_shared = 2;
        hp.n_layer_dense_lead = 1;
    }
    if (arch == "gpt-oss") hp.n_swa = 8;
    return hp;
}

void apply_overrides(const SynthArgs& a, HParams& hp) {
    auto set = [](const std::optional<uint32_t>& v, uint32_t& field) {
        if (v) field = *v;
    };
    set(a.layers, hp.n_layer);
    set(a.embd, hp.n_embd);
    set(a.heads, hp.n_head);
    set(a.heads_kv, hp.n_head_kv);
    if (a.head_dim) hp.n_embd_head_k = hp.n_embd_head_v = hp.n_rot = *a.head_dim;
    set(a.ff, hp.n_ff);
    set(a.ff_exp, hp.n_ff_exp);
    set(a.experts, hp.n_expert);
    set(a.experts_used, hp.n_expert_used);
    set(a.shared_experts, hp.n_expert_shared);
    set(a.dense_lead, hp.n_layer_dense_lead);
    set(a.vocab, hp.n_vocab);
    set(a.ctx, hp.n_ctx_train);
}

void list_presets() {
    for (const SynthPreset& p : synth_presets()) fmt::print("{:<18} {}\n", p.name, p.description);
}

// Free bytes on the file system that will hold `path`, or nullopt if unknown.
std::optional<uint64_t> free_bytes(const std::string& path) {
    std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
    struct statvfs s {};
    if (::statvfs(dir.c_str(), &s) != 0) return std::nullopt;
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

int run_synth(const SynthArgs& a) {
    if (a.list) {
        list_presets();
        return 0;
    }
    SynthSpec spec;
    if (!a.preset.empty()) {
        const SynthPreset* p = find_synth_preset(a.preset);
        if (!p) {
            std::string names;
            for (const SynthPreset& q : synth_presets()) names += (names.empty() ? "" : ", ") + q.name;
            return fail(fmt::format("unknown preset '{}' (presets: {})", a.preset, names));
        }
        spec = p->spec;
        if (!a.arch.empty() && a.arch != spec.hp.arch)
            return fail(fmt::format("--arch {} contradicts preset '{}' ({})", a.arch, a.preset, spec.hp.arch));
    } else if (!a.arch.empty()) {
        spec.hp = small_hparams(a.arch);
    } else {
        return fail("synth needs --preset NAME or --arch ARCH (see --list-presets)");
    }
    apply_overrides(a, spec.hp);
    if (a.matrix_type) spec.matrix_type = *a.matrix_type;
    if (a.expert_type) spec.expert_type = *a.expert_type;
    spec.seed = a.seed;

    auto plan = plan_synth(spec);
    if (!plan) return fail(plan.error().message);
    for (const std::string& note : plan->notes) fmt::print(stderr, "note: {}\n", note);

    const uint64_t size = plan->writer.file_size();
    fmt::print("{}: {} tensors, {} ({} bytes)\n", spec.name.empty() ? spec.hp.arch : spec.name,
               plan->writer.tensors().size(), format_bytes(size), size);
    if (a.dry_run) return 0;
    if (a.out.empty()) return fail("synth needs --out FILE (or --dry-run)");
    if (auto avail = free_bytes(a.out); avail && *avail < size)
        return fail(fmt::format("'{}' needs {} but its file system has {} free", a.out, format_bytes(size),
                                format_bytes(*avail)));

    const int threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const auto start = std::chrono::steady_clock::now();
    if (Status st = write_synth(*plan, a.out, threads); !st.ok()) return fail(st.error().message);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("wrote {} in {:.1f} s ({}/s, {} threads)\n", a.out, seconds,
               format_bytes(static_cast<uint64_t>(static_cast<double>(size) / std::max(seconds, 1e-9))), threads);
    return 0;
}

}  // namespace

void add_synth_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<SynthArgs>();
    CLI::App* cmd = app.add_subcommand("synth", "Write a random-weight GGUF with a real model's tensor layout");
    cmd->add_option("--preset", args->preset, "Model to mirror (see --list-presets)");
    cmd->add_flag("--list-presets", args->list, "List the presets and exit");
    cmd->add_option("--arch", args->arch, "Architecture, for explicit dimensions without a preset");
    cmd->add_option("-o,--out", args->out, "Output GGUF file");
    cmd->add_option("--type", args->matrix_type, "Type of attention, embedding, output and dense/shared FFN matrices");
    cmd->add_option("--expert-type", args->expert_type, "Type of routed-expert tensors");
    cmd->add_option("--seed", args->seed, "Random seed (same seed, same file)")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads generating data (default: all cores)");
    cmd->add_flag("--dry-run", args->dry_run, "Print the file's size and type changes without writing it");
    cmd->add_option("--layers", args->layers, "Number of blocks");
    cmd->add_option("--embd", args->embd, "Embedding width");
    cmd->add_option("--heads", args->heads, "Attention heads");
    cmd->add_option("--heads-kv", args->heads_kv, "Key/value heads");
    cmd->add_option("--head-dim", args->head_dim, "Width of one head");
    cmd->add_option("--ff", args->ff, "Dense FFN width");
    cmd->add_option("--ff-exp", args->ff_exp, "Routed expert FFN width");
    cmd->add_option("--experts", args->experts, "Routed experts per layer (0: dense)");
    cmd->add_option("--experts-used", args->experts_used, "Experts used per token");
    cmd->add_option("--shared-experts", args->shared_experts, "Shared experts (deepseek)");
    cmd->add_option("--dense-lead", args->dense_lead, "Leading dense blocks (deepseek)");
    cmd->add_option("--vocab", args->vocab, "Vocabulary size");
    cmd->add_option("--ctx", args->ctx, "Training context length");
    cmd->callback([args, &exit_code] { exit_code = run_synth(*args); });
}

}  // namespace strata::app
