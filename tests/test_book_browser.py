"""The book built from a smoke run, opened page by page in headless Chromium.

Fails on a missing image, a broken internal link or anchor, an error output of a
notebook cell, an unresolved glue reference, math left as TeX source, or any request
that a page makes outside the book (the built book must work offline, as a folder), in
the DOM as the browser rendered it and in the browser's own log of requests. A screenshot
of every page is kept for a person to look at.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

from cardioembed.book.runner import STATUS_TABLE, build_book
from cardioembed.envinfo import format_duration

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Offline and deterministic: every host but the local server fails at once, instead
    # of holding the page's load event until a network timeout.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1200,2400",
    # Let scripts finish (MathJax typesets after the load event) before the DOM is dumped;
    # virtual time runs ahead whenever the page is idle.
    "--virtual-time-budget=30000",
]
PAGE_TIMEOUT_S = 120
# MyST-NB gives an error output the class "traceback"; docutils marks what it could not
# resolve as "problematic" or "system-message".
ERROR_CLASSES = {"traceback", "problematic", "system-message"}
ERROR_TEXT = "Traceback (most recent call last)"
UNRESOLVED = re.compile(r"\{glue(:[a-z]+)?\}|\{(cite|doc|numref|ref|eq)\}`")
# A figure glued without an image renderer shows up as its text repr instead of a picture.
FIGURE_AS_TEXT = re.compile(r"<Figure size \d+x\d+ with \d+ Axes>")
REDIRECT = re.compile(r'http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.IGNORECASE)
SKIPPED_SCHEMES = ("mailto:", "javascript:", "tel:")
# TeX that MathJax did not typeset: the delimiters Sphinx writes around math.
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$")
INJECTED_CELL = "tag_injected-parameters"  # MyST-NB's class for papermill's cell tag
NETLOG_URL = re.compile(r'"url":"((?:https?|wss?)://[^"]+)"')


# ------------------------------------------------------------------ reading pages
@dataclass
class Page:
    """What the checks need from one rendered page."""

    url: str
    ids: set[str] = field(default_factory=set)
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)  # stylesheets and scripts
    error_classes: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # prose: outside code blocks
    code: list[str] = field(default_factory=list)  # code blocks and cell outputs
    requests: list[str] = field(default_factory=list)  # every URL the browser asked for
    tags: set[str] = field(default_factory=set)  # element names in the rendered DOM
    classes: set[str] = field(default_factory=set)  # class names in the rendered DOM


class _PageParser(HTMLParser):
    SCRIPT = {"script", "style"}

    def __init__(self, page: Page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.script_depth = 0
        self.pre_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.page.tags.add(tag)
        for key in ("id", "name"):
            if attrs.get(key):
                self.page.ids.add(attrs[key])
        classes = set((attrs.get("class") or "").split())
        self.page.classes |= classes
        self.page.error_classes += sorted(classes & ERROR_CLASSES)
        if tag == "img":
            self.page.images.append(attrs.get("src") or "")
        elif tag == "a" and attrs.get("href") is not None:
            self.page.links.append(attrs["href"])
        elif tag == "link" and attrs.get("href"):
            self.page.resources.append(attrs["href"])
        elif tag in ("script", "iframe", "source", "audio", "video") and attrs.get("src"):
            self.page.resources.append(attrs["src"])
        if tag in self.SCRIPT:
            self.script_depth += 1
        elif tag == "pre":
            self.pre_depth += 1

    def handle_endtag(self, tag):
        if tag in self.SCRIPT and self.script_depth:
            self.script_depth -= 1
        elif tag == "pre" and self.pre_depth:
            self.pre_depth -= 1

    def handle_data(self, data):
        if not self.script_depth:
            (self.page.code if self.pre_depth else self.page.text).append(data)


def parse_page(url: str, html: str) -> Page:
    page = Page(url)
    _PageParser(page).feed(html)
    return page


@dataclass
class Book:
    """The built HTML, where it is served, and its pages as the browser rendered them
    (keys: paths relative to `html_dir`)."""

    html_dir: Path
    base_url: str
    pages: dict[str, Page]


def page_paths(html_dir: Path) -> list[str]:
    """Every HTML page of the book (not the theme's static files or page sources)."""
    return sorted(
        p.relative_to(html_dir).as_posix()
        for p in html_dir.rglob("*.html")
        if not p.relative_to(html_dir).parts[0].startswith("_")
    )


def redirect_page(html_dir: Path, path: str, url: str) -> Page | None:
    """A page that only redirects (the book's index.html), read from its file: the
    browser would follow it before dumping a DOM. Its target is checked as a link."""
    static = (html_dir / path).read_text(errors="replace")
    match = REDIRECT.search(static)
    if match is None:
        return None
    page = parse_page(url, static)
    page.links.append(match.group(1))
    return page


def screenshot_name(path: str) -> str:
    return path.removesuffix(".html").replace("/", "__") + ".png"


# ------------------------------------------------------------------ the checks
def _local_target(book: Book, page_url: str, reference: str) -> tuple[Path, str] | None:
    """(file under the built book, fragment) for a reference to the local server, else
    None (another host, or a scheme that is not a page)."""
    if reference.startswith(SKIPPED_SCHEMES):
        return None
    parts = urlsplit(urljoin(page_url, reference))
    if f"{parts.scheme}://{parts.netloc}/" != book.base_url:
        return None
    path = unquote(parts.path).lstrip("/")
    target = book.html_dir / path
    if not path or path.endswith("/"):
        target = target / "index.html"
    return target, parts.fragment


def _ids_of(book: Book, target: Path) -> set[str]:
    relative = target.relative_to(book.html_dir).as_posix()
    if relative in book.pages:
        return book.pages[relative].ids
    return parse_page("", target.read_text(errors="replace")).ids


def missing_images(book: Book) -> list[str]:
    problems = []
    for path, page in book.pages.items():
        for src in page.images:
            if src.startswith("data:"):
                header, _, payload = src.partition(",")
                if not payload.strip():
                    problems.append(f"{path}: empty data URI ({header})")
                continue
            target = _local_target(book, page.url, src) if src else None
            if target is None:
                problems.append(f"{path}: image {src!r} is not served with the book")
            elif not target[0].is_file() or target[0].stat().st_size == 0:
                problems.append(f"{path}: image {src!r} is missing or empty")
    return problems


def broken_links(book: Book) -> list[str]:
    problems = []
    for path, page in book.pages.items():
        for href in [*page.links, *page.resources]:
            target = _local_target(book, page.url, href) if href not in ("", "#") else None
            if target is None:
                continue
            file, fragment = target
            if not file.is_file():
                problems.append(f"{path}: {href!r} points to a missing file")
            elif fragment and file.suffix == ".html" and fragment not in _ids_of(book, file):
                problems.append(f"{path}: {href!r} points to a missing anchor")
    return problems


def error_outputs(book: Book) -> list[str]:
    problems = []
    for path, page in book.pages.items():
        problems += [f"{path}: an element of class {cls!r}" for cls in page.error_classes]
        if ERROR_TEXT in "".join(page.text) or ERROR_TEXT in "".join(page.code):
            problems.append(f"{path}: a traceback")
        text = "".join(page.text) + "".join(page.code)
        problems += [
            f"{path}: a figure rendered as text ({m.group(0)})"
            for m in FIGURE_AS_TEXT.finditer(text)
        ]
    return problems


def outside_requests(book: Book) -> list[str]:
    """Everything a page loaded, or references as a resource, from outside the book."""
    problems = []
    for path, page in book.pages.items():
        for url in page.requests:
            if not url.startswith(book.base_url):
                problems.append(f"{path}: requested {url}")
        for ref in page.resources:
            if urlsplit(ref).scheme in ("http", "https") and not ref.startswith(book.base_url):
                problems.append(f"{path}: loads {ref}")
    return sorted(set(problems))


def raw_math(book: Book) -> list[str]:
    """Math left as TeX in a page's prose: MathJax did not load or did not typeset it."""
    problems = []
    for path, page in book.pages.items():
        text = "".join(page.text)
        for match in RAW_MATH.finditer(text):
            context = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
            problems.append(f"{path}: raw math {context!r}")
    return problems


def requested_urls(netlog: Path) -> list[str]:
    """The URLs that pages asked for, from a Chromium net log (--log-net-log): requests
    made on behalf of a page of the book (its site in the request's network isolation
    key, or the book as initiator). The browser's own background requests (update
    checks, clock) are not the page's and are left out."""
    if not netlog.is_file():
        return []
    try:
        events = json.loads(netlog.read_text(errors="replace")).get("events", [])
    except json.JSONDecodeError:  # a log cut short: read what is there
        text = netlog.read_text(errors="replace").rstrip().rstrip(",")
        events = json.loads(text + "]}").get("events", [])
    urls = set()
    for event in events:
        params = event.get("params") or {}
        url = params.get("url", "")
        if not NETLOG_URL.match(f'"url":"{url}"'):
            continue
        site = str(params.get("network_isolation_key", "")) + str(params.get("initiator", ""))
        if "127.0.0.1" in site:
            urls.add(url)
    return sorted(urls)


def plumbing(book: Book, machine_paths) -> list[str]:
    """What a reader should not see: papermill's injected-parameters cell (the parameters
    cell stays), and an absolute path of the machine that built the book."""
    problems = [
        f"{path}: papermill's injected-parameters cell is shown"
        for path, page in book.pages.items()
        if INJECTED_CELL in page.classes
    ]
    for path, page in book.pages.items():
        text = "".join(page.text) + "".join(page.code)
        problems += [f"{path}: the path {p} is shown" for p in machine_paths if str(p) in text]
    return problems


def unresolved_references(book: Book) -> list[str]:
    return [
        f"{path}: {match.group(0)!r} left as text"
        for path, page in book.pages.items()
        for match in UNRESOLVED.finditer("".join(page.text))
    ]


# ------------------------------------------------------------------ fixtures
def find_chromium() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            f"no Chromium found (looked for {', '.join(BROWSERS)}); install it, "
            "e.g. `apt-get install chromium` on Debian"
        )
    return path


