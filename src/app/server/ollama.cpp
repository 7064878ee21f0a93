// Ollama's generate and chat over the shared `ServerContext`, and its model
// listing endpoints. Defaults follow Ollama's (streaming on, `top_p` 0.9,
// `repeat_penalty` 1.1, `min_p` 0); durations are nanoseconds, as Ollama
// reports them.

#include "app/server/ollama.h"

#include "app/server/http_util.h"
#include "gguf/file.h"

#include <fmt/format.h>

#include <limits>

namespace strata::app::server {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

int64_t ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

std::string parameter_size(uint64_t n) {
    if (n >= 1'000'000'000) return fmt::format("{:.1f}B", static_cast<double>(n) / 1e9);
    if (n >= 1'000'000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
    return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
}

json details_json(const ModelInfo& m) {
    return {{"parent_model", ""},
            {"format", "gguf"},
            {"family", m.arch},
            {"families", json::array({m.arch})},
            {"parameter_size", parameter_size(m.n_params)},
            {"quantization_level", ""}};
}

// A stable stand-in for Ollama's blob digest: hashing a many-GB file per listing
// would be too slow, so this names the file's path, size and time instead.
std::string digest(const ModelInfo& m) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : fmt::format("{}|{}|{}", m.path, m.size, m.modified)) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    return fmt::format("{:016x}", h);
}

json model_entry(const ModelInfo& m) {
    return {{"name", m.name},
            {"model", m.name},
            {"modified_at", rfc3339(m.modified)},
            {"size", m.size},
            {"digest", digest(m)},
            {"details", details_json(m)}};
}

void parse_options(Fields& top, CompletionRequest& r) {
    // Ollama's defaults where they differ from the sampler's.
    r.gen.sampling.top_p = 0.9f;
    r.gen.sampling.min_p = 0.0f;
    r.gen.sampling.repeat_penalty = 1.1f;
    r.gen.sampling.seed = random_seed();
    const json* o = top.get("options");
    if (!o) return;
    if (!o->is_object()) return top.fail("options", "must be an object");
    Fields f(*o, "options.");
    if (auto t = f.number("temperature", 0, 100)) r.gen.sampling.temperature = static_cast<float>(*t);
    if (auto k = f.integer("top_k", 0, kMaxInt)) r.gen.sampling.top_k = static_cast<int>(*k);
    if (auto p = f.number("top_p", 0, 1)) r.gen.sampling.top_p = static_cast<float>(*p);
    if (auto p = f.number("min_p", 0, 1)) r.gen.sampling.min_p = static_cast<float>(*p);
    if (auto s = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
        s && *s >= 0)
        r.gen.sampling.seed = static_cast<uint64_t>(*s);
    // -1: until the end of generation; -2: until the context is full.
    if (auto n = f.integer("num_predict", -2, kMaxInt)) r.gen.n_predict = *n < 0 ? -1 : static_cast<int>(*n);
    if (auto s = f.strings("stop")) r.gen.stop = *s;
    if (auto p = f.number("repeat_penalty", 0, 100)) r.gen.sampling.repeat_penalty = static_cast<float>(*p);
    if (auto n = f.integer("repeat_last_n", -1, kMaxInt)) r.gen.sampling.penalty_last_n = static_cast<int>(*n);
    if (auto p = f.number("presence_penalty", -100, 100)) r.gen.sampling.presence_penalty = static_cast<float>(*p);
    if (auto p = f.number("frequency_penalty", -100, 100)) r.gen.sampling.frequency_penalty = static_cast<float>(*p);
    if (auto n = f.integer("num_ctx", 1, kMaxInt)) r.n_ctx = *n;
    top.adopt(f);
}

// Fields Ollama accepts that a text model cannot honour are errors, not silently dropped.
void reject_unsupported(Fields& f) {
    if (const json* fmt_field = f.get("format"); fmt_field && !(fmt_field->is_string() && fmt_field->get<std::string>().empty()))
        f.fail("format", "is not supported yet: structured output needs constrained sampling");
    if (const json* images = f.get("images"); images && !(images->is_array() && images->empty()))
        f.fail("images", "are not supported: strata serves text models");
}

json final_stats(const Job& job, const GenerateResult& g, Clock::time_point start) {
    return {{"done", true},
            {"done_reason", g.finish == FinishReason::Length ? "length" : "stop"},
            {"total_duration", ns(std::chrono::duration<double>(Clock::now() - start).count())},
            {"load_duration", ns(job.load_seconds)},
            {"prompt_eval_count", static_cast<int64_t>(job.prompt_ids.size())},
            {"prompt_eval_duration", ns(g.prompt_seconds)},
            {"eval_count", g.n_generated},
            {"eval_duration", ns(g.generate_seconds)}};
}

void handle(ServerContext& ctx, const std::string& http_body, httplib::Response& res, bool chat) {
    const auto start = Clock::now();
    ApiError error;
    auto parsed = parse_ollama_request(http_body, chat, error);
    if (!parsed) return ollama_error(res, error);
    const CompletionRequest& req = parsed->completion;
    const bool streaming = parsed->stream, load_only = parsed->load_only;

    const ModelInfo* model = ctx.resolve(req.model, error);
    if (!model) return ollama_error(res, error);
    if (load_only) {
        auto loaded = ctx.registry().get(*model);
        if (!loaded) return ollama_error(res, {.status = 500, .message = loaded.error().message});
        json out = {{"model", model->name}, {"created_at", rfc3339_now()}};
        if (chat) out["message"] = {{"role", "assistant"}, {"content", ""}};
        else out["response"] = "";
        out["done"] = true;
        out["done_reason"] = "load";
        return set_json(res, 200, out);
    }
    auto job = ctx.admit(req, error);
    if (!job) return ollama_error(res, error);
    const std::string name = job->model->name;

    auto object = [chat, name](const std::string& text) {
        json o = {{"model", name}, {"created_at", rfc3339_now()}};
        if (chat) o["message"] = {{"role", "assistant"}, {"content", text}};
        else o["response"] = text;
        return o;
    };
    if (!streaming) {
        auto g = ctx.run(*job, nullptr);
        if (!g) return ollama_error(res, {.status = 500, .message = g.error().message});
        json o = object(g->text);
        o.update(final_stats(*job, *g, start));
        return set_json(res, 200, o);
    }
    auto shared = std::make_shared<Job>(std::move(*job));
    stream(res, "application/x-ndjson", [&ctx, shared, object, start](httplib::DataSink& sink) {
        auto g = ctx.run(*shared, [&](std::string_view piece) {
            json o = object(std::string(piece));
            o["done"] = false;
            return write(sink, dump(o) + "\n");
        }, [&sink] { return writable(sink); });
        if (!g) {
            write(sink, dump(json{{"error", g.error().message}}) + "\n");
            return;
        }
        if (g->finish == FinishReason::Cancelled) return;
        json o = object("");
        o.update(final_stats(*shared, *g, start));
        write(sink, dump(o) + "\n");
    });
}

void handle_show(ServerContext& ctx, const std::string& http_body, httplib::Response& res) {
    ApiError error;
    auto body = parse_body(http_body, error);
    if (!body) return ollama_error(res, error);
    Fields f(*body);
    std::string name = f.string("model").value_or("");
    if (name.empty()) name = f.string("name").value_or("");
    if (name.empty() && !f.failed()) f.fail("model", "is required");
    if (f.failed()) return ollama_error(res, f.error());
    const ModelInfo* m = ctx.resolve(name, error);
    if (!m) return ollama_error(res, error);
    auto file = gguf::File::open(m->path);
    if (!file) return ollama_error(res, {.status = 500, .message = file.error().message});
    json info = {{"general.architecture", m->arch}, {"general.parameter_count", m->n_params}};
    for (const char* key : {"context_length", "embedding_length", "block_count", "feed_forward_length",
                            "attention.head_count", "attention.head_count_kv", "expert_count", "expert_used_count"}) {
        const std::string k = m->arch + "." + key;
        if (auto v = file->find_int(k); v && *v) info[k] = **v;
    }
    std::string tmpl;
    if (auto t = file->get_string("tokenizer.chat_template")) tmpl = std::string(*t);
    set_json(res, 200,
             {{"license", ""},
              {"modelfile", ""},
              {"parameters", ""},
              {"template", tmpl},
              {"details", details_json(*m)},
              {"model_info", info},
              {"capabilities", json::array({"completion"})},
              {"modified_at", rfc3339(m->modified)}});
}

}  // namespace

