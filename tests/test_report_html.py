"""report.html from its Jinja2 template: escaping, inline SVG figures, attack colours, class names, the
baseline's ROC and a user's own template, on small run folders made up here (no training)."""

import json
import logging
import re
import xml.etree.ElementTree as ET

import jinja2
import numpy as np
import pytest

from reports import minimal_report
from safecompress import metrics as M
from safecompress.errors import ConfigError
from safecompress.report import figures
from safecompress.report.html import TEMPLATE_ENV, render_report, write_report_html

EVIL = '<script>alert("x")</script>'
SVG_NS = "{http://www.w3.org/2000/svg}"


def _audit(scores: dict[str, np.ndarray], is_member: np.ndarray, labels: np.ndarray) -> dict:
    attacks = {}
    for name, s in scores.items():
        attacks[name] = {
            "auc": M.auc(s, is_member),
            "auc_ci": [0.4, 0.7],
            "advantage": 0.1,
            "tpr_at_fpr": {"0.01": M.tpr_at_fpr(s, is_member, 0.01), "0.001": None},
            "resolution": {"0.001": "too few non-members"},
        }
    worst = max(attacks, key=lambda n: attacks[n]["auc"])
    rows = {str(c): labels == c for c in np.unique(labels)}
    return {
        "attacks": attacks,
        "worst": {
            "attack": worst,
            "auc": attacks[worst]["auc"],
            "max_tpr_at_fpr": {"0.01": attacks[worst]["tpr_at_fpr"]["0.01"], "0.001": None},
            "max_tpr_attack": {"0.01": worst, "0.001": None},
        },
        "per_class": {"attack": worst, "auc": {c: M.auc(scores[worst][r], is_member[r]) for c, r in rows.items()}},
        "n_members": int(is_member.sum()),
        "n_nonmembers": int((~is_member).sum()),
    }


