#include "app/server/context.h"

#include "app/builtin_model.h"
#include "app/server/discovery.h"
#include "engine/prompt.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <cstdlib>
#include <ctime>
#include <random>

namespace strata::app::server {
ServerContext::ServerContext(ServerOptions options)
    : options_(std::move(options)),
      registry_(RegistryOptions{
          .engine = {.threads = options_.threads,
                     .prefetch = options_.prefetch,
                     .placement = options_.placement,
                     .memory = {.n_ctx = options_.n_ctx, .n_parallel = options_.parallel},
                     .log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }},
          .scheduler = {.n_slots = options_.parallel,
                        .max_queue = options_.max_queue,
                        .n_ctx = options_.n_ctx,
                        .on_first_token = [this](double s) { metrics_.time_to_first_token().observe(s); },
                        .on_inter_token = [this](double s) { metrics_.inter_token().observe(s); }},
          .max_loaded = options_.max_loaded,
          .cap_ctx_at_training = options_.cap_ctx_at_training}) {}

bool Channel::push(std::string_view piece) {
    std::lock_guard lock(mu_);
    if (closed_ || text_.size() + piece.size() > kMaxPending) return false;
    text_ += piece;
    cv_.notify_all();
    return true;
}

void Channel::finish(Result<GenerateResult> result) {
    std::lock_guard lock(mu_);
    done_ = std::move(result);
    cv_.notify_all();
}

Channel::Event Channel::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !text_.empty() || done_.has_value(); });
    Event e{.text = std::move(text_)};
    text_.clear();
    if (done_) {
        e.done = std::move(done_);
        done_.reset();
    }
    return e;
}

void Channel::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
}

Scheduler::Stats ServerContext::scheduler_stats() const {
    Scheduler::Stats total;
    for (const auto& [info, m] : registry_.loaded_models()) {
        const auto s = m->scheduler->stats();
        total.slots += s.slots;
        total.active += s.active;
        total.queued += s.queued;
        total.kv_bytes += s.kv_bytes;
    }
    total.cancelled = metrics_.cancelled();
    return total;
}

