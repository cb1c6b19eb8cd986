"""Analysis half of ``bench/calib_photosets.py``: cached measurements -> calibration numbers.

Every function takes the cache written by ``calib_photosets.py collect`` (a dict with
``images[(set, path)]`` and ``variants[(set, path, variant)]`` records) and returns plain numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from verification import calibrate as C
from verification.replay import hamming

FMRS = (0.01, 0.005, 0.001, 0.0001)
ACCEPT_FMR = 0.001
METRIC = {"sface": "cosine", "dlib": "euclidean"}


def _pct(x, q):
    return float(np.percentile(np.asarray(x, np.float64), q)) if len(x) else float("nan")


def _identity_images(data, name):
    return {
        rel: r
        for (n, rel), r in data["images"].items()
        if n == name and not rel.startswith("_") and "/" in rel
    }


def _vectors(imgs, emb):
    return {rel: r[emb] for rel, r in imgs.items() if r.get(emb) is not None}


def _all_scores(vecs: dict, emb: str):
    """(genuine, impostor) distances over every pair of the identity photos."""
    keys = sorted(vecs)
    ident = np.array([Path(k).parent.name for k in keys])
    m = C.distance_matrix(np.stack([vecs[k] for k in keys]), METRIC[emb])
    iu = np.triu_indices(len(keys), 1)
    same = ident[iu[0]] == ident[iu[1]]
    return m[iu][same], m[iu][~same]


def _second(r, ratio):
    f = r.get("faces") or []
    return len(f) > 1 and f[1][0] >= ratio * f[0][0]


def detection_report(data, name):
    out = {}
    imgs = {rel: r for (n, rel), r in data["images"].items() if n == name}
    ident = {k: r for k, r in imgs.items() if not k.startswith("_")}
    out["identity_photos"] = len(ident)
    out["identity_no_face"] = sorted(k for k, r in ident.items() if not r.get("faces"))
    ratios = (0.3, 0.4, 0.5, 0.6, 0.7)
    out["identity_second_face"] = {
        str(q): sorted(k for k, r in ident.items() if _second(r, q)) for q in ratios
    }
    multi = {k: r for k, r in imgs.items() if k.startswith("_multi/")}
    out["multi_photos"] = len(multi)
    out["multi_refused"] = {str(q): sum(_second(r, q) for r in multi.values()) for q in ratios}
    out["multi_not_refused_at_0.5"] = {
        k: [round(f[0], 1) for f in r.get("faces") or []][:4]
        for k, r in multi.items()
        if not _second(r, 0.5)
    }
    noface = {k: r for k, r in imgs.items() if k.startswith("_noface/")}
    out["noface_photos"] = len(noface)
    out["noface_with_face"] = {
        k: [(round(f[0], 1), round(f[1], 3)) for f in r["faces"]]
        for k, r in noface.items()
        if r.get("faces")
    }
    tiny = {k: r for k, r in imgs.items() if k.startswith("_tiny_blur/")}
    out["tiny_blur"] = {
        k: {
            "faces": len(r.get("faces") or []),
            **({q: r["quality"][q] for q in ("face_px", "sharpness")} if "quality" in r else {}),
        }
        for k, r in sorted(tiny.items())
    }
    partial = {k: r for k, r in imgs.items() if k.startswith("_partial/")}
    out["partial"] = {k: r.get("quality") for k, r in sorted(partial.items())}
    return out


def quality_distribution(data, name):
    imgs = _identity_images(data, name)
    q = {
        key: [r["quality"][key] for r in imgs.values() if "quality" in r]
        for key in ("face_px", "sharpness", "brightness", "yaw")
    }
    q["ear"] = [r["ear"] for r in imgs.values() if r.get("ear") is not None]
    q["abs_yaw"] = [abs(y) for y in q["yaw"]]
    return {
        k: {f"p{p}": round(_pct(vals, p), 3) for p in (0.5, 1, 5, 50, 95, 99, 99.5)}
        for k, vals in q.items()
    }


def scores(data, name, emb):
    vecs = _vectors(_identity_images(data, name), emb)
    g_all, i_all = _all_scores(vecs, emb)

    def dist(a, b):
        return float(C.distance_matrix(np.stack([a, b]), METRIC[emb])[0, 1])

    g_csv, i_csv, skipped = C.pair_distances(
        C.load_pairs(data["roots"][name] / "pairs.csv"), vecs, dist
    )
    return np.asarray(g_all), np.asarray(i_all), np.asarray(g_csv), np.asarray(i_csv), skipped


def verification_report(data, name, emb, accept):
    imgs = _identity_images(data, name)
    g_all, i_all, g_csv, i_csv, skipped = scores(data, name, emb)
    eer, eer_t = C.equal_error(g_all, i_all)
    out = {
        "photos": len(imgs),
        "embedded": len(_vectors(imgs, emb)),
        "pairs_csv": {"genuine": len(g_csv), "impostor": len(i_csv), "skipped": skipped},
        "all_pairs": {"genuine": len(g_all), "impostor": len(i_all)},
        "eer": eer,
        "eer_threshold": eer_t,
        "roc_all_pairs": C.roc_table(g_all, i_all, FMRS),
        "at_accept": {
            "threshold": accept,
            "all_pairs": dict(zip(("fmr", "fnmr"), C.rates(g_all, i_all, accept), strict=True)),
            "pairs_csv": dict(zip(("fmr", "fnmr"), C.rates(g_csv, i_csv, accept), strict=True)),
        },
    }
    if emb == "dlib":
        out["at_0.6"] = dict(zip(("fmr", "fnmr"), C.rates(g_all, i_all, 0.6), strict=True))
    return out


def band_report(g, i, accept, review_fmrs=(0.005, 0.01, 0.02, 0.05)):
    missed = g[g > accept]
    rows = []
    for f in review_fmrs:
        r = C.threshold_at_fmr(i, f)
        rows.append(
            {
                "review_fmr": f,
                "review_threshold": r,
                "genuine_match": float((g <= accept).mean()),
                "genuine_review": float(((g > accept) & (g <= r)).mean()),
                "genuine_mismatch": float((g > r).mean()),
                "missed_caught_by_review": float((missed <= r).mean()) if missed.size else 1.0,
                "impostor_review": float(((i > accept) & (i <= r)).mean()),
            }
        )
    return rows


def _paired(data, name):
    imgs = _identity_images(data, name)
    both = {
        k: r for k, r in imgs.items() if r.get("sface") is not None and r.get("dlib") is not None
    }
    gs, is_ = _all_scores({k: both[k]["sface"] for k in both}, "sface")
    gd, id_ = _all_scores({k: both[k]["dlib"] for k in both}, "dlib")
    return gs, is_, gd, id_


def fusion_report(data):
    """AND rule and weighted-sum fusion, calibrated on faces-asia, checked on faces."""
    gs, is_, gd, id_ = _paired(data, "faces-asia")
    gs2, is2, gd2, id2 = _paired(data, "faces")
    out = {}
    ts = C.threshold_at_fmr(is_, ACCEPT_FMR)
    out["sface_alone"] = {
        "threshold": ts,
        "gar": float((gs <= ts).mean()),
        "fmr": float((is_ <= ts).mean()),
    }
    k = int(ACCEPT_FMR * len(is_))
    best = None
    for t1 in np.arange(ts, ts + 0.25, 0.005):
        sel = is_ <= t1
        cand = np.sort(id_[sel])
        t2 = float(cand[k]) - 1e-6 if k < len(cand) else 9.0
        gar = float(((gs <= t1) & (gd <= t2)).mean())
        if best is None or gar > best["gar"]:
            fmr = float(((is_ <= t1) & (id_ <= t2)).mean())
            best = {
                "sface_threshold": round(float(t1), 4),
                "dlib_threshold": round(t2, 4),
                "gar": gar,
                "fmr": fmr,
            }
    out["and_rule"] = best
    mu_s, sd_s, mu_d, sd_d = is_.mean(), is_.std(), id_.mean(), id_.std()
    bestw = None
    for w in np.arange(0.0, 1.01, 0.1):
        gi = (1 - w) * (gs - mu_s) / sd_s + w * (gd - mu_d) / sd_d
        ii = (1 - w) * (is_ - mu_s) / sd_s + w * (id_ - mu_d) / sd_d
        t = C.threshold_at_fmr(ii, ACCEPT_FMR)
        gar = float((gi <= t).mean())
        if bestw is None or gar > bestw["gar"]:
            bestw = {
                "dlib_weight": round(float(w), 2),
                "threshold": t,
                "gar": gar,
                "fmr": float((ii <= t).mean()),
            }
    out["weighted_sum"] = bestw
    w = bestw["dlib_weight"]
    f2g = (1 - w) * (gs2 - mu_s) / sd_s + w * (gd2 - mu_d) / sd_d
    f2i = (1 - w) * (is2 - mu_s) / sd_s + w * (id2 - mu_d) / sd_d
    out["check_on_faces"] = {
        "sface_alone": {"gar": float((gs2 <= ts).mean()), "fmr": float((is2 <= ts).mean())},
        "and_rule": {
            "gar": float(
                ((gs2 <= best["sface_threshold"]) & (gd2 <= best["dlib_threshold"])).mean()
            ),
            "fmr": float(
                ((is2 <= best["sface_threshold"]) & (id2 <= best["dlib_threshold"])).mean()
            ),
        },
        "weighted_sum": {
            "gar": float((f2g <= bestw["threshold"]).mean()),
            "fmr": float((f2i <= bestw["threshold"]).mean()),
        },
    }
    out["pairs"] = {"faces-asia": [len(gs), len(is_)], "faces": [len(gs2), len(is2)]}
    return out


def _by_identity(vecs):
    def order(p):
        stem = Path(p).stem
        return (Path(p).parent.name, int(stem) if stem.isdigit() else 0)

    by_id: dict[str, list[str]] = {}
    for k in sorted(vecs, key=order):
        by_id.setdefault(Path(k).parent.name, []).append(k)
    return by_id


def multi_template_report(
    data, name, accept, augment_max, max_templates=5, enrol_min_face=80, emb="sface"
):
    """Several templates (best vs mean), and online augmentation with confident check-ins."""
    imgs = _identity_images(data, name)
    vecs = {k: r[emb] for k, r in imgs.items() if r.get(emb) is not None}
    by_id = _by_identity(vecs)
    keys = sorted(vecs)
    index = {k: n for n, k in enumerate(keys)}
    m = C.distance_matrix(np.stack([vecs[k] for k in keys]), METRIC[emb])
    out = {}
    shifts = {}
    for rule in ("best", "mean"):
        for k_enrol in (1, 2, 3, 4, 5):
            gen, imp = [], []
            for pid, files in by_id.items():
                if len(files) <= k_enrol:
                    continue
                tpl = [index[f] for f in files[:k_enrol]]
                agg = np.min if rule == "best" else np.mean
                gen += [float(agg(m[tpl, index[f]])) for f in files[k_enrol:]]
                others = [index[f] for o, fs in by_id.items() if o != pid for f in fs]
                imp += list(agg(m[np.ix_(tpl, others)], axis=0))
            gen_a, imp_a = np.array(gen), np.array(imp)
            t = C.threshold_at_fmr(imp_a, ACCEPT_FMR)
            if rule == "best":
                shifts[k_enrol] = t
            out[f"{rule}_k{k_enrol}"] = {
                "threshold_at_0.1pct": t,
                "gar_at_own_threshold": float((gen_a <= t).mean()),
                "gar_at_accept": float((gen_a <= accept).mean()),
                "fmr_at_accept": float((imp_a <= accept).mean()),
                "genuine": len(gen),
                "impostor": len(imp),
            }
    out["best_threshold_shift_by_templates"] = {
        k: round(t - shifts[1], 4) for k, t in shifts.items()
    }
    for aug, adjust in ((False, False), (True, False), (True, True)):
        gen, imp, sizes = [], [], []
        for pid, files in by_id.items():
            if len(files) < 2:
                continue
            tpl = [index[files[0]]]
            for f in files[1:]:
                dist = float(np.min(m[tpl, index[f]]))
                limit = accept + (shifts[min(len(tpl), 5)] - shifts[1] if adjust else 0.0)
                gen.append(dist <= limit)
                if (
                    aug
                    and dist <= min(augment_max, limit)
                    and len(tpl) < max_templates
                    and imgs[f]["quality"]["face_px"] >= enrol_min_face
                    and dist >= 0.1
                ):
                    tpl.append(index[f])
            sizes.append(len(tpl))
            others = [index[f] for o, fs in by_id.items() if o != pid for f in fs]
            limit = accept + (shifts[min(len(tpl), 5)] - shifts[1] if adjust else 0.0)
            imp += list(np.min(m[np.ix_(tpl, others)], axis=0) <= limit)
        gen_a, imp_a = np.array(gen), np.array(imp)
        label = "enrolment_only" if not aug else ("augmented_adjusted" if adjust else "augmented")
        out[label] = {
            "gar_at_accept": float(gen_a.mean()),
            "fmr_at_accept": float(imp_a.mean()),
            "impostor_accepted": int(imp_a.sum()),
            "impostor": len(imp),
            "genuine": len(gen),
            "mean_templates": float(np.mean(sizes)),
        }
    return out


def variant_report(data, accept):
    """Per synthetic variant: its measurements, detection and genuine acceptance."""
    rows: dict[str, dict] = {}
    for (name, rel, vname), r in sorted(data["variants"].items()):
        imgs = _identity_images(data, name)
        folder = str(Path(rel).parent)
        others = [
            x["sface"]
            for k, x in imgs.items()
            if k.startswith(folder + "/") and k != rel and x.get("sface") is not None
        ]
        orig = imgs.get(rel, {})
        if not others or orig.get("sface") is None:
            continue
        row = rows.setdefault(
            vname, {"n": 0, "det": 0, "acc": 0, "base": 0, "q": [], "hp": [], "hf": []}
        )
        row["n"] += 1
        row["base"] += int(min(1 - float(np.dot(orig["sface"], o)) for o in others) <= accept)
        if r.get("sface") is None:
            continue
        row["det"] += 1
        row["acc"] += int(min(1 - float(np.dot(r["sface"], o)) for o in others) <= accept)
        row["q"].append(r["quality"])
        row["hp"].append(hamming(r["hashes"].phash, orig["hashes"].phash))
        row["hf"].append(1.0 - float(np.dot(r["sface"], orig["sface"])))
    out = {}
    for vname, row in sorted(rows.items()):
        qs = row["q"]
        out[vname] = {
            "n": row["n"],
            "detected": row["det"] / row["n"],
            "genuine_accept": row["acc"] / row["n"],
            "genuine_accept_original": row["base"] / row["n"],
            **{
                f"{p}_{k}": round(_pct([q[k] for q in qs], int(p[1:])), 2)
                for k in ("face_px", "sharpness", "brightness")
                for p in ("p10", "p50", "p90")
            },
            "phash_max": int(max(row["hp"], default=-1)),
            "phash_p50": _pct(row["hp"], 50),
            "sface_distance_to_original_p50": round(_pct(row["hf"], 50), 4),
            "sface_distance_to_original_p90": round(_pct(row["hf"], 90), 4),
        }
    return out


def replay_report(data):
    """Bit distances between *different* photos of the same person (must not be replays)."""
    out = {}
    for name in data["roots"]:
        imgs = _identity_images(data, name)
        keys = sorted(k for k, r in imgs.items() if r.get("hashes") is not None)
        hp = []
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if Path(a).parent != Path(b).parent:
                    continue
                ha, hb = imgs[a]["hashes"], imgs[b]["hashes"]
                if ha.sha256 == hb.sha256:
                    continue
                hp.append(hamming(ha.phash, hb.phash))
        out[name] = {
            "same_person_pairs": len(hp),
            "phash_min": int(min(hp)),
            "phash_le": {str(t): int(sum(h <= t for h in hp)) for t in (4, 6, 8, 10, 12)},
        }
    return out


def subgroups(data, emb):
    """faces-asia split into K-pop crops (15 women, similar styling) and LFW news photos.

    Returns per-group distances: genuine and impostor within K-pop, within LFW, and across.
    """
    imgs = _identity_images(data, "faces-asia")
    vecs = _vectors(imgs, emb)
    keys = sorted(vecs)
    ident = np.array([Path(k).parent.name for k in keys])
    grp = np.array(["kpop" if i.startswith("kpop") else "lfw" for i in ident])
    m = C.distance_matrix(np.stack([vecs[k] for k in keys]), METRIC[emb])
    iu = np.triu_indices(len(keys), 1)
    d = m[iu]
    same = ident[iu[0]] == ident[iu[1]]
    ga, gb = grp[iu[0]], grp[iu[1]]
    sel = {
        "kpop": (ga == "kpop") & (gb == "kpop"),
        "lfw": (ga == "lfw") & (gb == "lfw"),
        "cross": ga != gb,
    }
    return {k: (d[v & same], d[v & ~same]) for k, v in sel.items()}


def subgroup_table(groups, thresholds, review):
    out = {}
    for label, t in thresholds.items():
        out[label] = {"threshold": t}
        for g, (gen, imp) in groups.items():
            out[label][g] = {
                "genuine": len(gen),
                "impostor": len(imp),
                "gar": float((gen <= t).mean()) if len(gen) else None,
                "refused": float((gen > review).mean()) if len(gen) else None,
                "fmr": float((imp <= t).mean()),
                "impostor_review": float(((imp > t) & (imp <= review)).mean()),
            }
    return out


def report(data, roots, augment_max=0.45) -> dict:
    """Every calibration number. The accept threshold is the one that keeps FMR <= 0.1 % on the
    hardest demographically matched impostors we have: K-pop vs K-pop (same gender, same styling);
    the threshold for 0.1 % over all faces-asia impostor pairs is reported beside it."""
    data["roots"] = roots
    out: dict = {"detection": {}, "quality": {}, "verification": {}, "bands": {}}
    _, i, *_ = scores(data, "faces-asia", "sface")
    _, id_, *_ = scores(data, "faces-asia", "dlib")
    groups = {emb: subgroups(data, emb) for emb in ("sface", "dlib")}
    accept = C.threshold_at_fmr(groups["sface"]["kpop"][1], ACCEPT_FMR)
    accept_d = C.threshold_at_fmr(groups["dlib"]["kpop"][1], ACCEPT_FMR)
    overall = {
        "sface": C.threshold_at_fmr(i, ACCEPT_FMR),
        "dlib": C.threshold_at_fmr(id_, ACCEPT_FMR),
    }
    review = {"sface": C.threshold_at_fmr(i, 0.05), "dlib": C.threshold_at_fmr(id_, 0.05)}
    out["accept"] = {
        "sface": accept,
        "dlib": accept_d,
        "overall_0.1pct": overall,
        "review_5pct": review,
    }
    out["subgroups"] = {
        "sface": subgroup_table(
            groups["sface"], {"matched": accept, "overall": overall["sface"]}, review["sface"]
        ),
        "dlib": subgroup_table(
            groups["dlib"],
            {"matched": accept_d, "overall": overall["dlib"], "readme_0.6": 0.6},
            review["dlib"],
        ),
    }
    for name in roots:
        out["detection"][name] = detection_report(data, name)
        out["quality"][name] = quality_distribution(data, name)
        out["verification"][name] = {}
        out["bands"][name] = {}
        for emb, acc in (("sface", accept), ("dlib", accept_d)):
            out["verification"][name][emb] = verification_report(data, name, emb, acc)
            g, ii, *_ = scores(data, name, emb)
            out["bands"][name][emb] = band_report(g, ii, acc)
    out["fusion"] = fusion_report(data)
    out["multi_template"] = {n: multi_template_report(data, n, accept, augment_max) for n in roots}
    out["multi_template_dlib"] = {
        n: multi_template_report(data, n, accept_d, augment_max * accept_d / accept, emb="dlib")
        for n in roots
    }
    out["variants"] = variant_report(data, accept)
    out["replay"] = replay_report(data)
    out["quality_curves"] = quality_curves(data, accept)
    timings = [r["timings"]["total"] for r in data["images"].values() if "timings" in r]
    out["collect_median_ms_with_dlib"] = _pct(timings, 50)
    del data["roots"]
    return out


def binned_variants(data, accept, prefixes, metric, edges):
    """Genuine acceptance of synthetic variants binned by a measurement (e.g. brightness)."""
    rows = {}
    for (name, rel, vname), r in data["variants"].items():
        if not vname.startswith(prefixes) or r.get("sface") is None:
            continue
        imgs = _identity_images(data, name)
        folder = str(Path(rel).parent)
        others = [
            x["sface"]
            for k, x in imgs.items()
            if k.startswith(folder + "/") and k != rel and x.get("sface") is not None
        ]
        if not others:
            continue
        value = r["quality"][metric]
        ok = min(1 - float(np.dot(r["sface"], o)) for o in others) <= accept
        for lo, hi in zip(edges, edges[1:], strict=False):
            if lo <= value < hi:
                row = rows.setdefault(f"{lo}-{hi}", [0, 0])
                row[0] += 1
                row[1] += int(ok)
    return {k: {"n": n, "genuine_accept": round(a / n, 3)} for k, (n, a) in rows.items()}


def binned_photos(data, name, accept, metric, edges, absolute=False):
    """Real photos binned by a measurement: share of each photo's genuine pairs accepted."""
    imgs = _identity_images(data, name)
    vecs = _vectors(imgs, "sface")
    by_id: dict[str, list[str]] = {}
    for k in vecs:
        by_id.setdefault(Path(k).parent.name, []).append(k)
    rows = {}
    for k, v in vecs.items():
        value = imgs[k]["ear"] if metric == "ear" else imgs[k]["quality"][metric]
        if value is None:
            continue
        value = abs(value) if absolute else value
        mates = [m for m in by_id[Path(k).parent.name] if m != k]
        if not mates:
            continue
        acc = [1 - float(np.dot(v, vecs[m])) <= accept for m in mates]
        for lo, hi in zip(edges, edges[1:], strict=False):
            if lo <= value < hi:
                row = rows.setdefault(f"{lo}-{hi}", [0, 0, 0])
                row[0] += 1
                row[1] += sum(acc)
                row[2] += len(acc)
    return {
        k: {"photos": n, "genuine_pair_accept": round(a / t, 3)} for k, (n, a, t) in rows.items()
    }


def quality_curves(data, accept):
    """The curves behind each quality threshold."""
    inf = float("inf")
    out = {
        "variants_by_brightness": binned_variants(
            data,
            accept,
            ("dark_", "bright_"),
            "brightness",
            [0, 20, 30, 40, 50, 60, 180, 200, 210, 220, 230, 240, 256],
        ),
        "variants_by_sharpness": binned_variants(
            data, accept, ("blur_",), "sharpness", [0, 5, 10, 20, 30, 40, 60, 80, 120, inf]
        ),
        "variants_by_face_px": binned_variants(
            data, accept, ("small_",), "face_px", [0, 24, 32, 40, 48, 56, 64, 80, 100, inf]
        ),
    }
    for name in data["roots"]:
        out[f"{name}_by_abs_yaw"] = binned_photos(
            data, name, accept, "yaw", [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, inf], absolute=True
        )
        out[f"{name}_by_ear"] = binned_photos(
            data, name, accept, "ear", [0, 0.1, 0.12, 0.15, 0.18, 0.2, 0.25, inf]
        )
        out[f"{name}_by_sharpness"] = binned_photos(
            data, name, accept, "sharpness", [0, 20, 40, 60, 80, 120, 200, inf]
        )
    return out
