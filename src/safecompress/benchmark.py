"""``safecompress bench``: a matrix of datasets × densities × methods × seeds from a suite file.

Every cell is a normal run folder (``OUT/cells/<dataset>/<method>/d<density>-s<seed>``) with its own
independent audit, so the bench resumes for free: finished cells are reported, not re-run. Every
cell's configuration is validated before the first one trains. Results: ``results.csv``,
``results.json``, ``summary.md`` and ``summary.html`` (Pareto plots, one panel per density).

The *matched-accuracy* table compares each method's privacy with the suite's reference method
(SafeCompress) only where the accuracies are comparable (within ``tolerance``), because a less
accurate model is trivially more private.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import RunConfig, build_config, deep_merge, preset_dict, read_yaml
from .errors import ConfigError, SafeCompressError
from .fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from .metrics import format_rate
from .provenance import code_version
from .registry import closest
from .report.document import Document
from .report.schema import RunReport

log = logging.getLogger(__name__)
# the built-in suites: every YAML file in safecompress/suites (adding a suite is one new file)
SUITES = tuple(
    sorted(f.name[:-5] for f in resources.files("safecompress.suites").iterdir() if f.name.endswith(".yaml"))
)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    preset: str | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    densities: list[float] = Field(min_length=1)
    common: dict[str, Any] = Field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = Field(min_length=1)
    methods: dict[str, dict[str, Any]] = Field(min_length=1)
    reference: str | None = Field(None, description="the method the matched-accuracy table compares against")
    tolerance: float = Field(0.015, ge=0, description="accuracy difference still counted as matched")
    per_attack: bool = Field(
        False,
        description="also tabulate every audit attack of every cell (AUC, TPR at low "
        "FPR, wall time), not only the strongest",
    )


@dataclass
class Cell:
    dataset: str
    method: str
    density: float  # 1.0 for dense methods
    seed: int
    cfg: RunConfig

    @property
    def folder(self) -> str:
        return f"cells/{self.dataset}/{self.method}/d{self.density:g}-s{self.seed}"


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (``cpu``, ``paper``) or a YAML suite file; one that ``extends`` another starts
    from it (see :func:`extend_suite`)."""
    raw = _suite_dict(str(name_or_path), ())
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"suite {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    if suite.reference is not None and suite.reference not in suite.methods:
        raise ConfigError(f"suite reference {suite.reference!r} is not one of its methods: {', '.join(suite.methods)}")
    return suite


def _suite_dict(text: str, chain: tuple[str, ...], relative_to: Path | None = None) -> dict[str, Any]:
    """The suite's mapping with every ``extends`` resolved; ``chain`` holds the suites that extend it."""
    local = None if relative_to is None or text in SUITES else relative_to / text
    if text in SUITES:
        raw, folder = _yaml(resources.files("safecompress.suites").joinpath(f"{text}.yaml").read_text()), None
    elif local is not None and local.is_file():
        raw, folder = read_yaml(local), local.parent
    elif Path(text).is_file():
        raw, folder = read_yaml(text), Path(text).parent
    else:
        hint = closest(text, list(SUITES))
        raise ConfigError(
            f"no suite {text!r}"
            + (f" (extended by {chain[-1]!r})" if chain else "")
            + f": give a built-in suite ({', '.join(SUITES)})"
            + (f" — did you mean {hint!r}?" if hint else "")
            + " or the path of a suite YAML file"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"suite {text!r} is not a mapping of suite settings (name, seeds, methods, ...)")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"suite {text!r}: extends must name one suite (built-in or a YAML path), got {parent!r}")
    if parent in (*chain, text):
        raise ConfigError(f"suites extend each other in a circle: {' -> '.join((*chain, text, parent))}")
    return extend_suite(_suite_dict(parent, (*chain, text), folder), raw, text)


def extend_suite(base: dict[str, Any], child: dict[str, Any], name: str = "suite") -> dict[str, Any]:
    """``child`` on top of ``base``: ``common`` is deep-merged; ``datasets`` and ``methods`` are merged by name
    (an entry replaces the parent's of that name, ``null`` removes it); every other key replaces the parent's."""
    out = dict(base)
    for key, value in child.items():
        if key == "common":
            out[key] = deep_merge(base.get("common") or {}, value or {})
        elif key in ("datasets", "methods"):
            merged = dict(base.get(key) or {})
            for entry, entry_cfg in (value or {}).items():
                if entry_cfg is not None:
                    merged[entry] = entry_cfg
                    continue
                if entry not in merged:
                    raise ConfigError(
                        f"{name}: {key}.{entry}: null removes an entry of the suite it extends, which has none "
                        f"(its {key}: {', '.join(base.get(key) or {}) or 'none'})"
                    )
                del merged[entry]
            out[key] = merged
        else:
            out[key] = value
    return out


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def expand(suite: Suite, overrides: dict[str, Any] | None = None) -> list[Cell]:
    """Every cell of the suite with its validated config; all problems are reported at once."""
    clash = {"seed"} & set(overrides or {}) or ({"density"} & set((overrides or {}).get("sparse", {})))
    if clash:
        raise ConfigError(
            "the suite sets seed and sparse.density per cell; change its seeds/densities lists instead "
            "of overriding them"
        )
    base = preset_dict(suite.preset) if suite.preset else {}
    base = deep_merge(base, suite.common)
    cells, problems = [], []
    for seed in suite.seeds:
        for dataset, dcfg in suite.datasets.items():
            for method, mcfg in suite.methods.items():
                mcfg = dict(mcfg)
                dense = bool(mcfg.pop("dense", False))
                only = mcfg.pop("seeds", None)  # a method may run on fewer seeds than the suite
                if only is not None and seed not in only:
                    continue
                for density in [1.0] if dense else suite.densities:
                    raw = deep_merge(base, dcfg)
                    raw = deep_merge(raw, mcfg)
                    raw = deep_merge(raw, {"data": {"name": dataset}, "seed": seed, "sparse": {"density": density}})
                    if overrides:
                        raw = deep_merge(raw, overrides)
                    try:
                        cells.append(Cell(dataset, method, density, seed, build_config(raw)))
                    except ConfigError as exc:
                        problems += [f"{dataset}/{method}: {p}" for p in exc.problems]
    if problems:
        raise ConfigError(sorted(set(problems)))
    # methods that run on every seed first (their verdicts need all seeds), then the one-seed knobs
    many = {c.method for c in cells if c.seed != suite.seeds[0]}
    return sorted(cells, key=lambda c: (c.method not in many, c.seed))


