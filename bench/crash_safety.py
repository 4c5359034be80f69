"""Crash safety under load: SIGKILL a real server N times while clients write, then check.

Three client threads create voiceprints, add samples, replace audio and delete
them on one server; after a random 0.5-2 s it is killed with SIGKILL and
restarted on the same data. At the end: every acknowledged voiceprint must be
there, every acknowledged delete must have stayed deleted, no sample may point
at missing audio, no voiceprint may be left without a sample, and the restart's
sweep must leave no unreferenced blob (file, or row with ``--blobs database``).
Prints the counts and writes bench/results/crash_safety-<database>[-<blobs>].json.

    .venv/bin/python bench/crash_safety.py [--cycles 20] [--database sqlite|postgresql] \
        [--blobs files|database] [--encrypted]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.conftest import postgres_database  # noqa: E402
from tests.api.crash_cycles import iterate, restartable, run_cycles  # noqa: E402

from voiceprint.store.crypto import generate_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--blobs", choices=["files", "database"], default="files")
    parser.add_argument("--encrypted", action="store_true", help="with an encryption key")
    args = parser.parse_args()
    settings = {"blob_store": args.blobs}
    if args.encrypted:
        settings["encryption_key"] = generate_key()
    tmp = Path(tempfile.mkdtemp(prefix="voiceprint-crash-"))
    urls = (
        postgres_database()
        if args.database == "postgresql"
        else iter([f"sqlite:///{tmp / 'vp.db'}"])
    )
    for url in urls:
        report = run_cycles(restartable(tmp, url, **settings), args.cycles)
    for line in iterate(report):
        print(line)
    suffix = ("-database" if args.blobs == "database" else "") + (
        "-encrypted" if args.encrypted else ""
    )
    out = ROOT / f"bench/results/crash_safety-{args.database}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
