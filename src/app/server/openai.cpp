// OpenAI's chat and text completions over the shared `ServerContext`. Requests
// are checked field by field (errors name the field, as OpenAI's do); responses
// and stream chunks follow OpenAI's shapes, so its client libraries work
// unchanged. Sampling fields OpenAI lacks but llama.cpp's server accepts
// (`top_k`, `min_p`, `repeat_penalty`, `ignore_eos`) are honoured too.

#include "app/server/openai.h"

#include "app/server/http_util.h"

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>

namespace strata::app::server {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

std::string make_id(const char* prefix) {
    static std::atomic<uint64_t> counter{0};
    return fmt::format("{}-{:016x}{:08x}", prefix, random_seed(), counter.fetch_add(1) & 0xffffffffu);
}

// The fields chat and text completions share.
void parse_sampling(Fields& f, const json& body, CompletionRequest& r, bool& stream, bool& include_usage) {
    r.model = f.string("model").value_or("");
    r.gen.sampling.seed = random_seed();
    if (auto n = f.integer("max_completion_tokens", 0, kMaxInt)) {
        r.gen.n_predict = static_cast<int>(*n);
        r.max_tokens_field = "max_completion_tokens";
    } else if (auto m = f.integer("max_tokens", 0, kMaxInt)) {
        r.gen.n_predict = static_cast<int>(*m);
        r.max_tokens_field = "max_tokens";
    }
    if (auto t = f.number("temperature", 0, 2)) r.gen.sampling.temperature = static_cast<float>(*t);
    if (auto p = f.number("top_p", 0, 1)) r.gen.sampling.top_p = static_cast<float>(*p);
    if (auto k = f.integer("top_k", 0, kMaxInt)) r.gen.sampling.top_k = static_cast<int>(*k);
    if (auto p = f.number("min_p", 0, 1)) r.gen.sampling.min_p = static_cast<float>(*p);
    if (auto p = f.number("repeat_penalty", 0, 100)) r.gen.sampling.repeat_penalty = static_cast<float>(*p);
    if (auto p = f.number("presence_penalty", -2, 2)) r.gen.sampling.presence_penalty = static_cast<float>(*p);
    if (auto p = f.number("frequency_penalty", -2, 2)) r.gen.sampling.frequency_penalty = static_cast<float>(*p);
    if (auto s = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
        r.gen.sampling.seed = static_cast<uint64_t>(*s);
    if (auto s = f.strings("stop")) r.gen.stop = *s;
    if (auto e = f.boolean("ignore_eos")) r.gen.ignore_eos = *e;
    if (auto n = f.integer("n", 1, 128); n && *n != 1) f.fail("n", "must be 1: strata generates one choice per request");
    stream = f.boolean("stream").value_or(false);
    if (const json* so = f.get("stream_options")) {
        if (!so->is_object()) f.fail("stream_options", "must be an object");
        else {
            Fields g(*so, "stream_options.");
            include_usage = g.boolean("include_usage").value_or(false);
            f.adopt(g);
        }
    }
    if (const json* rf = f.get("response_format")) {
        const json* type = rf->is_object() && rf->contains("type") ? &(*rf)["type"] : nullptr;
        if (!type || !type->is_string()) f.fail("response_format", "must be an object with a string 'type'");
        else if (*type != "text")
            f.fail("response_format", fmt::format("type '{}' is not supported; only 'text' is", type->get<std::string>()));
    }
    if (const json* lb = f.get("logit_bias")) {
        if (!lb->is_object()) return f.fail("logit_bias", "must be an object mapping token ids to numbers");
        for (const auto& [key, value] : lb->items()) {
            int32_t id = 0;
            const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
            if (ec != std::errc() || end != key.data() + key.size())
                return f.fail("logit_bias", fmt::format("key '{}' is not a token id", key));
            if (!value.is_number() || !std::isfinite(value.get<double>()) || std::abs(value.get<double>()) > 100)
                return f.fail("logit_bias", fmt::format("value of '{}' must be a number between -100 and 100", key));
            // OpenAI: -100 bans the token, 100 makes it the only choice.
            const double b = value.get<double>();
            r.gen.sampling.logit_bias[id] = b <= -100 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b);
        }
    }
    (void)body;
}

// `content` as a string: OpenAI allows a string, null, or an array of parts, of
// which a text model can take only `{"type": "text", "text": ...}`.
std::optional<std::string> message_text(Fields& f, const json& content, const std::string& field) {
    if (content.is_null()) return std::string();
    if (content.is_string()) return content.get<std::string>();
    if (!content.is_array()) return f.fail(field, "must be a string or an array of content parts"), std::nullopt;
    std::string text;
    for (size_t j = 0; j < content.size(); ++j) {
        const json& part = content[j];
        const std::string pf = fmt::format("{}[{}]", field, j);
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            return f.fail(pf, "must be an object with a string 'type'"), std::nullopt;
        if (part["type"] != "text")
            return f.fail(pf + ".type",
                          fmt::format("'{}' is not supported: strata serves text models", part["type"].get<std::string>())),
                   std::nullopt;
        if (!part.contains("text") || !part["text"].is_string())
            return f.fail(pf + ".text", "must be a string"), std::nullopt;
        text += part["text"].get<std::string>();
    }
    return text;
}

void parse_messages(Fields& f, CompletionRequest& r) {
    const json* msgs = f.get("messages");
    if (!msgs) return f.fail("messages", "is required");
    if (!msgs->is_array()) return f.fail("messages", "must be an array");
    if (msgs->empty()) return f.fail("messages", "must contain at least one message");
    for (size_t i = 0; i < msgs->size(); ++i) {
        const json& m = (*msgs)[i];
        const std::string mf = fmt::format("messages[{}]", i);
        if (!m.is_object()) return f.fail(mf, "must be an object");
        if (!m.contains("role") || !m["role"].is_string()) return f.fail(mf + ".role", "must be a string");
        if (!m.contains("content") && m["role"] != "assistant") return f.fail(mf + ".content", "is required");
        auto text = message_text(f, m.contains("content") ? m["content"] : json(nullptr), mf + ".content");
        if (!text) return;
        json out = m;
        out["content"] = *text;
        r.messages.push_back(std::move(out));
    }
}

// The token ids of `ids` (a JSON array), each checked for being an integer;
// their range against the vocabulary is checked by `admit`, which knows it.
void parse_token_ids(Fields& f, const json& ids, const std::string& field, CompletionRequest& r) {
    std::vector<int64_t> out;
    out.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        const json& v = ids[i];
        const std::string name = fmt::format("{}[{}]", field, i);
        // Only JSON integers: 1.5 is no token, and 3e9 parses as a double.
        if (v.is_number_unsigned()) {
            const uint64_t u = v.get<uint64_t>();
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return f.fail(name, fmt::format("is token id {}, out of range", u));
            out.push_back(static_cast<int64_t>(u));
        } else if (v.is_number_integer()) {
            out.push_back(v.get<int64_t>());
        } else {
            return f.fail(name, fmt::format("must be an integer token id, not {}", v.dump()));
        }
    }
    r.prompt_ids = std::move(out);
    r.prompt_ids_field = field;
}

