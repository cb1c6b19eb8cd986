"""Command-line tools: ``isocheck verify`` and ``isocheck calibrate``.

The server registers :data:`verify_command` and :data:`calibrate_command` on its ``isocheck``
click group. Exit codes of ``verify`` (scripts can branch on them):

====  =====================================================================
0     match (accepted automatically)
1     mismatch (different person, or ``replayed_image``)
2     usage error (click's own code: bad option, missing file)
3     review (a person must look)
4     refused: an input could not be used (code printed: ``face_not_found``…)
====  =====================================================================
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from verification.errors import VerificationError

EXIT = {"match": 0, "mismatch": 1, "review": 3}
EXIT_REFUSED = 4


def _verifier(embedder: str | None):
    from verification.verifier import Verifier

    return Verifier(verify_embedder=embedder) if embedder else Verifier()


def _refused(exc: VerificationError, as_json: bool, lang: str) -> None:
    from verification.messages import message

    if as_json:
        click.echo(
            json.dumps(
                {"error": exc.to_dict(), "message": message(exc.code, lang).detail},
                ensure_ascii=False,
                default=str,
            )
        )
    else:
        click.echo(f"refused: {exc.code} — {message(exc.code, lang).detail}", err=True)
        click.echo(f"  ({exc.message})", err=True)
    sys.exit(EXIT_REFUSED)


@click.command("verify")
@click.argument("enrol", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("selfie", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--embedder",
    type=click.Choice(["sface", "dlib"]),
    default=None,
    help="Override ISOCHECK_VERIFY_EMBEDDER (default sface).",
)
@click.option(
    "--lang",
    type=click.Choice(["vi", "en"]),
    default="en",
    show_default=True,
    help="Language of the message.",
)
def verify_command(enrol: Path, selfie: Path, as_json: bool, embedder: str | None, lang: str):
    """Is SELFIE the person of ENROL? Exit 0 match, 1 mismatch, 3 review, 4 unusable input.

    ENROL passes the (stricter) enrolment quality gate, SELFIE the check-in gate.
    """
    from verification.messages import message

    v = _verifier(embedder)
    try:
        template = v.enrol(enrol.read_bytes())
        result = v.verify([template], selfie.read_bytes())
    except VerificationError as exc:
        _refused(exc, as_json, lang)
        return
    if as_json:
        out = result.to_dict() | {
            "message": message(result.code, lang).detail,
            "engine": v.engine_status(),
        }
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
    else:
        q = result.quality
        click.echo(
            f"{result.decision} ({result.code}): {result.embedder} distance {result.distance:.4f}"
            f" (accept <= {result.accept_threshold}, review <= {result.review_threshold})"
        )
        click.echo(f"  {message(result.code, lang).detail}")
        click.echo(
            f"  selfie: face {q.face_px:.0f} px, sharpness {q.sharpness:.0f}, brightness "
            f"{q.brightness:.0f}, yaw {q.yaw:+.2f}, {result.timings_ms.get('total', 0):.0f} ms"
        )
    sys.exit(EXIT[result.decision])


@click.command("calibrate")
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder the pairs' paths are relative to (default: PAIRS' folder).",
)
@click.option(
    "--embedder", type=click.Choice(["sface", "dlib"]), default="sface", show_default=True
)
@click.option(
    "--fmr",
    "fmrs",
    type=float,
    multiple=True,
    default=(0.001,),
    show_default=True,
    help="Target false-match rate(s); the first sets the accept threshold.",
)
@click.option(
    "--review-fmr",
    type=float,
    default=0.02,
    show_default=True,
    help="False-match rate of the review threshold (the review band's outer edge).",
)
@click.option(
    "--all-impostors/--pairs-impostors",
    default=True,
    show_default=True,
    help="Impostors: every cross-identity pair of the photos (identity = folder), or "
    "only the file's different-person rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--write-settings",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write ISOCHECK_<EMBEDDER>_ACCEPT/_REVIEW into this env file (other lines kept).",
)
def calibrate_command(
    pairs: Path,
    root: Path | None,
    embedder: str,
    fmrs: tuple[float, ...],
    review_fmr: float,
    all_impostors: bool,
    as_json: bool,
    write_settings: Path | None,
):
    """ROC table, equal-error point and thresholds from a labelled PAIRS.csv (img1,img2,same).

    Photos are measured without the quality gate (every detectable face counts); photos with no
    face are listed and their pairs skipped.
    """
    from verification import calibrate as C
    from verification.face_models import DISTANCES

    root = root or pairs.parent
    rows = C.load_pairs(pairs)
    v = _verifier(embedder)
    images = {p.img1 for p in rows} | {p.img2 for p in rows}
    click.echo(f"embedding {len(images)} photos with {embedder}…", err=True)
    emb = C.embed_images(
        images,
        root,
        lambda data: v.analyse(data, apply_gate=False, embedders=(embedder,)).vectors[embedder],
    )
    genuine, impostor, skipped = C.pair_distances(rows, emb.vectors, DISTANCES[embedder])
    if all_impostors:
        _, impostor, _ = C.pair_distances(
            C.all_impostor_pairs(emb.vectors), emb.vectors, DISTANCES[embedder]
        )
    if not genuine or not impostor:
        raise click.ClickException("need both genuine and impostor pairs with detectable faces")
    eer, eer_t = C.equal_error(genuine, impostor)
    table = C.roc_table(genuine, impostor, fmrs)
    accept = table[0]["threshold"]
    review = max(C.threshold_at_fmr(impostor, review_fmr), accept)
    fmr_r, fnmr_r = C.rates(genuine, impostor, review)
    report = {
        "embedder": embedder,
        "photos": len(images),
        "failed_photos": emb.failures,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "skipped_pairs": skipped,
        "eer": eer,
        "eer_threshold": eer_t,
        "roc": table,
        "accept_threshold": accept,
        "review_threshold": review,
        "review_fmr": fmr_r,
        "review_fnmr": fnmr_r,
    }
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        click.echo(
            f"{embedder}: {len(images)} photos ({len(emb.failures)} without a usable face), "
            f"{len(genuine)} genuine / {len(impostor)} impostor pairs"
        )
        click.echo(f"equal-error rate {eer:.2%} at distance {eer_t:.4f}")
        click.echo(f"{'target FMR':>10} {'threshold':>10} {'FMR':>8} {'FNMR':>8}")
        for r in table:
            click.echo(
                f"{r['target_fmr']:>10.4%} {r['threshold']:>10.4f} {r['fmr']:>8.3%} "
                f"{r['fnmr']:>8.2%}"
            )
        click.echo(f"review threshold {review:.4f} (FMR {fmr_r:.2%}, FNMR {fnmr_r:.2%})")
    if write_settings:
        _write_env(
            write_settings,
            {
                f"ISOCHECK_{embedder.upper()}_ACCEPT": f"{accept:.4f}",
                f"ISOCHECK_{embedder.upper()}_REVIEW": f"{review:.4f}",
            },
        )
        click.echo(f"wrote {write_settings}", err=True)


def _write_env(path: Path, values: dict[str, str]) -> None:
    """Set ``KEY=value`` lines in an env file, keeping every other line."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in values]
    kept += [f"{k}={v}" for k, v in values.items()]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
