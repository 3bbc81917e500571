"""How a model trained on wide-band EMODB judges the same utterances band-limited as telephone audio is.

Takes every 27th EMODB file (20 files, sorted by name), resamples each to ``--rates`` (down with soxr, as a
recording made at that rate holds nothing above half of it), predicts it with the bundled model (or
``--checkpoint``) and prints how many of the 20 it labels as EMODB does. The bundled model has seen every
EMODB file, so this measures what band-limiting alone costs, not generalisation; docs/predict.md quotes it.

    python benchmarks/narrow_band.py --folder ../shared/data/emodb/wav
"""
import argparse
from pathlib import Path

import tim_zoo
from tim_zoo.data import load_corpus
from tim_zoo.data.audio import read_audio, resample


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--folder', required=True, help='the EMODB folder (or its wav folder)')
    parser.add_argument('--checkpoint', help='a tim_zoo checkpoint (default: the bundled model)')
    parser.add_argument('--rates', type=int, nargs='+', default=[8000, 16000])
    args = parser.parse_args(argv)
    rec = (tim_zoo.EmotionRecognizer.from_checkpoint(args.checkpoint) if args.checkpoint
           else tim_zoo.EmotionRecognizer.from_pretrained())
    items = sorted(load_corpus('emodb', args.folder), key=lambda it: Path(it.path).name)[::27][:20]
    for rate in args.rates:
        right = 0
        for item in items:
            signal, file_rate = read_audio(item.path)
            result = rec.predict(resample(signal, file_rate, rate), sample_rate=rate)
            right += result.prediction == item.label_name
        print(f'{rate} Hz: {right} of {len(items)} right')


if __name__ == '__main__':
    main()
