#include "app/validate_report.h"

#include "util/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace strata::app {
namespace {

using ojson = nlohmann::ordered_json;

// The samples of each (key) in the order keys first appear.
template <typename Key, typename KeyFn>
std::vector<std::vector<const Sample*>> group(const std::vector<Sample>& samples, KeyFn key) {
    std::vector<Key> keys;
    std::vector<std::vector<const Sample*>> groups;
    for (const Sample& s : samples) {
        const Key k = key(s);
        const auto it = std::find(keys.begin(), keys.end(), k);
        if (it == keys.end()) {
            keys.push_back(k);
            groups.push_back({&s});
        } else {
            groups[static_cast<size_t>(it - keys.begin())].push_back(&s);
        }
    }
    return groups;
}

// "mean" or "mean ± sd" over the samples that have the figure; "-" when none has it.
template <typename Get>
std::string stat(const std::vector<const Sample*>& g, Get get, const char* spec, double scale = 1) {
    std::vector<double> v;
    for (const Sample* s : g) {
        if (const std::optional<double> x = get(*s)) v.push_back(*x * scale);
    }
    if (v.empty()) return "-";
    const auto [mean, sd] = mean_stddev(v);
    const std::string m = fmt::format(fmt::runtime(spec), mean);
    return v.size() < 2 ? m : m + " ± " + fmt::format(fmt::runtime(spec), sd);
}

std::optional<double> as_double(const std::optional<int64_t>& v) {
    return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

// "pass", or the failed checks with how many of the runs failed each.
std::string checks_cell(const std::vector<const Sample*>& g) {
    std::map<std::string, int> failed;
    std::vector<std::string> order;
    for (const Sample* s : g) {
        std::vector<std::string> names;
        if (!s->error.empty()) names.push_back("error: " + s->error);
        for (const CheckResult& c : s->checks) {
            if (!c.pass) names.push_back(c.name + (c.detail.empty() ? "" : " (" + c.detail + ")"));
        }
        for (const std::string& n : names) {
            // The detail differs run to run; count by the check's name.
            const std::string key = n.substr(0, n.find(" ("));
            if (failed[key]++ == 0) order.push_back(key);
        }
    }
    if (order.empty()) return "pass";
    std::string out = "FAIL";
    for (const std::string& k : order) out += fmt::format("; {} ({}/{})", k, failed[k], g.size());
    return out;
}

std::string sep(size_t n, std::string_view cells) {
    std::string s = "|";
    for (size_t i = 0; i < n; ++i)
        s += std::string(cells.substr(i, 1) == "l" ? "---" : "---:") + "|";
    return s;
}

ojson opt_json(const std::optional<double>& v) {
    return v ? ojson(*v) : ojson(nullptr);
}
ojson opt_json(const std::optional<int64_t>& v) {
    return v ? ojson(*v) : ojson(nullptr);
}

}  // namespace

bool Comparison::identical() const {
    return std::all_of(pairs.begin(), pairs.end(),
                       [](const Pair& p) { return !p.first_difference; });
}

Comparison compare_samples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
    Comparison c;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        Comparison::Pair p{
            .prompt = a[i].prompt, .temperature = a[i].temperature, .repeat = a[i].repeat};
        const std::string &x = a[i].text, &y = b[i].text;
        const auto [ix, iy] = std::mismatch(x.begin(), x.end(), y.begin(), y.end());
        if (ix != x.end() || iy != y.end())
            p.first_difference = static_cast<size_t>(ix - x.begin());
        c.pairs.push_back(p);
    }
    return c;
}

void print_prompt_table(const std::vector<Sample>& samples) {
    fmt::print(
        "| prompt | temp | mode | runs | prompt tok | gen tok | TTFT ms | tok/s | e2e tok/s | word "
        "rep3 | "
        "token rep{} | checks |\n{}\n",
        kTokenNgram, sep(12, "llllrrrrrrrl"));
    using Key = std::tuple<std::string, double, std::string>;
    for (const auto& g : group<Key>(samples, [](const Sample& s) {
             return Key{s.prompt, s.temperature, s.mode};
         })) {
        const Sample& s = *g.front();
        fmt::print("| {} | {:.2f} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", s.prompt,
                   s.temperature, s.mode, g.size(),
                   stat(
                       g, [](const Sample& x) { return as_double(x.prompt_tokens); }, "{:.0f}"),
                   stat(
                       g, [](const Sample& x) { return as_double(x.completion_tokens); }, "{:.0f}"),
                   stat(
                       g, [](const Sample& x) { return x.ttft_s; }, "{:.1f}", 1e3),
                   stat(
                       g, [](const Sample& x) { return x.tokens_per_s; }, "{:.1f}"),
                   stat(
                       g, [](const Sample& x) { return x.e2e_tokens_per_s; }, "{:.1f}"),
                   stat(
                       g, [](const Sample& x) { return std::optional<double>(x.word_repetition); },
                       "{:.3f}"),
                   stat(
                       g, [](const Sample& x) { return x.token_repetition; }, "{:.3f}"),
                   checks_cell(g));
    }
}

