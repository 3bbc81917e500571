"""The model that ships inside the package: `tim-zoo predict` uses it when given no weights.

`timnet_emodb.safetensors` (pretrained tag `timnet.tim_zoo_emodb`): a `timnet` trained by tim_zoo's own engine
on all 535 utterances of EMODB (7 classes: angry boredom disgust fear happy neutral sad), TIM-Net paper recipe
(`timnet.paper`: Adam 1e-3, 500 epochs, label smoothing 0.1, the last epoch, Keras' initialisation), features as
the EMODB_46 release (librosa MFCC, 96000 samples at 22050 Hz, 39 x 188), `level="peak"`: the shared EMODB copy
it learned from is peak-normalised (median peak 0.99997 of full scale), so prediction scales each analysed
window to a full-scale peak too (recorded in the feature file and from it in the checkpoint). Made with:

    tim-zoo extract --corpus emodb --data-root EMODB -o emodb_peak.npz
    tim-zoo train --features emodb_peak.npz --recipe timnet.paper --protocol all --seed 34 --threads 1 --compile on --out RUN

and `RUN/all/last.safetensors` copied here (trained on one CPU core, torch 2.14.1; a GPU or another CPU does not
repeat it bit for bit).

The checkpoint's metadata holds the full training configuration. It has seen every EMODB file; its accuracy
on unseen utterances is what the 10-fold runs in docs/training.md measure (85.9 % over three training seeds, whose means have a sample std of 0.6),
on unseen speakers what the leave-one-speaker-out runs there measure.
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
