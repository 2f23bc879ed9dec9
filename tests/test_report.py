"""report.html: one self-contained page, checked in a real headless Chromium."""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from safecompress.cli import main

FAST = [
    "--preset",
    "ci",
    "--set",
    "data.name=digits",
    "--set",
    "model.name=mlp",
    "--set",
    "train.augment=false",
    "--set",
    "train.epochs=4",
    "--set",
    "method.name=safecompress",
    "--set",
    "sparse.density=0.2",
    "--set",
    "sparse.update_every=10",
    "--set",
    "audit.attacks=[loss,nn,lira]",
]

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const t = document.getElementById('headline');
  const r = t ? t.getBoundingClientRect() : {height: 0, width: 0};
  const st = t ? getComputedStyle(t) : {visibility: 'hidden', display: 'none'};
  document.body.setAttribute('data-check', JSON.stringify({
    images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    headline_height: r.height, headline_width: r.width, visible: st.visibility !== 'hidden' && st.display !== 'none',
    rows: t ? t.rows.length : 0, text: t ? t.innerText : ''}));
});
</script></body>"""


def _browser():
    for name in ("chromium", "chromium-headless-shell", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("no Chromium installed; .ci/run installs it with scripts/ensure-chromium.sh")
    pytest.skip("no Chromium here (run scripts/ensure-chromium.sh); CI installs it and runs this test")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "run"
    assert main(["run", *FAST, "--set", "baseline=rigl", "--out", str(out)]) == 0
    return out


def test_report_html_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # no network
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)  # ROC, per-class, rounds
    for section in (
        "Headline",
        "Membership-inference audit",
        "SafeCompress rounds",
        "Compression",
        "Resolved configuration",
        "rigl (baseline)",
    ):
        assert section in page
    rep = json.loads((run_dir / "report.json").read_text())
    assert f"{rep['task']['accuracy']:.4f}" in page


def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    browser = _browser()
    page = tmp_path / "page.html"
    page.write_text((run_dir / "report.html").read_text().replace("</body>", CHECK, 1))
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert m, f"the page's check did not run; chromium said: {proc.stderr[-800:]}"
    check = json.loads(html.unescape(m.group(1)))
    assert check["images"] >= 3 and check["loaded"] == check["images"]  # every inline image decoded
    assert check["visible"] and check["headline_height"] > 50 and check["rows"] >= 8
    assert "test accuracy" in check["text"] and "strongest attack" in check["text"]


def test_document_renders_markdown_and_html_from_the_same_blocks():
    from safecompress.report.document import Document

    doc = Document().h1("Title").p("a <note>").h2("Panel").table(["a", "b"], [["1", "x|y"], ["2", "<b>"]])
    assert doc.to_markdown() == "# Title\n\na <note>\n\n## Panel\n\n| a | b |\n|---|---|\n| 1 | x|y |\n| 2 | <b> |\n"
    page = doc.to_html()
    assert "Title" not in page and "<h2>Panel</h2>" in page and "<p class=note>a &lt;note&gt;</p>" in page
    # a cell holding '|' stays one cell in HTML (the Markdown is never parsed back)
    assert "<td>x|y</td>" in page and "<td>&lt;b&gt;</td>" in page
