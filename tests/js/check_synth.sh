#!/usr/bin/env bash
# "Real GGUF tools must accept synth's output": write a small model of every
# architecture strata knows and read each with an independent GGUF parser.
# Usage: check_synth.sh STRATA_BINARY
set -euo pipefail
strata=$1
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/node_modules/@huggingface/gguf" ] || { echo "run scripts/setup first (npm packages missing)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in llama qwen2moe qwen3moe olmoe deepseek phimoe gpt-oss; do
    "$strata" synth --arch "$arch" --out "$tmp/$arch.gguf" >/dev/null
    json=$("$strata" probe --json "$tmp/$arch.gguf")
    n_tensors=$(node -e 'const j=JSON.parse(process.argv[1]); console.log(j.tensors)' "$json")
    n_expert=$(node -e 'const j=JSON.parse(process.argv[1]); console.log(j.hparams.n_expert)' "$json")
    node "$here/gguf_reads.mjs" "$tmp/$arch.gguf" "$arch" "$n_tensors" "$n_expert"
done
