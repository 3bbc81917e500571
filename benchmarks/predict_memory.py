"""Memory and time of `EmotionRecognizer.predict` on one long recording: streamed (the default for files over a
minute) against read whole.

Builds recordings from the EMODB files (each utterance followed by 0.5 s of silence, repeated to the length) and
predicts each in a fresh process, printing its peak resident memory (the process' whole footprint: Python, PyTorch,
timm and the model take about 0.5 GB of it before any audio) and the wall time of the prediction. Files over
`--whole-up-to` minutes are predicted streamed only. Every
recording predicted both ways must get the same answer, window for window (checked here; the test suite checks it
on shorter files).

    python benchmarks/predict_memory.py --folder ../shared/data/emodb/wav --json benchmarks/results/predict_memory_cpu2.json
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import predict_speed  # noqa: E402  (the benchmark beside this one)

CHILD = """
import json, resource, sys, time
import tim_zoo
from tim_zoo.benchmark.harness import tune_malloc
from tim_zoo.inference import reading
tune_malloc()
if sys.argv[2] == 'whole':
    reading.STREAM_SECONDS = float('inf')
rec = tim_zoo.EmotionRecognizer.from_pretrained()
start = time.perf_counter()
result = rec.predict(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      answer=result.prediction, segments=[s.probabilities for s in result.segments])))
"""

#: (name, minutes, sample rate, channels) of the recordings measured
RECORDINGS = [('4 min, 16 kHz mono', 4, 16000, 1), ('12 min, 48 kHz stereo', 12, 48000, 2),
              ('60 min, 16 kHz mono', 60, 16000, 1)]


def build(folder: Path, minutes: float, rate: int, channels: int, path: Path) -> None:
    """EMODB utterances with 0.5 s gaps, resampled to `rate`, repeated to `minutes`, written as 16-bit PCM."""
    import soundfile as sf

    from tim_zoo.data.audio import resample
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() == '.wav')
    need = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), 'w', samplerate=rate, channels=channels, subtype='PCM_16') as out:
        written, i = 0, 0
        while written < need:
            signal, sr = sf.read(str(files[i % len(files)]), dtype='float32')
            part = np.concatenate([resample(signal, sr, rate), np.zeros(rate // 2, dtype=np.float32)])[:need - written]
            out.write(np.stack([part, 0.8 * part], axis=1) if channels == 2 else part)
            written, i = written + len(part), i + 1


def measure(path: Path, mode: str) -> dict:
    done = subprocess.run([sys.executable, '-c', CHILD, str(path), mode], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--folder', required=True, help='the EMODB wav folder')
    p.add_argument('--whole-up-to', type=float, default=60, help='also read whole the recordings up to these minutes')
    p.add_argument('--json', help='write the figures here')
    args = p.parse_args(argv)
    one = sorted(f for f in Path(args.folder).iterdir() if f.suffix.lower() == '.wav')[0]
    base = measure(one, 'stream')
    rows = [dict(recording=f'one EMODB file ({one.name}, 2 s)', minutes=2 / 60, streamed_mb=round(base['peak_mb']),
                 streamed_s=round(base['seconds'], 2), windows=1)]
    print(f'{rows[0]["recording"]}: {rows[0]["streamed_mb"]} MB (Python, PyTorch, timm, the model and one file)')
    with tempfile.TemporaryDirectory() as tmp:
        for name, minutes, rate, channels in RECORDINGS:
            path = Path(tmp) / 'long.wav'
            build(Path(args.folder), minutes, rate, channels, path)
            streamed = measure(path, 'stream')
            row = dict(recording=name, minutes=minutes, streamed_mb=round(streamed['peak_mb']),
                       streamed_s=round(streamed['seconds'], 2), windows=len(streamed['segments']))
            if minutes <= args.whole_up_to:
                whole = measure(path, 'whole')
                row.update(whole_mb=round(whole['peak_mb']), whole_s=round(whole['seconds'], 2),
                           equal=whole['segments'] == streamed['segments'] and whole['answer'] == streamed['answer'])
                if not row['equal']:
                    raise SystemExit(f'{name}: the streamed answers differ from the whole-file ones')
            rows.append(row)
            whole = f'whole {row["whole_mb"]:5d} MB {row["whole_s"]:6.1f} s, same answers' if 'whole_mb' in row else ''
            print(f'{name:24s} {row["windows"]:5d} windows  streamed {row["streamed_mb"]:5d} MB '
                  f'{row["streamed_s"]:6.1f} s  {whole}', flush=True)
    import torch
    machine = predict_speed.cpu()                     # the CPU as the other prediction benchmark records it
    result = dict(rows=rows, **machine, torch_version=torch.__version__, threads=torch.get_num_threads())
    print(f'{machine["cpu"]}, {machine["cores"]} cores, torch {torch.__version__}, {torch.get_num_threads()} threads')
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
