#include "app/validate_client.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>

namespace strata::app {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Endpoint {
    std::string origin;  // scheme://host:port
    std::string path;    // /v1/chat/completions or /v1/completions, under the URL's prefix
};

Result<Endpoint> endpoint(const std::string& url, bool chat) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos ||
        (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0))
        return err("--url '{}': expected http://HOST:PORT", url);
    const size_t slash = url.find('/', scheme + 3);
    Endpoint e{.origin = url.substr(0, slash)};
    std::string prefix = slash == std::string::npos ? "" : url.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (!prefix.ends_with("/v1")) prefix += "/v1";
    e.path = prefix + (chat ? "/chat/completions" : "/completions");
    return e;
}

json request_body(const ClientOptions& o, const SuitePrompt& sp, const ValidateParams& p,
                  double temperature, int rep, bool stream) {
    json body = {{"max_tokens", max_tokens(sp, p)},
                 {"temperature", temperature},
                 {"seed", p.seed + static_cast<uint64_t>(rep)},
                 {"stream", stream}};
    if (!o.model.empty()) body["model"] = o.model;
    if (stream) body["stream_options"] = {{"include_usage", true}};
    if (p.chat) {
        json messages = json::array();
        if (!sp.system.empty()) messages.push_back({{"role", "system"}, {"content", sp.system}});
        messages.push_back({{"role", "user"}, {"content", sp.prompt}});
        body["messages"] = std::move(messages);
    } else {
        body["prompt"] = sp.prompt;
    }
    return body;
}

// The text of a choice: `delta.content` (chat stream), `message.content`
// (chat), or `text` (completions).
std::string choice_text(const json& choice) {
    for (const char* key : {"delta", "message"}) {
        if (choice.contains(key) && choice[key].is_object()) {
            const json& m = choice[key];
            return m.contains("content") && m["content"].is_string()
                       ? m["content"].get<std::string>()
                       : "";
        }
    }
    return choice.contains("text") && choice["text"].is_string() ? choice["text"].get<std::string>()
                                                                 : "";
}

// Takes what one response body (a whole JSON object, or one stream event)
// says about the text, finish reason and usage.
void take_event(const json& ev, Sample& s) {
    if (ev.contains("error")) {
        const json& e = ev["error"];
        s.error = e.is_object() && e.contains("message") && e["message"].is_string()
                      ? e["message"].get<std::string>()
                      : ev["error"].dump();
        return;
    }
    if (ev.contains("choices") && ev["choices"].is_array() && !ev["choices"].empty()) {
        const json& c = ev["choices"][0];
        s.text += choice_text(c);
        if (c.contains("finish_reason") && c["finish_reason"].is_string())
            s.finish = c["finish_reason"];
    }
    if (ev.contains("usage") && ev["usage"].is_object()) {
        const json& u = ev["usage"];
        if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
            s.prompt_tokens = u["prompt_tokens"];
        if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
            s.completion_tokens = u["completion_tokens"];
    }
}

// Server-sent events arrive in arbitrary pieces: lines are cut out of `buf` as
// they complete, and each `data:` line is one event.
class SseParser {
  public:
    SseParser(Sample& s, Clock::time_point& first_text, bool& has_first)
        : s_(s), first_(first_text), has_(has_first) {}
    void feed(const char* data, size_t n) {
        buf_.append(data, n);
        for (size_t eol; (eol = buf_.find('\n')) != std::string::npos;) {
            std::string line = buf_.substr(0, eol);
            buf_.erase(0, eol + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.starts_with("data:")) continue;  // comments, `event:` lines, blank separators
            std::string_view payload = std::string_view(line).substr(5);
            while (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
            if (payload == "[DONE]") continue;
            const json ev = json::parse(payload, nullptr, false);
            if (ev.is_discarded()) {
                s_.error = "the server sent an event that is not JSON: " +
                           std::string(payload.substr(0, 200));
                continue;
            }
            const size_t before = s_.text.size();
            take_event(ev, s_);
            if (!has_ && s_.text.size() > before) first_ = Clock::now(), has_ = true;
        }
    }

  private:
    std::string buf_;
    Sample& s_;
    Clock::time_point& first_;
    bool& has_;
};

Result<Sample> request(httplib::Client& client, const ClientOptions& o, const Endpoint& ep,
                       const SuitePrompt& sp, const ValidateParams& p, double temperature, int rep,
                       bool stream) {
    Sample s{.prompt = sp.name,
             .temperature = temperature,
             .repeat = rep,
             .mode = stream ? "stream" : "non-stream"};
    httplib::Request req;
    req.method = "POST";
    req.path = ep.path;
    req.body = request_body(o, sp, p, temperature, rep, stream).dump();
    req.set_header("Content-Type", "application/json");
    if (!o.api_key.empty()) req.set_header("Authorization", "Bearer " + o.api_key);
    std::string body;  // the whole body, for errors and non-streamed responses
    Clock::time_point first;
    bool has_first = false;
    SseParser sse(s, first, has_first);
    int status = 0;
    req.response_handler = [&status](const httplib::Response& r) {
        status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        body.append(data, n);
        if (stream && status == 200) sse.feed(data, n);
        return true;
    };
    const auto t0 = Clock::now();
    auto res = client.send(req);
    const auto t1 = Clock::now();
    if (!res) return err("--url {}{}: {}", ep.origin, ep.path, httplib::to_string(res.error()));
    s.total_s = std::chrono::duration<double>(t1 - t0).count();
    if (status != 200) {
        const json e = json::parse(body, nullptr, false);
        Sample failed = s;
        if (!e.is_discarded()) take_event(e, failed);
        s.error = fmt::format("HTTP {}: {}", status,
                              failed.error.empty() ? body.substr(0, 300) : failed.error);
    } else if (!stream) {
        const json j = json::parse(body, nullptr, false);
        if (j.is_discarded())
            s.error = "the response is not JSON";
        else
            take_event(j, s);
    }
    if (has_first) s.ttft_s = std::chrono::duration<double>(first - t0).count();
    if (s.completion_tokens) {
        s.e2e_tokens_per_s = static_cast<double>(*s.completion_tokens) / s.total_s;
        if (s.ttft_s && s.total_s > *s.ttft_s)
            s.tokens_per_s = static_cast<double>(*s.completion_tokens) / (s.total_s - *s.ttft_s);
    }
    score_sample(s, sp, p, {});
    return s;
}

}  // namespace

Result<std::vector<Sample>> validate_url(const ClientOptions& o, const Suite& suite,
                                         const ValidateParams& p, const SampleFn& on_sample) {
    auto ep = endpoint(o.url, p.chat);
    if (!ep) return ep.error();
    httplib::Client client(ep->origin);
    if (!client.is_valid()) return err("--url '{}': not a URL this client can reach", o.url);
    client.set_read_timeout(o.timeout_s, 0);
    client.set_write_timeout(o.timeout_s, 0);
    client.set_connection_timeout(10, 0);
    std::vector<Sample> out;
    for (const double t : p.temperatures) {
        for (const SuitePrompt& sp : suite.prompts) {
            for (int rep = 0; rep < p.repeat; ++rep) {
                for (const bool stream : {true, false}) {
                    if (!(stream ? o.stream : o.non_stream)) continue;
                    auto s = request(client, o, *ep, sp, p, t, rep, stream);
                    if (!s) return s.error();
                    if (on_sample) on_sample(*s);
                    out.push_back(std::move(*s));
                }
            }
        }
    }
    return out;
}

}  // namespace strata::app
