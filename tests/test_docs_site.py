"""The documentation site builds with mkdocs --strict (broken links and docstring warnings fail), and reads
right in a real browser without network: diagrams drawn, docstrings rendered, the zoo on the home page."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    pytest.importorskip('mkdocs')
    pytest.importorskip('mkdocstrings')
    out = tmp_path_factory.mktemp('docs') / 'site'
    done = subprocess.run([sys.executable, str(ROOT / 'docs' / 'build_site.py'), '--out', str(out), '--strict'],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_site_builds_strictly_with_a_card_for_every_model(site):
    import tim_zoo

    for name in tim_zoo.list_models():
        card = (site / 'models' / f'{name}.html').read_text()
        assert 'Constructor arguments' in card and 'Measured here' in card and 'research notes' in card, name
        assert '<pre class="mermaid">' in card and 'flowchart TD' in card, name          # the diagram's source
        assert '``' not in card and '<pre><code>' not in card.split('Constructor arguments')[0].split('flowchart')[-1]
    zoo = (site / 'models' / 'index.html').read_text()
    assert all(f'{name}.html' in zoo for name in tim_zoo.list_models())
    api = (site / 'api.html').read_text()
    assert 'tim_zoo.layers.TemporalAwareBlock' in api
    # API headings carry the constructor's signature (merged from __init__), every argument named
    block = api[api.index('id="tim_zoo.layers.TemporalAwareBlock"'):][:6000]
    signature = re.sub(r'<[^>]+>', '', block.split('class="doc-signature')[1].split('</div>')[0])
    assert all(arg in signature for arg in ('in_chans', 'filters', 'dilation', 'residual', 'drop_mode')), signature
    assert 'tim-zoo train' in (site / 'cli.html').read_text()


def test_built_cards_run_alone_and_explain_every_argument(site):
    """On the built site: each card's first code block, as the copy button copies it, runs in a fresh namespace,
    and no cell of its argument table's meaning column is empty."""
    import html

    import tim_zoo
    for name in tim_zoo.list_models():
        card = (site / 'models' / f'{name}.html').read_text()
        first = re.search(r'<div class="highlight"><pre>.*?<code>(.*?)</code></pre>', card, re.S)[1]
        code = html.unescape(re.sub(r'<[^>]+>', '', first))
        namespace = {}
        exec(compile(code, f'<built card {name}>', 'exec'), namespace)               # noqa: S102 -- our own docs
        assert tuple(namespace['logits'].shape) == (2, 7), name
        table = card.split('id="constructor-arguments"')[1].split('</table>')[0]
        rows = re.findall(r'<tr>(.*?)</tr>', table, re.S)[1:]
        meanings = [re.findall(r'<td[^>]*>(.*?)</td>', row, re.S)[2] for row in rows]
        assert len(rows) >= 5 and all(re.sub(r'<[^>]+>', '', m).strip() for m in meanings), name


def test_docstrings_are_markdown_with_single_backticks():
    """One markup for the package's docstrings (Markdown, as the site renders them): no RST double backticks,
    Sphinx roles or literal-block markers."""
    import re

    offending = []
    for path in sorted((ROOT / 'tim_zoo').rglob('*.py')):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if '``' in line.replace('```', '') or re.search(r':(class|func|meth|data|attr|mod|exc):`', line) \
                    or line.rstrip().endswith('::'):
                offending.append(f'{path.relative_to(ROOT)}:{number}: {line.strip()}')
    assert not offending, '\n'.join(offending[:20])


def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip('no Chromium to open the site in (Debian: apt-get install chromium; .ci/run installs it)')


def _render(browser, page: Path, tmp_path: Path, what: str) -> str:
    """The page's DOM after its scripts ran, in headless Chromium with every network lookup refused."""
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--host-resolver-rules=MAP * ~NOTFOUND', f'--user-data-dir={tmp_path / "profile"}',
             '--virtual-time-budget=30000']
    done = subprocess.run([browser, *flags, '--dump-dom', page.as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _screenshot(browser, page: Path, tmp_path: Path) -> Path:
    shot = tmp_path / f'{page.stem}.png'
    subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP * ~NOTFOUND',
                    f'--user-data-dir={tmp_path / "profile"}', '--virtual-time-budget=30000', '--window-size=1280,2400',
                    f'--screenshot={shot}', page.as_uri()], capture_output=True, timeout=180)
    return shot


