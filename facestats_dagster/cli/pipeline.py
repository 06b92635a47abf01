"""`facestats run`, `update`, `demo` and `demo-data`: the whole pipeline as Dagster runs in this process
(as few runs as the partitions allow, `run_pipeline`), behind one progress display, and the synthetic demo set."""

from __future__ import annotations

import argparse
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

from facestats_core.attractiveness.model_file import load_regressor
from facestats_core.composites.not_built import is_built
from facestats_core.composites.purity import purity_from_face_truth, purity_text
from facestats_core.composites.sidecars import read_sidecar
from facestats_core.composites.spec_config import read_spec_config
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import ClipLoadError, load_clip
from facestats_core.io.atomic import atomic_write_text
from facestats_core.io.layout import Layout
from facestats_core.labels.face_labels import read_true_labels_by_face
from facestats_core.labels.ratings import match_ratings_to_images, read_ratings
from facestats_core.models.store import ModelIntegrityError
from facestats_core.statistics.truth_agreement import attribute_agreement, rating_agreement, share_errors
from facestats_dagster.cli import composites
from facestats_dagster.cli.dagster_runs import downstream_runs, execute_runs, upstream_run
from facestats_dagster.cli.display import RunDisplay
from facestats_dagster.markdown import regressor_summary
from facestats_dagster.settings import DEFAULT_CLIP, Settings, configure, load_settings, write_project_file
from facestats_demo.edge_cases import write_edge_cases
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from facestats_demo.train_clip import DEMO_CLIP_DIR

DEMO_REFERENCE_DIR = "reference"
"""`facestats demo`: the labelled demo faces (the reference set the models train on) under `<data root>/reference`."""
TRUTH_PREFIX = "truth_"
"""The analysed demo folder's true labels / ratings are `labels/truth_*.csv`: evaluation only, never training."""
DEMO_TRUTH_LABELS = f"labels/{TRUTH_PREFIX}fairface_labels.csv"
"""The analysed demo folder's true labels (relative to the data root): `labels.truth_labels` of `facestats demo`."""
DEMO_FACE_MODE = "whole"
"""The demo's faces are pre-cropped portraits (like FairFace): the image is the face."""


def run_pipeline(display: RunDisplay, who: str = "facestats update") -> int:
    """Bring every artifact up to date in this process, in as few Dagster runs as the partitions allow:
    one run over every image shard and everything up to the master table; then the YAML's composite
    specs are registered (`facestats composites sync`) and one run builds their composites, the contact
    sheet, the statistics and the report (one more run of composites per extra block of specs, see
    `dagster_runs.downstream_runs`). Stops at the first failure. `facestats run`, `update` (cron) and
    `demo` all come here.

    Without the default specs file the registered specs are built and a notice says so; a
    `composites.specs_file` the user named that is missing is an error."""

    settings = load_settings()
    code = execute_runs([upstream_run()], who, display)
    if code:
        return code
    specs = Path(settings["composites.specs_file"])
    if not specs.exists() and not settings.explicit("composites.specs_file"):
        registered = composites.registered_specs()
        display.note(f"no composites config at {specs.absolute()}; building the {len(registered)} registered specs")
        return execute_runs(downstream_runs(registered, registered), who, display)
    code = composites.sync_quietly(specs, display.note)
    if code:
        return code
    wanted = read_spec_config(specs).canonical
    return execute_runs(downstream_runs(composites.registered_specs(), wanted), who, display)


def _finish(settings: Settings, display: RunDisplay, code: int, who: str) -> int:
    """The summary after a successful run, or the one line that says what failed and what to do."""
    if code:
        display.failed(who)
        return code
    display.summary(settings)
    return 0


