"""The documentation site builds with mkdocs --strict (broken links and docstring warnings fail)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_strictly_with_a_card_for_every_model(tmp_path):
    pytest.importorskip('mkdocs')
    pytest.importorskip('mkdocstrings')
    import tim_zoo

    done = subprocess.run([sys.executable, str(ROOT / 'docs' / 'build_site.py'), '--out', str(tmp_path / 'site'),
                           '--strict'], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / 'site'
    for name in tim_zoo.list_models():
        card = (site / 'models' / f'{name}.html').read_text()
        assert 'Constructor arguments' in card and 'Research findings' in card, name
        assert '<pre class="mermaid">' in card and 'flowchart TD' in card, name          # the diagram
    zoo = (site / 'models' / 'index.html').read_text()
    assert all(f'{name}.html' in zoo for name in tim_zoo.list_models())
    assert 'tim_zoo.layers.TemporalAwareBlock' in (site / 'api.html').read_text()
    assert 'tim-zoo train' in (site / 'cli.html').read_text()


def test_every_test_named_in_the_bad_input_page_exists():
    import re
    named = set(re.findall(r'`(test_\w+)`', (ROOT / 'docs' / 'errors.md').read_text()))
    defined = set()
    for path in (ROOT / 'tests').glob('test_*.py'):
        defined |= set(re.findall(r'^def (test_\w+)\(', path.read_text(), re.M))
    assert len(named) > 30
    assert not named - defined, f'docs/errors.md names tests that do not exist: {sorted(named - defined)}'

