"""The model that ships inside the package: `tim-zoo predict` uses it when given no weights.

`timnet_emodb.safetensors` (pretrained tag `timnet.tim_zoo_emodb`): a `timnet` trained by tim_zoo's own engine
on all 535 utterances of EMODB (7 classes: angry boredom disgust fear happy neutral sad), TIM-Net paper recipe
(`timnet.paper`: Adam 1e-3, 500 epochs, label smoothing 0.1), features as the EMODB_46 release
(librosa MFCC, 96000 samples at 22050 Hz, 39 x 188), `level="peak"`: the shared EMODB copy it learned from is
peak-normalised (median peak 0.99997 of full scale), so prediction scales each analysed window to a
full-scale peak too (recorded in the checkpoint's feature settings, added after training). Made with:

    tim-zoo train --corpus emodb --data-root EMODB --recipe timnet.paper --protocol all --out RUN

(before `timnet` started from Keras' initialisation: add `--model-arg weight_init=torch` to reproduce it).

The checkpoint's metadata holds the full training configuration. Its accuracy on unseen speakers is
what the 10-fold and leave-one-speaker-out runs in the docs measure; it has seen every EMODB file.
"""
from .._factory import create_model
from ..models.timnet import BUNDLED_TAG
from ..models.timnet_releases import BUNDLED_CHECKPOINT

DEFAULT_CHECKPOINT = BUNDLED_CHECKPOINT
DEFAULT_MODEL = f'timnet.{BUNDLED_TAG}'


def load_default_model():
    """The bundled EMODB `timnet` (`create_model("timnet.tim_zoo_emodb", pretrained=True)`), in eval mode, with its
    label names and feature settings."""
    return create_model(DEFAULT_MODEL, pretrained=True).eval()
