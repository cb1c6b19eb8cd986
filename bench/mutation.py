"""Mutation testing of the rules that decide something about a person (issue 20), with mutmut.

    uv run python bench/mutation.py                 # every module below, one after the other
    uv run python bench/mutation.py verifier risk   # some of them
    uv run python bench/mutation.py --list          # what would run
    make mutation                                   # the same as the first line

Each module runs in a scratch copy of the checkout (``git ls-files``), so the working tree is
never touched: the copy's ``pyproject.toml`` gets a ``[tool.mutmut]`` section naming the files
to mutate and the module's own narrow test selection, then ``mutmut run`` runs the mutants of
the listed functions only (mutmut forks one child per mutant and runs only the tests that
reached the mutated function). The table printed at the end — killed / survived / timeout /
other per module, and the score = killed / (all - skipped) — is what docs/testing.md quotes;
``--show`` prints each survivor's diff, which docs/testing.md must explain (an equivalent
mutant) or a new test must kill.

It is slow (minutes per module) and CPU-hungry: not part of ``make test`` or CI. ``--jobs``
sets mutmut's ``--max-children`` (default 1: the machine is shared). Database tests run on
SQLite only (``ISOCHECK_TEST_DATABASE_URL`` is removed) and face tests read ``../shared`` of
this checkout when it is there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Module:
    name: str
    files: tuple[str, ...]  # files mutmut mutates
    functions: tuple[str, ...]  # mutant-name globs: the functions whose mutants run
    tests: tuple[str, ...]  # pytest selection
    note: str
    #: tests left out of the run (``--deselect``): each needs a reason in a comment below
    deselect: tuple[str, ...] = ()


MODULES = [
    Module(
        "verifier",
        ("verification/decisions.py", "verification/quality.py"),
        ("verification.decisions.xǁDecisionRulesǁthresholds__mutmut_*",
         "verification.decisions.xǁDecisionRulesǁdecide__mutmut_*",
         "verification.decisions.xǁDecisionRulesǁ_pad_gate__mutmut_*",
         "verification.quality.x_gate__mutmut_*"),
        ("tests/verification/test_decide_bands.py", "tests/verification/test_decide_pinned.py",
         "tests/verification/test_pad.py", "tests/verification/test_quality_gate.py"),
        "face bands (thresholds, decide), the PAD gate, the quality gate",
    ),
    Module(
        "checkin",
        ("server/checkins/service.py", "server/checkins/judging.py"),
        ("server.checkins.service.x_find_prompt_for_upload__mutmut_*",
         "server.checkins.judging.x_judge__mutmut_*",
         "server.checkins.judging.x__verdict_of__mutmut_*",
         "server.checkins.service.x_apply_verdict__mutmut_*"),
        ("tests/checkins", "tests/test_state_machines.py"),
        "check-in judging: the prompt an upload may answer, the verdict, its CAS, the prompt move",
        # 8 to 12 threads verifying real photos at once: on a loaded machine its connection
        # pool times out (30 s), which fails mutmut's clean run and aborts the whole module, or
        # "kills" a mutant by accident. The CAS it guards is pinned without photos by
        # tests/checkins/test_judging_race.py and test_checkin_cas.py.
        deselect=("tests/checkins/test_checkin_attempt_race.py",),
    ),
    Module(
        "escalation",
        ("server/alerts/escalation.py", "server/alerts/service.py"),
        ("server.alerts.escalation.x_escalate_batch__mutmut_*",
         "server.alerts.service.x_deadline_minutes__mutmut_*"),
        ("tests/scheduler/test_scheduler_escalation.py", "tests/scheduler/test_escalation_edges.py",
         "tests/test_state_machines.py"),
        "escalation ward → district → city, its deadlines and repeats",
    ),
    Module(
        "risk",
        ("server/declarations/risk.py",),
        ("server.declarations.risk.x_*",),
        ("tests/declarations",),
        "risk rules of a health declaration",
    ),
    Module(
        "scope",
        ("server/scope.py",),
        ("server.scope.x_*",),
        ("tests/dashboard/test_authorization_matrix.py", "tests/dashboard/test_dashboard.py",
         "tests/test_scope.py", "tests/test_scope_queries.py"),
        "area scope of staff (admin, area staff, doctor)",
    ),
    Module(
        "outbox",
        ("server/notify/delivery.py",),
        ("server.notify.delivery.x_claim_with_count__mutmut_*",
         "server.notify.delivery.x_record__mutmut_*",
         "server.notify.delivery.x_release__mutmut_*",
         "server.notify.delivery.x_backoff_seconds__mutmut_*"),
        ("tests/notify/test_notify_delivery.py", "tests/notify/test_notify_concurrency.py",
         "tests/notify/test_outbox_edges.py", "tests/test_state_machines.py",
         "tests/notify/test_retry_quiet_hours.py"),
        "outbox claims: the lease CAS, recording results, release, backoff",
    ),
]  # fmt: skip
BY_NAME = {m.name: m for m in MODULES}
STATUS = re.compile(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$")


def _copy(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _link_shared(base: Path, work: Path) -> None:
    """The photo sets, spoof set and models where the tests look for them: ``../shared`` of the
    repository. mutmut runs the tests from ``mutants/`` inside the copy, so ``tests/`` resolves
    to ``work/mutants/tests`` there and ``../shared`` to ``work/shared``; a plain run of the copy
    sees ``base/shared``. Without them the PAD tests (``need_model``, the spoof set) skipped in
    the copy: only the photo sets had environment variables."""
    shared = REPO.parent / "shared"
    if shared.is_dir():
        for where in (base, work):
            (where / "shared").symlink_to(shared, target_is_directory=True)


def _config(module: Module) -> str:
    def toml_list(items) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    tests = [t for t in module.tests if (REPO / t).exists()]
    deselect = [a for t in module.deselect for a in ("--deselect", t)]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["server", "scheduler", "verification"]\n'
        # tests that import a bench script (test_pad.py: bench/pad_fit.py) find it in mutants/
        'also_copy = ["bench"]\n'
        f"only_mutate = {toml_list(module.files)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(['-p', 'no:cacheprovider', '-q', '-x', *deselect])}\n"
        "use_git_change_detection = false\n"
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ISOCHECK_TEST_DATABASE_URL", "COVERAGE_PROCESS_START")}  # fmt: skip
    shared = REPO.parent / "shared"
    env.setdefault("ISOCHECK_FACES_DIR", str(shared / "faces"))
    env.setdefault("ISOCHECK_FACES_ASIA_DIR", str(shared / "faces-asia"))
    return env


def run_module(
    module: Module, *, jobs: int, show: bool, keep: bool, previous: dict | None = None
) -> dict:
    """One module in a scratch copy. ``previous`` (a result of an earlier run, from ``--rerun``):
    run only the mutants that were not killed then (survivors and untested ones) and add the
    earlier kills to the counts — tests were only added since, so an earlier kill stays one."""
    names = module.functions
    if previous is not None:
        # name → status then; runs before --rerun existed kept only the survivors' names
        before = previous.get("not_killed") or dict.fromkeys(previous["survivors"], "survived")
        names = tuple(sorted(before))
    base = Path(tempfile.mkdtemp(prefix=f"mutation-{module.name}-"))
    work = base / REPO.name
    started, wall = time.monotonic(), time.time()
    load_start = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        work.mkdir()
        _copy(work)
        _link_shared(base, work)
        pyproject = work / "pyproject.toml"
        pyproject.write_text(pyproject.read_text() + _config(module))
        env = _env()
        run = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs),
             *names],
            cwd=work, env=env, capture_output=True, text=True,
        )  # fmt: skip
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_end = os.getloadavg()
        results = subprocess.run(
            [sys.executable, "-m", "mutmut", "results", "--all", "true"],
            cwd=work, env=env, capture_output=True, text=True,
        ).stdout  # fmt: skip
        statuses: dict[str, str] = {}
        for line in results.splitlines():
            m = STATUS.match(line)
            if m and any(_glob(m.group(1), g) for g in names):
                statuses[m.group(1)] = m.group(2)
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        survivors = sorted(n for n, s in statuses.items() if s == "survived")
        diffs = {}
        if show:
            for name in survivors:
                diffs[name] = subprocess.run(
                    [sys.executable, "-m", "mutmut", "show", name],
                    cwd=work, env=env, capture_output=True, text=True,
                ).stdout  # fmt: skip
        not_killed = {n: s for n, s in sorted(statuses.items()) if s != "killed"}
        if previous is not None:  # the earlier counts, with the rerun mutants' new statuses
            merged = dict(previous["counts"])
            for status in before.values():
                merged[status] -= 1
            for status, n in counts.items():
                merged[status] = merged.get(status, 0) + n
            counts = {k: v for k, v in merged.items() if v}
        scored = sum(v for k, v in counts.items() if k not in ("skipped", "not checked"))
        killed = counts.get("killed", 0)
        return {
            "module": module.name, "note": module.note, "files": list(module.files),
            "counts": counts, "score": round(100 * killed / scored, 1) if scored else None,
            "survivors": survivors, "not_killed": not_killed,
            "rerun_of": None if previous is None else previous.get("started"),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall)), "diffs": diffs,
            "seconds": round(time.monotonic() - started),
            # the run's own cost, whatever the load: CPU of mutmut and every child it forked
            "cpu_seconds": round(
                cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
            ),
            "load_average": {"start": [round(x, 2) for x in load_start],
                             "end": [round(x, 2) for x in load_end]},
            "returncode": run.returncode,
            "log_tail": (run.stdout[-3000:] + run.stderr[-3000:]) if not statuses else "",
        }  # fmt: skip
    finally:
        if keep:
            print(f"  kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def _glob(name: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(name, pattern)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(BY_NAME)}")
    parser.add_argument("--jobs", type=int, default=1, help="mutmut --max-children")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rerun", type=Path, metavar="JSON",
                        help="an earlier --json: rerun only what it did not kill")  # fmt: skip
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.modules] or MODULES
    if args.list:
        for m in chosen:
            print(f"{m.name:<11} {', '.join(m.files)}\n  functions: {', '.join(m.functions)}\n"
                  f"  tests: {' '.join(m.tests)}")  # fmt: skip
        return 0
    before = {}
    if args.rerun:
        before = {r["module"]: r for r in json.loads(args.rerun.read_text())}
    out = []
    for module in chosen:
        print(f"mutation: {module.name} …", file=sys.stderr, flush=True)
        result = run_module(module, jobs=args.jobs, show=args.show, keep=args.keep,
                            previous=before.get(module.name))  # fmt: skip
        out.append(result)
        c = result["counts"]
        print(f"  {module.name}: score {result['score']} % {c} in {result['seconds']} s "
              f"({result['cpu_seconds']} s CPU, load {result['load_average']})",
              file=sys.stderr, flush=True)  # fmt: skip
        if result["log_tail"]:
            print(result["log_tail"], file=sys.stderr)
        for name, diff in result["diffs"].items():
            print(f"--- survivor {name}\n{diff}", file=sys.stderr)
    print(f"\n{'module':<11} {'killed':>6} {'survived':>8} {'timeout':>7} {'other':>5} "
          f"{'score':>6}  time")  # fmt: skip
    for r in out:
        c = dict(r["counts"])
        killed, survived = c.pop("killed", 0), c.pop("survived", 0)
        timeout = c.pop("timeout", 0)
        other = sum(v for k, v in c.items() if k not in ("skipped", "not checked"))
        score = "-" if r["score"] is None else f"{r['score']:.1f}%"
        print(f"{r['module']:<11} {killed:>6} {survived:>8} {timeout:>7} {other:>5} "
              f"{score:>6}  {r['seconds']} s")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    return 0 if all(r["score"] is not None for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
