"""Physiology: heart rate / HRV from synthetic PPG, SCRs from synthetic EDA, windows aligned to
clips, cross-subject folds, and regression metrics checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from sovtp.data.sample import Sample
from sovtp.physio import clip_window, load_csv, window
from sovtp.physio.cues import physio_cues, physio_text
from sovtp.physio.features import eda_features, heart_features
from sovtp.physio.folds import leave_subjects_out, subject_folds
from sovtp.physio.signals import Recording
from sovtp.scoring import registry as R
from sovtp.scoring.registry import RegressionData
from sovtp.scoring.tasks import ccc, high_low_labels


def synthetic_ppg(bpm=72.0, seconds=60.0, fs=64.0, seed=0):
    """A pulse wave (systolic + dicrotic bumps) with respiratory HRV, baseline wander and noise;
    returns the signal and the true inter-beat intervals."""
    rng = np.random.default_rng(seed)
    beats, t = [], 0.5
    while t < seconds - 0.5:
        beats.append(t)
        t += 60.0 / bpm + 0.04 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.015)
    tt = np.arange(int(seconds * fs)) / fs
    x = np.zeros_like(tt)
    for b in beats:
        x += np.exp(-((tt - b) ** 2) / (2 * 0.08**2))
        x += 0.4 * np.exp(-((tt - b - 0.3) ** 2) / (2 * 0.1**2))
    x += 0.3 * np.sin(2 * np.pi * 0.15 * tt) + rng.normal(0, 0.02, len(tt))
    return x, np.diff(beats)


def synthetic_eda(onsets=(6.0, 18.0, 30.0), amps=(0.25, 0.4, 0.15), seconds=40.0, fs=32.0):
    """Tonic 2 µS drifting up, plus one Bateman-shaped response per onset."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * fs)) / fs
    x = 2.0 + 0.005 * t + rng.normal(0, 0.003, len(t))
    for on, a in zip(onsets, amps, strict=True):
        s = np.clip(t - on, 0, None)
        shape = np.exp(-s / 4.0) - np.exp(-s / 0.75)
        x += a * shape / shape.max()
    return x


def test_heart_rate_and_hrv_from_ppg():
    x, ibi = synthetic_ppg(72.0)
    h = heart_features(x, 64.0)
    assert abs(h.hr_bpm - 60.0 / ibi.mean()) < 1.0
    assert abs(h.hr_bpm - 72.0) < 2.0
    true_rmssd = np.sqrt(np.mean(np.diff(ibi) ** 2)) * 1000
    true_sdnn = np.std(ibi, ddof=1) * 1000
    assert abs(h.rmssd_ms - true_rmssd) < 0.25 * true_rmssd, (h.rmssd_ms, true_rmssd)
    assert abs(h.sdnn_ms - true_sdnn) < 0.25 * true_sdnn, (h.sdnn_ms, true_sdnn)
    assert h.trend == "steady"
    fast, _ = synthetic_ppg(110.0, seed=3)
    assert abs(heart_features(fast, 64.0).hr_bpm - 110.0) < 2.0


def test_heart_rate_trend_rises():
    fs, seconds = 64.0, 40.0
    tt = np.arange(int(seconds * fs)) / fs
    beats, t = [], 0.5
    while t < seconds - 0.5:  # 65 → ~95 bpm
        beats.append(t)
        t += 60.0 / (65.0 + 0.75 * t)
    x = sum(np.exp(-((tt - b) ** 2) / (2 * 0.08**2)) for b in beats)
    h = heart_features(x, fs)
    assert h.trend == "rising" and h.slope_bpm_per_s > 0.5


def test_eda_finds_three_responses_and_tonic_level():
    x = synthetic_eda()
    e = eda_features(x, 32.0)
    assert e.n_scr == 3
    assert np.allclose(e.scr_amplitudes_us, [0.25, 0.4, 0.15], atol=0.05)
    # peaks come ~2 s after the onsets (rise 0.75 s, decay 4 s)
    assert all(0.5 < p - o < 4.0 for p, o in zip(e.scr_times_s, (6, 18, 30), strict=True))
    assert 1.95 < e.tonic_us < 2.3
    flat = eda_features(2.0 + np.random.default_rng(2).normal(0, 0.003, 640), 32.0)
    assert flat.n_scr == 0


