#pragma once
// Summary statistics for repeated measurements (bench, validate).

#include <cmath>
#include <utility>
#include <vector>

namespace strata {

// Mean and sample standard deviation (n - 1), as llama-bench reports them; the
// deviation is 0 for fewer than two values, and both are 0 for none.
inline std::pair<double, double> mean_stddev(const std::vector<double>& v) {
    if (v.empty()) return {0.0, 0.0};
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    if (v.size() < 2) return {mean, 0.0};
    double sq = 0;
    for (double x : v) sq += (x - mean) * (x - mean);
    return {mean, std::sqrt(sq / static_cast<double>(v.size() - 1))};
}

}  // namespace strata
