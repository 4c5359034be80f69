"""The ``voiceprint`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from voiceprint.config import get_settings


def _cmd_model_pull(args: argparse.Namespace) -> int:
    from voiceprint.embedding.provision import pull_models

    paths = pull_models(get_settings().model_dir)
    print(f"models ready in {paths.root}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from voiceprint.audio.decode import decode_audio
    from voiceprint.audio.errors import AudioError
    from voiceprint.engine import VoiceEngine

    settings = get_settings()
    engine = VoiceEngine.load(settings.model_dir, threads=settings.inference_threads)
    results, failed = [], 0
    for name in args.files:
        path = Path(name)
        try:
            audio = decode_audio(path.read_bytes(), max_seconds=settings.max_audio_seconds)
            if args.raw:
                embedding, speech_s = engine.embed_raw(audio), None
            else:
                sample = engine.analyze(audio, min_speech_s=0.0, purpose="an embedding")
                embedding, speech_s = sample.embedding, round(sample.speech_s, 3)
        except (OSError, AudioError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        results.append(
            {
                "file": str(path),
                "model": engine.model_id,
                "duration_s": round(audio.duration, 3),
                "speech_s": speech_s,
                "embedding": [round(float(v), 6) for v in embedding],
            }
        )
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voiceprint", description="Self-hosted voiceprint service"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    model = sub.add_parser("model", help="manage the model files").add_subparsers(
        dest="model_command", required=True
    )
    pull = model.add_parser("pull", help="fetch, verify and convert the models (idempotent)")
    pull.set_defaults(handler=_cmd_model_pull)

    embed = add("embed", _cmd_embed, "print speaker embeddings of audio files as JSON")
    embed.add_argument(
        "--raw", action="store_true", help="embed the whole clip: no VAD, no trimming"
    )
    embed.add_argument("files", nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
