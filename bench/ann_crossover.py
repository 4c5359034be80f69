"""Where an approximate nearest-neighbour (ANN) library would beat the index's exact search.

LATENCY TEST ONLY: the galleries (10^4 to 10^6 rows) are built from real CAM++
embeddings of ../shared/data speakers (the cohort, speechocean762 and commonvoice_zh
sets): each row mixes two of them at random (weights 0.6-1 and the rest) with a little
noise, and takes the AS-norm statistics of its main parent. Their recognition results
mean nothing; the queries are real held-out recordings (librispeech, aishell,
telephone: other speakers, other recordings).

Exact: what the embedding index does per identify today, on one thread: the probe
against the whole float32 gallery (one matrix product), AS-norm, calibration, top 10
(``Scorer.score_between`` and ``ranking.top``), and the bare matrix product with its
top 10 beside it. ANN: an HNSW graph over the same centred unit vectors (inner
product), built incrementally size after size; each query fetches ``--fetch``
candidates, which are scored exactly and ranked as above. Recall@10 is the share of
the exact top 10 (AS-norm, as identify answers) that the ANN answer holds; "cosine
recall" the same for the bare product's top 10. Memory: the exact gallery's bytes; the
ANN index's growth of this process's RSS (the exact per-row statistics stay needed
beside it). Prints a table and writes bench/results/ann_crossover.json.

The libraries are for this bench only (not serving dependencies):

    .venv/bin/pip install hnswlib==0.8.0 faiss-cpu==1.15.1
    nice -n 19 .venv/bin/python bench/ann_crossover.py [--max-size 100000] [--libraries hnswlib]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench_server import rss_mb
from scale import LABEL, real_embeddings
from voiceprint.config import get_settings
from voiceprint.scoring.ranking import top
from voiceprint.scoring.scorer import Gallery, Scorer, Voices, normalize
from voiceprint.service.factory import load_models

ROOT = Path(__file__).resolve().parent.parent
GALLERY_SETS = ("cohort", "speechocean762", "commonvoice_zh")
QUERY_SETS = ("librispeech", "aishell", "telephone")
TOP = 10
CHUNK = 100_000
Search = Callable[[np.ndarray, int], np.ndarray]  # (probe vector [D], k) -> row ids
# Adds rows (vectors, id of the first), and gives the search at an ``ef``.
Library = tuple[Callable[[np.ndarray, int], None], Callable[[int], Search]]


def embeddings(threads: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Real gallery-side and query-side embeddings, embedded once and then cached."""
    if cache.is_file():
        stored = np.load(cache)
        return stored["gallery"], stored["queries"]
    _, gallery = real_embeddings(threads, GALLERY_SETS)
    _, queries = real_embeddings(threads, QUERY_SETS)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, gallery=gallery, queries=queries)
    return gallery, queries


def synthetic_gallery(scorer: Scorer, real: np.ndarray, size: int, seed: int = 0) -> Gallery:
    """``size`` rows mixed from the real embeddings, prepared for scoring, in place (float32,
    ``CHUNK`` rows at a time)."""
    rng = np.random.default_rng(seed)
    parents = scorer.gallery(Voices.of(real))
    unit = normalize(real)
    vectors = np.empty((size, real.shape[1]), np.float32)
    main = rng.integers(len(real), size=size)
    for start in range(0, size, CHUNK):
        rows = slice(start, min(start + CHUNK, size))
        n = rows.stop - rows.start
        other = rng.integers(len(real), size=n)
        weight = rng.uniform(0.6, 1.0, size=(n, 1)).astype(np.float32)
        noise = rng.normal(0.0, 0.02, size=(n, real.shape[1])).astype(np.float32)
        vectors[rows] = scorer.prepare(
            weight * unit[main[rows]] + (1 - weight) * unit[other] + noise
        )
    flags = np.zeros(size, bool)
    return Gallery(vectors, flags, flags, parents.cohort_mean[main], parents.cohort_std[main])


def prefix(gallery: Gallery, size: int) -> Gallery:
    """The first ``size`` rows, without a copy."""
    g = gallery
    return Gallery(
        g.vectors[:size],
        g.narrowband[:size],
        g.line[:size],
        g.cohort_mean[:size],
        g.cohort_std[:size],
    )