def test_physio_cues_word_the_measures():
    ppg, _ = synthetic_ppg(92.0, seconds=30.0, seed=5)
    eda = synthetic_eda(seconds=30.0, onsets=(4.0, 12.0, 20.0))
    fs = 64.0
    t = np.arange(len(ppg)) / fs
    eda64 = np.interp(t, np.arange(len(eda)) / 32.0, eda)
    rec = Recording(t, {"PPG": ppg, "EDA_uS": eda64}, fs)
    cues = physio_cues(rec, subject=1)
    assert [c.name for c in cues] == ["heart_rate", "eda"]
    assert all(c.kind == "physio" and c.subject == 1 for c in cues)
    assert abs(cues[0].value["hr_bpm"] - 92) < 2
    text = physio_text(cues)
    assert "heart rate 9" in text and "3 skin-conductance responses" in text
    # a channel too short to measure gives no cue, not a guess
    short = Recording(t[:64], {"PPG": ppg[:64]}, fs)
    assert physio_cues(short) == []


def test_windows_align_to_clip_seconds_and_frames(tmp_path):
    p = tmp_path / "rec.csv"
    t = np.arange(0, 10.0001, 0.1)
    rows = ["time,PPG,EDA,note"] + [f"{x:.1f},{np.sin(x):.4f},{2 + x / 10:.4f},ok" for x in t]
    p.write_text("\n".join(rows) + "\n")
    rec = load_csv(p)
    assert rec.fs == pytest.approx(10.0) and set(rec.channels) == {"PPG", "EDA"}
    # frames 30..59 at 30 fps = seconds 1.0 .. 2.0
    s = Sample("c", tmp_path / "v.mp4", start_frame=30, end_frame=59)
    w = clip_window(rec, s, fps=30.0)
    assert w.t[0] == pytest.approx(1.0) and w.t[-1] == pytest.approx(2.0) and len(w) == 11
    assert np.allclose(w.channels["EDA"], 2 + w.t / 10, atol=1e-4)
    w2 = clip_window(rec, Sample("d", p, start_s=4.0, end_s=5.0), pad_s=0.5)
    assert w2.t[0] == pytest.approx(3.5) and w2.t[-1] == pytest.approx(5.5)
    # a recording that started 2 s before the video: its t=3 s is video second 1
    late = load_csv(p, offset_s=2.0)
    assert window(late, 1.0, 1.0).channels["EDA"][0] == pytest.approx(2.3)


def test_cross_subject_folds_never_share_a_subject():
    rng = np.random.default_rng(0)
    subjects = [f"s{int(i):02d}" for i in rng.integers(0, 23, 400)]
    folds = subject_folds(subjects, k=5, seed=1)
    by = {}
    for s, f in zip(subjects, folds, strict=True):
        by.setdefault(s, set()).add(f)
    assert all(len(v) == 1 for v in by.values())
    sizes = np.bincount(folds)
    assert len(sizes) == 5 and sizes.max() - sizes.min() < 0.5 * sizes.mean()
    splits = leave_subjects_out(subjects, k=5, seed=1)
    seen = np.concatenate([te for _, te in splits])
    assert sorted(seen) == list(range(len(subjects)))
    for tr, te in splits:
        assert not {subjects[i] for i in tr} & {subjects[i] for i in te}
    loso = leave_subjects_out(subjects, k=None)
    assert len(loso) == len(set(subjects))
    assert all(len({subjects[i] for i in te}) == 1 for _, te in loso)
    assert subject_folds(subjects, 5, seed=1) == folds  # seeded


def test_ccc_matches_a_hand_computation_and_is_registered():
    y, p = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 5.0]
    # means 2.5 / 3; var_y 1.25, var_p 1.5, cov 1.25: 2·1.25 / (1.25 + 1.5 + 0.25)
    assert ccc(y, p) == pytest.approx(2.5 / 3.0)
    assert ccc(y, y) == pytest.approx(1.0)
    d = RegressionData(
        np.array([[1, -1], [2, 0.5], [3, 1], [4, -0.5]], float),
        np.array([[2, -1], [2, 0.5], [3, np.nan], [5, -0.5]], float),
        ["valence", "arousal"],
        midpoint=[2.5, 0.0],
    )
    out = R.evaluate("regression", ["ccc_valence", "rmse_valence", "ccc", "high_low_accuracy"], d)
    assert out["ccc_valence"] == pytest.approx(2.5 / 3.0)
    assert out["rmse_valence"] == pytest.approx(np.sqrt(2 / 4))
    # the missing arousal becomes the midpoint 0: arousal pairs (-1,-1) (.5,.5) (1,0) (-.5,-.5)
    ar = ccc([-1, 0.5, 1, -0.5], [-1, 0.5, 0, -0.5])
    assert out["ccc"] == pytest.approx((2.5 / 3.0 + ar) / 2)
    # valence bins at 2.5: gold L L H H, pred L L H H; arousal: gold L H H L, pred L H L L
    assert out["high_low_accuracy"] == pytest.approx((1.0 + 0.75) / 2)
    assert high_low_labels([1, 3], 2.5) == ["low", "high"]
    ci = R.bootstrap("regression", ["ccc"], d, n_boot=50)
    assert ci["ccc"].low <= ci["ccc"].value <= ci["ccc"].high


