"""Reading voiceprint-api's ``voiceprints`` table from real MariaDB exports (tests/fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from voiceprint.store.xiaozhi import ExportError, read_export

FIXTURES = REPO / "tests" / "fixtures" / "xiaozhi"
IDS = [
    "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "test1",
    "张三",
    "7c9e6679742540de944be07fc1f90ae7",
]


@pytest.mark.parametrize("name", ["voiceprints.sql", "voiceprints-hex-blob.sql"])
def test_a_mysqldump_gives_the_rows_the_tsv_export_gives(name: str) -> None:
    truth = read_export(FIXTURES / "voiceprints.tsv")  # plain hex: nothing to unescape
    assert [row.speaker_id for row in truth] == IDS
    dumped = read_export(FIXTURES / name)
    assert dumped == truth
    for row in dumped:
        vector = np.frombuffer(row.vector, dtype="<f4")
        assert row.dimensions == 192 and np.all(np.isfinite(vector))
        assert 0.5 < float(np.linalg.norm(vector)) < 1000


def test_mysql8_binary_introducer_and_complete_inserts(tmp_path: Path) -> None:
    dump = tmp_path / "mysql8.sql"
    dump.write_bytes(
        b"INSERT INTO `voiceprints` (`speaker_id`, `feature_vector`) VALUES "
        b"('o''brien',_binary 'a\\0b\\'c\\\\de'),('x',0x0000803F);\n"
    )
    rows = read_export(dump)
    assert [(r.speaker_id, r.vector) for r in rows] == [
        ("o'brien", b"a\0b'c\\de"),
        ("x", np.float32(1.0).tobytes()),
    ]


def test_a_dump_cut_short_is_refused(tmp_path: Path) -> None:
    data = (FIXTURES / "voiceprints.sql").read_bytes()
    cut = tmp_path / "cut.sql"
    cut.write_bytes(data[: data.index(b"INSERT") + 400])
    with pytest.raises(ExportError, match="cut short"):
        read_export(cut)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test1\t3F800000\n", "header naming speaker_id"),
        ("speaker_id\tfeature_vector\ntest1\tnot-hex\n", "HEX\\(feature_vector\\)"),
        ("speaker_id\tfeature_vector\ntest1\t3F80\n", "not float32s"),
        ("", "empty"),
    ],
)
def test_a_bad_tsv_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    export = tmp_path / "export.tsv"
    export.write_text(text)
    with pytest.raises(ExportError, match=message):
        read_export(export)
