"""Time ``tim-zoo predict`` as a user meets it: a cold start on one file, and one call on a whole folder.

Prints, from the same run on the same machine:

- the wall time of ``python -c "import timm"`` (the floor any timm-based tool starts from),
- the wall time of a cold ``tim-zoo predict ONE.wav`` (a fresh process: imports, bundled model, audio,
  speech detection, MFCC, model) and its ratio to the first (goal: at most 1.25),
- the wall time of one ``tim-zoo predict FOLDER`` call over every file of the folder, as files per second
  (goal: at least 100 on the 2-core machine, for the 535 EMODB files).

Each timing is the median of ``--repeats`` fresh processes. ``--json FILE`` writes the figures with the
machine (CPU model and flags), which ``benchmarks/make_tables.py`` puts into docs/speed.md.

    python benchmarks/predict_speed.py --folder ../shared/data/emodb/wav --json benchmarks/results/predict_cpu2.json
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tim_zoo._utils import cpu_info


IN_PROCESS = """
import sys, time
from pathlib import Path
import tim_zoo
from tim_zoo.benchmark.harness import tune_malloc
tune_malloc()
rec = tim_zoo.EmotionRecognizer.from_pretrained()
files = sorted(str(f) for f in Path(sys.argv[1]).iterdir() if f.suffix.lower() == '.wav')
start = time.perf_counter()
rec.predict_many(files)
print(time.perf_counter() - start)
"""


def wall(cmd, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu() -> dict:
    model, flags = cpu_info()
    model = model or platform.processor()
    wanted = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'fma')
    return dict(cpu=model, cores=os.cpu_count(), flags=[f for f in wanted if f in flags])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--folder', required=True, help='a folder of recordings (the EMODB wav folder)')
    p.add_argument('--file', help='the one-file recording (default: the first file of --folder)')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--json', help='write the figures here')
    args = p.parse_args(argv)

    folder = Path(args.folder)
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() == '.wav')
    one = args.file or str(files[0])
    exe = str(Path(sys.executable).with_name('tim-zoo'))
    cli = [exe] if Path(exe).exists() else [sys.executable, '-c', 'import sys; from tim_zoo.cli import main; sys.exit(main())']
    subprocess.run(cli + ['predict', one, '--quiet'], check=True, stdout=subprocess.DEVNULL)   # warm the disk cache

    import_timm = wall([sys.executable, '-c', 'import timm'], args.repeats)
    predict_one = wall(cli + ['predict', one, '--quiet'], args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / 'out.csv')
        folder_s = wall(cli + ['predict', str(folder), '--quiet', '--output', out], max(1, args.repeats // 2))
    inside = subprocess.run([sys.executable, '-c', IN_PROCESS, str(folder)], check=True, capture_output=True, text=True)
    in_process_s = float(inside.stdout.strip().splitlines()[-1])
    import torch
    result = dict(
        import_timm_s=round(import_timm, 3), predict_one_s=round(predict_one, 3),
        ratio=round(predict_one / import_timm, 3), files=len(files), predict_folder_s=round(folder_s, 3),
        files_per_s=round(len(files) / folder_s, 1), in_process_s=round(in_process_s, 3),
        in_process_files_per_s=round(len(files) / in_process_s, 1), repeats=args.repeats, torch_version=torch.__version__,
        threads=torch.get_num_threads(), **cpu())
    print(f'python -c "import timm":        {import_timm:6.2f} s')
    print(f'tim-zoo predict ONE.wav (cold):  {predict_one:6.2f} s  ({result["ratio"]:.2f}x import timm; goal <= 1.25x)')
    print(f'tim-zoo predict FOLDER:          {folder_s:6.2f} s for {len(files)} files = '
          f'{result["files_per_s"]:.0f} files/s (goal >= 100)')
    print(f'  of which the work after start-up:  {in_process_s:6.2f} s = {result["in_process_files_per_s"]:.0f} files/s '
          f'(EmotionRecognizer.predict_many in a process that has read the model)')
    print(f'{result["cpu"]}, {result["cores"]} cores, flags {" ".join(result["flags"])}, torch {torch.__version__}')
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
