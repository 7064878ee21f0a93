#include "experts.h"

#include "bpe_train.h"
#include "gguf/file.h"
#include "gguf_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace strata::train {

namespace {

// A token's text, with its leading space and newlines made visible.
std::string shown(const text::Tokenizer& tok, int32_t id) {
    std::string out;
    for (char ch : tok.piece(id)) {
        if (ch == ' ')
            out += "_";
        else if (ch == '\n')
            out += "\\n";
        else
            out += ch;
    }
    return out;
}

}  // namespace

Status print_expert_tokens(const ExpertsParams& p) {
    auto m = read_gguf(p.model);
    if (!m) return m.error();
    auto file = gguf::File::open(p.model);
    if (!file) return file.error();
    auto tok = text::Tokenizer::load(*file);
    if (!tok) return tok.error();
    auto text = read_corpus({p.text});
    if (!text) return text.error();
    const std::vector<int32_t> ids = encode_lines(*tok, *text);
    const Config& c = m->config();
    const int64_t T = c.n_ctx, span = static_cast<int64_t>(ids.size()) - T;
    if (span < 0 || p.windows < 1)
        return err("{}: shorter than one window of {} tokens", p.text, T);

    // counts[il][e][token]: routing choices of `token` in layer il that went to e.
    std::vector<std::vector<std::map<int32_t, int64_t>>> counts(
        static_cast<size_t>(c.n_layer),
        std::vector<std::map<int32_t, int64_t>>(static_cast<size_t>(c.n_expert)));
    std::map<int32_t, int64_t> seen;
    for (int w = 0; w < p.windows; ++w) {
        const int64_t off = span * w / std::max(1, p.windows - 1);
        const auto win = std::span(ids).subspan(static_cast<size_t>(off), static_cast<size_t>(T));
        const std::vector<int> r = m->routes(win);
        for (int64_t t = 0; t < T; ++t) {
            ++seen[win[static_cast<size_t>(t)]];
            for (int il = 0; il < c.n_layer; ++il) {
                for (int j = 0; j < c.n_expert_used; ++j) {
                    const int e = r[static_cast<size_t>((il * T + t) * c.n_expert_used + j)];
                    ++counts[static_cast<size_t>(il)][static_cast<size_t>(e)]
                            [win[static_cast<size_t>(t)]];
                }
            }
        }
    }
    const int64_t n_tok = int64_t{p.windows} * T;
    fmt::print(
        "{} tokens routed; a token routed at random goes to a given expert {:.0f}% of the time\n",
        n_tok, 100.0 * c.n_expert_used / c.n_expert);
    for (int il = 0; il < c.n_layer; ++il) {
        for (int e = 0; e < c.n_expert; ++e) {
            const auto& ce = counts[static_cast<size_t>(il)][static_cast<size_t>(e)];
            int64_t total = 0;
            std::vector<std::pair<double, int32_t>> share;
            for (const auto& [id, n] : ce) {
                total += n;
                if (seen[id] >= p.min_count)
                    share.push_back({static_cast<double>(n) / static_cast<double>(seen[id]), id});
            }
            std::sort(share.begin(), share.end(), [](auto& a, auto& b) {
                return a.first != b.first ? a.first > b.first : a.second < b.second;
            });
            std::string row;
            for (size_t i = 0; i < share.size() && static_cast<int>(i) < p.top; ++i)
                row += fmt::format(" {} {:.0f}%", shown(*tok, share[i].second),
                                   100.0 * share[i].first);
            fmt::print(
                "layer {} expert {} ({:4.1f}% of choices):{}\n", il, e,
                100.0 * static_cast<double>(total) / static_cast<double>(n_tok * c.n_expert_used),
                row);
        }
    }
    return {};
}

}  // namespace strata::train
