"""The ``voiceprints`` table of a running voiceprint-api (xiaozhi), read from a file.

Two exports an operator can make without extra tools, both read here:

* ``mysqldump voiceprint_db voiceprints > voiceprints.sql`` (also with ``--hex-blob``,
  MySQL 8's ``_binary '...'`` and ``--complete-insert``);
* ``mysql -B -e "SELECT speaker_id, HEX(feature_vector) AS feature_vector FROM
  voiceprints" voiceprint_db > voiceprints.tsv`` (tab-separated, a header line).

Only ids and vector sizes come out: the vectors are another model's embeddings
(float32 bytes), which this server cannot score against its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The columns of voiceprint-api's CREATE TABLE, for dumps without one.
DEFAULT_COLUMNS = ["id", "speaker_id", "feature_vector", "created_at", "updated_at"]
_ESCAPES = {b"0": b"\0", b"b": b"\b", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"Z": b"\x1a"}
_INSERT = re.compile(
    rb"INSERT\s+(?:IGNORE\s+)?INTO\s+`?voiceprints`?\s*(\(([^)]*)\))?\s*VALUES", re.I
)
_CREATE = re.compile(rb"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?voiceprints`?\s*\(", re.I)
_NUMBER = re.compile(rb"-?[0-9][0-9.eE+-]*")
_HEX = re.compile(rb"0x([0-9A-Fa-f]*)|[Xx]'([0-9A-Fa-f]*)'")
_INTRODUCER = re.compile(rb"_[A-Za-z0-9]+\s*(?=')")


class ExportError(ValueError):
    """The file is not an export of the voiceprints table this module can read."""


@dataclass(frozen=True)
class ExportedVoiceprint:
    speaker_id: str
    vector: bytes  # float32s of voiceprint-api's model

    @property
    def dimensions(self) -> int:
        return len(self.vector) // 4


def read_export(path: Path) -> list[ExportedVoiceprint]:
    """The rows of a mysqldump file or a ``mysql -B`` TSV export, in file order."""
    data = path.read_bytes()
    if _INSERT.search(data) or _CREATE.search(data):
        return _from_dump(data)
    return _from_tsv(data)


def _row(speaker_id: bytes | None, vector: bytes | None, where: str) -> ExportedVoiceprint:
    if speaker_id is None or vector is None:
        raise ExportError(f"{where}: speaker_id or feature_vector is NULL")
    if len(vector) % 4:
        raise ExportError(f"{where}: feature_vector has {len(vector)} bytes, not float32s")
    try:
        text = speaker_id.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{where}: speaker_id is not UTF-8 text") from None
    return ExportedVoiceprint(text, vector)


# --- mysqldump ------------------------------------------------------------------------------


def _from_dump(data: bytes) -> list[ExportedVoiceprint]:
    default = _dump_columns(data)
    rows = []
    for statement in _INSERT.finditer(data):
        listed = statement.group(2)
        columns = [c.strip(b" `").decode() for c in listed.split(b",")] if listed else default
        for needed in ("speaker_id", "feature_vector"):
            if needed not in columns:
                raise ExportError(f"the INSERT at byte {statement.start()} has no {needed} column")
        at = statement.end()
        while True:
            values, at = _tuple(data, at)
            if len(values) != len(columns):
                raise ExportError(
                    f"a row at byte {at} has {len(values)} values for {len(columns)} columns"
                )
            row = dict(zip(columns, values, strict=True))
            rows.append(_row(row["speaker_id"], row["feature_vector"], f"row {len(rows) + 1}"))
            at = _skip_space(data, at)
            if data[at : at + 1] == b",":
                at += 1
                continue
            if data[at : at + 1] == b";":
                break
            raise ExportError(f"expected ',' or ';' at byte {at} of the dump")
    if not rows and not _CREATE.search(data):
        raise ExportError("no INSERT INTO `voiceprints` in the dump")
    return rows


def _dump_columns(data: bytes) -> list[str]:
    """Column order from the dump's CREATE TABLE, else voiceprint-api's."""
    create = _CREATE.search(data)
    if create is None:
        return DEFAULT_COLUMNS
    body = data[create.end() : data.find(b";", create.end())]
    return [m.decode() for m in re.findall(rb"^\s*`([^`]+)`", body, re.M)] or DEFAULT_COLUMNS


def _skip_space(data: bytes, at: int) -> int:
    while at < len(data) and data[at : at + 1].isspace():
        at += 1
    return at


def _tuple(data: bytes, at: int) -> tuple[list[bytes | None], int]:
    at = _skip_space(data, at)
    if data[at : at + 1] != b"(":
        raise ExportError(f"expected '(' at byte {at} of the dump")
    values: list[bytes | None] = []
    at += 1
    while True:
        value, at = _value(data, _skip_space(data, at))
        values.append(value)
        at = _skip_space(data, at)
        sep = data[at : at + 1]
        at += 1
        if sep == b")":
            return values, at
        if sep != b",":
            raise ExportError(f"expected ',' or ')' at byte {at - 1} of the dump")


def _value(data: bytes, at: int) -> tuple[bytes | None, int]:
    if data[at : at + 4].upper() == b"NULL":
        return None, at + 4
    introducer = _INTRODUCER.match(data, at)
    if introducer:  # MySQL 8 writes _binary '...' for BLOBs
        at = introducer.end()
    if data[at : at + 1] == b"'":
        return _quoted(data, at + 1)
    hexed = _HEX.match(data, at)
    if hexed:
        return bytes.fromhex((hexed.group(1) or hexed.group(2) or b"").decode()), hexed.end()
    number = _NUMBER.match(data, at)
    if number:
        return number.group(), number.end()
    raise ExportError(f"cannot read the value at byte {at} of the dump")


def _quoted(data: bytes, at: int) -> tuple[bytes, int]:
    """A single-quoted MySQL string from just after its quote; its bytes and the end."""
    out = bytearray()
    while at < len(data):
        byte = data[at : at + 1]
        if byte == b"\\":
            escaped = data[at + 1 : at + 2]
            out += _ESCAPES.get(escaped, escaped)
            at += 2
        elif byte == b"'":
            if data[at + 1 : at + 2] == b"'":  # '' is a quote inside the string
                out += b"'"
                at += 2
            else:
                return bytes(out), at + 1
        else:
            out += byte
            at += 1
    raise ExportError("the dump ends inside a quoted string (is the file cut short?)")


# --- mysql -B --------------------------------------------------------------------------------


def _from_tsv(data: bytes) -> list[ExportedVoiceprint]:
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        raise ExportError("the export is empty")
    header = [h.strip().decode(errors="replace") for h in lines[0].split(b"\t")]
    if "speaker_id" not in header or "feature_vector" not in header:
        raise ExportError(
            "not a mysqldump file, nor a tab-separated export with a header naming "
            f"speaker_id and feature_vector (got {header}); see `voiceprint import-xiaozhi -h`"
        )
    id_at, vector_at = header.index("speaker_id"), header.index("feature_vector")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.rstrip(b"\r").split(b"\t")
        if len(cells) != len(header):
            raise ExportError(f"line {number} has {len(cells)} columns, the header {len(header)}")
        try:
            vector = bytes.fromhex(cells[vector_at].decode())
        except ValueError:
            raise ExportError(
                f"line {number}: feature_vector is not hex; export it as HEX(feature_vector)"
            ) from None
        rows.append(_row(_unescape_tsv(cells[id_at]), vector, f"line {number}"))
    return rows


def _unescape_tsv(cell: bytes) -> bytes | None:
    if cell == b"NULL":
        return None
    return re.sub(rb"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), cell)
