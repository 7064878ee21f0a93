#include "engine/repetition.h"

#include "util/check.h"

#include <map>

namespace strata {

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool alnum =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
        if (alnum) {
            word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : ch;
        } else if (!word.empty()) {
            words.push_back(std::move(word));
            word.clear();
        }
    }
    if (!word.empty()) words.push_back(std::move(word));
    return words;
}

namespace {

// An ordered map of n-gram windows: the texts are short (thousands of items),
// and comparing spans avoids building a key per window.
template <typename T>
double repetition(std::span<const T> items, int n) {
    CHECK(n >= 1, "an n-gram has at least one item");
    const auto un = static_cast<size_t>(n);
    if (items.size() < un) return 0.0;
    const size_t total = items.size() - un + 1;
    auto less = [un](const T* a, const T* b) {
        for (size_t i = 0; i < un; ++i) {
            if (a[i] < b[i]) return true;
            if (b[i] < a[i]) return false;
        }
        return false;
    };
    std::map<const T*, size_t, decltype(less)> counts(less);
    for (size_t i = 0; i < total; ++i) ++counts[items.data() + i];
    // sum of (count - 1) over the n-grams seen more than once = total - distinct.
    return static_cast<double>(total - counts.size()) / static_cast<double>(total);
}

}  // namespace

double ngram_repetition(std::span<const std::string> items, int n) {
    return repetition(items, n);
}
double ngram_repetition(std::span<const int32_t> items, int n) {
    return repetition(items, n);
}

}  // namespace strata
