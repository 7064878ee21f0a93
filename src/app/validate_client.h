#pragma once
// `strata validate --url`: the suite against a running OpenAI-compatible server
// (strata's own or any other), measured as a client sees it. Each generation
// is sent streamed (time to first token from the first event that carries
// text) and/or not streamed; token counts and tokens/s come only from the
// `usage` the server returns (streamed: `stream_options.include_usage`), never
// from counting words.

#include "engine/validate.h"

#include <string>

namespace strata::app {

struct ClientOptions {
    std::string url;    // http://HOST:PORT, optionally with a path prefix (".../v1" is understood)
    std::string model;  // sent as `model`; empty: left out (strata then uses its only model)
    std::string api_key;  // sent as a bearer token when set
    bool stream = true, non_stream = true;
    int timeout_s = 600;  // per request
};

// Every prompt x temperature x repetition, streamed then not (as asked). A
// request the server refuses is a sample with `error` set; a server that
// cannot be reached at all is an error.
Result<std::vector<Sample>> validate_url(const ClientOptions& o, const Suite& suite,
                                         const ValidateParams& p, const SampleFn& on_sample);

}  // namespace strata::app