@dataclass
class Timed:
    answers: list[np.ndarray]
    ms: list[float]

    def stats(self) -> dict[str, float]:
        return {
            "p50_ms": float(np.percentile(self.ms, 50)),
            "p95_ms": float(np.percentile(self.ms, 95)),
        }


def timed_together(
    queries: list[Gallery], methods: dict[str, Callable[[Gallery], np.ndarray]]
) -> dict[str, Timed]:
    """Each query answered by every method in turn, so all see the same machine load."""
    results = {name: Timed([], []) for name in methods}
    for probe in queries:
        for name, answer in methods.items():
            start = time.perf_counter()
            results[name].answers.append(answer(probe))
            results[name].ms.append((time.perf_counter() - start) * 1000)
    return results


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hits = sum(len(np.intersect1d(f[:TOP], t)) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


@dataclass
class Ann:
    """One library's index, grown size after size: its cumulative build time and memory."""

    library: str
    add: Callable[[np.ndarray, int], None]
    search_at: Callable[[int], Search]
    build_s: float = 0.0
    mb: float = 0.0

    def grow(self, vectors: np.ndarray, first: int) -> None:
        before, _ = rss_mb(os.getpid())
        start = time.perf_counter()
        self.add(vectors, first)
        self.build_s += time.perf_counter() - start
        self.mb += rss_mb(os.getpid())[0] - before


def hnswlib_index(dim: int, threads: int, m: int, ef_construction: int) -> Library:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=CHUNK, ef_construction=ef_construction, M=m)

    def add(vectors: np.ndarray, first: int) -> None:
        index.resize_index(first + len(vectors))
        index.add_items(vectors, np.arange(first, first + len(vectors)), num_threads=threads)

    def search(ef: int) -> Search:
        def knn(vector: np.ndarray, k: int) -> np.ndarray:
            index.set_ef(ef)  # per call: searches at several ef take turns
            return index.knn_query(vector, k=k, num_threads=1)[0][0]

        return knn

    return add, search


def faiss_index(dim: int, threads: int, m: int, ef_construction: int) -> Library:
    import faiss

    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction

    def add(vectors: np.ndarray, first: int) -> None:
        faiss.omp_set_num_threads(threads)
        index.add(vectors)

    def search(ef: int) -> Search:
        params = faiss.SearchParametersHNSW(efSearch=ef)

        def knn(vector: np.ndarray, k: int) -> np.ndarray:
            faiss.omp_set_num_threads(1)
            return index.search(vector[None], k, params=params)[1][0]

        return knn

    return add, search


LIBRARIES = {"hnswlib": hnswlib_index, "faiss": faiss_index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 3 * 10**5, 10**6])
    parser.add_argument("--max-size", type=int, default=10**6, help="leave out larger sizes")
    parser.add_argument("--libraries", nargs="*", default=["hnswlib", "faiss"], choices=LIBRARIES)
    parser.add_argument("--m", type=int, default=16, help="HNSW links per node")
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--ef", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--fetch", type=int, default=100, help="ANN candidates scored exactly")
    parser.add_argument("--queries", type=int, default=None, help="at most this many")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="for builds")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench/results/ann_embeddings.npz")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ann_crossover.json")
    args = parser.parse_args()
    sizes = sorted(s for s in args.sizes if s <= args.max_size)

    # Exact search is timed on one thread, as one request's matrix product would run
    # beside others; the model is only needed for the embeddings and the scorer.
    settings = get_settings().model_copy(update={"inference_threads": args.threads})
    scorer = load_models(settings, progress=False).scorer
    real, held_out = embeddings(args.threads, args.cache)
    probes = scorer.gallery(Voices.of(held_out[: args.queries]))
    queries = [probes.take(np.array([k])) for k in range(len(probes))]
    full = synthetic_gallery(scorer, real, sizes[-1])
    print(f"{len(real)} real gallery-side embeddings, {len(queries)} real held-out queries")

    anns = [
        Ann(name, *LIBRARIES[name](real.shape[1], args.threads, args.m, args.ef_construction))
        for name in args.libraries
    ]
    efs = sorted({max(ef, args.fetch) for ef in args.ef})  # an HNSW search needs ef >= k
    rows = []
    for previous, size in zip([0, *sizes], sizes, strict=False):
        for ann in anns:
            ann.grow(full.vectors[previous:size], previous)
        rows.append(measure(scorer, queries, prefix(full, size), anns, efs, args.fetch))
        write(rows, args)  # after each size: a long run stopped early keeps what it measured
        print(f"{size} rows done", flush=True)
    report(rows, args, len(real), len(queries))