def loop_stats(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """What a SafeCompress run's loop did, from its ``rounds.jsonl``: rounds; rounds whose chosen candidate
    was not the most accurate one (the leakage test changed the choice); the mean spread, within a round, of
    the candidates' val accuracy and worst in-loop AUC (how much the choice can move the model); how often
    the chosen regulariser changed; and the chosen candidate's worst in-loop AUC in the last round. In-loop
    numbers are diagnostics of the loop, never the privacy result (that is the independent audit)."""
    if not rounds:
        return {}

    def worst(c: dict[str, Any]) -> float:
        return max(c["attack_auc"].values())

    overruled, acc_spread, leak_spread, regs = 0, [], [], []
    for r in rounds:
        cands = r["candidates"]
        accs = [c["val_accuracy"] for c in cands]
        overruled += accs[r["chosen"]] < max(accs)
        acc_spread.append(max(accs) - min(accs))
        leak_spread.append(max(map(worst, cands)) - min(map(worst, cands)))
        strategy = cands[r["chosen"]]["strategy"]
        regs.append((strategy.get("regularizer", "none"), strategy.get("strength", 0.0)))
    return {
        "loop_rounds": len(rounds),
        "loop_overruled": int(overruled),
        "loop_acc_spread": statistics.fmean(acc_spread),
        "loop_leak_spread": statistics.fmean(leak_spread),
        "loop_switches": sum(a != b for a, b in zip(regs, regs[1:])),
        "loop_last_leak": worst(rounds[-1]["candidates"][rounds[-1]["chosen"]]),
    }


def _read_rounds(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / "rounds.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _row(cell: Cell, rep: RunReport | Mapping[str, Any], folder: Path | None = None) -> dict[str, Any]:
    rep = RunReport.coerce(rep)
    row = {
        "dataset": cell.dataset,
        "method": cell.method,
        "density": cell.density,
        "seed": cell.seed,
        "test_accuracy": rep.task.accuracy,
        "train_accuracy": rep.task.train_accuracy,
        "measured_density": rep.compression.density,
        "file_bytes": rep.compression.file_bytes,
        "train_s": rep.timing.train_s,
        "total_s": rep.timing.total_s,
        "run_dir": cell.folder,
    }
    audit = rep.audit
    if audit:
        worst = audit.worst
        ci = audit.strongest.auc_ci or [worst.auc, worst.auc]  # bootstrap=0: none
        row.update(
            {
                "strongest_attack": worst.attack,
                "auc": worst.auc,
                "auc_lo": ci[0],
                "auc_hi": ci[1],
                "auc_p": worst.auc_p,
                "tpr_at_1pct_fpr": worst.max_tpr_at_fpr["0.01"],
                "tpr_attack": worst.max_tpr_attack["0.01"],
            }
        )
        if worst.chance is not None:
            row.update({"chance_max_auc": worst.chance.chance_max_auc, "leak_p": worst.chance.p_value})
        row["attack_table"] = {
            name: {
                "auc": m.auc,
                "auc_ci": m.auc_ci,
                "tpr_0.001": m.tpr_at_fpr.get("0.001"),
                "tpr_0.01": m.tpr_at_fpr.get("0.01"),
                "wall_s": m.wall_s,
            }
            for name, m in audit.attacks.items()
        }
        attr, inv = audit.attribute, audit.inversion
        if attr and attr.strongest:  # attacks beyond membership (datasets with a sensitive attribute)
            st = attr.strongest
            row.update(
                {"attr_auc": st.auc, "attr_auc_ci": st.auc_ci, "attr_view": st.view, "attr_advantage": st.advantage}
            )
        if inv and inv.auc is not None:
            row.update({"inv_auc": inv.auc, "inv_auc_ci": inv.auc_ci, "inv_closer": inv.member_closer_rate})
        row.update(_extraction_evasion(audit))
        if audit.canaries:
            canaries = audit.canaries
            row.update(
                {
                    "canary_auc": canaries.worst.auc,
                    "canary_tpr": canaries.worst.tpr_at_lowest_fpr[0],
                    "canary_fpr": 10 / canaries.n_nonmembers,
                }
            )
    row["code"] = rep.code.source_sha256 if rep.code else None
    row["final_round"] = rep.final_round
    if folder is not None:
        row.update(loop_stats(_read_rounds(folder)))
    return row


def _extraction_evasion(audit) -> dict[str, Any]:
    """The headline numbers of the extraction and evasion families, when the cell's audit ran them: the surrogate's
    fidelity at the largest budget (its mode and interval), and the robust accuracy at each norm's largest budget."""
    row: dict[str, Any] = {}
    ext, eva = audit.extraction, audit.evasion
    if ext is not None and ext.fidelity is not None:
        row.update(
            {
                "ext_fidelity": ext.fidelity,
                "ext_fidelity_ci": ext.fidelity_ci,
                "ext_budget": ext.budget,
                "ext_mode": ext.mode,
            }
        )
    if eva is not None and eva.clean_accuracy is not None:
        row["eva_clean"] = eva.clean_accuracy
        for norm in ("linf", "l2"):
            point = eva.largest(norm)
            if point is not None:
                row[f"eva_{norm}"] = {"eps": point.eps, "robust_accuracy": point.robust_accuracy}
    return row


def run_cell(task: tuple[RunConfig, Path, int]) -> tuple[dict[str, Any], bool]:
    """One bench cell (an executor task): its run folder, resumed if it exists; (report, was complete)."""
    import torch

    from .runner import run_experiment

    cfg, folder, threads = task
    torch.set_num_threads(threads)
    mode = "resume"
    report_path = Path(folder) / "report.json"
    if report_path.is_file():
        try:
            old = json.loads(report_path.read_text()).get("code")
        except (OSError, ValueError):
            old = None
        if old != code_version():  # computed by other code: never mixed into a table
            log.info("cell %s was computed by code %s, not %s: re-running it", folder, old, code_version())
            mode = "overwrite"
    result = run_experiment(cfg, folder, mode)
    return result.report, result.resumed_complete


def summarize_finished(
    suite: Suite, out: Path, overrides: dict[str, Any] | None = None
) -> tuple[int, list[str], list[str]]:
    """Write the result tables from the finished cells computed by this code; (cells used, stale cells,
    cells not run)."""
    out = Path(out)
    rows, stale, missing = [], [], []
    for cell in expand(suite, overrides):
        path = out / cell.folder / "report.json"
        if not path.is_file():
            missing.append(cell.folder)
            continue
        rep = json.loads(path.read_text())
        if rep.get("code") != code_version():  # checked before the report is read: older code may have written it
            stale.append(cell.folder)
            continue
        rows.append(_row(cell, RunReport.model_validate(rep), out / cell.folder))
    _keep_other_codes_tables(out, stale)
    write_results(suite, rows, out)
    return len(rows), stale, missing


def _keep_other_codes_tables(out: Path, stale: list[str]) -> None:
    """Refuse to replace a results table written from other code's cells by one that leaves them out: a
    summary run by a newer checkout must not wipe the table the cells' own code wrote."""
    path = out / "results.json"
    if not stale or not path.is_file():
        return
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # unreadable: nothing worth keeping
    ours = code_version()["source_sha256"]
    codes = sorted({str(r.get("code") or "unknown") for r in earlier if isinstance(r, dict)} - {ours})
    if codes:
        raise ConfigError(
            f"{out}: its results.json holds {len(earlier)} rows computed by code {', '.join(codes)}, and this code "
            f"({ours}) would summarise without the {len(stale)} cells it did not compute; nothing was "
            "written. Summarise with the code that computed them, or re-run the suite (without --summary-only) to "
            "recompute those cells"
        )


def run_bench(
    suite: Suite,
    out: Path,
    overrides: dict[str, Any] | None = None,
    on_cell: Callable[[Cell, dict[str, Any], bool], None] | None = None,
    executor=None,
) -> list[dict[str, Any]]:
    import torch

    from .executor import LocalExecutor

    out = Path(out)
    cells = expand(suite, overrides)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "suite.json", suite.model_dump())
    tasks = [(c.cfg, out / c.folder, c.cfg.train.num_threads or torch.get_num_threads()) for c in cells]
    rows: list[dict[str, Any]] = []

    def record(cell: Cell, report: dict[str, Any], cached: bool) -> None:
        rows.append(_row(cell, report, out / cell.folder))
        if on_cell:
            on_cell(cell, rows[-1], cached)

    if executor is None or isinstance(executor, LocalExecutor):
        for i, (cell, task) in enumerate(zip(cells, tasks)):
            log.info("cell %d/%d: %s", i + 1, len(cells), cell.folder)
            record(cell, *run_cell(task))
            write_results(suite, rows, out)  # partial results are usable while the bench runs
    else:
        for cell, (report, cached) in zip(cells, executor.map(run_cell, tasks)):
            record(cell, report, cached)
        write_results(suite, rows, out)
    return rows


# -- summaries ---------------------------------------------------------------------------------------
# two-sided 95 % Student t quantiles for 1..30 degrees of freedom
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def _interval(
    xs: list[float], los: list[float] | None = None, his: list[float] | None = None
) -> tuple[float, float, float]:
    """(mean, low, high): a t-interval over seeds, or the audit's bootstrap interval for one seed."""
    m = statistics.mean(xs)
    if len(xs) > 1:
        df = len(xs) - 1  # _T975[0] is the quantile for 1 degree of freedom
        t = _T975[df - 1] if df <= len(_T975) else 1.96
        h = t * statistics.stdev(xs) / math.sqrt(len(xs))
        return m, m - h, m + h
    if los and his:
        return m, los[0], his[0]
    return m, m, m


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["density"], r["method"]), []).append(r)
    out = []
    for (dataset, density, method), rs in groups.items():
        acc = _interval([r["test_accuracy"] for r in rs])
        agg = {
            "dataset": dataset,
            "density": density,
            "method": method,
            "seeds": len(rs),
            "accuracy": acc[0],
            "accuracy_lo": acc[1],
            "accuracy_hi": acc[2],
            "file_kb": statistics.mean(r["file_bytes"] for r in rs) / 1024,
            "train_accuracy": statistics.mean(r["train_accuracy"] for r in rs),
            "train_s": statistics.mean(r["train_s"] for r in rs),
            "total_s": statistics.mean(r["total_s"] for r in rs),
        }
        if all("auc" in r for r in rs):
            auc = _interval([r["auc"] for r in rs], [r["auc_lo"] for r in rs], [r["auc_hi"] for r in rs])
            tprs = [r["tpr_at_1pct_fpr"] for r in rs]
            tpr = _interval(tprs)[0] if all(t is not None for t in tprs) else None
            for key in (
                "leak_p",
                "chance_max_auc",
                "canary_auc",
                "canary_tpr",
                "canary_fpr",
                "vs_base_delta_auc",
                "vs_base_lo",
                "vs_base_hi",
            ):
                if all(r.get(key) is not None for r in rs):
                    agg[key] = statistics.mean(r[key] for r in rs)
            verdicts = {r.get("vs_base_verdict") for r in rs}
            if len(verdicts) == 1 and None not in verdicts:
                agg["vs_base_verdict"] = verdicts.pop()
            elif None not in verdicts:
                agg["vs_base_verdict"] = "/".join(sorted(verdicts))
            rounds = [str(r.get("final_round")) for r in rs if r.get("final_round") is not None]
            if rounds:
                agg["final_round"] = ",".join(rounds)
            agg.update(
                {
                    "auc": auc[0],
                    "auc_lo": auc[1],
                    "auc_hi": auc[2],
                    "tpr_at_1pct_fpr": tpr,
                    "attacks": ",".join(sorted({r["strongest_attack"] for r in rs})),
                }
            )
        out.append(agg)
    return out


