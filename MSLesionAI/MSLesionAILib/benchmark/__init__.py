"""`mslesionai benchmark`: the shipped models beside naive and standard baselines on held-out
phantom cohorts and the real sample case, in tables shaped like the papers', with plots and
per-stage speed. One concern per module: cohort, baselines, speed, tables, plots, run."""
