"""The `tim-zoo` command line."""
import argparse
import os
import sys
from typing import List, Optional

from . import audio, models, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='tim-zoo', description='Temporal speech emotion recognition model zoo.')
    sub = parser.add_subparsers(dest='command', required=True)
    models.add_commands(sub)
    audio.add_commands(sub)
    train.add_commands(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from ..exceptions import TimZooError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TimZooError, ImportError) as e:
        print(f'tim-zoo {args.command}: {e}', file=sys.stderr)
        return 1
    except BrokenPipeError:                               # output piped into head & co: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


__all__ = ['build_parser', 'main']