# --- end to end: a manifest's physio column → cues; valence scored as a regression task ---------
def _sine_ppg(csv_path, rates=((0.0, 30.0, 72.0),), fs=50.0, seed=0):
    """A PPG CSV: a sine whose rate (bpm) is piecewise constant over (start_s, end_s, bpm),
    phase-continuous, plus white noise; columns time_s, ppg, and an EDA column held flat."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, rates[-1][1], 1.0 / fs)
    f = np.zeros_like(t)
    for a, b, bpm in rates:
        f[(t >= a) & (t < b)] = bpm / 60.0
    x = np.sin(2 * np.pi * np.cumsum(f) / fs) + rng.normal(0, 0.1, len(t))
    rows = ["time_s,ppg"] + [f"{a:.4f},{b:.5f}" for a, b in zip(t, x, strict=True)]
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path


def test_physio_cues_for_a_manifest_sample_window_the_clip(tmp_path):
    """Synthetic PPG, 72 bpm for 30 s then 96 bpm: each clip's cue words its own rate (the
    window follows start_s/end_s, or frames at the manifest's fps)."""
    from sovtp.data.manifest import read_manifest
    from sovtp.errors import SovtpError
    from sovtp.physio.cues import physio_cues_for

    (tmp_path / "phys").mkdir()
    _sine_ppg(tmp_path / "phys" / "s1.csv", ((0.0, 30.0, 72.0), (30.0, 60.0, 96.0)))
    (tmp_path / "m.csv").write_text(
        "id,media,subject,start_s,end_s,start_frame,end_frame,fps,physio\n"
        "a,v.mp4,s1,2,26,,,,phys/s1.csv\n"
        "b,v.mp4,s1,,,1020,1649,30,phys/s1.csv\n"  # frames 1020..1649 at 30 fps = 34..55 s
        "c,v.mp4,s1,2,26,,,,\n"
        "d,v.mp4,s1,2,26,,,,../outside.csv\n"
    )
    a, b, c, d = read_manifest(tmp_path / "m.csv")
    (hr,) = physio_cues_for(a, root=tmp_path)
    assert hr.kind == "physio" and hr.name == "heart_rate"
    assert abs(hr.value["hr_bpm"] - 72) < 1.5 and "heart rate 72 bpm" in hr.text
    (hr_b,) = physio_cues_for(b, root=tmp_path)
    assert abs(hr_b.value["hr_bpm"] - 96) < 1.5 and "heart rate 96 bpm" in hr_b.text
    assert physio_cues_for(c, root=tmp_path) == []  # no recording named: no cue
    with pytest.raises(SovtpError, match="escapes"):
        physio_cues_for(d, root=tmp_path)
    a.meta["physio"] = "phys/missing.csv"
    with pytest.raises(SovtpError, match="no physiology file"):
        physio_cues_for(a, root=tmp_path)