@pytest.fixture(scope="module")
def built_book(smoke_run, project_root, tmp_path_factory) -> Path:
    """The book's sources, built from the smoke run's executed notebooks with warnings as
    errors, as `cardioembed book` builds it (which stages them into book/executed/)."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(project_root / name, root / name)
    (root / "book").mkdir()
    for path in [*(project_root / "book").glob("*.md"), project_root / "book" / "references.bib"]:
        shutil.copy(path, root / "book" / path.name)
    return build_book(root=root, strict=True, executed=smoke_run / "executed").parent


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # The browser drops connections it no longer needs (an unused favicon request).
        pass


@pytest.fixture(scope="module")
def served_book(built_book):
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = _QuietServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _report(pytestconfig, line: str) -> None:
    """Print past pytest's output capture, so the path shows without `-s`."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if capture is None:  # pragma: no cover - pytest run with -p no:capture
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print(line)


@pytest.fixture(scope="module")
def screenshots(project_root, tmp_path_factory, pytestconfig):
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    kept = project_root / "_build" / "screenshots"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(folder, kept)
    _report(pytestconfig, f"\nscreenshots of the book's pages: {folder} (copied to {kept})")


@pytest.fixture(scope="module")
def book(chromium, built_book, served_book, screenshots, tmp_path_factory) -> Book:
    """Each page opened once in headless Chromium: its rendered DOM, and a screenshot."""
    profiles = tmp_path_factory.mktemp("chromium-profiles")
    pages: dict[str, Page] = {}
    for index, path in enumerate(page_paths(built_book)):
        url = urljoin(served_book, path)
        if (page := redirect_page(built_book, path, url)) is not None:
            pages[path] = page
            continue
        netlog = profiles / f"{index}.netlog.json"
        completed = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profiles / str(index)}",
                f"--log-net-log={netlog}",
                f"--screenshot={screenshots / screenshot_name(path)}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT_S,
        )
        assert completed.returncode == 0 and "<html" in completed.stdout, (
            f"Chromium could not render {url} (exit {completed.returncode}):\n"
            f"{completed.stderr[-2000:]}"
        )
        pages[path] = parse_page(url, completed.stdout)
        pages[path].requests = requested_urls(netlog)
        assert pages[path].requests, f"no request of {url} in Chromium's net log {netlog}"
    return Book(built_book, served_book, pages)


