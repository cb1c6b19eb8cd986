"""``isocheck verify`` / ``isocheck calibrate`` through click's test runner."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from verification_helpers import encode, synthetic_image

from verification.cli import EXIT_REFUSED, calibrate_command, verify_command


def test_verify_refuses_unusable_input(tmp_path):
    enrol = tmp_path / "enrol.jpg"
    enrol.write_bytes(b"GIF89a not really")
    selfie = tmp_path / "selfie.jpg"
    selfie.write_bytes(encode(synthetic_image()))
    out = CliRunner().invoke(verify_command, [str(enrol), str(selfie), "--json"])
    assert out.exit_code == EXIT_REFUSED
    assert json.loads(out.stdout.splitlines()[0])["error"]["code"] == "unsupported_format"
    out = CliRunner().invoke(verify_command, [str(tmp_path / "missing.jpg"), str(selfie)])
    assert out.exit_code == 2


@pytest.mark.faces
def test_verify_exit_codes(faces_dir, tmp_path):
    runner = CliRunner()
    a1, a2 = faces_dir / "angelina_jolie/1.jpg", faces_dir / "angelina_jolie/2.jpg"
    obama = faces_dir / "barack_obama/2.jpg"
    out = runner.invoke(verify_command, [str(a1), str(a2)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("match (face_match)")
    out = runner.invoke(verify_command, [str(a1), str(obama), "--json", "--lang", "vi"])
    assert out.exit_code == 1
    data = json.loads(out.stdout.splitlines()[0])
    assert data["decision"] == "mismatch" and data["message"].startswith("Khuôn mặt")
    # a PNG named .jpg is judged by its content, not its name
    png_named_jpg = tmp_path / "selfie.jpg"
    import cv2

    png_named_jpg.write_bytes(cv2.imencode(".png", cv2.imread(str(a2)))[1].tobytes())
    assert runner.invoke(verify_command, [str(a1), str(png_named_jpg)]).exit_code == 0


@pytest.mark.faces
def test_calibrate_small_set(asia_dir, tmp_path):
    # 4 people x 4 photos, copied paths only (pairs reference the shared folder)
    people = sorted(p.name for p in asia_dir.iterdir() if p.name.startswith("lfw_"))[:4]
    rows = []
    files = [f"{p}/{i}.jpg" for p in people for i in range(1, 5)]
    for i, a in enumerate(files):
        for b in files[i + 1 :]:
            rows.append({"img1": a, "img2": b, "same": int(a.split("/")[0] == b.split("/")[0])})
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["img1", "img2", "same"])
        w.writeheader()
        w.writerows(rows)
    env = tmp_path / "verify.env"
    env.write_text("ISOCHECK_OTHER=1\nISOCHECK_SFACE_ACCEPT=0.1\n")
    out = CliRunner().invoke(
        calibrate_command,
        [
            str(pairs),
            "--root",
            str(asia_dir),
            "--fmr",
            "0.01",
            "--fmr",
            "0.05",
            "--json",
            "--write-settings",
            str(env),
        ],
    )
    assert out.exit_code == 0, out.output
    text = out.stdout
    report, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
    assert report["genuine_pairs"] + len(report["failed_photos"]) > 0
    assert len(report["roc"]) == 2 and 0 < report["accept_threshold"] < 2
    text = env.read_text()
    assert "ISOCHECK_OTHER=1" in text and "ISOCHECK_SFACE_ACCEPT=0.1\n" not in text
    assert f"ISOCHECK_SFACE_ACCEPT={report['accept_threshold']:.4f}" in text
