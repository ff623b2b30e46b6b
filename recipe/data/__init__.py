"""Data building blocks: the record format (`records`), public datasets (`public`), hard-negative
mining (`mining`), publishing to the Hub (`hub`, `card`) and the training mix (`mix`)."""
