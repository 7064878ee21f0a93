// `strata tokenize --model FILE (--text S | --file F) [--ids] [--parse-special] [--add-bos]`:
// the token ids of a text under a model's own tokenizer, as JSON. Without `--ids`
// each token comes with the text it stands for.

#include "app/commands.h"
#include "gguf/file.h"
#include "text/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <memory>

namespace strata::app {

namespace {

struct TokenizeOptions {
    std::string model;
    std::string text;
    std::string file;
    bool ids_only = false;
    bool parse_special = false;
    bool add_bos = false;
};

int run_tokenize(const TokenizeOptions& o) {
    auto f = gguf::File::open(o.model);
    if (!f) return fail(f.error().message);
    auto tok = text::Tokenizer::load(*f);
    if (!tok) return fail(fmt::format("{}: {}", o.model, tok.error().message));

    std::string input = o.text;
    if (!o.file.empty()) {
        std::ifstream in(o.file, std::ios::binary);
        if (!in) return fail(fmt::format("cannot read --file '{}'", o.file));
        input.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (in.bad()) return fail(fmt::format("error reading --file '{}'", o.file));
    }

    std::vector<text::TokenId> ids;
    if (o.add_bos) {
        const text::TokenId bos = tok->vocab().bos();
        if (bos == text::kNoToken)
            return fail(fmt::format("--add-bos: {} has no BOS token", o.model));
        ids.push_back(bos);
    }
    const std::vector<text::TokenId> body =
        tok->tokenize(input, {.parse_special = o.parse_special});
    ids.insert(ids.end(), body.begin(), body.end());

    nlohmann::json out = nlohmann::json::array();
    for (text::TokenId id : ids) {
        if (o.ids_only) {
            out.push_back(id);
        } else {
            // A byte token may be part of a character: the JSON string shows it as U+FFFD.
            out.push_back({{"id", id}, {"piece", std::string(tok->piece(id, true))}});
        }
    }
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<TokenizeOptions>();
    CLI::App* cmd =
        app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
    cmd->add_option("--model,-m", opt->model, "GGUF file whose tokenizer to use")->required();
    auto* text = cmd->add_option("--text,-t", opt->text, "The text to tokenize");
    auto* file = cmd->add_option("--file,-f", opt->file, "Read the text from this file");
    text->excludes(file);
    cmd->add_flag("--ids", opt->ids_only, "Print only the ids, as a JSON list");
    cmd->add_flag("--parse-special", opt->parse_special,
                  "Recognise special-token texts such as <|im_start|> in the input");
    cmd->add_flag("--add-bos", opt->add_bos, "Put the BOS token first");
    cmd->callback([opt, &exit_code, text, file] {
        if (text->count() == 0 && file->count() == 0) {
            exit_code = fail("tokenize needs --text or --file");
            return;
        }
        exit_code = run_tokenize(*opt);
    });
}

}  // namespace strata::app