@pytest.mark.slow
def test_site_reads_right_offline_in_a_browser(site, tmp_path):
    browser = _chromium()
    if not (site / 'assets' / 'mermaid.min.js').is_file():
        pytest.skip('the Mermaid script could not be fetched from the npm registry at build time (see the build '
                    'warning), so this site draws diagrams only online')
    import tim_zoo

    card, home = site / 'models' / 'timnet.html', site / 'index.html'
    try:
        for name in tim_zoo.list_models():
            dom = _render(browser, site / 'models' / f'{name}.html', tmp_path, name)
            # Material replaces each <pre class="mermaid"> by a drawn <div class="mermaid"> once Mermaid rendered it
            assert '<div class="mermaid">' in dom and 'flowchart TD' not in dom and '<pre class="mermaid">' not in dom, name
            assert '``' not in dom and '<code>[B, C, T]</code>' in dom, name            # docstring as Markdown
        dom = _render(browser, card, tmp_path, 'card')
        assert 'Temporal-aware bi-directional multi-scale network.</p>' in dom
        home_dom = _render(browser, home, tmp_path, 'home')
        assert '<table>' in home_dom and 'models/at_deltatim_v2.html' in home_dom and '± ' in home_dom
        assert '<div class="mermaid">' in home_dom and 'EmotionRecognizer' in home_dom and 'from_pretrained' in home_dom
    except AssertionError:
        print('screenshots:', _screenshot(browser, card, tmp_path), _screenshot(browser, home, tmp_path))
        raise
    # without the shipped script (and no network) the diagram stays source text: the check above can fail
    offline = card.with_name('timnet_without_mermaid.html')
    offline.write_text(card.read_text().replace('src="../assets/mermaid.min.js"', 'src="../assets/missing.js"'))
    without = _render(browser, offline, tmp_path, 'without')
    assert 'flowchart TD' in without and '<div class="mermaid">' not in without


#: reports, from inside a page, its width and every code block or table wider than its box (they scroll sideways)
_LAYOUT_PROBE = """<script>
addEventListener('load', () => setTimeout(() => {
  const main = document.querySelector('article') || document.body;
  const shown = el => !el.closest('details:not([open])');      // a folded block (the API's sources) is not read
  // Material scrolls a wide table inside its wrapper, so the wrapper is what overflows
  const wide = [...main.querySelectorAll('pre > code, table, .md-typeset__scrollwrap')]
    .filter(el => shown(el) && el.scrollWidth > el.clientWidth + 1)
    .map(el => `${el.tagName} ${el.scrollWidth - el.clientWidth} px too wide: ${el.textContent.trim().slice(0, 60)}`);
  const scroll = document.documentElement.scrollWidth;
  parent.postMessage(JSON.stringify({page: PAGE, width: innerWidth, scroll, wide}), '*');
}, 2000));
</script>"""


def _layout(browser, site: Path, pages, width: int, tmp_path: Path) -> dict:
    """Each page laid out in a viewport `width` px wide (an iframe of that width, as a window cannot be narrower
    than 500 px): `{page: {width, scroll, wide}}`, all pages in one Chromium run."""
    import html
    import json

    frames = []
    for number, page in enumerate(pages):
        source = site / page
        probe = source.with_name(f'{source.stem}.layout{width}.html')     # beside the page: its links still work
        probe.write_text(source.read_text().replace('</body>', _LAYOUT_PROBE.replace('PAGE', json.dumps(page))
                                                    + '</body>'))
        frames.append(f'<iframe src="{probe.relative_to(site).as_posix()}" style="border:0;width:{width}px;'
                      f'height:800px"></iframe>')
    host = site / f'layout{width}.html'
    host.write_text('<html><body style="margin:0">' + ''.join(frames) + "<script>addEventListener('message', e => "
                    "{ const pre = document.createElement('pre'); pre.className = 'layout'; pre.textContent = e.data; "
                    "document.body.appendChild(pre); });</script></body></html>")
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--host-resolver-rules=MAP * ~NOTFOUND', f'--user-data-dir={tmp_path / "profile"}',
             '--virtual-time-budget=60000', f'--window-size={width + 100},1000', '--hide-scrollbars']
    done = subprocess.run([browser, *flags, '--dump-dom', host.as_uri()], capture_output=True, text=True, timeout=600)
    reports = [json.loads(html.unescape(r)) for r in re.findall(r'<pre class="layout">(.*?)</pre>', done.stdout, re.S)]
    return {r['page']: r for r in reports}