void print_temperature_table(const std::vector<Sample>& samples) {
    fmt::print(
        "\n| temp | mode | runs | word rep3 mean ± sd | min | max | token rep{} mean ± sd | passed "
        "|\n{}\n",
        kTokenNgram, sep(8, "llrrrrrr"));
    using Key = std::pair<double, std::string>;
    for (const auto& g : group<Key>(samples, [](const Sample& s) {
             return Key{s.temperature, s.mode};
         })) {
        double lo = 1, hi = 0;
        size_t passed = 0;
        for (const Sample* s : g) {
            lo = std::min(lo, s->word_repetition);
            hi = std::max(hi, s->word_repetition);
            passed += s->passed();
        }
        fmt::print("| {:.2f} | {} | {} | {} | {:.3f} | {:.3f} | {} | {}/{} |\n",
                   g.front()->temperature, g.front()->mode, g.size(),
                   stat(
                       g, [](const Sample& x) { return std::optional<double>(x.word_repetition); },
                       "{:.3f}"),
                   lo, hi,
                   stat(
                       g, [](const Sample& x) { return x.token_repetition; }, "{:.3f}"),
                   passed, g.size());
    }
}

void print_comparison(const Comparison& c) {
    fmt::print(
        "\ncompare: A = [{}], B = [{}]\n\n| prompt | temp | repeat | identical | first difference "
        "|\n{}\n",
        c.placement_a, c.placement_b, sep(5, "lrrll"));
    for (const Comparison::Pair& p : c.pairs) {
        fmt::print("| {} | {:.2f} | {} | {} | {} |\n", p.prompt, p.temperature, p.repeat,
                   p.first_difference ? "NO" : "yes",
                   p.first_difference ? fmt::format("byte {}", *p.first_difference) : "");
    }
    fmt::print("\n{}\n", c.identical() ? "all outputs are byte-identical"
                                       : "OUTPUTS DIFFER between the placements");
}

ojson report_json(const ReportInfo& info, const std::vector<Sample>& samples,
                  const std::optional<Comparison>& cmp) {
    ojson out = {
        {"target", info.target},
        {"model", info.model.empty() ? ojson(nullptr) : ojson(info.model)},
        {"suite", info.suite},
        {"temperatures", info.params.temperatures},
        {"repeat", info.params.repeat},
        {"seed", info.params.seed},
        {"max_tokens_cap",
         info.params.max_tokens_cap > 0 ? ojson(info.params.max_tokens_cap) : ojson(nullptr)},
        {"chat", info.params.chat},
        {"token_ngram", kTokenNgram}};
    ojson rows = ojson::array();
    bool all_passed = true;
    for (const Sample& s : samples) {
        ojson checks = ojson::array();
        for (const CheckResult& c : s.checks)
            checks.push_back({{"name", c.name}, {"pass", c.pass}, {"detail", c.detail}});
        all_passed = all_passed && s.passed();
        rows.push_back({{"prompt", s.prompt},
                        {"temperature", s.temperature},
                        {"repeat", s.repeat},
                        {"mode", s.mode},
                        {"prompt_tokens", opt_json(s.prompt_tokens)},
                        {"completion_tokens", opt_json(s.completion_tokens)},
                        {"total_s", s.total_s},
                        {"ttft_s", opt_json(s.ttft_s)},
                        {"tokens_per_s", opt_json(s.tokens_per_s)},
                        {"e2e_tokens_per_s", opt_json(s.e2e_tokens_per_s)},
                        {"word_repetition", s.word_repetition},
                        {"token_repetition", opt_json(s.token_repetition)},
                        {"length_capped", s.length_capped},
                        {"finish_reason", s.finish},
                        {"passed", s.passed()},
                        {"error", s.error.empty() ? ojson(nullptr) : ojson(s.error)},
                        {"checks", checks},
                        {"text", s.text}});
    }
    out["samples"] = rows;
    out["passed"] = all_passed;
    if (cmp) {
        ojson pairs = ojson::array();
        for (const Comparison::Pair& p : cmp->pairs) {
            pairs.push_back({{"prompt", p.prompt},
                             {"temperature", p.temperature},
                             {"repeat", p.repeat},
                             {"identical", !p.first_difference},
                             {"first_difference",
                              p.first_difference ? ojson(*p.first_difference) : ojson(nullptr)}});
        }
        out["compare"] = {{"placement_a", cmp->placement_a},
                          {"placement_b", cmp->placement_b},
                          {"identical", cmp->identical()},
                          {"placement_b_expert_cache",
                           {{"hits", cmp->cache_b.hits},
                            {"misses", cmp->cache_b.misses},
                            {"evictions", cmp->cache_b.evictions},
                            {"bytes_read", cmp->cache_b.bytes_read}}},
                          {"pairs", pairs}};
    }
    return out;
}

}  // namespace strata::app