def cmd_update(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """Materialize everything with the project's settings (what cron runs); flags apply to this run only."""
    settings = configure(args.project, flags)
    display = RunDisplay.for_settings(settings, verbose=args.verbose)
    with display:
        code = run_pipeline(display, "facestats update")
    return _finish(settings, display, code, "facestats update")


def default_project(photos: Path) -> Path:
    """Where `facestats run PHOTOS` keeps its results without `--project`: `./facestats-<folder name>`, or
    `~/facestats/<folder name>` when the working directory is inside the photos folder (never inside it)."""
    photos = photos.absolute()
    here = Path.cwd().absolute()
    if here == photos or photos in here.parents:
        return Path.home() / "facestats" / photos.name
    return here / f"facestats-{photos.name}"


def copy_default_configs(project: Path) -> list[Path]:
    """FaceStats' own `config/composites.yaml` and `config/tags.yaml` copied into a new project's `config/`
    (the project's to edit), when the checkout has them and the project does not; returns what was copied."""

    source = Path(__file__).resolve().parents[2] / "config"
    copied = []
    for name in ("composites.yaml", "tags.yaml"):
        target = project / "config" / name
        if (source / name).is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, (source / name).read_text(encoding="utf-8"))
            copied.append(target)
    return copied


def _absolute_if_local(value: Any) -> Any:
    """A flag value naming an existing file or folder relative to the working directory, made absolute
    (the project file must mean the same from anywhere, e.g. from cron)."""
    if isinstance(value, str) and value and not Path(value).is_absolute() and Path(value).exists():
        return str(Path(value).absolute())
    return value