std::optional<OllamaRequest> parse_ollama_request(const std::string& http_body, bool chat, ApiError& error) {
    auto body = parse_body(http_body, error);
    if (!body) return std::nullopt;
    Fields f(*body);
    OllamaRequest out;
    CompletionRequest& req = out.completion;
    req.chat = true;
    req.model = f.string("model").value_or("");
    if (req.model.empty() && !f.failed()) f.fail("model", "is required");
    out.stream = f.boolean("stream").value_or(true);
    reject_unsupported(f);
    if (chat) {
        req.prompt_field = "messages";
        const json* msgs = f.get("messages");
        if (msgs && !msgs->is_array()) f.fail("messages", "must be an array");
        out.load_only = !msgs || msgs->empty();  // Ollama: an empty chat just loads the model
        for (size_t i = 0; msgs && msgs->is_array() && i < msgs->size() && !f.failed(); ++i) {
            const json& m = (*msgs)[i];
            const std::string mf = fmt::format("messages[{}]", i);
            if (!m.is_object()) f.fail(mf, "must be an object");
            else if (!m.contains("role") || !m["role"].is_string()) f.fail(mf + ".role", "must be a string");
            else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null())
                f.fail(mf + ".content", "must be a string");
            else if (m.contains("images") && m["images"].is_array() && !m["images"].empty())
                f.fail(mf + ".images", "are not supported: strata serves text models");
            else {
                json msg = m;
                msg.erase("images");
                if (!msg.contains("content") || msg["content"].is_null()) msg["content"] = "";
                req.messages.push_back(std::move(msg));
            }
        }
    } else {
        const std::string prompt = f.string("prompt").value_or("");
        const std::string system = f.string("system").value_or("");
        const bool raw = f.boolean("raw").value_or(false);
        if (f.string("template").value_or("") != "") f.fail("template", "is not supported: the model's own chat template is used");
        out.load_only = prompt.empty() && system.empty();
        if (raw) {
            // A raw prompt is already formatted; its special-token texts are tokens.
            req.chat = false;
            req.parse_special = true;
            req.prompt = prompt;
        } else {
            if (!system.empty()) req.messages.push_back({{"role", "system"}, {"content", system}});
            req.messages.push_back({{"role", "user"}, {"content", prompt}});
        }
    }
    parse_options(f, req);
    if (f.failed()) {
        error = f.error();
        return std::nullopt;
    }
    return out;
}

