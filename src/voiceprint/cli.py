"""The ``voiceprint`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from voiceprint.config import get_settings


def configure_logging() -> None:
    from voiceprint.api.envelope import current_logid

    class LogIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.logid = current_logid.get()
            return True

    handler = logging.StreamHandler()
    handler.addFilter(LogIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(logid)s] %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy import func, select

    from voiceprint.api.app import create_app
    from voiceprint.service.factory import open_database
    from voiceprint.store.models import Token

    configure_logging()
    settings = get_settings()
    database, sessions = open_database(settings)
    with sessions() as session:
        has_tokens = session.scalar(select(func.count()).select_from(Token))
    database.dispose()
    if not has_tokens:
        print(
            "No API tokens exist yet. Create one in another terminal with:\n"
            "    .venv/bin/voiceprint token create --user alice\n"
            "and send it as 'Authorization: Bearer <token>'.",
            file=sys.stderr,
        )
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        access_log=False,  # our access log omits query strings, which may hold link signatures
        log_config=None,
    )
    return 0


def _cmd_token_create(args: argparse.Namespace) -> int:
    from voiceprint.auth.tokens import mint_token
    from voiceprint.service.factory import open_database

    database, sessions = open_database(get_settings())
    try:
        with sessions() as session, session.begin():
            minted = mint_token(
                session,
                user=args.user,
                workspace=args.workspace,
                permissions=args.permissions,
                expires_days=args.expires_days,
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(f"token {minted.id} for user '{minted.account}' in workspace '{minted.workspace}'.")
    print("It is shown only this once; store it safely:")
    print(minted.token)
    return 0


def _cmd_token_list(args: argparse.Namespace) -> int:
    import time

    from voiceprint.auth.tokens import list_tokens
    from voiceprint.service.factory import open_database

    database, sessions = open_database(get_settings())
    with sessions() as session:
        rows = [
            (
                t.id,
                t.account.workspace.name,
                t.account.name,
                t.permissions,
                t.expires_at,
                t.revoked_at,
            )
            for t in list_tokens(session)
        ]
    database.dispose()
    now = time.time()
    print(f"{'ID':<20} {'WORKSPACE':<16} {'USER':<16} {'STATE':<8} PERMISSIONS")
    for token_id, workspace, user, permissions, expires, revoked in rows:
        state = "revoked" if revoked else "expired" if expires and expires <= now else "active"
        print(f"{token_id:<20} {workspace:<16} {user:<16} {state:<8} {permissions}")
    return 0


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    from voiceprint.auth.tokens import revoke_token
    from voiceprint.service.factory import open_database

    database, sessions = open_database(get_settings())
    with sessions() as session, session.begin():
        found = revoke_token(session, args.id)
    database.dispose()
    if not found:
        print(f"error: no token with id {args.id}", file=sys.stderr)
        return 1
    print(f"token {args.id} revoked")
    return 0


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

    serve = add("serve", _cmd_serve, "run the HTTP server")
    serve.add_argument("--host", help="address to bind (default VOICEPRINT_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default VOICEPRINT_PORT or 8000)")

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="token_command", required=True
    )
    create = token.add_parser("create", help="create a token (and its user/workspace if new)")
    create.set_defaults(handler=_cmd_token_create)
    create.add_argument("--user", required=True, help="account name")
    create.add_argument("--workspace", default="default", help="workspace name (default: default)")
    create.add_argument(
        "--permissions", default="all", help="'all' or comma-separated Coze permission names"
    )
    create.add_argument("--expires-days", type=float, help="expire after N days (default: never)")
    token.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        handler=_cmd_token_list
    )
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.set_defaults(handler=_cmd_token_revoke)
    revoke.add_argument("id", type=int)

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
