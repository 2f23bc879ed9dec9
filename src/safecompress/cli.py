"""Command-line interface. The only module that reads argv and sets up logging.

Errors the user can fix exit with code 2 and a one-paragraph message, never a traceback.
"""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import SafeCompressError
from .fileio import STORAGE_ERRNOS, storage_error
from .metrics import format_rate
from .report import beyond
from .report.schema import RunReport

TRUST_HELP = (
    "Allow building a model from a factory ('package.module:function') named by the run's files: that "
    "imports and runs its code. Only for folders and files you trust."
)

out_console = Console()
err_console = Console(stderr=True)
CONTEXT = {"help_option_names": ["-h", "--help"]}


def _setup_logging(verbose: bool) -> None:
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    pkg = logging.getLogger("safecompress")
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    pkg.handlers[:] = [handler]
    pkg.setLevel(logging.INFO)
    pkg.propagate = False


def executor_options(fn):
    """--executor / --address / --workers: where fanned-out work (reference models, bench cells) runs."""
    fn = click.option(
        "--workers",
        type=click.IntRange(1),
        default=2,
        show_default=True,
        help="Workers of the local Dask cluster (without --address).",
    )(fn)
    fn = click.option(
        "--address", help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster on 127.0.0.1)."
    )(fn)
    fn = click.option(
        "--executor",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        help="Run reference-model training and bench cells here (local) or on Dask.",
    )(fn)
    return fn


def _executor(name: str, address: str | None, workers: int):
    from .executor import make_executor

    if address and name != "dask":
        raise SafeCompressError("--address needs --executor dask")
    return make_executor(name, address=address, workers=workers)


def _track_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """--track/--to: checked while the options are parsed, so an unknown tracker or a missing optional
    package stops the command before it trains or writes anything."""
    from .track import parse_trackers

    return parse_trackers(value)


def track_options(fn=None, *, flag: str = "--track", required: bool = False):
    """--track (or --to) NAME[,NAME], --track-uri, --track-experiment: log the finished run folder to
    experiment trackers (the optional ``track`` extra)."""

    def decorate(fn):
        fn = click.option(
            "--track-experiment",
            default="safecompress",
            show_default=True,
            help="Experiment name (MLflow experiment; TensorBoard: a sub-folder of the log dir).",
        )(fn)
        fn = click.option(
            "--track-uri",
            help="Where to log. mlflow: a tracking URI (http://host:5000, sqlite:///mlflow.db) or a folder "
            "(default ./mlruns in the current directory, a local file store: `mlflow ui --backend-store-uri "
            "./mlruns`). tensorboard: the log dir (default ./runs/tensorboard: `tensorboard --logdir "
            "runs/tensorboard`).",
        )(fn)
        fn = click.option(
            flag,
            "trackers",
            multiple=True,
            required=required,
            callback=_track_names,
            metavar="mlflow|tensorboard",
            help="Log the finished run folder to this experiment tracker: params, per-epoch and per-round "
            "metrics, audit numbers, timing, compression, tags (and report.html etc. as MLflow artifacts). "
            "Repeatable or comma-separated. Needs: pip install 'safecompress[track]'.",
        )(fn)
        return fn

    return decorate(fn) if fn is not None else decorate


def _check_track_args(trackers: list[str], uri: str | None) -> None:
    if uri is not None and not trackers:
        raise SafeCompressError("--track-uri needs --track mlflow or --track tensorboard")
    if uri is not None and len(trackers) > 1:
        raise SafeCompressError(
            "--track-uri names one location but several trackers were asked for; log to each tracker "
            "separately (`safecompress track RUN_DIR --to NAME --track-uri ...`) or drop --track-uri"
        )


