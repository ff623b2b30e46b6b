"""Every setting of a synthesis run, with the paper's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ConfigError
from .placeholders import GROUPS, LANGUAGES, PAPER_EXAMPLES_PER_TASK, PAPER_GROUP_MIX, PAPER_LANGUAGE_MIX


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass
class SynthConfig:
    RENAMED = {"out": "output_dir"}

    output_dir: str = _help("output folder; running the same command again resumes it", default="")
    num_examples: int = _help("valid, unique examples wanted in the end", default=1000)
    model: str | dict[str, float] = _help(
        "teacher model, or {model: weight} to mix several (the paper: 75% GPT-4, 25% GPT-3.5)",
        default="gpt-4o-mini")
    temperature: float = _help("teacher sampling temperature (paper: 1.0)", default=1.0)
    top_p: float = _help("teacher nucleus sampling (paper: 1.0)", default=1.0)
    max_tokens: int = _help("completion limit; answers cut by it are rejected", default=2048)
    structured_outputs: bool = _help(
        "send each answer's JSON schema as response_format (OpenAI structured outputs; llama.cpp and vLLM "
        "servers take it too); off: the paper's teacher had none", default=False)
    group_mix: dict[str, float] = _help(
        "weight of each task group (default: the paper's 500k split)",
        default_factory=lambda: dict(PAPER_GROUP_MIX))
    language_mix: str | dict[str, float] = _help(
        "'paper' (Fig. 2 over 93 languages) or {language: weight}", default="paper")
    examples_per_task: float = _help(
        "examples per brainstormed task (paper: 500k examples over 150k instructions)",
        default=PAPER_EXAMPLES_PER_TASK)
    tasks_per_brainstorm: int = _help("tasks one brainstorm call is expected to give (paper: ~20)", default=20)
    seed: int = _help("seed of the job plan: same seed, same placeholders for job i", default=0)
    mode: str = _help("'online' (concurrent requests) or 'batch' (OpenAI Batch API, half price)", default="online")
    concurrency: int = _help("requests in flight at once", default=32)
    http_transport: str = _help("'aiohttp' (fast at high concurrency) or 'httpx' (the openai default)",
                                default="aiohttp")
    rpm: int = _help("requests-per-minute limit (0: none)", default=0)
    tpm: int = _help("tokens-per-minute limit (0: none)", default=0)
    max_retries: int = _help("retries of one request on 429/5xx/timeouts, with back-off", default=6)
    request_timeout: float = _help(
        "seconds before one request times out and is sent again; the server may still answer and bill "
        "the first (counted, see sent.jsonl), so it is long enough for a slow or queued teacher",
        default=1800.0)
    max_outage: float = _help("seconds without one successful answer before the run stops cleanly", default=900.0)
    max_cost: float = _help("stop cleanly once the output folder's total cost reaches this (USD; 0: none)", default=0.0)
    max_reject_rate: float = _help(
        "stop cleanly when more than this share of the last 100 answers (30 at the start) is rejected; 1: never",
        default=0.5)
    prices: dict[str, list[float]] = _help(
        "USD per 1M [input, output] tokens, added to the built-in table", default_factory=dict)
    list_prices: bool | None = _help(
        "price the teacher's tokens at OpenAI's list prices (the built-in table) by model name; null: "
        "where the teacher is OpenAI's API or Azure, not a local or other server (its cost: unknown, "
        "unless named under prices)", default=None)
    batch_size: int = _help("batch mode: requests per batch file (API limit 50000)", default=50000)
    batch_poll: float = _help("batch mode: seconds between status polls", default=30.0)
    azure: bool = _help("use Azure OpenAI (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY)", default=False)
    azure_api_version: str = _help("Azure OpenAI API version", default="2024-10-21")
    progress: bool = _help("show a progress bar", default=True)

    def models(self) -> dict[str, float]:
        return {self.model: 1.0} if isinstance(self.model, str) else dict(self.model)

    def languages(self) -> dict[str, float]:
        if self.language_mix == "paper":
            return dict(PAPER_LANGUAGE_MIX)
        if isinstance(self.language_mix, str):
            raise ConfigError(f"language_mix: {self.language_mix!r} is neither 'paper' nor a mapping")
        return dict(self.language_mix)

    def validate(self) -> "SynthConfig":
        if not self.output_dir:
            raise ConfigError("command line: --output-dir is required (the synthesis output folder)")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples: must be at least 1, got {self.num_examples}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency: must be at least 1, got {self.concurrency}")
        if not 0 <= self.max_reject_rate <= 1:
            raise ConfigError(f"max_reject_rate: must be between 0 and 1 (1: never stop), got {self.max_reject_rate}")
        for key in ("max_tokens", "tasks_per_brainstorm", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        for key in ("rpm", "tpm", "max_retries", "max_cost", "temperature"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("request_timeout", "max_outage", "batch_poll"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key}: must be > 0 seconds, got {getattr(self, key)}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.http_transport not in ("aiohttp", "httpx"):
            raise ConfigError(f"http_transport: {self.http_transport!r} is neither 'aiohttp' nor 'httpx'")
        if self.mode not in ("online", "batch"):
            raise ConfigError(f"mode: {self.mode!r} is neither 'online' nor 'batch'")
        models = self.models()
        if not models or any(not name or w <= 0 for name, w in models.items()):
            raise ConfigError(f"model: need at least one model, each with a positive weight, got {models}")
        unknown = set(self.group_mix) - set(GROUPS)
        if unknown:
            raise ConfigError(f"group_mix: unknown task groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
        if not any(w > 0 for w in self.group_mix.values()) or any(w < 0 for w in self.group_mix.values()):
            raise ConfigError("group_mix: weights must be >= 0 with at least one > 0")
        langs = self.languages()
        bad = set(langs) - set(LANGUAGES)
        if bad:
            raise ConfigError(f"language_mix: not among the paper's 93 languages: {sorted(bad)}")
        if not any(w > 0 for w in langs.values()):
            raise ConfigError("language_mix: at least one language needs a positive weight")
        if self.group_mix.get("bitext", 0) > 0 and sum(w > 0 for w in langs.values()) < 2:
            raise ConfigError("language_mix: bitext needs two languages with a positive weight")
        if not 0 < self.examples_per_task:
            raise ConfigError("examples_per_task: must be positive")
        for name, pair in self.prices.items():
            if len(pair) != 2:
                raise ConfigError(f"prices: {name} needs [input, output] USD per 1M tokens")
        return self
