"""The published weights of `timnet`: the TIM-Net authors' six Keras releases (10 fold models each) and what
their inputs were, and the model that ships inside tim_zoo (`pretrained/timnet_emodb.safetensors` beside this
module)."""
import hashlib
from pathlib import Path
from typing import Tuple

#: where the authors publish their releases: `Code/Test_Models/<release>/10-fold_weights_best_{1..10}.hdf5`
RELEASE_REPOSITORY = 'https://github.com/Jiaxin-Ye/TIM-Net_SER'

#: the `timnet` trained by tim_zoo on all of EMODB that ships inside the package (see `tim_zoo.pretrained`)
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / 'pretrained' / 'timnet_emodb.safetensors'

#: the authors' features: librosa MFCC of the audio as read (no level normalisation)
FEATURES = dict(sample_rate=22050, n_mfcc=39, hop_length=512, order=1, level='none')

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


#: SHA-256 of the authors' published fold files we have seen (IEMOCAP_16 and SAVEE_44: not yet); a tag's file must
#: match, so that another release's file with the same shape is not loaded under this release's labels
RELEASE_SHA256 = {
    ('CASIA_32', 1): 'aa6532a30e50cfacd9881c64f71b888ab1d0df5b7fcef845a19c982ecb3a5658',
    ('CASIA_32', 2): 'fee4109d75554037d9c6f08f92ff592ef928d470822905cbf94b1c0cf2ca45e8',
    ('CASIA_32', 3): 'b1fff7227356969bbf13fa2fc20e2168a64aaec2a2a231b7a066c031ed7933a8',
    ('CASIA_32', 4): 'd29114bf0a6c04c562090e47eda14e2cfc3ad5340bf15974ba14ae6644389517',
    ('CASIA_32', 5): '14273030d69c5068c39561299e04d717f062bf1b12bad7b7d24400cb17dec04d',
    ('CASIA_32', 6): '5faa6395ce3c4f51ab75072e0a9b84f42fcb12091b255e3a7b354b884616229c',
    ('CASIA_32', 7): '0575fcf0b7ff84087707ad2b19dad2c726a9672279b25bdd6c1b939d24c183ff',
    ('CASIA_32', 8): 'f1e61ce03bcb103e55f9bffeac85915463dc6d8ae4cff6d3b95cad31aa4e8fe6',
    ('CASIA_32', 9): '4c1878b62f45c2c316ceebe10281f744f8879c46fcb110789de4f449dccff44b',
    ('CASIA_32', 10): 'b2b77a5faa62f26fd2613630bdbdec904de7c6e8ddf7246f8d276015693d1ccc',
    ('EMODB_46', 1): 'b6986b1974bcb55c059a95b079830f72db46b829e404ce61efa527224801f10a',
    ('EMODB_46', 2): 'c04a2944f0bb19f73c3be56e9b944a171a56ce60adc1c327fea0a13f9e7716db',
    ('EMODB_46', 3): '6c09029f73b493948e889e6c013b9f7fc76e8b20b9019c94a482449bfdf7f7a7',
    ('EMODB_46', 4): 'd33877d5ec3bce03c1415ce4d8ca820b04cf97fba3ea0c17354eaa1e2f9a392c',
    ('EMODB_46', 5): '86bb921a47fcee30ffe4359704c1948095aa3966f56a5121c7d8d29f557aa77f',
    ('EMODB_46', 6): 'af02ef131d922ee5e4f21159b0ba0a17c4da75a6e071ca849930a1b303a1f2d0',
    ('EMODB_46', 7): '0011978f285ff0ed0563c5f1e46f62629ce87dcb4b675dc3023d424b35e1f422',
    ('EMODB_46', 8): '29eee6300d7a6c501df75b908595bf311daa3fdea374d1866a106e1b2f1ccfc4',
    ('EMODB_46', 9): '955865bb718dd22230aa61dd6e7b24413242c5b2218105754560c49fc29332cd',
    ('EMODB_46', 10): '6ddacc0fbc1b5deb285055af545f48f71ea5d7b7addf34f0370f51cd0a425486',
    ('EMOVO_1', 1): 'ff6c7bf6d0c4430816d326f68d4d2c8d51bea7ae0d9eaf095e071fc580366c3d',
    ('EMOVO_1', 2): '0892431117240e3f7f003f50efe1a0b7b7aa5932d3cb4fd98ca64591fdf90c6e',
    ('EMOVO_1', 3): '34c7b51646e06c1e7837f228a34730c35bdeb9d8a668325c56f5a23512159823',
    ('EMOVO_1', 4): '646a9c7dfe328c9c4761300fdfd0aa32bea6f6172c8350e9d2c8f642ac2c704e',
    ('EMOVO_1', 5): '15a8df9a3f656c36e36178053462a35f9cc091ac0e575ab9cc745f87be9f97f7',
    ('EMOVO_1', 6): '45f569cfefd9a9150afb00fa5471707f1022bc803ec0c4dff6ce52c9dc6de9a4',
    ('EMOVO_1', 7): 'd42ec8dc753b02d58bb1dcd6a021164d110783b05a0c4acbe73cad029edfe9df',
    ('EMOVO_1', 8): 'c3f21ddd02bf440f78ae6fd30ab158c7107251e153ef193879d148057fa64682',
    ('EMOVO_1', 9): '7c8196fd60ffd0955ee563e1bcc5c17079b110474fc76986e2b0fa0c3942868f',
    ('EMOVO_1', 10): '6a19dc768eb77baa520dbe38c29475b15b8ad6e29afc75de166e4d912e603301',
    ('RAVDE_46', 1): '3cd0ca904fb732d1b300a8e443badf5b74e41a0be2eb97d2217eee880d0de813',
    ('RAVDE_46', 2): 'd35b04e5c68019d03bb284af2b8bb2ac58ece5fabfb4353c5579889baacabbed',
    ('RAVDE_46', 3): 'aae50484373811941af43d7c8e5309018a95077b536cdd25491df47837781c84',
    ('RAVDE_46', 4): 'b43bb7f94ab3f112d2be55e3f9347e6e5d63201710d52bf84d3f5cfeb0e4f1bb',
    ('RAVDE_46', 5): 'd67da0e75a731668fa23ac59050f25145a0d832cefa59dbeea00afb73ac54911',
    ('RAVDE_46', 6): '68dda7136c7e39cbf8efc2fde7f1db75bb575d9b0eb8cc1e1f5488abe35e9787',
    ('RAVDE_46', 7): 'b67ed2ad3e6cb10d8ea549af07db38a7b731ed01b79dd8c71f44c3ab99528a57',
    ('RAVDE_46', 8): 'a212109bc5bd2e6b1940fd1be1058b509f6b523544e886fc39534def72f4990c',
    ('RAVDE_46', 9): '9c0a897f7775ddbb5bbab32c11f2da7abb692dda8feb5a96dcda601d5cfe6df8',
    ('RAVDE_46', 10): 'ffc8439890c745153235acdeef9484f749681aca419a632ce3ed7b5e07c626d9',
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


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def published_release(sha256: str) -> Tuple[str, int]:
    """`(release, fold)` of the published file with this SHA-256, wherever it lies and whatever it is called, or
    `("", 0)` when it is none of the files known by hash (`RELEASE_SHA256`)."""
    return next(((r, k) for (r, k), h in RELEASE_SHA256.items() if h == sha256), ('', 0))



def releases_known_by_hash() -> list:
    """The releases whose published files are known by SHA-256 (`RELEASE_SHA256`): found wherever they lie."""
    return sorted({r for r, _ in RELEASE_SHA256})

def published_fold(sha256: str, release: str):
    """The fold whose published `release` file has this SHA-256: its number, None if it is none of them, or 0 when
    the release's hashes are unknown."""
    folds = {h: k for (r, k), h in RELEASE_SHA256.items() if r == release}
    if not folds:
        return 0
    return folds.get(sha256)
