"""Wrote these checkpoints with tim_zoo as it was before the research-parity definitions (commit bcca901):

    git archive bcca901 tim_zoo | tar -x -C OLD && PYTHONPATH=OLD python tests/data/checkpoints_v1/make.py tests/data/checkpoints_v1

Tiny sizes, weights shifted from their initialisation and random BatchNorm statistics, so that every argument shows.
"""
import sys, warnings
import numpy as np, torch
warnings.simplefilter('ignore'); torch.set_num_threads(1)
import tim_zoo
assert 'old_tree' in tim_zoo.__file__, tim_zoo.__file__
out = sys.argv[1]
tiny = dict(d_model=16, num_heads=2, d_ff=32)
tab = dict(filters=8, depth=3)
cfg = {
    'tim': dict(**tab), 'transformer': dict(seq_len=16, head_hidden=8, **tiny),
    'transformer_tim': dict(seq_len=16, head_hidden=8, **tiny, **tab),
    'transformer_deltatim': dict(seq_len=16, head_hidden=8, **tiny, **tab),
    'mltransformer_tim': dict(seq_len=16, head_hidden=8, **tiny, **tab),
    'cnn_transformer': dict(seq_len=16, **tiny, **tab), 'cnn_ml_transformer': dict(seq_len=16, **tiny, **tab),
    'set': dict(**tiny), 'set_official': dict(seq_len=36, d_model=36, num_heads=2, d_ff=32, head_hidden=8),
    'at_tim': dict(seq_len=16, d_qkv=4, d_ff=16, **tab), 'at_deltatim': dict(seq_len=16, d_qkv=4, d_ff=16, **tab),
    'at_deltatim_v2': dict(seq_len=16, d_qkv=4, d_ff=16, **tab), 'multitim': dict(d_qkv=4, d_ff=16, filters=8),
    'transformer_tim_pos': dict(seq_len=16, head_hidden=8, pos_embed=True, **tiny, **tab),
}
arrays = {}
for name, kw in cfg.items():
    arch = name.replace('_pos', '')
    torch.manual_seed(0)
    model = tim_zoo.create_model(arch, **kw).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
    tim_zoo.save_checkpoint(model, f'{out}/{name}.safetensors')
    x = torch.randn(2, 39, kw.get('seq_len', 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        arrays[f'{name}/x'], arrays[f'{name}/logits'] = x.numpy(), model(x).numpy()
np.savez_compressed(f'{out}/io.npz', **arrays)
print('wrote', len(cfg))
