#pragma once
// `strata validate`'s output: the human tables on stdout (per prompt, per
// temperature, and the placement comparison) and the JSON report.

#include "engine/validate.h"
#include "placement/expert_cache.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace strata::app {

// Two runs of the same plan (same prompts, temperatures, seeds) compared text by text.
struct Comparison {
    std::string placement_a, placement_b;  // the flags each ran with, for the report
    struct Pair {
        std::string prompt;
        double temperature = 0;
        int repeat = 0;
        std::optional<size_t> first_difference;  // byte offset; none when identical
    };
    std::vector<Pair> pairs;
    ExpertCacheStats
        cache_b;  // the disk tier's cache in B's run: proof that B read experts from disk
    bool identical() const;
};
Comparison compare_samples(const std::vector<Sample>& a, const std::vector<Sample>& b);

// One row per prompt, temperature and mode: means (± stdev) over repetitions.
void print_prompt_table(const std::vector<Sample>& samples);
// One row per temperature and mode: the repetition scores' mean, spread and range.
void print_temperature_table(const std::vector<Sample>& samples);
void print_comparison(const Comparison& c);

struct ReportInfo {
    std::string target;  // the model file, or the URL
    std::string model;   // the model name sent to a URL
    std::string suite;
    ValidateParams params;
};
nlohmann::ordered_json report_json(const ReportInfo& info, const std::vector<Sample>& samples,
                                   const std::optional<Comparison>& comparison);

}  // namespace strata::app
