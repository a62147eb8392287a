"""The one SPINEPS/TPTBox-compatible label table.

Semantic values (``seg-spine``) and instance values (``seg-vert``) used by masks, tables, CLI help
and colour tables. Values follow TPTBox ``Location`` and ``vert_constants``.

The vertebral body: the spine pipeline (like SPINEPS' semantic output) writes the whole body as 49. TPTBox
calls 49 ``Vertebra_Corpus_border`` and 50 ``Vertebra_Corpus`` because its subregion reference maps split
the body into a rim (49) and an inner part (50); neurospine reads both as the body
(``spine.classes.spineps_to_net``) and never writes 50. So the tables name 49 ``vertebra_corpus`` and 50
``vertebra_corpus_inner`` (``written=False``, like the endplate halves 52/53 of reference maps).

Tables (:data:`TABLE_KINDS`, ``neurospine labels --kind``), one per kind of mask file
(:data:`KIND_FILES`): ``semantic`` and ``instance`` (spine; ``instance`` also for the slice2d mask with
anchored level names), ``cord`` and ``canal`` (the binary masks of ``neurospine cord``, 1 = the structure)
and ``positional`` (the slice2d mask without a level anchor: bodies 1..N from the top, ``100 + id`` for
the disc below).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Structure(IntEnum):
    """Semantic labels of the ``seg-spine`` mask (SPINEPS values)."""

    SACRUM = 26
    ARCUS = 41
    SPINOUS = 42
    COSTAL_L = 43
    COSTAL_R = 44
    SUP_ARTICULAR_L = 45
    SUP_ARTICULAR_R = 46
    INF_ARTICULAR_L = 47
    INF_ARTICULAR_R = 48
    CORPUS = 49  # the whole vertebral body as neurospine/SPINEPS write it (TPTBox: Vertebra_Corpus_border)
    CORPUS_INNER = 50  # TPTBox Vertebra_Corpus: inner body of subregion reference maps; never written
    ENDPLATE_SUP = 52
    ENDPLATE_INF = 53
    CORD = 60
    CANAL = 61
    ENDPLATE = 62
    DISC = 100


@dataclass(frozen=True)
class LabelInfo:
    value: int
    name: str
    region: str
    rgb: tuple[int, int, int]
    #: False: a value of reference maps that neurospine reads but never writes
    written: bool = True


SEMANTIC_LABELS: tuple[LabelInfo, ...] = (
    LabelInfo(26, "sacrum", "bone", (230, 190, 100)),
    LabelInfo(41, "arcus_vertebrae", "posterior", (200, 120, 80)),
    LabelInfo(42, "spinous_process", "posterior", (240, 90, 60)),
    LabelInfo(43, "costal_process_left", "posterior", (120, 200, 90)),
    LabelInfo(44, "costal_process_right", "posterior", (90, 170, 60)),
    LabelInfo(45, "superior_articular_left", "posterior", (90, 120, 220)),
    LabelInfo(46, "superior_articular_right", "posterior", (60, 90, 190)),
    LabelInfo(47, "inferior_articular_left", "posterior", (200, 90, 200)),
    LabelInfo(48, "inferior_articular_right", "posterior", (170, 60, 170)),
    LabelInfo(49, "vertebra_corpus", "corpus", (245, 215, 110)),
    LabelInfo(50, "vertebra_corpus_inner", "corpus", (250, 230, 150), written=False),
    LabelInfo(52, "endplate_superior", "endplate", (140, 230, 230), written=False),
    LabelInfo(53, "endplate_inferior", "endplate", (100, 200, 200), written=False),
    LabelInfo(60, "spinal_cord", "neural", (255, 255, 0)),
    LabelInfo(61, "spinal_canal", "neural", (60, 180, 255)),
    LabelInfo(62, "endplate", "endplate", (120, 220, 220)),
    LabelInfo(100, "intervertebral_disc", "disc", (80, 230, 120)),
)

#: The 14 structures the semantic model predicts (SPINEPS output: corpus as 49, endplates as 62).
SEMANTIC_OUTPUT_VALUES: tuple[int, ...] = (41, 42, 43, 44, 45, 46, 47, 48, 49, 60, 61, 62, 100, 26)

_SEM_BY_VALUE = {info.value: info for info in SEMANTIC_LABELS}

# ---- instance (seg-vert) labels -------------------------------------------------------------

DISC_OFFSET = 100
ENDPLATE_OFFSET = 200

_VERT_NAMES: dict[int, str] = {}
for _i in range(1, 8):
    _VERT_NAMES[_i] = f"C{_i}"
for _i in range(1, 13):
    _VERT_NAMES[7 + _i] = f"T{_i}"
for _i in range(1, 7):
    _VERT_NAMES[19 + _i] = f"L{_i}"
_VERT_NAMES[26] = "S1"
_VERT_NAMES[27] = "Cocc"
_VERT_NAMES[28] = "T13"
for _i in range(2, 7):
    _VERT_NAMES[27 + _i] = f"S{_i}"
VERTEBRA_NAMES: dict[int, str] = dict(_VERT_NAMES)
VERTEBRA_IDS: dict[str, int] = {name: value for value, name in VERTEBRA_NAMES.items()}

#: Canonical cranio-caudal order of the vertebra ids neurospine can name.
CRANIOCAUDAL_ORDER: tuple[int, ...] = (
    *range(1, 8),
    *range(8, 20),
    28,
    *range(20, 26),
    26,
)


def vertebra_name(value: int) -> str:
    """Level name of an instance id (``20`` -> ``"L1"``); raises ``KeyError`` for unknown ids."""
    return VERTEBRA_NAMES[value]


def vertebra_id(name: str) -> int:
    """Instance id of a level name (``"L1"`` -> ``20``)."""
    return VERTEBRA_IDS[name.upper() if name[0].islower() else name]


def next_caudal(value: int) -> int | None:
    """The vertebra below ``value`` in the standard order (T12 -> L1, L5 -> L6), ``None`` below S1."""
    order = CRANIOCAUDAL_ORDER
    idx = order.index(value)
    return order[idx + 1] if idx + 1 < len(order) else None


def instance_name(value: int) -> str:
    """Name of any ``seg-vert`` value: vertebra, disc (``L4-L5``) or endplate (``EP L4``)."""
    if value in VERTEBRA_NAMES:
        return VERTEBRA_NAMES[value]
    if DISC_OFFSET < value < ENDPLATE_OFFSET and value - DISC_OFFSET in VERTEBRA_NAMES:
        return f"disc_{VERTEBRA_NAMES[value - DISC_OFFSET]}"
    if ENDPLATE_OFFSET < value < 300 and value - ENDPLATE_OFFSET in VERTEBRA_NAMES:
        return f"endplate_{VERTEBRA_NAMES[value - ENDPLATE_OFFSET]}"
    raise KeyError(f"{value} is not a seg-vert label value")


def semantic_info(value: int) -> LabelInfo:
    return _SEM_BY_VALUE[value]


def _instance_rgb(value: int) -> tuple[int, int, int]:
    # Distinct, deterministic colours by level; discs/endplates tinted.
    base = (value * 67) % 256, (value * 139 + 80) % 256, (value * 29 + 160) % 256
    if value >= ENDPLATE_OFFSET:
        return (200, 220, 230)
    if value >= DISC_OFFSET:
        return (80, 230, 120)
    return base


#: kinds of label table, one per kind of mask file
TABLE_KINDS: tuple[str, ...] = ("semantic", "instance", "cord", "canal", "positional")
#: the files each table describes (``<stem>`` = input name without extension)
KIND_FILES: dict[str, str] = {
    "semantic": "<stem>_seg-spine_msk.nii.gz (neurospine spine)",
    "instance": "<stem>_seg-vert_msk.nii.gz (neurospine spine); <stem>_slice2d_msk.nii.gz with --lowest-level "
    "(neurospine slice2d)",
    "cord": "<stem>_seg-cord_msk.nii.gz (neurospine cord; binary)",
    "canal": "<stem>_seg-canal_msk.nii.gz (neurospine cord; binary, includes the cord)",
    "positional": "<stem>_slice2d_msk.nii.gz without --lowest-level (neurospine slice2d; positional ids from the top)",
}
#: positional slice2d ids go up to the number of bodies in view + 1 (a spine has at most 33 vertebrae)
MAX_POSITIONAL = 40


def positional_name(value: int) -> str:
    """Name of a positional slice2d id: ``body3``, or ``disc3`` for ``103`` (the disc below body 3)."""
    if 1 <= value <= MAX_POSITIONAL:
        return f"body{value}"
    if DISC_OFFSET < value <= DISC_OFFSET + MAX_POSITIONAL:
        return f"disc{value - DISC_OFFSET}"
    raise KeyError(f"{value} is not a positional slice2d label value")


def all_label_rows(kind: str = "semantic") -> list[LabelInfo]:
    """Rows of one table (:data:`TABLE_KINDS`), for export and CLI help."""
    if kind == "semantic":
        return list(SEMANTIC_LABELS)
    if kind == "instance":
        rows = [LabelInfo(v, VERTEBRA_NAMES[v], "vertebra", _instance_rgb(v)) for v in sorted(VERTEBRA_NAMES)]
        for v in sorted(VERTEBRA_NAMES):
            rows.append(
                LabelInfo(DISC_OFFSET + v, instance_name(DISC_OFFSET + v), "disc", _instance_rgb(DISC_OFFSET + v))
            )
            rows.append(
                LabelInfo(
                    ENDPLATE_OFFSET + v,
                    instance_name(ENDPLATE_OFFSET + v),
                    "endplate",
                    _instance_rgb(ENDPLATE_OFFSET + v),
                )
            )
        return sorted(rows, key=lambda r: r.value)
    if kind == "cord":
        return [LabelInfo(1, semantic_info(Structure.CORD).name, "neural", semantic_info(Structure.CORD).rgb)]
    if kind == "canal":
        return [LabelInfo(1, semantic_info(Structure.CANAL).name, "neural", semantic_info(Structure.CANAL).rgb)]
    if kind == "positional":
        rows = [LabelInfo(v, positional_name(v), "vertebra", _instance_rgb(v)) for v in range(1, MAX_POSITIONAL + 1)]
        rows += [
            LabelInfo(DISC_OFFSET + v, positional_name(DISC_OFFSET + v), "disc", _instance_rgb(DISC_OFFSET + v))
            for v in range(1, MAX_POSITIONAL + 1)
        ]
        return rows
    raise ValueError(f"unknown label table {kind!r}; use one of {', '.join(TABLE_KINDS)}")


def _read_only_note(kind: str) -> list[str]:
    values = [str(r.value) for r in all_label_rows(kind) if not r.written]
    return [f"# values {', '.join(values)}: in reference maps only, never written by neurospine"] if values else []


def export_itksnap(kind: str = "semantic") -> str:
    """ITK-SNAP label description file text."""
    lines = [
        "# ITK-SnAP Label Description File",
        f"# neurospine labels, kind {kind}: {KIND_FILES[kind]}",
        *_read_only_note(kind),
        "# IDX  -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        '    0    0    0    0     0  0  0    "Clear Label"',
    ]
    for row in all_label_rows(kind):
        r, g, b = row.rgb
        lines.append(f'{row.value:5d} {r:4d} {g:4d} {b:4d}     1  1  1    "{row.name}"')
    return "\n".join(lines) + "\n"


def export_slicer(kind: str = "semantic") -> str:
    """3D Slicer colour table (``.ctbl``/``.txt``) text."""
    lines = [
        "# 3D Slicer colour table exported by neurospine",
        f"# kind {kind}: {KIND_FILES[kind]}",
        *_read_only_note(kind),
        "0 background 0 0 0 0",
    ]
    for row in all_label_rows(kind):
        r, g, b = row.rgb
        lines.append(f"{row.value} {row.name} {r} {g} {b} 255")
    return "\n".join(lines) + "\n"


def export_json(kind: str = "semantic") -> str:
    """JSON text: ``{"kind", "files", "labels": [{"value", "name", "region", "rgb", "written"}]}``."""
    import json

    rows = [
        {"value": r.value, "name": r.name, "region": r.region, "rgb": list(r.rgb), "written": r.written}
        for r in all_label_rows(kind)
    ]
    return json.dumps({"kind": kind, "files": KIND_FILES[kind], "labels": rows}, indent=1) + "\n"