def _panels(aggs: list[dict[str, Any]]) -> list[tuple[str, float, list[dict[str, Any]]]]:
    """(dataset, density, rows) per panel; dense rows (density 1) join every density panel."""
    datasets = sorted({a["dataset"] for a in aggs})
    densities = sorted({a["density"] for a in aggs if a["density"] < 1.0}, reverse=True) or [1.0]
    return [
        (d, q, [a for a in aggs if a["dataset"] == d and a["density"] in (q, 1.0)]) for d in datasets for q in densities
    ]


def _paired_seed_delta(
    rows: list[dict[str, Any]], dataset: str, density: float, a: str, b: str
) -> tuple[float, float, float] | None:
    """Method a's strongest AUC minus method b's, paired by seed (t-interval over the per-seed
    differences), when both ran the same two or more seeds; None otherwise."""

    def by_seed(m: str) -> dict[int, float]:
        return {
            r["seed"]: r["auc"]
            for r in rows
            if r["dataset"] == dataset and r["method"] == m and r["density"] in (density, 1.0) and "auc" in r
        }

    sa, sb = by_seed(a), by_seed(b)
    if len(sa) < 2 or set(sa) != set(sb):
        return None
    return _interval([sa[k] - sb[k] for k in sorted(sa)])


def matched(
    aggs: list[dict[str, Any]],
    reference: str | None,
    tolerance: float,
    rows_by_seed: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per panel, each method's accuracy and AUC relative to the reference method; 'matched' when the
    accuracy is within ``tolerance`` of the reference's (only then is a privacy comparison fair).
    Whether an AUC difference is within noise: with the per-seed rows and the same two or more seeds on
    both sides, the paired-by-seed interval of the difference (seed effects shared by both methods
    cancel); otherwise whether the two AUC intervals overlap."""
    out = []
    for dataset, density, rows in _panels(aggs):
        ref = next((r for r in rows if r["method"] == reference and r["density"] in (density, 1.0)), None)
        if ref is None or "auc" not in ref:
            continue
        for r in rows:
            if r is ref or "auc" not in r:
                continue
            d_acc = r["accuracy"] - ref["accuracy"]
            paired = (
                _paired_seed_delta(rows_by_seed, dataset, density, r["method"], reference)
                if rows_by_seed is not None
                else None
            )
            noise = paired[1] <= 0 <= paired[2] if paired else _overlap(r, ref)
            out.append(
                {
                    "dataset": dataset,
                    "density": density,
                    "method": r["method"],
                    "reference": reference,
                    "accuracy": r["accuracy"],
                    "reference_accuracy": ref["accuracy"],
                    "delta_accuracy": d_acc,
                    "auc": r["auc"],
                    "reference_auc": ref["auc"],
                    "delta_auc": r["auc"] - ref["auc"],
                    "delta_auc_ci": [paired[1], paired[2]] if paired else None,
                    "matched": abs(d_acc) <= tolerance,
                    "verdict": _verdict(d_acc, r["auc"] - ref["auc"], tolerance, reference, noise),
                }
            )
    return out


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the two AUC intervals overlap (then a difference is within noise)."""
    if not all(k in x for x in (a, b) for k in ("auc_lo", "auc_hi")):
        return False
    return a["auc_lo"] <= b["auc_hi"] and b["auc_lo"] <= a["auc_hi"]


def _verdict(d_acc: float, d_auc: float, tol: float, reference: str, overlap: bool = False) -> str:
    if abs(d_acc) > tol:
        if d_acc < 0 and d_auc <= 0:
            return "less accurate and less leaky: not comparable"
        if d_acc > 0 and d_auc >= 0:
            return "more accurate and leakier: not comparable"
        return f"dominates {reference}" if d_acc > 0 else f"dominated by {reference}"
    if abs(d_auc) < 0.005 or overlap:
        return "tie (AUC within noise)"
    return f"{'leakier' if d_auc > 0 else 'less leaky'} than {reference} at matched accuracy"


def _fmt(a: dict[str, Any], key: str, digits: int = 4) -> str:
    if key not in a:
        return "—"
    return f"{a[key]:.{digits}f} [{a[key + '_lo']:.{digits}f}, {a[key + '_hi']:.{digits}f}]"


def summary_document(suite: Suite, rows: list[dict[str, Any]]) -> Document:
    """The summary's headings, notes and tables, rendered to summary.md and summary.html."""
    aggs = aggregate(rows)
    doc = Document().h1(f"Benchmark `{suite.name}`")
    doc.p(
        f"{len(rows)} cells; seeds {suite.seeds}; intervals: 95 % t-interval over seeds (one seed: the audit's "
        "bootstrap interval for AUC). Privacy = the strongest attack of each cell's independent audit."
    )
    have = {(r["dataset"], r["method"], r["density"], r["seed"]) for r in rows}
    absent = [
        c.folder.removeprefix("cells/") for c in expand(suite) if (c.dataset, c.method, c.density, c.seed) not in have
    ]
    if absent:  # a suite run in slices: say what the tables do not rest on yet
        doc.p(
            f"**Not in these tables ({len(absent)} of the suite's {len(have) + len(absent)} cells not run, or "
            f"computed by other code):** " + ", ".join(absent) + "."
        )
    for dataset, density, panel in _panels(aggs):
        table = []
        for a in sorted(panel, key=lambda a: -a["accuracy"]):
            tpr = format_rate(a["tpr_at_1pct_fpr"], 4) if "tpr_at_1pct_fpr" in a else "—"
            leak = f"{a['leak_p']:.3f} ({a['chance_max_auc']:.3f})" if "leak_p" in a else "—"
            canary = f"{a['canary_auc']:.3f}" if "canary_auc" in a else "—"
            ctpr = f"{a['canary_tpr']:.3f} ({a['canary_fpr']:.1%})" if "canary_tpr" in a else "—"
            vs = (
                f"{a['vs_base_delta_auc']:+.3f} [{a['vs_base_lo']:+.3f}, {a['vs_base_hi']:+.3f}] {a['vs_base_verdict']}"
                if "vs_base_verdict" in a
                else "—"
            )
            table.append(
                [
                    f"{a['method']}{' (dense)' if a['density'] == 1.0 else ''}",
                    str(a["seeds"]),
                    _fmt(a, "accuracy"),
                    f"{a['train_accuracy']:.3f}",
                    _fmt(a, "auc", 3),
                    leak,
                    tpr,
                    canary,
                    ctpr,
                    vs,
                    str(a.get("attacks", "—")),
                    str(a.get("final_round", "—")),
                    f"{a['train_s']:.0f}",
                ]
            )
        doc.h2(f"{dataset}, density {density:g}")
        doc.table(
            [
                "method",
                "seeds",
                "test accuracy",
                "train accuracy",
                "strongest AUC",
                "leaks? p (chance of max)",
                "TPR@1%FPR",
                "canary AUC",
                "canary TPR (FPR)",
                "vs rigl: Δ strongest AUC [paired CI]",
                "attacks",
                "final round",
                "train s",
            ],
            table,
        )
    doc.extend(frontier_document(aggs, rows))
    if suite.per_attack:
        doc.extend(attack_document(rows))
    doc.extend(beyond_document(rows))
    doc.extend(loop_document(rows))
    m = matched(aggs, suite.reference, suite.tolerance, rows)
    if m:
        doc.h2(f"Matched accuracy (reference: {suite.reference}, tolerance ±{suite.tolerance * 100:.1f} pt)")
        doc.table(
            ["dataset", "density", "method", "Δ accuracy (pt)", "Δ strongest AUC", "verdict"],
            [
                [
                    r["dataset"],
                    f"{r['density']:g}",
                    r["method"],
                    f"{r['delta_accuracy'] * 100:+.1f}",
                    f"{r['delta_auc']:+.3f}"
                    + (
                        f" [{r['delta_auc_ci'][0]:+.3f}, {r['delta_auc_ci'][1]:+.3f}] paired by seed"
                        if r["delta_auc_ci"]
                        else ""
                    ),
                    r["verdict"],
                ]
                for r in m
            ],
        )
    return doc


# the leading columns of every per-cell table (attacks, beyond membership, the loop), in cell order
CELL_HEADER = ["dataset", "density", "method", "seed", "test accuracy"]


def _by_cell(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["dataset"], r["density"], r["method"], r["seed"]))


