#pragma once
// The doubly linked list of symbols both merge-based tokenizers (SentencePiece
// and byte-level BPE) start from: one symbol per UTF-8 character of the input,
// merged pairwise until no merge applies.

#include "text/utf8.h"

#include <cstddef>
#include <string_view>
#include <vector>

namespace strata::text {

struct Symbol {
    int prev;
    int next;
    size_t off;  // into the text
    size_t n;    // bytes; 0 once merged into the symbol on its left
};

inline std::vector<Symbol> split_symbols(std::string_view text) {
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (size_t off = 0; off < text.size();) {
        const size_t len = utf8_step(text, off).len;
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({index - 1, off + len == text.size() ? -1 : index + 1, off, len});
        off += len;
    }
    return symbols;
}

}  // namespace strata::text
