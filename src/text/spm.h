#pragma once
// SentencePiece-style tokenisation (`tokenizer.ggml.model = "llama"`): starting
// from single characters, repeatedly merge the adjacent pair whose concatenation
// is the highest-scoring token; characters no token covers fall back to byte
// tokens (`<0xAB>`). Matches llama.cpp's `llm_tokenizer_spm`.

#include "text/vocab.h"

#include <string_view>
#include <vector>

namespace strata::text {

// Appends the ids of `text`, whose spaces are already escaped as U+2581 (`▁`)
// and which is valid UTF-8.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out);

}  // namespace strata::text
