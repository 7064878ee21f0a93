#include "app/server/context.h"

#include "app/server/discovery.h"
#include "engine/prompt.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <random>

namespace strata::app::server {
ServerContext::ServerContext(ServerOptions options)
    : options_(std::move(options)),
      registry_(EngineOptions{.threads = options_.threads,
                              .prefetch = options_.prefetch,
                              .placement = options_.placement,
                              .memory = {.n_ctx = options_.n_ctx, .n_parallel = options_.parallel},
                              .log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }}),
      slots_(options_.parallel, options_.max_queue) {}

Status ServerContext::discover() {
    const DiscoveryRoots roots = default_roots(options_.model_dirs, options_.discover, std::getenv);
    STRATA_TRY(register_models(registry_, options_.models, roots));
    if (!registry_.list().empty()) return {};
    if (!options_.discover) return err("no models: give --model FILE or --model-dir DIR");
    return err("no models found: give --model FILE or --model-dir DIR, or put GGUF files in ./models, "
               "$STRATA_MODELS, or the Hugging Face, Ollama or LM Studio stores");
}

const ModelInfo* ServerContext::resolve(const std::string& name, ApiError& error) const {
    if (name.empty()) {
        const auto all = registry_.list();
        if (all.size() == 1) return all.front();
        error = {.status = 400,
                 .message = fmt::format("'model' is required; available: {}", registry_.names()),
                 .param = "model"};
        return nullptr;
    }
    if (const ModelInfo* m = registry_.find(name)) return m;
    error = {.status = 404,
             .message = fmt::format("model '{}' not found; available: {}", name, registry_.names()),
             .param = "model",
             .code = "model_not_found"};
    return nullptr;
}

std::optional<Job> ServerContext::admit(const CompletionRequest& req, ApiError& error) {
    Job job;
    job.model = resolve(req.model, error);
    if (!job.model) return std::nullopt;
    auto loaded = registry_.get(*job.model);
    if (!loaded) {
        error = {.status = 500, .message = loaded.error().message};
        return std::nullopt;
    }
    job.engine = loaded->engine;
    job.load_seconds = loaded->load_seconds;
    Engine& e = *job.engine;
    const text::Vocab& vocab = e.tokenizer().vocab();
    for (const auto& [id, bias] : req.gen.sampling.logit_bias) {
        if (!vocab.valid(id)) {
            error = {.message = fmt::format("'logit_bias' names token {}, outside the vocabulary of {} tokens", id,
                                            vocab.size()),
                     .param = "logit_bias"};
            return std::nullopt;
        }
    }

    std::string text = req.prompt;
    if (req.chat) {
        auto rendered = render_chat(e, req.messages);
        if (!rendered) {
            error = {.message = fmt::format("the model's chat template rejected the messages: {}",
                                            rendered.error().message),
                     .param = "messages"};
            return std::nullopt;
        }
        text = std::move(*rendered);
    }
    job.prompt_ids = prompt_tokens(e, text, req.chat || req.parse_special);
    if (job.prompt_ids.empty()) {
        error = {.message = fmt::format("'{}' is empty", req.prompt_field), .param = req.prompt_field};
        return std::nullopt;
    }
    int64_t n_ctx = options_.n_ctx > 0 ? options_.n_ctx : job.model->n_ctx_train;
    if (n_ctx <= 0) n_ctx = 4096;
    if (req.n_ctx > 0) n_ctx = std::min(n_ctx, req.n_ctx);
    // One position must stay free for the first generated token.
    if (static_cast<int64_t>(job.prompt_ids.size()) >= n_ctx) {
        error = {.message = fmt::format("the prompt is {} tokens, longer than the context of {} tokens",
                                        job.prompt_ids.size(), n_ctx),
                 .param = req.prompt_field,
                 .code = "context_length_exceeded"};
        return std::nullopt;
    }

    job.lease = slots_.acquire();
    if (!job.lease) {
        error = {.status = 503,
                 .message = fmt::format("the server is busy: {} requests are already waiting; try again later",
                                        options_.max_queue)};
        return std::nullopt;
    }
    Slot& slot = job.lease->slot();
    if (!slot.session || slot.model != job.model->name || slot.session->n_ctx() != n_ctx) {
        slot.session.reset();  // free the old KV cache before allocating the new one
        auto s = Session::create(e, n_ctx, KvType::F16);
        if (!s) {
            error = {.status = 500, .message = s.error().message};
            return std::nullopt;
        }
        slot.session = std::move(*s);
        slot.model = job.model->name;
    }
    job.gen = req.gen;
    return job;
}

Result<GenerateResult> ServerContext::run(Job& job, const PieceFn& on_piece) {
    auto r = generate(*job.lease->slot().session, job.prompt_ids, job.gen, on_piece);
    if (r && r->finish == FinishReason::Cancelled) cancelled_.fetch_add(1);
    return r;
}

uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string rfc3339_now() {
    const auto now = std::chrono::system_clock::now();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:09d}Z", tm, ns % 1'000'000'000);
}

std::string rfc3339(int64_t unix_seconds) {
    const std::time_t secs = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

}  // namespace strata::app::server
