"""From recordings to answers: `EmotionRecognizer` and what it returns."""
from .audio_input import CHANNEL_MODES, open_input
from .plot import check_plot_path, plot_prediction, plot_predictions
from .inputs import AUDIO_SUFFIXES, expand_inputs
from .recognizer import EmotionRecognizer, resolve_device
from .results import STATUSES, Prediction, Segment, check_output_path, format_table, to_csv, write_predictions

__all__ = [
    'AUDIO_SUFFIXES', 'CHANNEL_MODES', 'EmotionRecognizer', 'Prediction', 'STATUSES', 'Segment', 'check_output_path',
    'check_plot_path', 'expand_inputs', 'open_input',
    'format_table', 'plot_prediction', 'plot_predictions', 'resolve_device', 'to_csv', 'write_predictions',
]
