"""Data building blocks: the record format and reader (`records`), the paper's public sets
(`public`, `beir`, `languages`), the training mix (`mix`), hard-negative mining (`mining`) and
publishing to the Hub (`hub`, `card`, `redact`)."""
