"""Training recipes from the research notes (SEED_NOTES.md) and the TIM-Net paper.

A recipe is a set of training settings (and model arguments) with a name such as
`at_deltatim.iemocap`; every setting can be overridden on the command line or in
`TrainConfig`.
"""
import difflib
from typing import Dict

from ..exceptions import ConfigurationError

_SEED = dict(optimizer='adamw', betas=(0.93, 0.98), batch_size=64, scheduler='step', label_smoothing=0.1)

#: name -> settings; `model` is the model the recipe was written for, `note` what the notes reported
RECIPES: Dict[str, dict] = {
    'default': dict(_SEED, lr=4e-4, weight_decay=0.2, step_size=30, gamma=0.3, dropout=0.1, epochs=100,
                    protocol='holdout', seed=34, note='the notes\' default: split 0.8/0.1/0.1, seed 34'),
    'transformer_tim.modma': dict(_SEED, model='transformer_tim', lr=1e-3, weight_decay=0.2, step_size=30,
                                  gamma=0.3, dropout=0.1, epochs=100, note='MODMA: val ~95%'),
    'transformer_tim.modma_tt0': dict(_SEED, model='transformer_tim', lr=2e-4, weight_decay=0.1, step_size=30,
                                      gamma=0.3, dropout=0.1, epochs=60, note='MODMA "TT0": train 100, val 99.718'),
    'transformer_tim.iemocap': dict(_SEED, model='transformer_tim', lr=1e-4, weight_decay=0.2, step_size=30,
                                    gamma=0.3, dropout=0.1, epochs=100, note='IEMOCAP: the lower lr stops big swings'),
    'transformer_deltatim.iemocap': dict(_SEED, model='transformer_deltatim', lr=1e-4, weight_decay=0.3,
                                         step_size=20, gamma=0.4, dropout=0.2, epochs=100, note='IEMOCAP'),
    'at_deltatim.modma': dict(_SEED, model='at_deltatim', lr=4e-4, weight_decay=0.4, step_size=30, gamma=0.3,
                              dropout=0.1, epochs=100, model_args=dict(residual='add'),
                              note='MODMA: train 98, val 95'),
    'at_deltatim.iemocap_v2': dict(_SEED, model='at_deltatim', lr=5e-4, weight_decay=0.5, step_size=25, gamma=0.3,
                                   dropout=0.1, epochs=150, model_args=dict(residual='add'),
                                   note='IEMOCAP fixed-length v2: train 96.613, val 98.509'),
    'at_deltatim.iemocap': dict(_SEED, model='at_deltatim', lr=5e-4, weight_decay=0.5, step_size=30, gamma=0.3,
                                dropout=0.1, epochs=150, model_args=dict(residual='add'),
                                note='IEMOCAP v1: train 98.068, test 92.853'),
    'at_deltatim_v2.modma': dict(_SEED, model='at_deltatim_v2', lr=5e-4, weight_decay=0.2, step_size=30, gamma=0.3,
                                 dropout=0.1, epochs=100, note='MODMA'),
    'at_tim.modma_gmm': dict(_SEED, model='at_tim', lr=6e-4, weight_decay=0.1, step_size=30, gamma=0.2, dropout=0.1,
                             epochs=100, gmm_select=100, gmm_fits=8,
                             note='MODMA on 100 GMM-selected frames (8 mixtures)'),
    'set_official.modma': dict(_SEED, model='set_official', lr=8e-4, weight_decay=0.1, step_size=30, gamma=0.3,
                               dropout=0.1, epochs=60, note='MODMA'),
    'seed.emodb': dict(_SEED, lr=1e-3, weight_decay=0.2, scheduler='none', dropout=0.1, epochs=100,
                       protocol='kfold', folds=10, val_fraction=0.0, select='last',
                       note='the seed models on EMODB (the zoo table): the notes\' default with lr 1e-3 held '
                            'constant, adapted on validation data of folds 1-3 (the default: 51 %, lr 1e-3: 54-58 %; '
                            'docs/training.md), 10-fold, all nine training folds, last epoch'),
    'transformer.emodb': dict(_SEED, lr=1e-4, weight_decay=0.2, scheduler='none', dropout=0.1, epochs=100,
                              protocol='kfold', folds=10, val_fraction=0.0, select='last',
                              note='the Transformer family on EMODB (the zoo table): seed.emodb at lr 1e-4 (the notes\' '
                                   'IEMOCAP transformer_tim lr), probed on transformer_tim on validation data of folds '
                                   '1-3: lr 1e-3 left folds untrained (49 %), lr 1e-4 76 % (docs/training.md)'),
    'timnet.paper': dict(model='timnet', optimizer='adam', betas=(0.93, 0.98), lr=1e-3, weight_decay=0.0,
                         scheduler='none', batch_size=64, dropout=0.1, epochs=500, label_smoothing=0.1,
                         protocol='kfold', folds=10, val_fraction=0.0, select='last',
                         note='TIM-Net authors\' current protocol: Adam 1e-3 (0.93, 0.98), 500 epochs, label smoothing '
                              '0.1, 10-fold CV training on all nine training folds and keeping the last epoch (no '
                              'validation carve-out, no test-fold information); timnet starts from Keras\' '
                              'initialisation'),
    'timnet.paper_val': dict(model='timnet', optimizer='adam', betas=(0.93, 0.98), lr=1e-3, weight_decay=0.0,
                             scheduler='none', batch_size=64, dropout=0.1, epochs=500, label_smoothing=0.1,
                             protocol='kfold', folds=10, val_fraction=0.1, select='val',
                             note='timnet.paper with the checkpoint chosen on a validation split carved from the '
                                  'training folds (10 %): best validation accuracy, ties to the lower validation '
                                  'loss; never the test fold'),
}


