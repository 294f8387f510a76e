"""The ``cmrclip`` command: one subcommand per job. Heavy imports happen inside the commands."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from cmrclip import __version__
from cmrclip.errors import CmrclipError
from cmrclip.progress import ProgressFn

__all__ = ["app"]

app = typer.Typer(
    name="cmrclip",
    help="cmrclip: cine cardiac MRI + reports -> video/text encoders -> LVEF and 39 conditions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
reports_app = typer.Typer(help="Report processing: de-identify and label radiology reports.", no_args_is_help=True)
weights_app = typer.Typer(help="Import and inspect model weights.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train a WordPiece tokenizer on a report corpus.", no_args_is_help=True)
experiment_app = typer.Typer(help="Multi-run experiments (data efficiency).", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(weights_app, name="weights")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(experiment_app, name="experiment")

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("cmrclip.cli")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", exists=True)]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config value: --set a.b=c (repeatable).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder or file.")]


def job(target: typer.Typer = app, name: str | None = None) -> Callable[[F], F]:
    """Register a command; a :class:`CmrclipError` becomes one line on stderr and exit code 2."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CmrclipError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None

        target.command(name)(wrapper)
        return fn

    return decorate


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """Yield a progress callback drawn as rich progress bars, one per task name."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


def done(message: str) -> None:
    """Print the one-line summary of a job."""
    typer.echo(message)


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")] = 0,
) -> None:
    """Set up logging for every command."""
    import os

    from rich.logging import RichHandler

    # transformers prints load reports at warning level; keep them for -vv
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if verbose < 2 else "info")
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)], force=True)


@app.command()
def version() -> None:
    """Print the cmrclip version."""
    typer.echo(__version__)


# --- synth (issue 2) ---


@job()
def synth(
    out: OutOpt,
    studies: Annotated[int | None, typer.Option("--studies", "-n", help="Number of studies [20].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed; same seed, same bytes [0].")] = None,
    sites: Annotated[str | None, typer.Option("--sites", help="Comma-separated site keys (default: all).")] = None,
    masks: Annotated[bool, typer.Option("--masks", help="Also write SAX label masks (masks/<study>.npz).")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="Write preview.png/.gif of the first study.")] = False,
    anatomy: Annotated[
        str | None, typer.Option("--anatomy", help="analytic (model hearts) | real (real hearts from --sources).")
    ] = None,
    sources: Annotated[
        Path | None, typer.Option("--sources", help="Real-data folder [$CMRCLIP_SHARED_DATA or ../shared/data].")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a synthetic cine CMR cohort: DICOM studies, reports.jsonl and ground_truth.csv."""
    from cmrclip.config import load_config, save_config
    from cmrclip.synth import SynthConfig, write_preview
    from cmrclip.synth.realistic import synth_cohort

    given = {"studies": studies, "seed": seed, "masks": masks or None, "preview": preview or None,
             "anatomy": anatomy, "sources": sources}  # fmt: skip
    cli = [f"{k}={v}" for k, v in given.items() if v is not None] + ([f"sites=[{sites}]"] if sites else [])
    cfg = load_config(SynthConfig, config, cli + list(set_ or []), defaults="synth.yaml")
    with progress_bar() as bar:
        choice = synth_cohort(out, cfg.studies, cfg.seed, cfg.anatomy, cfg.sources, sites=cfg.sites, masks=cfg.masks,
                              progress=bar, **cfg.extra_kwargs())  # fmt: skip
    save_config(cfg, out, cfg.seed)
    if cfg.preview:
        write_preview(out, choice.summary.study_ids[0])
    done(f"synth: {choice.summary}; {choice.note}")


# --- ingest (issue 3) ---


