#pragma once
// Byte-level BPE training (GPT-2 style): the corpus is cut into words by the
// engine's own pre-tokenizer, every byte starts as its GPT-2 character, and the
// most frequent adjacent pair is merged until the vocabulary is full. The result
// is a `VocabSpec` the engine's tokenizer loads as it would a downloaded model's.

#include "text/tokenizer.h"
#include "text/vocab.h"

#include <string>
#include <string_view>
#include <vector>

namespace strata::train {

// The control tokens appended after the merges, in this order.
inline constexpr const char* kEndOfText = "<|endoftext|>";
inline constexpr const char* kImStart = "<|im_start|>";
inline constexpr const char* kImEnd = "<|im_end|>";

// The pre-tokenizer family written to `tokenizer.ggml.pre` (Qwen2's regexes,
// which the engine knows and which qwen3moe models use).
inline constexpr const char* kPreTokenizer = "qwen2";

// Trains `n_vocab` tokens (256 bytes, merges, then the three control tokens).
Result<text::VocabSpec> train_bpe(std::string_view corpus, int n_vocab);

// Token ids of `text` under `tok`, tokenised line by line (the pre-tokenizer
// never joins text across a newline anyway, and lines keep each call small).
std::vector<int32_t> encode_lines(const text::Tokenizer& tok, std::string_view text);

// Reads and concatenates text files.
Result<std::string> read_corpus(const std::vector<std::string>& paths);

}  // namespace strata::train
