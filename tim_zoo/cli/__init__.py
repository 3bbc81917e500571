"""The `tim-zoo` command line."""
import argparse
import os
import sys
import warnings
from typing import List, Optional

from ..exceptions import ConfigurationError, TimZooError, UnknownModelError
from ..version import __version__
from . import audio, models, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='tim-zoo', description='Temporal speech emotion recognition model zoo.')
    parser.add_argument('--version', action='version', version=f'tim-zoo {__version__}')
    sub = parser.add_subparsers(dest='command', required=True)
    models.add_commands(sub)
    audio.add_commands(sub)
    train.add_commands(sub)
    return parser


#: exit status of a usage error (a bad flag or value, as argparse's own) and of a failure
USAGE, FAILURE = 2, 1


def main(argv: Optional[List[str]] = None) -> int:
    """Run a command; every error ends as one line on stderr: exit status 2 for usage errors (bad flags or values,
    unknown names), 1 for failures (unreadable files, missing data). `TIM_ZOO_DEBUG=1` shows tracebacks."""

    args = build_parser().parse_args(argv)
    formatwarning = warnings.formatwarning               # catch_warnings does not restore it
    try:
        if not os.environ.get('TIM_ZOO_DEBUG'):          # a warning as a line of its own, not tim_zoo's source line
            warnings.formatwarning = lambda message, *_, **__: f'tim-zoo {args.command}: warning: {message}\n'
        return args.func(args)
    except (ConfigurationError, UnknownModelError) as e:
        return _fail(args, e, USAGE)
    except (TimZooError, ImportError) as e:
        return _fail(args, e, FAILURE)
    except BrokenPipeError:                               # output piped into head & co: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILURE
    except KeyboardInterrupt:
        print(f'tim-zoo {args.command}: interrupted', file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an error tim_zoo does not know yet: still one line, the traceback on request
        return _fail(args, f'unexpected {type(e).__name__}: {e} (a bug? TIM_ZOO_DEBUG=1 shows the traceback)', FAILURE)
    finally:
        warnings.formatwarning = formatwarning


def _fail(args, error, status: int) -> int:
    if os.environ.get('TIM_ZOO_DEBUG'):
        raise
    print(f'tim-zoo {args.command}: {error}', file=sys.stderr)
    return status


__all__ = ['build_parser', 'main']
