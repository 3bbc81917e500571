"""Where a `timnet.paper` training step spends its time on a GPU: forward, backward, optimizer, and the whole step
eager, captured as one CUDA graph, and compiled with CUDA graphs (torch.compile mode reduce-overhead).

    python benchmarks/train_step_parts.py benchmarks/results/train_step_parts_NAME.json      # needs CUDA

Batch 64 of 39 x 188 (EMODB's shape), 7 classes; ms per call, the mean of 200 calls (500 for the graph) after
10 warm-up calls, synchronised around each timing.
"""
import json
import sys
import time

import torch
from torch import nn

from tim_zoo.train import TrainConfig
from tim_zoo.train.optim import build_optimizer, build_scheduler
from tim_zoo.train.run import create_training_model


def main(out_path: str) -> int:
    if not torch.cuda.is_available():
        sys.exit('train_step_parts.py needs a CUDA device')
    dev = torch.device('cuda')
    torch.manual_seed(0)
    x, y = torch.randn(64, 39, 188, device=dev), torch.randint(0, 7, (64,), device=dev)
    cfg = TrainConfig.from_recipe('timnet.paper', device='cuda')
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, reduction='sum')
    ms = {}

    def timed(name, fn, n=200):
        for _ in range(10):
            fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        ms[name] = 1000 * (time.perf_counter() - start) / n
        print(f'{name:>45}: {ms[name]:.2f} ms', flush=True)

    model = create_training_model(cfg, 7, 39, 188).to(dev).train()
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, 8)

    def forward_backward(forward=model):
        (criterion(forward(x), y) / 64).backward()

    def step(forward=model):
        forward_backward(forward)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    timed('forward', lambda: model(x))
    timed('forward+backward', forward_backward)
    timed('optimizer.step (foreach)', optimizer.step)
    timed('scheduler.step + zero_grad', lambda: (scheduler.step(), optimizer.zero_grad(set_to_none=True)))
    timed('eager step', step)
    fused = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, fused=True)
    forward_backward()
    timed('optimizer.step (fused)', fused.step)

    captured = create_training_model(cfg, 7, 39, 188).to(dev).train()
    adam = torch.optim.Adam(captured.parameters(), lr=cfg.lr, betas=cfg.betas, capturable=True, foreach=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):                      # warm-up on a side stream before capture
        for _ in range(3):
            adam.zero_grad(set_to_none=True)
            (criterion(captured(x), y) / 64).backward()
            adam.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    adam.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        (criterion(captured(x), y) / 64).backward()
        adam.step()
    timed('whole step as one CUDA graph (eager kernels)', graph.replay, 500)

    compiled = torch.compile(model, options={'triton.cudagraphs': True, 'fallback_random': True})
    start = time.perf_counter()
    step(compiled)
    step(compiled)
    torch.cuda.synchronize()
    print(f'compiling took {time.perf_counter() - start:.1f} s')
    timed('compiled reduce-overhead step (engine)', lambda: step(compiled))
    timed('compiled reduce-overhead fwd+bwd', lambda: forward_backward(compiled))
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, batch=64, frames=188, ms=ms)
    with open(out_path, 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else 'train_step_parts.json'))
