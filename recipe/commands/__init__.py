"""The six commands, importable: the scripts at the top of the checkout (`data/*.py`, `train.py`,
`eval.py`) and the console scripts of pyproject.toml (`e5-synthesize`, ...) both call these
`main(argv) -> exit code` functions, which run through `recipe.cli.run`."""
