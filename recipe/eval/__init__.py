"""Evaluation stage: MTEB with the paper's protocol (`eval.py` at the top level ties these together).

model.py loads and checks the model (pooling, EOS); encoder.py applies the instructions;
tasks.py picks tasks; local_data.py reads DIR/<TaskName>/; published.py, report.py and
plot.py set the scores beside E5-Mistral's.
"""
