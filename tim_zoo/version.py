__version__ = '0.1.0'

#: version of the models' definitions, recorded in checkpoints and training runs: 2 since the seed models compute,
#: by default, what the research group's code computes (`tim_zoo.weights.legacy` rebuilds older ones as they were)
MODEL_DEFAULTS = 2