def measure(
    scorer: Scorer,
    queries: list[Gallery],
    gallery: Gallery,
    anns: list[Ann],
    efs: list[int],
    fetch: int,
) -> dict:
    """Exact and ANN search of ``gallery``, interleaved query by query."""

    def exact(p: Gallery) -> np.ndarray:
        return top(scorer.score_between(p, gallery)[0], TOP)

    def product(p: Gallery) -> np.ndarray:
        return top(p.vectors[0] @ gallery.vectors.T, TOP)

    def rescored(search: Search) -> Callable[[Gallery], np.ndarray]:
        def answer(p: Gallery) -> np.ndarray:
            found = np.sort(search(p.vectors[0], fetch))
            return found[top(scorer.score_between(p, gallery.take(found), len(gallery))[0], TOP)]

        return answer

    def cosine(search: Search) -> Callable[[Gallery], np.ndarray]:
        return lambda p: search(p.vectors[0], TOP)

    methods = {"exact": exact, "product": product}
    for ann in anns:
        for ef in efs:
            search = ann.search_at(ef)
            methods[f"{ann.library}:{ef}"] = rescored(search)
            methods[f"{ann.library}:{ef}:cosine"] = cosine(search)
    results = timed_together(queries, methods)
    truth = results["exact"].answers
    # How many cosine candidates hold the AS-norm top 10: a bound on any ANN over them.
    reach = {
        k: recall([top(p.vectors[0] @ gallery.vectors.T, k) for p in queries], truth)
        for k in sorted({TOP, 50, fetch})
    }
    anns_measured = []
    for ann in anns:
        for ef in efs:
            rescored_at, cosine_at = (results[f"{ann.library}:{ef}{s}"] for s in ("", ":cosine"))
            anns_measured.append(
                {
                    "library": ann.library,
                    "ef": ef,
                    **rescored_at.stats(),
                    "recall_at_10": recall(rescored_at.answers, truth),
                    "cosine_recall_at_10": recall(cosine_at.answers, results["product"].answers),
                    "cosine_p50_ms": cosine_at.stats()["p50_ms"],
                    "build_s": ann.build_s,
                    "index_mb": ann.mb,
                }
            )
    return {
        "size": len(gallery),
        "exact": {**results["exact"].stats(), "mb": gallery.nbytes / 2**20},
        "product": results["product"].stats(),
        "as_norm_top10_within_cosine_top_k": reach,
        "ann": anns_measured,
    }


def report(rows: list[dict], args: argparse.Namespace, real: int, queries: int) -> None:
    print(
        f"LATENCY TEST ONLY ({LABEL}): rows mixed from {real} real embeddings; {queries} real "
        f"held-out queries; one thread per query; HNSW M={args.m}, "
        f"ef_construction={args.ef_construction}, {args.fetch} candidates rescored"
    )
    print(
        "| rows | exact p50 | p95 | product alone p50 | gallery MB | library | ef | ANN p50 "
        "| p95 | recall@10 | cosine recall@10 | build (cumulative) | index MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e = r["exact"]
        for a in r["ann"]:
            print(
                f"| {r['size']} | {e['p50_ms']:.1f} ms | {e['p95_ms']:.1f} ms "
                f"| {r['product']['p50_ms']:.1f} ms | {e['mb']:.0f} | {a['library']} | {a['ef']} "
                f"| {a['p50_ms']:.2f} ms | {a['p95_ms']:.2f} ms | {100 * a['recall_at_10']:.2f} % "
                f"| {100 * a['cosine_recall_at_10']:.2f} % | {a['build_s']:.0f} s "
                f"| {a['index_mb']:.0f} |"
            )
        reach = ", ".join(
            f"top {k}: {100 * v:.2f} %" for k, v in r["as_norm_top10_within_cosine_top_k"].items()
        )
        print(f"| {r['size']} | AS-norm top 10 within the exact cosine {reach} |")
    print(f"wrote {args.out}")


def write(rows: list[dict], args: argparse.Namespace) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"label": LABEL, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
    args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