#: the features the research notes' recipes were set on: the research code's (MFCC order 3, no level
#: normalisation, 96000 samples at 22050 Hz: 188 frames), as `tim-zoo extract --order 3 --level none` makes them
RESEARCH_FEATURES = dict(order=3, level='none', mean_signal_length=96000, sample_rate=22050)
#: the corpus recipes of the research notes, set on `RESEARCH_FEATURES` (`default` is the starting point for any
#: features; the zoo's `seed.emodb` and `transformer.emodb` were adapted to its own; `timnet.*` are the TIM-Net
#: authors')
RESEARCH_RECIPES = ('transformer_tim.modma', 'transformer_tim.modma_tt0', 'transformer_tim.iemocap',
                    'transformer_deltatim.iemocap', 'at_deltatim.modma', 'at_deltatim.iemocap_v2', 'at_deltatim.iemocap',
                    'at_deltatim_v2.modma', 'at_tim.modma_gmm', 'set_official.modma')


def recipe_notes(recipe: str, model: str, settings: dict) -> list:
    """What a run should know of its recipe `recipe`: that it was written for another model than `model`, and
    that it was set on other features than `settings` (a feature file's settings) describe."""
    if recipe not in RECIPES:
        return []
    notes = []
    written_for, model = RECIPES[recipe].get('model'), getattr(model, '__qualname__', model)
    if written_for and str(model) != written_for:
        notes.append(f'recipe {recipe} was set for {written_for}; this run trains {model} with its settings')
    if recipe in RESEARCH_RECIPES:
        differ = [f'{k} {settings[k]} (the recipe\'s {v})' for k, v in RESEARCH_FEATURES.items()
                  if k in settings and settings[k] != v]
        if differ:
            notes.append(f'recipe {recipe} was set on the research code\'s features (MFCC order 3, level none, 96000 '
                         f'samples at 22050 Hz: tim-zoo extract --order 3 --level none --mean-signal-length 96000); '
                         f'these features differ: {", ".join(differ)}')
    return notes


def get_recipe(name: str) -> dict:
    """The settings of recipe `name` (a copy); unknown names get close suggestions."""
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=3, cutoff=0.4)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        raise ConfigurationError(f'unknown recipe {name!r}{hint} Recipes: {", ".join(RECIPES)}')
    recipe = dict(RECIPES[name])
    recipe['model_args'] = dict(recipe.get('model_args', {}))
    return recipe
