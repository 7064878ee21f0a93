// strata-train: trains the project's small MoE model (see README.md).
//
//   strata-train train --corpus FILE... --out MODEL.gguf [hyper-parameters]
//   strata-train golden --model MODEL.gguf -n N --prompt P...
//   strata-train experts --model MODEL.gguf --text FILE
//
// `golden` decodes greedily with the trainer's own forward pass (not the
// engine's), printing one JSON line per prompt: the engine's `strata run --temp 0`
// must print exactly the same text.
#include "bpe_train.h"
#include "experts.h"
#include "gguf/file.h"
#include "gguf_io.h"
#include "text/tokenizer.h"
#include "train.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

namespace strata::train {
namespace {

struct TrainArgs {
    std::vector<std::string> corpus;
    std::string out;
    ExportParams export_params;
    bool f32 = false;
    int vocab = 1024;
    double val_fraction = 0.05;
    Config cfg;
    TrainParams tp;
};

int fail(const std::string& msg) {
    fmt::print(stderr, "strata-train: {}\n", msg);
    return 1;
}

int run_train(TrainArgs a) {
    const auto t0 = std::chrono::steady_clock::now();
    auto corpus = read_corpus(a.corpus);
    if (!corpus) return fail(corpus.error().message);
    // The last lines are held out for validation; the tokenizer sees only the rest.
    size_t cut = static_cast<size_t>(static_cast<double>(corpus->size()) * (1.0 - a.val_fraction));
    cut = corpus->find('\n', cut);
    cut = cut == std::string::npos ? corpus->size() : cut + 1;
    const std::string_view train_text = std::string_view(*corpus).substr(0, cut);
    const std::string_view val_text = std::string_view(*corpus).substr(cut);

    auto spec = train_bpe(train_text, a.vocab);
    if (!spec) return fail(spec.error().message);
    auto vocab = text::Vocab::build(*spec);
    if (!vocab) return fail(vocab.error().message);
    auto tok = text::Tokenizer::create(std::move(*vocab));
    if (!tok) return fail(tok.error().message);
    const std::vector<int32_t> train_ids = encode_lines(*tok, train_text),
                               val_ids = encode_lines(*tok, val_text);
    const double prep =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(
        "corpus {} bytes: {} training tokens, {} validation tokens ({:.2f} bytes/token); "
        "vocabulary {} "
        "({} merges); {:.1f} s\n",
        corpus->size(), train_ids.size(), val_ids.size(),
        static_cast<double>(train_text.size()) / static_cast<double>(train_ids.size()),
        spec->tokens.size(), spec->merges.size(), prep);

    a.cfg.n_vocab = static_cast<int>(spec->tokens.size());
    if (a.cfg.n_embd % a.cfg.n_head != 0 || a.cfg.head_dim() % 2 != 0)
        return fail("--embd must be a multiple of --heads with an even head size");
    if (a.cfg.n_expert_used < 1 || a.cfg.n_expert_used > a.cfg.n_expert)
        return fail("--experts-used must be between 1 and --experts");
    Model m(a.cfg, init_params(a.cfg, a.tp.seed));
    fmt::print(
        "model: {} parameters; {} layers, n_embd {}, {} heads, {} experts ({} used) of width {}, "
        "context {}\n",
        m.layout().total, a.cfg.n_layer, a.cfg.n_embd, a.cfg.n_head, a.cfg.n_expert,
        a.cfg.n_expert_used, a.cfg.n_ff_exp, a.cfg.n_ctx);
    const TrainResult r = train(m, train_ids, val_ids, a.tp);
    fmt::print(
        "trained {} steps in {:.0f} s: train loss {:.4f}, validation loss {:.4f} (nats/token)\n",
        a.tp.opt.total_steps, r.seconds, r.train_loss, r.val_loss);
    fmt::print("expert share of routing choices over the last 10% of steps (per layer):\n");
    for (int il = 0; il < a.cfg.n_layer; ++il) {
        int64_t total = 0;
        for (int e = 0; e < a.cfg.n_expert; ++e)
            total += r.routing.counts[static_cast<size_t>(il * a.cfg.n_expert + e)];
        std::string row;
        for (int e = 0; e < a.cfg.n_expert; ++e) {
            row += fmt::format(
                " {:5.1f}%",
                100.0 *
                    static_cast<double>(
                        r.routing.counts[static_cast<size_t>(il * a.cfg.n_expert + e)]) /
                    static_cast<double>(std::max<int64_t>(total, 1)));
        }
        fmt::print("  layer {}:{}\n", il, row);
    }
    a.export_params.f16 = !a.f32;
    if (Status s = write_gguf(m, *spec, a.export_params, a.out); !s) return fail(s.error().message);
    fmt::print("wrote {}\n", a.out);
    return 0;
}

struct GoldenArgs {
    std::string model;
    std::vector<std::string> prompts;
    int n_predict = 32;
};

int run_golden(const GoldenArgs& a) {
    auto m = read_gguf(a.model);
    if (!m) return fail(m.error().message);
    auto file = gguf::File::open(a.model);
    if (!file) return fail(file.error().message);
    auto tok = text::Tokenizer::load(*file);
    if (!tok) return fail(tok.error().message);
    const int V = m->config().n_vocab;
    for (const std::string& prompt : a.prompts) {
        std::vector<int32_t> ids = tok->tokenize(prompt);
        if (ids.empty()) return fail("an empty prompt");
        if (static_cast<int>(ids.size()) + a.n_predict > m->config().n_ctx)
            return fail(
                fmt::format("prompt '{}' plus {} tokens exceeds the context", prompt, a.n_predict));
        // As the engine's `generate`: stop at an end-of-generation token, and decode
        // the continuation as a stream.
        text::StreamDecoder dec(*tok, {.remove_space_prefix = false});
        std::string out = prompt;
        for (int i = 0; i < a.n_predict; ++i) {
            // The whole sequence again each step: this pass has no KV cache, which
            // keeps it a second, independent implementation of the engine's math.
            const std::vector<float> logits = m->logits(ids);
            const float* last = logits.data() + (ids.size() - 1) * static_cast<size_t>(V);
            const auto next = static_cast<int32_t>(std::max_element(last, last + V) - last);
            if (tok->vocab().is_eog(next)) break;
            out += dec.push(next);
            ids.push_back(next);
        }
        out += dec.finish();
        fmt::print("{}\n",
                   nlohmann::json{{"prompt", prompt}, {"n_predict", a.n_predict}, {"expected", out}}
                       .dump());
    }
    return 0;
}

}  // namespace
}  // namespace strata::train

