#pragma once
// `strata-train experts`: what each expert of a trained model takes — for every
// layer and expert, its share of the routing choices and the frequent tokens
// most often routed to it. A token routed at random would go to a given expert
// n_expert_used / n_expert of the time; shares near 100% mean the router has
// learned to send that token there.

#include "util/result.h"

#include <string>

namespace strata::train {

struct ExpertsParams {
    std::string model;   // a GGUF written by `strata-train train`
    std::string text;    // text to route
    int windows = 64;    // windows of the model's context, evenly spaced over the text
    int top = 6;         // tokens listed per expert
    int min_count = 20;  // tokens seen fewer times are not listed
};

Status print_expert_tokens(const ExpertsParams& p);

}  // namespace strata::train