@job()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="DICOM folders, files, zip or tar archives.", exists=True)],
    out: OutOpt,
    workers: Annotated[int | None, typer.Option(help="Processes (default: config, 0 = all cores).")] = None,
    reports: Annotated[Path | None, typer.Option(help="CSV/JSONL of study_id + report text.", exists=True)] = None,
    labels: Annotated[Path | None, typer.Option(help="CSV/JSONL of study_id + label columns.", exists=True)] = None,
    salt: Annotated[str, typer.Option(envvar="CMRCLIP_SALT", help="Secret salt of the hashed keys.")] = "",
    crosswalk: Annotated[bool, typer.Option(help="Write OUT_crosswalk.csv beside the store.")] = False,
    shard: Annotated[str, typer.Option(help="i/n: ingest only shard i of n (cluster array jobs).")] = "0/1",
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Ingest DICOM cine studies into a de-identified study store."""
    from pydantic import SecretStr

    from cmrclip.config import load_config, save_config
    from cmrclip.ingest.pipeline import IngestConfig
    from cmrclip.ingest.pipeline import ingest as run_ingest

    sets = [*(overrides or []), f"shard=[{shard.replace('/', ',')}]"]
    sets += [f"workers={workers}"] if workers is not None else []
    sets += [f"crosswalk_file={out.parent / (out.name + '_crosswalk.csv')}"] if crosswalk else []
    cfg = load_config(IngestConfig, config, sets, defaults="ingest.yaml")
    cfg = cfg.model_copy(update={"salt": SecretStr(salt)}) if salt else cfg
    try:
        from cmrclip.text.deid import deidentify

        def scrub(text: str, ids: list[str]) -> str:
            return deidentify(text, ids).text
    except ImportError:
        scrub = None  # ingest then replaces the study's own identifiers only
    with progress_bar() as bar:
        summary = run_ingest(sources, out, cfg, scrub_report=scrub, progress=bar, reports=reports, labels=labels)
    save_config(cfg, out)
    done(f"ingest: {summary.line()} -> {out}")


@job(name="ingest-merge")
def ingest_merge(
    parts: Annotated[list[Path], typer.Argument(help="Stores written by `cmrclip ingest --shard i/n`.", exists=True)],
    out: OutOpt,
) -> None:
    """Merge shard stores into one store (studies, manifest, fault report)."""
    from cmrclip.ingest.merge import merge_stores

    n = merge_stores(parts, out)
    done(f"ingest-merge: {len(parts)} stores -> {out} ({n} studies)")


# --- reports, tokenizer (issue 7) ---

ReportsIn = Annotated[Path, typer.Argument(help="JSONL with 'id' and 'text' per line.", exists=True, dir_okay=False)]


@job(reports_app, name="label")
def reports_label(
    src: ReportsIn,
    out: OutOpt,
    synonyms: Annotated[Path | None, typer.Option(help="Extra synonyms YAML (tried first).", exists=True)] = None,
    table: Annotated[Path | None, typer.Option(help="Also write a CSV for 'cmrclip ingest --labels'.")] = None,
    uncertain: Annotated[str, typer.Option(help="In --table: uncertain = unknown|positive|negative.")] = "unknown",
) -> None:
    """Label reports: positive/negative/uncertain per condition, LVEF, evidence sentence per label."""
    from cmrclip.errors import ConfigError
    from cmrclip.text.reports import label_file, labels_table

    if uncertain not in ("unknown", "positive", "negative"):
        raise ConfigError(f"--uncertain {uncertain!r}: choose unknown, positive or negative")
    with progress_bar() as bar:
        summary = label_file(src, out, synonyms=synonyms, progress=bar)
    if table is not None:
        labels_table(out, uncertain=uncertain).to_csv(table, index=False)  # type: ignore[arg-type]
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items()))
    done(f"reports label: {summary.reports} reports ({statuses}), {sum(summary.positives.values())} positives -> {out}")


@job(reports_app, name="label-store")
def reports_label_store(
    store: Annotated[Path, typer.Argument(help="Study store (cmrclip ingest) whose reports are labelled.")],
    uncertain: Annotated[str, typer.Option(help="Write uncertain as unknown|positive|negative.")] = "unknown",
    overwrite: Annotated[bool, typer.Option(help="Replace labels already in the manifest.")] = False,
) -> None:
    """Label the reports in a study store's manifest and write LVEF + 39 condition labels into it."""
    from cmrclip.errors import ConfigError
    from cmrclip.text.reports import label_store

    if uncertain not in ("unknown", "positive", "negative"):
        raise ConfigError(f"--uncertain {uncertain!r}: choose unknown, positive or negative")
    with progress_bar() as bar:
        summary = label_store(store, uncertain=uncertain, overwrite=overwrite, progress=bar)  # type: ignore[arg-type]
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items()))
    done(f"reports label-store: {summary.reports} studies ({statuses}) -> {store}/manifest.sqlite")