int main(int argc, char** argv) {
    using namespace strata::train;
    CLI::App app("strata-train: trains a small qwen3moe model and writes it as GGUF");
    app.require_subcommand(1);
    int rc = 0;

    auto ta = std::make_shared<TrainArgs>();
    CLI::App* t = app.add_subcommand("train", "Train a tokenizer and a model on text files");
    t->add_option("--corpus", ta->corpus, "Text files (UTF-8)")->required();
    t->add_option("--out", ta->out, "Output GGUF path")->required();
    t->add_option("--name", ta->export_params.name, "general.name")->capture_default_str();
    t->add_flag("--f32", ta->f32, "Store matrices as F32 instead of F16");
    t->add_option("--vocab", ta->vocab, "Vocabulary size (BPE)")->capture_default_str();
    t->add_option("--val-fraction", ta->val_fraction, "Share of the corpus held out")
        ->capture_default_str();
    t->add_option("--embd", ta->cfg.n_embd, "n_embd")->capture_default_str();
    t->add_option("--heads", ta->cfg.n_head, "Attention heads")->capture_default_str();
    t->add_option("--layers", ta->cfg.n_layer, "Layers")->capture_default_str();
    t->add_option("--experts", ta->cfg.n_expert, "Experts per layer")->capture_default_str();
    t->add_option("--experts-used", ta->cfg.n_expert_used, "Experts per token")
        ->capture_default_str();
    t->add_option("--expert-ff", ta->cfg.n_ff_exp, "Expert FFN width")->capture_default_str();
    t->add_option("--ctx", ta->cfg.n_ctx, "Training context (tokens)")->capture_default_str();
    t->add_option("--aux-coef", ta->cfg.aux_loss_coef, "Load-balancing loss weight")
        ->capture_default_str();
    t->add_option("--steps", ta->tp.opt.total_steps, "Optimizer steps")->capture_default_str();
    t->add_option("--warmup", ta->tp.opt.warmup_steps, "Warmup steps")->capture_default_str();
    t->add_option("--batch", ta->tp.batch, "Sequences per step")->capture_default_str();
    t->add_option("--lr", ta->tp.opt.lr, "Peak learning rate")->capture_default_str();
    t->add_option("--weight-decay", ta->tp.opt.weight_decay, "AdamW weight decay")
        ->capture_default_str();
    t->add_option("--threads", ta->tp.threads, "Threads")->capture_default_str();
    t->add_option("--seed", ta->tp.seed, "Seed (initialisation and batches)")
        ->capture_default_str();
    t->add_option("--eval-every", ta->tp.eval_every, "Steps between validation losses")
        ->capture_default_str();
    t->callback([ta, &rc] { rc = run_train(*ta); });

    auto ga = std::make_shared<GoldenArgs>();
    CLI::App* g = app.add_subcommand(
        "golden", "Greedy continuations by the trainer's forward pass, as JSON lines");
    g->add_option("--model", ga->model, "GGUF written by `train`")->required();
    g->add_option("--prompt", ga->prompts, "Prompts")->required();
    g->add_option("-n", ga->n_predict, "Tokens to generate")->capture_default_str();
    g->callback([ga, &rc] { rc = run_golden(*ga); });

    auto ea = std::make_shared<ExpertsParams>();
    CLI::App* x = app.add_subcommand(
        "experts", "Per layer and expert: share of routing choices and the tokens it takes");
    x->add_option("--model", ea->model, "GGUF written by `train`")->required();
    x->add_option("--text", ea->text, "Text to route")->required();
    x->add_option("--windows", ea->windows, "Context windows routed")->capture_default_str();
    x->add_option("--top", ea->top, "Tokens listed per expert")->capture_default_str();
    x->callback([ea, &rc] {
        if (strata::Status s = print_expert_tokens(*ea); !s) rc = fail(s.error().message);
    });

    CLI11_PARSE(app, argc, argv);
    return rc;
}