#: the pages a reader reads on a laptop; every other page is checked too, with these named in the failure
_READING_PAGES = ['index.html', 'getting-started.html', 'predict.html', 'training.html', 'speed.html',
                  'models/index.html']


@pytest.mark.slow
def test_no_code_block_or_table_scrolls_sideways_at_1280_px_and_no_page_is_wider_than_a_phone(site, tmp_path):
    """At 1280 px no code block or table of any page (cards and the API reference included) is wider than its
    column; at 390 px no page is wider than the screen (tables and code scroll inside their own box). The API
    reference's folded source code (the repository's 120 columns) scrolls once opened."""
    browser = _chromium()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if p.name != '404.html')
    assert set(_READING_PAGES) <= set(pages)
    laptop = _layout(browser, site, pages, 1280, tmp_path)
    assert set(laptop) == set(pages), f'pages that did not report: {sorted(set(pages) - set(laptop))}'
    assert all(r['width'] == 1280 for r in laptop.values())
    wide = {page: r['wide'] for page, r in laptop.items() if r['wide']}
    assert not wide, wide
    phone = _layout(browser, site, pages, 390, tmp_path)
    assert set(phone) == set(pages) and all(r['width'] == 390 for r in phone.values())
    too_wide = {page: r['scroll'] for page, r in phone.items() if r['scroll'] > 390}
    assert not too_wide, too_wide
    # the check sees overflow: at 390 px the long lines of the Training page's commands scroll
    assert phone['training.html']['wide']


def test_diagrams_are_drawn_top_down():
    """A left-to-right flowchart of more than a few steps is scaled down to the column's width until its text is
    unreadable; every diagram of the site runs top-down."""
    build_site = _build_site_module()
    import tim_zoo
    sources = [(p.name, p.read_text()) for p in sorted((ROOT / 'docs').glob('*.md'))]
    sources += [(f'card {n}', build_site.card_page(n)) for n in tim_zoo.list_models()]
    sources += [('home', build_site.home_page(tim_zoo.list_models())),
                ('getting started', build_site.getting_started())]
    diagrams = [(name, d.strip().splitlines()[0]) for name, text in sources
                for d in re.findall(r'^```mermaid\n(.*?)^```', text, re.S | re.M)]
    assert len(diagrams) >= len(tim_zoo.list_models()) + 1
    sideways = [(name, first) for name, first in diagrams if first.split()[:2] not in (['flowchart', 'TD'],
                                                                                      ['flowchart', 'TB'])]
    assert not sideways, sideways


def test_every_test_named_in_the_bad_input_page_exists():
    import re
    named = set(re.findall(r'`(test_\w+)`', (ROOT / 'docs' / 'errors.md').read_text()))
    defined = set()
    for path in (ROOT / 'tests').glob('test_*.py'):
        defined |= set(re.findall(r'^def (test_\w+)\(', path.read_text(), re.M))
    assert len(named) > 30
    assert not named - defined, f'docs/errors.md names tests that do not exist: {sorted(named - defined)}'


def test_the_blocks_page_lists_every_block_with_its_real_signature():
    """docs/blocks.md's reference is generated from the code: current, and every public block and helper of
    tim_zoo.layers in it with the arguments `inspect.signature` reads (no hand-written argument list)."""
    import inspect

    import tim_zoo.layers
    build_site = _build_site_module()
    assert build_site.update_blocks_page(check=True), 'run python docs/build_site.py --update-pages'
    listed = [n for names in build_site.BLOCK_GROUPS.values() for n in names]
    public = [n for n in tim_zoo.layers.__all__ if callable(getattr(tim_zoo.layers, n))]
    assert sorted(listed) == sorted(public)
    page = (ROOT / 'docs' / 'blocks.md').read_text()
    for name in public:
        params = inspect.signature(getattr(tim_zoo.layers, name)).parameters
        line = next(line for line in page.splitlines() if line.startswith(f'- `{name}('))
        found = [re.search(rf'[(, ]\**{p}[=,)]', line) for p in params]
        assert all(found) and [m.start() for m in found] == sorted(m.start() for m in found), name
        assert line.count('=') >= sum(p.default is not p.empty for p in params.values()), name


