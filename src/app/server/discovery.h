#pragma once
// Model discovery: where GGUF files live on a user's machine and what to call
// them. `discover_models` is a pure function of a `DiscoveryRoots` (no
// environment, no globals), so tests build fake trees and point roots at them;
// `default_roots` is the one place that reads the environment.
//
// Sources, in precedence order (the first to claim a file or a name wins):
//   1. each `--model-dir`, then `./models`, then each dir of `$STRATA_MODELS`
//      (':'-separated): every `*.gguf` down to `kMaxDepth` levels, named by its
//      path relative to the dir without `.gguf` (`stories260K`, `sub/model`);
//   2. the Hugging Face hub cache: `models--ORG--NAME/snapshots/REV/**.gguf`,
//      named `ORG/NAME/stem` (the revision `refs/main` points at comes first);
//   3. Ollama's store: manifests `manifests/REGISTRY/NAMESPACE/MODEL/TAG` whose
//      model layer names blob `blobs/sha256-HEX`, named `MODEL:TAG`, prefixed
//      `NAMESPACE/` when not `library` and `REGISTRY/` when not
//      `registry.ollama.ai`; the tag `latest` is left off (`find` accepts it);
//   4. LM Studio: `PUBLISHER/REPO/*.gguf`, named `PUBLISHER/REPO/stem`.
// A split set `X-00001-of-0000N.gguf` is one model, found by its first part and
// named `X`. One real file (after symlinks) appears once. Hidden folders and
// `mmproj*` projector files are skipped. Nothing here opens a GGUF: files that
// turn out unreadable are skipped later, with a warning, by the registry.

#include "app/server/registry.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::app::server {

inline constexpr int kMaxDepth = 6;  // folder levels walked below a root

struct DiscoveryRoots {
    std::vector<std::string> model_dirs;  // explicit: an error when missing
    std::vector<std::string> plain_dirs;  // ./models, $STRATA_MODELS: skipped when missing
    std::string hf_hub;                   // empty: none
    std::string ollama;
    std::vector<std::string> lmstudio;
};

// Explicit `model_dirs` only, or with `discover` also every default location
// found through `getenv` (`HF_HUB_CACHE`, `HF_HOME`, `OLLAMA_MODELS`,
// `STRATA_MODELS`, `HOME`).
DiscoveryRoots default_roots(std::vector<std::string> model_dirs, bool discover,
                             const std::function<const char*(const char*)>& getenv);

struct FoundModel {
    std::string name;
    std::string path;  // as found (a snapshot symlink stays one, so split siblings resolve)
};

struct Discovery {
    std::vector<FoundModel> models;
    std::vector<std::string> warnings;  // odd entries skipped, each naming its path
};

// Errors only for an explicit model dir that is not a directory.
Result<Discovery> discover_models(const DiscoveryRoots& roots);

// The model name of a file name: the stem, or for a split set the base of its
// first part; nullopt for a later part of a split set (opened through the first).
std::optional<std::string> model_stem(std::string_view file_name);

// Registers `files` (named by stem; errors are fatal) then everything
// `discover_models` finds (unreadable ones skipped with a warning on stderr).
// One real file is registered once.
Status register_models(ModelRegistry& registry, const std::vector<std::string>& files,
                       const DiscoveryRoots& roots);

}  // namespace strata::app::server
