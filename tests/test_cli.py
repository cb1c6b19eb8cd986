"""The `isocheck` command: help, migrations, the idempotent demo, production refusal."""

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from isocheck.cli import main
from server.core.db import make_engine, make_session_factory
from server.models import Area, Person, StaffUser


@pytest.fixture
def env(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ISOCHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("ISOCHECK_MODE", "demo")
    return db_url


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "scheduler", "db", "demo"):
        assert command in result.output


@pytest.mark.parametrize("args", [["serve"], ["scheduler"], ["db", "upgrade"], ["demo"]])
def test_each_command_has_help(args):
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def _counts(db_url):
    engine = make_engine(db_url)
    with make_session_factory(engine)() as s:
        counts = tuple(
            s.scalar(select(func.count()).select_from(m)) for m in (Area, StaffUser, Person)
        )
    engine.dispose()
    return counts


def test_demo_is_idempotent(env):
    runner = CliRunner()
    first = runner.invoke(main, ["demo"])
    assert first.exit_code == 0, first.output
    assert "admin" in first.output and "tramyte.p1" in first.output
    counts = _counts(env)
    assert counts == (5, 4, 5)  # city, district, 3 wards; admin + 3 ward staff; 5 persons

    second = runner.invoke(main, ["demo"])
    assert second.exit_code == 0
    assert _counts(env) == counts
    assert "no new accounts" in second.output


def test_demo_reset_passwords_prints_new_ones_that_work(env, monkeypatch):
    import re

    from server.core.security import verify_password

    runner = CliRunner()
    first = runner.invoke(main, ["demo"])
    assert "check-in prompt open now for" in first.output
    old = dict(re.findall(r"^  (\S+)\s+\S+\s+.*?(\S+)$", first.output, re.M))
    reset = runner.invoke(main, ["demo", "--reset-passwords"])
    assert reset.exit_code == 0, reset.output
    new = dict(re.findall(r"^  (\S+)\s+\S+\s+.*?(\S+)$", reset.output, re.M))
    assert len(new) == 4 and "admin" in new and set(new) == set(old)
    engine = make_engine(env)
    with make_session_factory(engine)() as s:
        admin = s.scalar(select(StaffUser).where(StaffUser.username == "admin"))
        assert verify_password(admin.password_hash, new["admin"])
        assert not verify_password(admin.password_hash, old["admin"])
        assert admin.password_changed_at is not None
    engine.dispose()
    assert _counts(env) == (5, 4, 5)  # nothing else created

    monkeypatch.setenv("ISOCHECK_MODE", "production")
    refused = runner.invoke(main, ["demo", "--reset-passwords"])
    assert refused.exit_code != 0


def test_demo_world_has_the_hierarchy(env):
    CliRunner().invoke(main, ["demo"])
    engine = make_engine(env)
    with make_session_factory(engine)() as s:
        wards = s.scalars(select(Area).where(Area.kind == "ward")).all()
        assert {w.parent.name for w in wards} == {"Quận Gò Vấp"}
        assert {w.parent.parent.name for w in wards} == {"Thành phố Hồ Chí Minh"}
        staff = s.scalars(select(StaffUser).where(StaffUser.role == "area_staff")).all()
        assert {u.area_id for u in staff} == {w.id for w in wards}
        assert all(u.password_hash.startswith("$argon2id$") for u in staff)
    engine.dispose()


def test_db_upgrade_and_current(env):
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    current = runner.invoke(main, ["db", "current"])
    assert current.exit_code == 0
    database, head = current.output.split("code head:")
    assert database.split(":")[1].strip() == head.strip() != "None"


def test_production_refuses_to_start_without_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ISOCHECK_MODE", "production")
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ISOCHECK_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "ISOCHECK_SECRET_KEY" in result.output
    assert "refusing to start in production mode" in result.output


@pytest.mark.faces
def test_enrol_creates_a_person_with_photos_and_a_code(env):
    import json as _json

    from server.models import FaceTemplate
    from tests.photo_sets import faces_dir

    CliRunner().invoke(main, ["demo"])
    folder = faces_dir("asia") / "lfw_Gloria_Macapagal_Arroyo"
    args = ["enrol", "--name", "Trần Văn Tư", "--phone", "0909123456", "--ward-code",
            "79-764-26896", "--address", "1 Lê Đức Thọ", "--lat", "10.83", "--lon", "106.67",
            "--photo", str(folder / "1.jpg"), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = _json.loads(result.output.strip().splitlines()[-1])
    assert len(out["activation_code"]) == 11 and out["photos"] == 1
    engine = make_engine(env)
    with make_session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(FaceTemplate)
                        .where(FaceTemplate.person_id == out["person_id"])) == 1
    engine.dispose()
    # without --json: the web app link and a terminal QR code of it
    args[args.index("Trần Văn Tư")] = "Trần Văn Năm"
    args[args.index("0909123456")] = "0909123457"
    text = CliRunner().invoke(main, args[:-1]).output
    assert "/app/activate?code=" in text
    assert sum(ch in "█▀▄" for ch in text) > 200


@pytest.mark.faces
def test_enrol_refuses_a_photo_without_a_face_and_creates_nothing(env):
    from tests.photo_sets import faces_dir

    CliRunner().invoke(main, ["demo"])
    noface = sorted((faces_dir("faces") / "_noface").iterdir())[0]
    before = _counts(env)
    result = CliRunner().invoke(main, [
        "enrol", "--name", "Lê Thị Năm", "--phone", "0909123457", "--ward-code", "79-764-26896",
        "--address", "2 Lê Đức Thọ", "--lat", "10.83", "--lon", "106.67", "--photo", str(noface)])
    assert result.exit_code == 1
    assert "face_not_found" in result.output
    assert _counts(env) == before
