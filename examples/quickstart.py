"""Create a model, run it on a batch of MFCC sequences, read the class probabilities.

    python examples/quickstart.py
"""
import torch

import tim_zoo

EMODB_LABELS = ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']


def main():
    print('models:', ', '.join(tim_zoo.list_models()))
    model = tim_zoo.create_model('timnet', num_classes=len(EMODB_LABELS)).eval()
    print(f'timnet: {tim_zoo.count_params(model):,} parameters')
    mfcc = torch.randn(2, 39, 188)            # [B, 39 MFCC, 188 frames]: 96000 samples at 22050 Hz
    with torch.no_grad():
        probs = model(mfcc).softmax(dim=-1)
    for i, p in enumerate(probs):
        best = int(p.argmax())
        print(f'utterance {i}: {EMODB_LABELS[best]} ({p[best]:.2f}) (untrained weights)')


if __name__ == '__main__':
    main()