def test_every_card_snippet_runs_alone():
    """The Python blocks of each generated model card run in a fresh namespace (no import assumed)."""
    import tim_zoo
    build_site = _build_site_module()
    for name in tim_zoo.list_models():
        blocks = re.findall(r'^```python\n(.*?)^```', build_site.card_page(name), re.S | re.M)
        assert blocks, name
        for code in blocks:
            namespace = {}
            exec(compile(code, f'<card {name}>', 'exec'), namespace)          # noqa: S102 -- our own docs
            assert tuple(namespace['logits'].shape) == (2, 7), name


def test_every_card_says_how_to_load_its_emodb_weights_and_where_they_come_from():
    """Each card names its model's EMODB tag; a packaged tag's card points at its run's record, a larger model's
    gives the one command that trains its hub folder (the command its tag's error names)."""
    import tim_zoo
    from tim_zoo.models._zoo import PACKAGED, hub_folder_name, train_command
    build_site = _build_site_module()
    for name in tim_zoo.list_models():
        card = build_site.card_page(name)
        section = card[card.index('## Its EMODB weights'):card.index('## The research notes')]
        assert f'create_model("{name}.tim_zoo_emodb", pretrained=True)' in section, name
        if name in PACKAGED:
            assert f'`docs/results/zoo/tag.{name}/`' in section and (ROOT / f'docs/results/zoo/tag.{name}').is_dir()
        elif name != 'timnet':
            command = train_command(name, folder='~/.cache/tim_zoo/weights/' + hub_folder_name(name))
            block = re.search(r'^```\n(.*?)\n```', section, re.S | re.M).group(1)
            assert block.replace(' \\\n    ', ' ') == command and '--hub-folder' in command
            assert max(map(len, block.splitlines())) <= 92
    latency = build_site.card_page('timnet')
    assert re.search(r'As the zoo trains it \(87 frames\): 104,496 parameters, [\d.]+ M multiply-accumulates per '
                     r'sample; latency per batch of 64 on 2 cores of an AMD EPYC Zen \d \(\d+ frames, eager\): ', latency)


def test_every_card_argument_has_a_meaning_of_its_own_model():
    """Each constructor argument on a card is explained, and TAB wording appears only on models that have TABs;
    the arguments a model does not use are named apart, not given a meaning."""
    import tim_zoo
    from tim_zoo.layers import TemporalAwareBlock
    build_site = _build_site_module()
    for name in tim_zoo.list_models():
        model = tim_zoo.create_model(name)
        card = build_site.card_page(name)
        rows = dict(re.findall(r'^\| `(\w+)` \| `[^|]*` \| (.*) \|$', card, re.M))
        assert set(model.init_args) - set(model.unused_args) == set(rows), name
        if model.unused_args:
            named = re.search(r'^Not used by `\w+` as built above, and refused unless left at their defaults:\n\n'
                              r'((?:- .*\n?)+)', card, re.M)
            listed = [line.split(': ', 1) for line in named.group(1).splitlines()]
            assert {a for args, _ in listed for a in re.findall(r'`(\w+)`', args)} == set(model.unused_args), name
            assert all(why.strip('.') in model.unused_args.values() for _, why in listed), name
        empty = [arg for arg, meaning in rows.items() if not meaning.strip()]
        assert not empty, f'{name}: no meaning for {empty}'
        if not any(isinstance(m, TemporalAwareBlock) for m in model.modules()):
            assert not [arg for arg, meaning in rows.items() if 'every TAB' in meaning], name


def _build_site_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location('build_site', ROOT / 'docs' / 'build_site.py')
    build_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_site)
    return build_site


