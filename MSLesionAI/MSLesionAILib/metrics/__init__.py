"""Evaluation metrics, one file per task: voxel overlap, MSSEG-2016 lesion detection (white
matter), CLAIMS's cortical rules, and rim-lesion classification.

Every function takes numpy arrays (z, y, x) or scores and returns plain floats and dicts, so the
same numbers serve the `mslesionai evaluate` command, the benchmarks and the tests.
"""
