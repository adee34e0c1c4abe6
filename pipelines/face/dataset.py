"""ORL / AT&T Database of Faces (Olivetti Research Laboratory): the evaluation protocol.

Per subject sN: enrol on images 1-5, genuine probes 6-10; the subject lends images 6-10
as impostor probes to every other subject. Images go through the pipeline's own
decode -> preprocess, as a phone's frames would.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipelines.evaluation.protocol import EvalSubject, select_subjects
from pipelines.face.frames import decode_frames, encode_frames, normalise

ENROL = (1, 2, 3, 4, 5)
PROBES = (6, 7, 8, 9, 10)

# `tacit eval trust`: images per upload, and the half-lives `--folds` tries for this factor
TRUST_BATCH = 1
HALF_LIFE_GRID = (30.0, 60.0, 120.0, 300.0, 900.0)


def read_pgm(path: Path) -> np.ndarray:
    """A binary (P5) 8-bit PGM image -> uint8 [h, w]."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:  # magic, width, height, maxval; '#' starts a comment
        m = re.compile(rb"\s*(#[^\n]*\n\s*)*([^\s#]+)").match(data, pos)
        if m is None:
            raise ValueError(f"{path} is not a PGM image")
        fields.append(m.group(2))
        pos = m.end()
    if fields[0] != b"P5" or int(fields[3]) > 255:
        raise ValueError(f"{path} is not an 8-bit binary PGM image")
    w, h = int(fields[1]), int(fields[2])
    pixels = data[pos + 1 : pos + 1 + w * h]  # one whitespace byte ends the header
    if len(pixels) != w * h:
        raise ValueError(f"{path} is truncated")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w)


def find_root(data_dir: Path) -> Path:
    """The folder holding s1..sN, or a parent with att_faces/ or faces/att_faces/."""
    data_dir = Path(data_dir)
    for p in (data_dir, data_dir / "att_faces", data_dir / "faces" / "att_faces"):
        if p.is_dir() and any(_subject_dirs(p)):
            return p
    raise FileNotFoundError(f"no ORL subject folders (s1, s2, ...) in {data_dir}")


def _subject_dirs(root: Path) -> list[Path]:
    dirs = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)]
    return sorted(dirs, key=lambda p: int(p.name[1:]))


def read_subjects(data_dir: Path) -> dict[str, np.ndarray]:
    """subject -> uint8 images [10, h, w] (images 1..10), subjects in numeric order."""
    out = {}
    for d in _subject_dirs(find_root(data_dir)):
        files = [d / f"{k}.pgm" for k in range(1, 11)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"{d} lacks {', '.join(missing)}")
        out[d.name] = np.stack([read_pgm(f) for f in files])
    return out


def model_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 images -> plaintext -> the pipeline's decode and preprocess."""
    return normalise(decode_frames(encode_frames(images)))


def load_protocol(data_dir: Path, subjects: list[str] | None = None) -> list[EvalSubject]:
    """One EvalSubject per ORL subject (numeric order), optionally only `subjects`."""
    out = []
    for s, images in select_subjects(read_subjects(data_dir), subjects).items():
        x = model_inputs(images)
        probes = [(f"{s}/{k}", x[k - 1 : k]) for k in PROBES]
        out.append(
            EvalSubject(subject=s, enrol=x[[k - 1 for k in ENROL]], genuine=probes, impostor=probes)
        )
    return out
