"""Every registered model survives torch.compile, TorchScript tracing and ONNX export (run by onnxruntime)."""
import logging
import warnings

import pytest
import torch

import tim_zoo

MODEL_NAMES = tim_zoo.list_models()
FRAMES = 64


def _model(name):
    torch.manual_seed(0)
    model = tim_zoo.create_model(name, num_classes=5)
    if model.fixed_len is not None:
        model = tim_zoo.create_model(name, num_classes=5, seq_len=FRAMES)
    for m in model.modules():                       # non-trivial eval statistics, so BN is not an identity
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_torchscript_trace(name):
    model = _model(name)
    x = torch.randn(2, 39, FRAMES)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(model, x, check_trace=False)
    x2 = torch.randn(2, 39, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(traced(x2), model(x2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_torch_compile(name):
    torch._dynamo.reset()
    model = _model(name)
    compiled = torch.compile(model, backend='aot_eager')
    x = torch.randn(3, 39, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_torch_compile_training_step_matches_eager():
    torch._dynamo.reset()
    model = _model('at_deltatim_v2').train()
    compiled = torch.compile(model, backend='aot_eager')
    x = torch.randn(4, 39, FRAMES)
    y = torch.tensor([0, 1, 2, 3])
    grads = []
    for fn in (model, compiled):
        model.zero_grad()
        torch.manual_seed(1)                        # same dropout and frame masks in both runs
        torch.nn.functional.cross_entropy(fn(x), y).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_torch_compile_inductor_timnet():
    torch._dynamo.reset()
    model = _model('timnet')
    compiled = torch.compile(model)
    x = torch.randn(2, 39, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', MODEL_NAMES)
@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    model = _model(name)
    path = tmp_path / f'{name}.onnx'
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, (torch.randn(2, 39, FRAMES),), str(path), dynamo=True, input_names=['x'],
                              output_names=['logits'], dynamic_shapes=({0: torch.export.Dim('batch', max=1024)},))
    finally:
        logging.disable(logging.NOTSET)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    x = torch.randn(3, 39, FRAMES)                  # another batch size than the export's
    (out,) = session.run(None, {'x': x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name, kwargs', [
    ('tim', dict(head='gmm', filters=8, depth=3)), ('at_tim', dict(head='gmm', filters=8, depth=3)),
    ('timnet', dict(filters=8, depth=3)), ('multitim', dict(filters=8, d_qkv=8, d_ff=32)),
    ('set', dict(d_model=32, num_heads=2, d_ff=64, num_layers=2)),
])
def test_heads_that_take_any_length_export_with_any_length(name, kwargs, tmp_path):
    """Every head that pools time (GMM, average pooling, adaptive pooling) takes other lengths after an export with a
    dynamic length (the GMM head was fixed to the export's length)."""
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    torch.manual_seed(0)
    model = tim_zoo.create_model(name, num_classes=4, **kwargs).eval()
    assert model.fixed_len is None
    path = tmp_path / f'{name}_gmm.onnx'
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, (torch.randn(2, 39, 60),), str(path), dynamo=True, input_names=['x'],
                              output_names=['logits'],
                              dynamic_shapes=({0: torch.export.Dim('batch', max=1024),
                                               2: torch.export.Dim('frames', min=8, max=4096)},))
    finally:
        logging.disable(logging.NOTSET)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for frames in (60, 300):
        x = torch.randn(3, 39, frames)
        (out,) = session.run(None, {'x': x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), model(x), atol=1e-4, rtol=1e-4)