def make_run(
    folder, attacks, *, method="rigl", dataset="digits", n_in=120, n_out=250, seed=0, exist_ok=False, **sections
):
    """A run folder with report.json and scores.npz: ``attacks`` scored with some signal, labels in 4 classes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=exist_ok)
    is_member = np.r_[np.ones(n_in, bool), np.zeros(n_out, bool)]
    labels = rng.integers(0, 4, n_in + n_out)
    scores = {a: np.round(rng.normal(0.4 * is_member * (i + 1) / len(attacks), 1), 2) for i, a in enumerate(attacks)}
    np.savez(folder / "scores.npz", is_member=is_member, labels=labels, **{f"score_{a}": s for a, s in scores.items()})
    report = minimal_report(
        method=method,
        dataset=dataset,
        compression={
            "density": 0.1,
            "file_bytes": 100,
            "nonzeros": 10,
            "parameters": 100,
            "dense_bytes": 400,
            "ratio": 4.0,
        },
        audit=_audit(scores, is_member, labels),
        **sections,
    )
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "config.yaml").write_text(f"method:\n  name: {method}\n")
    return folder


def _svgs(page: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="fig" id="([^"]+)"[^>]*>(<svg.*?</svg>)</div>', page, flags=re.S))


def _strokes(svg: str) -> list[str]:
    return re.findall(r"stroke: (#[0-9a-f]{6})", svg)


def test_values_from_the_run_are_escaped(tmp_path):
    run = make_run(tmp_path / "run", ["loss", EVIL], method=EVIL, dataset=EVIL, data={"class_names": [EVIL] * 4})
    (run / "config.yaml").write_text(f"note: {EVIL}\n")
    page = render_report(run)
    assert "<script" not in page.lower()  # not one tag came through, in the text or inside the figures
    assert "&lt;script&gt;" in page  # the names are shown, escaped
    assert page.count("Membership-inference audit") == 1 and "Resolved configuration" in page


def test_figures_are_inline_svg_and_well_formed_xml(tmp_path):
    run = make_run(tmp_path / "run", ["loss", "lira", EVIL])
    page = render_report(run)
    svgs = _svgs(page)
    assert set(svgs) == {"roc", "per-class"} and "<img" not in page  # no roc.png needed
    ids = []
    for svg in svgs.values():
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == SVG_NS + "svg" and root.get("viewBox")
        ids += [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))  # two figures on one page never share an id
    assert render_report(run) == page  # the same page for the same run (no dates, no random ids)
    write_report_html(run)
    assert (run / "report.html").read_text() == page


def test_each_attack_has_its_own_colour_everywhere(tmp_path):
    attacks = ["loss", "lira", "nn", "rmia", "my_plugin"]
    run = make_run(tmp_path / "run", attacks)
    page = render_report(run)
    colours = figures.attack_colours(attacks)
    assert len(set(colours.values())) == len(attacks)
    assert colours["loss"] == figures.ATTACK_COLOURS["loss"] == figures.attack_colours(["loss", "x"])["loss"]
    # every built-in attack and any plugin beside them: distinct
    everyone = figures.attack_colours([*figures.ATTACK_COLOURS, "p1", "p2", "p3"])
    assert len(set(everyone.values())) == len(everyone)
    roc = _strokes(_svgs(page)["roc"])
    for name, colour in colours.items():
        assert colour in roc  # its curve
        assert f'style="background:{colour}"></span>{name}</td>' in page  # its swatch in the attack table
    worst = json.loads((run / "report.json").read_text())["audit"]["worst"]["attack"]
    bars = re.findall(r"fill: (#[0-9a-f]{6})", _svgs(page)["per-class"])
    assert colours[worst] in bars  # the per-class bars in the strongest attack's colour


def test_log_log_roc_starts_at_the_data_resolution(tmp_path):
    run = make_run(tmp_path / "run", ["loss"], n_in=80, n_out=250)
    fpr, tpr, n_pos, n_neg = figures.load_curves(run, ["loss"])["loss"]
    assert (n_pos, n_neg) == (80, 250)
    curve = figures.Curve("loss", "loss", fpr, tpr, n_pos, n_neg)
    assert figures.resolution([curve]) == (1 / 250, 1 / 80)
    svg = _svgs(render_report(run))["roc"]
    assert "false positive rate (from 1/250 non-members)" in svg and "true positive rate (from 1/80 members)" in svg
    # the axes start at the data: a 250-non-member audit shows no decade below 10^-2 (1/250 = 0.004)
    ticks = {
        "".join(p.strip() for p in ET.fromstring(t).itertext()) for t in re.findall(r"<text.*?</text>", svg, flags=re.S)
    }
    assert {"10\u22122", "10\u22121", "100"} <= ticks and "10\u22123" not in ticks


def test_class_names_label_the_per_class_chart(tmp_path):
    names = ["cat", "dog", "ship", "frog"]
    svg = _svgs(render_report(make_run(tmp_path / "a", ["loss"], data={"class_names": names})))["per-class"]
    assert all(f">{n}<" in svg for n in names)
    # from the dataset plugin's metadata (Fashion-MNIST lists its classes) or the well-known table
    assert figures.class_names(None, "fashion-mnist")[0] == "T-shirt/top"
    assert figures.class_names({}, "cifar10")[:2] == ["airplane", "automobile"]
    assert figures.class_names(None, "no-such-dataset") is None
    svg = _svgs(render_report(make_run(tmp_path / "b", ["loss"], dataset="digits")))["per-class"]
    assert all(f">{i}<" in svg for i in range(4))  # no names known: the indices


def test_the_baselines_roc_is_overlaid_dashed(tmp_path):
    make_run(tmp_path / "run" / "baseline-rigl", ["loss", "lira"], seed=1)
    base = {"method": "rigl", "run_dir": "baseline-rigl"}
    run = make_run(tmp_path / "run", ["loss", "lira"], method="safecompress", baseline=base, exist_ok=True)
    page = render_report(run)
    svgs = _svgs(page)
    assert set(svgs) == {"roc", "roc-versus", "per-class"}
    assert "rigl (baseline): loss (AUC" in svgs["roc"] and "rigl (baseline): lira (AUC" in svgs["roc"]
    assert "dashed: rigl (baseline)" in page and "<th>rigl (baseline)</th>" in page
    loss = figures.ATTACK_COLOURS["loss"]
    assert _strokes(svgs["roc"]).count(loss) >= 3  # the run's, the baseline's and the legend's lines
    assert re.search(
        r"stroke-dasharray[^>]*stroke: " + loss + r"|stroke: " + loss + r"[^>]*stroke-dasharray", svgs["roc"]
    )


def test_a_user_template_overrides_the_page(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run", ["loss"], method=EVIL)
    mine = tmp_path / "tpl"
    mine.mkdir()
    (mine / "report.html.j2").write_text(
        '{% extends "builtin/report.html.j2" %}{% block footer %}<footer id=mine>by {{ run.method }}</footer>'
        "{% endblock %}"
    )
    page = render_report(run, template_dir=mine)
    assert "<footer id=mine>by &lt;script&gt;" in page  # the user's block, escaped as well
    assert "Membership-inference audit" in page  # the rest of the built-in page
    monkeypatch.setenv(TEMPLATE_ENV, str(mine))
    assert render_report(run) == page
    (mine / "report.html.j2").write_text("<p>{{ title }}: {{ headline.rows[0].cells[0].text }}</p>")
    assert render_report(run).startswith("<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; on digits: 0.7000</p>")
    with pytest.raises(ConfigError, match="missing"):  # a folder asked for by argument must exist
        render_report(run, template_dir=tmp_path / "missing")
    monkeypatch.delenv(TEMPLATE_ENV)
    builtin = render_report(run)
    assert "<footer" not in builtin


def test_a_broken_template_from_the_environment_falls_back_to_the_builtin_page(tmp_path, monkeypatch, caplog):
    """The variable is read at the end of every run: a typo there must not cost the run its report."""
    run = make_run(tmp_path / "run", ["loss"])
    builtin = render_report(run)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.html.j2").write_text("{% block x %}never closed")
    for folder in (tmp_path / "missing", broken):
        monkeypatch.setenv(TEMPLATE_ENV, str(folder))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="safecompress.report.html"):
            assert render_report(run) == builtin
        assert TEMPLATE_ENV in caplog.text and "built-in template" in caplog.text
    with pytest.raises(jinja2.TemplateSyntaxError):  # asked for by argument: the error is the caller's to see
        render_report(run, template_dir=broken)


def test_the_run_given_to_audit_compare_is_overlaid_too(tmp_path):
    other = make_run(tmp_path / "other", ["loss"], method="magnitude", seed=2)
    audit_extra = {"compare": {"other": str(other), "file": "compare.json"}}
    run = make_run(tmp_path / "run", ["loss"], method="safecompress")
    report = json.loads((run / "report.json").read_text())
    report["audit"].update(audit_extra)
    (run / "report.json").write_text(json.dumps(report))
    page = render_report(run)
    assert "magnitude (compared): loss (AUC" in _svgs(page)["roc"] and "dashed: magnitude (compared)" in page
    report["audit"]["compare"]["other"] = str(tmp_path / "gone")  # moved away since: the page still renders
    (run / "report.json").write_text(json.dumps(report))
    assert "(compared)" not in render_report(run)
