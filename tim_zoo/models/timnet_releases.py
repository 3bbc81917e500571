"""The published weights of `timnet`: the TIM-Net authors' six Keras releases (10 fold models each) and what
their inputs were, and the model that ships inside tim_zoo (`pretrained/timnet_emodb.safetensors` beside this
module)."""
from pathlib import Path

#: where the authors publish their releases: `Code/Test_Models/<release>/10-fold_weights_best_{1..10}.hdf5`
RELEASE_REPOSITORY = 'https://github.com/Jiaxin-Ye/TIM-Net_SER'

#: the `timnet` trained by tim_zoo on all of EMODB that ships inside the package (see `tim_zoo.pretrained`)
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / 'pretrained' / 'timnet_emodb.safetensors'

#: the authors' features: librosa MFCC of the audio as read (no level normalisation)
FEATURES = dict(sample_rate=22050, n_mfcc=39, hop_length=512, level='none')

#: release name -> corpus, class labels in the release's order, feature length, depth, KFold seed
TIMNET_RELEASES = {
    'CASIA_32': dict(corpus='CASIA', labels=('angry', 'fear', 'happy', 'neutral', 'sad', 'surprise'),
                     mean_signal_length=88000, depth=8, kfold_seed=32),
    'EMODB_46': dict(corpus='EMODB', labels=('angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad'),
                     mean_signal_length=96000, depth=8, kfold_seed=46),
    'EMOVO_1': dict(corpus='EMOVO', labels=('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'),
                    mean_signal_length=96000, depth=8, kfold_seed=1),
    'IEMOCAP_16': dict(corpus='IEMOCAP', labels=('angry', 'happy', 'neutral', 'sad'),
                       mean_signal_length=310000, depth=10, kfold_seed=16),
    'RAVDE_46': dict(corpus='RAVDESS', labels=('angry', 'calm', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'),
                     mean_signal_length=110000, depth=8, kfold_seed=46),
    'SAVEE_44': dict(corpus='SAVEE', labels=('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'),
                     mean_signal_length=130000, depth=8, kfold_seed=44),
}


def release_tag(release: str) -> str:
    """`"EMODB_46"` -> `"emodb_46"`, the pretrained tag of `timnet.emodb_46`."""
    return release.lower()


def release_frames(release: str) -> int:
    """MFCC frames of the release's inputs: `1 + mean_signal_length // hop_length`."""
    return 1 + TIMNET_RELEASES[release]['mean_signal_length'] // FEATURES['hop_length']


def release_metadata(release: str) -> dict:
    """Everything a user needs to reproduce the release's inputs and folds."""
    info = TIMNET_RELEASES[release]
    return dict(
        release=release, corpus=info['corpus'], label_names=list(info['labels']),
        mean_signal_length=info['mean_signal_length'], frames=release_frames(release), depth=info['depth'],
        kfold_seed=info['kfold_seed'], **FEATURES)


def find_release(path) -> str:
    """The release whose name is a component of `path` (`.../EMODB_46/10-fold_weights_best_1.hdf5`), or ''."""
    for part in reversed(Path(path).parts):
        if part in TIMNET_RELEASES:
            return part
    return ''


def release_file(release: str, fold: int) -> str:
    """Path of a release's fold model relative to the weights directory: `"EMODB_46/10-fold_weights_best_1.hdf5"`."""
    return f'{release}/10-fold_weights_best_{fold}.hdf5'


def release_published(release: str) -> str:
    """Where the authors publish `release`, for error messages."""
    return (f'The TIM-Net authors publish {release} in Code/Test_Models/{release}/ of {RELEASE_REPOSITORY} '
            f'(10-fold_weights_best_{{1..10}}.hdf5).')
