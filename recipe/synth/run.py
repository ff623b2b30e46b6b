"""Start (or resume) a synthesis run in an output folder and say how it ended."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from .. import log
from ..config import ConfigError
from ..errors import InputError
from ..lock import FolderLock
from . import pricing
from .settings import SynthConfig
from .store import Store
from .teacher import RequestJournal, check_reachable, make_client, public_url


def summary(store: Store) -> str:
    rejected = ", ".join(f"{k} {v}" for k, v in store.rejected.most_common()) or "none"
    if not store.unpriced:
        cost = f"${store.cost:,.2f}"
    elif store.unpriced == store.requests:
        cost = "unknown (no price for the teacher here; prices: names one)"
    else:
        cost = f"${store.cost:,.2f} + unknown for {store.unpriced:,} answer(s) without a price"
    text = (f"{store.n_examples} examples in {store.path('examples')}; rejected: {rejected}; "
            f"tokens {store.prompt_tokens:,} in + {store.completion_tokens:,} out; cost {cost}")
    if store.unsaved():
        text += (f"; {store.unsaved()} requests sent and never saved (in flight at a kill, or timed out "
                 f"and sent again), about ${store.unsaved_cost():,.2f}, counted against --max-cost")
    return text


def synthesize(cfg: SynthConfig, argv: list[str] | None = None) -> Store:
    """Run to `cfg.num_examples` valid examples in `cfg.output_dir`; raises on what the user must fix.

    The folder is locked for the whole run: a second synthesis on it (another terminal, a process
    that outlived its shell) is refused at once instead of paying for the same jobs twice."""
    cfg.check()
    journal = RequestJournal(cfg)
    client, base_url = make_client(cfg, journal)
    try:
        if cfg.list_prices is None:
            cfg.list_prices = pricing.list_prices_apply(base_url, cfg.azure)
        if cfg.max_cost:
            unpriced = [m for m in cfg.models() if pricing.price(m, cfg.prices, list_prices=cfg.list_prices) is None]
            if unpriced:
                raise ConfigError(f"max_cost: no price known for {unpriced} at {public_url(base_url)}; add them "
                                  "under prices: {model: [usd_per_1M_input, usd_per_1M_output]}")
        lock = FolderLock(cfg.output_dir, "output folder").acquire()
    except BaseException:
        asyncio.run(client.close())
        raise
    refused = False
    try:
        return _run(cfg, argv, client, base_url, journal)
    except InputError:
        refused = True
        raise
    finally:
        lock.release(undo=refused)  # a refused run leaves no lock file (nor a folder) behind


def _run(cfg: SynthConfig, argv: list[str] | None, client, base_url: str, journal: RequestJournal) -> Store:
    store = Store(cfg.output_dir)
    journal.store = store
    try:
        if store.unsaved_before:
            log.note(f"{store.unsaved_before} requests of earlier runs were sent and never saved (in flight at "
                     f"a kill, or timed out): about ${store.unsaved_cost(store.unsaved_before):,.2f}, "
                     "counted against --max-cost")
        if store.n_examples >= cfg.num_examples:
            store.nothing_to_do = True  # the command's last line says so, instead of "done"
            return store
        check_reachable(base_url)
        store.add_run({
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "argv": list(argv or []), "teacher": public_url(base_url),
            "config": dataclasses.asdict(cfg),
        })
        if cfg.mode == "batch":
            from .batch import BatchRunner

            asyncio.run(BatchRunner(cfg, client, store).run())
        else:
            from .engine import Engine

            asyncio.run(Engine(cfg, client, store).run())
        return store
    finally:
        store.close()