def _cell_columns(r: dict[str, Any]) -> list[str]:
    return [r["dataset"], f"{r['density']:g}", r["method"], str(r["seed"]), f"{r['test_accuracy']:.3f}"]


def attack_document(rows: list[dict[str, Any]]) -> Document:
    """Every audit attack of every cell, strongest TPR at 1 % FPR first (suites with ``per_attack: true``)."""
    doc = Document()
    cells = [r for r in rows if r.get("attack_table")]
    if not cells:
        return doc
    doc.h2("Every attack")
    doc.p(
        "Each cell's independent audit: AUC with its 95 % bootstrap interval, TPR at 0.1 % and 1 % FPR "
        "(n/r: not resolvable with this many non-members), and the attack's wall time."
    )
    table = []
    for r in _by_cell(cells):
        for name, m in sorted(r["attack_table"].items(), key=lambda kv: -(kv[1]["tpr_0.01"] or 0.0)):
            ci = m.get("auc_ci")
            auc = f"{m['auc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
            table.append(
                [
                    *_cell_columns(r),
                    name,
                    auc,
                    format_rate(m["tpr_0.001"], 4),
                    format_rate(m["tpr_0.01"], 4),
                    "—" if m.get("wall_s") is None else f"{m['wall_s']:.1f}",
                ]
            )
    return doc.table(
        [
            *CELL_HEADER,
            "attack",
            "AUC",
            "TPR@0.1%FPR",
            "TPR@1%FPR",
            "attack s",
        ],
        table,
    )