def test_pages_quote_the_zoos_row_never_the_run_with_the_best_test_accuracy(tmp_path, monkeypatch):
    """A model with several runs of one protocol: the pages show the zoo's row (its repeats once done), else the
    run with repeats, else the one without per-speaker normalisation, whatever their test accuracy."""
    import json

    from tim_zoo.version import MODEL_DEFAULTS
    build_site = _build_site_module()
    (tmp_path / 'results').mkdir()
    monkeypatch.setattr(build_site, 'DOCS', tmp_path)

    def write(name, wars, normalize='none', repeats=None, protocol='kfold'):
        run = dict(config=dict(model='tim', protocol=protocol, recipe='r', normalize=normalize,
                               model_defaults=MODEL_DEFAULTS), folds=[dict(war=w / 100) for w in wars])
        if repeats:
            run['repeat_summary'] = dict(num_repeats=repeats, war_mean=sum(wars) / len(wars) / 100, war_std=0.01,
                                         fold_war_std=0.02)
        (tmp_path / 'results' / f'{name}.json').write_text(json.dumps(run))

    write('a_best', [90, 92])
    write('b_normalised', [95, 97], normalize='speaker_mean', protocol='loso')
    write('c_plain_loso', [50, 60], protocol='loso')
    assert build_site.measured_accuracy() == {'tim': ['91.0 ± 1.0 % (kfold, 2 splits, recipe r)',
                                                      '55.0 ± 5.0 % (loso, 2 splits, recipe r)']}
    write('zoo_table.tim', [70, 80])
    assert build_site.measured_accuracy()['tim'][0] == "75.0 ± 5.0 % (kfold, 2 splits, recipe r, the zoo's row)"
    write('zoo_finding.tim.mul', [99, 99])                            # a variant of the model: never its figure
    run = json.loads((tmp_path / 'results' / 'zoo_finding.tim.mul.json').read_text())
    run['config']['model_args'] = dict(residual='mul')
    (tmp_path / 'results' / 'zoo_finding.tim.mul.json').write_text(json.dumps(run))
    write('zoo_repeat.tim.r1', [60, 62])                              # one repeat of the row: not the row
    assert build_site.measured_accuracy()['tim'][0] == "75.0 ± 5.0 % (kfold, 2 splits, recipe r, the zoo's row)"
    write('zoo_repeats.tim', [74, 78], repeats=3)
    # like for like: ± the std over the splits (averaged over the seeds), the seeds' spread apart
    assert build_site.measured_accuracy()['tim'][0] == ("76.0 ± 2.0 % (3 seeds whose means spread ± 1.0, kfold, "
                                                        "2 splits, recipe r, the zoo's row)")


def test_the_version_is_one_on_the_site_the_changelog_and_the_citation():
    from tim_zoo.version import __version__
    build_site = _build_site_module()
    assert f'version = {{{__version__}}}' in build_site.bibtex('tim_zoo')
    assert re.search(r'^## (\S+)', (ROOT / 'docs' / 'changelog.md').read_text(), re.M).group(1) == __version__
    assert build_site.config(ROOT / 'site', ROOT / 'docs', [])['site_name'] == f'tim_zoo {__version__}'
    card = build_site.card_page('at_tim')
    assert '## Citing' in card and '@inproceedings{ye2023temporal' in card and '@software{tim_zoo' in card
    assert 'SEED_NOTES' not in card and '[Jiaxin-Ye/TIM-Net_SER](https://github.com' in card
    with pytest.raises(KeyError, match='no BibTeX entry'):
        build_site.bibtex('nope')


def test_navigation_has_no_private_names_or_near_duplicate_titles():
    build_site = _build_site_module()
    nav = build_site.config(ROOT / 'site', ROOT / 'docs', ['timnet'])['nav']
    titles = [title for entry in nav for title in entry]
    assert len(set(titles)) == len(titles) and not any(t.startswith('_') for t in titles)
    words = [set(re.findall(r'[a-z]+', t.lower().replace('models', 'model'))) for t in titles]
    # one title a single word of another ("Models" beside "Model zoo") reads as the same page twice
    assert not any(i != j and len(a) == 1 and a <= b for i, a in enumerate(words) for j, b in enumerate(words)), titles


