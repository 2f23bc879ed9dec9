"""safecompress bench: suite files, resumable cells, results files, matched-accuracy comparison."""

import base64
import csv
import json

import pytest
import yaml

from reports import minimal_report
from safecompress.benchmark import expand, load_suite, matched
from safecompress.cli import main
from safecompress.errors import ConfigError

SUITE = {
    "name": "tiny",
    "preset": "ci",
    "seeds": [0],
    "densities": [0.2],
    "common": {
        "model": {"name": "mlp"},
        "train": {"epochs": 3, "augment": False},
        "sparse": {"update_every": 10},
        "audit": {"attacks": ["loss", "nn"], "refs": 2, "bootstrap": 20},
    },
    "datasets": {"digits": {}},
    "methods": {
        "dense": {"method": {"name": "dense"}, "dense": True},
        "rigl": {"method": {"name": "rigl"}},
        "safecompress": {"method": {"name": "safecompress"}},
    },
    "reference": "safecompress",
}


def test_bench_runs_every_cell_writes_results_and_resumes(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    out = tmp_path / "B"
    assert main(["bench", "--suite", str(suite), "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert {(r["method"], r["density"]) for r in rows} == {("dense", 1.0), ("rigl", 0.2), ("safecompress", 0.2)}
    assert all(0 <= r["auc"] <= 1 and r["strongest_attack"] in ("loss", "nn") for r in rows)
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    md = (out / "summary.md").read_text()
    assert "## digits, density 0.2" in md and "Matched accuracy" in md
    page = (out / "summary.html").read_text()
    assert 'id="pareto" src="data:image/png;base64,' in page
    png = (out / "frontier.png").read_bytes()  # the same plot as a file
    assert png.startswith(b"\x89PNG") and base64.b64encode(png).decode() in page
    for r in rows:
        assert (out / r["run_dir"] / "report.json").is_file()  # each cell is a normal run folder
    capsys.readouterr()
    assert main(["bench", "--suite", str(suite), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("(already done)") == 3
    assert json.loads((out / "results.json").read_text()) == rows
    # the summaries are a function of suite.json + results.json alone: rewriting them from those files
    # (bench/resummarize.py, for committed folders whose cells are gone) gives the same tables
    from safecompress.benchmark import Suite, write_summaries

    (out / "summary.md").unlink()
    write_summaries(Suite(**json.loads((out / "suite.json").read_text())), rows, out)
    assert (out / "summary.md").read_text() == md
    assert "Every attack" not in md
    # per_attack: every audit attack of every audited cell, with its AUC (and interval) from the cell's audit
    write_summaries(Suite(**{**json.loads((out / "suite.json").read_text()), "per_attack": True}), rows, out)
    every = (out / "summary.md").read_text().split("## Every attack", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in every.splitlines() if line.startswith("| digits |")]
    assert len(lines) == 2 * len(rows)  # loss and nn for each cell
    for r in rows:
        rep = json.loads((out / r["run_dir"] / "report.json").read_text())
        for name in ("loss", "nn"):
            row = next(line for line in lines if f"| {r['method']} |" in line and f"| {name} |" in line)
            assert f"{rep['audit']['attacks'][name]['auc']:.3f} [" in row
    with open(out / "results.csv") as f:
        assert "attack_table" not in next(csv.reader(f))  # nested tables live in results.json only
    # the loop's diagnostics come from the SafeCompress cell's own rounds.jsonl, and only for it
    sc = next(r for r in rows if r["method"] == "safecompress")
    rounds = [json.loads(line) for line in (out / sc["run_dir"] / "rounds.jsonl").read_text().splitlines()]
    assert sc["loop_rounds"] == len(rounds) > 0
    assert all("loop_rounds" not in r for r in rows if r["method"] != "safecompress")
    loop = md.split("## The loop, round by round", 1)[1].split("\n## ", 1)[0]
    assert [line for line in loop.splitlines() if line.startswith("| digits |")] == [
        line for line in loop.splitlines() if line.startswith("| digits |") and "| safecompress |" in line
    ] and f"{sc['loop_overruled']} of {len(rounds)}" in loop


def test_loop_stats_count_what_the_leakage_test_changed():
    from safecompress.benchmark import loop_stats

    def cand(acc, auc, reg="none", strength=0.0):
        return {
            "val_accuracy": acc,
            "attack_auc": {"nn": auc, "loss": auc - 0.01},
            "strategy": {"regularizer": reg, "strength": strength},
        }

    rounds = [
        {"candidates": [cand(0.50, 0.60), cand(0.55, 0.70, "hamp", 0.9)], "chosen": 1},  # the most accurate
        {"candidates": [cand(0.52, 0.58), cand(0.60, 0.66, "hamp", 0.9)], "chosen": 0},  # overruled, a switch
        {"candidates": [cand(0.53, 0.59), cand(0.54, 0.61, "hamp", 0.9)], "chosen": 0},
    ]
    st = loop_stats(rounds)
    assert st["loop_rounds"] == 3 and st["loop_overruled"] == 2 and st["loop_switches"] == 1
    assert st["loop_acc_spread"] == pytest.approx((0.05 + 0.08 + 0.01) / 3)
    assert st["loop_leak_spread"] == pytest.approx((0.10 + 0.08 + 0.02) / 3)
    assert st["loop_last_leak"] == pytest.approx(0.59)  # the worst simulator of the chosen candidate
    assert loop_stats([]) == {}


def test_suite_problems_are_reported_before_anything_trains(tmp_path):
    bad = dict(SUITE, methods={"x": {"method": {"name": "rigll"}}, "y": {"sparse": {"densty": 0.1}}}, reference=None)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        expand(load_suite(f))
    text = str(err.value)
    assert "rigll" in text and "densty" in text
    assert main(["bench", "--suite", str(f), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="did you mean 'cpu'"):
        load_suite("cpx")


def test_a_suite_extends_another_and_changes_only_what_it_names(tmp_path):
    parent = tmp_path / "parent.yaml"
    parent.write_text(yaml.safe_dump(SUITE))
    child = tmp_path / "child.yaml"
    child.write_text(
        yaml.safe_dump(
            {
                "name": "child",
                "extends": "parent.yaml",  # a path relative to the extending file
                "seeds": [3],
                "common": {"train": {"epochs": 2}},
                "methods": {"extra": {"method": {"name": "set"}}},
            }
        )
    )
    base, ext = load_suite(parent), load_suite(child)
    assert ext.name == "child" and ext.seeds == [3] and ext.densities == base.densities
    assert ext.common == {**base.common, "train": {**base.common.get("train", {}), "epochs": 2}}
    assert list(ext.methods) == [*base.methods, "extra"] and ext.datasets == base.datasets
    dropped = next(iter(base.methods))
    child.write_text(yaml.safe_dump({"extends": str(parent), "methods": {dropped: None}, "reference": None}))
    assert list(load_suite(child).methods) == list(base.methods)[1:]
    child.write_text(yaml.safe_dump({"extends": str(parent), "methods": {"nothere": None}}))
    with pytest.raises(ConfigError, match="null removes an entry .* which has none"):
        load_suite(child)
    parent.write_text(yaml.safe_dump({**SUITE, "extends": "child.yaml"}))
    with pytest.raises(ConfigError, match="circle"):
        load_suite(child)
    child.write_text(yaml.safe_dump({"extends": "no-such-suite"}))
    with pytest.raises(ConfigError, match="no suite 'no-such-suite'"):
        load_suite(child)
    assert main(["bench", "--suite", str(child), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_the_served_variants_extend_served_and_keep_its_loop():
    served = load_suite("served")
    d10, texas = load_suite("served-d10"), load_suite("served-texas")
    assert d10.methods == served.methods and d10.densities == [0.1] and d10.seeds == [0, 1]
    assert list(texas.datasets) == ["texas100-synth"] and texas.common["data"] == {"max_samples": 10000}
    assert texas.methods == {k: v for k, v in served.methods.items() if k != "safecompress-served(b=0.55)"}


def test_builtin_suites_expand_to_valid_configs():
    cpu = expand(load_suite("cpu"))
    assert {c.dataset for c in cpu} == {"purchase100-synth", "texas100-synth", "cifar100-synth", "fashion-mnist"}
    assert {c.density for c in cpu} == {1.0, 0.1, 0.05}
    assert len(expand(load_suite("paper"))) > len(cpu)


def test_matched_accuracy_only_compares_comparable_models():
    aggs = [
        {"dataset": "d", "density": 0.05, "method": "sc", "accuracy": 0.60, "auc": 0.60},
        {"dataset": "d", "density": 0.05, "method": "a", "accuracy": 0.61, "auc": 0.70},  # matched, leakier
        {"dataset": "d", "density": 0.05, "method": "b", "accuracy": 0.50, "auc": 0.55},  # less accurate
        {"dataset": "d", "density": 0.05, "method": "c", "accuracy": 0.65, "auc": 0.58},  # dominates
    ]
    by = {r["method"]: r for r in matched(aggs, "sc", 0.015)}
    assert by["a"]["matched"] and "leakier" in by["a"]["verdict"]
    assert not by["b"]["matched"] and "not comparable" in by["b"]["verdict"]
    assert by["c"]["verdict"] == "dominates sc"


def test_matched_noise_check_pairs_seeds_so_shared_seed_effects_cancel():
    # two seeds whose accuracy and AUC move together for both methods: the seed intervals overlap widely,
    # but the method's AUC is higher by ~0.15 at every seed
    rows = [
        {"dataset": "d", "density": 0.05, "method": m, "seed": k, "auc": auc}
        for m, k, auc in (("ref", 0, 0.63), ("ref", 1, 0.60), ("x", 0, 0.77), ("x", 1, 0.76))
    ]
    aggs = [
        {
            "dataset": "d",
            "density": 0.05,
            "method": "ref",
            "accuracy": 0.632,
            "auc": 0.615,
            "auc_lo": 0.42,
            "auc_hi": 0.81,
        },
        {
            "dataset": "d",
            "density": 0.05,
            "method": "x",
            "accuracy": 0.631,
            "auc": 0.765,
            "auc_lo": 0.70,
            "auc_hi": 0.83,
        },
    ]
    assert matched(aggs, "ref", 0.015)[0]["verdict"] == "tie (AUC within noise)"  # intervals alone: overlap
    paired = matched(aggs, "ref", 0.015, rows)[0]
    assert paired["verdict"] == "leakier than ref at matched accuracy"
    lo, hi = paired["delta_auc_ci"]
    assert 0 < lo < 0.15 < hi
    # a difference that flips sign across seeds stays within noise
    rows[3]["auc"] = 0.55
    assert matched(aggs, "ref", 0.015, rows)[0]["verdict"] == "tie (AUC within noise)"


def test_frontier_suite_gives_its_verdict_methods_every_seed_first():
    cells = expand(load_suite("frontier"))
    seeds = {}
    for c in cells:
        seeds.setdefault(c.method, set()).add(c.seed)
    assert seeds["rigl"] == seeds["safecompress"] == seeds["rigl_select"] == seeds["rigl+hamp"] == {0, 1, 2}
    assert seeds["rigl+hamp(g=0.8)"] == {0}
    first_one_seed = next(i for i, c in enumerate(cells) if len(seeds[c.method]) == 1)
    assert all(len(seeds[c.method]) == 3 for c in cells[:first_one_seed])  # priority: all seeds of the verdicts first


def test_knob_families_group_the_points_of_one_frontier():
    from safecompress.benchmark import knob_family

    assert knob_family("rigl+hamp(g=0.99)") == knob_family("rigl+hamp") == "rigl+hamp"
    assert knob_family("safecompress-last+hamp") == "safecompress-last+hamp"


def test_summary_only_trains_nothing_and_leaves_out_cells_of_other_code(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(dict(SUITE, methods={"rigl": {"method": {"name": "rigl"}}}, reference=None)))
    out = tmp_path / "B"
    assert main(["bench", "--suite", str(suite), "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    report = out / rows[0]["run_dir"] / "report.json"
    rep = json.loads(report.read_text())
    rep["code"]["source_sha256"] = "0" * 16  # as if computed by other code
    report.write_text(json.dumps(rep))
    capsys.readouterr()
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--summary-only"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 finished cells summarised; 1 stale" in text
    assert json.loads((out / "results.json").read_text()) == []
    assert json.loads(report.read_text())["code"]["source_sha256"] == "0" * 16  # nothing re-ran
    md = " ".join((out / "summary.md").read_text().split())
    assert "Not in these tables (1 of the suite's 1 cells" in md and rows[0]["run_dir"].removeprefix("cells/") in md


def test_summary_only_keeps_a_table_other_code_wrote(tmp_path, capsys):
    """A newer checkout's --summary-only over cells another code computed must not replace their table with an
    empty one: exit 2, nothing written."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(dict(SUITE, methods={"rigl": {"method": {"name": "rigl"}}}, reference=None)))
    out = tmp_path / "B"
    assert main(["bench", "--suite", str(suite), "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    report = out / rows[0]["run_dir"] / "report.json"
    rep = json.loads(report.read_text())
    rep["code"]["source_sha256"] = "0" * 16  # the cell and its table, as if both came from other code
    report.write_text(json.dumps(rep))
    for r in rows:
        r["code"] = "0" * 16
    (out / "results.json").write_text(json.dumps(rows))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--summary-only"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "computed by code 0000000000000000" in err and "nothing was written" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    "xs, quantile", [([0.0, 1.0], 12.706), ([0.0, 1.0, 2.0], 4.303), ([1.0, 2.0, 4.0, 8.0], 3.182)]
)
def test_seed_interval_uses_the_t_quantile_of_n_minus_1_degrees_of_freedom(xs, quantile):
    import math
    import statistics

    from safecompress.benchmark import _interval

    mean, lo, hi = _interval(xs)
    assert mean == pytest.approx(statistics.mean(xs))
    assert (hi - lo) / 2 == pytest.approx(quantile * statistics.stdev(xs) / math.sqrt(len(xs)))


def test_paired_hypervolume_says_larger_only_beyond_seed_noise():
    from safecompress.benchmark import _paired_hypervolume

    clear = (
        _paired_hypervolume({"safecompress-x": {0: 0.05, 1: 0.06, 2: 0.055}, "rigl+hamp": {0: 0.04, 1: 0.05, 2: 0.045}})
        .to_markdown()
        .splitlines()
    )
    row = next(line for line in clear if line.startswith("| safecompress-x | rigl+hamp |"))
    assert "+0.0100" in row and row.endswith("| larger |")
    noisy = (
        _paired_hypervolume({"safecompress-x": {0: 0.05, 1: 0.03}, "rigl+hamp": {0: 0.04, 1: 0.04}})
        .to_markdown()
        .splitlines()
    )
    assert any(line.endswith("| no detectable difference |") for line in noisy)
    # families sharing fewer than two seeds are not paired, and baselines are not compared with each other
    assert _paired_hypervolume({"safecompress-x": {0: 0.05, 1: 0.06}, "rigl+hamp": {0: 0.04, 2: 0.05}}).blocks == []
    # a family with an extra seed is paired with a three-seed one over the three seeds they share
    extra = (
        _paired_hypervolume(
            {"safecompress-x": {0: 0.05, 1: 0.06, 2: 0.055, 3: 0.9}, "rigl+hamp": {0: 0.04, 1: 0.05, 2: 0.045}}
        )
        .to_markdown()
        .splitlines()
    )
    row = next(line for line in extra if line.startswith("| safecompress-x | rigl+hamp |"))
    assert "| 3 (common: 0, 1, 2) | +0.0100" in row and row.endswith("| larger |")  # seed 3's 0.9 is left out
    assert _paired_hypervolume({"rigl": {0: 0.05, 1: 0.06}, "rigl+hamp": {0: 0.04, 1: 0.05}}).blocks == []


def test_beyond_membership_table_from_attribute_and_inversion_audits():
    from safecompress.benchmark import Cell, _row, beyond_document

    rep = minimal_report(
        audit={
            "worst": {
                "attack": "loss",
                "auc": 0.6,
                "max_tpr_at_fpr": {"0.01": 0.02},
                "max_tpr_attack": {"0.01": "loss"},
            },
            "attacks": {"loss": {"auc": 0.6, "auc_ci": [0.58, 0.62], "tpr_at_fpr": {"0.001": None, "0.01": 0.02}}},
            "attribute": {"strongest": {"auc": 0.71, "auc_ci": [0.69, 0.73], "view": "embedding", "advantage": 0.04}},
            "inversion": {"auc": 0.52, "auc_ci": [0.5, 0.54], "member_closer_rate": 0.55},
        }
    )
    row = _row(Cell("income", "rigl", 0.05, 0, None), rep)
    md = beyond_document([row]).to_markdown()
    assert (
        "| income | 0.05 | rigl | 0 | 0.700 | 0.710 [0.690, 0.730] | embedding | +0.040 | 0.520 [0.500, 0.540] | 0.55 "
        "| — | — | — | — |" in md
    )
    # extraction and evasion: the fidelity at the largest budget, the robust accuracy at each norm's largest budget
    rep["audit"]["extraction"] = {"fidelity": 0.78, "fidelity_ci": [0.76, 0.8], "budget": 2000, "mode": "probabilities"}
    rep["audit"]["evasion"] = {
        "clean_accuracy": 0.75,
        "linf": [{"eps": 0.01, "robust_accuracy": 0.6}, {"eps": 0.03, "robust_accuracy": 0.2}],
        "l2": [{"eps": 0.5, "robust_accuracy": 0.31}],
    }
    md = beyond_document([_row(Cell("income", "rigl", 0.05, 0, None), rep)]).to_markdown()
    assert "| 0.780 [0.760, 0.800] at 2000 (probabilities) | 0.750 | 0.200 (ε 0.03) | 0.310 (ε 0.5) |" in md
    del rep["audit"]["extraction"], rep["audit"]["evasion"]
    # membership-only audits add no such table
    del rep["audit"]["attribute"], rep["audit"]["inversion"]
    assert beyond_document([_row(Cell("income", "rigl", 0.05, 0, None), rep)]).blocks == []


def test_accuracy_only_suites_summarise_without_an_audit():
    from safecompress.benchmark import Cell, _row, load_suite, summary_html, summary_markdown

    suite = load_suite("sparse-methods")
    rep = minimal_report()
    rows = [_row(Cell("purchase100-synth", m, d, 0, None), rep) for m, d in (("dense", 1.0), ("rigl", 0.05))]
    md = summary_markdown(suite, rows)
    assert "| rigl | 1 | 0.7000 [0.7000, 0.7000] | 0.900 | — |" in md and "Frontiers" not in md
    assert "<table>" in summary_html(suite, rows)


def _frontier_row(method, seed, acc, auc, canary_auc=None):
    row = {
        "dataset": "d",
        "density": 0.05,
        "method": method,
        "seed": seed,
        "test_accuracy": acc,
        "train_accuracy": acc,
        "file_bytes": 1,
        "train_s": 1.0,
        "total_s": 1.0,
        "auc": auc,
        "auc_lo": auc - 0.01,
        "auc_hi": auc + 0.01,
        "tpr_at_1pct_fpr": 0.02,
        "strongest_attack": "rmia",
    }
    if canary_auc is not None:
        row.update(canary_auc=canary_auc, canary_tpr=canary_auc - 0.3, canary_fpr=0.05)
    return row


def test_worst_case_frontier_ranks_families_by_canary_leakage_paired_by_seed():
    from safecompress.benchmark import aggregate, frontier_document

    rows = []
    for s, jitter in enumerate((0.0, 0.004, -0.003)):
        rows += [
            _frontier_row("rigl", s, 0.65 + jitter, 0.77, 0.94),
            # same accuracy and strongest AUC, but the loop's canaries leak clearly less on every seed
            _frontier_row("rigl+hamp(g=0.9)", s, 0.64 + jitter, 0.62, 0.92),
            _frontier_row("safecompress-x(b=1)", s, 0.64 + jitter, 0.62, 0.85 + jitter / 2),
        ]
    md = frontier_document(aggregate(rows), rows).to_markdown()
    main, worst = md.split("## Worst case: d, density 0.05")
    # the main frontier (strongest AUC) sees no difference: the two families have the same points
    assert "| safecompress-x | rigl+hamp | 3 | +0.0000" in main
    tables = worst.split("Paired by seed (leakage = ")
    assert tables[1].startswith("canary_auc)") and tables[2].startswith("canary_tpr)")
    for table in tables[1:]:
        row = next(line for line in table.splitlines() if line.startswith("| safecompress-x | rigl+hamp |"))
        assert row.endswith("| larger |")
    # no canaries in the audit: no worst-case section
    bare = [{k: v for k, v in r.items() if not k.startswith("canary")} for r in rows]
    assert "Worst case" not in frontier_document(aggregate(bare), bare).to_markdown()


def test_a_family_hypervolume_shows_the_mean_its_seed_interval_is_about():
    """Two seeds whose frontiers differ: the mean of the per-seed hypervolumes is printed with its interval, and the
    hypervolume of the seed-mean points (another number) is labelled as such."""
    from safecompress.benchmark import _family_hypervolumes
    from safecompress.frontier import hypervolume

    rows = [
        {"dataset": "d", "density": 0.05, "method": "m", "seed": 0, "test_accuracy": 0.70, "auc": 0.60},
        {"dataset": "d", "density": 0.05, "method": "m", "seed": 1, "test_accuracy": 0.60, "auc": 0.55},
    ]
    fams = {"m": [{"method": "m", "accuracy": 0.65, "auc": 0.575}]}
    text, per_seed = _family_hypervolumes(rows, fams, "d", 0.05, 0.5, "auc")
    seeds = [hypervolume([(0.70, 0.60)], 0.5, 1.0), hypervolume([(0.60, 0.55)], 0.5, 1.0)]
    assert per_seed["m"] == dict(enumerate(seeds))
    mean, lo, hi = (float(x) for x in text["m"].replace("[", " ").replace(",", " ").replace("]", " ").split()[:3])
    assert mean == pytest.approx(sum(seeds) / 2, abs=1e-4) and lo <= mean <= hi
    assert text["m"].endswith(f"(of the seed-mean points: {hypervolume([(0.65, 0.575)], 0.5, 1.0):.4f})")