def loop_document(rows: list[dict[str, Any]]) -> Document:
    """What the SafeCompress loop did in each cell (from its rounds.jsonl; empty without such cells)."""
    doc = Document()
    cells = [r for r in rows if r.get("loop_rounds")]
    if not cells:
        return doc
    doc.h2("The loop, round by round (in-loop diagnostics, not privacy results)")
    doc.p(
        "Overruled: rounds whose chosen candidate was not the most accurate (the leakage test changed the "
        "choice). Spreads: mean over rounds of the max − min, across a round's candidates, of val accuracy "
        "and of the worst in-loop AUC — how far one choice can move the model. Switches: rounds whose chosen "
        "regulariser differs from the round before. Last in-loop AUC: the chosen candidate's, on the probe "
        "test half; compare it with the audit's strongest AUC."
    )
    table = [
        [
            *_cell_columns(r),
            f"{r['loop_overruled']} of {r['loop_rounds']}",
            f"{r['loop_acc_spread'] * 100:.1f} pt",
            f"{r['loop_leak_spread']:.3f}",
            str(r["loop_switches"]),
            f"{r['loop_last_leak']:.3f}",
            "—" if r.get("auc") is None else f"{r['auc']:.3f}",
        ]
        for r in _by_cell(cells)
    ]
    return doc.table(
        [
            *CELL_HEADER,
            "overruled",
            "val acc spread",
            "in-loop AUC spread",
            "switches",
            "last in-loop AUC",
            "audit strongest AUC",
        ],
        table,
    )