def test_code_lines_fit_the_sites_column():
    """Code in README.md and docs/*.md stays within 108 characters, what the site's column shows at 1280 px
    without scrolling (the browser test measures the rendered pages; this holds where no browser is)."""
    long = []
    for page in [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md')):
        fence = None
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.lstrip().startswith('```'):
                fence = None if fence else line.strip()[3:] or 'text'
            elif fence and fence != 'mermaid' and len(line) > 108:
                long.append(f'{page.name}:{number}: {len(line)} characters')
    assert not long, long


def test_cards_and_blocks_link_to_their_class_reference_with_its_source(site):
    """Each card's class and each block on the Blocks page links to its API entry, and that entry holds the
    source code (folded)."""
    import tim_zoo
    api = (site / 'api.html').read_text()
    pages = [site / 'models' / f'{n}.html' for n in tim_zoo.list_models()] + [site / 'blocks.html']
    targets = {t for page in pages for t in re.findall(r'href="(?:\.\./)?api\.html#([\w.]+)"', page.read_text())}
    assert {f'tim_zoo.layers.{n}' for n in ('TemporalAwareBlock', 'DeltaAggregation', 'WeightLayer',
                                            'AttentionFusion', 'GMMClusteringHead')} <= targets
    assert 'tim_zoo.models.timnet.TIMNet' in targets and 'tim_zoo.models.at_tim.ATTIM' in targets
    sections = re.split(r'<div class="doc doc-object', api)
    for target in targets:
        section = next((s for s in sections if f'id="{target}"' in s), None)
        assert section is not None, f'{target}: no such entry in the API reference'
        assert 'Source code in' in section, f'{target}: its API entry shows no source'


def test_the_examples_page_shows_every_example_whole():
    build_site = _build_site_module()
    page = build_site.examples_page()
    for path in sorted((ROOT / 'examples').rglob('*.py')):
        code = build_site._example_parts(path)[2]
        assert code.strip() and code in page, path.name
    assert '``' not in page.replace('```', '') and '../../docs/' not in page


def test_the_zoo_rows_training_cost_is_its_epochs_at_the_measured_step_cost(tmp_path, monkeypatch):
    import json
    build_site = _build_site_module()
    (tmp_path / 'results').mkdir()
    monkeypatch.setattr(build_site, 'DOCS', tmp_path)
    cost = build_site.zoo_cost
    monkeypatch.setattr(cost, 'COST_FILE', tmp_path / 'cost.json')
    rows = [dict(model='tim', frames=build_site.ZOO_FRAMES, precision=p, step_s=s) for p, s in (('fp32', 9.0),
                                                                                               ('bf16', 3.6))]
    rows.append(dict(model='tim', frames=188, precision='bf16', step_s=99.0))
    (tmp_path / 'cost.json').write_text(json.dumps(dict(rows=rows)))
    assert build_site.training_cost('tim') is None                   # no zoo row yet
    config = dict(precision='bf16', epochs=500, folds=10)
    (tmp_path / 'results' / 'zoo_table.tim.json').write_text(json.dumps(dict(config=config)))
    # 482 training utterances of a split in batches of 64: 8 steps an epoch
    assert build_site.training_cost('tim') == pytest.approx(3.6 * 8 * 500 * 10 / 3600)
    assert build_site.training_cost('timnet') is None
    # once the repeats are in, the table shows their accuracy: the cost of one repeat, in the repeats' precision
    config = dict(precision='fp32', epochs=100, folds=10, repeats=3)
    (tmp_path / 'results' / 'zoo_repeats.tim.json').write_text(json.dumps(dict(config=config)))
    assert build_site.training_cost('tim') == pytest.approx(9.0 * 8 * 100 * 10 / 3600)
    (tmp_path / 'results' / 'zoo_table.tim.json').unlink()                # or in place of a missing row
    assert build_site.training_cost('tim') == pytest.approx(9.0 * 8 * 100 * 10 / 3600)


def test_every_figure_of_the_notes_on_a_card_says_where_it_was_measured():
    """A figure from the research notes (a findings line or a notes' recipe with numbers) names its corpus or
    split and says it was not reproduced; the zoo's own figures are under "Measured here"."""
    import tim_zoo
    build_site = _build_site_module()
    for name in tim_zoo.list_models():
        card = build_site.card_page(name)
        findings = card.split("## The research notes' findings")[1].split('\n## ')[0]
        recipes = card.split('## Recipes')[1].split('\n## ')[0]
        lines = [line for line in findings.splitlines() if line.startswith('- ')]
        lines += [line for line in recipes.splitlines() if "research notes' recipe" in line]
        for line in lines:
            if re.search(r'\d+(\.\d+)? ?%|train \d|val \d|test \d', line):
                assert 'not reproduced here' in line or 'EMODB' in line, f'{name}: {line}'
