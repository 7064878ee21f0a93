#include "app/server/discovery.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

namespace strata::app::server {
namespace {

namespace fs = std::filesystem;

bool is_gguf_name(const fs::path& p) {
    return p.extension() == ".gguf" && !p.filename().string().starts_with("mmproj");
}

// Collects discovered files, dropping a second sighting of one real file or of
// one name; the first source to claim either wins.
class Collector {
  public:
    explicit Collector(Discovery& out) : out_(out) {}

    // `warn_clash` off where a clash is expected: the same file name in an older
    // Hugging Face snapshot is an older version of the model, not another model.
    void add(std::string name, const fs::path& path, bool warn_clash = true) {
        std::error_code ec;
        const fs::path real = fs::canonical(path, ec);
        if (ec)
            return warn("{}: {}", path.string(), ec.message());  // dangling symlink, no permission
        if (!fs::is_regular_file(real, ec)) return warn("{}: not a regular file", path.string());
        if (!reals_.insert(real.string()).second) return;
        if (!names_.insert(name).second) {
            if (!warn_clash) return;
            return warn("{}: the name '{}' is taken by another model; skipped", path.string(),
                        name);
        }
        out_.models.push_back({.name = std::move(name), .path = path.string()});
    }

    template <typename... Args>
    void warn(fmt::format_string<Args...> f, Args&&... args) {
        out_.warnings.push_back(fmt::format(f, std::forward<Args>(args)...));
    }