def beyond_document(rows: list[dict[str, Any]]) -> Document:
    """Attribute inference, model inversion, model extraction and evasion of every cell whose audit ran them
    (empty otherwise)."""
    doc = Document()
    cells = [r for r in rows if {"attr_auc", "inv_auc", "ext_fidelity", "eva_clean"} & r.keys()]
    if not cells:
        return doc

    def ci(value, interval):
        if value is None:
            return "—"
        return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")

    doc.h2("Beyond membership")
    doc.p(
        "Attribute AUC: one-vs-rest on the private (member) records' sensitive attribute, from the view that "
        "leaks most; advantage: accuracy minus the best no-model baseline. Inversion AUC: members vs non-members "
        "by their distance to the class reconstructions (0.5 = no closer to members). Extraction: the surrogate's "
        "agreement with the served model on audit records at the largest query budget (its mode). Evasion: PGD "
        "robust accuracy at each norm's largest budget, beside the clean accuracy on the same records."
    )

    def robust(r, norm):
        point = r.get(f"eva_{norm}")
        return "—" if not point else f"{point['robust_accuracy']:.3f} (ε {point['eps']:.3g})"

    def extraction(r):
        if r.get("ext_fidelity") is None:
            return "—"
        return f"{ci(r['ext_fidelity'], r.get('ext_fidelity_ci'))} at {r.get('ext_budget')} ({r.get('ext_mode')})"

    table = [
        [
            *_cell_columns(r),
            ci(r.get("attr_auc"), r.get("attr_auc_ci")),
            str(r.get("attr_view") or "—"),
            "—" if r.get("attr_advantage") is None else f"{r['attr_advantage']:+.3f}",
            ci(r.get("inv_auc"), r.get("inv_auc_ci")),
            "—" if r.get("inv_closer") is None else f"{r['inv_closer']:.2f}",
            extraction(r),
            "—" if r.get("eva_clean") is None else f"{r['eva_clean']:.3f}",
            robust(r, "linf"),
            robust(r, "l2"),
        ]
        for r in _by_cell(cells)
    ]
    return doc.table(
        [
            *CELL_HEADER,
            "attribute AUC",
            "view",
            "attribute advantage",
            "inversion AUC",
            "inversion member-closer",
            "extraction fidelity",
            "clean accuracy",
            "robust accuracy L∞",
            "robust accuracy L2",
        ],
        table,
    )


def summary_markdown(suite: Suite, rows: list[dict[str, Any]]) -> str:
    return summary_document(suite, rows).to_markdown()


# the leakage measures the frontier plot shows side by side: (aggregate key, low, high keys or None, axis label)
LEAKAGE_AXES = (
    ("auc", "auc_lo", "auc_hi", "strongest attack AUC (→ leakier)"),
    ("tpr_at_1pct_fpr", None, None, "best TPR at 1 % FPR (→ leakier)"),
    ("canary_tpr", None, None, "canary TPR at the lowest FPR (worst case, → leakier)"),
)


def _pareto_png(aggs: list[dict[str, Any]]) -> str:
    """One row of panels per dataset × density, one column per leakage measure (LEAKAGE_AXES): each method
    as a point with its seed interval, and each method family's frontier as a step line."""
    from .frontier import pareto_front
    from .report.html import figure_uri, pyplot

    plt = pyplot()
    panels = [p for p in _panels(aggs) if any("auc" in a for a in p[2])]
    if not panels:
        return ""
    axes_used = [ax for ax in LEAKAGE_AXES if any(a.get(ax[0]) is not None for p in panels for a in p[2])]
    fig, axes = plt.subplots(
        len(panels), len(axes_used), figsize=(4.6 * len(axes_used), 3.6 * len(panels)), squeeze=False
    )
    methods = sorted({a["method"] for a in aggs})
    markers = dict(zip(methods, "o s ^ D v P X * h < > p".split() * 3))
    colors = dict(zip(methods, plt.get_cmap("tab10").colors * 3))
    for i, (dataset, density, rows) in enumerate(panels):
        for j, (key, lo_key, hi_key, label) in enumerate(axes_used):
            ax = axes[i][j]
            fams: dict[str, list[tuple[float, float]]] = {}
            for a in rows:
                if a.get(key) is None:
                    continue
                x = a[key]
                xerr = [[max(0.0, x - a[lo_key])], [max(0.0, a[hi_key] - x)]] if lo_key else None
                ax.errorbar(
                    x,
                    a["accuracy"],
                    xerr=xerr,
                    yerr=[[max(0.0, a["accuracy"] - a["accuracy_lo"])], [max(0.0, a["accuracy_hi"] - a["accuracy"])]],
                    fmt=markers[a["method"]],
                    color=colors[a["method"]],
                    ms=8,
                    capsize=2,
                    lw=0.8,
                    label=a["method"] + (" (dense)" if a["density"] == 1.0 else ""),
                )
                if a["density"] < 1.0:
                    fams.setdefault(knob_family(a["method"]), []).append((a["accuracy"], x))
            for fam, pts in fams.items():
                front = pareto_front(pts)
                if len(front) > 1:  # each family's frontier, as a step line through its non-dominated points
                    ax.step(
                        [p[1] for p in front],
                        [p[0] for p in front],
                        where="post",
                        lw=1.0,
                        alpha=0.6,
                        color=colors.get(next((m for m in methods if knob_family(m) == fam), fam), "#555"),
                    )
            ax.set(title=f"{dataset} · density {density:g}", xlabel=label, ylabel="test accuracy")
            if key == "auc":
                ax.axvline(0.5, ls="--", c="#999", lw=0.8)
            if j == 0:
                ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_uri(fig, dpi=100, tight=False)


