// The repetition scores `strata validate` reports, against values worked out by
// hand: score = sum over n-grams seen more than once of (count - 1), divided by
// the number of n-grams.

#include "engine/repetition.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata {
namespace {

TEST(Repetition, WordsAreLowerCasedAndSplitOnNonAlphanumerics) {
    EXPECT_EQ(split_words("Don't STOP, café_42!\n\tGo"),
              (std::vector<std::string>{"don", "t", "stop", "café", "42", "go"}));
    EXPECT_TRUE(split_words(" ,.!? ").empty());
    EXPECT_EQ(split_words("日本語 text"), (std::vector<std::string>{"日本語", "text"}));
}

TEST(Repetition, WordTrigramsByHand) {
    // the cat the cat the cat: trigrams (the cat the) x2, (cat the cat) x2 of 4 -> (1 + 1) / 4.
    EXPECT_DOUBLE_EQ(word_trigram_repetition("the cat the cat the cat"), 0.5);
    // Case and punctuation do not make words differ.
    EXPECT_DOUBLE_EQ(word_trigram_repetition("The cat. THE cat, the CAT!"), 0.5);
    // a a a a a: (a a a) three times of 3 -> 2 / 3.
    EXPECT_DOUBLE_EQ(word_trigram_repetition("a a a a a"), 2.0 / 3.0);
    // No trigram twice.
    EXPECT_DOUBLE_EQ(word_trigram_repetition("one two three four five six"), 0.0);
    // x y z x y z w: (x y z) x2 of 5 trigrams -> 1 / 5.
    EXPECT_DOUBLE_EQ(word_trigram_repetition("x y z x y z w"), 0.2);
}

TEST(Repetition, FewerWordsThanTheNgramScoreZero) {
    EXPECT_DOUBLE_EQ(word_trigram_repetition(""), 0.0);
    EXPECT_DOUBLE_EQ(word_trigram_repetition("hello hello"), 0.0);
    EXPECT_DOUBLE_EQ(word_trigram_repetition("hello hello hello"), 0.0);  // one trigram, seen once
}

TEST(Repetition, TokenNgramsByHand) {
    // 1 2 3 4 repeated three times: 9 4-grams, 4 distinct -> 5 / 9.
    const std::vector<int32_t> loop = {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4};
    EXPECT_DOUBLE_EQ(ngram_repetition(std::span<const int32_t>(loop), 4), 5.0 / 9.0);
    // Unigrams: 12 items, 4 distinct -> 8 / 12.
    EXPECT_DOUBLE_EQ(ngram_repetition(std::span<const int32_t>(loop), 1), 8.0 / 12.0);
    const std::vector<int32_t> distinct = {5, 6, 7, 8, 9};
    EXPECT_DOUBLE_EQ(ngram_repetition(std::span<const int32_t>(distinct), 2), 0.0);
    EXPECT_DOUBLE_EQ(ngram_repetition(std::span<const int32_t>(distinct), 6), 0.0);
}

}  // namespace
}  // namespace strata
