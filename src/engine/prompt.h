#pragma once
// Turning what a user sends into prompt tokens, the same way for every front end
// (`strata run`, `strata chat`, the server): a chat is rendered with the model's
// template; text is tokenised with a BOS where the vocabulary asks for one.

#include "engine/engine.h"
#include "util/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

// `messages` through the engine's chat template with the generation prompt and
// the model's BOS/EOS texts.
Result<std::string> render_chat(const Engine& e, const nlohmann::ordered_json& messages);

// The tokens of `text`, BOS first when the vocabulary asks for one. With
// `parse_special` (text rendered by a chat template) the texts of special tokens
// become those tokens, and a rendering that already starts with the BOS text
// gets no second BOS. User text is tokenised without it.
std::vector<int32_t> prompt_tokens(const Engine& e, std::string_view text, bool parse_special);

}  // namespace strata
