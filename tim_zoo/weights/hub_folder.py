"""Hub-ready folders: the one folder format in which tim_zoo models are shared.

A folder holds `config.json` (timm's hub layout: `architecture`, `num_classes`, `label_names`, `model_args`,
`pretrained_cfg`, and tim_zoo's `feature_settings`), `model.safetensors` (a tim_zoo checkpoint: the tensors with the
metadata that rebuilds the model) and `README.md` (the model card). It loads with
`create_model("local-dir:FOLDER", pretrained=True)`, and, once uploaded to a Hugging Face hub repository (e.g. with
`huggingface_hub.upload_folder`), with `create_model("hf-hub:ORG/NAME", pretrained=True)`, from the hub cache when
it is there; through `tim_zoo.create_model` and `timm.create_model` alike.
"""
import json
import shutil
from pathlib import Path
from typing import Optional

import torch

from ..exceptions import CheckpointMismatchError
from .checkpoint import save_checkpoint
from .load import training_records

#: the weight file of a hub folder
HUB_WEIGHTS = 'model.safetensors'

#: `pretrained_cfg` keys written to `config.json` (what timm's `PretrainedCfg` takes and describes the weights)
_CFG_KEYS = ('input_size', 'fixed_input_size', 'pool_size', 'first_conv', 'classifier', 'num_classes', 'label_names',
             'license', 'origin_url', 'paper_name', 'paper_ids')


def save_for_hub(model, folder, card: Optional[str] = None, label_names=None,
                 feature_settings: Optional[dict] = None, checkpoint=None) -> Path:
    """Write `model` (built by `tim_zoo.create_model`) to the hub-ready `folder`: `config.json`, `model.safetensors`,
    `README.md`.

    Args:
        model: the model, with its label names and feature settings (as trained or loaded).
        folder: created if missing; the three files are replaced.
        card: the model card's text (default: one written from the model: architecture, classes, input features,
            parameters, how to load it).
        label_names, feature_settings: as `save_checkpoint` (default: the model's).
        checkpoint: the tim_zoo checkpoint `model` was loaded from, shipped as it is (its training record and tensor
            checksum kept) instead of the model saved anew; refused when its tensors are not the model's.

    Returns:
        The folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if checkpoint is None or label_names is not None or feature_settings is not None:
        save_checkpoint(model, folder / HUB_WEIGHTS, label_names=label_names, feature_settings=feature_settings)
    else:
        _ship_checkpoint(model, Path(checkpoint), folder / HUB_WEIGHTS)
    cfg = dict(getattr(model, 'pretrained_cfg', None) or {})
    labels = list(label_names) if label_names is not None else getattr(model, 'label_names', None)
    settings = feature_settings if feature_settings is not None else cfg.get('feature_settings')
    pretrained_cfg = {k: _json(cfg[k]) for k in _CFG_KEYS if cfg.get(k) is not None}
    pretrained_cfg.pop('label_names', None)
    pretrained_cfg['num_classes'] = model.num_classes
    pretrained_cfg['custom_load'] = True                 # the file is read by tim_zoo (metadata, checks)
    pretrained_cfg['hf_hub_filename'] = HUB_WEIGHTS
    config = dict(architecture=model.model_name, num_classes=model.num_classes, num_features=model.num_features,
                  label_names=labels, model_args=_json(model.init_args), feature_settings=settings,
                  pretrained_cfg=pretrained_cfg, library='tim_zoo')
    (folder / 'config.json').write_text(json.dumps({k: v for k, v in config.items() if v is not None}, indent=2))
    (folder / 'README.md').write_text(card if card is not None else model_card(model, labels, settings))
    return folder


def _ship_checkpoint(model, checkpoint: Path, target: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(checkpoint))
    state = model.state_dict()
    differ = sorted(k for k in set(tensors) | set(state)
                    if k not in tensors or k not in state or not torch.equal(tensors[k], state[k].cpu()))
    if differ:
        raise CheckpointMismatchError(f'{checkpoint} does not hold the model\'s tensors ({len(differ)} differ: '
                                      f'{", ".join(differ[:5])}{", ..." if len(differ) > 5 else ""}); give the '
                                      f'checkpoint the model was loaded from, or none to save the model anew')
    if checkpoint.resolve() != target.resolve():
        shutil.copyfile(checkpoint, target)


def model_card(model, labels, settings) -> str:
    """A model card for `model`: what it is, its classes and input features, and how to load it."""
    params = sum(p.numel() for p in model.parameters())
    features = ', '.join(f'{k}={v}' for k, v in (settings or {}).items() if k != 'label_names') or \
        'not recorded: give them to EmotionRecognizer(model, feature_settings=...)'
    classes = ', '.join(labels) if labels else f'{model.num_classes} unnamed classes'
    records = training_records((getattr(model, 'pretrained_cfg', None) or {}).get('trained_on'))
    trained = '; then '.join(_training_words(r) for r in reversed(records)) if records else \
        'not recorded (say here which recordings trained it)'
    return f"""---
library_name: tim_zoo
tags:
- audio-classification
- speech-emotion-recognition
- tim_zoo
---
# {model.model_name}

- architecture: `{model.model_name}` ({params:,} parameters)
- classes: {classes}
- input features: {features}
- trained on: {trained}{'. The terms of use of these corpora apply to the weights.' if records else ''}

## Use

```python
import tim_zoo
model = tim_zoo.create_model("local-dir:PATH_TO_THIS_FOLDER", pretrained=True)   # or "hf-hub:ORG/NAME"
recognizer = tim_zoo.EmotionRecognizer(model)
```
"""


def _training_words(record: dict) -> str:
    """One training of a `trained_on` record in words: corpus, protocol and split, utterances, recipe."""
    parts = [f"protocol {record.get('protocol')}"] + ([f"split {record['split']}"] if record.get('split') not in
                                                      (None, '', 'all') else [])
    parts += [f"{record['utterances']} utterances"] if record.get('utterances') else []
    parts += [f"recipe {record['recipe']}"] if record.get('recipe') else []
    return f"{str(record.get('corpus')).upper()} ({', '.join(parts)})"


def _json(value):
    """`value` with tuples as lists (JSON's own form), so the written config reads back equal."""
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value
