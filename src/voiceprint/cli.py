"""The ``voiceprint`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voiceprint.config import Settings, get_settings
from voiceprint.eval.conditions import CONDITIONS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from voiceprint.service.audit import AuditTrail
    from voiceprint.service.factory import Models
    from voiceprint.store.vault import Vault


@dataclass(frozen=True)
class Stored:
    sessions: sessionmaker[Session]
    vault: Vault
    trail: AuditTrail


# Who the packaged calibration is fitted on: the first speakers of each set by id
# (the rest are held out), real phone callers included.
DEFAULT_FIT = ("speechocean762:20", "commonvoice_zh:25", "telephone:21")


def configure_logging() -> None:
    """One line per record, with the request's logid; JSON with VOICEPRINT_LOG_FORMAT=json."""
    from voiceprint.logid import current_logid

    class LogIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.logid = current_logid.get()
            return True

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            line = {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "logid": getattr(record, "logid", "-"),
                "message": record.getMessage(),
            }
            if record.exc_info:
                line["error"] = self.formatException(record.exc_info)
            return json.dumps(line, ensure_ascii=False)

    handler = logging.StreamHandler()
    handler.addFilter(LogIdFilter())
    if get_settings().log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(logid)s] %(message)s")
        )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy import func, select

    from voiceprint.api.app import create_app
    from voiceprint.service.factory import open_database, open_vault
    from voiceprint.store.crypto import EncryptionKeyError
    from voiceprint.store.models import Token

    configure_logging()
    settings = get_settings()
    database, sessions = open_database(settings)
    try:
        open_vault(settings, sessions)  # a wrong or missing key stops here, before serving
        with sessions() as session:
            has_tokens = session.scalar(select(func.count()).select_from(Token))
    except EncryptionKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
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
    from voiceprint.embedding.models import MODELS
    from voiceprint.embedding.provision import pull_models

    settings = get_settings()
    for name in MODELS if args.all else [settings.model]:
        paths = pull_models(settings.model_dir, name)
        print(f"{name} ready in {paths.model_dir}")
    return 0


@contextmanager
def _stored(settings: Settings) -> Iterator[Stored]:
    """The database, the vault (a wrong or missing key exits with its message) and the
    audit trail, as a command uses them."""
    from voiceprint.api.errors import code_of
    from voiceprint.service.audit import AuditTrail
    from voiceprint.service.factory import open_database, open_vault
    from voiceprint.store.crypto import EncryptionKeyError

    database, sessions = open_database(settings)
    try:
        vault = open_vault(settings, sessions)
    except EncryptionKeyError as exc:
        database.dispose()
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        yield Stored(sessions, vault, AuditTrail(sessions, code_of))
    finally:
        database.dispose()