def test_valence_regression_end_to_end_through_the_summary(tmp_path):
    """A manifest with physio CSVs and valence/arousal self-reports (1-9); one system answers
    high/low with a confidence (one answer invalid), another gives numbers; the summary's CCC
    equals numpy's, an invalid answer counts as the midpoint, folds never split a subject."""
    from sovtp.data.manifest import read_manifest
    from sovtp.evaluator import load_evaluator
    from sovtp.physio.cues import physio_cues_for
    from sovtp.scoring.summary import summarise

    ev = load_evaluator("physio_va")
    assert ev.task == "regression" and ev.protocol.kind == "cross_subject"
    (tmp_path / "phys").mkdir()
    subjects = ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"]
    valence = [7.5, 2.0, 6.0, 3.5, 8.0, 4.5, 5.5, 1.5]
    arousal = [6.0, 3.0, 5.0, 7.0, 2.0, 4.0, 8.0, 3.5]
    lines = ["id,media,subject,valence,arousal,start_s,end_s,physio"]
    for i, (s, v, a) in enumerate(zip(subjects, valence, arousal, strict=True)):
        csv = _sine_ppg(tmp_path / "phys" / f"c{i}.csv", ((0.0, 12.0, 60.0 + 5 * i),), seed=i)
        lines.append(f"c{i},v{i}.mp4,{s},{v},{a},1,11,phys/{csv.name}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    samples = list(read_manifest(tmp_path / "m.csv"))
    for i, smp in enumerate(samples):  # each clip's cue words its own heart rate
        assert abs(physio_cues_for(smp, root=tmp_path)[0].value["hr_bpm"] - (60 + 5 * i)) < 2
    folds = ev.folds_of(samples)
    assert all(folds[i] == folds[i + 1] for i in range(0, 8, 2))  # a subject's clips together

    vlm = [
        ("high", 0.9),
        ("low", 0.8),
        ("high", 0.6),
        ("low", 70),
        ("high", None),
        (None, None),
        ("low", 0.55),
        ("low", 0.9),
    ]
    cnn = [
        (6.8, 5.5),
        (2.5, 3.5),
        (5.1, 6.0),
        (4.0, 6.5),
        (7.0, 3.0),
        (5.5, 4.0),
        (4.9, 7.5),
        (2.2, 3.0),
    ]
    rows = []
    for smp, (lab, conf), (pv, pa) in zip(samples, vlm, cnn, strict=True):
        base = smp.row()
        rows.append(
            {
                **base,
                "system": "vlm",
                "variant": "sovtp/full",
                "label": lab,
                "confidence": conf,
                "parse_status": "ok" if lab else "invalid",
            }
        )
        rows.append(
            {
                **base,
                "system": "cnn",
                "variant": "sovtp/full",
                "label": None,
                "scores": {"valence": pv, "arousal": pa},
                "parse_status": "ok",
            }
        )
    summ = summarise(rows, ev.labels().labels, n_boot=20, tier_by=None, **ev.scoring())
    by = {e["system"]: e for e in summ["systems"]}

    def np_ccc(y, p):
        y, p = np.asarray(y, float), np.asarray(p, float)
        return 2 * np.cov(y, p, bias=True)[0, 1] / (y.var() + p.var() + (y.mean() - p.mean()) ** 2)

    # the vlm's value: 1 + P(high)·8, P(high) its confidence in "high" (70 → 0.7); invalid → 5
    p_high = [0.9, 0.2, 0.6, 0.3, 1.0, None, 0.45, 0.1]
    pv_vlm = [5.0 if q is None else 1 + 8 * q for q in p_high]
    m = by["vlm"]["metrics"]
    assert m["ccc_valence"] == pytest.approx(np_ccc(valence, pv_vlm))
    assert m["invalid_rate"] == pytest.approx(1 / 8)
    # a high/low answer speaks for valence only: arousal is the midpoint throughout
    assert m["ccc_arousal"] == pytest.approx(0.0)
    assert m["ccc"] == pytest.approx(np_ccc(valence, pv_vlm) / 2)
    # label metrics on valence's bins (gold > 5): the invalid answer is wrong, never "low"
    gold_hl = ["high" if v > 5 else "low" for v in valence]
    right = sum(g == lab for g, (lab, _) in zip(gold_hl, vlm, strict=True))
    assert m["war"] == pytest.approx(right / 8)
    c = by["cnn"]["metrics"]
    assert c["ccc_valence"] == pytest.approx(np_ccc(valence, [p for p, _ in cnn]))
    assert c["ccc_arousal"] == pytest.approx(np_ccc(arousal, [a for _, a in cnn]))
    assert c["pcc_valence"] == pytest.approx(np.corrcoef(valence, [p for p, _ in cnn])[0, 1])
    assert c["rmse_arousal"] == pytest.approx(
        np.sqrt(np.mean((np.array(arousal) - [a for _, a in cnn]) ** 2))
    )
    ci = by["cnn"]["ci"]["ccc_valence"]
    assert ci["low"] <= c["ccc_valence"] <= ci["high"]
    assert summ["comparisons"] and "ccc_valence" in summ["comparisons"][0]["delta"]


def test_bench_words_a_manifest_physio_recording_in_the_prompt(tmp_path, pan_mp4):
    """`sovtp bench` on a manifest with a physio column: the sample's PPG, windowed to its clip,
    reaches the prompt as words (heart rate), and the run's detector config is unchanged."""
    import json

    from sovtp.engine.config import BenchConfig
    from sovtp.jsonl import iter_jsonl
    from sovtp.recipes.bench import run_bench

    _sine_ppg(tmp_path / "p1.csv", ((0.0, 20.0, 84.0),))
    (tmp_path / "m.csv").write_text(
        f"id,media,label,physio,start_s,end_s\nc1,{pan_mp4},happy,p1.csv,0,3\n"
    )
    cfg = BenchConfig(
        data=str(tmp_path / "m.csv"),
        labels="basic7",
        variants=["sovtp/full"],
        sampling="uniform:2",
        out=str(tmp_path / "run"),
        n_boot=20,
    )
    run, _ = run_bench(cfg, report=False)
    (g,) = list(iter_jsonl(run / "gallery.jsonl"))
    import re

    m = re.search(r"Physiology \(measured by sensors\): heart rate (\d+) bpm", g["prompt"])
    assert m and abs(int(m.group(1)) - 84) <= 2  # a 3 s clip (+2 s pad each side) of 84 bpm
    man = json.loads((run / "manifest.json").read_text())
    assert man["protocol"]["hands"] is False


def test_bench_fold_under_a_cross_subject_protocol_keeps_subjects_whole(tmp_path, pan_mp4):
    """`--fold k` with physio_va on a manifest without a fold column: fold k holds whole
    subjects (dealt as the evaluator declares), every sample once over the folds."""
    from sovtp.engine.config import BenchConfig
    from sovtp.evaluator import load_evaluator
    from sovtp.recipes.bench import resolve, samples

    subj = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "f"]
    lines = ["id,media,subject,valence,arousal"]
    lines += [f"x{i},{pan_mp4},{s},5,5" for i, s in enumerate(subj)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    k = load_evaluator("physio_va").protocol.k
    seen: dict[str, int] = {}
    for fold in range(k):
        cfg = resolve(
            BenchConfig(
                data=str(tmp_path / "m.csv"),
                evaluator="physio_va",
                fold=fold,
                out=str(tmp_path / "r"),
            )
        )
        for s in samples(cfg):
            assert s.id not in seen
            seen[s.id] = fold
    assert sorted(seen) == sorted(f"x{i}" for i in range(len(subj)))
    by_subject: dict[str, set[int]] = {}
    for i, s in enumerate(subj):
        by_subject.setdefault(s, set()).add(seen[f"x{i}"])
    assert all(len(f) == 1 for f in by_subject.values())  # no subject on two folds
    assert len(set(seen.values())) == k


def test_a_sample_without_an_interval_is_windowed_to_its_video(tmp_path, pan_mp4):
    """No start/end: the window is the video's own span (3 s from 0, padded), not the whole
    recording — a long recording's later rate must not speak for a short clip."""
    from sovtp.data.manifest import read_manifest
    from sovtp.physio.cues import physio_cues_for

    _sine_ppg(tmp_path / "p.csv", ((0.0, 8.0, 60.0), (8.0, 60.0, 120.0)))
    (tmp_path / "m.csv").write_text(f"id,media,physio\na,{pan_mp4},p.csv\n")
    (a,) = read_manifest(tmp_path / "m.csv")
    (hr,) = physio_cues_for(a, root=tmp_path)
    assert abs(hr.value["hr_bpm"] - 60) < 3, hr.text


def test_training_takes_the_subjects_the_bench_fold_leaves_out(tmp_path, pan_mp4):
    """`sovtp train --evaluator physio_va --fold k` trains on every subject not in test fold k
    (what `sovtp bench --fold k` scores): the two sides partition the samples by subject."""
    from sovtp.baselines.train import training_samples
    from sovtp.engine.config import BenchConfig
    from sovtp.recipes.bench import resolve, samples

    subj = ["a", "a", "b", "c", "c", "d", "e", "f"]
    lines = ["id,media,subject,valence,arousal"]
    lines += [f"x{i},{pan_mp4},{s},5,5" for i, s in enumerate(subj)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    data = str(tmp_path / "m.csv")
    for k in range(3):
        tr, fold = training_samples(data, "physio_va", k, "train", None)
        te = list(
            samples(
                resolve(
                    BenchConfig(data=data, evaluator="physio_va", fold=k, out=str(tmp_path / "r"))
                )
            )
        )
        assert fold == k and tr and te
        assert {s.id for s in tr} | {s.id for s in te} == {f"x{i}" for i in range(len(subj))}
        assert not {s.subject for s in tr} & {s.subject for s in te}