def _track_finished(run_dir: Path, trackers: list[str], uri: str | None, experiment: str, what: str) -> None:
    """Log the finished ``run_dir`` to ``trackers``. A failure leaves the folder as it is (it is only read)
    and exits 2 with a message saying the {what} is complete and how to log it again."""
    if not trackers:
        return
    from .track import track_run

    again = f"safecompress track {run_dir} --to {','.join(trackers)}"
    if uri is not None:
        again += f" --track-uri {uri}"
    if experiment != "safecompress":
        again += f" --track-experiment {experiment}"
    try:
        lines = track_run(run_dir, trackers, uri, experiment)
    except SafeCompressError as exc:
        raise SafeCompressError(
            f"the {what} itself is complete and its folder {run_dir} is intact, but tracking failed: {exc}. "
            f"Fix that, then log it again with: {again}"
        ) from exc
    for line in lines:
        out_console.print(f"tracked: {line}", highlight=False, soft_wrap=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="safecompress")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """safecompress: compress neural networks into sparse models that stay accurate and resist
    privacy attacks (test-driven sparse training)."""
    _setup_logging(verbose)


@cli.command(context_settings=CONTEXT)
@click.option("-c", "--config", "config_file", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "-p",
    "--preset",
    help="Preset: default (used when neither --config nor --preset is given: "
    "SafeCompress d=0.05 on purchase100-synth beside RigL, both audited: ~2.5 min on 2 idle cores), "
    "ci (seconds), cpu (minutes on 2 cores), full (paper scale, GPU).",
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Dotted override, e.g. --set model.width=0.5 (repeatable).",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Run folder (default runs/<method>-<dataset>-seed<seed>)."
)
@click.option("--resume", is_flag=True, help="Continue the run in --out (or just report it if it is complete).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out once the new run has succeeded.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder holding dataset files (= data.data_dir).")
@click.option("--download", is_flag=True, help="Allow downloading the dataset from its canonical location.")
@executor_options
@track_options
def run(
    config_file,
    preset,
    overrides,
    out,
    resume,
    overwrite,
    data_dir,
    download,
    executor,
    address,
    workers,
    trackers,
    track_uri,
    track_experiment,
) -> None:
    """Train (and compress) a model as configured, and write its run folder."""
    from .config import load_config
    from .progress import RichProgress
    from .runner import run_experiment

    _check_track_args(trackers, track_uri)
    if resume and overwrite:
        raise SafeCompressError("--resume and --overwrite exclude each other; pick one")
    extra = list(overrides)
    if data_dir is not None:
        extra.append(f"data.data_dir={data_dir}")
    if download:
        extra.append("data.download=true")
    if config_file is None and preset is None:
        preset = "default"
    cfg = load_config(config_file, preset, extra)
    if out is None:
        out = Path("runs") / f"{cfg.method.name}-{cfg.data.name}-seed{cfg.seed}"
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    bar = RichProgress(err_console, f"{cfg.method.name} on {cfg.data.name}")
    with _executor(executor, address, workers) as ex:
        result = run_experiment(cfg, out, mode, callbacks=[bar], executor=ex)
    rep = RunReport.model_validate(result.report)
    base = None if result.baseline is None else RunReport.model_validate(result.baseline.report)
    state = "already complete" if result.resumed_complete else "done"
    out_console.print(
        f"{state}: test accuracy {rep.task.accuracy:.4f} (train {rep.task.train_accuracy:.4f}); "
        f"report: {result.run_dir / 'report.json'}",
        highlight=False,
        soft_wrap=True,
    )
    if base is not None or rep.audit is not None:
        out_console.print(_summary_table(rep, base))
    from .report.verdict import won_and_lost

    sentence = won_and_lost(rep, base)
    if sentence:
        out_console.print(sentence, highlight=False, soft_wrap=True)
    _track_finished(result.run_dir, trackers, track_uri, track_experiment, "run")


def _summary_table(rep: RunReport, baseline: RunReport | None = None) -> Table:
    """Headline numbers of a run (and of its baseline run) side by side: the rows of report.html's headline."""
    from .report.headline import side_by_side

    runs = side_by_side(rep, baseline)
    table = Table(title=f"{rep.dataset}: task accuracy and the independent audit (audit data only)")
    table.add_column("")
    for name, _ in runs:
        table.add_column(name, justify="right")
    columns = [{row.label: row.plain() for row in rows} for _, rows in runs]
    for label in columns[0]:
        table.add_row(escape(label), *(escape(col.get(label, "—")) for col in columns))
    return table