Status ServerContext::discover() {
    const DiscoveryRoots roots = default_roots(options_.model_dirs, options_.discover, std::getenv);
    STRATA_TRY(register_models(registry_, options_.models, roots));
    if (!registry_.list().empty()) return {};
    if (!options_.discover) return err("no models: give --model FILE or --model-dir DIR");
    // Nothing given and nothing found: serve the built-in model rather than nothing.
    auto builtin = builtin_model_path();
    if (!builtin) return builtin.error();
    STRATA_TRY(registry_.add_file(*builtin, kBuiltinModelName));
    fmt::print(stderr, "no model given or found; using the built-in {}\n", kBuiltinModelName);
    return {};
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
    if (draining_.load()) {
        error = {.status = 503, .message = "the server is shutting down"};
        return std::nullopt;
    }
    const ServerOptions& o = options_;
    if (static_cast<int64_t>(req.messages.size()) > o.max_messages) {
        error = {.message = fmt::format("'messages' has {} messages, more than the limit of {} (--max-messages)",
                                        req.messages.size(), o.max_messages),
                 .param = "messages"};
        return std::nullopt;
    }
    if (static_cast<int64_t>(req.gen.stop.size()) > o.max_stop) {
        error = {.message = fmt::format("'stop' has {} strings, more than the limit of {} (--max-stop)",
                                        req.gen.stop.size(), o.max_stop),
                 .param = "stop"};
        return std::nullopt;
    }
    for (const std::string& s : req.gen.stop) {
        if (static_cast<int64_t>(s.size()) <= o.max_stop_bytes) continue;
        error = {.message = fmt::format("a 'stop' string is {} bytes, longer than the limit of {} (--max-stop-bytes)",
                                        s.size(), o.max_stop_bytes),
                 .param = "stop"};
        return std::nullopt;
    }
    Job job;
    job.model = resolve(req.model, error);
    if (!job.model) return std::nullopt;
    auto loaded = registry_.get(*job.model);
    if (!loaded) {
        error = {.status = 500, .message = loaded.error().message};
        return std::nullopt;
    }
    job.loaded = loaded->model;
    job.load_seconds = loaded->load_seconds;
    Engine& e = *job.loaded->engine;
    const text::Vocab& vocab = e.tokenizer().vocab();
    for (const auto& [id, bias] : req.gen.sampling.logit_bias) {
        if (!vocab.valid(id)) {
            error = {.message = fmt::format("'logit_bias' names token {}, outside the vocabulary of {} tokens", id,
                                            vocab.size()),
                     .param = "logit_bias"};
            return std::nullopt;
        }
    }

    if (req.prompt_ids) {
        // Token ids from the client go straight into the embedding lookup: each
        // must name a row of the model's table and a token the detokenizer knows.
        const int64_t n_vocab = std::min<int64_t>(e.hparams().n_vocab, static_cast<int64_t>(vocab.size()));
        for (size_t i = 0; i < req.prompt_ids->size(); ++i) {
            const int64_t id = (*req.prompt_ids)[i];
            if (id >= 0 && id < n_vocab) continue;
            const std::string field = fmt::format("{}[{}]", req.prompt_ids_field, i);
            error = {.message = fmt::format("{}: token id {} is out of range [0, {})", field, id, n_vocab),
                     .param = field};
            return std::nullopt;
        }
        job.prompt_ids.assign(req.prompt_ids->begin(), req.prompt_ids->end());
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
    if (!req.prompt_ids) job.prompt_ids = prompt_tokens(e, text, req.chat || req.parse_special);
    if (job.prompt_ids.empty()) {
        error = {.message = fmt::format("'{}' is empty", req.prompt_field), .param = req.prompt_field};
        return std::nullopt;
    }
    int64_t n_ctx = job.loaded->scheduler->options().n_ctx;
    if (req.n_ctx > 0) n_ctx = std::min(n_ctx, req.n_ctx);
    // One position must stay free for the first generated token.
    if (static_cast<int64_t>(job.prompt_ids.size()) >= n_ctx) {
        error = {.message = fmt::format("the prompt is {} tokens, longer than the context of {} tokens",
                                        job.prompt_ids.size(), n_ctx),
                 .param = req.prompt_field,
                 .code = "context_length_exceeded"};
        return std::nullopt;
    }
    const int64_t room = n_ctx - static_cast<int64_t>(job.prompt_ids.size());
    if (req.max_tokens_field && req.gen.n_predict > room) {
        error = {.message = fmt::format("'{}' is {}, but the context of {} tokens leaves {} after the prompt of {} tokens",
                                        req.max_tokens_field, req.gen.n_predict, n_ctx, room, job.prompt_ids.size()),
                 .param = req.max_tokens_field,
                 .code = "context_length_exceeded"};
        return std::nullopt;
    }

    auto channel = std::make_shared<Channel>();
    auto ticket = job.loaded->scheduler->submit(
        {.prompt = job.prompt_ids,
         .gen = req.gen,
         .n_ctx = n_ctx,
         .on_piece = [channel](std::string_view piece) { return channel->push(piece); },
         .on_done = [channel](Result<GenerateResult> r) { channel->finish(std::move(r)); }});
    if (!ticket) {
        error = {.status = 503,
                 .message = fmt::format("the server is busy: {} requests are already waiting for '{}'; try again later",
                                        options_.max_queue, job.model->name)};
        return std::nullopt;
    }
    job.channel = std::move(channel);
    job.ticket = std::move(*ticket);
    in_flight_.fetch_add(1);
    job.in_flight = std::shared_ptr<void>(nullptr, [this](void*) { in_flight_.fetch_sub(1); });
    return job;
}

Result<GenerateResult> ServerContext::run(Job& job, const PieceFn& on_piece, const std::function<bool()>& alive) {
    // How often a worker with nothing to send checks that its client is still
    // there, so a client that leaves while queued or during a long prompt is
    // dropped promptly.
    constexpr std::chrono::milliseconds kPoll{50};
    bool cancelled = false;
    auto cancel = [&] {
        cancelled = true;
        job.channel->close();
        job.ticket->cancel();
    };
    while (true) {
        Channel::Event ev = job.channel->wait(kPoll);
        if (!ev.text.empty() && !cancelled && on_piece && !on_piece(ev.text)) cancel();
        if (ev.done) {
            Result<GenerateResult> r = std::move(*ev.done);
            if (r) metrics_.finished(r->n_prompt, r->n_generated, r->finish == FinishReason::Cancelled);
            // A stream cut short by shutdown ends with an error event, so its
            // client can tell it from a finished one.
            if (r && r->finish == FinishReason::Cancelled && stopping_.load())
                return err("the server is shutting down; generation stopped after {} tokens", r->n_generated);
            return r;
        }
        if (!cancelled && (stopping_.load() || (ev.text.empty() && alive && !alive()))) cancel();
    }
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
