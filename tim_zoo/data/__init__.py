"""From recordings to model inputs: MFCC features, corpora, feature files, frame selection."""
from .collate import pad_collate, pad_sequences
from .corpora import (
    CORPUS_READERS, CORPUS_RELEASES, Corpus, CorpusItem, load_corpus, natural_key, release_signal_length,
)
from .feature_set import FeatureSet, cached_features, corpus_extractor, extract_features, load_timnet_npy, save_timnet_npy
from .audio import LEVEL_MODES, centre_fit, load_audio, normalize_level
from .features import MFCCExtractor
from .frame_selection import GMMFrameSelection, gmm_frame_selection
from .normalize import NORMALIZE_MODES, normalize_by_speaker, normalize_features

__all__ = [
    'CORPUS_READERS', 'CORPUS_RELEASES', 'LEVEL_MODES', 'Corpus', 'CorpusItem', 'FeatureSet', 'GMMFrameSelection', 'MFCCExtractor',
    'cached_features', 'centre_fit', 'corpus_extractor', 'extract_features', 'gmm_frame_selection', 'load_audio', 'load_corpus',
    'load_timnet_npy', 'natural_key', 'NORMALIZE_MODES', 'normalize_by_speaker', 'normalize_features', 'normalize_level',
    'pad_collate', 'pad_sequences', 'release_signal_length', 'save_timnet_npy',
]
