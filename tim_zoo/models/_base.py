"""What every tim_zoo model shares: timm's classifier interface, input checks, head choice."""
import difflib
import functools
import inspect
import re
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

import torch
from timm.models._features import feature_take_indices
from torch import nn

from .._validation import check_argument_types, check_choice, check_sequence_input
from .._utils import values_chosen_for_the_caller
from ..exceptions import ConfigurationError, UnknownArgumentError
from ..layers import (
    AFTLocalFusion, ClassifierHead, GMMClusteringHead, PoolHead, SinusoidalPositionalEncoding, WeightLayer,
)
from ..layers.init import init_weights_
from ..layers.tab import TAB_ARGS, TAB_DEFAULTS
from ..weights import load_weights, read_weight_file
from ..weights.fresh_head import mark_fresh_head


#: the keyword arguments `create_model` (timm's builder) takes itself: a misspelt one reaches the model's constructor
BUILDER_ARGS = ('pretrained', 'checkpoint_path', 'pretrained_cfg', 'pretrained_cfg_overlay', 'features_only',
                'out_indices', 'feature_cls', 'cache_dir')


class SERModel(nn.Module):
    """Base class of the speech emotion recognition models.

    Input `[B, in_chans, T]`, output logits `[B, num_classes]`. `forward_features` returns
    frame features `[B, num_features, T']` and
    `forward_head(x, pre_logits=False)` maps them to logits, or to the classifier's input
    (width `head_hidden_size`) with `pre_logits=True`.

    The arguments every model takes are documented here, each family's own on its class.

    Args:
        num_classes: output classes (default 7, EMODB's).
        in_chans: input channels `C` (39 MFCC).
        seq_len: the frame count a fixed-length head is built for (188: 96000 samples at 22050 Hz).
        head: `"default"` (the model's own head) or `"gmm"` (a GMM clustering head over the frame features, any
            length).
        gmm_components: mixture components of the GMM head (with `head="gmm"`; refused with the default head).
        check_finite: refuse NaN/Inf input (`NonFiniteInputError`; one pass over the input).
        weight_init: `"torch"` (PyTorch's defaults), `"keras"` (glorot_uniform kernels, zero biases: the TIM-Net
            authors') or `"research"` (PyTorch's, weight layers standard normal: the research code's).

    Attributes:
        fixed_len: the exact frame count the model needs (heads that flatten time), else None.
        min_len, max_len: the range of frame counts the model accepts.
        check_finite: refuse NaN/Inf input with `NonFiniteInputError`.
    """

    __jit_unused_properties__ = ['init_args', 'head_hidden_size']       # Python-side properties, not compiled by TorchScript

    #: model-specific defaults of the TAB arguments a model with `**tab_kwargs` takes (else `TemporalAwareBlock`'s)
    tab_defaults = {}                   # Dict[str, Any]
    #: constructor arguments this configuration does not use, each with why (recorded in `init_args`, refused unless
    #: left at their defaults; `_refuse_unused` adds them), e.g. `pos_encoding` without `pos_embed`
    unused_args = {}                    # Dict[str, str]; replaced, never changed in place
    #: the model's default `weight_init` (`"torch"`; `"keras"` for the official TIM-Net; `"research"` for the seed models)
    default_weight_init = 'torch'

    def __init_subclass__(cls, **kwargs):
        """Record the full constructor arguments (defaults included) of every model as `init_args`,
        so a checkpoint can rebuild the model from its metadata alone.

        A constructor with `**tab_kwargs` takes the arguments of `TemporalAwareBlock` in `TAB_ARGS`: they are
        declared once, in the block, and appear in the constructor's signature as keyword-only arguments with
        the block's defaults (or the model's `tab_defaults`). Every model also takes `weight_init` (`"torch"`:
        PyTorch's defaults; `"keras"`: Keras' glorot_uniform kernels and zero biases, `init_weights_`), applied
        after the constructor; its default is the class's `default_weight_init`."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get('__init__')
        if init is None:
            return
        signature = _model_signature(init, {**TAB_DEFAULTS, **cls.tab_defaults}, cls.default_weight_init)
        defaults = {name: p.default for name, p in signature.parameters.items() if p.default is not p.empty}

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            outermost = not hasattr(self, '_recording_args')
            if 'weight_init' not in kw:                   # the class's own default, also for a subclass that sets it
                kw = dict(kw, weight_init=type(self).default_weight_init)
            try:
                bound = signature.bind(self, *args, **kw)
            except TypeError as e:
                close = difflib.get_close_matches(str(e).rsplit(' ', 1)[-1].strip("'"), [
                    p for p in signature.parameters if p != 'self'] + list(BUILDER_ARGS), n=3)
                close = [f'{c} (an argument of create_model)' if c in BUILDER_ARGS else c for c in close]
                raise UnknownArgumentError(f'{cls.__name__}: {e}' + (f'; did you mean {", ".join(close)}?' if close
                                                                       else '')) from e
            bound.apply_defaults()
            check_argument_types(cls.__name__, defaults, bound.arguments)
            weight_init = bound.arguments.pop('weight_init')
            if outermost:                                 # a subclass calling super().__init__ has recorded already
                recorded = {}
                for name, value in bound.arguments.items():
                    kind = signature.parameters[name].kind
                    if kind is inspect.Parameter.VAR_KEYWORD:
                        recorded.update(value)
                    elif kind is not inspect.Parameter.VAR_POSITIONAL and name != 'self':
                        recorded[name] = value
                object.__setattr__(self, '_recording_args', dict(recorded, weight_init=weight_init))
            init(*bound.args, **bound.kwargs)
            if outermost:
                init_weights_(self, weight_init)

        recording_init.__signature__ = signature
        cls.__init__ = recording_init

    @property
    def init_args(self) -> Dict[str, Any]:
        """Constructor arguments that rebuild this architecture (`num_classes` as it is now)."""
        return dict(self._recording_args, num_classes=self.num_classes)

    def __init__(self, num_classes: int, in_chans: int, check_finite: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.check_finite = check_finite
        self.fixed_len: Optional[int] = None
        self.min_len = 1
        self.max_len: Optional[int] = None
        self.model_name = type(self).__name__
        self.label_names: Optional[list] = None
        self.levels_pruned = False                       # prune_intermediate_layers: only levels are computed
        self.pruned_levels = 0

    def _refuse_unused(self, names: Tuple[str, ...], reason: str) -> None:
        """Record the constructor arguments `names` as not used by this configuration (`unused_args`), and refuse any
        of them given a value other than its default (the model's, or the TAB's for a TAB argument) or than what
        `build_model`'s factory, tag or weight file chose: `reason` says why they have no effect."""
        params = inspect.signature(type(self)).parameters
        given = self._recording_args
        chosen = values_chosen_for_the_caller()
        wrong = sorted(k for k in names if given[k] not in (params[k].default, TAB_DEFAULTS.get(k, params[k].default))
                       and (k not in chosen or given[k] != chosen[k]))
        if wrong:
            raise ConfigurationError(f'{", ".join(wrong)}: {reason}')
        self.unused_args = {**self.unused_args, **dict.fromkeys(names, reason)}

    def _record_resolved(self, name: str, value: Any) -> None:
        """Record argument `name` in `init_args` as the value it resolved to (`attn_drop_rate=None`: `drop_rate`'s), so
        that a rebuild through timm's `create_model`, which drops None, builds the same model."""
        self._recording_args[name] = value

    def _refuse_default_head_args(self, head: str, names: Tuple[str, ...]) -> None:
        """With `head="gmm"`, the arguments `names` that only set the model's own head are unused (and refused)."""
        if head == 'gmm':
            self._refuse_unused(names, 'head="gmm" pools frames of any length into its own classifier, without '
                                       'dropout; they set the default head (head="default")')

    def _positional_encoding(self, pos_embed: bool, d_model: int, pos_encoding: str, drop_rate: float):
        """`positional_encoding(d_model, pos_encoding, drop_rate)` where `pos_embed`, else None (and `pos_encoding`,
        which then chooses nothing, refused unless left at its default)."""
        if not pos_embed:
            self._refuse_unused(('pos_encoding',), 'pos_embed=False adds no positional encoding: pass pos_embed=True '
                                                   'too')
            return None
        return positional_encoding(d_model, pos_encoding, drop_rate)

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits features."""
        return self.head.pre_logits_dim

    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        check_sequence_input(
            x, in_chans=self.in_chans, seq_len=self.fixed_len, min_len=self.min_len, max_len=self.max_len,
            check_finite=self.check_finite, model_name=self.model_name, dtype=next(self.parameters()).dtype)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the final classifier by a new one with `num_classes` outputs (0: identity, as timm); label names
        (also those in the feature settings) are cleared: set `model.label_names` for the new classes.

        `global_pool` (timm's argument): None keeps the pooling; `"avg"`, `"max"`, `"avgmax"` or `""` (no pooling:
        per-frame logits `[B, classes, T]`, or frame features `[B, C, T]` with 0 classes) on the models whose head
        pools time (`PoolHead`: `timnet`, `tim`, `set`); the others refuse it (`set_global_pool`).
        """
        if global_pool is not None:
            self.set_global_pool(global_pool)
        self.head.reset(num_classes)
        init_weights_(self.head.fc, self.init_args.get('weight_init', 'torch'))   # the new classifier as the rest began
        self.num_classes = num_classes
        self.label_names = None                          # a new classifier: its classes are the caller's
        cfg = getattr(self, 'pretrained_cfg', None)
        if isinstance(cfg, dict):
            cfg.pop('label_names', None)
            settings = cfg.get('feature_settings')
            if settings and 'label_names' in settings:
                cfg['feature_settings'] = {k: v for k, v in settings.items() if k != 'label_names'}
        self.refresh_pretrained_cfg()
        mark_fresh_head(self, 'reset_classifier() gave it a new classifier')

    def refresh_pretrained_cfg(self) -> None:
        """Fill in what timm's tools read from `model.pretrained_cfg`, from the model as it is now (called when it is
        built, loaded or given a new classifier): `input_size` `(in_chans, frames)` (the fixed length, else the frames
        of its input features), `fixed_input_size` (only one length is taken), `pool_size` (frames of
        `forward_features` at `input_size`), `first_conv` (the first module with weights to read the input),
        `num_classes`, and `input_features`: the feature settings of the weights' training
        (`feature_settings`), or, untrained, those the architecture was designed for (`DESIGN_FEATURES`)."""
        cfg = getattr(self, 'pretrained_cfg', None)
        if not isinstance(cfg, dict):
            return
        trained = cfg.get('feature_settings')
        features = dict(trained or DESIGN_FEATURES.get(self.model_name, RESEARCH_FEATURES))
        features = {k: v for k, v in features.items() if k in INPUT_FEATURE_KEYS}
        frames = self.fixed_len or features.get('frames') or RESEARCH_FEATURES['frames']
        if self.max_len is not None:
            frames = min(frames, self.max_len)
        cfg.update(input_features=features, input_size=(self.in_chans, frames),
                   fixed_input_size=self.fixed_len is not None,
                   pool_size=(frames // self.feature_info[-1]['reduction'],),
                   first_conv=next((n for n, m in self.named_modules() if isinstance(getattr(m, 'weight', None),
                                                                                    nn.Parameter)
                                    and m.weight.ndim >= 2), None),
                   num_classes=self.num_classes)

    def set_global_pool(self, global_pool: str) -> None:
        """Pool time with `global_pool` (`"avg"`, `"max"`, `"avgmax"`, `""`: see `PoolHead`), keeping the classifier;
        recorded in `init_args`, so a checkpoint rebuilds it. Refused, with the alternative, by heads that do not
        pool time."""
        if not isinstance(self.head, PoolHead):
            raise ConfigurationError(
                f'global_pool={global_pool!r}: the head of {self.model_name} ({type(self.head).__name__}) does not pool '
                f'time, it reads the frames in its own way, so there is no pooling to choose; forward_features(x) '
                f'gives the frame features [B, C, T] to pool as you like (global_pool works on timnet, tim and set)')
        self.head.set_pool(global_pool)
        self._recording_args['global_pool'] = global_pool

    def load_pretrained(self, path) -> None:
        """timm's custom-load hook: load a weight file (Keras `.hdf5`, `.safetensors`, `.pt`) with checks."""
        load_weights(self, path)

    @classmethod
    def read_weights(cls, path) -> Tuple[Dict[str, torch.Tensor], dict]:
        """`(state_dict, metadata)` of a weight file this family loads; a family with published weights in another
        format (`timnet`: Keras) overrides it."""
        return read_weight_file(path)

    @classmethod
    def check_pretrained(cls, variant: str, tag: str, info: dict, path, meta: dict, given: set) -> None:
        """The family's checks of a weight file read for `pretrained=True`, before the model is built (e.g. that it
        is the tag's release); `info` is `tag_info(tag)`, `given` the arguments the caller chose."""

    @classmethod
    def tag_info(cls, tag: str) -> dict:
        """`dict(model_args=..., metadata=...)` of a pretrained tag: constructor arguments its weights need and the
        feature settings of its inputs; `{}` for a family without published weights."""
        return {}

    # --- timm's feature and training interface -------------------------------------------------------------
    #: one dict per level, set by each family: `num_chs`, `reduction` in frames, `module` (whose output is the level's
    #: feature `[B, C, T]`, for forward hooks and fx feature extraction) and `modules` (those holding its parameters)
    feature_info = None                 # List[dict]
    #: modules that run before the first level (the stem), for `group_matcher`
    _stem_modules = ()                  # Tuple[str, ...]

    def _forward_levels(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """`(frame features, the output of every level in feature_info)` of a checked input."""
        raise NotImplementedError

    def _level_modules(self) -> List[Tuple[str, ...]]:
        """Per level, the modules whose parameters belong to it (`feature_info`'s `modules`, else its `module`)."""
        return [tuple(info.get('modules', (info['module'],))) for info in self.feature_info]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, in_chans, T]` -> frame features `[B, num_features, T']`."""
        if not torch.jit.is_scripting():
            self._check_input(x)
        return self._forward_levels(x)[0]

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCL',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """timm's feature API: the output of each level (`feature_info`: TAB levels, Transformer layers).

        Args:
            x: `[B, in_chans, T]`.
            indices: None (every level), `n` (the last `n`) or level indices (negative count from the end).
            norm: timm's argument; the levels have no final norm to apply, so it changes nothing.
            stop_early: timm's argument; every level is computed (the results are the same).
            output_fmt: `"NCL"` (`[B, C, T]`) or `"NLC"` (`[B, T, C]`).
            intermediates_only: return only the list of level outputs.

        Returns:
            `(frame features as forward_features, [level outputs])`, or the list alone.
        """
        fmt = str(getattr(output_fmt, 'value', output_fmt))
        check_choice('output_fmt', fmt, ('NCL', 'NLC'))
        take, _ = feature_take_indices(len(self.feature_info), indices)
        self._check_input(x)
        features, levels = self._forward_levels(x)
        chosen = [levels[i] if fmt == 'NCL' else levels[i].transpose(1, 2) for i in take]
        return chosen if intermediates_only else (features, chosen)

    def _level_stages(self) -> List[Tuple[nn.Module, int]]:
        """The blocks that make the levels of `feature_info`, in forward order, with how many levels each makes
        (each has `truncate(n)`), for `prune_intermediate_layers`."""
        raise NotImplementedError

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """timm's pruning: keep only what computes the levels `indices` (as `forward_intermediates`), dropping the
        later levels, the level fusion and the head. Afterwards `forward_intermediates` gives those levels as
        before, and `forward`/`forward_features` the last kept level `[B, C, T]` (the head is timm's
        `reset_classifier(0, "")`: no pooling, no classifier).

        Args:
            indices: levels to keep: `n` (the last `n`) or level indices.
            prune_norm: timm's argument; the levels have no final norm, so it changes nothing.
            prune_head: must be True: the head reads the fused levels, which pruning removes.

        Returns:
            The kept level indices.
        """
        if not prune_head:
            raise ConfigurationError(f'{self.model_name}: prune_intermediate_layers(prune_head=False) would keep a head '
                                     f'that reads the fusion of all levels, which pruning removes; use prune_head=True')
        take, max_index = feature_take_indices(len(self.feature_info), indices)
        remaining = max_index + 1
        for stage, num_levels in self._level_stages():
            if remaining < num_levels:                   # a stage kept whole keeps its fusion too
                stage.truncate(max(0, remaining))
            remaining -= num_levels
        self.feature_info = self.feature_info[:max_index + 1]
        self.levels_pruned = True
        self.pruned_levels = max_index + 1
        self._drop_fusion()
        self.num_features = self.feature_info[-1]['num_chs']
        self.head = PoolHead(self.num_features, 0, pool_type='')
        self.reset_classifier(0)                         # no classes, so no label names
        self.fixed_len = None                            # no head fixes the length now
        self.refresh_pretrained_cfg()
        return take

    def _drop_fusion(self) -> None:
        """After pruning: drop the modules with weights that ran after the levels (fusion of levels or layers), so
        that every parameter left computes a level."""

    def _pruned(self, levels: List[torch.Tensor]) -> bool:
        """Whether `_forward_levels` stops here: the model is pruned and `levels` are all the levels it keeps (its
        answer is then `levels[-1], levels`: the last kept level as the features)."""
        return self.levels_pruned and len(levels) == self.pruned_levels

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's parameter groups, e.g. for layer-wise learning-rate decay: `stem` (what runs before the first
        level), then one group per level in forward order; the rest (fusion, head) comes last. `coarse` is timm's
        argument; the groups are the same."""
        def pattern(prefixes):
            return '^(?:' + '|'.join(re.escape(p) for p in prefixes) + r')\.'
        return dict(stem=pattern(self._stem_modules) if self._stem_modules else None,
                    blocks=[(pattern(mods), (i,)) for i, mods in enumerate(self._level_modules())])

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each TAB level and Transformer layer in the backward pass instead of keeping its activations
        (less memory in training, the same gradients)."""
        for module in self.modules():
            if hasattr(module, 'grad_checkpointing'):
                module.grad_checkpointing = enable

    def no_weight_decay(self) -> Set[str]:
        """Parameters timm's optimizer factory keeps out of weight decay: level/layer fusion weights
        (`WeightLayer`: decay pulls them to uniform fusion), GMM head components and AFT position biases."""
        names = set()
        for prefix, module in self.named_modules():
            if isinstance(module, _NO_DECAY_BLOCKS):
                names.update(f'{prefix}.{n}' if prefix else n for n, _ in module.named_parameters(recurse=False))
        return names

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_NO_DECAY_BLOCKS = (WeightLayer, GMMClusteringHead, AFTLocalFusion)


def layer_info(prefix: str, num_layers: int, num_chs: int, reduction: int = 1, first_extra: tuple = (),
               shared: bool = False) -> List[dict]:
    """timm `feature_info` of a `TransformerEncoderStack` at module `prefix` (`first_extra`: modules with parameters
    that run just before its first layer; `shared`: one layer applied `num_layers` times, whose parameters belong to
    the first level)."""
    def layer(j):
        return f'{prefix}.layers.{0 if shared else j}'
    return [dict(num_chs=num_chs, reduction=reduction, module=f'{prefix}.outputs.{j}',
                 modules=((layer(j),) if j == 0 or not shared else ()) + (first_extra if j == 0 else ()))
            for j in range(num_layers)]


#: the TAB arguments of the research group's code, defaults of the seed models (TIM-Net's own are `mul`, `channel`)
SEED_TAB_DEFAULTS = dict(residual='add', drop_mode='frame')


def positional_encoding(d_model: int, style: str, drop_rate: float) -> SinusoidalPositionalEncoding:
    """The positional encoding of a seed model: `"research"` as the research code (its table, no dropout) or
    `"sincos"` (the standard table, dropout `drop_rate`)."""
    return SinusoidalPositionalEncoding(d_model, drop_rate=0.0 if style == 'research' else drop_rate, style=style)


def _model_signature(init, tab_defaults: Dict[str, Any], weight_init: str) -> inspect.Signature:
    """The constructor's signature with a `**tab_kwargs` parameter replaced by the TAB arguments (keyword-only,
    with these defaults), and a keyword-only `weight_init` (before any other `**kwargs`)."""
    params = list(inspect.signature(init).parameters.values())
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if var_kw and var_kw[0].name == 'tab_kwargs':
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=tab_defaults[name])
                   for name in TAB_ARGS]
        var_kw = []
    if 'weight_init' not in {p.name for p in params}:
        params.append(inspect.Parameter('weight_init', inspect.Parameter.KEYWORD_ONLY, default=weight_init))
    return inspect.Signature(params + var_kw)


#: the GMM head's mixture components unless a model is given `gmm_components`
GMM_COMPONENTS = 8


def create_head(
        head: str,
        in_features: int,
        num_classes: int,
        gmm_components: int,
        default: Callable[[], ClassifierHead],
) -> ClassifierHead:
    """`head="default"`: the model's own head; `head="gmm"`: a GMMClusteringHead on the frame features, with
    `gmm_components` mixtures (refused with the default head unless left at `GMM_COMPONENTS`)."""
    check_choice('head', head, ('default', 'gmm'))
    if head != 'gmm' and gmm_components != GMM_COMPONENTS:
        raise ConfigurationError(f'gmm_components={gmm_components} sets the mixtures of the GMM head, and '
                                 f'head={head!r} has none: pass head="gmm" too, or leave gmm_components at '
                                 f'{GMM_COMPONENTS}')
    if head == 'gmm':
        return GMMClusteringHead(in_features, num_classes, num_components=gmm_components)
    return default()


#: the keys of `pretrained_cfg["input_features"]`: how a model's input features are computed
INPUT_FEATURE_KEYS = ('sample_rate', 'n_mfcc', 'order', 'hop_length', 'mean_signal_length', 'frames', 'level')

#: the features the research group's code computed for the seed models: 39 MFCC, order 3 (13 static coefficients,
#: their deltas and delta-deltas), librosa's 22050 Hz, hop 512, 96000 samples (188 frames), no level normalisation
RESEARCH_FEATURES = dict(sample_rate=22050, n_mfcc=39, order=3, hop_length=512, mean_signal_length=96000,
                         frames=188, level='none')

#: architecture -> the input features it was designed for, where they are not `RESEARCH_FEATURES` (`timnet`: the
#: TIM-Net authors'); an untrained model's `pretrained_cfg["input_features"]`
DESIGN_FEATURES: Dict[str, dict] = {}

#: architecture -> the tag `pretrained=True` loads when no tag (and no file) is named, as timm resolves an
#: architecture to its default tag; architectures without published weights are absent
DEFAULT_TAGS: Dict[str, str] = {}
#: per pretrained tag (`arch.tag`), what its weights must record of their training (the zoo's tags: the corpus, the
#: protocol and the recipe), so that other weights placed where the tag's file goes are not taken for the tag's
TAG_TRAINING: Dict[str, dict] = {}
