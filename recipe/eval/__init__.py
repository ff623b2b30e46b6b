"""Evaluation stage: MTEB with the E5 authors' protocol (`eval.py` at the top level ties these together).

model.py loads and checks the model (pooling, EOS); protocol.py chooses e5 or plain for it;
encoder.py applies the instructions; tasks.py picks tasks; recipe/local_data.py reads DIR/<TaskName>/;
published_scores.py, report.py and plot.py set the scores beside the published ones (collect_published.py
rebuilds the MTEB(eng, v2) file); submission.py writes the leaderboard submission.
"""