@job(reports_app, name="deid")
def reports_deid(src: ReportsIn, out: OutOpt) -> None:
    """De-identify reports (names, IDs, dates, phones, addresses, institutions); counts what was removed."""
    from cmrclip.text.reports import deid_file

    with progress_bar() as bar:
        summary = deid_file(src, out, progress=bar)
    removed = ", ".join(f"{k} {v}" for k, v in sorted(summary.removed.items())) or "nothing"
    done(f"reports deid: {summary.reports} reports, removed {removed} -> {out}")


@job(tokenizer_app, name="train")
def tokenizer_train(
    corpus: Annotated[list[Path], typer.Argument(help="Report .jsonl/.txt files or folders.", exists=True)],
    out: OutOpt,
    vocab_size: Annotated[int | None, typer.Option(help="Vocabulary size [30522].")] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Train a WordPiece tokenizer that transformers.BertTokenizerFast.from_pretrained(OUT) loads."""
    from cmrclip.config import load_config, save_config
    from cmrclip.text.tokenizer import TokenizerConfig, train_tokenizer

    sets = [*(overrides or []), *([f"vocab_size={vocab_size}"] if vocab_size else [])]
    cfg = load_config(TokenizerConfig, config, sets, defaults="tokenizer.yaml")
    with progress_bar() as bar:
        info = train_tokenizer(corpus, out, progress=bar, **cfg.model_dump())
    save_config(cfg, out)
    done(f"tokenizer train: {info.vocab_size} tokens from {info.documents} documents -> {out}")


# --- weights, pretrain, embed (issue 4) ---


@job(weights_app, name="import")
def weights_import(
    path: Annotated[Path, typer.Argument(help="Original Lightning/Kinetics checkpoint (or ours).", exists=True)],
    out: OutOpt,
    preset: Annotated[str | None, typer.Option("--preset", help="Video preset (default mvit_b_16x4).")] = None,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="Unpickle arbitrary objects (only files you trust).")
    ] = False,
) -> None:
    """Convert a video-encoder checkpoint into cmrclip's format, checking every key and shape."""
    from cmrclip.models.convert import import_checkpoint

    info = import_checkpoint(path, out, preset=preset, allow_pickle=allow_pickle)
    done(f"wrote {out} ({info.source_format} -> {info.preset}, {info.normalization} input, sha256 {info.sha256[:12]})")


StoreOpt = Annotated[Path | None, typer.Option("--store", "-s", help="Study store folder (cmrclip ingest).")]


@job()
def pretrain(
    out: OutOpt,
    store: StoreOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoints/last.pt.")] = False,
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps (overrides train.steps).")] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Contrastive (clip, report) pretraining; writes OUT/encoder.pt, OUT/clip.pt, OUT/metrics.jsonl."""
    from cmrclip.config import load_config
    from cmrclip.train.pretrain import PretrainConfig
    from cmrclip.train.pretrain import pretrain as run_pretrain

    given = ([f"store_root={store.resolve()}"] if store else []) + ([f"train.steps={steps}"] if steps else [])
    cfg = load_config(PretrainConfig, config, given + list(overrides or []), defaults="pretrain.yaml")
    with progress_bar() as progress:
        result = run_pretrain(cfg, out, resume=resume, progress=progress)
    r5 = result.metrics.get("video_to_text_r@5", float("nan"))
    done(f"pretrain: {result.steps} steps, held-out study->report R@5 {r5:.3f}; wrote {out}/encoder.pt")


@job()
def embed(
    checkpoint: Annotated[Path, typer.Argument(help="encoder.pt, clip.pt, model.pt or an original checkpoint.")],
    store: Annotated[Path, typer.Option("--store", "-s", help="Study store folder.")],
    out: OutOpt,
    colour_by: Annotated[str | None, typer.Option("--color-by", help="Manifest column for the picture.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only studies of this split.")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    pool: Annotated[
        Literal["mean", "mil"], typer.Option("--pool", help="Study embedding: mean of clips, or MIL (model.pt).")
    ] = "mean",
    picture_map: Annotated[Literal["pca", "tsne"], typer.Option("--map", help="The picture's 2-D map.")] = "pca",
) -> None:
    """One embedding per clip and per study (mean or MIL-pooled) to OUT/embeddings.npz, optionally a PCA/t-SNE map."""
    from cmrclip.train.embed import embed_store

    with progress_bar() as progress:
        res = embed_store(
            checkpoint, store, out, colour_by, split, device=device, progress=progress, pool=pool,
            picture_map=picture_map,
        )  # fmt: skip
    done(f"embed: {res.n_studies} studies, {res.n_clips} clips -> {res.npz}")


# --- finetune, zeroshot, experiment (issue 5) ---


@job()
def finetune(config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Train LVEF + condition heads on study bags; writes OUT/model.pt and OUT/predictions_{val,test}.csv."""
    import math

    from cmrclip.config import load_config
    from cmrclip.train.finetune import FinetuneConfig, run_finetune

    cfg = load_config(FinetuneConfig, config, overrides, defaults="finetune.yaml")
    with progress_bar() as progress:
        result = run_finetune(cfg, progress=progress)
    mae = result.metrics.get("test_lvef_mae", math.nan)
    done(f"wrote {result.bundle} (test LVEF MAE {mae:.2f}; {len(result.faults)} studies skipped)")


@job()
def zeroshot(config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Zero-shot conditions and LVEF from prompts, and retrieval recall@k; each beside a random video tower."""
    from cmrclip.config import load_config
    from cmrclip.evaluate.training import zeroshot_summary
    from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot

    cfg = load_config(ZeroshotConfig, config, overrides)
    with progress_bar() as progress:
        result = run_zeroshot(cfg, progress=progress)
    table = zeroshot_summary(result.predictions, result.random_predictions, result.retrieval, result.random_retrieval)
    table.to_csv(Path(cfg.out_dir) / "summary.csv", index=False)
    parts = [f"{r.metric} {r.encoder:.3f} (random {r.random_encoder:.3f})" for r in table.itertuples()]
    done(f"zero-shot on {len(result.predictions)} studies (cine-visible conditions): " + "; ".join(parts))


@job(experiment_app, name="data-efficiency")
def data_efficiency(config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Grid {inits} x {label fractions} x {seeds} of fine-tuning runs (restartable); table.csv and plots."""
    from cmrclip.config import load_config
    from cmrclip.evaluate.plots import plot_data_efficiency
    from cmrclip.evaluate.training import headline_scores
    from cmrclip.train.experiment import ExperimentConfig, run_experiment

    cfg = load_config(ExperimentConfig, config, overrides, defaults="experiment.yaml")
    with progress_bar() as progress:
        result = run_experiment(cfg, headline_scores, progress=progress)
    for metric, label in (("macro_auroc", "macro AUROC (test)"), ("lvef_mae", "LVEF MAE, % (test)")):
        rows = result.table[result.table["metric"] == metric]
        if rows["value"].notna().any():
            plot_data_efficiency(rows, result.out_dir / f"data_efficiency_{metric}.png", metric_label=label)
    done(f"wrote {result.table_path} ({result.n_run} cells run, {result.n_skipped} already done)")


# --- evaluate (issue 6) ---


@job()
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions CSV/JSONL/JSON, or a folder of one per target.")],
    out: OutOpt,
    baseline: Annotated[Path | None, typer.Option(help="Baseline predictions on the same studies.")] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Metrics with CIs (DeLong, bootstrap), paired DeLong tests vs a baseline, plots and report.html."""
    import math

    from cmrclip.config import load_config
    from cmrclip.evaluate.evaluation import EvaluateConfig
    from cmrclip.evaluate.run import run_evaluate

    cfg = load_config(EvaluateConfig, config, overrides, defaults="evaluate.yaml")
    with progress_bar() as progress:
        result = run_evaluate(predictions, out, baseline=baseline, cfg=cfg, progress=progress)
    t = result.table
    pairs = t["target"] + "/" + t["metric"]
    headline = t[pairs.isin(["macro/auroc", "lvef/mae"])]
    parts = [
        f"{r.model} {r.target} {r.metric} " + (f"{r.value:.3f}" if math.isfinite(r.value) else f"n/a: {r.flag}")
        for r in headline.itertuples()
    ]
    done(f"wrote {result.report} ({'; '.join(parts) or 'no metric computed'})")


# --- predict, explain, serve, demo (issue 8) ---


ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Study model bundle (OUT/model.pt).", exists=True)]
SaltOpt = Annotated[
    str | None, typer.Option(envvar="CMRCLIP_SALT", help="Salt for the keys of new studies (random by default).")
]


@job()
def predict(
    studies: Annotated[list[str], typer.Argument(help="DICOM folders/archives, NIfTI files, or STORE#study_key.")],
    model: ModelOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions JSONL.")] = Path("predictions.jsonl"),
    salt: SaltOpt = None,
) -> None:
    """LVEF with a conformal interval, calibrated condition probabilities and warnings, one JSON line per study."""
    import json

    from cmrclip.serve.predict import PredictionFault, load_model

    loaded = load_model(model, salt=salt)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_ok = n_bad = 0
    with progress_bar() as progress, out.open("w", encoding="utf-8") as handle:
        for result in loaded.predict_many(studies, progress=progress, total=len(studies)):
            failed = isinstance(result, PredictionFault)
            body = {"source": result.source, "error": result.reason} if failed else result.to_dict()
            handle.write(json.dumps(body) + "\n")
            n_ok, n_bad = n_ok + (not failed), n_bad + failed
    done(f"wrote {out}: {n_ok} studies predicted, {n_bad} failed")


@job()
def explain(
    study: Annotated[str, typer.Argument(help="One study: DICOM folder/archive, NIfTI file, or STORE#study_key.")],
    model: ModelOpt,
    out: OutOpt,
    salt: SaltOpt = None,
) -> None:
    """Attention rollout and gradient maps overlaid on each clip (GIF), with each clip's MIL weight (JSON)."""
    from cmrclip.serve.explain import explain_study, write_explanations
    from cmrclip.serve.predict import load_model

    loaded = load_model(model, salt=salt)
    clips = explain_study(loaded, loaded.load_study(study))
    index = write_explanations(clips, out)
    done(f"wrote {len(clips)} clip overlays and {index}")


@job()
def serve(
    model: ModelOpt,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    token: Annotated[
        str | None, typer.Option(envvar="CMRCLIP_TOKEN", help="Require this bearer token on /v1/predict.")
    ] = None,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload accepted, in MiB.")] = 512,
) -> None:
    """Web service and viewer: POST /v1/predict, GET /health, the viewer at /, API docs at /docs."""
    import uvicorn

    from cmrclip.serve.api import create_app
    from cmrclip.serve.uploads import UploadLimits

    app = create_app(model, token=token, limits=UploadLimits(max_upload_bytes=max_upload_mb * 1024 * 1024))
    done(f"serving http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


# --- demo (the main job) ---


@job()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    size: Annotated[str, typer.Option(help="tiny | small | medium.")] = "small",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic cohort and of every run.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
) -> None:
    """The whole job on the embedded synthetic cohort: synth, ingest, pretrain, fine-tune, evaluate, zero-shot."""
    from cmrclip.config import load_config
    from cmrclip.demo import DemoConfig, run_demo

    cfg = load_config(DemoConfig, None, [f"size={size}", f"seed={seed}", f"device={device}"])
    with progress_bar() as progress:
        result = run_demo(out, cfg, progress=progress)
    total = sum(result.seconds.values())
    done(f"demo finished in {total / 60:.1f} min; open {result.report}")
