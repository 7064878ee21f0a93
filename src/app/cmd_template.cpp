// `strata template`: render a chat template for a conversation, exactly as the
// engine will format prompts. The template comes from a GGUF's
// `tokenizer.chat_template` (with its BOS/EOS strings) or from a file.

#include "app/commands.h"
#include "gguf/file.h"
#include "text/chat_template.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>

namespace strata::app {
namespace {

struct TemplateArgs {
    std::string model;
    std::string template_file;
    std::optional<std::string> bos, eos;
    std::string messages;
    bool no_generation_prompt = false;
    std::string now;
};

Result<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return err("cannot read '{}'", path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The text of special token `key` (an id indexed into `tokenizer.ggml.tokens`),
// or empty when the model does not name one.
Result<std::string> token_text(const gguf::File& f, const char* key) {
    auto id = f.find_int(key);
    if (!id) return id.error();
    if (!*id) return std::string();
    auto tokens = f.get_array("tokenizer.ggml.tokens");
    if (!tokens) return tokens.error();
    const gguf::Array& a = **tokens;
    if (**id < 0 || static_cast<uint64_t>(**id) >= a.strings.size())
        return err("{} = {} is outside the vocabulary ({} tokens)", key, **id, a.strings.size());
    return std::string(a.strings[static_cast<size_t>(**id)]);
}

int run(const TemplateArgs& a) {
    text::ChatInputs in;
    // `--messages` is a JSON array of messages, or an object with `messages` and
    // further template variables (`tools`, ...); "@FILE" reads it from a file.
    std::string json_text = a.messages;
    if (!json_text.empty() && json_text[0] == '@') {
        auto t = read_text(json_text.substr(1));
        if (!t) return fail(t.error().message);
        json_text = *t;
    }
    auto j = nlohmann::ordered_json::parse(json_text, nullptr, false);
    if (j.is_discarded()) return fail("--messages is not valid JSON");
    if (j.is_array()) {
        in.messages = std::move(j);
    } else if (j.is_object() && j.contains("messages") && j["messages"].is_array()) {
        in.messages = j["messages"];
        j.erase("messages");
        in.extra = std::move(j);
    } else {
        return fail("--messages must be a JSON array of messages or an object with a 'messages' array");
    }
    in.add_generation_prompt = !a.no_generation_prompt;
    if (!a.now.empty()) {
        auto t = text::parse_datetime(a.now);
        if (!t) return fail("--now: " + t.error().message);
        in.clock = text::fixed_clock(*t);
    }

    std::optional<text::ChatTemplate> tmpl;
    if (!a.model.empty()) {
        auto f = gguf::File::open(a.model);
        if (!f) return fail(f.error().message);
        auto bos = token_text(*f, "tokenizer.ggml.bos_token_id");
        if (!bos) return fail(bos.error().message);
        auto eos = token_text(*f, "tokenizer.ggml.eos_token_id");
        if (!eos) return fail(eos.error().message);
        in.bos_token = *bos;
        in.eos_token = *eos;
        if (f->find("tokenizer.chat_template")) {
            auto src = f->get_string("tokenizer.chat_template");
            if (!src) return fail(src.error().message);
            auto t = text::ChatTemplate::parse(*src);
            if (!t) return fail(t.error().message);
            tmpl = std::move(*t);
        } else {
            std::fprintf(stderr, "note: '%s' has no tokenizer.chat_template; using ChatML\n", a.model.c_str());
            tmpl = text::ChatTemplate::chatml();
        }
    } else {
        auto src = read_text(a.template_file);
        if (!src) return fail(src.error().message);
        auto t = text::ChatTemplate::parse(*src);
        if (!t) return fail(a.template_file + ": " + t.error().message);
        tmpl = std::move(*t);
    }
    if (a.bos) in.bos_token = *a.bos;
    if (a.eos) in.eos_token = *a.eos;

    auto out = tmpl->render(in);
    if (!out) return fail(out.error().message);
    std::fwrite(out->data(), 1, out->size(), stdout);
    std::fflush(stdout);
    return 0;
}

}  // namespace

void add_template_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<TemplateArgs>();
    CLI::App* cmd = app.add_subcommand("template", "Render a chat template for a conversation");
    auto* model = cmd->add_option("--model", args->model, "GGUF file whose chat template (and BOS/EOS) to use");
    auto* file = cmd->add_option("--template", args->template_file, "Jinja chat template file");
    model->excludes(file);
    cmd->add_option("--bos-token", args->bos, "BOS token text (overrides the model's)");
    cmd->add_option("--eos-token", args->eos, "EOS token text (overrides the model's)");
    cmd->add_option("--messages", args->messages,
                    "JSON array of messages, or an object with 'messages' and more variables; @FILE reads a file")
        ->required();
    cmd->add_flag("--no-generation-prompt", args->no_generation_prompt, "Do not open an assistant turn");
    cmd->add_option("--now", args->now, "Fix the time strftime_now reads, as 2026-01-15T09:30");
    cmd->callback([args, &exit_code] {
        if (args->model.empty() && args->template_file.empty()) {
            exit_code = fail("give --model FILE or --template FILE");
            return;
        }
        exit_code = run(*args);
    });
}

}  // namespace strata::app