void ollama_error(httplib::Response& res, const ApiError& e) {
    if (e.status == 503) res.set_header("Retry-After", "1");  // a queue moves in seconds
    set_json(res, e.status, {{"error", e.message}});
}

void add_ollama_routes(httplib::Server& http, ServerContext& ctx) {
    auto route = [&](const char* pattern, std::function<void(const std::string&, httplib::Response&)> fn) {
        post(http, ctx.options(), pattern, ollama_error, std::move(fn));
    };
    route("/api/generate", [&ctx](const std::string& body, httplib::Response& res) { handle(ctx, body, res, false); });
    route("/api/chat", [&ctx](const std::string& body, httplib::Response& res) { handle(ctx, body, res, true); });
    route("/api/show", [&ctx](const std::string& body, httplib::Response& res) { handle_show(ctx, body, res); });
    http.Get("/api/tags", [&ctx](const httplib::Request&, httplib::Response& res) {
        json models = json::array();
        for (const ModelInfo* m : ctx.registry().list()) models.push_back(model_entry(*m));
        set_json(res, 200, {{"models", models}});
    });
    http.Get("/api/ps", [&ctx](const httplib::Request&, httplib::Response& res) {
        json models = json::array();
        // Most recently used first. Loaded models stay until --max-loaded makes
        // room for another, so none has a time of expiry.
        for (const auto& [m, loaded] : ctx.registry().loaded_models()) {
            json e = model_entry(*m);
            e.erase("modified_at");
            e["expires_at"] = "2318-01-01T00:00:00Z";
            e["size_vram"] = 0;
            const auto st = loaded->scheduler->stats();
            e["context_length"] = loaded->scheduler->options().n_ctx;
            e["active"] = st.active;
            e["queued"] = st.queued;
            models.push_back(std::move(e));
        }
        set_json(res, 200, {{"models", models}});
    });
    http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
        set_json(res, 200, {{"version", "0.1.0"}});
    });
}

}  // namespace strata::app::server
