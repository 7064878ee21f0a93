#include "text/spm.h"

#include "text/symbols.h"
#include "text/utf8.h"

#include <queue>

namespace strata::text {

namespace {

struct Bigram {
    int left;
    int right;
    float score;
    size_t size;  // bytes of the two symbols when the pair was queued
};

// Highest score first; among equal scores the leftmost pair, as SentencePiece does.
struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out) {
    if (text.empty()) return;
    std::vector<Symbol> symbols = split_symbols(text);

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_add = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = symbols[left];
        const Symbol& r = symbols[right];
        const TokenId id = vocab.find(text.substr(l.off, l.n + r.n));
        if (id == kNoToken) return;
        queue.push({left, right, vocab.token(id).score, l.n + r.n});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    merge_pairs(symbols, queue, try_add);

    for (int i = 0; i != -1; i = symbols[i].next) {
        const Symbol& s = symbols[i];
        const std::string_view piece = text.substr(s.off, s.n);
        if (const TokenId id = vocab.find(piece); id != kNoToken) {
            out.push_back(id);
            continue;
        }
        // Only single characters can be missing (every merge made a token):
        // spell them as bytes, or as the unknown token where bytes are missing.
        for (char c : piece) {
            const TokenId id = vocab.byte_token(static_cast<uint8_t>(c));
            if (id != kNoToken) {
                out.push_back(id);
            } else if (vocab.unk() != kNoToken) {
                out.push_back(vocab.unk());
                break;
            }
        }
    }
}

}  // namespace strata::text
