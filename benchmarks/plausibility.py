"""Input-plausibility benchmark: a wrong-kind corpus and the real-scan corpus, per tool (issue 18).

Every case goes through the tool's public entry point with the plausibility hook (``spine.api.run_file``,
``cord.api.run_file``, ``slice2d.api.run_file``) into a temporary folder; for ``brainage t1`` the check that
``predict_t1_files`` runs before the CNN (``brainage.api.t1_plausibility``) is run alone, as its verdict
does not depend on the CNN. Outcomes: ``refused`` (exit 2 from the plausibility check), ``refused-input``
(exit 2 from a check that existed before, e.g. thick axial stacks for the spine tool, 2D files for 3D tools),
``no-result`` (exit 4, nothing found), ``flagged`` (ran, ``plausibility`` not ok) and ``ok``.

Targets: every wrong-kind input flagged or refused (or given no result); no real supported scan refused.
Wrong-kind inputs: brain T1w (IXI, subsampled), cervical/lumbar spine into brain age, AP radiographs (whole
and cropped to the chest or the pelvis), CT into MR-only tools, axial slices and slabs into sagittal tools,
abdomen MR/CT (totalseg_tests), reference label maps given as the image. Real corpus: every shared set of the
kinds each tool supports, subsampled where a set is large and a case slow (the numbers per set are in the
table). The rules were written with these images in view (they are the only real data here), so these counts
are a training-set figure, not a held-out one; thresholds are physical and kept wide for that reason (docs in
each rule module).

Run: ``python -m benchmarks.plausibility [--quick]`` (about 15 minutes at 2 threads; ``--quick`` halves the
subsamples).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
from PIL import Image

from benchmarks.common import SHARED_DATA, write_results

TOOLS = ("spine", "cord", "slice2d", "brainage t1")


@dataclass(frozen=True)
class Case:
    tool: str
    name: str
    path: Path
    kind: str  # "real" (a supported scan) or "wrong" (the wrong kind of image)
    what: str


def _files(folder: str, pattern: str = "*_img.nii.gz") -> list[Path]:
    return sorted((SHARED_DATA / folder).glob(pattern))


def _every(paths: list[Path], n: int) -> list[Path]:
    """``n`` paths spread over the sorted list (deterministic subsample)."""
    if len(paths) <= n:
        return paths
    idx = np.linspace(0, len(paths) - 1, n).round().astype(int)
    return [paths[i] for i in sorted(set(idx.tolist()))]


def derived_2d(tmp: Path) -> dict[str, Path]:
    """2D wrong-kind images made from shared files (written to ``tmp``, never to the repository)."""
    from neurospine.io import load_volume, reorient

    out: dict[str, Path] = {}

    def save_crop(name: str, src: Path, top: bool) -> None:
        img = cast(nib.Nifti1Image, nib.load(str(src)))
        data = np.asarray(img.dataobj)
        rows_axis = int(np.argmax(data.shape))  # head-foot is the long side of these radiographs
        n = data.shape[rows_axis]
        keep = slice(0, n // 2) if top else slice(n // 2, n)
        index = [slice(None)] * data.ndim
        index[rows_axis] = keep
        crop = np.ascontiguousarray(data[tuple(index)])
        aff = img.affine.copy()
        start = np.zeros(3)
        start[rows_axis] = keep.start
        aff[:3, 3] = img.affine[:3, :3] @ start + img.affine[:3, 3]
        p = tmp / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(crop, aff), str(p))  # the crop keeps its file's (coronal) header
        out[name] = p
        sq = crop.squeeze().astype(np.float32)
        lo, hi = np.percentile(sq, [0.5, 99.5])
        png = tmp / f"{name}-png.png"  # and the same pixels without a header
        Image.fromarray((np.clip((sq - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)).save(png)
        out[f"{name}-png"] = png

    xr = SHARED_DATA / "spineproject_xray"
    save_crop("xr-damaged-ap-chestcrop", xr / "xr-damaged-ap_img.nii.gz", top=True)
    save_crop("xr-normal-ap-pelviscrop", xr / "xr-normal-ap_img.nii.gz", top=False)
    for folder, case in (
        ("fcs_vb3_myosegmentum_lumbar", "vb3-12"),
        ("tptbox_samples", "tpt-mri"),
        ("gmchallenge_cord_t2star", "gmc-9604"),
        ("ixi_t1_2mm/t1", "IXI012-HH-1211_T1"),
    ):
        src = SHARED_DATA / folder / (f"{case}.nii.gz" if case.startswith("IXI") else f"{case}_img.nii.gz")
        ras, _ = reorient(load_volume(src), "RAS")
        k = ras.shape[2] // 2
        sl = np.asarray(ras.data, dtype=np.float32)[:, :, k : k + 1]
        aff = ras.affine.copy()
        aff[:3, 3] = ras.affine[:3, :3] @ np.array([0.0, 0.0, k]) + ras.affine[:3, 3]
        p = tmp / f"{case}-axialslice.nii.gz"
        nib.save(nib.Nifti1Image(sl, aff), str(p))  # an axial slice as exported, its header true
        out[f"{case}-axialslice"] = p
        png = tmp / f"{case}-axialslice.png"  # the same slice without any header
        lo, hi = np.percentile(sl, [0.5, 99.5])
        img8 = (np.clip((sl[:, :, 0].T[::-1] - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
        Image.fromarray(img8).save(png)
        out[f"{case}-axialslice-png"] = png
    return out


def exported_slices(tmp: Path, volumes: list[Path]) -> dict[str, Path]:
    """Real sagittal slices saved as 8-bit PNG without a header (as from a viewer's export): the middle sagittal
    slice the 2D tool would read from each volume (written to ``tmp``, never to the repository)."""
    from neurospine.slice2d.io2d import load_input

    out: dict[str, Path] = {}
    for src in volumes:
        loaded = load_input(src)
        pixels = np.asarray(loaded.slice_plane(loaded.n_slices() // 2).pixels, dtype=np.float32)
        lo, hi = np.percentile(pixels, [0.5, 99.5])
        name = src.name.replace("_img.nii.gz", "") + "-midsag.png"
        png = tmp / name
        Image.fromarray((np.clip((pixels - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)).save(png)
        out[name] = png
    return out


def corpus(tmp: Path, quick: bool) -> list[Case]:
    k = 1 if quick else 2
    ixi = _files("ixi_t1_2mm/t1", "*.nii.gz")
    cases: list[Case] = []
    add = cases.append
    d2 = derived_2d(tmp)
    sct = SHARED_DATA / "sct_testing_data"
    tut = SHARED_DATA / "sct_tutorial_unlabeled"
    ts = SHARED_DATA / "totalseg_tests"
    ct_hu = [
        ts / "ts-ct_img.nii.gz",
        ts / "ts-ctsm_img.nii.gz",
        SHARED_DATA / "verse014_ct" / "verse014_img.nii.gz",
        SHARED_DATA / "tptbox_samples" / "tpt-ct_img.nii.gz",
    ]
    fewshot = _files("fewshot_ct_sag")
    gmc = _files("gmchallenge_cord_t2star")
    lumbar_mr = (
        _every(_files("fcs_vb1_zukic_lumbar_mri"), k)
        + _every(_files("fcs_vb2_chu_lumbar_t2"), k)
        + _every(_files("fcs_vb3_myosegmentum_lumbar"), k)
        + _every(_files("fcs_ivd_fmrp_lumbar_t2"), k)
    )
    # spine: sagittal or isotropic spine MRI
    for p in [
        *lumbar_mr,
        SHARED_DATA / "tptbox_samples" / "tpt-mri_img.nii.gz",
        tut / "tut-t2lumbar_img.nii.gz",
        sct / "sct-t2_img.nii.gz",
        sct / "sct-t1_img.nii.gz",
    ]:  # pam50 (a 1 x 1 x 2 mm axial template) is refused by the spine tool's axial-stack check: not a kind it reads
        add(Case("spine", p.name, p, "real", "spine MRI"))
    for p in _every(ixi, 3 * k):
        add(Case("spine", p.name, p, "wrong", "brain T1w"))
    for p in ct_hu + fewshot[:k]:
        add(Case("spine", p.name, p, "wrong", "CT (model learned MRI)"))
    add(Case("spine", "ts-mrsm_img.nii.gz", ts / "ts-mrsm_img.nii.gz", "wrong", "abdomen MR, axial slab"))
    for p in [sct / "sct-t2s_img.nii.gz", tut / "tut-t2ms_img.nii.gz", *gmc[:k]]:
        add(Case("spine", p.name, p, "wrong", "axial cord slab"))
    add(
        Case(
            "spine",
            "xr-normal-lat_img.nii.gz",
            SHARED_DATA / "spineproject_xray" / "xr-normal-lat_img.nii.gz",
            "wrong",
            "2D radiograph",
        )
    )
    # cord: any-contrast MRI of the cord, axial or sagittal
    for p in (
        [sct / f"sct-{c}_img.nii.gz" for c in ("t2", "t1", "t2s", "mt0", "mt1")]
        + gmc
        + [
            tut / "tut-t2ms_img.nii.gz",
            tut / "tut-sub05mton_img.nii.gz",
            tut / "tut-t2lumbar_img.nii.gz",
            SHARED_DATA / "pam50_small_template" / "pam50small_img.nii.gz",
            SHARED_DATA / "tptbox_samples" / "tpt-mri_img.nii.gz",
        ]
        + _every(_files("fcs_vb2_chu_lumbar_t2"), k)
    ):
        add(Case("cord", p.name, p, "real", "cord MRI"))
    for p in _every(ixi, 3 * k):
        add(Case("cord", p.name, p, "wrong", "brain T1w"))
    for p in ct_hu:
        add(Case("cord", p.name, p, "wrong", "CT"))
    for p in fewshot[:k]:
        add(Case("cord", p.name, p, "wrong", "CT without HU (8-bit)"))
    add(Case("cord", "ts-mrsm_img.nii.gz", ts / "ts-mrsm_img.nii.gz", "wrong", "abdomen MR (3 mm)"))
    # slice2d: sagittal MR/CT slices or volumes, lateral radiographs
    for p in _files("vesal_mri2d"):
        add(Case("slice2d", p.name, p, "real", "sagittal MR slice"))
    for p in _files("spineproject_xray", "*lat_img.nii.gz"):
        add(Case("slice2d", p.name, p, "real", "lateral radiograph"))
    for p in [*lumbar_mr, SHARED_DATA / "tptbox_samples" / "tpt-mri_img.nii.gz"]:
        add(Case("slice2d", p.name, p, "real", "sagittal MR volume"))
    exports = [*lumbar_mr, sct / "sct-t2_img.nii.gz", sct / "sct-t1_img.nii.gz", tut / "tut-t2lumbar_img.nii.gz"]
    for name, p in exported_slices(tmp, [*exports, *fewshot[: 2 * k]]).items():
        add(Case("slice2d", name, p, "real", "CT slice as PNG" if name.startswith("fst") else "MR slice as PNG"))
    for p in [
        SHARED_DATA / "tptbox_samples" / "tpt-ct_img.nii.gz",
        SHARED_DATA / "verse014_ct" / "verse014_img.nii.gz",
        ts / "ts-ct_img.nii.gz",
        *fewshot[: 2 * k],
    ]:
        add(Case("slice2d", p.name, p, "real", "CT volume"))
    for p in _files("spineproject_xray", "*ap_img.nii.gz"):
        add(Case("slice2d", p.name, p, "wrong", "AP radiograph"))
    for name, p in d2.items():
        what = "AP radiograph crop" if name.startswith("xr-") else "axial slice as a 2D image"
        add(Case("slice2d", name, p, "wrong", what))
    for p in _every(ixi, 2 * k):
        add(Case("slice2d", p.name, p, "wrong", "brain T1w"))
    add(Case("slice2d", "ts-mrsm_img.nii.gz", ts / "ts-mrsm_img.nii.gz", "wrong", "abdomen MR, axial slab"))
    # brainage t1: whole-head T1w (check only: every IXI image)
    for p in ixi:
        add(Case("brainage t1", p.name, p, "real", "brain T1w"))
    for p in (
        [sct / f"sct-{c}_img.nii.gz" for c in ("t2", "t1", "t2s", "mt1")]
        + [
            tut / "tut-t2lumbar_img.nii.gz",
            tut / "tut-t2ms_img.nii.gz",
            SHARED_DATA / "tptbox_samples" / "tpt-mri_img.nii.gz",
            SHARED_DATA / "pam50_small_template" / "pam50small_img.nii.gz",
            ts / "ts-mrsm_img.nii.gz",
        ]
        + lumbar_mr
        + gmc
        + ct_hu
        + fewshot
    ):
        add(Case("brainage t1", p.name, p, "wrong", "spine/abdomen/CT"))
    # every tool: a reference label map given where the image belongs (the `_seg`/`_msk` file picked by mistake)
    masks = [
        SHARED_DATA / "tptbox_samples" / "tpt-mri_subreg.nii.gz",
        SHARED_DATA / "fcs_vb2_chu_lumbar_t2" / "vb2-02_vertbody.nii.gz",
        SHARED_DATA / "fcs_ivd_fmrp_lumbar_t2" / "ivd-11_disc.nii.gz",
        SHARED_DATA / "label_only_refs" / "verse004_vert.nii.gz",
        sct / "sct-t2_cordseg.nii.gz",
        *_files("gmchallenge_cord_t2star", "*_cordseg.nii.gz")[:k],
    ]
    for tool in ("spine", "cord", "slice2d", "brainage t1"):
        for p in masks:
            add(Case(tool, p.name, p, "wrong", "label map given as the image"))
    return cases


def run_case(case: Case, out: Path, threads: int) -> tuple[str, str]:
    """(outcome, detail) of one case."""
    from neurospine.errors import InputError, NoStructureFoundError

    runners: dict[str, Callable[[], Any]] = {
        "spine": lambda: _spine(case.path, out, threads),
        "cord": lambda: _cord(case.path, out, threads),
        "slice2d": lambda: _slice2d(case.path, out, threads),
        "brainage t1": lambda: _brainage(case.path),
    }
    try:
        value = runners[case.tool]()
    except InputError as e:
        msg = str(e)
        return ("refused" if "but `neurospine" in msg else "refused-input"), msg
    except NoStructureFoundError as e:
        return "no-result", str(e)
    return ("ok" if value == "ok" else "flagged"), str(value)


def _spine(path: Path, out: Path, threads: int) -> str:
    from neurospine.spine.api import run_file

    return str(run_file(path, out, threads=threads, snapshot=False).measures["plausibility"])


def _cord(path: Path, out: Path, threads: int) -> str:
    from neurospine.cord.api import run_file

    return str(run_file(path, out, threads=threads).measures["plausibility"])


def _slice2d(path: Path, out: Path, threads: int) -> str:
    from neurospine.slice2d.api import run_file

    return str(run_file(path, out, threads=threads).measures["plausibility"])


def _brainage(path: Path) -> str:
    from neurospine.brainage.api import t1_plausibility

    return t1_plausibility([path])[0].field


def scale_rows(quick: bool) -> list[dict[str, Any]]:
    """Part 2: the anatomical pixel size (``slice2d.api.anatomy_pixel_mm``) against the known pixel size of
    sagittal MR/CT slices (middle slice of each volume; the estimator never sees the true size), and on the
    two lateral radiographs (pixel size unknown) with the body count at several given pixel sizes."""
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card
    from neurospine.slice2d.api import anatomy_pixel_mm, input_modality
    from neurospine.slice2d.segment import MODEL_NAME, card_logit_bias

    k = 1 if quick else 2
    card = load_card(MODEL_NAME)
    session = onnx_session(card, threads=1)
    vols = (
        _every(_files("fcs_vb1_zukic_lumbar_mri"), 2 * k)
        + _every(_files("fcs_vb2_chu_lumbar_t2"), 2 * k)
        + _every(_files("fcs_vb3_myosegmentum_lumbar"), 2 * k)
        + _every(_files("fcs_ivd_fmrp_lumbar_t2"), k)
        + [
            SHARED_DATA / "tptbox_samples" / "tpt-mri_img.nii.gz",
            SHARED_DATA / "tptbox_samples" / "tpt-ct_img.nii.gz",
            SHARED_DATA / "verse014_ct" / "verse014_img.nii.gz",
            SHARED_DATA / "totalseg_tests" / "ts-ct_img.nii.gz",
        ]
    )
    from neurospine.slice2d.io2d import load_input

    rows: list[dict[str, Any]] = []
    for p in vols:
        loaded = load_input(p)
        plane = loaded.slice_plane(loaded.n_slices() // 2)
        mod = input_modality(loaded).modality
        est = anatomy_pixel_mm(session, plane, mod, card_logit_bias(card.inputs, mod))
        true = float(plane.spacing_mm[1])
        err = None if est is None else est / true - 1.0
        rows.append(
            {
                "case": p.name,
                "modality": mod,
                "pixel_mm_true": round(true, 4),
                "pixel_mm_anatomy": None if est is None else round(est, 4),
                "error": None if err is None else round(err, 3),
            }
        )
        print("scale", rows[-1], flush=True)
    from neurospine.slice2d.api import run_file

    for name in ("xr-normal-lat", "xr-damaged-lat"):
        src = SHARED_DATA / "spineproject_xray" / f"{name}_img.nii.gz"
        for px in (None, 0.2, 0.25, 0.3, 0.35):
            with tempfile.TemporaryDirectory() as out:
                res = run_file(src, out, threads=1, pixel_mm=px)
            warned = any("suggest a pixel size" in w for w in res.warnings)
            rows.append(
                {
                    "case": name,
                    "modality": "xray",
                    "pixel_mm_given": px,
                    "n_bodies": res.measures["n_bodies"],
                    "pixel_mm_anatomy": res.measures["pixel_mm_anatomy"],
                    "scale_warning": warned,
                }
            )
            print("scale", rows[-1], flush=True)
    return rows


def scale_markdown(rows: list[dict[str, Any]]) -> str:
    known = [r for r in rows if "pixel_mm_true" in r]
    errs = [abs(r["error"]) for r in known if r["error"] is not None]
    within = sum(e <= 0.30 for e in errs)
    md = [
        "",
        "## Part 2: pixel size from the anatomy (slice2d, radiographs)",
        "",
        "The 2D model expects bodies of adult size in mm, so the depth it finds follows the pixel size it is given "
        "(one run cannot tell the scale: on xr-normal-lat the count goes from 2 to 14 bodies between 0.2 and "
        "0.35 mm). `anatomy_pixel_mm` runs the model at trial pixel sizes and keeps the trial, among those showing "
        "at least 3 bodies, at which the bodies found are 33 mm deep (adult T10-L5; constant written before "
        "scoring), refined to that estimate. Trials: radiographs, 150-430 mm (spot view to 17-inch film) over the "
        "image's long side in steps of x1.15; MR/CT sections (this check), 0.25-4 mm in steps of x1.26. "
        f"On sagittal MR/CT slices whose pixel size is known: median |error| "
        f"{(float(np.median(errs)) * 100 if errs else float('nan')):.0f} %, {within}/{len(errs)} within the 30 % "
        f"warning margin ({len(known) - len(errs)} with no estimate): a correct pixel size would be reported as "
        f"disagreeing in {len(errs) - within} of {len(errs)} cases here. The trial-size criterion can have several "
        "self-consistent answers (the model's size prior makes many trials nearly consistent), so the estimate "
        "is a coarse check, reported and warned about, never used to rescale. Radiographs magnify the spine by "
        "about 1.1-1.2, which this MR/CT check does not cover, and the radiographs' own pixel size is unknown; "
        "on them the estimate moved between 0.25 and 0.32 mm (xr-normal-lat) as the trial grid was changed "
        "during development.",
        "",
        "| case | modality | true pixel (mm) | anatomy (mm) | error |",
        "|---|---|---|---|---|",
    ]
    for r in known:
        e = "" if r["error"] is None else f"{100 * r['error']:+.0f} %"
        md.append(f"| {r['case']} | {r['modality']} | {r['pixel_mm_true']} | {r['pixel_mm_anatomy']} | {e} |")
    md += ["", "| radiograph | --pixel-mm | bodies | anatomy (mm) | scale warning |", "|---|---|---|---|---|"]
    for r in rows:
        if "pixel_mm_given" in r:
            md.append(
                f"| {r['case']} | {r['pixel_mm_given'] or 'none (assumed)'} | {r['n_bodies']} | "
                f"{r['pixel_mm_anatomy']} | {'yes' if r['scale_warning'] else 'no'} |"
            )
    return "\n".join(md) + "\n"


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool in TOOLS:
        for kind in ("wrong", "real"):
            sel = [r for r in rows if r["tool"] == tool and r["kind"] == kind]
            counts = {
                o: sum(r["outcome"] == o for r in sel)
                for o in ("refused", "refused-input", "no-result", "flagged", "ok")
            }
            out[f"{tool}/{kind}"] = {"n": len(sel), **counts}
    wrong = [r for r in rows if r["kind"] == "wrong"]
    real = [r for r in rows if r["kind"] == "real"]
    out["wrong_kind_caught"] = f"{sum(r['outcome'] != 'ok' for r in wrong)}/{len(wrong)}"
    out["real_refused_by_plausibility"] = f"{sum(r['outcome'] == 'refused' for r in real)}/{len(real)}"
    out["real_flagged"] = f"{sum(r['outcome'] == 'flagged' for r in real)}/{len(real)}"
    return out


def markdown(rows: list[dict[str, Any]], summ: dict[str, Any], seconds: float, quick: bool) -> str:
    md = [
        "# Input plausibility (issue 18)",
        "",
        f"Wrong-kind inputs caught (refused, flagged or no result): **{summ['wrong_kind_caught']}**. "
        f"Real supported scans refused by the plausibility check: **{summ['real_refused_by_plausibility']}**; "
        f"real scans flagged: {summ['real_flagged']}. Run time {seconds / 60:.1f} min"
        + (" (--quick subsample)." if quick else "."),
        "",
        "The rules (src/neurospine/plausibility/) were written while looking at these same images, the only real "
        "data here: these are tuning-set counts, not held-out ones. Thresholds are physical (head and vertebral "
        "sizes in mm, Hounsfield units, spacing regularity) and wide for that reason. brainage t1 rows run the "
        "check that precedes the CNN (its verdict does not depend on the CNN); cord rows run with automatic levels "
        "as the CLI does (the level estimate's spine segmentation adds the CT-like check). Large sets are "
        "subsampled (deterministic spread).",
        "",
        "| tool | corpus | n | refused | refused (older input check) | no result (exit 4) | flagged | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tool in TOOLS:
        for kind in ("wrong", "real"):
            c = summ[f"{tool}/{kind}"]
            md.append(
                f"| {tool} | {kind} | {c['n']} | {c['refused']} | {c['refused-input']} | {c['no-result']} | "
                f"{c['flagged']} | {c['ok']} |"
            )
    md += ["", "## Cases", "", "| tool | corpus | case | what | outcome | reason |", "|---|---|---|---|---|---|"]
    for r in rows:
        detail = r["detail"].replace("|", "/").replace("\n", " ")
        if len(detail) > 260:
            detail = detail[:257] + "..."
        md.append(f"| {r['tool']} | {r['kind']} | {r['case']} | {r['what']} | {r['outcome']} | {detail} |")
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smaller subsamples of the large sets")
    ap.add_argument(
        "--tool", choices=(*TOOLS, "scale"), default=None, help="one tool (or the scale table) only; nothing written"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if not SHARED_DATA.is_dir():
        print(f"no shared data at {SHARED_DATA}")
        return 1
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cases = [c for c in corpus(tmp, args.quick) if args.tool is None or c.tool == args.tool]
        scale = scale_rows(args.quick) if args.tool in (None, "scale") else []
        for i, case in enumerate(cases):
            t = time.perf_counter()
            with tempfile.TemporaryDirectory(dir=tmp) as out:
                outcome, detail = run_case(case, Path(out), args.threads)
            row = {
                "tool": case.tool,
                "kind": case.kind,
                "case": case.name,
                "what": case.what,
                "outcome": outcome,
                "detail": detail,
                "seconds": round(time.perf_counter() - t, 2),
            }
            rows.append(row)
            print(
                f"[{i + 1}/{len(cases)}] {case.tool:<11} {case.kind:<5} {case.name:<32} {outcome:<13} "
                f"{row['seconds']:6.1f}s {detail[:150]}",
                flush=True,
            )
    summ = summarise(rows)
    seconds = time.perf_counter() - t0
    print(summ)
    if args.tool is None:
        payload = {"summary": summ, "quick": args.quick, "seconds": round(seconds, 1), "cases": rows, "scale": scale}
        md = markdown(rows, summ, seconds, args.quick) + scale_markdown(scale)
        write_results("plausibility", payload, threads=args.threads, markdown=md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
