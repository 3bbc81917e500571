"""Every fenced Python block of README.md and docs/*.md runs alone, as written, the way a reader pastes one: in its
own process, as a fresh `python -c` would run it (a new `__main__`, its own folder), forked from one that has imported
torch and tim_zoo, so that the 30 blocks do not each spend about 8 s of CPU on the same imports
(`snippet_runner.py`). A block that needs ../shared or an extra says so in a comment (`# needs ../shared ... and the
audio extra`); it is skipped, with that reason, where they are absent. A block whose first line is `# file: NAME.py`
is a file of the reader's project: it runs too, and the later blocks of its page find it, saved as NAME.py, in the
folder they run in."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('TIM_ZOO_SHARED', ROOT / '..' / 'shared')).resolve()
BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)
#: the module each extra provides, to tell whether it is installed
EXTRAS = {'audio': 'soundfile', 'keras': 'h5py', 'checkpoint': 'safetensors', 'train': 'sklearn',
          'export': 'onnxruntime', 'docs': 'mkdocs'}


FILE_BLOCK = re.compile(r'# file: ([\w/]+\.py)\n')


def _blocks():
    for page in [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md')):
        files = {}                                        # the page's project files shown so far
        for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
            yield pytest.param(match.group(1), dict(files), id=f'{page.relative_to(ROOT)}#{number}')
            named = FILE_BLOCK.match(match.group(1))
            if named:
                files[named.group(1)] = match.group(1)


def _needs(code: str):
    header = ' '.join(line for line in code.splitlines() if line.startswith('# needs'))
    extras = re.findall(r'\b(\w+)(?=(?:,? and \w+)* extras?\b)', header.split(' the ', 1)[-1]) if 'extra' in header else []
    return '../shared' in header, [e for e in extras if e in EXTRAS]


@pytest.fixture(scope='module')
def run_block(tmp_path_factory):
    """`run_block(code, folder) -> (returncode, stderr)`, by the snippet runner."""
    logs = tmp_path_factory.mktemp('snippet_runner')
    with open(logs / 'runner.err', 'w') as err:
        runner = subprocess.Popen([sys.executable, str(Path(__file__).with_name('snippet_runner.py'))], text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=logs,
                                  env=dict(os.environ, MPLBACKEND='Agg'))

    def answer() -> dict:
        line = runner.stdout.readline()
        if not line:
            pytest.fail(f'the snippet runner stopped: {(logs / "runner.err").read_text()[-3000:]}')
        return json.loads(line)

    answer()                                              # ready: torch and tim_zoo imported

    def run(code: str, folder: Path, timeout: float = 600):
        out, err = folder.parent / 'stdout.txt', folder.parent / 'stderr.txt'
        job = dict(code=code, cwd=str(folder), stdout=str(out), stderr=str(err), timeout=timeout)
        runner.stdin.write(json.dumps(job) + '\n')
        runner.stdin.flush()
        returncode = answer()['returncode']
        return returncode, err.read_text() if err.exists() else (logs / 'runner.err').read_text()

    yield run
    runner.stdin.close()
    runner.wait(timeout=60)


def test_a_block_past_its_time_is_killed_with_the_processes_it_started(tmp_path, run_block):
    folder = tmp_path / 'block'
    folder.mkdir()
    code = ('import subprocess, time\n'
            'child = subprocess.Popen(["sleep", "300"])\n'
            'open("pid", "w").write(str(child.pid))\n'
            'time.sleep(300)\n')
    assert run_block(code, folder, timeout=3)[0] == -9
    status = Path(f'/proc/{(folder / "pid").read_text()}/status')
    time.sleep(0.5)
    assert not status.exists() or 'State:\tZ' in status.read_text(), 'the process the block started still runs'


def test_the_blocks_are_found():
    assert len(list(_blocks())) >= 8


@pytest.mark.parametrize('code, files', list(_blocks()))
def test_python_block_runs_alone(code, files, tmp_path, run_block):
    shared, extras = _needs(code)
    if '../shared' in code:
        assert shared, 'a block that reads ../shared must say so: # needs ../shared ...'
    if shared and not SHARED.is_dir():
        pytest.skip(f'needs {SHARED}, which is absent')
    for extra in extras:
        if importlib.util.find_spec(EXTRAS[extra]) is None:
            pytest.skip(f'needs the {extra} extra')
    work = tmp_path / 'work'
    work.mkdir()
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    (tmp_path / 'shared').symlink_to(SHARED if SHARED.is_dir() else tmp_path / 'absent')
    returncode, stderr = run_block(code, work)
    assert returncode == 0, stderr[-3000:]