# ------------------------------------------------------------------ the book
@pytest.mark.slow
def test_every_page_was_rendered_with_a_screenshot(book, screenshots):
    assert {
        "book/intro.html",
        "book/paper.html",
        "book/method.html",
        "book/executed/01_curate_corpus.html",
        "book/teaching.html",
    } <= set(book.pages)
    for path in book.pages:
        if REDIRECT.search((book.html_dir / path).read_text(errors="replace")) is None:
            shot = screenshots / screenshot_name(path)
            assert shot.is_file() and shot.stat().st_size > 0, f"no screenshot of {path}"


@pytest.mark.slow
def test_no_image_is_missing(book):
    assert not (problems := missing_images(book)), "\n".join(problems)


@pytest.mark.slow
def test_no_internal_link_or_anchor_is_broken(book):
    assert not (problems := broken_links(book)), "\n".join(problems)


@pytest.mark.slow
def test_no_cell_output_is_an_error(book):
    assert not (problems := error_outputs(book)), "\n".join(problems)


@pytest.mark.slow
def test_no_glue_or_reference_is_left_unresolved(book):
    assert not (problems := unresolved_references(book)), "\n".join(problems)


@pytest.mark.slow
def test_no_plumbing_is_shown(book, smoke_run, project_root):
    machine = {smoke_run, project_root, Path(sys.prefix), Path.home()}
    assert not (problems := plumbing(book, sorted(machine))), "\n".join(problems)