// OpenAI's `prompt`: a string, token ids, or an array of either. An array of
// several prompts asks for a batch of completions, which strata does not serve
// in one request: refused, naming how many were sent.
void parse_prompt(Fields& f, CompletionRequest& r) {
    const json* p = f.get("prompt");
    if (!p) return f.fail("prompt", "is required");
    if (p->is_string()) {
        r.prompt = p->get<std::string>();
        return;
    }
    if (!p->is_array()) return f.fail("prompt", "must be a string, an array of token ids, or an array of one of these");
    const bool nested = !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array());
    if (!nested) return parse_token_ids(f, *p, "prompt", r);
    if (p->size() > 1)
        return f.fail("prompt", fmt::format("holds {} prompts; strata completes one prompt per request", p->size()));
    if ((*p)[0].is_string()) r.prompt = (*p)[0].get<std::string>();
    else parse_token_ids(f, (*p)[0], "prompt[0]", r);
}

json usage_json(const Job& job, const GenerateResult& g) {
    const auto n_prompt = static_cast<int64_t>(job.prompt_ids.size());
    return {{"prompt_tokens", n_prompt}, {"completion_tokens", g.n_generated}, {"total_tokens", n_prompt + g.n_generated}};
}

const char* finish_name(const GenerateResult& g) { return g.finish == FinishReason::Length ? "length" : "stop"; }

