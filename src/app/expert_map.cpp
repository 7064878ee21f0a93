#include "app/expert_map.h"

#include "util/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strata::app {

namespace {

std::string escape_xml(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

std::string expert_map_svg(const RoutingCounts& counts, const std::string& title) {
    const size_t n_layer = counts.size();
    const size_t n_expert = n_layer ? counts[0].size() : 0;
    uint64_t max = 0;
    for (const auto& layer : counts) {
        for (uint64_t c : layer) max = std::max(max, c);
    }
    // Cells shrink for wide models so the picture stays within a screen.
    const int cell = n_expert > 64 ? 6 : 14;
    const int left = 60, top = 40;
    const int width = left + static_cast<int>(n_expert) * cell + 20;
    const int height = top + static_cast<int>(n_layer) * cell + 30;
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
        "font-size=\"11\">\n<title>{}</title>\n<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
        width, height, escape_xml(title), left, escape_xml(title));
    for (size_t il = 0; il < n_layer; ++il) {
        const int y = top + static_cast<int>(il) * cell;
        svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 6, y + cell - 3, il);
        for (size_t e = 0; e < n_expert; ++e) {
            const uint64_t c = counts[il][e];
            // White for never chosen, dark blue for the most chosen cell anywhere.
            const double f = max ? static_cast<double>(c) / static_cast<double>(max) : 0.0;
            const int r = static_cast<int>(std::lround(255 - 225 * f)), g = static_cast<int>(std::lround(255 - 185 * f));
            svg += fmt::format(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"rgb({},{},255)\" stroke=\"#ddd\">"
                "<title>layer {} expert {}: {}</title></rect>\n",
                left + static_cast<int>(e) * cell, y, cell, cell, r, g, il, e, c);
        }
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\">experts 0..{} (left to right); layers top to bottom; darkest = {} "
                       "choices</text>\n</svg>\n",
                       left, height - 10, n_expert ? n_expert - 1 : 0, max);
    return svg;
}

std::string expert_stats_text(const RoutingCounts& counts, const std::vector<std::vector<ExpertSliceStats>>& cache) {
    std::string out = "layer  choices  experts used  busiest share  entropy";
    out += cache.empty() ? "\n" : "  cache hits  prefetched  misses  hit rate  read from disk\n";
    for (size_t il = 0; il < counts.size(); ++il) {
        uint64_t total = 0, busiest = 0;
        size_t used = 0;
        for (uint64_t c : counts[il]) {
            total += c;
            busiest = std::max(busiest, c);
            used += c > 0;
        }
        double entropy = 0.0;
        for (uint64_t c : counts[il]) {
            if (c == 0) continue;
            const double p = static_cast<double>(c) / static_cast<double>(total);
            entropy -= p * std::log(p);
        }
        const size_t n = counts[il].size();
        const double norm = n > 1 ? entropy / std::log(static_cast<double>(n)) : 0.0;
        out += fmt::format("{:5}  {:7}  {:>6}/{:<5}  {:12.1f}%  {:7.3f}", il, total, used, n,
                           total ? 100.0 * static_cast<double>(busiest) / static_cast<double>(total) : 0.0, norm);
        if (il < cache.size()) {
            ExpertSliceStats sum;
            for (const ExpertSliceStats& s : cache[il]) {
                sum.hits += s.hits;
                sum.prefetch_hits += s.prefetch_hits;
                sum.misses += s.misses;
                sum.bytes_read += s.bytes_read;
            }
            const uint64_t asked = sum.hits + sum.misses;
            out += fmt::format("  {:10}  {:10}  {:6}  {:7.1f}%  {:>14}", sum.hits, sum.prefetch_hits, sum.misses,
                               asked ? 100.0 * static_cast<double>(sum.hits) / static_cast<double>(asked) : 0.0,
                               format_bytes(sum.bytes_read));
        }
        out += "\n";
    }
    return out;
}

}  // namespace strata::app