def _suite_names() -> tuple[str, ...]:
    from .benchmark import SUITES

    return SUITES


@cli.command("bench", context_settings=CONTEXT)
@click.option("--suite", required=True, help=f"A built-in suite ({', '.join(_suite_names())}) or a suite YAML file.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Bench folder (resumable).")
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override applied to every cell, e.g. --set train.epochs=5 (repeatable).",
)
@click.option(
    "--summary-only",
    is_flag=True,
    help="Train nothing: write the tables from the cells already finished (cells computed by other code "
    "are listed as stale and left out).",
)
@executor_options
def bench_cmd(suite, out, overrides, summary_only, executor, address, workers) -> None:
    """Run a datasets × densities × methods × seeds matrix; finished cells are skipped on a rerun."""
    from .benchmark import expand, load_suite, run_bench, summarize_finished
    from .config import deep_merge, parse_override

    s = load_suite(suite)
    extra: dict = {}
    for item in overrides:
        extra = deep_merge(extra, parse_override(item))
    if summary_only:
        used, stale, missing = summarize_finished(s, out, extra)
        out_console.print(
            f"{used} finished cells summarised; {len(stale)} stale (other code): {', '.join(stale) or 'none'}; "
            f"{len(missing)} not run: {', '.join(missing) or 'none'}",
            highlight=False,
            soft_wrap=True,
        )
        out_console.print(f"summary: {out / 'summary.md'} and {out / 'summary.html'}", highlight=False)
        return
    total = len(expand(s, extra))
    done = [0]

    def on_cell(cell, row, cached):
        done[0] += 1
        auc = f"AUC {row['auc']:.3f} ({row['strongest_attack']})" if "auc" in row else "not audited"
        out_console.print(
            f"[{done[0]}/{total}] {cell.folder}: acc {row['test_accuracy']:.4f}, {auc}"
            + (" (already done)" if cached else ""),
            highlight=False,
            soft_wrap=True,
        )

    with _executor(executor, address, workers) as ex:
        run_bench(s, out, extra, on_cell, ex)
    out_console.print(f"summary: {out / 'summary.md'} and {out / 'summary.html'}", highlight=False)


@cli.group("list", context_settings=CONTEXT)
def list_group() -> None:
    """List what is available: datasets, models, methods, attacks, defences, presets, suites."""


def _listing(fn):
    """A `list` subcommand: ``fn(**options)`` returns (title, columns, rows); printed as a table, or with
    --json as a JSON list of objects (one per row, keyed by column) for scripts."""
    import functools
    import json

    @click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead of a table.")
    @functools.wraps(fn)
    def command(as_json: bool, **options) -> None:
        title, columns, rows, *extra = fn(**options)
        if as_json:
            keys = [_json_key(c) for c in columns]
            click.echo(json.dumps([dict(zip(keys, row)) for row in rows], indent=2))
            return
        # an optional third value: (columns shown in the table, lines printed under it) — long values such
        # as paths go under the table, where they do not fold a character per line in a narrow terminal
        shown, footer = extra[0] if extra else (columns, [])
        table = Table(title=title)
        for col in shown:
            table.add_column(col, no_wrap=col in ("name", "kind", "shape", "classes", "family", "access", "here?"))
        for row in rows:
            values = dict(zip(columns, row))
            table.add_row(*(escape(str(values[c])) for c in shown))
        out_console.print(table)
        for line in footer:
            out_console.print(escape(line), highlight=False, soft_wrap=True)

    return command


