"""Every setting of a synthesis run, with the paper's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError, check_choices, setting
from .placeholders import GROUPS, LANGUAGES, PAPER_EXAMPLES_PER_TASK, PAPER_GROUP_MIX, PAPER_LANGUAGE_MIX


@dataclass
class SynthConfig:
    output_dir: str = setting("", "output folder; running the same command again resumes it")
    num_examples: int = setting(1000, "valid, unique examples wanted in the end")
    model: str | dict[str, float] = setting(
        "gpt-4o-mini", "teacher model, or {model: weight} to mix several (the paper: 75% GPT-4, 25% GPT-3.5)")
    temperature: float = setting(1.0, "teacher sampling temperature (paper: 1.0)")
    top_p: float = setting(1.0, "teacher nucleus sampling (paper: 1.0)")
    max_tokens: int = setting(2048, "completion limit; answers cut by it are rejected")
    structured_outputs: bool = setting(
        False, "send each answer's JSON schema as response_format (OpenAI structured outputs; llama.cpp and vLLM "
        "servers take it too); off: the paper's teacher had none")
    group_mix: dict[str, float] = setting(
        dict(PAPER_GROUP_MIX), "weight of each task group (default: the paper's 500k split)")
    language_mix: str | dict[str, float] = setting("paper", "'paper' (Fig. 2 over 93 languages) or {language: weight}")
    examples_per_task: float = setting(
        PAPER_EXAMPLES_PER_TASK, "examples per brainstormed task (paper: 500k examples over 150k instructions)")
    tasks_per_brainstorm: int = setting(20, "tasks one brainstorm call is expected to give (paper: ~20)")
    min_tasks_per_brainstorm: int = setting(
        1, "structured outputs: the fewest tasks a brainstorm answer may hold (its schema's minItems); a small "
        "teacher left at 1 writes three or four")
    seed: int = setting(0, "seed of the job plan: same seed, same placeholders for job i")
    mode: str = setting("online", "'online' (concurrent requests) or 'batch' (OpenAI Batch API, half price)",
                        choices=("online", "batch"))
    concurrency: int = setting(32, "requests in flight at once")
    http_transport: str = setting("aiohttp", "'aiohttp' (fast at high concurrency) or 'httpx' (the openai default)",
                                  choices=("aiohttp", "httpx"))
    rpm: int = setting(0, "requests-per-minute limit (0: none)")
    tpm: int = setting(0, "tokens-per-minute limit (0: none)")
    max_retries: int = setting(6, "retries of one request on 429/5xx/timeouts, with back-off")
    request_timeout: float = setting(
        1800.0, "seconds before one request times out and is sent again; the server may still answer and bill the "
        "first (counted, see sent.jsonl), so it is long enough for a slow or queued teacher")
    max_outage: float = setting(900.0, "seconds without one successful answer before the run stops cleanly")
    max_cost: float = setting(0.0, "stop cleanly once the output folder's total cost reaches this (USD; 0: none)")
    max_reject_rate: float = setting(
        0.5, "stop cleanly when more than this share of the last 100 answers (30 at the start) is rejected; 1: never")
    prices: dict[str, list[float]] = setting({}, "USD per 1M [input, output] tokens, added to the built-in table")
    list_prices: bool | None = setting(
        None, "price the teacher's tokens at OpenAI's list prices (the built-in table) by model name; null: where "
        "the teacher is OpenAI's API or Azure, not a local or other server (its cost: unknown, unless named under "
        "prices)")
    batch_size: int = setting(50000, "batch mode: requests per batch file (API limit 50000)")
    batch_poll: float = setting(30.0, "batch mode: seconds between status polls")
    azure: bool = setting(False, "use Azure OpenAI (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY)")
    azure_api_version: str = setting("2024-10-21", "Azure OpenAI API version")
    progress: bool = setting(True, "show a progress bar")

    def models(self) -> dict[str, float]:
        return {self.model: 1.0} if isinstance(self.model, str) else dict(self.model)

    def languages(self) -> dict[str, float]:
        if self.language_mix == "paper":
            return dict(PAPER_LANGUAGE_MIX)
        if isinstance(self.language_mix, str):
            raise ConfigError(f"language_mix: {self.language_mix!r} is neither 'paper' nor a mapping")
        return dict(self.language_mix)

    def check(self) -> None:
        if not self.output_dir:
            raise ConfigError("command line: --output-dir is required (the synthesis output folder)")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples: must be at least 1, got {self.num_examples}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency: must be at least 1, got {self.concurrency}")
        if not 0 <= self.max_reject_rate <= 1:
            raise ConfigError(f"max_reject_rate: must be between 0 and 1 (1: never stop), got {self.max_reject_rate}")
        for key in ("max_tokens", "tasks_per_brainstorm", "min_tasks_per_brainstorm", "batch_size"):
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
        check_choices(self)
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
