#include "text/bpe.h"

#include "text/symbols.h"
#include "text/utf8.h"

#include <array>
#include <queue>

namespace strata::text {

namespace {

struct Bigram {
    int left;
    int right;
    int rank;
    size_t size;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

}  // namespace

void gpt2_byte_encode(std::string_view word, std::string& out) {
    static const std::array<std::string, 256> table = [] {
        std::array<std::string, 256> t;
        for (int b = 0; b < 256; ++b) utf8_append(t[b], gpt2_byte_to_cp(static_cast<uint8_t>(b)));
        return t;
    }();
    out.clear();
    for (char c : word) out += table[static_cast<uint8_t>(c)];
}

void bpe_tokenize_word(const Vocab& vocab, std::string_view word, std::vector<TokenId>& out) {
    if (word.empty()) return;
    if (vocab.ignore_merges()) {
        if (const TokenId id = vocab.find(word); id != kNoToken) {
            out.push_back(id);
            return;
        }
    }

    std::vector<Symbol> symbols = split_symbols(word);

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_add = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = symbols[left];
        const Symbol& r = symbols[right];
        const int rank = vocab.merge_rank(word.substr(l.off, l.n), word.substr(r.off, r.n));
        if (rank < 0) return;
        queue.push({left, right, rank, l.n + r.n});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    merge_pairs(symbols, queue, try_add);

    for (int i = 0; i != -1; i = symbols[i].next) {
        const Symbol& s = symbols[i];
        const std::string_view piece = word.substr(s.off, s.n);
        if (const TokenId id = vocab.find(piece); id != kNoToken) {
            out.push_back(id);
            continue;
        }
        // A symbol no token spells: emit its byte characters one by one, and the
        // unknown token (if any) for those the vocabulary lacks.
        for (size_t k = 0; k < piece.size();) {
            const size_t len = utf8_step(piece, k).len;
            const TokenId id = vocab.find(piece.substr(k, len));
            if (id != kNoToken) {
                out.push_back(id);
            } else if (vocab.unk() != kNoToken) {
                out.push_back(vocab.unk());
            }
            k += len;
        }
    }
}

}  // namespace strata::text
