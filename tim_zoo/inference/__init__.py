"""From recordings to answers: `EmotionRecognizer` and what it returns."""
from .plot import plot_prediction, plot_predictions
from .inputs import AUDIO_SUFFIXES, expand_inputs
from .recognizer import EmotionRecognizer, resolve_device
from .results import Prediction, Segment, check_output_path, format_table, to_csv, write_predictions

__all__ = [
    'AUDIO_SUFFIXES', 'EmotionRecognizer', 'Prediction', 'Segment', 'check_output_path', 'expand_inputs',
    'format_table', 'plot_prediction', 'plot_predictions', 'resolve_device', 'to_csv', 'write_predictions',
]
