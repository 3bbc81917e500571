"""Speed and memory benchmark of the zoo: `python -m tim_zoo.benchmark --help`."""
from .harness import BenchmarkRow, measure, reference_encoders, run_benchmark, select_models, tune_malloc
from .reference import ReferenceBiTemporalEncoder, reference_bi_temporal_encoder

__all__ = [
    'BenchmarkRow', 'ReferenceBiTemporalEncoder', 'measure', 'reference_bi_temporal_encoder',
    'reference_encoders', 'run_benchmark', 'select_models', 'tune_malloc',
]
