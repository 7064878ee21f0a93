#include "engine/prompt.h"

namespace strata {

Result<std::string> render_chat(const Engine& e, const nlohmann::ordered_json& messages) {
    const text::Vocab& v = e.tokenizer().vocab();
    text::ChatInputs in;
    in.messages = messages;
    in.add_generation_prompt = true;
    in.bos_token = e.token_text(v.bos());
    in.eos_token = e.token_text(v.eos());
    return e.chat_template().render(in);
}

std::vector<int32_t> prompt_tokens(const Engine& e, std::string_view text, bool parse_special) {
    const text::Vocab& v = e.tokenizer().vocab();
    bool add_bos = v.add_bos() && v.valid(v.bos());
    if (parse_special && add_bos && text.starts_with(v.text(v.bos()))) add_bos = false;
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(v.bos());
    const auto rest = e.tokenizer().tokenize(text, {.add_special = false, .parse_special = parse_special});
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
}

}  // namespace strata
