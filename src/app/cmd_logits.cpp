// `strata logits MODEL --tokens 1,2,3 --out FILE`: feeds the tokens as one batch at
// positions 0..n-1 (no BOS added) and writes every position's logits in the
// fixtures' format: u32 n_tokens, u32 n_vocab, u32 tokens[n], f32 logits[n][n_vocab],
// little-endian. Tests and external comparisons use it.

#include "app/commands.h"
#include "engine/engine.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <memory>

namespace strata::app {
namespace {

struct LogitsArgs {
    std::string model, tokens, out, kv_type = "f32";
    int threads = 0;
};

Result<std::vector<int32_t>> parse_tokens(const std::string& s) {
    std::vector<int32_t> ids;
    size_t pos = 0;
    while (pos <= s.size()) {
        const size_t comma = std::min(s.find(',', pos), s.size());
        int32_t id = 0;
        const auto [end, ec] = std::from_chars(s.data() + pos, s.data() + comma, id);
        if (ec != std::errc() || end != s.data() + comma) {
            return err("--tokens: '{}' is not a token id (expected comma-separated integers)",
                       s.substr(pos, comma - pos));
        }
        ids.push_back(id);
        pos = comma + 1;
    }
    return ids;
}

int run_logits(const LogitsArgs& a) {
    auto tokens = parse_tokens(a.tokens);
    if (!tokens) return fail(tokens.error().message);
    KvType kv;
    if (a.kv_type == "f32") {
        kv = KvType::F32;
    } else if (a.kv_type == "f16") {
        kv = KvType::F16;
    } else {
        return fail(fmt::format("--kv-type '{}': expected f32 or f16", a.kv_type));
    }
    auto engine = Engine::load(a.model, {.threads = a.threads});
    if (!engine) return fail(engine.error().message);
    const auto n = static_cast<int64_t>(tokens->size());
    const uint32_t n_vocab = (*engine)->hparams().n_vocab;
    auto cache = (*engine)->model().new_cache(n, kv);
    std::vector<float> logits(static_cast<size_t>(n) * n_vocab);
    if (Status st = (*engine)->forward(*tokens, 0, *cache, true, logits.data()); !st.ok()) {
        return fail(st.error().message);
    }

    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(a.out.c_str(), "wb"), &std::fclose);
    if (!f) return fail(fmt::format("cannot create '{}'", a.out));
    const uint32_t header[2] = {static_cast<uint32_t>(n), n_vocab};
    bool ok = std::fwrite(header, sizeof header, 1, f.get()) == 1;
    ok = ok && std::fwrite(tokens->data(), sizeof(int32_t), tokens->size(), f.get()) == tokens->size();
    ok = ok && std::fwrite(logits.data(), sizeof(float), logits.size(), f.get()) == logits.size();
    if (!ok || std::fclose(f.release()) != 0) return fail(fmt::format("cannot write '{}'", a.out));
    fmt::print(stderr, "wrote logits of {} tokens x {} vocab to {}\n", n, n_vocab, a.out);
    return 0;
}

}  // namespace

void add_logits_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<LogitsArgs>();
    CLI::App* cmd = app.add_subcommand("logits", "Write the logits of a token sequence (fixture format)");
    cmd->add_option("model", args->model, "GGUF model")->required();
    cmd->add_option("--tokens", args->tokens, "Comma-separated token ids, fed at positions 0..n-1")->required();
    cmd->add_option("-o,--out", args->out, "Output file")->required();
    cmd->add_option("--kv-type", args->kv_type, "KV cache type: f32 or f16")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
    cmd->callback([args, &exit_code] { exit_code = run_logits(*args); });
}

}  // namespace strata::app