def cmd_run(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """Analyse the photos folder in place into the project folder: settings file written (first run) or
    updated with the flags given, then the pipeline, the progress display and the summary."""
    photos = Path(args.photos).expanduser().absolute()
    if not photos.is_dir():
        print(f"facestats run: {photos} is not a folder of photos; pass the folder that holds them.", file=sys.stderr)
        return 2
    project = Path(args.project).expanduser().absolute() if args.project else default_project(photos)
    if project == photos or photos in project.parents:
        print(f"facestats run: the project folder {project} is inside the photos folder {photos}, which FaceStats "
              "never writes to; pass --project DIR outside it.", file=sys.stderr)
        return 2
    flags = {key: _absolute_if_local(value) for key, value in flags.items()}
    flags["paths.photos"] = str(photos)
    first = not (project / "facestats.toml").exists()
    project.mkdir(parents=True, exist_ok=True)
    if first:
        copy_default_configs(project)
    settings = configure(project, flags)
    written = write_project_file(settings, flags)
    print(f"facestats run: {photos} -> project {project}")
    print(f"  settings {written} ({'written' if first else 'read'}; `facestats settings --project {project}` "
          "shows each value and its source)")
    display = RunDisplay.for_settings(settings, verbose=args.verbose)
    with display:
        code = run_pipeline(display, "facestats run")
    return _finish(settings, display, code, "facestats run")


def cmd_demo_data(args: argparse.Namespace) -> int:
    """The demo faces with labels and ratings; with a reference root, the labelled set goes there and
    the data root gets other (unlabelled) demo faces whose true labels are kept for evaluation only."""

    root = Path(args.data_root)
    reference = getattr(args, "reference_root", None)
    seed = args.seed
    if reference:
        n_reference = getattr(args, "reference_images", None) or args.n_images
        labelled = generate_demo_dataset(Path(reference), DemoSpec(n_images=n_reference, size=args.size, seed=seed))
        print(f"wrote {labelled.n_images} labelled reference faces to {labelled.images_dir} "
              f"(labels {labelled.fairface_labels}, ratings {labelled.ratings})")
        seed += 1
    # the analysed folder's class mix differs from the balanced reference set's, as real folders' do
    mix = "shifted" if reference else "balanced"
    dataset = generate_demo_dataset(root, DemoSpec(n_images=args.n_images, size=args.size, seed=seed, mix=mix))
    edge = write_edge_cases(root / "raw" / "edge_cases", seed=args.seed)
    print(f"wrote {dataset.n_images} demo faces ({mix} class mix) to {dataset.images_dir}")
    print(f"wrote {len(edge)} edge-case files to {root / 'raw' / 'edge_cases'}")
    if reference:  # the analysed folder is unlabelled: its truth is kept aside, for evaluation only
        for name in ("fairface_labels.csv", "scut_ratings.csv"):
            (root / "labels" / name).replace(root / "labels" / f"{TRUTH_PREFIX}{name}")
        print(f"unlabelled: true labels kept for evaluation in {root / 'labels' / (TRUTH_PREFIX + 'fairface_labels.csv')}")
    else:
        print(f"labels: {dataset.fairface_labels}, ratings: {dataset.ratings}")
    return 0


def _hub_reachable(host: str = "huggingface.co") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def resolve_demo_model(explicit: str | None) -> str:
    """`explicit` (the `clip.model` the user gave) if set, else ViT-B/32 when loadable, else the demo CLIP
    trained on synthetic demo faces that ships in `facestats_demo/demo_clip` (announced loudly)."""

    if explicit:
        return explicit
    reason = "huggingface.co cannot be reached from this machine"
    for local_only in (True, False):
        if not local_only and not _hub_reachable():
            break
        try:
            load_clip(ClipConfig(model=DEFAULT_CLIP, local_files_only=local_only))
            return DEFAULT_CLIP
        except ClipLoadError as exc:
            reason = str(exc).split(";")[0]
    if not (DEMO_CLIP_DIR / "config.json").exists():
        raise SystemExit(
            f"facestats: {DEFAULT_CLIP} could not be loaded ({reason}) and the demo CLIP is missing from "
            f"{DEMO_CLIP_DIR}; rebuild it with `facestats build-clip --train --out {DEMO_CLIP_DIR}` "
            "or pass --clip-model DIR."
        )
    banner = "!" * 78
    print(
        f"\n{banner}\n"
        + textwrap.fill(
            f"NOTICE: {DEFAULT_CLIP} could not be loaded ({reason}). The demo runs on the FaceStats "
            f"DEMO CLIP at {DEMO_CLIP_DIR}: a small CLIP trained on synthetic demo faces only, NOT "
            "OpenAI's CLIP. It sees the demo's drawn traits, so the demo's numbers mean something for "
            "the demo faces, but nothing about real photos or real CLIP. Pass --clip-model (or set FACESTATS_CLIP_MODEL) "
            "to a real CLIP folder or model id for real results.",
            width=78,
        )
        + f"\n{banner}\n",
        flush=True,
    )
    return str(DEMO_CLIP_DIR)


def cmd_demo(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """Demo data (when missing), a CLIP, then every asset through `run_pipeline`, as a project in the
    working directory (`./facestats.toml`, so `make ui`, `facestats update` and `dagster` see the demo)."""
    project = Path(args.project).expanduser().absolute() if args.project else Path.cwd()
    settings = configure(project, flags)
    data_root = Path(settings["paths.data_root"])
    reference = data_root / DEMO_REFERENCE_DIR
    made = [reference / "labels" / "fairface_labels.csv", data_root / DEMO_TRUTH_LABELS]
    if not all(path.exists() for path in made) or args.regenerate:
        cmd_demo_data(argparse.Namespace(data_root=str(data_root), n_images=args.n_images, size=256, seed=0,
                                         reference_root=str(reference), reference_images=args.reference_images))
    model = resolve_demo_model(settings["clip.model"] if settings.explicit("clip.model") else None)
    demo = {"clip.model": model, "paths.photos": "", "models.reference_root": str(reference),
            "labels.truth_labels": DEMO_TRUTH_LABELS}
    if not settings.explicit("faces.face_mode"):
        demo["faces.face_mode"] = DEMO_FACE_MODE
    # the demo's values go into its project file (what the UI and cron read); flags still win
    settings = configure(project, {**demo, **flags})
    write_project_file(settings, {**demo, **flags})
    display = RunDisplay.for_settings(settings, verbose=args.verbose)
    with display:
        code = run_pipeline(display, "facestats demo")
    if code:
        return _finish(settings, display, code, "facestats demo")
    _finish(settings, display, code, "facestats demo")
    print_summary(data_root, Path(settings["paths.model_root"]), truth_file=data_root / DEMO_TRUTH_LABELS,
                  specs_file=settings["composites.specs_file"], prefix=settings["labels.fairface_prefix"])
    return 0


def print_summary(data_root: Path, model_root: Path, truth_file: Path | None = None,
                  specs_file: str | Path | None = None, prefix: str = "") -> None:
    """Where the outputs are, with their row counts, and how the attractiveness MLP compares; with
    `truth_file` (FairFace-format true labels of the analysed set) and `specs_file` (the composites
    config), how pure each configured composite is against that truth."""
    import polars as pl


    layout = Layout.from_roots(data_root, model_root)
    raw = layout.read_partitions("raw_images")
    detections = layout.read_partitions("face_detections")
    embeddings = layout.read_artifact("embeddings_clip")
    if embeddings is None:
        print(f"facestats: no embeddings at {layout.artifact('embeddings_clip')}", file=sys.stderr)
        return
    unreadable = raw.filter(~pl.col("readable")) if raw is not None else None
    print("\nFaceStats demo finished. Outputs:")
    print(f"  raw manifest       {layout.artifact_dir('raw_images')}/  ({raw.height if raw is not None else 0} images,"
          f" {unreadable.height if unreadable is not None else 0} unreadable with reasons)")
    if detections is not None:
        faces = detections.filter(pl.col("face_id").is_not_null()).height
        faceless = detections.filter(pl.col("face_id").is_null()).height
        print(f"  face detections    {layout.artifact_dir('face_detections')}/  ({faces} faces, {faceless} images "
              "without a face, with reasons)")
    print(f"  face chips         {layout.chips_dir}/")
    print(f"  embeddings         {layout.artifact('embeddings_clip')}  ({embeddings.height} rows,"
          f" model {embeddings['model_id'][0] if embeddings.height else '-'})")
    try:
        print(f"  attractiveness     {regressor_summary(load_regressor(layout.model_root).evaluation)}")
    except (FileNotFoundError, ModelIntegrityError):
        pass
    _print_attribute_accuracy(layout.model_root)
    master = layout.read_artifact("master_metadata")
    if master is not None:
        print(f"  master table       {layout.artifact('master_metadata')}  ({master.height} rows)")
    composites = layout.composites_dir
    if composites.exists():
        made = sorted(p.name for p in composites.glob("*.png") if p.name != "contact_sheet.png")
        print(f"  composites         {composites}/  ({len(made)} composites + contact_sheet.png)")
    face_truth, no_truth = _face_truth(master, truth_file, prefix) if master is not None else (None, None)
    if master is not None and truth_file is not None:
        _print_truth_agreement(master, face_truth, no_truth, truth_file,
                               truth_file.with_name(f"{TRUTH_PREFIX}scut_ratings.csv"))
    _print_share_errors(layout)
    if specs_file is not None and master is not None:
        _print_composite_purity(layout, face_truth, no_truth, truth_file, Path(specs_file))
    report = layout.report_dir / "index.html"
    if report.exists():
        print(f"  report             {report}")
    print("Open the Dagster UI with `make ui` (http://127.0.0.1:3000) to browse runs and metadata.")
    print("Analyse new photos with `.venv/bin/facestats analyse IMAGE...` (faces, attributes, tags, score).")


def _face_truth(master: Any, truth_file: Path | None, prefix: str = "") -> tuple[Any, str | None]:
    """The true labels of `master`'s faces from `truth_file` (evaluation only), read once for every block
    of the summary that compares with them: ``(frame, None)``, or ``(None, why not)``."""

    if truth_file is None:
        return None, "no true labels"
    return read_true_labels_by_face(truth_file, master, prefix=prefix)


def _print_truth_agreement(master: Any, face_truth: Any, no_truth: str | None, truth_file: Path,
                           ratings_file: Path) -> None:
    """Predicted attributes and scores of the analysed faces against their kept-aside true labels and
    ratings (`facestats_core.statistics.truth_agreement`): faces no model trained on."""
    import polars as pl


    if face_truth is None:
        if truth_file.exists():  # there, but unreadable
            print(f"  vs demo truth      not measured: {no_truth}")
        return
    faces = master.filter(pl.col("face_id").is_not_null())
    agreement = attribute_agreement(faces, face_truth)
    if not agreement:
        return
    print(f"  analysed faces vs demo truth ({truth_file.name}; faces the CLIP, probes and regressor never saw)")
    for a in agreement:
        print(f"    {a.attribute:<16} accuracy {a.accuracy:.3f}  (n {a.n}, majority baseline "
              f"{a.majority_baseline:.3f}, {'/'.join(a.methods) or 'prediction'})")
    try:
        ratings = read_ratings(ratings_file).ratings
    except (OSError, ValueError):
        return
    matched, _ = match_ratings_to_images(ratings, faces.select("image_id", "path").unique("image_id"))
    rating = rating_agreement(faces, matched)
    if rating is not None:
        print(f"    {'attractiveness':<16} Pearson r {rating.pearson_r:.3f}, RMSE {rating.rmse:.3f} "
              f"(n {rating.n}; predicting the mean: RMSE {rating.mean_baseline_rmse:.3f})")


def _print_share_errors(layout: Any) -> None:
    """Per attribute, the whole-set observed and corrected shares against the true shares (MAE over the
    classes, percentage points), from the face_statistics table (only where it has true shares)."""

    table = layout.read_artifact("face_statistics")
    errors = share_errors(table) if table is not None else []
    if not errors:
        return
    print("  class shares vs demo truth (whole analysed set; mean absolute error over the classes)")
    for e in errors:
        corrected = (f"corrected {e.corrected_mae_pp:.2f} pp ({e.correction})" if e.corrected_mae_pp is not None
                     else f"not corrected ({e.correction})")
        print(f"    {e.attribute:<16} observed {e.observed_mae_pp:.2f} pp, {corrected}  (n {e.n})")


def _print_composite_purity(layout: Any, face_truth: Any, no_truth: str | None, truth_file: Path | None,
                            specs_file: Path) -> None:
    """One line per composite of `specs_file`: its members and, per spec term with a true label
    (gender, age, ethnicity), the share of members whose TRUE label satisfies the term
    (`facestats_core.composites.purity`); a one-line note when there is no truth to compare with."""

    try:
        entries = read_spec_config(specs_file).entries
    except OSError:
        return
    if not entries:
        return
    if face_truth is None:
        print(f"  composite purity   not measured: {no_truth}")
        return
    print(f"  composite purity vs demo truth ({truth_file.name if truth_file else ''}; per spec term, the share "
          "of members whose TRUE label satisfies it)")
    width = max(len(entry.canonical) for entry in entries)
    for entry in entries:
        meta = read_sidecar(layout.composites_dir / f"{entry.spec.slug}.json")
        if meta is None:
            line = "not built yet"
        elif not is_built(meta):
            line = f"not built ({entry.spec.slug}.json says why)"
        else:
            purity = purity_from_face_truth(entry.spec, [str(i) for i in meta.get("face_ids") or []], face_truth)
            line = f"{purity.members:>4} members  {purity_text(purity)}"
            if meta.get("excluded_low_confidence"):
                line += (f"  ({meta['excluded_low_confidence']} more left out: predicted with probability "
                         f"< {meta.get('min_confidence')})")
            if meta.get("relaxed"):
                line += f"  (built with {', '.join(map(str, meta['relaxed']))} relaxed)"
        print(f"    {entry.canonical:<{width}}  {line}")


def _print_attribute_accuracy(model_root: Path) -> None:
    """Held-out probe accuracy next to CLIP zero-shot accuracy on the same labels, per attribute."""
    import json

    metrics_file = model_root / "attribute_classifiers.metrics.json"
    if not metrics_file.exists():
        return
    metrics = json.loads(metrics_file.read_text()).get("metrics") or {}
    if not metrics:
        print("  attributes         zero-shot (no labelled faces)")
        return
    print("  attributes         probe (held-out) | zero-shot (labelled faces) | majority baseline")
    for attr, m in metrics.items():
        zero = m.get("zero_shot_accuracy")
        print(f"    {attr:<16} {m['accuracy']:.3f} | {'-' if zero is None else f'{zero:.3f}'} | "
              f"{m['majority_baseline_accuracy']:.3f}   (trained on the {m.get('trained_on', '?')} set)")
    bundle = model_root / "bundle" / "bundle.json"
    if bundle.exists():
        print(f"  model bundle       {bundle.parent}  (apply to any folder: FACESTATS_MODELS={bundle.parent}; "
              "`facestats models describe` shows it)")