def _json_key(column: str) -> str:
    """A table heading as a JSON key: "on this machine?" -> "on_this_machine", "parameters (defaults)" ->
    "parameters_defaults"."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def _rst_to_text(text: str) -> str:
    """One paragraph of a docstring without reStructuredText markup (``x`` -> x, :func:`a.b` -> b)."""
    import re

    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = text.replace("``", "")
    return " ".join(text.split())


def _availability(cls, ctx) -> tuple[str, str]:
    """(on this machine?, where) of a dataset, in words a user acts on."""
    if cls.__module__.endswith(".byod"):  # npz / csv read the user's own file (data.path)
        return "bring your own", "data.path=FILE"
    present, where = cls().availability(ctx)
    if not present:
        return "no", "not found: " + _availability_hint()
    return ("generated" if cls.synthetic else "yes"), where


def _availability_hint() -> str:
    return "put its files in a folder named by --data-dir (data.data_dir), or pass --download where it allows it"


@list_group.command("datasets", context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Also look in this folder.")
@click.option("-l", "--long", "long_", is_flag=True, help="Add each dataset's description.")
@_listing
def list_datasets(data_dir, long_):
    """Datasets: name, kind, shape, classes, whether (and where) they are on this machine, and where real
    data comes from."""
    from .data import DATASETS, DataContext

    ctx = DataContext(data_dir=data_dir)
    columns = ["name", "kind", "shape", "classes", "here?", "where", "description", "provenance"]
    rows = []
    for name, cls in DATASETS.items():
        shape = "x".join(str(s) for s in cls.shape) if cls.shape else "from files"
        classes = str(cls.n_classes) if cls.n_classes else "from files"
        rows.append([name, cls.kind, shape, classes, *_availability(cls, ctx), cls.description, cls.provenance])
    shown = columns[:5] + (["description"] if long_ else [])
    footer = [f"{row[0]}: {row[5]}" for row in rows if row[4] == "yes"]
    footer += [f"{row[0]} comes from: {row[7]}" for row in rows if row[7]]
    footer += ["no: " + _availability_hint(), "bring your own: data.name=npz or csv with data.path=FILE"]
    return "datasets", columns, rows, (shown, footer)


@list_group.command("models", context_settings=CONTEXT)
@_listing
def list_models():
    """Models: name, which data they take, description."""
    from .models import MODELS

    return (
        "models",
        ["name", "data", "description"],
        [[name, ", ".join(entry.kinds), entry.description] for name, entry in MODELS.items()],
    )


@list_group.command("attacks", context_settings=CONTEXT)
@_listing
def list_attacks():
    """Privacy attacks usable in audit.attacks / --attacks and safecompress.simulate."""
    from .attacks import ATTACKS
    from .config import DEFAULT_ATTACKS

    rows = [
        [
            name,
            cls.family,
            "white" if cls.white_box else "black",
            "all" if cls.needs_references < 0 else str(cls.needs_references),
            "sensitive" if cls.needs_sensitive else "-",
            "yes" if cls.simulatable else "-",
            "yes" if name in DEFAULT_ATTACKS else "-",
            cls.citation,
        ]
        for name, cls in ATTACKS.items()
    ]
    columns = ["name", "family", "access", "references", "needs", "simulate", "default", "paper"]
    off = [row[0] for row in rows if row[6] == "-"]
    footer = [
        "default: run by the audit unless audit.attacks / --attacks lists others; off by default (costly or "
        "simulator-only), run when listed, e.g. --attacks loss,extraction: " + (", ".join(off) or "none")
    ]
    # the table leaves "default" to the line under it (the citations need the width); --json has it per attack
    return "attacks", columns, rows, ([c for c in columns if c != "default"], footer)


@list_group.command("methods", context_settings=CONTEXT)
@_listing
def list_methods():
    """Compression methods selectable as method.name."""
    from .methods import METHODS
    from .params import param_defaults

    rows = [
        [
            name,
            ", ".join(f"{k}={v}" for k, v in param_defaults(cls.Params).items()) or "-",
            _rst_to_text((sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]),
        ]
        for name, cls in METHODS.items()
    ]
    return "methods", ["name", "parameters (defaults)", "description"], rows


@list_group.command("defences", context_settings=CONTEXT)
@_listing
def list_defences():
    """Privacy defences selectable as defence.name (combinable with any method)."""
    from .defences import DEFENCES

    rows = [
        [name, ", ".join(f"{k}={v}" for k, v in cls.defaults.items()) or "-", cls.description]
        for name, cls in DEFENCES.items()
    ]
    return "defences", ["name", "parameters (defaults)", "description"], rows


list_group.add_command(list_defences, "defenses")  # the US spelling is accepted too


def _yaml_comment(text: str) -> str:
    """The first sentence of the leading '#' comment of a preset or suite file (the file says the rest)."""
    import re

    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    paragraph = " ".join(" ".join(lines).split())
    return re.split(r"(?<=[.;])\s+(?=[A-Z])", paragraph, maxsplit=1)[0]


@list_group.command("presets", context_settings=CONTEXT)
@_listing
def list_presets():
    """Presets selectable with `run --preset` (default is used when neither --config nor --preset is given)."""
    from importlib import resources

    from .config import PRESETS

    folder = resources.files("safecompress.presets")
    return (
        "presets",
        ["name", "description"],
        [[name, _yaml_comment(folder.joinpath(f"{name}.yaml").read_text())] for name in PRESETS],
    )


@list_group.command("suites", context_settings=CONTEXT)
@_listing
def list_suites():
    """Built-in benchmark suites for `safecompress bench --suite`."""
    from importlib import resources

    from .benchmark import SUITES, expand, load_suite

    folder = resources.files("safecompress.suites")
    return (
        "suites",
        ["name", "cells", "description"],
        [
            [name, str(len(expand(load_suite(name)))), _yaml_comment(folder.joinpath(f"{name}.yaml").read_text())]
            for name in SUITES
        ],
    )


# options of `audit --model/--scores` that a run folder's audit refuses
OUTSIDE_ONLY = ("members", "nonmembers", "population", "recipe", "out", "overwrite")


@cli.command("audit", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--attacks", help="Comma-separated attacks (default: the run's audit.attacks).")
@click.option(
    "--refs",
    type=click.IntRange(1),
    help="Reference/shadow models (default: the run's audit.refs; with --recipe: the recipe's audit.refs).",
)
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    help="Another audited run on the same split: write per-sample risk changes to compare.json.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the run's earlier audit with this one. Without it, the attacks audited now replace only "
    "their own earlier results and the others are kept (the strongest attack etc. recomputed over all).",
)
@click.option("--trust-model-code", is_flag=True, help=TRUST_HELP)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Instead of RUN_DIR: a model trained elsewhere (ONNX, torch.export .pt2, TorchScript, safecompress "
    ".safetensors), audited with the attacks that need no reference model (all of them with --recipe).",
)
@click.option(
    "--scores",
    "scores_file",
    type=click.Path(path_type=Path),
    help="Instead of RUN_DIR or --model: an .npz of precomputed outputs (members_logits or members_probs, "
    "members_y, nonmembers_logits or nonmembers_probs, nonmembers_y; optional population_*).",
)
@click.option("--members", type=click.Path(path_type=Path), help="With --model: training records (.npz X,y or .csv).")
@click.option(
    "--nonmembers", type=click.Path(path_type=Path), help="With --model: records the model never saw (.npz or .csv)."
)
@click.option(
    "--population",
    type=click.Path(path_type=Path),
    help="With --model: more never-seen records, the attacker's known non-members (enables calibrated, inversion).",
)
@click.option(
    "--recipe",
    type=click.Path(path_type=Path),
    help="With --model and --population: the model's training recipe, a config YAML as `run --config` reads "
    "(model.name: a zoo model or 'package.module:factory'; train, method, sparse, audit.refs); trains reference "
    "models on the population so lira, rmia, nn, top3, shadow and whitebox run too.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="With --model/--scores: output folder (default audit-NAME)."
)
@click.option("--overwrite", is_flag=True, help="With --model/--scores: replace the audit files in --out.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --model/--scores: the attacks' seed.")
@executor_options
@track_options
def audit_cmd(
    run_dir,
    attacks,
    refs,
    compare,
    replace,
    trust_model_code,
    model,
    scores_file,
    members,
    nonmembers,
    population,
    recipe,
    out,
    overwrite,
    seed,
    executor,
    address,
    workers,
    trackers,
    track_uri,
    track_experiment,
) -> None:
    """Audit a finished run (RUN_DIR) with membership-inference attacks (writes audit.json, scores.npz, roc.png),
    or a model trained elsewhere (--model, with --members and --nonmembers) or its outputs (--scores).

    Re-auditing a run with some attacks merges them into its earlier audit; attacks resting on reference models
    merge only with attacks resting on as many (--refs defaults to their number), else the command stops and
    --replace discards the earlier audit instead."""
    _check_track_args(trackers, track_uri)
    names = [a.strip() for a in attacks.split(",") if a.strip()] if attacks else None
    if model is not None or scores_file is not None:
        if replace:
            raise SafeCompressError(
                "--replace applies to re-auditing a run folder (RUN_DIR); an audit of an outside model writes "
                "--out, which --overwrite replaces"
            )
        if trackers:
            raise SafeCompressError(
                "--track logs run folders; an audit of an outside model is not one yet: drop --track (its "
                "report.json, audit.json and report.html are in --out)"
            )
        _audit_outside(
            run_dir,
            names,
            refs,
            compare,
            model,
            scores_file,
            members,
            nonmembers,
            population,
            out,
            overwrite,
            seed,
            recipe,
            trust_model_code,
        )
        return
    values = (members, nonmembers, population, recipe, out, overwrite)
    given = [f"--{o}" for o, v in zip(OUTSIDE_ONLY, values) if v]
    if run_dir is None or given:
        raise SafeCompressError(
            "give RUN_DIR (a finished run folder) or --model FILE --members M.npz --nonmembers N.npz"
            + (f"; {', '.join(given)} only apply with --model or --scores" if given else "")
        )
    _audit_run(run_dir, names, refs, compare, replace, trust_model_code, executor, address, workers)
    _track_finished(run_dir, trackers, track_uri, track_experiment, "audit")


def _audit_run(run_dir, names, refs, compare, replace, trust_model_code, executor, address, workers) -> None:
    from .report.headline import audited_with
    from .run_audit import audit_run_folder

    with _executor(executor, address, workers) as ex:
        report = audit_run_folder(run_dir, names, refs, compare, ex, trust_code=trust_model_code, replace=replace)
    audit = RunReport.model_validate(report).audit
    table = Table(title=f"audit of {run_dir}")
    for col in ("attack", "AUC (95% CI)", "TPR@0.1%", "TPR@1%", "TPR@10%", "bal. acc", "s"):
        table.add_column(col, no_wrap=True)
    for name, m in audit.attacks.items():
        ci = m.auc_ci or [float("nan")] * 2
        t = m.tpr_at_fpr
        table.add_row(
            name,
            f"{m.auc:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]",
            format_rate(t["0.001"]),
            format_rate(t["0.01"]),
            format_rate(t["0.1"]),
            f"{m.balanced_accuracy:.3f}",
            f"{m.wall_s:.1f}",
        )
    out_console.print(table)
    worst = audit.worst
    out_console.print(f"strongest: {worst.attack} (AUC {worst.auc:.3f}); files in {run_dir}", highlight=False)
    out_console.print(f"audited with: {audited_with(audit).plain()}", highlight=False, soft_wrap=True)
    for label, line in beyond.lines(audit).items():
        if line != "not run":
            out_console.print(f"{label}: {line}", highlight=False, soft_wrap=True)


@cli.command("track", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@track_options(flag="--to", required=True)
def track_cmd(run_dir, trackers, track_uri, track_experiment) -> None:
    """Log a finished run folder (any, old ones too) to MLflow or TensorBoard; the folder is only read."""
    from .track import track_run

    _check_track_args(trackers, track_uri)
    for line in track_run(run_dir, trackers, track_uri, track_experiment):
        out_console.print(f"tracked: {line}", highlight=False, soft_wrap=True)


EXPORT_FORMATS = ("packed", "dense", "structured", "torch-prune", "torchscript", "pt2", "onnx")


def _audit_outside(
    run_dir, names, refs, compare, model, scores, members, nonmembers, population, out, overwrite, seed, recipe, trust
) -> None:
    """``safecompress audit --model FILE`` / ``--scores FILE``: everything is checked before any file is written."""
    from .outside.audit import audit, audit_scores, check_out

    if scores is not None and recipe is not None:
        raise SafeCompressError(
            "--recipe: not with --scores. A recipe trains reference models whose outputs are compared with the "
            "audited model's on the same records, and precomputed outputs cannot be queried further; audit the "
            "model file itself (--model FILE --members M --nonmembers N --population P --recipe CFG)"
        )
    wrong = [
        flag
        for flag, value in (
            ("RUN_DIR", run_dir),
            ("--compare", compare),
            ("--model and --scores together", model is not None and scores is not None),
        )
        if value
    ]
    if scores is not None:
        wrong += [
            f"--{o}" for o, v in (("members", members), ("nonmembers", nonmembers), ("population", population)) if v
        ]
    if wrong:
        raise SafeCompressError(
            f"{', '.join(wrong)}: not with --model/--scores (an outside audit is of one model or its outputs; "
            "--scores holds every part's outputs itself)"
        )
    if refs is not None and recipe is None:
        raise SafeCompressError(
            "--refs: reference models of an outside model are trained only from its recipe; add --recipe CFG "
            "(and --population P), or drop --refs"
        )
    if recipe is not None and population is None:
        raise SafeCompressError(
            "--recipe needs --population P.npz: the reference models train on records the audited model never "
            "saw (never on --members or --nonmembers)"
        )
    source = model if model is not None else scores
    out = out or Path(f"audit-{source.stem}")
    check_out(out, overwrite)
    if model is not None:
        if members is None or nonmembers is None:
            raise SafeCompressError("--model needs --members M.npz and --nonmembers N.npz (records with X and y)")
        result = audit(model, members, nonmembers, population, names, seed, recipe=recipe, refs=refs, trust_code=trust)
    else:
        result = audit_scores(scores, names, seed)
    result.save(out, overwrite)
    table = Table(title=f"audit of {source} ({result.model['format']})")
    for col in ("attack", "AUC (95% CI)", "TPR@0.1%", "TPR@1%", "TPR@10%", "s"):
        table.add_column(col, no_wrap=True)
    for name, m in result.result.report["attacks"].items():
        ci = m.get("auc_ci") or [float("nan")] * 2
        t = m["tpr_at_fpr"]
        table.add_row(
            name,
            f"{m['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]",
            format_rate(t["0.001"]),
            format_rate(t["0.01"]),
            format_rate(t["0.1"]),
            f"{m['wall_s']:.1f}",
        )
    out_console.print(table)
    worst = result.result.report["worst"]
    out_console.print(f"strongest: {worst['attack']} (AUC {worst['auc']:.3f}); files in {out}", highlight=False)
    if result.recipe is not None and result.recipe["references"]:
        r = result.recipe
        out_console.print(
            f"reference models: {r['references']}, trained with the recipe {r['file']} (model {r['model']}, method "
            f"{r['method']}) on the {r['trained_on']['population']} population records only",
            highlight=False,
            soft_wrap=True,
        )
    for label, line in beyond.lines(result.result.report).items():
        if line != "not run":
            out_console.print(f"{label}: {line}", highlight=False, soft_wrap=True)
    for name, reason in result.skipped.items():
        out_console.print(f"skipped {name}: {reason}", highlight=False, soft_wrap=True)


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="packed",
    show_default=True,
    help="packed: safecompress's own sparse file (see --values); dense: plain safetensors state dict; "
    "structured: the smaller dense network of a sparse.structure=channel run (safetensors); "
    "torch-prune: safetensors with weight_orig + weight_mask as torch.nn.utils.prune names them; "
    "torchscript: torch.jit.trace; pt2: torch.export; onnx: ONNX checked with onnxruntime "
    "(needs pip install 'safecompress[export]').",
)
@click.option(
    "--values",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default=None,
    help="Value type of the stored non-zeros of a packed file (int8: one fp32 scale per tensor) "
    "[default: fp16]; only with --format packed.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    help="Output file (default in RUN_DIR: model-VALUES.safetensors, model-dense.safetensors, "
    "model-structured.safetensors, model-torch-prune.safetensors, model-torchscript.pt, model.pt2 or model.onnx); "
    "an existing file is replaced.",
)
@click.option("--trust-model-code", is_flag=True, help=TRUST_HELP)
def export(run_dir, fmt, values, out, trust_model_code) -> None:
    """Write a run's model as another packed variant (fp32, fp16 or int8 values) or for another runtime."""
    src = run_dir / "model.safetensors"
    if not src.is_file():
        raise SafeCompressError(f"{run_dir} holds no model.safetensors; pass the folder of a finished run")
    if fmt != "packed" and values is not None:
        raise SafeCompressError(f"--values applies to --format packed only; drop it for --format {fmt}")
    if fmt == "packed":
        values = values or "fp16"
        out = out or run_dir / f"model-{values}.safetensors"
    else:
        from .export import FORMATS, require

        entry = FORMATS.get(fmt)
        require(fmt, entry.requires)
        out = out or run_dir / entry.filename
    if out.is_dir():
        raise SafeCompressError(f"--out {out} is a folder; give the name of the file to write")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise SafeCompressError(f"--out {out}: {above} is not a folder; choose a path inside a folder")
    if out.exists() and out.resolve() == src.resolve():
        raise SafeCompressError(f"--out {out} is the run's own model file; choose another file name")
    if fmt == "packed":
        from .checkpoint import export_model

        path = export_model(src, out, values, trust_code=trust_model_code)
        detail = ""
    else:
        from .export import export_run

        path, details = export_run(src, fmt, out, trust_code=trust_model_code)
        detail = "".join(f"; {k.replace('_', ' ')} {v}" for k, v in details.items())
    out_console.print(
        f"wrote {path} ({fmt}, {path.stat().st_size} bytes{detail}; source {src.stat().st_size} bytes)",
        highlight=False,
        soft_wrap=True,
    )


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _setup_logging(True)