def summary_html(suite: Suite, rows: list[dict[str, Any]]) -> str:
    from .report.html import STYLE

    plot = _pareto_png(aggregate(rows))
    body = [
        f"<h1>Benchmark {html.escape(suite.name)}</h1>",
        "<p class=sub>Upper left is better: accurate and hard to attack. Error bars: 95 % intervals.</p>",
    ]
    if plot:
        body.append(f'<img id="pareto" src="{plot}" alt="Pareto plots: accuracy vs strongest attack AUC">')
    body.append(summary_document(suite, rows).to_html())
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(suite.name)} benchmark</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def add_paired(rows: list[dict[str, Any]], out: Path, baseline: str = "rigl") -> None:
    """Each cell against the ``baseline`` cell of the same dataset, density and seed (the same audit
    records): a paired bootstrap of Δ strongest AUC with its verdict (metrics.paired_difference)."""
    from .baseline import paired_comparison

    base = {(r["dataset"], r["density"], r["seed"]): r for r in rows if r["method"] == baseline and "auc" in r}
    for r in rows:
        b = base.get((r["dataset"], r["density"], r["seed"]))
        if b is None or b is r or "auc" not in r or "vs_base_verdict" in r:
            continue
        try:  # the same comparison a run makes with its own baseline
            st = paired_comparison(out / r["run_dir"], out / b["run_dir"], n_bootstrap=1000, seed=r["seed"])[
                "strongest"
            ]
        except (OSError, ValueError, SafeCompressError):  # missing scores, or audited on other records
            continue
        r.update(
            {
                "vs_base": baseline,
                "vs_base_delta_auc": st["delta_auc"],
                "vs_base_lo": st["delta_auc_ci"][0],
                "vs_base_hi": st["delta_auc_ci"][1],
                "vs_base_verdict": st["auc_verdict"],
            }
        )


def knob_family(method: str) -> str:
    """The family of a bench method: its name without the ``(knob=value)`` part, so
    ``rigl+hamp(g=0.99)`` and ``rigl+hamp`` are points of one frontier."""
    return method.split("(", 1)[0]


# families whose every variant (any suffix) also forms one frontier: "all SafeCompress configurations"
UNIONS = ("safecompress", "rigl_select")


# the leakage measures a frontier can be drawn against (row key, what it is): the main table uses the first;
# the worst-case section the canary ones (the audit's mislabelled records, Aerni et al. 2024)
WORST_CASE = (
    ("canary_auc", "canary AUC"),
    ("canary_tpr", "canary TPR at the lowest FPR they resolve"),
)


def _family_hypervolumes(
    rows: list[dict[str, Any]],
    fams: dict[str, list[dict[str, Any]]],
    dataset: str,
    density: float,
    acc_ref: float,
    metric: str,
) -> tuple[dict[str, str], dict[str, dict[int, float]]]:
    """Per family: its hypervolume against leakage ``metric`` (points = its methods' seed means) as text; when
    every point ran the same several seeds, the mean of the per-seed hypervolumes with its interval over seeds
    first, and those per-seed hypervolumes."""
    from .frontier import hypervolume

    text: dict[str, str] = {}
    per_seed: dict[str, dict[int, float]] = {}
    for fam, members in sorted(fams.items()):
        if any(a.get(metric) is None for a in members):
            continue
        names = {a["method"] for a in members}
        mine = [r for r in rows if r["dataset"] == dataset and r["method"] in names and r["density"] == density]
        seed_sets = {tuple(sorted(r["seed"] for r in mine if r["method"] == m)) for m in names}
        text[fam] = f"{hypervolume([(a['accuracy'], a[metric]) for a in members], acc_ref, 1.0):.4f}"
        if len(seed_sets) == 1 and len(next(iter(seed_sets))) > 1 and all(r.get(metric) is not None for r in mine):
            per_seed[fam] = {
                s: hypervolume([(r["test_accuracy"], r[metric]) for r in mine if r["seed"] == s], acc_ref, 1.0)
                for s in next(iter(seed_sets))
            }
            mean, lo, hi = _interval(list(per_seed[fam].values()))
            # the interval is about the per-seed hypervolumes: show their mean beside it (the hypervolume of the
            # seed-mean points is another number, which can even fall outside that interval)
            text[fam] = (
                f"{mean:.4f} [{lo:.4f}, {hi:.4f}] over {len(per_seed[fam])} seeds "
                f"(of the seed-mean points: {text[fam]})"
            )
    return text, per_seed


def frontier_document(aggs: list[dict[str, Any]], rows: list[dict[str, Any]], baseline: str = "rigl") -> Document:
    """Per panel: each method family's frontier (points = the family's methods, averaged over their
    seeds) — its hypervolume in a fixed box (accuracy ≥ baseline − 10 pt, AUC ≤ 1; with an interval over
    seeds when every point has the same several seeds), and the least strongest-attack AUC it reaches at
    accuracy ≥ the baseline's − 1 pt and − 3 pt, with (AUC − 0.5) as a fraction of the baseline's where
    that is significant (the baseline's AUC interval excludes 0.5). Rows "X (all variants)" pool every
    method whose name starts with X. Then the same hypervolumes with the worst case (the canaries) as the
    leakage, where the audit planted canaries."""
    from .frontier import least_leakage_at

    doc = Document()
    for dataset, density, panel in _panels(aggs):
        ref = next((a for a in panel if a["method"] == baseline and "auc" in a), None)
        if ref is None:
            continue
        acc_ref = ref["accuracy"] - 0.10
        audited = [a for a in panel if "auc" in a and a["density"] < 1.0]
        fams: dict[str, list[dict[str, Any]]] = {}
        for a in audited:
            fams.setdefault(knob_family(a["method"]), []).append(a)
        for prefix in UNIONS:
            pooled = [a for a in audited if a["method"].startswith(prefix)]
            if len({knob_family(a["method"]) for a in pooled}) > 1:
                fams[f"{prefix} (all variants)"] = pooled
        sig = ref["auc_lo"] > 0.5
        doc.h2(f"Frontiers: {dataset}, density {density:g}")
        doc.p(
            f"Reference box: accuracy ≥ {acc_ref:.4f} ({baseline} − 10 pt), AUC ≤ 1. Leakage = strongest attack "
            f"AUC. {baseline}: accuracy {ref['accuracy']:.4f}, AUC {ref['auc']:.3f} [{ref['auc_lo']:.3f}, "
            f"{ref['auc_hi']:.3f}]" + ("" if sig else " — its interval contains 0.5, so no ratio is printed") + ". "
            "Points are seed means: compare families run on the same seeds (the paired table below), not a "
            "one-seed family with a several-seed one."
        )
        hv_text, per_seed_hv = _family_hypervolumes(rows, fams, dataset, density, acc_ref, "auc")
        table = []
        for fam, members in sorted(fams.items()):
            pts = [(a["accuracy"], a["auc"]) for a in members]
            cells = []
            for drop in (0.01, 0.03):
                least = least_leakage_at(pts, ref["accuracy"] - drop)
                if least is None:
                    cells += ["not reached", "—"]
                else:
                    ratio = f"{(least - 0.5) / (ref['auc'] - 0.5):.2f}" if sig else "—"
                    cells += [f"{least:.3f}", ratio]
            names = {a["method"] for a in members}
            mine = [r for r in rows if r["dataset"] == dataset and r["density"] == density]
            seeds = sorted({r["seed"] for r in mine if r["method"] in names})
            table.append([fam, str(len(members)), ",".join(map(str, seeds)), hv_text[fam], *cells])
        doc.table(
            [
                "family",
                "points",
                "seeds",
                "hypervolume",
                "least AUC at acc ≥ base − 1 pt",
                "(AUC−0.5)/base",
                "least AUC at acc ≥ base − 3 pt",
                "(AUC−0.5)/base",
            ],
            table,
        )
        doc.extend(_paired_hypervolume(per_seed_hv))
        doc.extend(_worst_case_frontiers(rows, fams, dataset, density, acc_ref))
    return doc