@pytest.mark.slow
def test_nothing_is_requested_from_outside_the_book(book):
    assert not (problems := outside_requests(book)), "\n".join(problems)


@pytest.mark.slow
def test_math_is_typeset_offline(book, built_book):
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert not (problems := raw_math(book)), "\n".join(problems)
    typeset = [path for path in book.pages if "mjx-container" in book.pages[path].tags]
    assert "book/method.html" in typeset, typeset


@pytest.mark.slow
def test_the_status_page_shows_the_rendered_runs_records(book, smoke_run):
    text = " ".join("".join(book.pages["book/status.html"].text).split())
    for path in sorted((smoke_run / "executed").glob("*.ipynb")):
        record = json.loads(path.read_text())["metadata"]["cardioembed"]
        assert path.stem in text and format_duration(record["seconds"]) in text, path.stem
        env = record["environment"]
        assert env["python"] in text and env["device"] in text
        assert env["packages"]["torch"] in text
    assert (book.html_dir.parent.parent / "book" / "executed" / STATUS_TABLE).is_file()


@pytest.mark.slow
def test_the_teaching_guide_shows_the_recorded_notebook_times(book):
    text = " ".join("".join(book.pages["book/teaching.html"].text).split())
    assert "01_curate_corpus" in text and "CPU cores" in text


@pytest.mark.slow
def test_launch_buttons_follow_the_configured_address(book, project_root):
    """With `repository.url` set, Binder and Colab open the source notebook; without it
    (as in this repository), no button points at an address nobody configured."""
    url = yaml.safe_load((project_root / "_config.yml").read_text())["repository"]["url"]
    links = book.pages["book/executed/01_curate_corpus.html"].links
    launch = [href for href in links if "mybinder.org" in href or "colab.research" in href]
    if url:
        assert launch, "the notebook page has no Binder or Colab button"
        assert all("notebooks/01_curate_corpus.ipynb" in href for href in launch), launch
    else:
        assert not launch, launch


