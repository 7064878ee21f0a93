// Reads a GGUF with Hugging Face's independent parser (@huggingface/gguf) and
// checks it against what strata says the file holds. Exits non-zero, naming the
// difference, when the parser rejects the file or disagrees.
// Usage: node gguf_reads.mjs FILE ARCH N_TENSORS N_EXPERT
import { gguf } from "@huggingface/gguf";
import path from "node:path";

const [file, arch, nTensors, nExpert] = process.argv.slice(2);
const { metadata, tensorInfos } = await gguf(path.resolve(file), { allowLocalFile: true });
const fail = (msg) => {
    console.error(`gguf_reads: ${file}: ${msg}`);
    process.exit(1);
};
if (metadata["general.architecture"] !== arch) fail(`architecture ${metadata["general.architecture"]}, want ${arch}`);
if (tensorInfos.length !== Number(nTensors)) fail(`${tensorInfos.length} tensors, want ${nTensors}`);
if (Number(metadata[`${arch}.expert_count`] ?? 0) !== Number(nExpert)) fail(`expert_count ${metadata[`${arch}.expert_count`]}`);
const tokens = metadata["tokenizer.ggml.tokens"];
if (!Array.isArray(tokens) || tokens.length === 0) fail("no tokenizer.ggml.tokens");
console.log(`ok: ${arch}, ${tensorInfos.length} tensors, ${tokens.length} tokens, version ${metadata.version}`);
