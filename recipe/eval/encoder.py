"""An mteb encoder that applies an evaluation protocol (`protocol.py` chooses it) to a SentenceTransformer.

`e5`, the E5 authors' released evaluation code (microsoft/unilm `e5/`: `mteb_beir_eval.py` for
retrieval, `mteb_except_retrieval_eval.py` for every other task type; REFERENCE.md section 4;
docs/evaluation.md says where it and the paper's text differ):
- retrieval: queries read `Instruct: {instruction}\\nQuery: {text}`, documents nothing;
- every other task type (reranking, STS, classification, clustering, pair classification,
  summarization, bitext): every text gets the instruction, reranking candidates included
  (the released `DenseEncoder.encode` prefixes all sentences of a task with its prompt);
- the instruction is the one mteb's task metadata carries (the paper's Table 15, the same as
  unilm's `get_task_def_by_task_name_and_type` for all 56 MTEB(eng, v1) tasks), except where
  noted below;
- embeddings are L2-normalised, except for classification, where the authors feed the raw
  pooled vectors to the logistic regression;
- truncation at 512 tokens and EOS for last-token pooling are set up by `model.load_model`.

`plain`: the model runs as saved (its own query/document prompts and normalisation, through
`encode_query` / `encode_document` as mteb's own wrapper does): that is how the leaderboard
scores a plain model such as all-MiniLM-L6-v2.

Encoding itself is sentence-transformers' `encode`: it sorts the texts by length before
batching, and with several GPUs it runs one process per GPU.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import mteb
import torch
from mteb.models import ModelMeta
from mteb.models.model_meta import ScoringFunction
from mteb.models.abs_encoder import AbsEncoder
from mteb.types import PromptType

from .. import log
from ..schema import QUERY_PREFIX

E5_INSTRUCTION_TEMPLATE = QUERY_PREFIX  # the query side training uses too
# Where mteb 2.26's task metadata does not carry the paper's instruction (Table 15, unilm e5
# `get_task_def_by_task_name_and_type`): the CQADupstack sub-tasks have none, SummEval's
# class default ends with a full stop the paper's does not have.
CQADUPSTACK_INSTRUCTION = ("Given a question, retrieve detailed question descriptions from "
                           "Stackexchange that are duplicates to the given question")
PAPER_INSTRUCTIONS = {"SummEval": "Given a news summary, retrieve other semantically similar summaries"}
# MTEB(eng, v2) variants of paper tasks (the same queries and texts; fewer candidate documents,
# re-judged Touche, hierarchical arXiv labels): mteb gives them only a generic instruction
# ("Retrieve text based on user query."), the authors' code none at all, so they keep the
# instruction of the paper task they derive from (docs/evaluation.md).
PAPER_TASK_OF = {
    "ClimateFEVERHardNegatives": "ClimateFEVER", "FEVERHardNegatives": "FEVER",
    "HotpotQAHardNegatives": "HotpotQA", "Touche2020Retrieval.v3": "Touche2020",
    "SummEvalSummarization.v2": "SummEval",
    "ArXivHierarchicalClusteringP2P": "ArxivClusteringP2P",
    "ArXivHierarchicalClusteringS2S": "ArxivClusteringS2S",
}
# the one task type whose documents go without the instruction (unilm `mteb_beir_eval.py`);
# `mteb_except_retrieval_eval.py` prefixes every text of every other type
BARE_DOCUMENT_TYPES = {"Retrieval"}
# task types whose embeddings go to a classifier un-normalised (unilm e5: l2_normalize=False)
UNNORMALISED_TYPES = {"Classification", "MultilabelClassification"}



def paper_instruction(task_name: str) -> str | None:
    if task_name.startswith("CQADupstack"):
        return CQADUPSTACK_INSTRUCTION
    return PAPER_INSTRUCTIONS.get(task_name)


@functools.lru_cache(maxsize=None)
def _paper_task_metadata(name: str):
    return mteb.get_task(name).metadata


class InstructEncoder(AbsEncoder):
    """mteb's encoder protocol around a loaded SentenceTransformer (which it may change: a
    trailing Normalize module is dropped under the e5 protocol, see `encode`)."""

    def __init__(self, model, *, name: str, revision: str, protocol: str = "e5",
                 instruction_template: str = E5_INSTRUCTION_TEMPLATE, reason: str = "", text_template: str = "{text}"):
        from sentence_transformers.base.modules import Normalize

        if protocol not in ("e5", "plain"):
            raise ValueError(f"protocol {protocol!r}: e5 or plain")
        self.model = model
        self.protocol = protocol
        self.reason = reason or f"protocol {protocol}"
        self.instruction_template = instruction_template
        self.text_template = text_template
        self.paper_protocol = protocol == "e5"
        if self.paper_protocol and isinstance(model[-1], Normalize):
            # normalisation is decided per task type below
            del model[len(model) - 1]
        self.pool = None
        if model.device.type == "cuda" and torch.cuda.device_count() > 1:
            # one process per visible GPU, each with its own copy of the model; sentence-transformers
            # splits every encode call into chunks across them
            self.pool = model.start_multi_process_pool(
                [f"cuda:{i}" for i in range(torch.cuda.device_count())])
            model.to("cpu")  # the workers hold their copies; free GPU 0 of the parent's
        # cosine, as the paper; a plain model keeps the similarity it was saved with
        similarity = ScoringFunction.COSINE
        if not self.paper_protocol and model.similarity_fn_name:
            similarity = ScoringFunction.from_str(model.similarity_fn_name)
        self.mteb_model_meta = ModelMeta.create_empty(overwrites=dict(
            name=name, revision=revision,
            embed_dim=model.get_embedding_dimension(),
            max_tokens=model.max_seq_length, similarity_fn_name=similarity,
            use_instructions=self.paper_protocol, framework=["Sentence Transformers", "PyTorch"],
            experiment_kwargs=self.experiment()))

    def experiment(self) -> dict:
        """What changes the embeddings besides the weights: it names the folders of mteb's result
        files and of the embedding cache, so a run with other settings never reuses them."""
        settings = {"protocol": self.protocol,
                    "max_length": self.model.max_seq_length,
                    "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch.")}
        if self.model.truncate_dim is not None:
            settings["dim"] = self.model.truncate_dim
        if self.text_template != "{text}":
            settings["text"] = hashlib.sha256(self.text_template.encode()).hexdigest()[:8]
        if self.paper_protocol:
            # reranking candidates get the instruction since the protocol follows the released
            # code; results and embeddings from before, when they got none, must not be reused
            settings["candidates"] = "instructed"
            if self.instruction_template != E5_INSTRUCTION_TEMPLATE:
                settings["template"] = hashlib.sha256(self.instruction_template.encode()).hexdigest()[:8]
        return settings

    def instruction(self, task_metadata) -> str:
        """The task's instruction under the e5 protocol ("" where there is none)."""
        name = PAPER_TASK_OF.get(task_metadata.name)
        if name is not None:
            task_metadata = _paper_task_metadata(name)
        instruction = paper_instruction(task_metadata.name)
        if instruction is None:
            # the authors use one instruction per task, on whichever side it goes
            instruction = self.get_instruction(task_metadata, PromptType.query)
        return instruction or ""

    def prompt_for(self, task_metadata, prompt_type: PromptType | None) -> str | None:
        """The text put before each input: the instruction, except on retrieval documents."""
        if not self.paper_protocol:
            return None  # the model's own prompts apply (see encode)
        if prompt_type == PromptType.document and task_metadata.type in BARE_DOCUMENT_TYPES:
            return ""
        instruction = self.instruction(task_metadata)
        if not instruction:
            log.note(f"{task_metadata.name}: no instruction in mteb's metadata; its texts go without one")
            return ""
        return self.format_instruction(instruction, prompt_type)

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any):
        texts = self.templated([text for batch in inputs for text in batch["text"]])
        if self.pool is not None:
            kwargs["pool"] = self.pool
        if not self.paper_protocol:
            # as mteb's own SentenceTransformer wrapper: the model's saved query/document prompts
            encode = {PromptType.query: self.model.encode_query,
                      PromptType.document: self.model.encode_document}.get(prompt_type, self.model.encode)
            return encode(texts, convert_to_numpy=True, **kwargs)
        kwargs["normalize_embeddings"] = task_metadata.type not in UNNORMALISED_TYPES
        prompt = self.prompt_for(task_metadata, prompt_type)
        return self.model.encode(texts, prompt=prompt, convert_to_numpy=True, **kwargs)

    def templated(self, texts: list[str]) -> list[str]:
        """Each text in `text_template`; with words after {text}, a long text is cut first so that
        truncation at max_length never cuts the template's end, the token the embedding is read at."""
        if self.text_template == "{text}":
            return texts
        head, tail = self.text_template.split("{text}")
        if tail:
            tok = self.model.tokenizer
            room = self.model.max_seq_length - len(tok(head + tail)["input_ids"])
            ids = tok(texts, add_special_tokens=False, truncation=True, max_length=max(room, 1))["input_ids"]
            texts = [text if len(i) < room else tok.decode(i) for text, i in zip(texts, ids)]
        return [head + text + tail for text in texts]

    def close(self) -> None:
        if self.pool is not None:
            self.model.stop_multi_process_pool(self.pool)
            self.pool = None