def _cmd_reembed(args: argparse.Namespace) -> int:
    from voiceprint.service.factory import load_models
    from voiceprint.service.reembed import reembed, stale_samples

    configure_logging()
    settings = get_settings()
    voice = load_models(settings).voice
    with _stored(settings) as stored:
        report = reembed(stored.sessions, stored.vault, voice, stored.trail, progress=True)
        left = len(stale_samples(stored.sessions, voice.model_id))
    print(
        f"re-embedded {report.done} samples with {voice.model_id} in {report.seconds:.1f} s "
        f"({report.per_second:.1f} samples/s); {report.remeasured} measured again; "
        f"{report.failed} failed; {left} left to do"
    )
    return 1 if left else 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from voiceprint.audio.decode import decode_audio
    from voiceprint.audio.errors import AudioError
    from voiceprint.engine import SpeechPolicy
    from voiceprint.service.factory import load_models

    settings = get_settings()
    voice = load_models(settings).voice
    any_speech = SpeechPolicy("an embedding", min_speech_s=0.0)
    results, failed = [], 0
    for name in args.files:
        path = Path(name)
        try:
            audio = decode_audio(path.read_bytes(), max_seconds=settings.max_audio_seconds)
            if args.raw:
                embedding, speech_s = voice.embed_raw(audio), None
            else:
                sample = voice.analyse(audio, any_speech)
                embedding, speech_s = sample.embedding, round(sample.speech_s, 3)
        except (OSError, AudioError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        results.append(
            {
                "file": str(path),
                "model": voice.model_id,
                "duration_s": round(audio.duration, 3),
                "speech_s": speech_s,
                "embedding": [round(float(v), 6) for v in embedding],
            }
        )
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 1 if failed else 0


def _cmd_diarize(args: argparse.Namespace) -> int:
    from voiceprint.api.schemas import Diarized
    from voiceprint.audio.errors import AudioError
    from voiceprint.diarization.diarizer import Diarizer
    from voiceprint.scoring.scorer import Voices
    from voiceprint.service import queries
    from voiceprint.service.conversations import DiarizeOptions, describe, rttm
    from voiceprint.service.factory import load_models
    from voiceprint.service.inference import InferenceGate
    from voiceprint.service.recordings import AudioUpload, Recordings
    from voiceprint.store.models import Feature

    settings = get_settings()
    models = load_models(settings)
    candidates, voiceprints = [], Voices.concat([])
    with _stored(settings) as stored:
        vault = stored.vault
        if args.group is not None:
            with stored.sessions() as session:
                candidates, voiceprints = queries.enrolled(
                    session, vault, models.voice.model_id, Feature.group_id == args.group
                )
    recordings = Recordings(models.voice, InferenceGate(1, 0), vault, settings.max_audio_seconds)
    options = DiarizeOptions(num_speakers=args.num_speakers, top_k=args.top_k)
    try:
        conversation = recordings.diarize(
            AudioUpload(Path(args.file).read_bytes()),
            Diarizer(models.voice),
            options,
            settings.max_diarize_seconds,
        )
    except (OSError, AudioError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    view = describe(conversation, candidates, voiceprints, models.scorer, args.top_k)
    if args.rttm:
        sys.stdout.write(rttm(view, Path(args.file).stem))
    else:
        print(Diarized.of(view).model_dump_json(indent=2))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from voiceprint.service import audit
    from voiceprint.store.backup import ArchiveError, export_archive
    from voiceprint.store.crypto import DamagedData

    with _stored(get_settings()) as stored:
        try:
            with stored.trail.operation(audit.EXPORT, None):
                summary = export_archive(
                    stored.sessions,
                    stored.vault,
                    Path(args.file),
                    with_tokens=args.with_tokens,
                    plaintext=args.plaintext,
                )
        except (ArchiveError, DamagedData, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"wrote {args.file}: {summary}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from voiceprint.service import audit
    from voiceprint.store.backup import ArchiveError, import_archive

    with _stored(get_settings()) as stored:
        try:
            with stored.trail.operation(audit.IMPORT, None):
                summary = import_archive(stored.sessions, stored.vault, Path(args.file))
        except (ArchiveError, OSError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        encrypted = stored.vault.encrypted
    print(f"restored {args.file}: {summary}")
    if encrypted and not summary.encrypted:
        print("the recordings are stored in clear: run `voiceprint keys encrypt` to seal them")
    return 0


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    from voiceprint.store.crypto import generate_key

    print(generate_key())
    return 0


def _cmd_keys_rotate(args: argparse.Namespace) -> int:
    from voiceprint.service.factory import open_database
    from voiceprint.store.crypto import EncryptionKeyError, MasterKey
    from voiceprint.store.keyring import configured_master_key, rotate

    settings = get_settings()
    database, sessions = open_database(settings)
    try:
        old = configured_master_key(settings)
        if old is None:
            raise EncryptionKeyError(
                "set VOICEPRINT_ENCRYPTION_KEY (or _FILE) to the key in use now; the new one "
                "comes from --new-key-file"
            )
        new = MasterKey.read_file(Path(args.new_key_file))
        count = rotate(sessions, old, new)
    except EncryptionKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(
        f"rewrapped {count} data keys under master key {new.id}; running servers keep "
        "serving: start each with the new key from now on"
    )
    return 0


def _cmd_keys_encrypt(args: argparse.Namespace) -> int:
    from voiceprint.service.encryption import new_data_keys, seal_stored, unsealed_samples

    configure_logging()
    with _stored(get_settings()) as stored:
        if stored.vault.keyring is None:
            print("error: set VOICEPRINT_ENCRYPTION_KEY (or _FILE) first", file=sys.stderr)
            return 2
        if args.new_data_keys:
            count = new_data_keys(stored.sessions, stored.vault.keyring)
            print(f"{count} workspaces have a new data key")
        report = seal_stored(stored.sessions, stored.vault, stored.trail, progress=True)
        left = len(unsealed_samples(stored.sessions))
    print(
        f"encrypted {report.done} samples in {report.seconds:.1f} s; {report.failed} failed; "
        f"{left} left (run again: it resumes)"
    )
    return 1 if left else 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from voiceprint.service.audit import read_audit

    with _stored(get_settings()) as stored:
        try:
            events = read_audit(
                stored.sessions,
                since=args.since,
                workspace=args.workspace,
                feature_id=args.feature,
                operation=args.operation,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        for event in events:
            print(json.dumps(event.as_dict(), ensure_ascii=False))
        return 0
    print(
        f"{'TIME (UTC)':<20} {'OPERATION':<20} {'RESULT':<6} {'WORKSPACE':<14} {'USER':<12} "
        f"{'TOKEN':<20} {'GROUP':<20} {'VOICEPRINT':<20} LOGID"
    )
    for e in events:
        print(
            f"{e.time:<20} {e.operation:<20} {e.result_code:<6} {e.workspace or '-':<14} "
            f"{e.user or '-':<12} {e.token_id or '-':<20} {e.group_id or '-':<20} "
            f"{e.feature_id or '-':<20} {e.logid}"
        )
    return 0


def _cmd_import_xiaozhi(args: argparse.Namespace) -> int:
    from voiceprint.auth.tokens import account_principal
    from voiceprint.service.factory import build_runtime
    from voiceprint.service.migration import migrate_speakers
    from voiceprint.service.speakers import Speakers
    from voiceprint.store.xiaozhi import ExportError, read_export

    try:
        exported = read_export(Path(args.file))
    except (ExportError, OSError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    if args.audio_dir and not Path(args.audio_dir).is_dir():
        print(f"error: --audio-dir {args.audio_dir} is not a folder", file=sys.stderr)
        return 1
    runtime = build_runtime(get_settings())
    try:
        with runtime.sessions() as session:
            caller = account_principal(session, args.user, args.workspace)
        if caller is None:
            print(
                f"error: no user '{args.user}' in workspace '{args.workspace}'; make the key "
                f"xiaozhi will use first: voiceprint token create --user {args.user} "
                f"--workspace {args.workspace}",
                file=sys.stderr,
            )
            return 1
        report = migrate_speakers(
            Speakers(runtime.service, runtime.sessions),
            caller,
            [(row.speaker_id, row.dimensions) for row in exported],
            Path(args.audio_dir) if args.audio_dir else None,
        )
    finally:
        runtime.database.dispose()
    print(report)
    return 1 if report.refused else 0


def _evaluation_parts(calibration: str | None = None) -> tuple[Settings, Models]:
    """Settings and models, as the server builds them."""
    from voiceprint.service.factory import load_models

    settings = get_settings()
    return settings, load_models(settings, calibration=Path(calibration) if calibration else None)


def _cmd_eval(args: argparse.Namespace) -> int:
    from voiceprint.eval.corpus import load_corpus
    from voiceprint.eval.report import operating_points, plot, table
    from voiceprint.eval.runner import calibrated_fn, embed_corpus, evaluate_set, raw_fn
    from voiceprint.scoring.scorer import MATCH_THRESHOLD, cosine_matrix

    configure_logging()
    settings, models = _evaluation_parts(args.calibration)
    scorer = models.scorer
    utterances = load_corpus(Path(args.path))
    held_back = set(scorer.calibration.speakers)
    if not args.include_calibration_speakers:
        utterances = [u for u in utterances if f"{u.set}/{u.speaker}" not in held_back]
    embedded = embed_corpus(
        models.voice,
        utterances,
        min_speech_s=None if args.plain else settings.min_probe_speech_s,
        cache=Path(args.cache) if args.cache else None,
        condition=args.condition,
    )
    if args.plain:
        score, threshold = raw_fn(cosine_matrix), None
    else:
        score, threshold = calibrated_fn(scorer), MATCH_THRESHOLD
    # Sets with one recording per speaker (the cohort) have no same-speaker trials.
    per_speaker = Counter((u.set, u.speaker) for u in utterances)
    sets = list(dict.fromkeys(s for (s, _), n in per_speaker.items() if n > 1))
    results = [
        evaluate_set(
            name,
            embedded,
            score,
            threshold=threshold,
            group_size=args.group_size,
            enroll_clips=args.enroll_clips,
        )
        for name in sets
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fitted = scorer.calibration
    steps = ["VAD gate", "whole clip"]
    steps += ["centring"] if fitted.domain_mean else []
    steps += [{"asnorm": "AS-norm", "shift": "cohort shift"}.get(fitted.method, "cosine")]
    steps += ["calibrated score per condition" if fitted.narrowband else "calibrated score"]
    pipeline = (
        "plain (whole clip, cosine, EER threshold)"
        if args.plain
        else f"full ({', '.join(steps)}, threshold 50)"
    )
    summary = {
        "pipeline": pipeline,
        "condition": args.condition,
        "model": models.voice.model_id,
        "calibration": scorer.calibration.fitted_on,
        "calibration_speakers_left_out": not args.include_calibration_speakers,
        "group_size": args.group_size,
        "enroll_clips": args.enroll_clips,
        "sets": [r.summary() for r in results],
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    images = plot(results, out)
    print(f"pipeline: {pipeline}; audio {args.condition}")
    if not args.include_calibration_speakers and held_back:
        print(f"left out {len(held_back)} calibration speakers ({scorer.calibration.fitted_on})")
    print(table(results))
    if not args.plain:
        print("\nWhat scores mean (same-speaker vs different-speaker trials):")
        print(operating_points(results, (30, 50, 70, 90)))
    print(f"wrote {out / 'results.json'}, " + ", ".join(str(p) for p in images))
    return 0


def _fit_sets(specs: Sequence[str]) -> list[tuple[str, int]]:
    """``SET:N`` -> (set, N): the first N speakers (by id) of each set."""
    parsed = []
    for spec in specs:
        name, _, count = spec.partition(":")
        parsed.append((name, int(count) if count else 10**6))
    return parsed


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from voiceprint.embedding.provision import pull_models
    from voiceprint.engine import VoiceEngine
    from voiceprint.eval import calibrate
    from voiceprint.eval.conditions import NARROWBAND
    from voiceprint.eval.corpus import load_corpus
    from voiceprint.eval.runner import embed_corpus

    configure_logging()
    settings = get_settings()
    paths = pull_models(settings.model_dir, settings.model)
    voice = VoiceEngine.from_paths(paths, threads=settings.inference_threads)
    cache = Path(args.cache) if args.cache else None
    utterances = load_corpus(Path(args.path))
    chosen: set[tuple[str, str]] = set()
    parts = []
    for set_name, count in _fit_sets(args.fit):
        speakers = sorted({u.speaker for u in utterances if u.set == set_name})[:count]
        chosen |= {(set_name, s) for s in speakers}
        parts.append(f"{set_name} speakers {speakers[0]}..{speakers[-1]} ({len(speakers)})")
    own_cohort = args.method == "shift" or (
        args.method == "asnorm" and not paths.spec.cohort_in_model_files
    )
    # Impostors serve AS-norm's packaged cohort, and the line detector's resampled side.
    wanted = own_cohort or args.narrowband
    impostors = {(u.set, u.speaker) for u in utterances if wanted and u.set in args.cohort}
    mine = [u for u in utterances if (u.set, u.speaker) in chosen | impostors]
    min_speech = settings.min_probe_speech_s
    embedded = embed_corpus(voice, mine, min_speech_s=min_speech, cache=cache)
    narrowband = None
    if args.narrowband:
        # Recordings already narrow-band (real calls) are not passed through a line again.
        wide = [u for u, nb in zip(mine, embedded.narrowband, strict=True) if not nb]
        narrowband = embed_corpus(
            voice, wide, min_speech_s=min_speech, cache=cache, condition=NARROWBAND
        )
    description = (
        ", ".join(parts) + f"; bar at {100 * args.decision_far:g} % of strangers passing a "
        "decision, in the hardest set"
    )
    if narrowband:
        description += (
            "; narrow-band curves on the wide-band speakers through an 8 kHz line, "
            "a telephone-line curve on the real calls"
        )
    if impostors:
        description += f"; {len(impostors)} impostors of {', '.join(args.cohort)}"
    if args.centre:
        which = "wide-band recordings" if narrowband else "recordings"
        description += f"; {which} centred on the fitting speakers' mean"
    if args.method == "shift":
        description += (
            f"; wide-band pairs less {args.shift:g} of the sides' mean {args.top_k} closest "
            "cohort scores"
        )
    fitted, cohort = calibrate.fit(
        embedded,
        chosen,
        decision_far=args.decision_far,
        description=description,
        method=args.method,
        narrowband=narrowband,
        cohort=impostors,
        model_cohort=np.load(paths.cohort) if args.method == "asnorm" and not own_cohort else None,
        top_k=args.top_k,
        shift=args.shift if args.method == "shift" else 0.0,
        centre=args.centre,
    )
    out = Path(args.out) if args.out else paths.calibration
    fitted.save(out)
    if cohort is not None:
        np.save(out.with_name("cohort.npy"), cohort.astype(np.float32))
    print(f"threshold {fitted.threshold} (+{fitted.per_decade} per decade), slope {fitted.slope}")
    others = (("narrow-band", fitted.narrowband), ("mixed", fitted.mixed))
    for name, curve in (*others, ("telephone line", fitted.telephone)):
        if curve:
            print(f"{name}: threshold {curve.threshold} (+{curve.per_decade}), slope {curve.slope}")
    print(f"wrote {out}" + (f" and {len(cohort)} cohort voices" if cohort is not None else ""))
    return 0


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
    pull.add_argument("--all", action="store_true", help="every model, not only VOICEPRINT_MODEL's")
    keys = sub.add_parser("keys", help="manage the encryption keys").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser("generate", help="print a new master key (base64)").set_defaults(
        handler=_cmd_keys_generate
    )
    rotate = keys.add_parser(
        "rotate", help="rewrap every data key under a new master key (servers keep serving)"
    )
    rotate.set_defaults(handler=_cmd_keys_rotate)
    rotate.add_argument("--new-key-file", required=True, help="file holding the new master key")
    encrypt = keys.add_parser(
        "encrypt",
        help="seal every recording and embedding stored in clear, while servers serve "
        "(idempotent, resumable, safe to stop)",
    )
    encrypt.set_defaults(handler=_cmd_keys_encrypt)
    encrypt.add_argument(
        "--new-data-keys",
        action="store_true",
        help="first give every workspace a new data key, then re-encrypt everything under it",
    )
    audit = add("audit", _cmd_audit, "read the audit trail of operations on biometric data")
    audit.add_argument("--since", help="from this time on: ISO date/time (UTC) or Unix seconds")
    audit.add_argument("--workspace", help="workspace name")
    audit.add_argument("--feature", type=int, help="voiceprint id")
    audit.add_argument("--operation", help="operation name, e.g. identify")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    add(
        "reembed",
        _cmd_reembed,
        "recompute every voiceprint another model made, from its stored audio "
        "(idempotent, resumable, safe to stop)",
    )

    embed = add("embed", _cmd_embed, "print speaker embeddings of audio files as JSON")
    embed.add_argument(
        "--raw", action="store_true", help="embed the whole clip: no VAD, no trimming"
    )
    embed.add_argument("files", nargs="+")
    backup = add("export", _cmd_export, "write every workspace, voiceprint and recording to FILE")
    backup.add_argument("file")
    backup.add_argument("--with-tokens", action="store_true", help="also the tokens (hashed)")
    backup.add_argument(
        "--plaintext",
        action="store_true",
        help="recordings and embeddings in clear (required without an encryption key)",
    )
    restore = add("import", _cmd_import, "restore an export into an empty database")
    restore.add_argument("file")
    xiaozhi = add(
        "import-xiaozhi",
        _cmd_import_xiaozhi,
        "bring the speaker ids of a voiceprint-api (xiaozhi) here: FILE is `mysqldump "
        'voiceprint_db voiceprints` output, or `mysql -B -e "SELECT speaker_id, '
        'HEX(feature_vector) AS feature_vector FROM voiceprints" voiceprint_db` output',
    )
    xiaozhi.add_argument("file")
    xiaozhi.add_argument(
        "--audio-dir",
        help="recordings to enrol from: <speaker_id>.wav files or <speaker_id>/ folders",
    )
    xiaozhi.add_argument("--user", default="xiaozhi", help="whose key xiaozhi uses (xiaozhi)")
    xiaozhi.add_argument("--workspace", default="default", help="its workspace (default)")
    diarize = add("diarize", _cmd_diarize, "who spoke when in a recording (JSON or RTTM)")
    diarize.add_argument("file")
    diarize.add_argument("--group", type=int, help="name speakers from this group's voiceprints")
    diarize.add_argument("--num-speakers", type=int, help="the number of speakers, if known")
    diarize.add_argument("--top-k", type=int, default=1, help="voiceprint matches per speaker")
    diarize.add_argument("--rttm", action="store_true", help="RTTM lines instead of JSON")
    evaluate = add("eval", _cmd_eval, "measure recognition on labelled speech")
    evaluate.add_argument(
        "path", help="index.tsv (set, speaker, path) or a folder of speaker folders"
    )
    evaluate.add_argument("--out", default="eval-results", help="folder for results.json and plots")
    evaluate.add_argument(
        "--plain", action="store_true", help="baseline: whole clips, cosine, EER threshold"
    )
    evaluate.add_argument(
        "--condition",
        choices=CONDITIONS,
        default="as-recorded",
        help="narrowband: pass every recording through an 8 kHz line first",
    )
    evaluate.add_argument("--group-size", type=int, default=10)
    evaluate.add_argument("--enroll-clips", type=int, default=1, help="utterances per voiceprint")
    evaluate.add_argument("--cache", help="JSON file to keep embeddings between runs")
    evaluate.add_argument("--calibration", help="calibration JSON (default: the packaged one)")
    evaluate.add_argument(
        "--include-calibration-speakers",
        action="store_true",
        help="also score the speakers the calibration was fitted on (optimistic)",
    )

    calibrate = add("calibrate", _cmd_calibrate, "fit the 0-100 score calibration")
    calibrate.add_argument("path", help="index.tsv or a folder of speaker folders")
    calibrate.add_argument(
        "--fit",
        action="append",
        metavar="SET:N",
        help=f"fit on the first N speakers of SET (repeatable; default {' '.join(DEFAULT_FIT)})",
    )
    calibrate.add_argument(
        "--decision-far",
        type=float,
        default=0.003,
        help="share of strangers that may pass one decision (identify, verify) at 50",
    )
    calibrate.add_argument(
        "--method",
        choices=("cosine", "asnorm", "shift"),
        default="asnorm",
        help="score normalisation (shift: wide-band pairs lose part of their cohort level)",
    )
    calibrate.add_argument(
        "--cohort",
        nargs="+",
        default=["cohort"],
        metavar="SET",
        help="sets whose speakers serve as impostors only (AS-norm's packaged cohort, "
        "the resampled side of the phone-line detector)",
    )
    calibrate.add_argument(
        "--top-k", type=int, default=50, help="closest impostors for AS-norm or the shift"
    )
    calibrate.add_argument(
        "--shift", type=float, default=0.5, help="share of the cohort level the shift takes off"
    )
    calibrate.add_argument(
        "--centre",
        action="store_true",
        help="subtract the fitting mean (with --narrowband: of wide-band recordings, from them)",
    )
    calibrate.add_argument(
        "--narrowband", action="store_true", help="also fit a curve for 8 kHz (telephone) speech"
    )
    calibrate.add_argument("--cache", help="JSON file to keep embeddings between runs")
    calibrate.add_argument("--out", help="where to write (default: the model's packaged file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from voiceprint.logid import current_logid, new_logid

    args = build_parser().parse_args(argv)
    current_logid.set(new_logid())  # a command's audit rows and log lines share one
    if args.command == "calibrate" and not args.fit:
        args.fit = list(DEFAULT_FIT)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
