"""Write a tiny llama-architecture GGUF with random weights: ``make_model.py VOCAB TEMPLATE OUT``.

Run by the real-server tier with the interpreter of its own venv (which has ``gguf``
and ``numpy``), never imported by the test suite. ``VOCAB`` is a tokenizer-only GGUF
(llama.cpp's ``models/ggml-vocab-qwen2.gguf``): its ``tokenizer.*`` fields are copied.
``TEMPLATE`` is a Jinja chat template (Qwen2.5's, which knows ``<tool_call>``).

The weights are drawn from a fixed seed, so the file is the same on every machine,
and under greedy decoding the model streams the same gibberish for the same prompt.
The output matrix is its own tensor: tied to the embeddings, greedy decoding would
repeat the prompt's last token forever.

A few output rows are set by hand so that the model behaves like a trained one where
the tests need it: every answer opens with ``<tool_call>`` (so llama-server's tool-call
grammar, which lets free text come before the call, gets its call at once, and with
tools offered under ``auto`` the model calls one), a call is followed by the end of the
turn, and whitespace and commas lose wherever the grammar lets something else come
(compact JSON, no second call). Text answers are gibberish that runs to ``max_tokens``.
Qwen2.5's ``<tool_call>`` and ``</tool_call>`` take the two padding slots Qwen2.5 gives them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np  # type: ignore[import-not-found,unused-ignore]  # numpy comes with the bench extra
from gguf import GGUFReader, GGUFWriter, LlamaFileType  # type: ignore[import-not-found]

LAYERS, HIDDEN, HEADS, KV_HEADS, FEED_FORWARD, CONTEXT = 2, 64, 4, 2, 128, 4096
SEED = 15
END_OF_TURN = "<|im_end|>"
# Qwen2.5 names two of the vocab's padding slots; the tokenizer-only qwen2 vocab leaves them padding.
TOOL_CALL_TOKENS = {151657: "<tool_call>", 151658: "</tool_call>"}
USER_DEFINED = 4
EMBEDDING_STD, LAYER_STD, OUTPUT_STD = 0.5, 0.05, 0.5
LEARNED_WEIGHT = 5.0
"""The norm of a learned output row: far above a random row's, so the bigram wins greedy decoding."""
CONSTANT = 1.0
"""Hidden dimension 0 holds this in every embedding and no layer writes to it: the output
rows' first column is then a per-token bias."""
PENALTY = 20.0
# Byte-level BPE spells " ", "\n", "\t", "\r" so.
WHITESPACE = frozenset("\u0120\u010a\u0109\u010d")


def field(reader: GGUFReader, name: str) -> object:
    found = reader.get_field(name)
    if found is None:
        raise SystemExit(f"{name} is missing from the vocab file")
    return found.contents()


def main(vocab_path: str, template_path: str, out_path: str) -> None:
    vocab = GGUFReader(vocab_path)
    tokens = list(field(vocab, "tokenizer.ggml.tokens"))  # type: ignore[call-overload]
    token_types = list(field(vocab, "tokenizer.ggml.token_type"))  # type: ignore[call-overload]
    merges = list(field(vocab, "tokenizer.ggml.merges"))  # type: ignore[call-overload]
    for index, text in TOOL_CALL_TOKENS.items():
        assert tokens[index].startswith("[PAD"), f"token {index} is {tokens[index]!r}, not padding"
        tokens[index], token_types[index] = text, USER_DEFINED
    n_vocab = len(tokens)
    # Byte-level BPE spells "\n" as "\u010a".
    newline, blank_line = tokens.index("\u010a"), tokens.index("\u010a\u010a")
    end_of_turn = tokens.index(END_OF_TURN)
    tool_call, tool_call_end = (tokens.index(text) for text in TOOL_CALL_TOKENS.values())
    head_dim = HIDDEN // HEADS

    out = Path(out_path)
    partial = out.with_suffix(".partial")
    writer = GGUFWriter(str(partial), "llama")
    writer.add_name("rxllm-tiny-random")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model(str(field(vocab, "tokenizer.ggml.model")))
    writer.add_tokenizer_pre(str(field(vocab, "tokenizer.ggml.pre")))
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(int(str(field(vocab, "tokenizer.ggml.bos_token_id"))))
    writer.add_pad_token_id(int(str(field(vocab, "tokenizer.ggml.padding_token_id"))))
    writer.add_eos_token_id(end_of_turn)
    writer.add_add_bos_token(False)
    writer.add_chat_template(Path(template_path).read_text())

    rng = np.random.default_rng(SEED)

    def weights(*shape: int, std: float = LAYER_STD) -> Any:
        # numpy order (rows = outputs); gguf records the dimensions reversed, as llama.cpp expects.
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def without_row_0(matrix: Any) -> Any:
        # What a layer adds to the residual stream leaves dimension 0 alone.
        matrix[0] = 0.0
        return matrix

    def ones(n: int) -> Any:
        return np.ones(n, dtype=np.float32)

    embeddings = weights(n_vocab, HIDDEN, std=EMBEDDING_STD)
    embeddings[:, 0] = CONSTANT
    output = weights(n_vocab, HIDDEN, std=OUTPUT_STD)
    # Whitespace-only tokens and tokens with a comma lose greedy decoding wherever anything else
    # may come, so grammar-constrained JSON (tool arguments) comes out compact instead of padded
    # with tabs, and a call's JSON is not followed by ", {" and a second call.
    for index, text in enumerate(tokens):
        if (text and set(text) <= WHITESPACE) or "," in text:
            output[index, 0] = -PENALTY
    # Learned bigrams, so that a forced tool call comes at once and ends the turn, as a trained
    # model's would: after a newline (the end of every prompt, "<|im_start|>assistant\n") the
    # model opens a <tool_call>, follows it with a blank line (the newline the call's grammar
    # wants, not the one that would open another call), and after </tool_call> it ends its
    # turn. The layers are small, so a token's hidden state stays close to its embedding, and
    # an output row along it wins greedy decoding.
    for after, then in (
        (newline, tool_call),
        (tool_call, blank_line),
        (tool_call_end, end_of_turn),
    ):
        direction = embeddings[after] / np.linalg.norm(embeddings[after])
        output[then] = LEARNED_WEIGHT * direction

    writer.add_tensor("token_embd.weight", embeddings.astype(np.float16))
    for layer in range(LAYERS):
        blk = f"blk.{layer}"
        writer.add_tensor(f"{blk}.attn_norm.weight", ones(HIDDEN))
        writer.add_tensor(f"{blk}.attn_q.weight", weights(HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"{blk}.attn_k.weight", weights(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"{blk}.attn_v.weight", weights(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"{blk}.attn_output.weight", without_row_0(weights(HIDDEN, HEADS * head_dim)))
        writer.add_tensor(f"{blk}.ffn_norm.weight", ones(HIDDEN))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weights(FEED_FORWARD, HIDDEN))
        writer.add_tensor(f"{blk}.ffn_up.weight", weights(FEED_FORWARD, HIDDEN))
        writer.add_tensor(f"{blk}.ffn_down.weight", without_row_0(weights(HIDDEN, FEED_FORWARD)))
    writer.add_tensor("output_norm.weight", ones(HIDDEN))
    writer.add_tensor("output.weight", output.astype(np.float16))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