void handle(ServerContext& ctx, const std::string& http_body, httplib::Response& res, bool chat) {
    ApiError error;
    auto parsed = parse_openai_request(http_body, chat, error);
    if (!parsed) return openai_error(res, error);
    const CompletionRequest& req = parsed->completion;
    const bool streaming = parsed->stream, include_usage = parsed->include_usage;

    auto job = ctx.admit(req, error);
    if (!job) return openai_error(res, error);

    const std::string id = make_id(chat ? "chatcmpl" : "cmpl");
    const int64_t created = unix_seconds();
    const std::string model = job->model->name;
    const char* object = chat ? "chat.completion" : "text_completion";

    if (!streaming) {
        auto g = ctx.run(*job, nullptr);
        if (!g) return openai_error(res, {.status = 500, .message = g.error().message});
        json choice = {{"index", 0}};
        if (chat) choice["message"] = {{"role", "assistant"}, {"content", g->text}};
        else choice["text"] = g->text;
        choice["logprobs"] = nullptr;
        choice["finish_reason"] = finish_name(*g);
        set_json(res, 200,
                 {{"id", id},
                  {"object", object},
                  {"created", created},
                  {"model", model},
                  {"system_fingerprint", "strata"},
                  {"choices", json::array({choice})},
                  {"usage", usage_json(*job, *g)}});
        return;
    }

    auto shared = std::make_shared<Job>(std::move(*job));
    stream(res, "text/event-stream", [&ctx, shared, id, created, model, chat, include_usage](httplib::DataSink& sink) {
        const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
        auto chunk = [&](json delta_or_text, const char* finish) {
            json choice = {{"index", 0}};
            if (chat) choice["delta"] = std::move(delta_or_text);
            else choice["text"] = std::move(delta_or_text);
            choice["logprobs"] = nullptr;
            choice["finish_reason"] = finish ? json(finish) : json(nullptr);
            json c = {{"id", id},
                      {"object", chunk_object},
                      {"created", created},
                      {"model", model},
                      {"system_fingerprint", "strata"},
                      {"choices", json::array({choice})}};
            if (include_usage) c["usage"] = nullptr;
            return "data: " + dump(c) + "\n\n";
        };
        // The first chunk carries the role, as OpenAI's does.
        if (chat && !write(sink, chunk({{"role", "assistant"}, {"content", ""}}, nullptr))) return;
        auto g = ctx.run(*shared, [&](std::string_view piece) {
            const std::string text(piece);
            return write(sink, chunk(chat ? json{{"content", text}} : json(text), nullptr));
        }, [&sink] { return writable(sink); });
        if (!g) {
            json e = {{"error", {{"message", g.error().message}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}};
            write(sink, "data: " + dump(e) + "\n\n");
            return;
        }
        if (g->finish == FinishReason::Cancelled) return;
        if (!write(sink, chunk(chat ? json::object() : json(""), finish_name(*g)))) return;
        if (include_usage) {
            json u = {{"id", id},
                      {"object", chunk_object},
                      {"created", created},
                      {"model", model},
                      {"system_fingerprint", "strata"},
                      {"choices", json::array()},
                      {"usage", usage_json(*shared, *g)}};
            if (!write(sink, "data: " + dump(u) + "\n\n")) return;
        }
        write(sink, "data: [DONE]\n\n");
    });
}

}  // namespace

std::optional<OpenAIRequest> parse_openai_request(const std::string& http_body, bool chat, ApiError& error) {
    auto body = parse_body(http_body, error);
    if (!body) return std::nullopt;
    Fields f(*body);
    OpenAIRequest out;
    CompletionRequest& req = out.completion;
    req.chat = chat;
    if (chat) {
        parse_messages(f, req);
        req.prompt_field = "messages";
    } else {
        parse_prompt(f, req);
    }
    parse_sampling(f, *body, req, out.stream, out.include_usage);
    if (f.failed()) {
        error = f.error();
        return std::nullopt;
    }
    return out;
}

void openai_error(httplib::Response& res, const ApiError& e) {
    if (e.status == 503) res.set_header("Retry-After", "1");  // a queue moves in seconds
    const char* type = e.status == 401   ? "authentication_error"
                       : e.status >= 500 ? "server_error"
                                         : "invalid_request_error";
    set_json(res, e.status,
             {{"error",
               {{"message", e.message},
                {"type", type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}});
}

void add_openai_routes(httplib::Server& http, ServerContext& ctx) {
    auto model_json = [](const ModelInfo& m) {
        return json{{"id", m.name}, {"object", "model"}, {"created", m.modified}, {"owned_by", "strata"}};
    };
    http.Get("/v1/models", [&ctx, model_json](const httplib::Request&, httplib::Response& res) {
        json data = json::array();
        for (const ModelInfo* m : ctx.registry().list()) data.push_back(model_json(*m));
        set_json(res, 200, {{"object", "list"}, {"data", data}});
    });
    http.Get(R"(/v1/models/(.+))", [&ctx, model_json](const httplib::Request& req, httplib::Response& res) {
        ApiError error;
        const ModelInfo* m = ctx.resolve(req.matches[1].str(), error);
        if (!m) return openai_error(res, error);
        set_json(res, 200, model_json(*m));
    });
    post(http, ctx.options(), "/v1/chat/completions", openai_error,
         [&ctx](const std::string& body, httplib::Response& res) { handle(ctx, body, res, true); });
    post(http, ctx.options(), "/v1/completions", openai_error,
         [&ctx](const std::string& body, httplib::Response& res) { handle(ctx, body, res, false); });
}

}  // namespace strata::app::server