# ------------------------------------------------------------------ the checks themselves
def test_the_checks_find_planted_problems(tmp_path):
    """Each check, on a two-page site with one problem of its kind, and none without."""
    (tmp_path / "ok.png").write_bytes(b"\x89PNG")
    good = (
        '<html><body><h1 id="top">Fine</h1><img src="ok.png">'
        '<img src="data:image/png;base64,iVBORw0K"><a href="b.html#there">b</a>'
        '<a href="https://example.org/">away</a><pre>{glue:text}`in code`</pre></body></html>'
    )
    bad = (
        '<html><body><p id="there">{glue:text}`n_pairs` and {doc}`nowhere`</p>'
        '<img src="gone.png"><img src="data:image/png;base64,">'
        '<a href="a.html#nope">x</a><a href="missing.html">y</a>'
        '<div class="cell_output docutils container"><div class="output traceback">'
        "<pre>Traceback (most recent call last)</pre></div></div></body></html>"
    )
    (tmp_path / "a.html").write_text(good)
    (tmp_path / "b.html").write_text(bad)
    base = "http://127.0.0.1:1/"
    book = Book(
        tmp_path,
        base,
        {"a.html": parse_page(base + "a.html", good), "b.html": parse_page(base + "b.html", bad)},
    )
    assert missing_images(book) == [
        "b.html: image 'gone.png' is missing or empty",
        "b.html: empty data URI (data:image/png;base64)",
    ]
    assert broken_links(book) == [
        "b.html: 'a.html#nope' points to a missing anchor",
        "b.html: 'missing.html' points to a missing file",
    ]
    assert error_outputs(book) == ["b.html: an element of class 'traceback'", "b.html: a traceback"]
    assert unresolved_references(book) == [
        "b.html: '{glue:text}' left as text",
        "b.html: '{doc}`' left as text",
    ]
    assert outside_requests(book) == [] and raw_math(book) == []
    assert plumbing(book, [Path("/home/builder")]) == []
    shown = (
        '<html><body><div class="cell tag_injected-parameters"><pre># Parameters</pre></div>'
        "<p>run -&gt; /home/builder/runs/teaching</p></body></html>"
    )
    book.pages["d.html"] = parse_page(base + "d.html", shown)
    assert plumbing(book, [Path("/home/builder")]) == [
        "d.html: papermill's injected-parameters cell is shown",
        "d.html: the path /home/builder is shown",
    ]
    del book.pages["d.html"]
    offline = (
        '<html><head><script src="https://cdn.example.org/mathjax.js"></script></head>'
        "<body><p>Inline \\(a^2\\) and</p><div>$$b$$</div><pre>\\(in code\\)</pre></body></html>"
    )
    book.pages["c.html"] = parse_page(base + "c.html", offline)
    book.pages["c.html"].requests = [base + "c.html", "https://fonts.example.org/f.woff"]
    assert outside_requests(book) == [
        "c.html: loads https://cdn.example.org/mathjax.js",
        "c.html: requested https://fonts.example.org/f.woff",
    ]
    assert [problem.split(":")[0] for problem in raw_math(book)] == ["c.html"] * 3
    netlog = tmp_path / "net.json"
    netlog.write_text(
        json.dumps(
            {
                "events": [
                    {"params": {"url": base + "a.html", "initiator": base[:-1]}},
                    {"params": {"url": "https://cdn.example.org/x.js", "initiator": base[:-1]}},
                    {
                        "params": {
                            "url": "https://update.example.org/",
                            "initiator": "not an origin",
                        }
                    },
                ]
            }
        )
    )
    assert requested_urls(netlog) == ["http://127.0.0.1:1/a.html", "https://cdn.example.org/x.js"]
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=a.html" />')
    assert redirect_page(tmp_path, "index.html", base).links == ["a.html"]
