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

// Applies the best queued merge until none is left. Each queued pair carries the
// indices of its two symbols (`left`, `right`) and their combined byte length
// when queued (`size`): a pair is stale once either side took part in another
// merge. `try_add(a, b)` queues the pair of symbols a and b if it may merge.
template <typename Queue, typename TryAdd>
void merge_pairs(std::vector<Symbol>& symbols, Queue& queue, TryAdd&& try_add) {
    while (!queue.empty()) {
        const auto b = queue.top();
        queue.pop();
        Symbol& l = symbols[b.left];
        Symbol& r = symbols[b.right];
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }
}

}  // namespace strata::text