def _worst_case_frontiers(
    rows: list[dict[str, Any]], fams: dict[str, list[dict[str, Any]]], dataset: str, density: float, acc_ref: float
) -> Document:
    """The frontiers again with the canaries' leakage (the worst case) instead of the strongest attack's AUC:
    per family its hypervolume for each canary measure, then the paired-by-seed differences."""
    doc = Document()
    measured = [(m, what, *_family_hypervolumes(rows, fams, dataset, density, acc_ref, m)) for m, what in WORST_CASE]
    measured = [x for x in measured if x[2]]
    if not measured:
        return doc
    doc.h2(f"Worst case: {dataset}, density {density:g}")
    doc.p(
        "The same frontiers with the canaries' leakage in place of the strongest attack's AUC (same box: accuracy "
        f"≥ {acc_ref:.4f}, leakage ≤ 1): "
        + "; ".join(f"{m} = {what}" for m, what, _, _ in measured)
        + ". Canaries are mislabelled population records, half inserted in training: the records a model "
        "memorises most."
    )
    fam_names = sorted({f for _, _, text, _ in measured for f in text})
    doc.table(
        ["family", *[f"hypervolume ({m})" for m, _, _, _ in measured]],
        [[f, *[text.get(f, "—") for _, _, text, _ in measured]] for f in fam_names],
    )
    for m, _, _, per_seed in measured:
        doc.extend(_paired_hypervolume(per_seed, f"leakage = {m}"))
    return doc


def _paired_hypervolume(per_seed_hv: dict[str, dict[int, float]], leakage: str = "") -> Document:
    """Hypervolume of each SafeCompress / rigl_select family minus that of every other family, paired by
    seed over the seeds both were run with (at least two; a t-interval over the per-seed differences):
    whether one frontier beats another beyond seed noise. When the two families' seeds differ, the seeds
    column names the common ones."""

    def common(a: str, b: str) -> list[int]:
        return sorted(set(per_seed_hv[a]) & set(per_seed_hv[b]))

    pairs = [
        (a, b)
        for a in sorted(per_seed_hv)
        if a.startswith(UNIONS) and "all variants" not in a
        for b in sorted(per_seed_hv)
        if b != a and "all variants" not in b and len(common(a, b)) >= 2
    ]
    doc = Document()
    if not pairs:
        return doc
    table = []
    for a, b in pairs:
        seeds = common(a, b)
        diffs = [per_seed_hv[a][s] - per_seed_hv[b][s] for s in seeds]
        mean, lo, hi = _interval(diffs)
        verdict = "larger" if lo > 0 else "smaller" if hi < 0 else "no detectable difference"
        same = set(per_seed_hv[a]) == set(per_seed_hv[b])
        shown = str(len(diffs)) if same else f"{len(diffs)} (common: {', '.join(map(str, seeds))})"
        table.append([a, b, shown, f"{mean:+.4f} [{lo:+.4f}, {hi:+.4f}]", verdict])
    doc.p(
        "Paired by seed"
        + (f" ({leakage})" if leakage else "")
        + ": hypervolume of the first family minus the second's (95 % t-interval over seeds)."
    )
    return doc.table(["family", "minus", "seeds", "Δ hypervolume [CI]", "verdict"], table)


def write_results(suite: Suite, rows: list[dict[str, Any]], out: Path) -> None:
    out = Path(out)
    add_paired(rows, out)
    atomic_write_json(out / "results.json", rows)
    buf = io.StringIO()
    keys = list(
        dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, (dict, list)))
    )  # nested: JSON only
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    write_summaries(suite, rows, out)


def write_summaries(suite: Suite, rows: list[dict[str, Any]], out: Path) -> None:
    """summary.md, summary.html and frontier.png from result rows (what results.json holds): a bench
    folder's summaries can be rewritten after a change to how they are presented without its cells."""
    out = Path(out)
    atomic_write_text(out / "summary.md", summary_markdown(suite, rows))
    atomic_write_text(out / "summary.html", summary_html(suite, rows))
    uri = _pareto_png(aggregate(rows))
    if uri:  # the frontier plot also as a file, for READMEs and notes
        atomic_write_bytes(out / "frontier.png", base64.b64decode(uri.split(",", 1)[1]))
