"""What a run reports: the mean and spread over its splits and repeats, and its training curves and confusion
matrices as pictures."""
from pathlib import Path
from typing import Optional

import numpy as np

from .._utils import require
from ..evaluation import speaker_votes
from .engine import log


def split_summary(results: list, one_speaker_splits: bool = False) -> dict:
    """Mean and std (ddof 0) over the tested splits of WAR and UAR, pooled metrics, and the splits' results. With
    `one_speaker_splits` (leave one speaker out) and one label per test speaker, also `speakers`: the subject-level
    result (`tim_zoo.evaluation.speaker_votes` per split: the share of speakers whose utterances' most common answer
    is their label, and the ties)."""
    results = [r for r in results if 'war' in r]
    if not results:
        return dict(folds=[])
    votes = [speaker_votes([r['split']] * len(r['test']['label']), r['test']['label'], r['test']['predicted'])
             for r in results if 'test' in r] if one_speaker_splits else []
    speakers = dict(speakers=len(votes), war=float(np.mean([v['war'] for v in votes])),
                    ties=sum(v['ties'] for v in votes)) if votes and all(votes) and len(votes) == len(results) else None
    wars = np.array([r['war'] for r in results])
    uars = np.array([r['uar'] for r in results])
    pooled = np.sum([np.array(r['confusion']) for r in results], axis=0)
    recall = np.diag(pooled) / np.maximum(pooled.sum(axis=1), 1)
    return dict(
        folds=[{k: v for k, v in r.items() if k not in ('history', 'test')} for r in results],
        war_mean=float(wars.mean()), war_std=float(wars.std()), uar_mean=float(uars.mean()), uar_std=float(uars.std()),
        pooled_war=float(np.trace(pooled) / max(pooled.sum(), 1)), pooled_uar=float(recall[pooled.sum(axis=1) > 0].mean()),
        pooled_confusion=pooled.tolist(), **({'speakers': speakers} if speakers else {}))


#: a split whose training accuracy at its last epoch is at most the most common class's share plus this learned
#: nothing a constant answer would not get
UNFITTED_MARGIN = 0.05


def unfitted_note(results: list, y: np.ndarray, splits: dict, repeat: Optional[int] = None) -> str:
    """A note naming the splits (`{name: Split}`) whose model did not learn, on its own training utterances at the
    epoch it kept (`chosen_epoch`: the last, or the best on validation), beyond answering their most common class (''
    where every split did): their test figures say little of the model, only of a failed training."""
    y = np.asarray(y)
    low = []
    for r in results:
        history, split = r.get('history') or [], splits.get(r.get('split'))
        if not history or split is None or not len(split.train):
            continue
        share = float(np.bincount(y[split.train]).max() / len(split.train))
        tested = history[min(int(r.get('chosen_epoch') or len(history)), len(history)) - 1]     # the epoch it kept
        if tested['train_war'] <= share + UNFITTED_MARGIN:
            low.append(f'{r["split"]} {100 * tested["train_war"]:.0f} %, its most common class {100 * share:.0f} %')
    if not low:
        return ''
    shown = '; '.join(low[:5]) + (' ...' if len(low) > 5 else '')
    of = f' of repeat {repeat}' if repeat is not None else ''
    return (f'{len(low)} of {len(results)} splits{of} did not learn their own training utterances beyond answering the '
            f'most common class (training accuracy at the epoch kept: {shown}): their test figures measure a training '
            f'that failed, not the model; more epochs, another learning rate or a look at the labels')


def save_plots(results: list, label_names, out_dir: Path) -> bool:
    """`curves.png` (train loss, validation accuracy per split) and `confusion.png` (pooled over splits)."""
    try:
        matplotlib = require('matplotlib', 'training plots')
    except ImportError as e:
        log.warning('%s; no plots written', e)
        return False
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    validated = False
    for r in results:
        epochs = [h['epoch'] for h in r['history']]
        ax_loss.plot(epochs, [h['train_loss'] for h in r['history']], label=r['split'])
        ax_acc.plot(epochs, [h['train_war'] for h in r['history']], linestyle=':', color='grey')
        if r['history'] and 'val_war' in r['history'][0]:
            ax_acc.plot(epochs, [h['val_war'] for h in r['history']], label=r['split'])
            validated = True
    ax_loss.set(xlabel='epoch', ylabel='training loss', title='training loss')
    ax_acc.set(xlabel='epoch', ylabel='accuracy (WAR)',
               title='validation (lines) and training (dotted) accuracy' if validated else 'training accuracy')
    if validated and len(results) <= 12:
        ax_acc.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(out_dir / 'curves.png', dpi=120)
    plt.close(fig)

    tested = [r for r in results if 'confusion' in r]
    if not tested:
        return True
    pooled = np.sum([np.array(r['confusion']) for r in tested], axis=0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(label_names), 0.8 + 0.7 * len(label_names)))
    ax.imshow(pooled, cmap='Blues')
    for i in range(pooled.shape[0]):
        for j in range(pooled.shape[1]):
            ax.text(j, i, str(pooled[i, j]), ha='center', va='center',
                    color='white' if pooled[i, j] > pooled.max() / 2 else 'black')
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha='right')
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set(xlabel='predicted', ylabel='true', title='test confusion (pooled over splits)')
    fig.tight_layout()
    fig.savefig(out_dir / 'confusion.png', dpi=120)
    plt.close(fig)
    return True


def repeats_summary(runs: list) -> dict:
    """Mean and std over repeats of each repeat's mean over splits (the spread of the protocol's result) and of its
    UAR pooled over the splits (`pooled_uar`), and per split the mean and std over repeats. Stds are sample stds
    (ddof 1) over repeats; `fold_war_std` is each repeat's std over splits (ddof 0, as in a single run), averaged."""
    tested = [r for r in runs if r['folds']]
    if not tested:
        return dict(folds=[], repeats=runs)

    def over(key):
        values = np.array([r[key] for r in tested])
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
    war_mean, war_std = over('war_mean')
    uar_mean, uar_std = over('uar_mean')
    pooled_uar, pooled_uar_std = over('pooled_uar')
    per_split = []
    for j, fold in enumerate(tested[0]['folds']):
        wars = np.array([r['folds'][j]['war'] for r in tested])
        per_split.append(dict(split=fold['split'], war_mean=float(wars.mean()),
                              war_std=float(wars.std(ddof=1)) if len(wars) > 1 else 0.0))
    return dict(
        folds=per_split, num_repeats=len(tested), war_mean=war_mean, war_std=war_std, uar_mean=uar_mean,
        uar_std=uar_std, pooled_uar=pooled_uar, pooled_uar_std=pooled_uar_std,
        fold_war_std=float(np.mean([r['war_std'] for r in tested])), repeats=runs)
