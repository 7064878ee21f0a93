#pragma once
// Repetition scores for generated text, as evaluations of looping models use
// them: the share of a text's n-grams that repeat an n-gram seen before it.
//
// For n-grams g_1..g_T (T = items - n + 1) with counts c(g), the score is
//   sum over distinct g with c(g) > 1 of (c(g) - 1), divided by T
// = 1 - distinct / T: 0 when no n-gram repeats, approaching 1 when the text
// is one n-gram said over and over. Fewer than n items score 0.
//
// Words are what `split_words` returns: the text is lower-cased (ASCII) and
// split on every byte that is not an ASCII letter or digit; bytes of multi-byte
// UTF-8 characters count as letters, so "café" and "日本語" stay words.
// "Don't stop." is the words "don", "t", "stop".

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

std::vector<std::string> split_words(std::string_view text);

// The score above for n-grams of `items`; n >= 1.
double ngram_repetition(std::span<const std::string> items, int n);
double ngram_repetition(std::span<const int32_t> items, int n);

// Word trigrams of `text`: the figure the validation protocol reports.
inline double word_trigram_repetition(std::string_view text) {
    const std::vector<std::string> words = split_words(text);
    return ngram_repetition(std::span<const std::string>(words), 3);
}

}  // namespace strata
