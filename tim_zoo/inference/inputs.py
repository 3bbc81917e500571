"""Which recordings an input names: files as given, folders as their audio files, glob patterns as their matches."""
import glob
from pathlib import Path
from typing import List, Sequence, Union

from ..data.corpora import OTHER_AUDIO_SUFFIXES, natural_key
from .results import Prediction

#: file suffixes taken from folders and globs
AUDIO_SUFFIXES = ('.wav',) + OTHER_AUDIO_SUFFIXES


def expand_inputs(inputs: Sequence[Union[str, Path]], recursive: bool = False) -> List[Union[str, Prediction]]:
    """Files as given; folders as their audio files (`AUDIO_SUFFIXES`, natural order; with
    `recursive` also in subfolders); glob patterns (`*`, `?`, `[`) as their matches. A folder without
    audio or a pattern without matches becomes a failed `Prediction` saying so (naming a file of its subfolders
    where they hold audio); a folder whose subfolders hold audio that `recursive=False` leaves out besides its own
    files adds a `Prediction` of the folder with a note saying so."""

    out: List[Union[str, Prediction]] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if not text.strip():
            out.append(Prediction(text, error='an empty path is not an audio file'))
        elif path.is_dir():
            found = path.rglob('*') if recursive else path.iterdir()
            files = sorted((str(f) for f in found if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()), key=natural_key)
            deeper = None if recursive else next(
                (f for f in path.rglob('*') if f.parent != path and f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()),
                None)
            out += files or [Prediction(text, error=f'no audio files in the folder {text}' + (
                f'; its subfolders hold some (such as {deeper}): --recursive / recursive=True reads them'
                if deeper is not None else ''))]
            if deeper is not None and files:
                out.append(Prediction(text, notes=[f'audio files in subfolders of {text} (such as {deeper}) were not '
                                                   f'read; --recursive / recursive=True reads them']))
        elif not path.exists() and any(c in text for c in '*?['):
            files = sorted((f for f in glob.glob(text, recursive=recursive) if Path(f).is_file()), key=natural_key)
            out += files or [Prediction(text, error=f'no file matches {text}')]
        else:
            out.append(text)
    return out
