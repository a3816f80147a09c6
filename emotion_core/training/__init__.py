"""The training and evaluation wing: data sets, trainers, cross-validation, evaluation commands,
RAVDESS-video fitting and report writers.

It imports the runtime (the models, the analysis path) and is never imported by it: analysing a
clip loads none of this, nor scikit-learn. Commands: ``python -m emotion_core.training --help``
(also reachable as ``python -m emotion_core train|evaluate|tables|ravdess-av``).
"""
