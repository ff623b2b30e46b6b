"""Texts are embedded as plain text, never wrapped in the tokenizer's chat template.

The paper embeds `Instruct: {instruction}\\nQuery: {query}` followed by EOS (section 3.1), and
nothing else. sentence-transformers 6.2 gives every Transformer whose tokenizer carries a chat
template (`chat_template.jinja`, or the key in tokenizer_config.json: every instruct model, from
Mistral-7B-Instruct and Qwen2-7B-Instruct to SmolLM2-Instruct) a "message" modality, and then
converts every plain text into a chat message and renders it through the template
(`Transformer.preprocess`: "Always convert to the message format if it's supported"): a system
prompt, `<|im_start|>user ... <|im_end|>\\n`, and no EOS of ours at the end. The documented way
out is the one that library names itself: pin `modality_config` to the text modality. It is saved
in sentence_bert_config.json, so the exported folder embeds plain text for its users too.
"""

from __future__ import annotations

# the feature-extraction default of sentence-transformers (TRANSFORMER_TASK_DEFAULTS), text alone
TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
MODULE_OUTPUT = "token_embeddings"


def transformer_kwargs() -> dict:
    """Keyword arguments for `Transformer(path, ...)` that keep it on plain text."""
    return {"modality_config": {k: dict(v) for k, v in TEXT_MODALITY.items()}, "module_output_name": MODULE_OUTPUT}


def drop_chat_modality(transformer) -> bool:
    """For a Transformer already loaded (a folder saved with the "message" modality): remove it,
    so that texts go to the tokenizer as they are. True if there was one."""
    config = getattr(transformer, "modality_config", None)
    if not config or "message" not in config:
        return False
    del config["message"]
    transformer.input_formatter.supported_modalities = list(config)
    return True