def _accept_verbose_everywhere(group: click.Group, seen: set[int] | None = None) -> None:
    """-v/--verbose works after the subcommand too (`safecompress run -v ...`), not only before it."""
    seen = set() if seen is None else seen
    for cmd in group.commands.values():
        if id(cmd) in seen:
            continue
        seen.add(id(cmd))
        if isinstance(cmd, click.Group):
            _accept_verbose_everywhere(cmd, seen)
        elif not any("-v" in p.opts for p in cmd.params):
            cmd.params.append(
                click.Option(
                    ["-v", "--verbose"],
                    is_flag=True,
                    expose_value=False,
                    callback=_verbose,
                    help="Log progress details to stderr.",
                )
            )


_accept_verbose_everywhere(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, with a message and no traceback)."""
    try:
        cli.main(args=argv, prog_name="safecompress", standalone_mode=False)
    except SafeCompressError as exc:
        _error(exc)
        return 2
    except OSError as exc:
        # a full disk (or a read-only folder) met outside the atomic writes, e.g. by a library
        disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
        if not (disk_full or (exc.errno in STORAGE_ERRNOS and exc.filename)):
            raise
        _error(storage_error(exc.filename or "a file", exc))
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted; run again with --resume to continue")
        return 130
    return 0


def _error(exc: BaseException) -> None:
    err_console.print("[bold red]error:[/] " + escape(str(exc)), highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
