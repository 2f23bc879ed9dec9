"""report.html: one self-contained page, checked in a real headless Chromium."""

import html
import json
import os
import re
import shutil
import subprocess
from xml.etree import ElementTree

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
  const figs = [...document.querySelectorAll('.fig > svg')];
  const t = document.getElementById('headline');
  const r = t ? t.getBoundingClientRect() : {height: 0, width: 0};
  const st = t ? getComputedStyle(t) : {visibility: 'hidden', display: 'none'};
  document.body.setAttribute('data-check', JSON.stringify({
    figures: figs.length,
    drawn: figs.map(f => f.getBoundingClientRect()).filter(b => b.width > 100 && b.height > 100).length,
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
    # no network: the only URLs are the SVG namespace names, which nothing fetches
    assert set(re.findall(r"https?://[^\"\s]+", page)) == {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "<img" not in page  # every figure is inline SVG, drawn from the run's data (not roc.png)
    svgs = re.findall(r'<div class="fig" id="([^"]+)"[^>]*><svg', page)
    assert svgs == ["roc", "roc-versus", "per-class", "rounds"]
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg)  # well-formed XML
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
    assert check["figures"] >= 4 and check["drawn"] == check["figures"]  # every inline SVG laid out
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


def _roundtrip(model, d):
    return model.model_validate(d).model_dump(mode="json", exclude_unset=True)


def test_typed_report_round_trips_a_real_run(run_dir):
    from safecompress.report.schema import AuditReport, RunReport

    for folder in (run_dir, run_dir / "baseline-rigl"):
        d = json.loads((folder / "report.json").read_text())
        assert _roundtrip(RunReport, d) == d
        assert _roundtrip(AuditReport, json.loads((folder / "audit.json").read_text())) == d["audit"]
    d = json.loads((run_dir / "report.json").read_text())
    rep = RunReport.load(run_dir)
    assert rep == RunReport.load(run_dir / "report.json") == RunReport.model_validate(d)
    # the sections the readers use are typed, not dicts
    worst = d["audit"]["worst"]
    assert rep.audit.strongest.auc == d["audit"]["attacks"][worst["attack"]]["auc"] == rep.audit.worst.auc
    assert rep.audit.worst.chance.p_value == worst["chance"]["p_value"]
    assert rep.baseline.method == "rigl" and rep.baseline.comparison.strongest.auc_verdict in (
        "less leaky",
        "leakier",
        "no detectable difference",
    )
    assert rep.final_round == d["method_details"]["safecompress"]["final_round"]
    assert set(rep.layers) == set(d["method_details"]["sparse"]["layers"]) and rep.layers
    # keys the schema does not name survive, at the top and deep inside
    d["a_future_section"] = {"x": [1, 2]}
    d["audit"]["worst"]["a_future_field"] = 0.5
    d["task"]["balanced"] = 0.25
    assert _roundtrip(RunReport, d) == d
    assert RunReport.model_validate(d).task.model_extra == {"balanced": 0.25}


def test_headline_is_one_list_of_rows_for_dicts_and_models(run_dir):
    from safecompress.report.headline import Row, headline
    from safecompress.report.schema import RunReport

    d = json.loads((run_dir / "report.json").read_text())
    rows = RunReport.model_validate(d).headline()
    assert rows == headline(d)
    assert rows[0] == Row("test accuracy", f"{d['task']['accuracy']:.4f}")
    by_label = {r.label: r for r in rows}
    assert by_label["strongest attack"].text == d["audit"]["worst"]["attack"]
    assert by_label["train time vs rigl"].text.endswith("×")


def _old_report(d):
    """A report as an older version wrote it: none of the sections added since."""
    d = json.loads(json.dumps(d))
    for key in ("schema_version", "code", "defence", "data", "method_details", "environment", "manifest", "baseline"):
        del d[key]
    d["timing"] = {"train_s": d["timing"]["train_s"], "total_s": d["timing"]["total_s"]}
    del d["compression"]["values"]
    audit = d["audit"]
    for key in ("per_class", "resolution", "references", "n_members", "n_nonmembers", "timing", "attribute"):
        audit.pop(key, None)
    for key in ("chance", "significant", "auc_p"):
        del audit["worst"][key]
    for m in audit["attacks"].values():
        for key in ("auc_p", "advantage_p", "resolution", "white_box", "wall_s"):
            del m[key]
    return d


def test_a_report_without_the_newer_sections_loads_and_renders(run_dir, tmp_path):
    from safecompress.report.headline import Row
    from safecompress.report.html import render_report
    from safecompress.report.schema import RunReport

    old = _old_report(json.loads((run_dir / "report.json").read_text()))
    rep = RunReport.model_validate(old)
    assert rep.model_dump(mode="json", exclude_unset=True) == old
    assert rep.schema_version is None and rep.baseline is None and rep.final_round is None and rep.layers == {}
    rows = {r.label: r for r in rep.headline()}
    assert rows["its p-value (AUC > 0.5)"].text == "—"
    assert "leaks at all? (vs chance of max over attacks)" not in rows and "train time vs rigl" not in rows
    assert rows["audit records"].text == "? members, ? non-members"
    assert rows["attribute inference"].text == rows["model inversion"].text == "not run"
    assert "method overhead vs plain sparse training" not in rows and "audit time" not in rows

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(old))
    page = render_report(folder)
    assert "Membership-inference audit" in page and "defence none" in page and "<h3>Per-class" not in page
    assert "(baseline)" not in page and "id=verdict" not in page and "<th>layer</th>" not in page

    # and without an audit at all
    del old["audit"]
    (folder / "report.json").write_text(json.dumps(old))
    rows = {r.label: r for r in RunReport.load(folder).headline()}
    assert rows["privacy audit"] == Row("privacy audit", "not run", "audit.enabled=false")
    page = render_report(folder)
    assert "Membership-inference audit" not in page and f"{old['task']['accuracy']:.4f}" in page


def test_a_report_lacking_a_required_section_is_refused():
    import pydantic

    from reports import minimal_report
    from safecompress.report.schema import RunReport

    d = minimal_report()
    assert RunReport.model_validate(d).audit is None
    for key in ("task", "compression"):
        with pytest.raises(pydantic.ValidationError, match=key):
            RunReport.model_validate({k: v for k, v in d.items() if k != key})
    with pytest.raises(pydantic.ValidationError, match="accuracy"):
        RunReport.model_validate({**d, "task": {"accuracy": "high", "train_accuracy": 0.6}})


def test_extraction_and_evasion_sections_are_typed():
    from safecompress.report.schema import AuditReport, EvasionAudit, ExtractionAudit

    worst = {"attack": "loss", "auc": 0.6, "max_tpr_at_fpr": {"0.01": 0.02}, "max_tpr_attack": {"0.01": "loss"}}
    audit = AuditReport.model_validate(
        {
            "attacks": {"loss": {"auc": 0.6, "tpr_at_fpr": {"0.01": 0.02}}},
            "worst": worst,
            "extraction": {"family": "extraction", "fidelity": 0.78, "fidelity_ci": [0.76, 0.8], "budget": 2000},
            "evasion": {
                "family": "evasion",
                "clean_accuracy": 0.8,
                "linf": [{"eps": 0.01, "robust_accuracy": 0.6}, {"eps": 0.03, "robust_accuracy": 0.2}],
                "l2": [],
            },
        }
    )
    assert isinstance(audit.extraction, ExtractionAudit) and audit.extraction.budget == 2000
    assert isinstance(audit.evasion, EvasionAudit) and audit.evasion.largest("linf").robust_accuracy == 0.2
    assert audit.evasion.largest("l2") is None
    assert audit.attack_names == ["loss", "extraction", "evasion"]