  private:
    Discovery& out_;
    std::set<std::string> reals_, names_;
};

// The `*.gguf` files under `dir`, down to `max_depth` levels. Errors on the way (permissions,
// loops) end that branch of the walk with a warning, never the walk.
std::vector<fs::path> gguf_files(const fs::path& dir, int max_depth, Collector& c) {
    std::vector<fs::path> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
        end;
    if (ec) {
        c.warn("{}: {}", dir.string(), ec.message());
        return out;
    }
    for (; it != end; it.increment(ec)) {
        if (ec) {
            c.warn("{}: {}", dir.string(), ec.message());
            break;
        }
        const fs::directory_entry& de = *it;
        const std::string file = de.path().filename().string();
        std::error_code ec2;
        if (de.is_directory(ec2)) {
            if (file.starts_with(".") || it.depth() + 1 >= max_depth)
                it.disable_recursion_pending();
            continue;
        }
        if (is_gguf_name(de.path())) out.push_back(de.path());
    }
    // Sorted so that names do not depend on directory order, real files before
    // symlinks so that a file keeps its own name over a link's.
    auto key = [](const fs::path& p) {
        std::error_code e;
        return std::pair(fs::is_symlink(p, e), p);
    };
    std::sort(out.begin(), out.end(),
              [&](const fs::path& a, const fs::path& b) { return key(a) < key(b); });
    return out;
}

// `rel` without `.gguf`, the split suffix dropped; nullopt for later split parts.
std::optional<std::string> rel_name(const fs::path& rel) {
    auto stem = model_stem(rel.filename().string());
    if (!stem) return std::nullopt;
    const fs::path parent = rel.parent_path();
    return parent.empty() ? *stem : (parent / *stem).generic_string();
}

void scan_plain(const fs::path& dir, const std::string& prefix, int max_depth, Collector& c,
                bool warn_clash = true) {
    for (const fs::path& p : gguf_files(dir, max_depth, c))
        if (auto name = rel_name(p.lexically_relative(dir))) c.add(prefix + *name, p, warn_clash);
}

// Revisions of one hub repo, the one `refs/main` names first, then newest first.
std::vector<fs::path> hf_snapshots(const fs::path& repo) {
    std::vector<std::pair<fs::file_time_type, fs::path>> revs;
    std::error_code ec;
    for (const auto& de : fs::directory_iterator(repo / "snapshots", ec))
        revs.emplace_back(de.last_write_time(ec), de.path());
    std::sort(revs.begin(), revs.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string main_rev;
    std::ifstream(repo / "refs" / "main") >> main_rev;
    std::stable_partition(revs.begin(), revs.end(),
                          [&](const auto& r) { return r.second.filename() == main_rev; });
    std::vector<fs::path> out;
    for (auto& r : revs) out.push_back(std::move(r.second));
    return out;
}

void scan_hf(const fs::path& hub, Collector& c) {
    std::error_code ec;
    std::vector<fs::path> repos;
    for (const auto& de : fs::directory_iterator(hub, ec))
        if (de.path().filename().string().starts_with("models--")) repos.push_back(de.path());
    std::sort(repos.begin(), repos.end());
    for (const fs::path& repo : repos) {
        // `models--ORG--NAME` → `ORG/NAME`; `--` cannot occur inside hub names.
        std::string id = repo.filename().string().substr(8);
        for (size_t pos; (pos = id.find("--")) != std::string::npos;) id.replace(pos, 2, "/");
        for (const fs::path& snap : hf_snapshots(repo))
            scan_plain(snap, id + "/", kMaxDepth, c, /*warn_clash=*/false);
    }
}

// The blob a manifest names as the model layer, or an error naming the manifest.
Result<fs::path> ollama_blob(const fs::path& store, const fs::path& manifest) {
    std::ifstream in(manifest);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        return err("{}: not a JSON manifest", manifest.string());
    const auto layers = j.find("layers");
    if (layers == j.end() || !layers->is_array())
        return err("{}: no 'layers' array", manifest.string());
    for (const auto& l : *layers) {
        if (!l.is_object() || l.value("mediaType", "") != "application/vnd.ollama.image.model")
            continue;
        const std::string digest = l.value("digest", "");
        static const std::regex re(R"(^sha256:([0-9a-f]{64})$)");
        if (!std::regex_match(digest, re))
            return err("{}: bad digest '{}'", manifest.string(), digest);
        return store / "blobs" / ("sha256-" + digest.substr(7));
    }
    return err("{}: no model layer", manifest.string());
}

void scan_ollama(const fs::path& store, Collector& c) {
    const fs::path root = store / "manifests";
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return;
    std::vector<fs::path> manifests;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
        end;
    for (; !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it.depth() == 3 && it->is_regular_file(ec2)) manifests.push_back(it->path());
        if (it.depth() >= 3) it.disable_recursion_pending();
    }
    if (ec) c.warn("{}: {}", root.string(), ec.message());
    std::sort(manifests.begin(), manifests.end());
    for (const fs::path& m : manifests) {
        auto blob = ollama_blob(store, m);
        if (!blob) {
            c.warn("{}", blob.error().message);
            continue;
        }
        // manifests/REGISTRY/NAMESPACE/MODEL/TAG
        const fs::path rel = m.lexically_relative(root);
        std::vector<std::string> parts(rel.begin(), rel.end());
        std::string name = parts[2];
        if (parts[1] != "library" || parts[0] != "registry.ollama.ai") name = parts[1] + "/" + name;
        if (parts[0] != "registry.ollama.ai") name = parts[0] + "/" + name;
        if (parts[3] != "latest") name += ":" + parts[3];
        c.add(std::move(name), *blob);
    }
}

}  // namespace

std::optional<std::string> model_stem(std::string_view file_name) {
    static const std::regex re(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)");
    const std::string s(file_name);
    std::smatch m;
    if (std::regex_match(s, m, re)) {
        if (m[2].str() != "00001") return std::nullopt;
        return m[1].str();
    }
    return fs::path(s).stem().string();
}

DiscoveryRoots default_roots(std::vector<std::string> model_dirs, bool discover,
                             const std::function<const char*(const char*)>& getenv) {
    DiscoveryRoots r{.model_dirs = std::move(model_dirs)};
    if (!discover) return r;
    auto env = [&](const char* k) -> std::string {
        const char* v = getenv(k);
        return v ? v : "";
    };
    r.plain_dirs.push_back("models");
    std::string list = env("STRATA_MODELS");
    for (size_t start = 0; start <= list.size();) {
        size_t end = std::min(list.find(':', start), list.size());
        if (end > start) r.plain_dirs.push_back(list.substr(start, end - start));
        start = end + 1;
    }
    const std::string home = env("HOME");
    if (!env("HF_HUB_CACHE").empty())
        r.hf_hub = env("HF_HUB_CACHE");
    else if (!env("HF_HOME").empty())
        r.hf_hub = env("HF_HOME") + "/hub";
    else if (!home.empty())
        r.hf_hub = home + "/.cache/huggingface/hub";
    if (!env("OLLAMA_MODELS").empty())
        r.ollama = env("OLLAMA_MODELS");
    else if (!home.empty())
        r.ollama = home + "/.ollama/models";
    if (!home.empty()) r.lmstudio = {home + "/.lmstudio/models", home + "/.cache/lm-studio/models"};
    return r;
}

Result<Discovery> discover_models(const DiscoveryRoots& roots) {
    Discovery out;
    Collector c(out);
    std::error_code ec;
    for (const auto& d : roots.model_dirs) {
        if (!fs::is_directory(d, ec)) return err("--model-dir '{}': not a directory", d);
        scan_plain(d, "", kMaxDepth, c);
    }
    for (const auto& d : roots.plain_dirs)
        if (fs::is_directory(d, ec)) scan_plain(d, "", kMaxDepth, c);
    if (!roots.hf_hub.empty() && fs::is_directory(roots.hf_hub, ec)) scan_hf(roots.hf_hub, c);
    if (!roots.ollama.empty()) scan_ollama(roots.ollama, c);
    // LM Studio keeps PUBLISHER/REPO/file: exactly two levels of folders.
    for (const auto& d : roots.lmstudio)
        if (fs::is_directory(d, ec)) scan_plain(d, "", 3, c);
    return out;
}

Status register_models(ModelRegistry& registry, const std::vector<std::string>& files,
                       const DiscoveryRoots& roots) {
    std::set<std::string> reals;
    auto real = [](const std::string& p) {
        std::error_code ec;
        const fs::path r = fs::canonical(p, ec);
        return ec ? p : r.string();
    };
    for (const auto& f : files) {
        if (Status s = registry.add_file(f); !s)
            return err("--model '{}': {}", f, s.error().message);
        reals.insert(real(f));
    }
    auto found = discover_models(roots);
    if (!found) return found.error();
    for (const auto& w : found->warnings) fmt::print(stderr, "warning: {}\n", w);
    for (const auto& m : found->models) {
        if (!reals.insert(real(m.path)).second) continue;
        if (Status s = registry.add_file(m.path, m.name); !s)
            fmt::print(stderr, "warning: skipping {}: {}\n", m.path, s.error().message);
    }
    return {};
}

}  // namespace strata::app::server
